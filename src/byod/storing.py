"""Storing one input: its job for a bounded worker (`job_for`), its remote files fetched
into the job's folder (`fetch_timed`), then in the parent its COGs and thumbnails stored
under the run's version folder and its items built from them (`outcome_of`); whether an
orchestrator's cached outcome is still stored (`outcome_is_stored`)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pystac

from byod.catalog import remove_quietly
from byod.config import IngestSettings, default_workers
from byod.errors import storage_failure
from byod.items import build_item
from byod.keys import FINGERPRINT_METADATA, cog_key, run_marker_key, thumbnail_key, version_of
from byod.metadata import MetadataRules
from byod.reasons import Reason, RejectedInput
from byod.records import Candidate
from byod.report import Row, Status
from byod.runner import Done
from byod.runs import Outcome, RunContext, WorkItem
from byod.sources import file_sha256, slugify
from byod.storage import Store
from byod.work import Job, PrepareResult, georef_sidecar_names

log = logging.getLogger(__name__)


def fetch_timed(seconds: dict[str, float], job: Job, candidate: Candidate,
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


def job_for(
    plan: WorkItem,
    settings: IngestSettings,
    workdir: Path,
    source_is_local: bool,
    threads: int | None = None,
    cache_bytes: int | None = None,
) -> Job:
    """The worker's job for one input: a folder of its own under `workdir`, the local paths
    of its files (where `_fetch` spools them for a remote source), the metadata rules, and
    its share of threads, GDAL cache (bytes) and temp disk."""
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
        rules=MetadataRules(settings.time, settings.clouds),
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


def outcome_of(done: Done[Job, PrepareResult], work: WorkItem, context: RunContext,
               target: Store, fetch_s: float = 0.0,
               stop: threading.Event | None = None) -> Outcome:  # fmt: skip
    """What one input's worker gave, turned into its outcome: its files stored and items
    built (`_store`), or its rejection; its row with the seconds of each stage. Safe to run
    on a thread of its own (`pipeline.process_all`); `stop` set ends its uploads early (the
    run is ending: the outcome, a storage_failed rejection, is dropped)."""
    row = Row(work.candidate.relpath, Status.REJECTED)
    stages = {"fingerprint": work.fingerprint_s, "fetch": fetch_s}
    start = time.perf_counter()
    try:
        if done.rejection is not None:
            raise done.rejection
        assert done.result is not None
        stages |= done.result.seconds
        new = _store(done.result, work, context, target, stop)
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
    return Outcome(row, [i.to_dict(transform_hrefs=False) for i in new], work.previous_ids,
                   list(work.candidate.notes))  # fmt: skip


def _store(
    result: PrepareResult,
    plan: WorkItem,
    context: RunContext,
    target: Store,
    stop: threading.Event | None = None,
) -> list[pystac.Item]:
    """Upload each scene's COGs and thumbnail to new keys (the run's version folder), then
    build its item (assets first, always)."""
    stored_keys: list[str] = []
    items = []
    try:
        for scene in result.scenes:
            parts = []
            for part in scene.assets:
                band = None if part.key == "data" else slugify(part.key)
                key = cog_key(context.collection_id, scene.item_id, context.version, band)
                # With the blob, so a re-run can tell an unchanged input without a download.
                metadata = {FINGERPRINT_METADATA: plan.fingerprint, "byod_sha256": part.file.sha256}
                stored_keys.append(key)
                # Moved into a local target (the job's folder is deleted after): no copy.
                href = target.put_file(part.file.path, key, metadata, move=True, stop=stop)
                parts.append(replace(part, file=part.file.stored_at(href)))
            thumb_key = thumbnail_key(context.collection_id, scene.item_id, context.version)
            stored_keys.append(thumb_key)
            thumbnail = scene.thumbnail.stored_at(
                target.put_file(scene.thumbnail.path, thumb_key, move=True, stop=stop))  # fmt: skip
            stored = replace(scene, assets=tuple(parts), thumbnail=thumbnail)
            items.append(build_item(stored, source=plan.candidate.relpath,
                                    fingerprint=plan.fingerprint, stat=plan.stat))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - OSError or an Azure error: this input fails alone
        failure = storage_failure(exc, f"storing to {target.root}")
        if failure is not None:  # the store is down or full: the run ends (what it stored
            raise failure from None  # is removed by the next run, see `end_run`)
        for key in stored_keys:  # new keys only: the published version stays whole
            remove_quietly(target, key)
        raise RejectedInput(
            Reason.STORAGE_FAILED,
            f"{plan.candidate.relpath}: could not store ({type(exc).__name__}: {exc})",
        ) from None
    return items


def _scene_notes(result: PrepareResult) -> list[str]:
    """Why a scene has no cloud cover, or which cloud sources disagreed (values kept)."""
    notes = []
    for scene in result.scenes:
        prefix = f"{scene.item_id}: " if len(result.scenes) > 1 else ""
        notes += [prefix + n for n in scene.notes]
        if scene.clouds.note:
            notes.append(prefix + scene.clouds.note)
    return notes


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
