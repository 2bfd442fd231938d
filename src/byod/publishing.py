"""Publishing a run's outcomes: merged into the collection as published now
(`catalog.publish`), the run's marker checked first, then the clean-up that follows a switch:
files of dead runs and superseded files past their grace period."""

from __future__ import annotations

import logging
import posixpath
import time
from typing import TYPE_CHECKING, Any

from byod.catalog import (
    COLLECTION_FIELDS,
    CollectionInfo,
    asset_hrefs,
    collect_superseded,
    publish,
    published_names,
    remove_quietly,
)
from byod.keys import (
    collection_key,
    is_superseded_list,
    run_marker_key,
    runs_folder,
    version_of,
)
from byod.locations import source_name
from byod.markers import HOLDS, end_run
from byod.report import Row, Status
from byod.runs import Outcome, Progress, Run, RunContext, RunLost, finish_row
from byod.sources import source_root
from byod.storage import Store
from byod.stores import RunStores

if TYPE_CHECKING:  # imported where items are built: a no-op builds none
    import pystac

    from byod.config import IngestSettings

log = logging.getLogger(__name__)


def publish_pending(run: Run, outcomes: list[Outcome]) -> RunStores:
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
            report.notes += outcome.notes
        new_ids = {d["id"] for d in outcome.items}
        for data in outcome.items:
            new[data["id"]] = item = _item(data)
            item.properties["byod:source_root"] = root
        removed |= set(outcome.replaced_ids) - new_ids
    pruned = run.pruned
    removed |= {i for ids in pruned.values() for i in ids}
    stores = run.context.stores
    run.last_publish = time.monotonic()
    if not new and not removed and not run.fields_changed:
        run.flushed |= {o.row.input for o in pending}
        return stores
    info = collection_info(settings, run.context.collection_id)
    _confirm_alive(run, stores, new)

    def switched() -> None:
        run.published = True

    try:
        done = publish(stores.catalog, info, new, removed, run.context.version, switched)
    except BaseException:
        end_run(run, finished=False)  # the next run removes what this one left
        raise
    run.flushed |= {o.row.input for o in pending}
    run.pruned = {}
    run.fields_changed = False
    for source, ids in pruned.items():
        row = Row(source, Status.REMOVED, ids, message="no longer in the source (--prune)")
        finish_row(report, Progress(), row)
    for outcome in pending:  # ids another run took meanwhile (see catalog.publish)
        row = outcome.row
        row.item_ids = sorted(done.renamed.get(i, i) for i in row.item_ids)
        if row.status is Status.INGESTED and set(row.item_ids) & set(done.replaced):
            row.status = Status.REPLACED  # another run published this input meanwhile
            row.notes.append("published meanwhile by another run; replaced")
    return stores


def collection_info(settings: IngestSettings, collection_id: str) -> CollectionInfo:
    """The collection's own fields as the run's settings give them (a description by
    default naming the source), with those it was given (`CollectionInfo.given`: the
    others keep their published values)."""
    description = settings.description or (
        f"Rasters ingested by byod from {source_name(settings.source)}."
    )
    given = frozenset(settings.model_fields_set & set(COLLECTION_FIELDS))
    return CollectionInfo(id=collection_id, description=description, license=settings.license,
                          title=settings.title, providers=tuple(settings.providers),
                          keywords=tuple(settings.keywords), given=given)  # fmt: skip


def import_ahead() -> None:
    """Import what publishing needs (pystac; the index's writer, `index.import_writer`)
    while the caller would wait anyway: 0.3-0.4 s of a run of one input, which imported
    them after its conversion."""
    import pystac  # noqa: F401

    from byod.index import import_writer

    import_writer()


def _item(data: dict[str, Any]) -> pystac.Item:
    import pystac  # here: a no-op builds no item, and pystac is a tenth of its time

    return pystac.Item.from_dict(data, migrate=False)  # migrate=False keeps proj:epsg


def remove_empty_collection(catalog: Store, collection_id: str) -> None:
    """Remove the folders an all-rejected run's marker left (`_runs/`, the collection's),
    where they are empty and the collection was never published (local disks keep empty
    folders; blob prefixes vanish with their last blob)."""
    if not catalog.exists(collection_key(collection_id)):  # not empty: another run is there
        catalog.remove_empty_folders(runs_folder(collection_id).rstrip("/"), collection_id)


def _confirm_alive(run: Run, stores: RunStores, new: dict[str, pystac.Item]) -> None:
    """Refuse to publish items whose files are gone: when this run's marker was lost (an
    Azure lease not renewed for LEASE_SECONDS, or the run ended and this is a retry), other
    runs may have taken it for dead and removed its files, so every new asset is checked."""
    if run.marker is None:
        return
    catalog = stores.catalog
    hold = HOLDS.get((catalog.root, run.marker))
    if hold.confirm() if hold is not None else catalog.held(run.marker):
        return
    for href in sorted(asset_hrefs(new.values())):
        key = stores.target.key_of(href)
        if key is None or not stores.target.exists(key):
            raise RunLost(
                f"{catalog.href(run.marker)}: this run's marker was lost and {href} is gone "
                "(removed as a dead run's file); nothing was published, run again"
            )


def collect_superseded_files(stores: RunStores, context: RunContext) -> None:
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


def remove_dead_runs(stores: RunStores, context: RunContext, *, own: bool = False) -> None:
    """Delete the files of runs that died (their marker is no longer held) which the
    published collection does not point at: COGs, thumbnails, item and index versions,
    temp files (and this run's own, `own`: it was interrupted). Only files in a dead run's
    version folder are touched, so files another live run has stored but not yet published
    are safe. Marker temp files of runs killed while creating their marker go too."""
    catalog, collection_id = stores.catalog, context.collection_id
    markers = catalog.list_files(runs_folder(collection_id))
    dead = {}
    for marker in markers:
        name = posixpath.basename(marker.key)
        if name.startswith(".") and name.endswith(".partial"):
            if not catalog.held(marker.key):  # its creator holds it locked until renamed
                remove_quietly(catalog, marker.key)
            continue
        version = version_of(marker.key)
        # This run's own marker, when it was interrupted (`own`), whether or not it still
        # looks held: an abandoned Azure lease's blob counts as held while it is younger
        # than LEASE_SECONDS (`BlobStore.held`), and an orchestrator's planning process may
        # hold it yet; the run is ending, nobody else writes its version.
        mine = version == context.version
        if version and (own if mine else not catalog.held(marker.key)):
            dead[version] = marker.key
    if not dead:
        return
    # What is published stays (a dead run may have published progress before it died):
    # asked per key and href of the index's columns, never by reading every item.
    names = published_names(catalog, collection_id)
    stores_ = {s.href(""): s for s in (catalog, stores.target)}
    for store in stores_.values():
        for info in store.list_files(f"{collection_id}/"):
            if version_of(info.key) not in dead or is_superseded_list(info.key):
                continue
            named = names.names_href(store.href(info.key)) or (
                store is catalog and names.names_key(info.key)
            )
            if not named and info.key not in dead.values():
                remove_quietly(store, info.key)
    for key in dead.values():
        remove_quietly(catalog, key)
    log.info("removed the unpublished files of %d dead run(s): %s", len(dead), sorted(dead))
