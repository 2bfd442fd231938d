"""Where bytes go: a folder or an fsspec URL, behind one small interface.

Every write is all-or-nothing: on a local folder a temporary file is renamed into place, so a
reader (or a killed run) never sees half a file.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem


class Store:
    """A root folder or URL and the files below it, addressed by POSIX keys."""

    def __init__(self, url: str | Path) -> None:
        self.fs, root = fsspec.core.url_to_fs(str(url))
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.root = str(Path(root).resolve()) if self.is_local else root.rstrip("/")

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def href(self, key: str) -> str:
        """The absolute path (local) or URL of a key."""
        if self.is_local:
            return str(Path(self.root, key))
        return self.fs.unstrip_protocol(posixpath.join(self.root, key))

    def _path(self, key: str) -> str:
        return posixpath.join(self.root, key) if not self.is_local else str(Path(self.root, key))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def read_text(self, key: str) -> str:
        with self.fs.open(self._path(key), "r", encoding="utf-8") as f:
            return str(f.read())

    def write_text(self, key: str, text: str) -> None:
        if self.is_local:
            _atomic_local(Path(self._path(key)), lambda tmp: tmp.write_text(text, "utf-8"))
        else:
            self.fs.pipe_file(self._path(key), text.encode("utf-8"))

    def put_file(self, local: Path, key: str) -> str:
        """Store a local file under `key`; returns its href."""
        if self.is_local:
            _atomic_local(Path(self._path(key)), lambda tmp: shutil.copyfile(local, tmp))
        else:
            self.fs.put_file(str(local), self._path(key))
        return self.href(key)

    def remove(self, key: str) -> None:
        if self.exists(key):
            self.fs.rm(self._path(key))


def _atomic_local(dst: Path, write: object) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        write(tmp)  # type: ignore[operator]
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
