"""Run each input's work in its own worker process, bounded in time and memory.

One pathological file (a decompression bomb, a GDAL hang, a segfault) costs its own process,
never the run: a worker over its time is killed, one over its address-space limit fails its
allocation, and both become rejections. Processes come from a forkserver, so each starts as a
cheap fork of a clean, pre-imported interpreter (no threads of the parent inherited).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from rasterio.errors import RasterioError

from byod.rasters import is_out_of_memory
from byod.reasons import Reason, RejectedInput

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

_CONTEXT = mp.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["byod.work"])


@dataclass(frozen=True)
class Done(Generic[J, R]):
    job: J
    result: R | None = None
    rejection: RejectedInput | None = None
    seconds: float = 0.0


@dataclass
class _Running:
    job: Any
    label: str
    process: Any
    conn: Connection
    started: float


def run_bounded(
    jobs: list[tuple[str, J]],
    work: Callable[[J, Callable[[str], None]], R],
    *,
    workers: int,
    timeout_s: float,
    max_memory_mb: int,
    on_stage: Callable[[str, str], None] = lambda label, stage: None,
    before_start: Callable[[J], None] = lambda job: None,
) -> Iterator[Done[J, R]]:
    """Yield each (label, job)'s outcome as it finishes; at most `workers` at once.

    `before_start` runs in this process just before a job's worker starts (to fetch its
    input, say); a RejectedInput it raises rejects that job without starting a worker.
    """
    pending = list(reversed(jobs))
    running: list[_Running] = []
    while pending or running:
        while pending and len(running) < workers:
            label, job = pending.pop()
            try:
                before_start(job)
            except RejectedInput as exc:
                yield Done(job, rejection=exc)
                continue
            recv, send = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(
                target=_child, args=(send, work, job, label, max_memory_mb), daemon=True
            )
            process.start()
            send.close()
            running.append(_Running(job, label, process, recv, time.monotonic()))
            on_stage(label, "queued")
        if not running:
            continue
        now = time.monotonic()
        next_deadline = min(r.started + timeout_s for r in running)
        ready = wait([r.conn for r in running] + [r.process.sentinel for r in running],
                     timeout=max(0.0, next_deadline - now))  # fmt: skip
        for run in list(running):
            outcome = _poll(run, ready, timeout_s, on_stage)
            if outcome is not None:
                running.remove(run)
                yield outcome


def _poll(
    run: _Running, ready: list[Any], timeout_s: float, on_stage: Callable[[str, str], None]
) -> Done[Any, Any] | None:
    elapsed = time.monotonic() - run.started
    died = False
    if run.conn in ready or run.process.sentinel in ready:
        try:
            while run.conn.poll():
                kind, payload = run.conn.recv()
                if kind == "stage":
                    on_stage(run.label, payload)
                    continue
                _reap(run)
                if kind == "ok":
                    return Done(run.job, result=payload, seconds=elapsed)
                return Done(run.job, rejection=RejectedInput(*payload), seconds=elapsed)
        except EOFError:
            died = True  # the pipe closed with no result: the worker is gone
        # A worker that exited is done whether or not its pipe said so.
        died = died or run.process.sentinel in ready
    if died:
        _reap(run)
        code = run.process.exitcode
        return Done(run.job, rejection=RejectedInput(
            Reason.CRASHED, f"{run.label}: the worker died (exit code {code}) while reading it"
        ), seconds=elapsed)  # fmt: skip
    if elapsed >= timeout_s:
        _reap(run, kill=True)
        return Done(run.job, rejection=RejectedInput(
            Reason.TIMEOUT, f"{run.label}: took longer than {timeout_s:g} s (--timeout); stopped"
        ), seconds=elapsed)  # fmt: skip
    return None


def _reap(run: _Running, kill: bool = False) -> None:
    if kill and run.process.is_alive():
        run.process.kill()
    run.process.join(timeout=10)
    run.conn.close()


def _child(
    conn: Connection, work: Callable[..., Any], job: Any, label: str, max_memory_mb: int
) -> None:
    limit = max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = work(job, lambda stage: conn.send(("stage", stage)))
        conn.send(("ok", result))
    except RejectedInput as exc:
        conn.send(("rejected", (exc.reason, exc.message)))
    except MemoryError:
        conn.send(("rejected", (Reason.MEMORY_LIMIT, _memory_message(label, max_memory_mb))))
    except RasterioError as exc:
        # The allocation failure is in the chained GDAL error, not in rasterio's own message.
        if is_out_of_memory(exc):
            conn.send(("rejected", (Reason.MEMORY_LIMIT, _memory_message(label, max_memory_mb))))
        else:
            conn.send(("rejected", (Reason.UNREADABLE, f"{label}: GDAL could not read it ({exc})")))
    except Exception as exc:  # noqa: BLE001 - one input's bug must not end the run; it is reported
        if is_out_of_memory(exc):  # e.g. GDAL's CPLE_OutOfMemoryError, which is no RasterioError
            conn.send(("rejected", (Reason.MEMORY_LIMIT, _memory_message(label, max_memory_mb))))
            return
        log.debug("worker failed on %s\n%s", label, traceback.format_exc())
        conn.send(("rejected", (Reason.CRASHED, f"{label}: unexpected error {exc!r}")))
    finally:
        conn.close()


def _memory_message(label: str, max_memory_mb: int) -> str:
    return f"{label}: needed more than {max_memory_mb} MB (--max-memory); stopped"
