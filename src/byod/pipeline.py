"""The ingest run: discover, skip what is unchanged, prepare in bounded workers, store, publish.

Knows no orchestrator and no terminal: progress goes to an optional `Progress` callback, the
outcome is a `Report`. The CLI and the Prefect flows are thin layers over `ingest`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import signal
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

from byod.config import IngestSettings, default_workers
from byod.errors import (
    ByodError,
    ConfigurationError,
    Interrupted,
    RunFailed,
    RunInterrupted,
    StorageUnavailable,
    storage_errors,
    storage_failure,
)
from byod.markers import end_run
from byod.report import Report
from byod.runs import Outcome, Progress, Run, RunContext, RunLost, WorkItem
from byod.workspace import make_workdir

# The steps (planning, storing, publishing) and the workers (runner: GDAL, rasterio, pystac)
# are imported by the functions that run them: `import byod.pipeline` stays light for the
# edges that only need its names (the CLI's --help and search; benchmarks/README.md).
log = logging.getLogger(__name__)

# Converted inputs stored (uploaded) at once by the parent while the workers convert the next
# ones; also how many may wait to be stored before no new worker starts (each holds its COG in
# the temp folder). Two: an upload to Azurite is bound by Azurite's own CPU (PITFALLS), and
# each upload already keeps `storage.UPLOAD_CONCURRENCY` requests in flight.
STORES_AT_ONCE = 2

# The public API (the CLI, the Prefect flows and tests import these from here).
__all__ = [
    "ConfigurationError",
    "Outcome",
    "Progress",
    "Run",
    "RunContext",
    "RunLost",
    "WorkItem",
    "ingest",
    "outcome_is_stored",
    "plan_run",
    "process",
    "process_all",
    "progress_due",
    "publish_progress",
    "publish_run",
]


def progress_due(run: Run, outcomes: list[Outcome]) -> bool:
    """Whether `publish_every_inputs` stored inputs wait, or `publish_every_s` seconds (of
    the monotonic clock) went by since the last publish with one waiting."""
    settings = run.context.settings
    waiting = sum(1 for o in outcomes if o.items and o.row.input not in run.flushed)
    if not waiting:
        return False
    elapsed = time.monotonic() - run.last_publish
    return waiting >= settings.publish_every_inputs or elapsed >= settings.publish_every_s


def ingest(settings: IngestSettings, progress: Progress | None = None) -> Report:
    """Ingest a folder or blob prefix into COGs at `settings.target` and the catalog.

    The three steps are public so an orchestrator can run them its own way (flows/ runs
    `process` as one task per input): `plan_run`, `process` / `process_all`, `publish_run`.

    A run that cannot start raises `ConfigurationError` or `StorageUnavailable` (nothing
    written); one that stops midway raises `RunFailed` (or `StorageUnavailable` when it had
    stored nothing yet) with `.report` saying what was done and what not (byod.errors).
    SIGINT or SIGTERM (when called from the main thread) stops the conversions (their
    workers are killed), publishes what was stored, and raises `RunInterrupted` with the
    report (the rest `not_done`); a second signal while publishing stops at once.
    """
    progress = progress or Progress()
    with _signals() as signals:
        try:
            # Planning's modules (pyarrow, numpy) imported whole: a signal inside an import
            # would leave one half-imported for the rest of the process (a notebook's).
            with signals.shielded_block():
                import byod.planning  # noqa: F401
            run = plan_run(settings, progress)
        except Interrupted as exc:  # nothing stored; a marker left is removed by the next run
            raise RunInterrupted(f"{signal.Signals(exc.signum).name}: stopped while planning; "
                                 "nothing was stored", exc.signum) from None  # fmt: skip
        outcomes: list[Outcome] = []
        try:
            # Closed on the way out, so an interrupted run's workers are killed (runner).
            with contextlib.closing(process_all(run, progress)) as results:
                for outcome in results:
                    outcomes.append(outcome)
                    if progress_due(run, outcomes):
                        with signals.shielded_block():  # a switch is short: it finishes
                            publish_progress(run, outcomes)
        except Interrupted:
            pass  # publish what was stored; `signals.received` says why the run ended
        except BaseException as exc:
            end_run(run, finished=False)  # a dead run: the next run removes what it stored
            if isinstance(exc, Exception):
                raise _stopped(run, outcomes, exc) from exc
            raise
        signals.shielded = True  # publishing is short and leaves no mix: it finishes
        try:
            report = _publish_or_stop(run, outcomes, complete=signals.received is None)
        except Interrupted as exc:  # a second signal while publishing
            end_run(run, finished=False)
            raise _interrupted(run, outcomes, exc.signum, published=run.published) from None
        if signals.received is not None:
            raise _interrupted(run, outcomes, signals.received, published=True)
        return report


def _publish_or_stop(run: Run, outcomes: list[Outcome], *, complete: bool) -> Report:
    try:
        return publish_run(run, outcomes, complete=complete)
    except Exception as exc:
        if not run.published:
            raise _stopped(run, outcomes, exc) from exc
        # Published: only the clean-up after the switch failed; the next run redoes it.
        log.warning("clean-up after publishing failed: %s", exc)
        run.report.notes.append(f"clean-up after publishing failed ({type(exc).__name__}); "
                                "the next run removes what is left")  # fmt: skip
        run.report.rows.sort(key=lambda r: r.input)
        run.report.finished = datetime.now(UTC).isoformat()
        return run.report


class _Signals:
    """SIGINT and SIGTERM raised as `Interrupted` in the main thread. While `shielded`
    (publishing), the first signal is only noted; a second one interrupts anyway."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.shielded = False

    @contextlib.contextmanager
    def shielded_block(self) -> Iterator[None]:
        """Shield a publish of progress; a signal noted meanwhile interrupts right after."""
        self.shielded = True
        try:
            yield
        finally:
            self.shielded = False
        if self.received is not None:
            raise Interrupted(self.received)

    def handle(self, signum: int, frame: object) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self.shielded:
            return
        raise Interrupted(signum)


@contextlib.contextmanager
def _signals() -> Iterator[_Signals]:
    """Install `_Signals` for the block (main thread only: Python delivers signals there;
    elsewhere, as in an orchestrator's worker thread, signals keep their handlers)."""
    signals = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    saved = {s: signal.signal(s, signals.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _interrupted(run: Run, outcomes: list[Outcome], signum: int, *, published: bool
                 ) -> RunInterrupted:  # fmt: skip
    """The error of a run stopped by `signum`, with its report: rows for what was published
    (or, when the signal came before the switch, `not_done` for what was stored), `not_done`
    for the inputs never finished."""
    name = signal.Signals(signum).name
    finished = {o.row.input for o in outcomes}
    not_done = {w.candidate.relpath: f"not converted: the run was stopped by {name}"
                for w in run.todo if w.candidate.relpath not in finished}  # fmt: skip
    if not published:
        not_done |= {o.row.input: f"stored, not published: the run was stopped by {name}"
                     for o in outcomes if o.items and o.row.input not in run.flushed}  # fmt: skip
    report = run.report
    report.rows += [o.row for o in outcomes if o.row not in report.rows]
    done = sum(1 for o in outcomes if o.items and (published or o.row.input in run.flushed))
    message = (f"{name}: the run was stopped; {done} input(s) published, "
               f"{len(not_done)} not done")  # fmt: skip
    report.stop(message, not_done)
    error = RunInterrupted(message, signum)
    error.report = report
    return error


def stop_run(run: Run, outcomes: list[Outcome], exc: Exception) -> ByodError:
    """For an orchestrator running the steps itself (byod_flows): end a run that `exc`
    stopped midway as `ingest` does. Its marker is released as dead (this or the next run
    removes what it stored and did not publish; what progress publishes published stays),
    and the error to report is returned, carrying the run's report: `StorageUnavailable` or
    `ConfigurationError` when nothing was stored yet, else `RunFailed`."""
    end_run(run, finished=False)
    return _stopped(run, outcomes, exc)


def _stopped(run: Run, outcomes: list[Outcome], exc: Exception) -> ByodError:
    """The error that ends a run stopped midway by `exc`, carrying the run's report: rows for
    what was finished, `not_done` rows for inputs stored but not published and for inputs not
    stored. `StorageUnavailable` or `ConfigurationError` (exit 2) when nothing was stored
    yet, `RunFailed` (exit 3) otherwise."""
    failure = exc if isinstance(exc, ByodError) else storage_failure(exc, "storage")
    if failure is None:  # not a storage fault: a bug; its traceback goes to the log (-v)
        log.info("the run failed", exc_info=exc)
    cause = str(failure or f"unexpected {type(exc).__name__}: {exc}").splitlines()[0]
    finished = {o.row.input for o in outcomes}
    stored = {o.row.input for o in outcomes if o.items and o.row.input not in run.flushed}
    not_done = {i: "stored, not published: the run stopped" for i in sorted(stored)}
    not_done |= {w.candidate.relpath: "not stored: the run stopped"
                 for w in run.todo if w.candidate.relpath not in finished}  # fmt: skip
    report = run.report
    report.rows += [o.row for o in outcomes if o.row not in report.rows]
    message = (f"{cause}; the run stopped: {len(stored)} input(s) stored but not published, "
               f"{len(not_done) - len(stored)} not stored")  # fmt: skip
    report.stop(message, not_done)
    error: ByodError
    if (
        not stored
        and not run.flushed
        and isinstance(failure, StorageUnavailable | ConfigurationError)
    ):
        error = type(failure)(message)
    else:
        error = RunFailed(message, exc)
    error.report = report
    return error


def plan_run(settings: IngestSettings, progress: Progress | None = None) -> Run:
    """Check the configuration (nothing written if it is refused), discover, fingerprint,
    give ids, and settle what is unchanged. Raises `ConfigurationError`, or
    `StorageUnavailable` when a store cannot be read (both before anything is written)."""
    from byod.planning import new_run

    start = time.perf_counter()
    with storage_errors("planning (source, catalog and target)"):
        run = new_run(settings, progress or Progress())
    run.report.seconds["plan"] = round(time.perf_counter() - start, 3)
    return run


def process(context: RunContext, work: WorkItem) -> Outcome:
    """Convert, describe and store one input in a bounded worker process of its own
    (`timeout_s` seconds, `max_memory_mb` MB). A rejected input is an `Outcome` whose row
    says why, never an exception (one file failing to store is `storage_failed`); a store
    that is down or full raises `StorageUnavailable` (`errors.storage_failure`)."""
    from byod.runner import run_bounded
    from byod.storing import fetch_timed, job_for, outcome_of
    from byod.work import prepare

    stores = context.stores
    workdir = make_workdir()  # byod-<pid>-*: removed by the next run after a kill
    try:
        job = job_for(work, context.settings, workdir, stores.source is None)
        fetched: dict[str, float] = {}
        (done,) = run_bounded(
            [(work.candidate.relpath, job)], prepare, workers=1,
            timeout_s=context.settings.timeout_s, max_memory_mb=context.settings.max_memory_mb,
            before_start=lambda job: fetch_timed(fetched, job, work.candidate, stores.source),
        )  # fmt: skip
        return outcome_of(done, work, context, stores.target, fetched.get(job.relpath, 0.0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def process_all(run: Run, progress: Progress | None = None) -> Generator[Outcome, None, None]:
    """Every input of the run, `workers` at a time, each in its bounded worker process,
    yielded as it is stored (not in input order); rejections are outcomes, as in `process`.

    On a blob target an input's files are uploaded in this process on `STORES_AT_ONCE`
    threads while the workers go on converting the next inputs; at most that many converted
    inputs wait to be stored (each holds its COG in the temp folder), beyond that no new
    worker starts. An input stored meanwhile is yielded when the next worker finishes or the
    last uploads end. A store that is down or full raises `StorageUnavailable` once the
    inputs stored by then were yielded. Closing the generator early (a signal) kills the
    workers still running and stops the uploads in flight (within a block): an input counts
    as done only once yielded, and what the others stored is removed by
    `publish_run(complete=False)` or the next run. A local target moves each COG into place
    at once (`Store.put_file`)."""
    if not run.todo:  # a no-op run: no worker started, no temp folder made
        return
    from byod.runner import signals_held

    # A signal inside an import would leave GDAL's or pandas's modules half-imported for the
    # rest of the process (a notebook's next run): held until the imports are done.
    with signals_held():
        from byod.batches import is_small, run_in_batches
        from byod.cog import cache_budget
        from byod.memory import capped_note, conversions_at_once
        from byod.publishing import import_ahead
        from byod.storing import fetch_timed, job_for, outcome_of
        from byod.work import prepare

        # What publishing imports (0.3 s), now: the forkserver started by planning is still
        # importing GDAL on another core, so the first worker starts no later (issue 13).
        import_ahead()

    progress = progress or Progress()
    settings, stores = run.context.settings, run.context.stores
    workdir = make_workdir()  # byod-<pid>-*: removed by the next run after a kill
    pool = ThreadPoolExecutor(STORES_AT_ONCE, thread_name_prefix="byod-store")
    stop = threading.Event()  # the run is ending: uploads in flight stop at their next block
    storing: set[Future[Outcome]] = set()
    outcomes: Iterator[Any] = iter(())
    try:
        # GDAL threads per conversion: the cores shared by the conversions that run at once,
        # and GDAL's block cache: one budget shared by them (cog.cache_budget).
        # How many at once: `workers`, as the memory budget holds them (byod.memory).
        at_once = conversions_at_once(settings.workers, len(run.todo), settings.memory_budget_mb)
        if at_once < min(settings.workers, len(run.todo)):
            run.report.notes.append(capped_note(settings.workers, at_once,
                                                settings.memory_budget_mb))  # fmt: skip
        threads = max(1, default_workers() // at_once)
        local_source = stores.source is None
        jobs = [(w.candidate.relpath, job_for(w, settings, workdir, local_source, threads,
                                              cache_budget(at_once)))
                for w in run.todo]  # fmt: skip
        by_path = {w.candidate.relpath: w for w in run.todo}
        fetched: dict[str, float] = {}
        # Small local inputs are worked on in batches, one worker per batch (byod.batches).
        outcomes = run_in_batches(
            jobs, prepare, small=is_small, workers=at_once,
            timeout_s=settings.timeout_s, max_memory_mb=settings.max_memory_mb,
            on_stage=progress.stage, before_start=lambda job: fetch_timed(
                fetched, job, by_path[job.relpath].candidate, stores.source),
        )  # fmt: skip
        for done in outcomes:
            outcome = functools.partial(outcome_of, done, by_path[done.job.relpath],
                                        run.context, stores.target,
                                        fetched.get(done.job.relpath, 0.0), stop)  # fmt: skip
            # Rejected by its worker: nothing to store. A local target: a rename (`put_file`'s
            # move), done at once, so an input is yielded the moment it is stored.
            if done.result is None or stores.target.puts_at_once:
                yield _finished(outcome(), progress)
            else:
                storing.add(pool.submit(outcome))
            # Stored meanwhile: yielded now; too many waiting: no new worker until one is.
            yield from _stored(storing, progress, pool, block=len(storing) >= STORES_AT_ONCE)
        while storing:
            yield from _stored(storing, progress, pool, block=True)
    finally:
        close = getattr(outcomes, "close", None)  # a generator (runner.run_bounded)
        if close is not None:
            close()  # a run stopped early: its workers are killed first
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)  # no upload outlives the run's end
        shutil.rmtree(workdir, ignore_errors=True)


def _finished(outcome: Outcome, progress: Progress) -> Outcome:
    progress.finished(outcome.row)
    return outcome


def _stored(storing: set[Future[Outcome]], progress: Progress, pool: ThreadPoolExecutor, *,
            block: bool) -> Iterator[Outcome]:  # fmt: skip
    """The outcomes of `storing` that are done (at least one when `block`), taken out of it.
    A store that raised (down, full: `StorageUnavailable`) raises here, after the uploads in
    flight ended and the inputs they stored were yielded: the run's report counts them."""
    if not storing:
        return
    done, _ = wait(storing, timeout=None if block else 0, return_when=FIRST_COMPLETED)
    if any(f.exception() is not None for f in done):
        pool.shutdown(wait=True, cancel_futures=True)
        done = {f for f in storing if f.done()}
    storing -= done
    failed = [f for f in done if not f.cancelled() and f.exception() is not None]
    for future in done - set(failed):
        if not future.cancelled():
            yield _finished(future.result(), progress)
    if failed:
        storing.clear()
        failed[0].result()  # raises the store's error


def publish_run(run: Run, outcomes: list[Outcome], *, complete: bool = True) -> Report:
    """Merge the outcomes not published yet into the collection as published now (other
    runs may have published since this one was planned), switch it, end the run, delete what
    dead runs left behind and superseded files past their grace period (see
    `catalog.publish`). A run with nothing to publish or remove writes nothing.

    `complete=False` (the run was interrupted): the outcomes are published the same way, and
    whatever else this run stored (an input stopped mid-upload) is removed now."""
    from byod.catalog import repair_root
    from byod.publishing import (
        collect_superseded_files,
        publish_pending,
        remove_dead_runs,
        remove_empty_collection,
    )

    report = run.report
    start = time.perf_counter()
    stores = publish_pending(run, outcomes)
    _add_seconds(report, "publish", start)
    if not run.published and not run.existing:
        # Every input rejected in a collection not published yet: no empty collection is
        # added to the root catalog (issue 12), and no folder is left for it.
        report.notes.append("no item to publish: the collection was not added")
    end_run(run, finished=complete)  # interrupted: its own leftovers go as a dead run's
    if not run.published and not run.existing:
        remove_empty_collection(stores.catalog, run.context.collection_id)
    try:
        if not run.published:  # a run killed before its root update is repaired by any run
            repair_root(stores.catalog)
        remove_dead_runs(stores, run.context, own=not complete)
        collect_superseded_files(stores, run.context)
    except Exception as exc:  # noqa: BLE001 - published: what is left, a later run removes
        log.warning("files of dead runs or superseded files not removed: %s", exc)
    report.rows.sort(key=lambda r: r.input)
    report.finished = datetime.now(UTC).isoformat()
    return report


def publish_progress(run: Run, outcomes: list[Outcome]) -> None:
    """Publish the outcomes not published yet while the run goes on (progress kept: a kill
    after this loses only what comes later); the run keeps its marker."""
    from byod.publishing import publish_pending

    start = time.perf_counter()
    publish_pending(run, outcomes)
    _add_seconds(run.report, "publish", start)


def _add_seconds(report: Report, step: str, start: float) -> None:
    """Add the seconds since `start` to the report's run-level `step` (publishes add up)."""
    report.seconds[step] = round(report.seconds.get(step, 0.0) + time.perf_counter() - start, 3)


def outcome_is_stored(context: RunContext, outcome: Outcome) -> bool:
    """Whether the COGs an outcome describes are still in the target, byte for byte, and
    were not stored by a run that died: an orchestrator's cached outcome must not publish an
    item for files replaced or deleted since (`storing.outcome_is_stored`)."""
    from byod.storing import outcome_is_stored as is_stored

    return is_stored(context, outcome)
