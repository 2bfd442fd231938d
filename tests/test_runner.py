"""The bounded runner: results, rejections, crashes and time-outs of worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from byod.reasons import Reason, RejectedInput
from byod.runner import run_bounded


def work(job: str, stage: Callable[[str], None]) -> str:
    stage("working")
    if job == "crash":
        os._exit(3)  # as a segfault in GDAL would: no exception, no word on the pipe
    if job == "hang":
        time.sleep(60)
    if job == "reject":
        raise RejectedInput(Reason.NOT_A_RASTER, "reject: not a raster")
    return job.upper()


def test_each_outcome_is_reported_promptly() -> None:
    stages: list[tuple[str, str]] = []
    started = time.monotonic()
    done = {d.job: d for d in run_bounded(
        [(j, j) for j in ("ok", "crash", "hang", "reject")], work, workers=4, timeout_s=3,
        max_memory_mb=2048, on_stage=lambda label, stage: stages.append((label, stage)),
    )}  # fmt: skip
    assert done["ok"].result == "OK"
    crash = done["crash"].rejection
    assert crash is not None and crash.reason is Reason.CRASHED and "exit code 3" in crash.message
    assert done["crash"].seconds < 2.5  # seen when it died, not at the deadline
    hang = done["hang"].rejection
    assert hang is not None and hang.reason is Reason.TIMEOUT
    reject = done["reject"].rejection
    assert reject is not None and reject.reason is Reason.NOT_A_RASTER
    assert ("ok", "working") in stages
    assert time.monotonic() - started < 10
