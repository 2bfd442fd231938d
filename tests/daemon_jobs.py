"""Jobs for byod.runner's workers started inside a daemonic process (test_dask_cluster): a
module that imports nothing heavy beyond byod.runner, which each worker imports anyway."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import test_runner


def work(job: str, stage: Callable[[str], None]) -> Any:
    """test_runner's jobs (ok, crash, hang, reject), and what the worker was started with."""
    if job == "env":  # what the process was started with, not what it changed since
        return Path("/proc/self/environ").read_bytes().split(b"\0")
    if job == "path":
        return list(sys.path)
    return test_runner.work(job, stage)


@dataclass(frozen=True)
class SandboxJob:
    """A job that names its folders (runner.Confined): its worker is confined to them."""

    workdir: Path
    source_root: Path


def read_outside(job: SandboxJob, stage: Callable[[str], None]) -> dict[str, str]:
    """What a confined worker may do: write its workdir, read outside its source."""
    outcome = {}
    for what, attempt in (("write work", lambda: (job.workdir / "ok").write_bytes(b"ok")),
                          ("open passwd", lambda: Path("/etc/passwd").read_bytes())):  # fmt: skip
        try:
            attempt()
            outcome[what] = "done"
        except OSError as exc:
            outcome[what] = f"refused: {exc}"
    return outcome


def run_in_daemon(out: Any, folder: Path) -> None:
    """In a daemonic process: run one job of each kind and put {job: (result, rejection)};
    `folder` holds the sandboxed job's source and work folders."""
    from byod.runner import run_bounded

    # Generous bounds for the jobs that end by themselves (a worker imports rasterio and
    # byod first: seconds on a loaded machine), a short one for the job that never ends.
    done = [*run_bounded([(j, j) for j in ("ok", "crash", "env", "path")], work, workers=4,
                         timeout_s=120, max_memory_mb=2048),
            *run_bounded([("hang", "hang")], work, workers=1, timeout_s=5,
                         max_memory_mb=2048)]  # fmt: skip
    results = {d.job: (d.result, d.rejection and (d.rejection.reason, d.rejection.message))
               for d in done}  # fmt: skip
    (folder / "src").mkdir()
    (folder / "work").mkdir()
    job = SandboxJob(folder / "work", folder / "src")
    (sandboxed,) = run_bounded([("sandbox", job)], read_outside, workers=1, timeout_s=120,
                               max_memory_mb=2048)  # fmt: skip
    out.put({**results, "sandbox": (sandboxed.result, sandboxed.rejection)})
