"""Planning a run: discover the inputs, fingerprint them, give them item ids, settle what
is unchanged, and what --prune removes. Writes nothing but the run's marker (and only when
there is something to do)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from byod.catalog import (
    Entry,
    collection_entries,
)
from byod.config import IngestSettings, default_workers
from byod.errors import ConfigurationError
from byod.keys import FINGERPRINT_METADATA, ROOT_KEY, new_version
from byod.locations import source_name
from byod.markers import register_run
from byod.reasons import Reason
from byod.report import Report, Row, Status
from byod.runner import sandbox_note
from byod.runs import Progress, Run, RunContext, WorkItem, finish_row
from byod.scenes import group
from byod.sources import (
    MAX_ID_LENGTH,
    Candidate,
    Discovery,
    disambiguated_id,
    discover,
    discover_listing,
    fingerprint,
    item_id_for,
    path_hash,
    slugify,
    source_root,
)
from byod.storage import Store
from byod.stores import RunStores

# Bump when a change in byod alters what is written for the same input, so re-runs redo it.
RECIPE_VERSION = 1


@dataclass
class _Plan:
    candidate: Candidate
    item_id: str
    fingerprint: str
    previous: list[Entry]
    unreadable: str | None = None  # why the input could not be read for its fingerprint
    fingerprint_s: float = 0.0  # seconds its fingerprint took


def new_run(settings: IngestSettings, progress: Progress) -> Run:
    """`pipeline.plan_run`'s work: open the stores (once for the run), refuse what cannot be
    written, read the collection's entries, discover and fingerprint the inputs, settle the
    unchanged ones and what --prune removes, and hold the run's marker when there is work."""
    stores = RunStores.open(settings)  # credentials and the region guard: once per run
    collection_id = _collection_id(settings)
    report = Report(settings.source, collection_id, stores.catalog.href(ROOT_KEY),
                    stores.target.href(""), storage=stores.decision,
                    region_overridden=stores.overridden)  # fmt: skip
    for store in (stores.catalog, stores.target):
        store.ensure_container()
        store.check_writable(collection_id)  # before converting anything: refuse, exit 2
    # The index's columns, not the item files: one read per month partition (issue 13).
    items = collection_entries(stores.catalog, collection_id)
    found = _discover(settings, stores)
    report.ignored, report.notes = found.ignored, found.notes
    if (note := sandbox_note()) is not None:  # workers not confined by the OS (runner)
        report.notes.append(note)
    progress.discovered(len(found.candidates) + len(found.problems))
    for problem in found.problems:
        row = Row(problem.relpath, Status.REJECTED, reason=problem.reason,
                  message=problem.message)  # fmt: skip
        finish_row(report, progress, row)
    todo = []
    plans = _plan(found.candidates, items, _recipe(settings), source_root(settings.source))
    listed = _listed(stores.target, collection_id, sum(1 for p in plans if p.previous))
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
                                 plan.fingerprint_s))  # fmt: skip
    pruned = _pruned(settings, found, items, report) if settings.prune else {}
    context = RunContext(settings, collection_id, new_version(), stores)
    # A run with nothing to convert or remove writes nothing, not even its marker.
    marker = register_run(stores.catalog, context) if todo or pruned else None
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
