"""The ingest run: discover, skip what is unchanged, prepare in bounded workers, store, publish.

Knows no orchestrator and no terminal: progress goes to an optional `Progress` callback, the
outcome is a `Report`. The CLI and the Prefect flows are thin layers over `ingest`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac

from byod import __version__
from byod.azure import (
    AzureAccess,
    AzureConfigError,
    AzureOptions,
    arm_location_lookup,
    resolve_access,
)
from byod.azure import (
    check_region as check_region_of,
)
from byod.catalog import CollectionInfo, load_items, publish
from byod.config import IngestSettings, default_workers
from byod.items import Scene, SceneAsset, StoredFile, build_item
from byod.metadata import MetadataRules
from byod.reasons import Reason, RejectedInput
from byod.report import Report, Row, Status
from byod.runner import Done, run_bounded
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
)
from byod.storage import BlobStore, Store, is_blob_url, open_store
from byod.work import Job, Prepared, PrepareResult, georef_sidecar_names, prepare

log = logging.getLogger(__name__)

# Bump when a change in byod alters what is written for the same input, so re-runs redo it.
RECIPE_VERSION = 1
FINGERPRINT_METADATA = "byod_fingerprint"


class ConfigurationError(ValueError):
    """The run cannot start as configured; nothing has been written."""


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
    previous: list[pystac.Item]


@dataclass(frozen=True)
class RunContext:
    """What every step of a run needs; small, so it travels to tasks and Dask workers."""

    settings: IngestSettings
    collection_id: str


@dataclass
class WorkItem:
    """One input (a file or a multi-file scene) to convert, describe and store."""

    candidate: Candidate
    item_id: str
    fingerprint: str
    previous_ids: list[str]


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
    existing: dict[str, pystac.Item]


def ingest(settings: IngestSettings, progress: Progress | None = None) -> Report:
    """Ingest a folder or blob prefix into COGs at `settings.target` and the catalog.

    The three steps are public so an orchestrator can run them its own way (flows/ runs
    `process` as one task per input): `plan_run`, `process` / `process_all`, `publish_run`.
    """
    progress = progress or Progress()
    run = plan_run(settings, progress)
    return publish_run(run, list(process_all(run, progress)))


def plan_run(settings: IngestSettings, progress: Progress | None = None) -> Run:
    """Check the configuration (nothing written if it is refused), discover, fingerprint,
    give ids, and settle what is unchanged."""
    progress = progress or Progress()
    stores = _open_stores(settings)
    collection_id = _collection_id(settings)
    report = Report(settings.source, collection_id, stores.catalog.href("catalog.json"),
                    stores.target.href(""), storage=stores.decision,
                    region_overridden=stores.overridden)  # fmt: skip
    for store in (stores.catalog, stores.target):
        if isinstance(store, BlobStore):
            store.ensure_container()
    items = load_items(stores.catalog, collection_id)
    found = _discover(settings.source, stores.source, settings.group_pattern)
    report.ignored, report.notes = found.ignored, found.notes
    progress.discovered(len(found.candidates) + len(found.problems))
    for problem in found.problems:
        _finish(report, progress, Row(problem.relpath, Status.REJECTED, reason=problem.reason,
                                      message=problem.message))  # fmt: skip
    todo = []
    for plan in _plan(found.candidates, items, _recipe(settings)):
        if plan.previous and _unchanged(plan, stores.target, collection_id):
            ids = [i.id for i in plan.previous]
            _finish(report, progress, Row(plan.candidate.relpath, Status.UNCHANGED, ids))
        else:
            previous = [i.id for i in plan.previous]
            todo.append(WorkItem(plan.candidate, plan.item_id, plan.fingerprint, previous))
    return Run(RunContext(settings, collection_id), report, todo, items)


def process(context: RunContext, work: WorkItem) -> Outcome:
    """Convert, describe and store one input in a bounded worker process of its own."""
    stores = _open_stores(context.settings, check_region=False)
    workdir = Path(tempfile.mkdtemp(prefix="byod-"))
    try:
        job = _job(work, context.settings, workdir, stores.source is None)
        (done,) = run_bounded(
            [(work.candidate.relpath, job)], prepare, workers=1,
            timeout_s=context.settings.timeout_s, max_memory_mb=context.settings.max_memory_mb,
            before_start=lambda job: _fetch(job, work.candidate, stores.source),
        )  # fmt: skip
        return _outcome(done, work, context, stores.target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def process_all(run: Run, progress: Progress | None = None) -> Iterator[Outcome]:
    """Every input of the run, `workers` at a time, each in its bounded worker process."""
    progress = progress or Progress()
    settings = run.context.settings
    stores = _open_stores(settings, check_region=False)
    workdir = Path(tempfile.mkdtemp(prefix="byod-"))
    try:
        # GDAL threads per conversion: the cores shared by the conversions that run at once.
        threads = max(1, default_workers() // max(1, min(settings.workers, len(run.todo))))
        jobs = [(w.candidate.relpath, _job(w, settings, workdir, stores.source is None, threads))
                for w in run.todo]  # fmt: skip
        by_path = {w.candidate.relpath: w for w in run.todo}
        outcomes = run_bounded(
            jobs, prepare, workers=settings.workers, timeout_s=settings.timeout_s,
            max_memory_mb=settings.max_memory_mb, on_stage=progress.stage,
            before_start=lambda job: _fetch(job, by_path[job.relpath].candidate, stores.source),
        )  # fmt: skip
        for done in outcomes:
            outcome = _outcome(done, by_path[done.job.relpath], run.context, stores.target)
            progress.finished(outcome.row)
            yield outcome
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _outcome(done: Done[Job, PrepareResult], work: WorkItem, context: RunContext,
             target: Store) -> Outcome:  # fmt: skip
    row = Row(work.candidate.relpath, Status.REJECTED, seconds=round(done.seconds, 3))
    try:
        if done.rejection is not None:
            raise done.rejection
        assert done.result is not None
        new = _store(done.result, work, context.collection_id, target)
    except RejectedInput as exc:
        row.reason, row.message = exc.reason, exc.message
        return Outcome(row)
    finally:
        shutil.rmtree(done.job.workdir, ignore_errors=True)
    row.status = Status.REPLACED if work.previous_ids else Status.INGESTED
    row.item_ids = sorted(i.id for i in new)
    row.notes = [*done.result.notes, *_scene_notes(done.result)]
    return Outcome(row, [i.to_dict(transform_hrefs=False) for i in new], work.previous_ids)


def outcome_is_stored(context: RunContext, outcome: Outcome) -> bool:
    """Whether the COGs an outcome describes are still in the target, byte for byte (by the
    blob's checksum metadata, or by hashing a local file): an orchestrator's cached outcome
    must not publish an item for files that were replaced or deleted since."""
    target = _open_stores(context.settings, check_region=False).target
    for data in outcome.items:
        for name, asset in data.get("assets", {}).items():
            if "data" not in (asset.get("roles") or []):
                continue
            key = _cog_key(context.collection_id, data["id"], name)
            expected = str(asset.get("file:checksum", "")).removeprefix("1220")
            metadata = target.metadata(key)
            if metadata is not None:
                if metadata.get("byod_sha256") != expected:
                    return False
            elif not target.exists(key) or file_sha256(target.href(key)) != expected:
                return False
    return True


def publish_run(run: Run, outcomes: list[Outcome]) -> Report:
    """Merge the outcomes into the collection and publish it (items, collection, root)."""
    settings, report = run.context.settings, run.report
    items = dict(run.existing)
    changed: set[str] = set()
    removed: set[str] = set()
    for outcome in outcomes:
        if outcome.row not in report.rows:
            report.rows.append(outcome.row)
        new_ids = {d["id"] for d in outcome.items}
        for data in outcome.items:
            items[data["id"]] = pystac.Item.from_dict(data, migrate=False)  # keeps proj:epsg
            changed.add(data["id"])
        for item_id in set(outcome.replaced_ids) - new_ids:
            items.pop(item_id, None)
            removed.add(item_id)
    info = CollectionInfo(
        id=run.context.collection_id,
        description=settings.description
        or f"Rasters ingested by byod from {_source_name(settings.source)}.",
        license=settings.license,
        title=settings.title,
        providers=tuple(settings.providers),
        keywords=tuple(settings.keywords),
    )
    publish(_open_stores(settings, check_region=False).catalog, info, items, changed, removed)
    report.rows.sort(key=lambda r: r.input)
    report.finished = datetime.now(UTC).isoformat()
    return report


@dataclass
class _Stores:
    source: Store | None  # None for a local source folder (walked directly)
    catalog: Store
    target: Store
    decision: str | None = None  # the region guard's verdict, for the report
    overridden: bool = False


def _open_stores(settings: IngestSettings, *, check_region: bool = True) -> _Stores:
    """Check the source, credentials and region, and open the stores; writes nothing.

    Steps after `plan_run` skip the region check: it was done, and may ask Azure Resource
    Manager, which is slow to repeat for every input."""
    urls = (settings.source, settings.target, settings.catalog)
    if not any(is_blob_url(u) for u in urls):
        source = Path(settings.source)
        if not source.is_dir():
            raise ConfigurationError(f"{source}: source is not a folder")
        return _Stores(None, open_store(settings.catalog), open_store(settings.target))
    options = settings.azure or AzureOptions()
    try:
        access = resolve_access(options)
    except AzureConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    decision = None
    if check_region and (is_blob_url(settings.target) or is_blob_url(settings.catalog)):
        decision = check_region_of(access, options, arm_location_lookup())
        if not decision.allowed:
            raise ConfigurationError(f"region guard: {decision.message}; nothing was written")
    stores = _Stores(
        _open_source(settings.source, access),
        _open(settings.catalog, access),
        _open(settings.target, access),
        decision.message if decision else None,
        bool(decision and decision.overridden),
    )
    return stores


def _open(url: str, access: AzureAccess) -> Store:
    try:
        return open_store(url, access)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _open_source(url: str, access: AzureAccess) -> Store | None:
    if not is_blob_url(url):
        if not Path(url).is_dir():
            raise ConfigurationError(f"{url}: source is not a folder")
        return None
    store = _open(url, access)
    assert isinstance(store, BlobStore)
    if not store.container_client.exists():
        raise ConfigurationError(f"{url}: container {store.container!r} does not exist")
    return store


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


def _discover(url: str, store: Store | None, group_pattern: str | None) -> Discovery:
    """Inputs of a folder or a blob prefix, band files grouped into scenes."""
    if store is None:
        found = discover(Path(url))
    else:
        found = discover_listing((f.key, f.version) for f in store.list_files())
    found.candidates, found.notes = group(found.candidates, group_pattern)
    return found


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
    except Exception as exc:  # noqa: BLE001 - any storage failure rejects this input only
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


def _plan(candidates: list[Candidate], items: dict[str, pystac.Item], recipe: str) -> list[_Plan]:
    """Fingerprint every input (in threads: hashing releases the GIL) and give it an item id.

    An input keeps the id its item already has; a new one takes the slug of its path, or the
    slug plus a hash of the path when another input or item holds that slug already.
    """
    with ThreadPoolExecutor(max_workers=default_workers()) as pool:
        prints = list(pool.map(lambda c: fingerprint(c, recipe), candidates))
    by_source: dict[str, list[pystac.Item]] = {}
    for item in items.values():
        by_source.setdefault(str(item.properties.get("byod:source")), []).append(item)
    taken = {item_id for item_id in items if item_id}
    plans = []
    for candidate, print_ in zip(candidates, prints, strict=True):
        previous = by_source.get(candidate.relpath, [])
        own = {i.id for i in previous if "byod:subdataset" not in i.properties}
        if own:
            item_id = next(iter(own))
        else:
            item_id = item_id_for(candidate.relpath)
            if item_id in taken - {i.id for i in previous}:
                item_id = disambiguated_id(candidate.relpath)
        taken.add(item_id)
        plans.append(_Plan(candidate, item_id, print_, previous))
    return plans


def _unchanged(plan: _Plan, target: Store, collection_id: str) -> bool:
    """Same fingerprint as the stored items, and their COGs are in the target (with the same
    fingerprint in the blob metadata, where the target keeps metadata)."""
    for item in plan.previous:
        if item.properties.get("byod:fingerprint") != plan.fingerprint:
            return False
        for name, asset in item.assets.items():
            if "data" not in (asset.roles or []):
                continue
            key = _cog_key(collection_id, item.id, name)
            metadata = target.metadata(key)
            if metadata is None and not target.exists(key):
                return False
            if metadata is not None and metadata.get(FINGERPRINT_METADATA) != plan.fingerprint:
                return False
    return True


def _cog_key(collection_id: str, item_id: str, asset: str = "data") -> str:
    """`<item>.tif` for a single raster's COG, `<item>_<band>.tif` for a scene's bands."""
    suffix = "" if asset == "data" else f"_{slugify(asset)}"
    return f"{collection_id}/{item_id}/{item_id}{suffix}.tif"


def _job(
    plan: WorkItem,
    settings: IngestSettings,
    workdir: Path,
    source_is_local: bool,
    threads: int | None = None,
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
        compression=settings.compression,
        # PITFALLS: parallel conversions with fewer threads each beat one with all threads.
        threads=threads or max(1, default_workers() // settings.workers),
        max_pixels=settings.max_pixels,
    )


def _store(
    result: PrepareResult, plan: WorkItem, collection_id: str, target: Store
) -> list[pystac.Item]:
    """Upload each scene's COGs and thumbnail, then build its item (assets first, always)."""
    stored_keys: list[str] = []
    items = []
    try:
        for scene in result.scenes:
            parts = []
            for part in scene.assets:
                key = _cog_key(collection_id, scene.item_id, part.key)
                # With the blob, so a re-run can tell an unchanged input without a download.
                metadata = {FINGERPRINT_METADATA: plan.fingerprint, "byod_sha256": part.cog.sha256}
                stored_keys.append(key)
                href = target.put_file(part.cog.path, key, metadata)
                stored = StoredFile(href, part.cog.size, part.cog.sha256)
                parts.append(SceneAsset(part.key, part.source_name, stored, part.raster,
                                        part.resolution, part.passthrough))  # fmt: skip
            thumb_key = f"{collection_id}/{scene.item_id}/{scene.item_id}-thumbnail.png"
            stored_keys.append(thumb_key)
            thumb_href = target.put_file(scene.thumbnail.path, thumb_key)
            thumbnail = StoredFile(thumb_href, scene.thumbnail.size, scene.thumbnail.sha256)
            items.append(_item(scene, plan, tuple(parts), thumbnail))
    except Exception as exc:  # noqa: BLE001 - OSError or an Azure error: this input fails alone
        if not plan.previous_ids:  # a new input leaves nothing behind
            for key in stored_keys:
                try:
                    target.remove(key)
                except Exception:  # noqa: BLE001 - the storage is failing already; say so
                    log.warning("%s: could not remove %s after a failed store", plan.item_id, key)
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
    item.properties["byod:version"] = __version__
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
