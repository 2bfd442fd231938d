"""Many small inputs per worker process: the throughput of folders of small rasters.

A worker process per input costs its start (a fork of the forkserver, the sandbox, GDAL's
and PROJ's first use in the process): about 0.1-0.2 s on 2 cores, more than converting a
256 x 256 raster (about 0.05 s). Small local inputs are therefore worked on in batches, one
worker process per batch, each input still apart: its own folder, result, rejection and
timings.

Bounds are kept per input. A batch has a short deadline (`batch_deadline`, far above what
its inputs need); a batch that overruns it, dies, exceeds its memory limit, or has a read
refused by the sandbox is split, and each of its inputs runs again alone in a worker of its
own with the run's full `--timeout` and `--max-memory` (runner.run_bounded). So no input is
rejected for another's fault, and each rejected input was given its full bounds alone.
Inputs rejected for their own content (RejectedInput) are rejected inside the batch.

What batching shares: the inputs of one batch run in one process and one sandbox domain,
which may write every job folder of the run (not only its own): an input that took over
GDAL could alter the outputs of the others in its batch before the parent stores them. Only
small local inputs of one source folder are batched (`is_small`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from byod import confine
from byod.reasons import Reason, RejectedInput
from byod.runner import Done, run_bounded
from byod.work import Job

J = TypeVar("J")
R = TypeVar("R")
Stage = Callable[[str], None]

# An input up to this size (the raster file, local) is batched: about 1,000 x 1,000 pixels of
# 4 uint16 bands uncompressed; converting it takes well under a second.
SMALL_INPUT_BYTES = 8 * 1024**2
# Inputs per batch at most; fewer when there are few, so every worker gets several batches
# (the run's tail stays short).
MAX_BATCH = 32
BATCHES_PER_WORKER = 4
# A batch's deadline: this, plus BATCH_SECONDS_PER_INPUT per input, or the run's
# --timeout per input if that is less. Overrun, the batch's inputs run again one by one.
BATCH_SECONDS = 60.0
BATCH_SECONDS_PER_INPUT = 5.0
# Stage messages of a batch name the input: "<index in the batch><SEP><stage>".
SEP = "\t"


@dataclass(frozen=True)
class Batch(Generic[J]):
    """Jobs worked on one after the other in one worker process. `workdir` and
    `source_root` are what the runner confines the worker to (runner.Confined): the folder
    that holds every job's folder, and the jobs' common source folder."""

    jobs: tuple[J, ...]
    work: Callable[[J, Stage], Any]
    workdir: Path
    source_root: Path | None


@dataclass(frozen=True)
class Worked:
    """One job's outcome inside a batch: its result or its rejection, and its seconds."""

    result: Any = None
    rejection: tuple[Reason, str] | None = None
    seconds: float = 0.0


def work_batch(batch: Batch[Any], stage: Stage) -> list[Worked]:
    """Run every job of `batch` in this worker; what a job raises other than a RejectedInput
    of its own (a GDAL error, MemoryError, a read the sandbox refused) fails the whole batch,
    which the parent then splits (see the module docstring)."""
    out = []
    for index, job in enumerate(batch.jobs):
        start = time.perf_counter()

        def announce(name: str, index: int = index) -> None:
            stage(f"{index}{SEP}{name}")

        try:
            result = batch.work(job, announce)
        except RejectedInput as exc:
            if confine.is_denied(exc.__cause__):  # outside_source: decided by the runner alone
                raise
            out.append(Worked(rejection=(exc.reason, exc.message),
                              seconds=time.perf_counter() - start))  # fmt: skip
            continue
        out.append(Worked(result=result, seconds=time.perf_counter() - start))
    return out


class _BatchWork:
    """`work_batch`, called as the runner's work function, with the `__module__` of the
    batched work function: the runner keeps that module's folder on the worker's import
    path (runner._safe_preparation), so the batch's pickled function can be found there."""

    def __init__(self, work: Callable[..., Any]) -> None:
        self.__module__ = getattr(work, "__module__", __name__)

    def __call__(self, batch: Batch[Any], stage: Stage) -> list[Worked]:
        return work_batch(batch, stage)


def is_small(job: Job) -> bool:
    """A local single-file input of at most SMALL_INPUT_BYTES (a remote one is fetched by the
    parent before its worker starts, one by one: not batched)."""
    if job.source_root is None or job.bands:
        return False
    try:
        return os.stat(job.path).st_size <= SMALL_INPUT_BYTES
    except OSError:
        return False


def batch_size(small: int, workers: int) -> int:
    """Inputs per batch for `small` batchable inputs: up to MAX_BATCH, and at least
    BATCHES_PER_WORKER batches per worker; 1 (no batching) when that leaves fewer than 2."""
    return max(1, min(MAX_BATCH, small // max(1, workers * BATCHES_PER_WORKER)))


def batch_deadline(size: int, timeout_s: float) -> float:
    """Seconds a batch of `size` inputs may take before it is split."""
    return min(timeout_s * size, BATCH_SECONDS + BATCH_SECONDS_PER_INPUT * size)


class Bounds(TypedDict):
    """`runner.run_bounded`'s bounds, as `run_in_batches` passes them on."""

    workers: int
    timeout_s: float
    max_memory_mb: int


def run_in_batches(
    jobs: list[tuple[str, J]],
    work: Callable[[J, Stage], R],
    *,
    small: Callable[[J], bool],
    on_stage: Callable[[str, str], None] = lambda label, stage: None,
    before_start: Callable[[J], None] = lambda job: None,
    **bounds: Unpack[Bounds],
) -> Iterator[Done[J, R]]:
    """`runner.run_bounded` with the `small` jobs in batches: one Done per job, batched
    ones first (a batch's deadline `batch_deadline`, its inputs retried alone on failure).
    Jobs must name their folders as runner.Confined does (`workdir`, `source_root`): a
    batch is confined to the folder holding its jobs' folders."""
    labels = {id(job): label for label, job in jobs}
    smalls = [job for _, job in jobs if small(job)]
    size = batch_size(len(smalls), bounds["workers"])
    if size < 2:
        yield from run_bounded(jobs, work, on_stage=on_stage, before_start=before_start, **bounds)
        return
    batched = {id(job) for job in smalls}
    batches = [_batch(smalls[i : i + size], work) for i in range(0, len(smalls), size)]

    def stage(label: str, message: str) -> None:
        index, _, name = message.partition(SEP)
        batch = by_label[label]
        if name and index.isdigit() and int(index) < len(batch.jobs):
            on_stage(labels[id(batch.jobs[int(index)])], name)

    def fetch(batch: Batch[J]) -> None:
        for job in batch.jobs:
            before_start(job)

    by_label = {f"{labels[id(b.jobs[0])]} (+{len(b.jobs) - 1})": b for b in batches}
    retry: list[J] = []
    batch_bounds = Bounds(**{**bounds, "timeout_s": batch_deadline(size, bounds["timeout_s"])})
    first = run_bounded(list(by_label.items()), _BatchWork(work), on_stage=stage,
                        before_start=fetch, **batch_bounds)  # fmt: skip
    for done in first:
        if done.rejection is not None or done.result is None:
            retry.extend(done.job.jobs)  # each input again, alone, with its full bounds
            continue
        for job, worked in zip(done.job.jobs, done.result, strict=True):
            rejection = RejectedInput(*worked.rejection) if worked.rejection else None
            yield Done(job, result=worked.result, rejection=rejection, seconds=worked.seconds)
    rest = [(label, job) for label, job in jobs if id(job) not in batched]
    rest += [(labels[id(job)], job) for job in retry]
    if rest:
        yield from run_bounded(rest, work, on_stage=on_stage, before_start=before_start, **bounds)


def _batch(jobs: list[J], work: Callable[[J, Stage], Any]) -> Batch[J]:
    folders = [Path(getattr(job, "workdir")) for job in jobs]  # noqa: B009 - runner.Confined
    roots = {getattr(job, "source_root", None) for job in jobs}
    root = roots.pop() if len(roots) == 1 else None
    return Batch(tuple(jobs), work, Path(os.path.commonpath(folders)), root)
