"""The ingest run: discover, skip what is unchanged, prepare in bounded workers, store, publish.

Knows no orchestrator and no terminal: progress goes to an optional `Progress` callback, the
outcome is a `Report`. The CLI and the Prefect flows are thin layers over `ingest`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import signal
import socket
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac

from byod.batches import is_small, run_in_batches
from byod.catalog import (
    RUNS,
    SUPERSEDED,
    CollectionInfo,
    Entry,
    asset_hrefs,
    collect_superseded,
    collection_entries,
    collection_key,
    new_version,
    publish,
    published_names,
    remove_file,
    repair_root,
    run_marker_key,
    version_of,
    versioned_key,
)
from byod.cog import cache_budget
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
from byod.items import Scene, SceneAsset, StoredFile, build_item
from byod.metadata import MetadataRules
from byod.reasons import Reason, RejectedInput
from byod.report import Report, Row, Status
from byod.runner import Done, run_bounded, sandbox_note
from byod.scenes import group
from byod.sources import (
    Candidate,
    Discovery,
    disambiguated_id,
    discover,
    discover_listing,
    file_sha256,
    fingerprint,
    item_id_for,
    slugify,
    source_root,
)
from byod.storage import Hold, Store, is_blob_url
from byod.stores import RunStores
from byod.work import Job, Prepared, PrepareResult, georef_sidecar_names, prepare
from byod.workspace import make_workdir

log = logging.getLogger(__name__)

# Bump when a change in byod alters what is written for the same input, so re-runs redo it.
RECIPE_VERSION = 1
FINGERPRINT_METADATA = "byod_fingerprint"
# A killed run's superseded-files list is the collector's to act on, not a leftover.
SUPERSEDED_PART = f"/{SUPERSEDED}/"
# Run markers this process holds (see `_register`), by (catalog root, marker key).
_HOLDS: dict[tuple[str, str], Hold] = {}


__all__ = ["ConfigurationError", "ingest", "plan_run", "process", "process_all", "publish_run"]


class Progress:
    """Callbacks for the edges to render; every method is optional to override."""

    def discovered(self, total: int) -> None: ...
    def stage(self, input: str, stage: str) -> None: ...
    def finished(self, row: Row) -> None: ...


@dataclass
class _Plan:
    candidate: Candidate
    item_id: str
    fingerprint: str
    previous: list[Entry]
    unreadable: str | None = None  # why the input could not be read for its fingerprint
    fingerprint_s: float = 0.0  # seconds its fingerprint took


@dataclass(frozen=True)
class RunContext:
    """What every step of a run needs; small, so it travels to tasks and Dask workers."""

    settings: IngestSettings
    collection_id: str
    version: str = ""  # this run's version: the folder its new files go to (catalog.py)
    # Opened once per process (byod.stores); None: opened from `settings` when first used.
    stores: RunStores = field(default=None, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.stores is None:
            object.__setattr__(self, "stores", RunStores(self.settings))


@dataclass
class WorkItem:
    """One input (a file or a multi-file scene) to convert, describe and store."""

    candidate: Candidate
    item_id: str
    fingerprint: str
    previous_ids: list[str]
    fingerprint_s: float = 0.0  # seconds its fingerprint took (the report's stage timings)


@dataclass
class Outcome:
    """What working on one input gave: its report row and its new items (as dicts)."""

    row: Row
    items: list[dict[str, Any]] = field(default_factory=list)
    replaced_ids: list[str] = field(default_factory=list)


@dataclass
class Run:
    """A planned run: decided rows (rejected at discovery, unchanged) and the work to do."""

    context: RunContext
    report: Report
    todo: list[WorkItem]
    existing: dict[str, Entry]  # the collection's items when planned (index columns)
    marker: str | None = None  # the run's marker in the catalog, held while it runs
    published: bool = False  # the catalog was switched to this run's items
    # --prune: inputs no longer in the source -> their item ids, removed by the first publish
    pruned: dict[str, list[str]] = field(default_factory=dict)
    flushed: set[str] = field(default_factory=set)  # inputs whose outcome was published
    last_publish: float = field(default_factory=time.monotonic)  # progress kept (ingest)


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
                    if _progress_due(run, outcomes):
                        with signals.shielded_block():  # a switch is short: it finishes
                            publish_progress(run, outcomes)
        except Interrupted:
            pass  # publish what was stored; `signals.received` says why the run ended
        except BaseException as exc:
            _end_run(run, finished=False)  # a dead run: the next run removes what it stored
            if isinstance(exc, Exception):
                raise _stopped(run, outcomes, exc) from exc
            raise
        signals.shielded = True  # publishing is short and leaves no mix: it finishes
        try:
            report = _publish_or_stop(run, outcomes, complete=signals.received is None)
        except Interrupted as exc:  # a second signal while publishing
            _end_run(run, finished=False)
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
    start = time.perf_counter()
    with storage_errors("planning (source, catalog and target)"):
        run = _plan_run(settings, progress or Progress())
    run.report.seconds["plan"] = round(time.perf_counter() - start, 3)
    return run


def _plan_run(settings: IngestSettings, progress: Progress) -> Run:
    stores = RunStores.open(settings)  # credentials and the region guard: once per run
    collection_id = _collection_id(settings)
    report = Report(settings.source, collection_id, stores.catalog.href("catalog.json"),
                    stores.target.href(""), storage=stores.decision,
                    region_overridden=stores.overridden)  # fmt: skip
    for store in (stores.catalog, stores.target):
        store.ensure_container()
        store.check_writable(collection_id)  # before converting anything: refuse, exit 2
    # The index's columns, not the item files: one read per month partition (issue 13).
    items = collection_entries(stores.catalog, collection_id)
    found = _discover(settings, stores.source)
    report.ignored, report.notes = found.ignored, found.notes
    if (note := sandbox_note()) is not None:  # workers not confined by the OS (runner)
        report.notes.append(note)
    progress.discovered(len(found.candidates) + len(found.problems))
    for problem in found.problems:
        _finish(report, progress, Row(problem.relpath, Status.REJECTED, reason=problem.reason,
                                      message=problem.message))  # fmt: skip
    todo = []
    plans = _plan(found.candidates, items, _recipe(settings), source_root(settings.source))
    listed = _listed(stores.target, collection_id, sum(1 for p in plans if p.previous))
    for plan in plans:
        if plan.unreadable is not None:  # the input's fault, not the store's: it alone fails
            row = Row(plan.candidate.relpath, Status.REJECTED, reason=Reason.UNREADABLE,
                      message=plan.unreadable)  # fmt: skip
            _finish(report, progress, row)
        elif plan.previous and _unchanged(plan, stores.target, listed):
            ids = [i.id for i in plan.previous]
            _finish(report, progress, Row(plan.candidate.relpath, Status.UNCHANGED, ids))
        else:
            previous = [i.id for i in plan.previous]
            todo.append(WorkItem(plan.candidate, plan.item_id, plan.fingerprint, previous,
                                 plan.fingerprint_s))  # fmt: skip
    pruned = _pruned(settings, found, items, report) if settings.prune else {}
    context = RunContext(settings, collection_id, new_version(), stores)
    # A run with nothing to convert or remove writes nothing, not even its marker.
    marker = _register(stores.catalog, context) if todo or pruned else None
    return Run(context, report, todo, items, marker, pruned=pruned)


def _pruned(settings: IngestSettings, found: Discovery, items: dict[str, Entry],
            report: Report) -> dict[str, list[str]]:  # fmt: skip
    """--prune: the published items whose input is no longer in the source, by input. None
    when discovery could not read part of the source (an unreadable folder, a link loop):
    its inputs would look gone."""
    blind = [p.relpath for p in found.problems if p.reason in _UNLISTED]
    if blind:
        shown = ", ".join(sorted(blind)[:3])
        report.notes.append(f"--prune skipped: {len(blind)} part(s) of the source could not "
                            f"be listed ({shown}); nothing removed")  # fmt: skip
        return {}
    root = source_root(settings.source)
    own = [e for e in items.values() if e.source is not None and e.source_root == root]
    if not found.candidates and not found.problems and items:
        # An emptied folder and a mistyped prefix look the same: never empty a collection.
        report.notes.append(f"--prune skipped: the source listed no input (a wrong folder or "
                            f"prefix?); the collection's {len(items)} item(s), {len(own)} of "
                            "them from this source, kept")  # fmt: skip
        return {}
    present = {c.relpath for c in found.candidates} | {p.relpath for p in found.problems}
    gone: dict[str, list[str]] = {}
    for entry in own:
        if entry.source not in present:
            gone.setdefault(str(entry.source), []).append(entry.id)
    # Items written before byod recorded their source: which source they came from is
    # unknown (another source may share the collection), so they are never pruned.
    unknown = sum(1 for e in items.values() if e.source is not None and e.source_root is None
                  and e.source not in present)  # fmt: skip
    if unknown:
        report.notes.append(f"--prune kept {unknown} item(s) whose input is not in the source "
                            "but which do not record their source (byod:source_root; written "
                            "by an older byod): remove them by hand if they are gone")  # fmt: skip
    return {source: sorted(ids) for source, ids in sorted(gone.items())}


# Discovery problems that hide inputs (what lies below was not listed): --prune stays off.
_UNLISTED = frozenset({Reason.UNREADABLE, Reason.SYMLINK_LOOP})


def _register(catalog: Store, context: RunContext) -> str:
    """Create and hold this run's marker before it stores anything: while it is held, no
    other run removes this run's files; once its holder is gone (finished, or killed, when
    the OS drops the lock or the Azure lease runs out) the files it left can be removed."""
    key = run_marker_key(context.collection_id, context.version)
    note = {"version": context.version, "source": context.settings.source,
            "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip
    _HOLDS[(catalog.root, key)] = catalog.hold(key, note)
    return key


def _end_run(run: Run, *, finished: bool) -> None:
    """Release the run's marker (finished) or only stop holding it (failed: the next run
    then removes the files this one stored and never published)."""
    if run.marker is None:
        return
    catalog = run.context.stores.catalog
    hold = _HOLDS.pop((catalog.root, run.marker), None)
    try:
        if hold is None:  # planned in another process (an orchestrator's worker)
            if finished:
                catalog.drop_hold(run.marker)
        elif finished:
            hold.release()
        else:
            hold.abandon()
    except Exception as exc:  # noqa: BLE001 - the marker is bookkeeping: the run is done
        log.warning("run marker %s not released: %s", run.marker, exc)


def process(context: RunContext, work: WorkItem) -> Outcome:
    """Convert, describe and store one input in a bounded worker process of its own."""
    stores = context.stores
    workdir = make_workdir()  # byod-<pid>-*: removed by the next run after a kill
    try:
        job = _job(work, context.settings, workdir, stores.source is None)
        fetched: dict[str, float] = {}
        (done,) = run_bounded(
            [(work.candidate.relpath, job)], prepare, workers=1,
            timeout_s=context.settings.timeout_s, max_memory_mb=context.settings.max_memory_mb,
            before_start=lambda job: _fetch_timed(fetched, job, work.candidate, stores.source),
        )  # fmt: skip
        return _outcome(done, work, context, stores.target, fetched.get(job.relpath, 0.0))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def process_all(run: Run, progress: Progress | None = None) -> Generator[Outcome, None, None]:
    """Every input of the run, `workers` at a time, each in its bounded worker process."""
    if not run.todo:  # a no-op run: no store opened, no temp folder made
        return
    progress = progress or Progress()
    settings, stores = run.context.settings, run.context.stores
    workdir = make_workdir()  # byod-<pid>-*: removed by the next run after a kill
    try:
        # GDAL threads per conversion: the cores shared by the conversions that run at once,
        # and GDAL's block cache: one budget shared by them (cog.cache_budget).
        at_once = max(1, min(settings.workers, len(run.todo)))
        threads = max(1, default_workers() // at_once)
        jobs = [(w.candidate.relpath, _job(w, settings, workdir, stores.source is None, threads,
                                           cache_budget(at_once)))
                for w in run.todo]  # fmt: skip
        by_path = {w.candidate.relpath: w for w in run.todo}
        fetched: dict[str, float] = {}
        # Small local inputs are worked on in batches, one worker per batch (byod.batches).
        outcomes = run_in_batches(
            jobs, prepare, small=is_small, workers=settings.workers,
            timeout_s=settings.timeout_s, max_memory_mb=settings.max_memory_mb,
            on_stage=progress.stage, before_start=lambda job: _fetch_timed(
                fetched, job, by_path[job.relpath].candidate, stores.source),
        )  # fmt: skip
        for done in outcomes:
            outcome = _outcome(done, by_path[done.job.relpath], run.context, stores.target,
                               fetched.get(done.job.relpath, 0.0))  # fmt: skip
            progress.finished(outcome.row)
            yield outcome
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _outcome(done: Done[Job, PrepareResult], work: WorkItem, context: RunContext,
             target: Store, fetch_s: float = 0.0) -> Outcome:  # fmt: skip
    row = Row(work.candidate.relpath, Status.REJECTED)
    stages = {"fingerprint": work.fingerprint_s, "fetch": fetch_s}
    start = time.perf_counter()
    try:
        if done.rejection is not None:
            raise done.rejection
        assert done.result is not None
        stages |= done.result.seconds
        new = _store(done.result, work, context, target)
    except RejectedInput as exc:
        row.reason, row.message = exc.reason, exc.message
        return Outcome(row)
    finally:
        shutil.rmtree(done.job.workdir, ignore_errors=True)
        if done.result is not None:
            stages["store"] = time.perf_counter() - start
        # The input's own seconds: fingerprint, fetch, its worker, store (no queueing).
        row.seconds = round(sum((work.fingerprint_s, fetch_s, done.seconds,
                                 stages.get("store", 0.0))), 3)  # fmt: skip
        row.stages = {k: round(v, 4) for k, v in stages.items()}
    row.status = Status.REPLACED if work.previous_ids else Status.INGESTED
    row.item_ids = sorted(i.id for i in new)
    row.notes = [*done.result.notes, *_scene_notes(done.result)]
    return Outcome(row, [i.to_dict(transform_hrefs=False) for i in new], work.previous_ids)


def outcome_is_stored(context: RunContext, outcome: Outcome) -> bool:
    """Whether the COGs an outcome describes are still in the target, byte for byte (by the
    blob's checksum metadata, or by hashing a local file), and were not stored by a run that
    died (whose files the next run removes): an orchestrator's cached outcome must not
    publish an item for files that were replaced or deleted since."""
    stores = context.stores
    target = stores.target
    for data in outcome.items:
        for asset in data.get("assets", {}).values():
            if "data" not in (asset.get("roles") or []):
                continue
            key = target.key_of(asset["href"])
            if key is None:
                return False
            version = version_of(key)
            if version and version != context.version:
                marker = run_marker_key(context.collection_id, version)
                if stores.catalog.exists(marker) and not stores.catalog.held(marker):
                    return False
            expected = str(asset.get("file:checksum", "")).removeprefix("1220")
            metadata = target.metadata(key)
            if metadata is not None:
                if metadata.get("byod_sha256") != expected:
                    return False
            elif not target.exists(key) or file_sha256(target.href(key)) != expected:
                return False
    return True


def publish_run(run: Run, outcomes: list[Outcome], *, complete: bool = True) -> Report:
    """Merge the outcomes not published yet into the collection as published now (other
    runs may have published since this one was planned), switch it, end the run, delete what
    dead runs left behind and superseded files past their grace period (see
    `catalog.publish`). A run with nothing to publish or remove writes nothing.

    `complete=False` (the run was interrupted): the outcomes are published the same way, and
    whatever else this run stored (an input stopped mid-upload) is removed now."""
    report = run.report
    start = time.perf_counter()
    stores = _publish_pending(run, outcomes)
    _add_seconds(report, "publish", start)
    if not run.published and not run.existing:
        # Every input rejected in a collection not published yet: no empty collection is
        # added to the root catalog (issue 12), and no folder is left for it.
        report.notes.append("no item to publish: the collection was not added")
    _end_run(run, finished=complete)  # interrupted: its own leftovers go as a dead run's
    if not run.published and not run.existing:
        _remove_empty_collection(stores.catalog, run.context.collection_id)
    try:
        if not run.published:  # a run killed before its root update is repaired by any run
            repair_root(stores.catalog)
        _remove_dead_runs(stores, run.context, own=not complete)
        _collect_superseded(stores, run.context)
    except Exception as exc:  # noqa: BLE001 - published: what is left, a later run removes
        log.warning("files of dead runs or superseded files not removed: %s", exc)
    report.rows.sort(key=lambda r: r.input)
    report.finished = datetime.now(UTC).isoformat()
    return report


def publish_progress(run: Run, outcomes: list[Outcome]) -> None:
    """Publish the outcomes not published yet while the run goes on (progress kept: a kill
    after this loses only what comes later); the run keeps its marker."""
    start = time.perf_counter()
    _publish_pending(run, outcomes)
    _add_seconds(run.report, "publish", start)


def _progress_due(run: Run, outcomes: list[Outcome]) -> bool:
    """Whether `publish_every_inputs` stored inputs wait, or `publish_every_s` seconds went
    by since the last publish with one waiting."""
    settings = run.context.settings
    waiting = sum(1 for o in outcomes if o.items and o.row.input not in run.flushed)
    if not waiting:
        return False
    elapsed = time.monotonic() - run.last_publish
    return waiting >= settings.publish_every_inputs or elapsed >= settings.publish_every_s


def _publish_pending(run: Run, outcomes: list[Outcome]) -> RunStores:
    """Publish the outcomes not published yet (and, the first time, what --prune removes);
    nothing is written when there is nothing to add or remove."""
    settings, report = run.context.settings, run.report
    pending = [o for o in outcomes if o.row.input not in run.flushed]
    new: dict[str, pystac.Item] = {}
    removed: set[str] = set()
    root = source_root(settings.source)  # which source an item is of (--prune, ids)
    for outcome in pending:
        if outcome.row not in report.rows:
            report.rows.append(outcome.row)
        new_ids = {d["id"] for d in outcome.items}
        for data in outcome.items:
            new[data["id"]] = item = pystac.Item.from_dict(data, migrate=False)  # keeps proj:epsg
            item.properties["byod:source_root"] = root
        removed |= set(outcome.replaced_ids) - new_ids
    pruned = run.pruned
    removed |= {i for ids in pruned.values() for i in ids}
    stores = run.context.stores
    run.last_publish = time.monotonic()
    if not new and not removed:
        run.flushed |= {o.row.input for o in pending}
        return stores
    info = CollectionInfo(
        id=run.context.collection_id,
        description=settings.description
        or f"Rasters ingested by byod from {_source_name(settings.source)}.",
        license=settings.license,
        title=settings.title,
        providers=tuple(settings.providers),
        keywords=tuple(settings.keywords),
    )
    _confirm_alive(run, stores, new)

    def switched() -> None:
        run.published = True

    try:
        done = publish(stores.catalog, info, new, removed, run.context.version, switched)
    except BaseException:
        _end_run(run, finished=False)  # the next run removes what this one left
        raise
    run.flushed |= {o.row.input for o in pending}
    run.pruned = {}
    for source, ids in pruned.items():
        _finish(report, Progress(), Row(source, Status.REMOVED, ids,
                                        message="no longer in the source (--prune)"))  # fmt: skip
    for outcome in pending:  # ids another run took meanwhile (see catalog.publish)
        row = outcome.row
        row.item_ids = sorted(done.renamed.get(i, i) for i in row.item_ids)
        if row.status is Status.INGESTED and set(row.item_ids) & set(done.replaced):
            row.status = Status.REPLACED  # another run published this input meanwhile
            row.notes.append("published meanwhile by another run; replaced")
    return stores


def _remove_empty_collection(catalog: Store, collection_id: str) -> None:
    """Remove the folders an all-rejected run's marker left (`_runs/`, the collection's),
    where they are empty and the collection was never published (local disks keep empty
    folders; blob prefixes vanish with their last blob)."""
    if not catalog.is_local or catalog.exists(collection_key(collection_id)):
        return
    for folder in (f"{collection_id}/{RUNS}", collection_id):
        with contextlib.suppress(OSError):  # not empty: another run is starting there
            os.rmdir(catalog.href(folder))


def _confirm_alive(run: Run, stores: RunStores, new: dict[str, pystac.Item]) -> None:
    """Refuse to publish items whose files are gone: when this run's marker was lost (an
    Azure lease not renewed for LEASE_SECONDS, or the run ended and this is a retry), other
    runs may have taken it for dead and removed its files, so every new asset is checked."""
    if run.marker is None:
        return
    catalog = stores.catalog
    hold = _HOLDS.get((catalog.root, run.marker))
    if hold.confirm() if hold is not None else catalog.held(run.marker):
        return
    for href in sorted(asset_hrefs(new.values())):
        key = stores.target.key_of(href)
        if key is None or not stores.target.exists(key):
            raise RunLost(
                f"{catalog.href(run.marker)}: this run's marker was lost and {href} is gone "
                "(removed as a dead run's file); nothing was published, run again"
            )


class RunLost(RunFailed):
    """The run's marker was lost before it published (see `_confirm_alive`): exit 3."""


def _collect_superseded(stores: RunStores, context: RunContext) -> None:
    """Delete what switches superseded, once past `superseded_grace_s` and once the run that
    switched is over (`catalog.collect_superseded`): this run's, and those of killed runs."""
    catalog, collection_id = stores.catalog, context.collection_id

    def running(version: str) -> bool:
        marker = run_marker_key(collection_id, version)
        return version != context.version and catalog.held(marker)

    deleted = collect_superseded(catalog, collection_id, (catalog, stores.target),
                                 context.settings.superseded_grace_s, running)  # fmt: skip
    if deleted:
        log.info("removed %d superseded file(s) past their grace period", len(deleted))


def _remove_dead_runs(stores: RunStores, context: RunContext, *, own: bool = False) -> None:
    """Delete the files of runs that died (their marker is no longer held) which the
    published collection does not point at: COGs, thumbnails, item and index versions,
    temp files (and this run's own, `own`: it was interrupted). Only files in a dead run's
    version folder are touched, so files another live run has stored but not yet published
    are safe. Marker temp files of runs killed while creating their marker go too."""
    catalog, collection_id = stores.catalog, context.collection_id
    markers = catalog.list_files(f"{collection_id}/_runs/")
    dead = {}
    for marker in markers:
        name = posixpath.basename(marker.key)
        if name.startswith(".") and name.endswith(".partial"):
            if not catalog.held(marker.key):  # its creator holds it locked until renamed
                _remove_quietly(catalog, marker.key)
            continue
        version = version_of(marker.key)
        if version and (own or version != context.version) and not catalog.held(marker.key):
            dead[version] = marker.key
    if not dead:
        return
    # What is published stays (a dead run may have published progress before it died):
    # asked per key and href of the index's columns, never by reading every item.
    names = published_names(catalog, collection_id)
    stores_ = {s.href(""): s for s in (catalog, stores.target)}
    for store in stores_.values():
        for info in store.list_files(f"{collection_id}/"):
            if version_of(info.key) not in dead or SUPERSEDED_PART in info.key:
                continue
            named = names.names_href(store.href(info.key)) or (
                store is catalog and names.names_key(info.key)
            )
            if not named and info.key not in dead.values():
                _remove_quietly(store, info.key)
    for key in dead.values():
        _remove_quietly(catalog, key)
    log.info("removed the unpublished files of %d dead run(s): %s", len(dead), sorted(dead))


def _remove_quietly(store: Store, key: str) -> None:
    """Delete a file no published item points at; a failure leaves an orphan, not a lie."""
    try:
        remove_file(store, key)
    except Exception as exc:  # noqa: BLE001 - storage trouble: log it, the run is published
        log.warning("%s: not removed (%s)", store.href(key), exc)


def _source_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] or url


def _collection_id(settings: IngestSettings) -> str:
    name = _source_name(settings.source)
    if not is_blob_url(settings.source):
        name = Path(settings.source).resolve().name
    collection_id = settings.collection or slugify(name)
    if slugify(collection_id) != collection_id:
        raise ConfigurationError(
            f"collection id {collection_id!r} is not URL-safe; try {slugify(collection_id)!r}"
        )
    return collection_id


def _discover(settings: IngestSettings, store: Store | None) -> Discovery:
    """Inputs of a folder or a blob prefix, band files grouped into scenes; a local target
    or catalog inside the source folder is not walked."""
    if store is None:
        outputs = [Path(p) for p in (settings.target, settings.catalog) if not is_blob_url(p)]
        found = discover(Path(settings.source), outputs)
    else:
        found = discover_listing((f.key, f.version) for f in store.list_files())
    found.candidates, notes = group(found.candidates, settings.group_pattern)
    found.notes += notes  # discovery's own notes (links not followed, duplicates) kept
    return found


def _fetch_timed(seconds: dict[str, float], job: Job, candidate: Candidate,
                 store: Store | None) -> None:  # fmt: skip
    """`_fetch`, its seconds kept in `seconds` by input (the report's `fetch` stage)."""
    start = time.perf_counter()
    try:
        _fetch(job, candidate, store)
    finally:
        seconds[job.relpath] = time.perf_counter() - start


def _fetch(job: Job, candidate: Candidate, store: Store | None) -> None:
    """Spool a remote input and its sidecars into the job's folder (streamed, bounded
    memory), under their own names so GDAL pairs the sidecars itself."""
    if store is None:
        return
    try:
        inputs = job.workdir / "input"
        for key in (candidate.path, *candidate.sidecars):
            (inputs / key).parent.mkdir(parents=True, exist_ok=True)
            store.get_file(key, inputs / key)
    except Exception as exc:  # noqa: BLE001 - a failing store ends the run, else this input
        failure = storage_failure(exc, f"reading the source {store.root}")
        if failure is not None:
            raise failure from None
        raise RejectedInput(
            Reason.UNREADABLE,
            f"{candidate.relpath}: could not be downloaded ({type(exc).__name__})",
        ) from None


def _recipe(settings: IngestSettings) -> str:
    """The options that change what is written for the same bytes, as part of the fingerprint."""
    return json.dumps(
        {
            "recipe": RECIPE_VERSION,
            "datetime": settings.datetime.isoformat() if settings.datetime else None,
            "datetime_pattern": settings.datetime_pattern,
            "group_pattern": settings.group_pattern,
            "datetime_order": settings.datetime_order,
            "cloud": [
                settings.cloud_cover,
                settings.cloud_rule,
                settings.cloud_band,
                settings.cloud_order,
            ],
            "compression": settings.compression,
        },
        sort_keys=True,
    )


def _plan(candidates: list[Candidate], items: dict[str, Entry], recipe: str,
          root: str | None = None) -> list[_Plan]:  # fmt: skip
    """Fingerprint every input (in threads: hashing releases the GIL) and give it an item id.

    An input keeps the id its item already has (an item of the same path below the same
    source `root`, or of unknown root); a new one takes the slug of its path, or the slug
    plus a hash of the path when another input or item holds that slug already (plus a hash
    of the root and the path when that is taken too: the same path in another source).
    """

    seconds: dict[str, float] = {}  # by input: the report's `fingerprint` stage

    def hashed(candidate: Candidate) -> str | OSError:
        start = time.perf_counter()
        try:
            return fingerprint(candidate, recipe)
        except OSError as exc:  # a file byod may not read (EACCES), or an I/O error
            return exc
        finally:
            seconds[candidate.relpath] = time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        prints = list(pool.map(hashed, candidates))
    by_source: dict[str, list[Entry]] = {}
    for item in items.values():
        if item.same_input(item.source, root):  # not another source's item of that path
            by_source.setdefault(str(item.source), []).append(item)
    taken = {item_id for item_id in items if item_id}
    plans = []
    for candidate, print_ in zip(candidates, prints, strict=True):
        previous = by_source.get(candidate.relpath, [])
        if isinstance(print_, OSError):
            message = f"{candidate.relpath}: cannot be read ({print_.strerror or print_})"
            plans.append(_Plan(candidate, "", "", previous, unreadable=message))
            continue
        own = {i.id for i in previous if i.subdataset is None}
        if own:
            item_id = next(iter(own))
        else:
            item_id = item_id_for(candidate.relpath)
            blocked = taken - {i.id for i in previous}
            if item_id in blocked:
                item_id = disambiguated_id(candidate.relpath)
            if item_id in blocked:
                item_id = disambiguated_id(candidate.relpath, root)
        taken.add(item_id)
        plans.append(_Plan(candidate, item_id, print_, previous,
                           fingerprint_s=seconds.get(candidate.relpath, 0.0)))  # fmt: skip
    return plans


def _listed(target: Store, collection_id: str, checks: int) -> dict[str, dict[str, str]] | None:
    """The collection's files in a blob target with their metadata, from one listing, when
    more than `LISTING_FROM` inputs have items to check: a HEAD per COG costs a round trip
    each, a listing one per 5,000 blobs. None (ask per file) for a local target or few checks.
    """
    if checks <= LISTING_FROM:
        return None
    return target.list_metadata(f"{collection_id}/")


# Above this many inputs with published items, _unchanged lists the target once.
LISTING_FROM = 20


def _unchanged(plan: _Plan, target: Store, listed: dict[str, dict[str, str]] | None = None
               ) -> bool:  # fmt: skip
    """Same fingerprint as the stored items, and their COGs are in the target (with the same
    fingerprint in the blob metadata, where the target keeps metadata; from `listed`, one
    listing of the target, when given)."""
    for item in plan.previous:
        if item.fingerprint != plan.fingerprint:
            return False
        for href in item.data_hrefs:
            key = target.key_of(href)
            if key is None:
                return False
            if listed is not None:
                metadata: dict[str, str] | None = listed.get(key)
                if metadata is None:
                    return False
            else:
                metadata = target.metadata(key)
                if metadata is None and not target.exists(key):
                    return False
            if metadata is not None and metadata.get(FINGERPRINT_METADATA) != plan.fingerprint:
                return False
    return True


def _cog_key(context: RunContext, item_id: str, asset: str = "data") -> str:
    """`<item>.tif` for a single raster's COG, `<item>_<band>.tif` for a scene's bands, in the
    run's version folder: a replacement never overwrites the bytes a published item
    describes."""
    suffix = "" if asset == "data" else f"_{slugify(asset)}"
    name = f"{item_id}{suffix}.tif"
    return versioned_key(context.collection_id, item_id, context.version, name)


def _job(
    plan: WorkItem,
    settings: IngestSettings,
    workdir: Path,
    source_is_local: bool,
    threads: int | None = None,
    cache_bytes: int | None = None,
) -> Job:
    folder = workdir / plan.item_id
    folder.mkdir()
    # A remote input is fetched into the job's folder by `_fetch` before its worker starts.
    (folder / "input").mkdir()

    def local(path: str) -> Path:
        # Keys keep their folders: two band files may share a name in different folders.
        return Path(path) if source_is_local else folder / "input" / path

    candidate = plan.candidate
    return Job(
        path=local(candidate.path),
        relpath=plan.candidate.relpath,
        item_id=plan.item_id,
        has_georef_sidecars=georef_sidecar_names(plan.candidate.sidecars),
        workdir=folder,
        rules=MetadataRules(
            datetime=settings.datetime,
            datetime_pattern=settings.datetime_pattern,
            datetime_order=settings.datetime_order,
            require_datetime=settings.require_datetime,
            cloud_cover=settings.cloud_cover,
            cloud_rule=settings.cloud_rule,
            cloud_band=settings.cloud_band,
            cloud_order=settings.cloud_order,
        ),
        metadata_paths=tuple(local(p) for p in candidate.metadata_files),
        mask_path=local(candidate.cloud_mask) if candidate.cloud_mask else None,
        user_metadata_path=local(candidate.user_metadata) if candidate.user_metadata else None,
        bands=tuple((band, local(path)) for band, path in candidate.bands),
        product=candidate.product,
        source_root=Path(settings.source).resolve() if source_is_local else None,
        disk_budget=None if settings.disk_budget_mb is None else settings.disk_budget_mb * 1024**2,
        workers=settings.workers,  # they share the temp disk (untrusted.check_disk)
        compression=settings.compression,
        # PITFALLS: parallel conversions with fewer threads each beat one with all threads.
        threads=threads or max(1, default_workers() // settings.workers),
        max_pixels=settings.max_pixels,
        cache_bytes=cache_bytes,
    )


def _store(
    result: PrepareResult, plan: WorkItem, context: RunContext, target: Store
) -> list[pystac.Item]:
    """Upload each scene's COGs and thumbnail to new keys (the run's version folder), then
    build its item (assets first, always)."""
    stored_keys: list[str] = []
    items = []
    try:
        for scene in result.scenes:
            parts = []
            for part in scene.assets:
                key = _cog_key(context, scene.item_id, part.key)
                # With the blob, so a re-run can tell an unchanged input without a download.
                metadata = {FINGERPRINT_METADATA: plan.fingerprint, "byod_sha256": part.cog.sha256}
                stored_keys.append(key)
                href = target.put_file(part.cog.path, key, metadata)
                stored = StoredFile(href, part.cog.size, part.cog.sha256)
                parts.append(SceneAsset(part.key, part.source_name, stored, part.raster,
                                        part.resolution, part.passthrough))  # fmt: skip
            thumb_key = versioned_key(context.collection_id, scene.item_id, context.version,
                                      f"{scene.item_id}-thumbnail.png")  # fmt: skip
            stored_keys.append(thumb_key)
            thumb_href = target.put_file(scene.thumbnail.path, thumb_key)
            thumbnail = StoredFile(thumb_href, scene.thumbnail.size, scene.thumbnail.sha256)
            items.append(_item(scene, plan, tuple(parts), thumbnail))
    except Exception as exc:  # noqa: BLE001 - OSError or an Azure error: this input fails alone
        failure = storage_failure(exc, f"storing to {target.root}")
        if failure is not None:  # the store is down or full: the run ends (what it stored
            raise failure from None  # is removed by the next run, see `_end_run`)
        for key in stored_keys:  # new keys only: the published version stays whole
            _remove_quietly(target, key)
        raise RejectedInput(
            Reason.STORAGE_FAILED,
            f"{plan.candidate.relpath}: could not store ({type(exc).__name__}: {exc})",
        ) from None
    return items


def _item(
    scene: Prepared, plan: WorkItem, assets: tuple[SceneAsset, ...], thumbnail: StoredFile
) -> pystac.Item:
    item = build_item(
        Scene(
            item_id=scene.item_id,
            source=plan.candidate.relpath,
            fingerprint=plan.fingerprint,
            acquisition=scene.acquisition,
            footprint=scene.footprint,
            assets=assets,
            thumbnail=thumbnail,
            clouds=scene.clouds.chosen,
            product=scene.product,
        )
    )
    if scene.subdataset is not None:
        item.properties["byod:subdataset"] = scene.subdataset
    return item


def _scene_notes(result: PrepareResult) -> list[str]:
    """Why a scene has no cloud cover, or which cloud sources disagreed (values kept)."""
    notes = []
    for scene in result.scenes:
        prefix = f"{scene.item_id}: " if len(result.scenes) > 1 else ""
        notes += [prefix + n for n in scene.notes]
        if scene.clouds.note:
            notes.append(prefix + scene.clouds.note)
    return notes


def _finish(report: Report, progress: Progress, row: Row) -> None:
    report.rows.append(row)
    progress.finished(row)


def _add_seconds(report: Report, step: str, start: float) -> None:
    """Add the seconds since `start` to the report's run-level `step` (publishes add up)."""
    report.seconds[step] = round(report.seconds.get(step, 0.0) + time.perf_counter() - start, 3)
