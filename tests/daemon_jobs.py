"""Jobs for byod.runner's workers started inside a daemonic process (test_dask_cluster): a
module that imports nothing heavy beyond byod.runner, which each worker imports anyway."""

from __future__ import annotations

import os
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
    if job == "environ":  # what the job itself sees, both ways
        return {"os": dict(os.environ), "proc": Path("/proc/self/environ").read_bytes()}
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
    jobs = ("ok", "crash", "env", "environ", "path")
    done = [*run_bounded([(j, j) for j in jobs], work, workers=4, timeout_s=120,
                         max_memory_mb=2048),
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


# Secret-looking variables of a hub's environment: none may reach a worker, under any name.
SECRETS = {
    "JUPYTERHUB_API_TOKEN": "hub-token-s3cr3t", "PREFECT_API_KEY": "pnu_s3cr3t",
    "GITHUB_TOKEN": "ghp_s3cr3t", "HF_TOKEN": "hf_s3cr3t",
    "DATABASE_URL": "postgres://u:s3cr3t@db/x", "DASK_GATEWAY__AUTH__TYPE": "jupyterhub-s3cr3t",
    "AZURE_STORAGE_KEY": "azure-s3cr3t", "AWS_SECRET_ACCESS_KEY": "aws-s3cr3t",
    "GDAL_HTTP_USERPWD": "u:s3cr3t", "GDAL_HTTP_HEADERS": "Authorization: Bearer s3cr3t",
    "CPL_AWS_CREDENTIALS_FILE": "/tmp/s3cr3t", "https_proxy": "http://u:s3cr3t@proxy:3128",
}  # fmt: skip
# ... and ones a worker needs, which must still reach it.
KEPT = {"GDAL_CACHEMAX": "64", "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1"}


def leaked(seen: dict[str, Any]) -> list[str]:
    """The secrets (names or values) an "environ" job's result shows."""
    found = [k for k in SECRETS if k in seen["os"] or k.encode() + b"=" in seen["proc"]]
    found += [v for v in SECRETS.values() if v.encode() in seen["proc"]]
    return found


def environ_in_forkserver_workers() -> None:
    """Run in a fresh interpreter whose environment has SECRETS and KEPT: print the
    "environ" job's result (repr) of a forkserver worker, which this process starts."""
    from byod.runner import run_bounded

    (done,) = run_bounded([("environ", "environ")], work, workers=1, timeout_s=120,
                          max_memory_mb=2048)  # fmt: skip
    print(repr(done.result))
