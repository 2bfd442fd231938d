"""byod's private temp folders: named after the process that owns them, removed after a kill.

A run's conversions write into one folder under the system temp dir, `byod-<pid>-<random>`
(PITFALLS: rio-cogeo's uncompressed temp file can be several GB). A killed run cannot remove
its folder, so every run first removes the folders of byod processes that are gone: the pid
in the name is not alive. Folders of live processes (other runs) are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "byod-"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-[A-Za-z0-9_]+$")


def make_workdir() -> Path:
    """A new private temp folder of this process (mode 0700), after stale ones are removed."""
    remove_stale()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A `make_workdir` folder for the block, removed after it (or by the next run, after a
    kill)."""
    folder = make_workdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(parent: Path | None = None, named: re.Pattern[str] = _OWNED) -> list[Path]:
    """Remove the folders in `parent` (default: the temp folder) named by `named` (default
    `byod-<pid>-*`; its first group is the pid), owned by this user, whose process is gone;
    returns those removed."""
    parent = parent or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = named.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        log.info("removed %s, left by a byod process that ended without cleaning up", entry.path)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
