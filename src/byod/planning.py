"""Planning a run: discover the inputs, fingerprint them, give them item ids, settle what
is unchanged, and what --prune removes. Writes nothing but the run's marker (and only when
there is something to do)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byod.catalog import Entry, Layout, collection_entries, read_layout
from byod.config import IngestSettings, default_workers
from byod.errors import ConfigurationError
from byod.keys import FINGERPRINT_METADATA, ROOT_KEY, new_version
from byod.locations import source_name
from byod.markers import register_run
from byod.reasons import Reason
from byod.report import Report, Row, Status
from byod.runs import Hashed, Progress, Run, RunContext, WorkItem, finish_row
from byod.scenes import group
from byod.sources import (
    MAX_ID_LENGTH,
    Candidate,
    Discovery,
    FileStat,
    disambiguated_id,
    discover,
    discover_listing,
    file_stats,
    fingerprint,
    item_id_for,
    path_hash,
    settled,
    slugify,
    source_root,
    stat_signature,
)
from byod.storage import REQUESTS_AT_ONCE, UPDATE_ATTEMPTS, Store
from byod.stores import RunStores

log = logging.getLogger(__name__)

# Bump when a change in byod alters what is written for the same input, so re-runs redo it.
RECIPE_VERSION = 1


@dataclass
class _Plan:
    candidate: Candidate
    item_id: str
    fingerprint: str | Future[Hashed]  # a Future: hashed while workers convert
    previous: list[Entry]
    unreadable: str | None = None  # why the input could not be read for its fingerprint
    fingerprint_s: float = 0.0  # seconds its fingerprint took
    stat: str | None = None  # its files' stat signature, when it may be trusted next run


def new_run(settings: IngestSettings, progress: Progress) -> Run:
    """`pipeline.plan_run`'s work: open the stores (once for the run), refuse what cannot be
    written, discover the inputs, read the collection's entries of those (`planned_entries`),
    fingerprint them (a new local input's in a thread while the workers convert: `_plan`),
    settle the unchanged ones and what --prune removes, and hold the run's marker when there
    is work."""
    stores = RunStores.open(settings)  # credentials and the region guard: once per run
    collection_id = _collection_id(settings)
    report = Report(settings.source, collection_id, stores.catalog.href(ROOT_KEY),
                    stores.target.href(""), storage=stores.decision,
                    region_overridden=stores.overridden)  # fmt: skip
    for store in (stores.catalog, stores.target):
        store.ensure_container()
        store.check_writable(collection_id)  # before converting anything: refuse, exit 2
    found = _discover(settings, stores)
    # The index's columns, not the item files; only the rows of the inputs found, but every
    # row for --prune (what is gone from the source).
    sources = {c.relpath for c in found.candidates}
    # --prune: every row; the stat signatures of the inputs found, for a local source only
    # (a blob's inputs are compared by their listing's versions, never read).
    items = planned_entries(stores.catalog, collection_id, sources, all_rows=settings.prune,
                            with_stats=stores.source is None)  # fmt: skip
    report.ignored, report.notes = found.ignored, found.notes
    progress.discovered(len(found.candidates) + len(found.problems))
    for problem in found.problems:
        row = Row(problem.relpath, Status.REJECTED, reason=problem.reason,
                  message=problem.message)  # fmt: skip
        finish_row(report, progress, row)
    todo = []
    plans = _plan(found.candidates, items, _recipe(settings), source_root(settings.source),
                  report.notes, items.ids, items.stats)  # fmt: skip
    listed = _listed(stores.target, collection_id, sum(1 for p in plans if p.previous),
                     len(items.ids))  # fmt: skip
    for plan in plans:
        if plan.unreadable is not None:  # the input's fault, not the store's: it alone fails
            row = Row(plan.candidate.relpath, Status.REJECTED, reason=Reason.UNREADABLE,
                      message=plan.unreadable)  # fmt: skip
            finish_row(report, progress, row)
        elif plan.previous and _unchanged(plan, stores.target, listed):
            ids = [i.id for i in plan.previous]
            finish_row(report, progress, Row(plan.candidate.relpath, Status.UNCHANGED, ids))
        else:
            previous = [i.id for i in plan.previous]
            todo.append(WorkItem(plan.candidate, plan.item_id, plan.fingerprint, previous,
                                 plan.fingerprint_s, plan.stat))  # fmt: skip
    pruned = _pruned(settings, found, items, report) if settings.prune else {}
    report.notes += _other_sources_notes(todo, items, source_root(settings.source))
    fields = _changed_fields(settings, collection_id, items.fields)
    if fields:
        report.notes.append(f"collection {collection_id}: {', '.join(fields)} changed; "
                            "published")  # fmt: skip
    if todo:  # workers will run: their forkserver starts now, and a note if not confined
        from byod.runner import sandbox_note, start_forkserver

        # Its start (a Python importing GDAL, 0.5 s) runs on another core while this process
        # imports GDAL and the item builder before its first worker (issue 13: add one).
        start_forkserver()
        if (note := sandbox_note()) is not None:
            report.notes.append(note)
    context = RunContext(settings, collection_id, new_version(), stores)
    log.debug("planned %s: %d input(s) found, %d to convert, %d to remove, of %d item(s)",
              collection_id, len(found.candidates), len(todo), len(pruned),
              len(items.ids))  # fmt: skip
    # A run with nothing to convert, remove or change writes nothing, not even its marker.
    marker = register_run(stores.catalog, context) if todo or pruned or fields else None
    return Run(context, report, todo, items, marker, pruned=pruned, fields_changed=bool(fields))


class PlannedEntries(dict[str, Entry]):
    """The collection's items planning read (by id): those of the inputs found, or all of
    them (`planned_entries`). True when the collection has any item, read or not; `ids`
    are those of all its items, `stats` the stat signatures (`byod:stat`) of those read that
    record one, by id."""

    def __init__(self, entries: dict[str, Entry], ids: Iterable[str] | None = None,
                 stats: dict[str, str] | None = None, layout: Layout | None = None
                 ) -> None:  # fmt: skip
        super().__init__(entries)
        self.ids = frozenset(entries if ids is None else ids)
        self.stats = stats or {}
        # The collection's own fields as published; None: no collection.json.
        self.fields = None if layout is None or layout.text is None else layout.fields

    def __bool__(self) -> bool:
        return bool(self.ids)


def planned_entries(store: Store, collection_id: str, sources: set[str] | None,
                    all_rows: bool = False, with_stats: bool = True
                    ) -> PlannedEntries:  # fmt: skip
    """The published items whose input (`byod:source`) is among `sources`, by id, and the
    ids of all (`index.read_entries_of`: the other rows cost their ids only); every item
    when `sources` is None or `all_rows` (`catalog.collection_entries`; then the stat
    signatures of the items of `sources`, when `with_stats`, come from a second read of their
    rows, kept only where the fingerprint is the same in both). A partition deleted by
    another run's switch meanwhile: `collection.json` is read again. Raises
    FileNotFoundError when a partition the current `collection.json` names is missing."""
    if sources is None or all_rows:
        entries = collection_entries(store, collection_id)
        layout = read_layout(store, collection_id)  # (its fields; a local read, one GET)
        if not (sources and with_stats and entries):
            return PlannedEntries(entries, layout=layout)
        part = planned_entries(store, collection_id, sources)
        same = {i: s for i, s in part.stats.items()
                if i in entries and entries[i].fingerprint == part[i].fingerprint}  # fmt: skip
        return PlannedEntries(entries, stats=same, layout=layout)
    from byod.index import read_entries_of

    for attempt in range(UPDATE_ATTEMPTS):
        layout = read_layout(store, collection_id)
        if layout.legacy is not None:  # the layout before months: items, not partitions
            every = collection_entries(store, collection_id, layout)
            return PlannedEntries({i: e for i, e in every.items() if e.source in sources}, every,
                                  layout=layout)  # fmt: skip
        pages = {m.index: page for page, m in layout.months.items()}
        keys = sorted(pages, key=pages.__getitem__)  # in page order, as collection_entries
        try:
            found, ids = read_entries_of(store, keys, sources)
        except FileNotFoundError:
            if attempt + 1 == UPDATE_ATTEMPTS or read_layout(store, collection_id).text == (
                    layout.text):  # fmt: skip
                raise
            continue
        entries = {i: Entry(i, e.source, e.fingerprint, e.subdataset, e.version, pages[key],
                            tuple(e.data_hrefs), tuple(e.hrefs), None, e.source_root)
                   for i, (e, key) in found.items()}  # fmt: skip
        stats = {i: e.stat for i, (e, _) in found.items() if e.stat}
        return PlannedEntries(entries, ids, stats, layout)
    raise AssertionError("unreachable")  # the last attempt returns or raises


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
    unlisted = tuple(f"{folder}/" for folder in found.outputs)  # byod's own, not walked
    gone: dict[str, list[str]] = {}
    for entry in own:
        if entry.source not in present and not str(entry.source).startswith(unlisted):
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


def _changed_fields(settings: IngestSettings, collection_id: str,
                    published: dict[str, Any] | None) -> list[str]:  # fmt: skip
    """The collection's own fields the run was given (on the command line, in byod.yaml,
    by the flow: pydantic's `model_fields_set`) that differ from the published collection's;
    none when there is no collection yet (its first items publish them)."""
    if published is None:
        return []
    from byod.catalog import changed_fields
    from byod.publishing import collection_info

    info = collection_info(settings, collection_id)
    return changed_fields(info, published, settings.model_fields_set)


def _other_sources_notes(todo: list[WorkItem], items: dict[str, Entry], root: str | None,
                         shown: int = 3) -> list[str]:  # fmt: skip
    """Notes on new inputs whose paths have items of another source in the collection: the
    same folder moved or renamed is another source (README, "Re-runs are incremental"), so
    its items stay and this run adds its own beside them. One note per other source, the
    first `shown` of them."""
    new = {w.candidate.relpath for w in todo if not w.previous_ids}
    others: dict[str, set[str]] = {}
    for entry in items.values():
        if entry.source in new and entry.source_root not in (None, root):
            others.setdefault(str(entry.source_root), set()).add(str(entry.source))
    return [f"{len(paths)} new input(s) have the paths of items of another source, {other} "
            f"(e.g. {min(paths)}): a moved or renamed folder is another source; its items "
            "stay, and this run adds items beside them"
            for other, paths in sorted(others.items())[:shown]]  # fmt: skip


def _collection_id(settings: IngestSettings) -> str:
    """The run's collection id: `settings.collection`, else the slug of the source's name
    (cut to MAX_ID_LENGTH with a hash, as item ids). It names a folder or blob prefix and
    export's `<id>.parquet`, so it is URL-safe and at most MAX_ID_LENGTH characters (a
    255-byte file name must hold it). Raises ConfigurationError for one given otherwise."""
    if settings.collection is None:
        slug = slugify(source_name(settings.source))
        if len(slug) <= MAX_ID_LENGTH:
            return slug
        return f"{slug[: MAX_ID_LENGTH - 9].rstrip('-._')}-{path_hash(slug)}"
    collection_id = settings.collection
    if slugify(collection_id) != collection_id:
        raise ConfigurationError(
            f"collection id {collection_id!r} is not URL-safe; try {slugify(collection_id)!r}"
        )
    if len(collection_id) > MAX_ID_LENGTH:
        raise ConfigurationError(f"collection id of {len(collection_id)} characters; at most "
                                 f"{MAX_ID_LENGTH} (it names folders and files)")  # fmt: skip
    return collection_id


def _discover(settings: IngestSettings, stores: RunStores) -> Discovery:
    """Inputs of a folder or a blob prefix, band files grouped into scenes; a local target
    or catalog inside the source folder is not walked."""
    if stores.source is None:  # a folder of this machine
        outputs = [stores.target.local_path(""), stores.catalog.local_path("")]
        found = discover(Path(settings.source), [p for p in outputs if p is not None])
    else:
        found = discover_listing((f.key, f.version) for f in stores.source.list_files())
    found.candidates, notes = group(found.candidates, settings.group_pattern)
    found.notes += notes  # discovery's own notes (links not followed, duplicates) kept
    return found


def _recipe(settings: IngestSettings) -> str:
    """The options that change what is written for the same bytes, as part of the fingerprint."""
    # The keys predate the time/clouds sections: kept, so earlier runs' fingerprints match.
    return json.dumps(
        {
            "recipe": RECIPE_VERSION,
            "datetime": settings.time.datetime.isoformat() if settings.time.datetime else None,
            "datetime_pattern": settings.time.pattern,
            "group_pattern": settings.group_pattern,
            "datetime_order": settings.time.order,
            "cloud": [
                settings.clouds.cover,
                settings.clouds.rule,
                settings.clouds.band,
                settings.clouds.order,
            ],
            "compression": settings.compression,
        },
        sort_keys=True,
    )


def _plan(candidates: list[Candidate], items: dict[str, Entry], recipe: str,
          root: str | None = None, notes: list[str] | None = None,
          ids: Iterable[str] | None = None, stats: dict[str, str] | None = None
          ) -> list[_Plan]:  # fmt: skip
    """Fingerprint the inputs and give each an item id.

    A local input whose published items all record the stat signature its files have now
    (`stats`, by item id: `byod:stat`, sources.stat_signature) is not read: its fingerprint
    is theirs. Any other input with a published item is hashed now (in threads: hashing
    releases the GIL), since whether it is unchanged depends on it; its signature is kept
    when its stat did not change while it was hashed and its files last changed RACY_NS
    before (`sources.settled`). A new local input only needs its hash when
    its item is stored: it is hashed in a thread of this process while the workers convert
    (`_Hasher`; its `_Plan.fingerprint` is a Future), after a check that it can be opened.
    `notes` (the report's) receives a line for an input that changed while it was hashed;
    None hashes every input now. `ids` are those of every item of the collection (when
    `items` holds only those of the inputs found, `planned_entries`).

    An input keeps the id its item already has (an item of the same path below the same
    source `root`, or of unknown root); a new one takes the slug of its path, or the slug
    plus a hash of the path when another input or item holds that slug already (plus a hash
    of the root and the path when that is taken too: the same path in another source).
    """
    by_source: dict[str, list[Entry]] = {}
    for item in items.values():
        if item.same_input(item.source, root):  # not another source's item of that path
            by_source.setdefault(str(item.source), []).append(item)
    later = notes is not None
    now = [c for c in candidates if not (later and _deferrable(c, by_source))]
    seconds: dict[str, float] = {}  # by input: the report's `fingerprint` stage

    recorded = stats or {}
    signatures: dict[str, str | None] = {}  # by input: what its new items record

    def unread(candidate: Candidate) -> str | None:
        """Its items' fingerprint when its files stat as they recorded (nothing read)."""
        previous = by_source.get(candidate.relpath, [])
        if candidate.versions or not any(i.id in recorded for i in previous):
            return None
        start = time.perf_counter()
        try:
            signature = stat_signature(candidate, recipe, file_stats(candidate))
        except OSError:
            return None  # hashed below, which reports what cannot be read
        known = _recorded(previous, recorded, signature)
        if known is not None:
            signatures[candidate.relpath] = signature
            seconds[candidate.relpath] = time.perf_counter() - start
        return known

    def hashed(candidate: Candidate) -> str | OSError:
        start = time.perf_counter()
        try:
            if candidate.versions:  # a blob's: from its listing, nothing read
                return fingerprint(candidate, recipe)
            taken = time.time_ns()
            before = file_stats(candidate)
            value = fingerprint(candidate, recipe)
            kept = file_stats(candidate) == before and settled(before, taken)
            signatures[candidate.relpath] = (stat_signature(candidate, recipe, before)
                                             if kept else None)  # fmt: skip
            return value
        except OSError as exc:  # a file byod may not read (EACCES), or an I/O error
            return exc
        finally:
            seconds[candidate.relpath] = time.perf_counter() - start

    prints: dict[str, str | OSError | Future[Hashed]] = {}
    for candidate in now:  # one by one: a few stat calls cost less than a task of the pool
        if (known := unread(candidate)) is not None:
            prints[candidate.relpath] = known
    rest = [c for c in now if c.relpath not in prints]
    if rest:
        with ThreadPoolExecutor(max_workers=default_workers()) as pool:
            prints |= zip((c.relpath for c in rest), pool.map(hashed, rest), strict=True)
    deferred = [c for c in candidates if c.relpath not in prints]
    if deferred:
        hasher = _Hasher(recipe, notes if notes is not None else [])
        for candidate in deferred:
            prints[candidate.relpath] = hasher.submit(candidate)
        hasher.start()
    taken = {item_id for item_id in (items if ids is None else ids) if item_id}
    plans = []
    for candidate in candidates:
        previous = by_source.get(candidate.relpath, [])
        print_ = prints[candidate.relpath]
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
                           fingerprint_s=seconds.get(candidate.relpath, 0.0),
                           stat=signatures.get(candidate.relpath)))  # fmt: skip
    return plans


def _recorded(previous: list[Entry], stats: dict[str, str], signature: str) -> str | None:
    """The fingerprint of the items `previous` when all record the stat signature
    `signature` (and one fingerprint); None when the input must be hashed."""
    prints = {i.fingerprint for i in previous}
    if len(prints) != 1 or any(stats.get(i.id) != signature for i in previous):
        return None
    return prints.pop()


def _deferrable(candidate: Candidate, by_source: dict[str, list[Entry]]) -> bool:
    """A local input with no published item: its hash is not needed before it is stored."""
    return not candidate.versions and not by_source.get(candidate.relpath)


class _Hasher:
    """Fingerprints of new local inputs, computed one after the other (in the order the
    workers take them) in a daemon thread of the parent while the workers convert: hashing
    releases the GIL, and a daemon thread does not hold up the exit of an interrupted run.

    `submit` first checks that each file opens (an unreadable input is rejected at planning,
    as when it is hashed then: returns the OSError) and records its stat (sources.file_stats);
    `start` starts hashing. A file whose stat differs after hashing changed while it was
    ingested, so its fingerprint becomes one no input hashes to (`changed_fingerprint`):
    the next run ingests it again, and `notes` says so. A read error while hashing is
    treated the same way. The stat signature comes with the fingerprint when the stat did
    not change and the files had settled (`sources.settled`) when it was taken.
    """

    def __init__(self, recipe: str, notes: list[str]) -> None:
        self.recipe = recipe
        self.notes = notes
        self.jobs: list[tuple[Candidate, _Taken, Future[Hashed]]] = []

    def submit(self, candidate: Candidate) -> Future[Hashed] | OSError:
        try:
            taken = time.time_ns()
            for path in (candidate.path, *candidate.sidecars):
                with open(path, "rb"):  # readable by this process, not only stat-able
                    pass
            stats = file_stats(candidate)
        except OSError as exc:
            return exc
        future: Future[Hashed] = Future()
        self.jobs.append((candidate, (taken, stats), future))
        return future

    def start(self) -> None:
        if self.jobs:
            threading.Thread(target=self._work, args=(self.jobs,), name="byod-fingerprint",
                             daemon=True).start()  # fmt: skip

    def _work(self, jobs: list[tuple[Candidate, _Taken, Future[Hashed]]]) -> None:
        for candidate, (taken, stats), future in jobs:
            start = time.perf_counter()
            signature = None
            try:
                value = fingerprint(candidate, self.recipe)
                why = None if file_stats(candidate) == stats else "changed while it was ingested"
            except OSError as exc:
                value, why = "", f"could not be read for its fingerprint ({exc.strerror or exc})"
            except BaseException as exc:  # noqa: BLE001 - whoever reads it gets the error
                future.set_exception(exc)
                continue
            if why is not None:
                value = changed_fingerprint(value)
                self.notes.append(f"{candidate.relpath}: {why}; the next run ingests it again")
            elif settled(stats, taken):
                signature = stat_signature(candidate, self.recipe, stats)
            future.set_result((value, time.perf_counter() - start, signature))


# When the stat was taken (time.time_ns(), just before) and the files' stat then.
_Taken = tuple[int, tuple[FileStat, ...]]


def changed_fingerprint(value: str) -> str:
    """The fingerprint recorded for an input that changed while it was hashed (or could not
    be read): sha256 hex like any other, but of a marker and the hash, so it never equals
    what `sources.fingerprint` gives for the file as it is: the next run re-ingests it."""
    return hashlib.sha256(b"byod: changed while hashed\0" + value.encode()).hexdigest()


def _listed(target: Store, collection_id: str, checks: int, items: int
            ) -> dict[str, dict[str, str]] | None:  # fmt: skip
    """The collection's files in a blob target with their metadata, from one listing, when
    more than `LISTING_FROM` inputs have items to check and the listing takes no more round
    trips than their HEADs: a listing returns `LIST_PAGE` blobs a request, one after the
    other (a collection of `items` items holds at least 2 blobs each: a COG, a thumbnail),
    the HEADs go `REQUESTS_AT_ONCE` at a time. At 100,000 items 21 inputs to check listed
    200,000 blobs: 41 requests on Azure, 152 s on Azurite, against 3 rounds of HEADs.
    None (ask per file) for a local target or few checks."""
    if checks <= LISTING_FROM:
        return None
    if math.ceil(2 * items / LIST_PAGE) > math.ceil(checks / REQUESTS_AT_ONCE):
        return None
    return target.list_metadata(f"{collection_id}/")


# Above this many inputs with published items, _unchanged may list the target once.
LISTING_FROM = 20
LIST_PAGE = 5000  # blobs a List Blobs request returns at most (Azure's maxresults)


def _unchanged(plan: _Plan, target: Store, listed: dict[str, dict[str, str]] | None = None
               ) -> bool:  # fmt: skip
    """Same fingerprint as the stored items, and their COGs are in the target (with the same
    fingerprint in the blob metadata, where the target keeps metadata; from `listed`, one
    listing of the target, when given)."""
    expected = plan.fingerprint
    assert isinstance(expected, str)  # an input with items is hashed at planning
    for item in plan.previous:
        if item.fingerprint != expected:
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
            if metadata is not None and metadata.get(FINGERPRINT_METADATA) != expected:
                return False
    return True
