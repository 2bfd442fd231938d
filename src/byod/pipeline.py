"""The ingest run: discover, skip what is unchanged, prepare in bounded workers, store, publish.

Knows no orchestrator and no terminal: progress goes to an optional `Progress` callback, the
outcome is a `Report`. The CLI and the Prefect flows are thin layers over `ingest`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import pystac

from byod import __version__
from byod.catalog import CollectionInfo, load_items, publish
from byod.config import IngestSettings, default_workers
from byod.items import DATA_ASSET, Scene, StoredFile, build_item
from byod.reasons import Reason, RejectedInput
from byod.report import Report, Row, Status
from byod.runner import run_bounded
from byod.sources import Candidate, disambiguated_id, discover, fingerprint, item_id_for, slugify
from byod.storage import Store
from byod.work import Job, Prepared, PrepareResult, georef_sidecar_names, prepare

log = logging.getLogger(__name__)

# Bump when a change in byod alters what is written for the same input, so re-runs redo it.
RECIPE_VERSION = 1


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


def ingest(settings: IngestSettings, progress: Progress | None = None) -> Report:
    """Ingest a local folder into COGs at `settings.target` and the catalog at `.catalog`."""
    progress = progress or Progress()
    source, collection_id = _check(settings)
    catalog_store, target_store = Store(settings.catalog), Store(settings.target)
    report = Report(str(source), collection_id, catalog_store.href("catalog.json"),
                    target_store.href(""))  # fmt: skip
    items = load_items(catalog_store, collection_id)
    found = discover(source)
    report.ignored = found.ignored
    progress.discovered(len(found.candidates) + len(found.problems))
    for problem in found.problems:
        _finish(report, progress, Row(problem.relpath, Status.REJECTED, reason=problem.reason,
                                      message=problem.message))  # fmt: skip

    plans = _plan(found.candidates, items, _recipe(settings))
    todo: list[_Plan] = []
    for plan in plans:
        if plan.previous and _unchanged(plan):
            ids = [i.id for i in plan.previous]
            _finish(report, progress, Row(plan.candidate.relpath, Status.UNCHANGED, ids))
        else:
            todo.append(plan)

    changed: set[str] = set()
    removed: set[str] = set()
    workdir = Path(tempfile.mkdtemp(prefix="byod-"))
    try:
        jobs = [(p.candidate.relpath, _job(p, settings, workdir)) for p in todo]
        by_path = {p.candidate.relpath: p for p in todo}
        outcomes = run_bounded(
            jobs, prepare, workers=settings.workers, timeout_s=settings.timeout_s,
            max_memory_mb=settings.max_memory_mb, on_stage=progress.stage,
        )  # fmt: skip
        for done in outcomes:
            plan = by_path[done.job.relpath]
            row = Row(plan.candidate.relpath, Status.REJECTED, seconds=round(done.seconds, 3))
            try:
                if done.rejection is not None:
                    raise done.rejection
                assert done.result is not None
                new = _store(done.result, plan, collection_id, target_store)
                row.status = Status.REPLACED if plan.previous else Status.INGESTED
                row.item_ids, row.notes = sorted(i.id for i in new), done.result.notes
                old_ids = {i.id for i in plan.previous}
                for item in new:
                    items[item.id] = item
                    changed.add(item.id)
                removed |= old_ids - {i.id for i in new}
                for item_id in old_ids - {i.id for i in new}:
                    items.pop(item_id, None)
            except RejectedInput as exc:
                row.reason, row.message = exc.reason, exc.message
            finally:
                shutil.rmtree(done.job.workdir, ignore_errors=True)
            _finish(report, progress, row)
        info = CollectionInfo(
            id=collection_id,
            description=settings.description or f"Rasters ingested by byod from {source.name}.",
            license=settings.license,
            title=settings.title,
        )
        publish(catalog_store, info, items, changed, removed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.rows.sort(key=lambda r: r.input)
    report.finished = datetime.now(UTC).isoformat()
    return report


def _check(settings: IngestSettings) -> tuple[Path, str]:
    if "://" in settings.source:
        raise ConfigurationError(f"{settings.source}: only local folders can be sources so far")
    source = Path(settings.source)
    if not source.is_dir():
        raise ConfigurationError(f"{source}: source is not a folder")
    collection_id = settings.collection or slugify(source.resolve().name)
    if slugify(collection_id) != collection_id:
        raise ConfigurationError(
            f"collection id {collection_id!r} is not URL-safe; try {slugify(collection_id)!r}"
        )
    return source, collection_id


def _recipe(settings: IngestSettings) -> str:
    """The options that change what is written for the same bytes, as part of the fingerprint."""
    return json.dumps(
        {
            "recipe": RECIPE_VERSION,
            "datetime": settings.datetime.isoformat() if settings.datetime else None,
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


def _unchanged(plan: _Plan) -> bool:
    """Same fingerprint as the stored items, and their COGs are still where they point."""
    for item in plan.previous:
        if item.properties.get("byod:fingerprint") != plan.fingerprint:
            return False
        href = item.assets[DATA_ASSET].href
        fs, path = fsspec.core.url_to_fs(href)
        if not fs.exists(path):
            return False
    return True


def _job(plan: _Plan, settings: IngestSettings, workdir: Path) -> Job:
    folder = workdir / plan.item_id
    folder.mkdir()
    return Job(
        path=plan.candidate.path,
        relpath=plan.candidate.relpath,
        item_id=plan.item_id,
        has_georef_sidecars=georef_sidecar_names(plan.candidate.sidecars),
        workdir=folder,
        datetime=settings.datetime,
        compression=settings.compression,
        # PITFALLS: parallel conversions with fewer threads each beat one with all threads.
        threads=max(1, default_workers() // settings.workers),
        max_pixels=settings.max_pixels,
    )


def _store(
    result: PrepareResult, plan: _Plan, collection_id: str, target: Store
) -> list[pystac.Item]:
    """Upload each scene's COG and thumbnail, then build its item (assets first, always)."""
    stored_keys: list[str] = []
    items = []
    try:
        for scene in result.scenes:
            base = f"{collection_id}/{scene.item_id}/{scene.item_id}"
            cog_href = target.put_file(scene.cog.path, f"{base}.tif")
            stored_keys.append(f"{base}.tif")
            thumb_href = target.put_file(scene.thumbnail.path, f"{base}-thumbnail.png")
            stored_keys.append(f"{base}-thumbnail.png")
            items.append(_item(scene, plan, cog_href, thumb_href))
    except OSError as exc:
        if not plan.previous:  # a new input leaves nothing behind
            for key in stored_keys:
                target.remove(key)
        raise RejectedInput(
            Reason.STORAGE_FAILED, f"{plan.candidate.relpath}: could not store ({exc})"
        ) from None
    return items


def _item(scene: Prepared, plan: _Plan, cog_href: str, thumb_href: str) -> pystac.Item:
    item = build_item(
        Scene(
            item_id=scene.item_id,
            source=plan.candidate.relpath,
            fingerprint=plan.fingerprint,
            acquisition=scene.acquisition,
            footprint=scene.footprint,
            raster=scene.raster,
            resolution=scene.resolution,
            cog=StoredFile(cog_href, scene.cog.size, scene.cog.sha256),
            thumbnail=StoredFile(thumb_href, scene.thumbnail.size, scene.thumbnail.sha256),
            passthrough=scene.passthrough,
        )
    )
    if scene.subdataset is not None:
        item.properties["byod:subdataset"] = scene.subdataset
    item.properties["byod:version"] = __version__
    return item


def _finish(report: Report, progress: Progress, row: Row) -> None:
    report.rows.append(row)
    progress.finished(row)
