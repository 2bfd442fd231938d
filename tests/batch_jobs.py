"""Jobs for byod.batches' workers (test_stages): a module that imports nothing heavy, since
each worker imports it to find the function."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from byod.reasons import Reason, RejectedInput


@dataclass(frozen=True)
class Job:
    name: str
    workdir: Path
    source_root: Path | None


def work(job: Job, stage: Callable[[str], None]) -> tuple[str, int]:
    stage("working")
    if job.name == "crash":
        os._exit(3)  # as a segfault in GDAL would: the whole batch's process dies
    if job.name == "hang":
        time.sleep(60)
    if job.name == "reject":
        raise RejectedInput(Reason.NOT_A_RASTER, "reject: not a raster")
    return job.name, os.getpid()
