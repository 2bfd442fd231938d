"""One input's work, run inside a bounded worker process: inspect, convert, describe.

Returns plain records with the COG and thumbnail in a local temporary folder; storing and
publishing happen in the parent, which alone decides what reaches the target and catalog.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import rasterio
import rasterio.crs
import rasterio.shutil
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader
from rasterio.transform import Affine

from byod import cf, metadata
from byod.clouds import CloudDecision
from byod.cog import GDAL_CACHEMAX_MB, band_vrt, combined_mask, stages_gtiff_copy, to_cog
from byod.config import Compression
from byod.footprint import NoValidData, footprint, valid_region
from byod.items import primary_asset
from byod.metadata import MetadataRules
from byod.rasters import (
    alpha_band,
    band_validity,
    decimated_mask,
    inspect,
    needs_band_files,
    open_dataset,
    pixel_to_crs,
    subdatasets,
)
from byod.reasons import Reason, RejectedInput
from byod.records import AssetFile, BandInfo, Footprint, RasterInfo, Scene, SceneAsset
from byod.sources import WORLD_FILE_EXTENSIONS, file_sha256, slugify
from byod.temporal import Acquisition, no_time_message
from byod.thumbnails import first_band_with_data, write_band_thumbnail, write_thumbnail
from byod.untrusted import guard_inputs

log = logging.getLogger(__name__)
Stage = Callable[[str], None]


def _warm() -> None:
    """Import now what the work imports on first use: this module is preloaded by the
    workers' forkserver, so every worker starts with them instead of importing them for each
    input (about 100 ms an input, most of a small file's time; benchmarks/README.md)."""
    import click._termui_impl  # noqa: F401 - rio-cogeo's progress bar, even when quiet
    import numpy.ma  # noqa: F401
    from PIL import Image

    datetime.strptime("2000", "%Y")  # imports _strptime
    Image.preinit()  # the PNG, JPEG, GIF, BMP and PPM plugins Image.save loads otherwise


_warm()
# The bands a thumbnail of a known product is made of.
# Red, green, blue of each product (Landsat 4-5 TM and 7 ETM+: bands 3, 2, 1; USGS LSDS-1618).
RGB_BANDS = {"landsat": ("SR_B4", "SR_B3", "SR_B2"), "sentinel2": ("B04", "B03", "B02"),
             "landsat-tm": ("SR_B3", "SR_B2", "SR_B1"),
             "landsat-etm": ("SR_B3", "SR_B2", "SR_B1")}  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One input's work for a worker process (picklable): local paths of the raster, its
    metadata, mask and band files, the rules and bounds (`max_pixels` pixels of a band,
    `threads` GDAL threads, `cache_bytes` bytes, `disk_budget` bytes) and `workdir`, the
    only folder it writes."""

    path: Path
    relpath: str
    item_id: str
    has_georef_sidecars: bool
    workdir: Path
    rules: MetadataRules
    metadata_paths: tuple[Path, ...]
    mask_path: Path | None
    user_metadata_path: Path | None
    compression: Compression
    threads: int
    max_pixels: int
    bands: tuple[tuple[str, Path], ...] = ()  # a band-per-file scene: (band, local path)
    product: str | None = None
    # Untrusted inputs (untrusted.py): the folder every file GDAL reads must lie in (None: the
    # job's fetched `input` folder), and the temp bytes its conversion may need.
    source_root: Path | None = None
    disk_budget: int | None = None
    workers: int = 1  # conversions that may share the temp disk at once
    cache_bytes: int | None = None  # GDAL's block cache for the conversion (cog.to_cog)


@dataclass(frozen=True)
class PrepareResult:
    """What a worker gives back for one input: its scenes (COGs and thumbnails in the
    job's workdir, not stored yet) and notes."""

    scenes: list[Scene]
    notes: list[str]  # subdatasets left out, with the reason
    # Seconds per stage in the worker (report.STAGE_NAMES from `inspect` to `checksum`;
    # `metadata` is the acquisition time and cloud cover), summed over scenes and bands.
    # `checksum` is the wait for the COGs' hashes, which run beside the other stages
    # (`_Checksums`): the wall time they added, not their CPU.
    seconds: dict[str, float] = field(default_factory=dict)


class Clock:
    """Seconds per stage of one input, summed when a stage recurs (a scene's bands, a
    container's subdatasets); each stage is also announced to `report` (progress)."""

    def __init__(self, report: Stage) -> None:
        self.seconds: dict[str, float] = {}
        self._report = report

    @contextmanager
    def __call__(self, name: str, shown: str | None = None) -> Iterator[None]:
        self._report(shown or name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def move(self, source: str, name: str, seconds: float) -> None:
        """Count `seconds` of stage `source` under `name` (a nested step measured apart)."""
        self.add(source, -seconds)
        self.add(name, seconds)


def prepare(job: Job, stage: Stage) -> PrepareResult:
    """All scenes of one input: one for a plain raster, one per subdataset of a container.

    A container is rejected only when none of its subdatasets can be ingested; the ones left
    out (coordinate bounds, variables without a CRS) are noted in the report. Python
    warnings (rasterio's NotGeoreferencedWarning on every NetCDF bounds variable) go to the
    log at debug level, not to stderr: the CLI promises at most one line there.
    """
    clock = Clock(stage)
    # GDAL's block cache capped for every read, not only the conversion's: the footprint's
    # full-resolution reads otherwise filled GDAL's default cache (5% of RAM) and took a
    # worker from 371 MB to 733 MB on a 1 GB input (benchmarks/README.md). Bytes (PITFALLS).
    # GDAL_NUM_THREADS stays the conversion's alone: decoding the footprint's chunks with
    # the job's 2 threads saved about 0.2 s of a 10980² input but raised the worker's peak
    # RSS by 60 MB (a heap per GDAL thread; benchmarks/README.md).
    cache = job.cache_bytes or GDAL_CACHEMAX_MB * 1024 * 1024
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=cache):
        warnings.showwarning = _log_warning
        warnings.simplefilter("default")
        result = _prepare(job, clock)
    seconds = {k: round(max(0.0, v), 4) for k, v in clock.seconds.items()}
    return PrepareResult(result.scenes, result.notes, seconds)


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:  # fmt: skip
    log.debug("%s: %s (%s:%d)", category.__name__, message, filename, lineno)


def _prepare(job: Job, stage: Clock) -> PrepareResult:
    with stage("inspect"):
        _guard(job)
        names = [] if job.bands else subdatasets(job.path)
    if job.bands:
        return PrepareResult([_prepare_scene(job, stage)], [])
    if not names:
        return PrepareResult([_prepare_one(job, str(job.path), None, stage)], [])
    variables = {name: name.rsplit(":", 1)[-1].strip("/") for name in names}
    auxiliary = metadata.auxiliary_variables(
        {variable: _tags(name) for name, variable in variables.items()}
    )
    scenes, notes, first_rejection = [], [], None
    for name, variable in variables.items():
        if variable in auxiliary:  # CF bounds, coordinates, grid mappings: not rasters
            notes.append(f"variable {variable} ignored: {auxiliary[variable]}, not a raster")
            continue
        try:
            scenes.append(_prepare_one(job, name, variable, stage))
        except RejectedInput as exc:
            notes.append(exc.message)
            first_rejection = first_rejection or exc
    if not scenes:
        raise first_rejection or RejectedInput(
            Reason.NOT_A_RASTER,
            f"{job.relpath}: no raster variable, only coordinates and bounds "
            f"({', '.join(auxiliary)})",
        )
    return PrepareResult(scenes, notes)


def _tags(name: str) -> dict[str, str]:
    """A subdataset's tags (its variables' attributes), {} when it cannot be opened."""
    try:
        with warnings.catch_warnings():  # bounds and coordinates have no geotransform
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with open_dataset(name) as src:
                return src.tags()
    except RejectedInput:
        return {}


def _guard(job: Job) -> None:
    """Refuse what reads outside the source, and what would overflow the temp disk, before
    any pixel is read (untrusted.guard_inputs)."""
    paths = [job.path, *(p for _, p in job.bands), *([job.mask_path] if job.mask_path else [])]
    guard_inputs(dict.fromkeys(paths), job.source_root or job.workdir / "input",
                 budget=job.disk_budget, workdir=job.workdir, label=job.relpath,
                 stages=lambda src: _stages_copy(job, src), workers=job.workers)  # fmt: skip


def _stages_copy(job: Job, src: DatasetReader) -> bool:
    """Whether converting `src` first writes an uncompressed staged copy (the temp disk
    estimate, untrusted.peak_temp_bytes): the same tests `_with_prj_crs`,
    `_with_cf_placement` and cog.to_cog make."""
    if _prj_applies(job.path, src) or stages_gtiff_copy(src):
        return True
    try:
        return src.driver == "netCDF" and cf.place(src, job.relpath) is not None
    except RejectedInput:  # rejected when it is converted; no copy is made
        return False


def _prepare_one(job: Job, name: str, subdataset: str | None, stage: Clock) -> Scene:
    label = job.relpath if subdataset is None else f"{job.relpath} (subdataset {subdataset})"
    item_id = job.item_id if subdataset is None else subdataset_id(job.item_id, subdataset)
    with stage("inspect"):
        name = _with_prj_crs(name, job, label) if subdataset is None else name
        # `placed` is converted; `name` stays the NetCDF variable (time bounds beside it).
        placed, cf_notes = _with_cf_placement(name, job, label, item_id)
        with open_dataset(placed) as src:
            source_info = inspect(src, label=label, max_pixels=job.max_pixels)
            parts = _cog_parts(src, placed, source_info, job.workdir, item_id)
    when, cloud_decision, notes = _time_and_clouds(job, source_info.tags, name, label, stage)
    notes = cf_notes + notes
    if len(parts) > 1:
        notes.append(_band_files_note(label, source_info, parts))
    converted = []
    thumb_path = job.workdir / f"{item_id}.png"
    with _Checksums() as checksums:
        for part in parts:
            with stage("convert", "convert" if len(parts) == 1 else f"convert {part.key}"):
                outcome = to_cog(
                    part.source,
                    part.cog_path,
                    compression=job.compression,
                    dtypes=[b.data_type for b in part.bands],
                    threads=job.threads,
                    may_pass_through=subdataset is None and not job.has_georef_sidecars
                    and source_info.driver == "GTiff" and part.source == placed,
                    cache_bytes=job.cache_bytes,
                )  # fmt: skip
                kept = _keep_crs(part.cog_path, source_info.crs_wkt, label)
                notes += [n for n in kept if n not in notes]
            checksums.start(part.cog_path)  # written: hashed beside what follows
            stage.move("convert", "validate", outcome.validate_s)
            with stage("inspect"), rasterio.open(part.cog_path) as cog:
                shown = label if len(parts) == 1 else f"{label} ({part.key})"
                info = _as_source_band(
                    inspect(cog, label=shown, max_pixels=job.max_pixels, scan_nan=True), part
                )
            converted.append((part, outcome, info))
        with ExitStack() as stack:
            cogs = [stack.enter_context(rasterio.open(part.cog_path)) for part, _, _ in converted]
            with stage("footprint"):
                shape = _footprint_of(cogs, converted[0][2], label)
            with stage("thumbnail"):
                _thumbnail(cogs, [part for part, _, _ in converted], thumb_path)
        with stage("checksum"):
            assets = [SceneAsset(part.key, job.path.name, checksums.result(part.cog_path),
                                 info, outcome.passthrough)
                      for part, outcome, info in converted]  # fmt: skip
    return _scene(item_id, subdataset, (when, cloud_decision, notes), shape, assets, thumb_path,
                  stage)  # fmt: skip


def _scene(item_id: str, subdataset: str | None,
           described: tuple[Acquisition, CloudDecision, list[str]], shape: Footprint,
           assets: list[SceneAsset], thumb_path: Path, stage: Clock,
           product: str | None = None) -> Scene:  # fmt: skip
    """The record of a prepared scene (or raster), its files written: the thumbnail's
    checksum last. `described` is `_time_and_clouds`' time, cloud decision and notes."""
    when, clouds, notes = described
    with stage("checksum"):
        thumbnail = _local(thumb_path)
    return Scene(item_id=item_id, subdataset=subdataset, acquisition=when, footprint=shape,
                 assets=tuple(assets), thumbnail=thumbnail, clouds=clouds, notes=tuple(notes),
                 product=product)  # fmt: skip


@dataclass(frozen=True)
class _CogPart:
    """One COG to write from a raster: all its bands (`data`), or one band of it."""

    key: str
    source: str  # what to_cog converts: the raster, or a one-band VRT of it
    cog_path: Path
    bands: tuple[BandInfo, ...]


def _cog_parts(
    src: DatasetReader, placed: str, info: RasterInfo, workdir: Path, item_id: str
) -> list[_CogPart]:
    """One COG `data` of every band, unless one GeoTIFF cannot tell each band's valid pixels
    as GDAL reads them (rasters.needs_band_files: different nodata per band, nodata on some
    bands only, per-band masks): then one COG per band, each with its band's own nodata or
    mask (cog.band_vrt), named as `band_keys` says. Only then does every pixel keep its
    validity; a single COG would give band 2 band 1's nodata.

    An alpha band is the other bands' mask, not data: it gets no COG of its own, and every
    band's COG carries it as its internal mask, combined with the band's nodata when it has
    one (cog.combined_mask: a COG holds one mask, and GDAL reads nodata OR mask, not both)."""
    if not needs_band_files(src):
        return [_CogPart("data", placed, workdir / f"{item_id}.tif", info.bands)]
    validity = band_validity(src)
    alpha = alpha_band(src)
    keys = band_keys(info.bands, item_id) if len(info.bands) > 1 else ["data"]
    parts = []
    for band, key, rule in zip(info.bands, keys, validity, strict=True):
        if rule is None:  # the alpha band: the mask of the others
            continue
        mask: tuple[str, str] | None = None
        if alpha is not None and rule[0] in ("nodata", "band"):
            path = workdir / f"{item_id}.band{band.index}.mask.tif"
            mask = (str(combined_mask(placed, band.index, alpha, path)), "1")
        elif rule[0] in ("band", "mask"):
            mask = (placed, f"mask,{band.index}")
        suffix = "" if key == "data" else f"_{slugify(key)}"
        vrt = band_vrt(placed, band.index, workdir / f"{item_id}.band{band.index}.vrt",
                       mask=mask)  # fmt: skip
        parts.append(_CogPart(key, str(vrt), workdir / f"{item_id}{suffix}.tif", (band,)))
    return parts


def _as_source_band(info: RasterInfo, part: _CogPart) -> RasterInfo:
    """A one-band COG of a raster's band described with that band's colour (red, green,
    blue: eo:bands common names) and description, which a one-band GeoTIFF may not keep."""
    if part.key == "data" and len(part.bands) == len(info.bands):
        return info
    source, band = part.bands[0], info.bands[0]
    kept = replace(band, color=source.color, description=band.description or source.description)
    return replace(info, bands=(kept,))


# Asset keys a band's description may not take: the item's other assets.
_RESERVED_KEYS = {"data", "thumbnail"}
# Longest band key: it names files (`<item-id>_<key>.tif`, `.<name>.<8 hex>.partial` while
# stored: 23 bytes besides the id and key), which must fit in 255 bytes.
MAX_KEY_LENGTH = 64
_NAME_BYTES, _NAME_OVERHEAD = 255, 23
# Longest id of a container's variable (`<file id>-<variable>`): a file id is at most
# MAX_ID_LENGTH + 9; a NetCDF variable name may be 256 characters.
MAX_SUBDATASET_ID_LENGTH = 180
_INDEX_KEY = re.compile(r"b\d+")


def subdataset_id(item_id: str, variable: str) -> str:
    """`<item-id>-<variable slug>`, cut to MAX_SUBDATASET_ID_LENGTH with a short hash of
    the variable when longer (ids name files: see band_keys)."""
    full = f"{item_id}-{slugify(variable)}"
    if len(full) <= MAX_SUBDATASET_ID_LENGTH:
        return full
    digest = hashlib.sha256(variable.encode()).hexdigest()[:8]
    return f"{full[: MAX_SUBDATASET_ID_LENGTH - 9].rstrip('-._')}-{digest}"


def band_keys(bands: tuple[BandInfo, ...], item_id: str = "") -> list[str]:
    """Asset keys of a raster's bands stored one COG each: the slugs of their descriptions
    when every band has one and they differ (`red`, `nir`), else `b1`..`bN`. A description
    with no ASCII letter or digit has no slug; `bN` is band N's key alone (descriptions
    "b2", "b1" would make asset b1 hold band 2); a slug longer than MAX_KEY_LENGTH, or than
    a file name beside `item_id` allows, is cut and given a short hash of the description."""
    room = min(MAX_KEY_LENGTH, _NAME_BYTES - _NAME_OVERHEAD - len(item_id.encode()))
    slugs = [_band_slug(b.description, room) for b in bands]
    numbered = [f"b{b.index}" for b in bands]
    misnumbered = any(_INDEX_KEY.fullmatch(s) and s != n for s, n in zip(slugs, numbered,
                                                                        strict=True))  # fmt: skip
    if (all(slugs) and len(set(slugs)) == len(slugs) and not _RESERVED_KEYS & set(slugs)
            and not misnumbered):  # fmt: skip
        return slugs
    return numbered


def _band_slug(description: str | None, room: int) -> str:
    if description is None:
        return ""
    folded = unicodedata.normalize("NFKD", description).encode("ascii", "ignore")
    if not any(chr(c).isalnum() for c in folded):  # slugify would say "item"
        return ""
    slug = slugify(description)
    if len(slug) <= room:
        return slug
    digest = hashlib.sha256(description.encode()).hexdigest()[:8]
    return f"{slug[: max(1, room - 9)].rstrip('-._')}-{digest}"


def _band_files_note(label: str, info: RasterInfo, parts: list[_CogPart]) -> str:
    """The report's note on a raster stored one COG per band, and why."""
    nodata = ", ".join("none" if b.nodata is None else f"{b.nodata:g}" for b in info.bands)
    keys = ", ".join(p.key for p in parts)
    return (f"{label}: bands with different nodata ({nodata}) or masks of their own, which "
            f"one GeoTIFF cannot hold: one COG per band ({keys})")  # fmt: skip


def _thumbnail(cogs: list[DatasetReader], parts: list[_CogPart], dst: Path) -> None:
    """The raster's thumbnail (thumbnails.write_thumbnail); from its bands' COGs when each
    band has one: the bands coloured red, green, blue in the source, else the first band
    with valid data (thumbnails.first_band_with_data)."""
    if len(cogs) == 1:
        write_thumbnail(cogs[0], dst)
        return
    colors = [part.bands[0].color for part in parts]
    if all(c in colors for c in ("red", "green", "blue")):
        write_band_thumbnail([(cogs[colors.index(c)], 1) for c in ("red", "green", "blue")], dst)
    else:
        write_band_thumbnail([first_band_with_data([(cog, 1) for cog in cogs])], dst)


def _prepare_scene(job: Job, stage: Clock) -> Scene:
    """A band-per-file scene: every band converted, one footprint, one time, one cloud cover."""
    infos: dict[str, RasterInfo] = {}
    with stage("inspect"):
        for band, path in job.bands:
            with open_dataset(path) as src:
                infos[band] = inspect(src, label=f"{job.relpath} (band {band}, {path.name})",
                                      max_pixels=job.max_pixels)  # fmt: skip
    first = job.bands[0][0]
    when, clouds, notes = _time_and_clouds(job, infos[first].tags, str(job.bands[0][1]),
                                           job.relpath, stage)  # fmt: skip
    pending = []
    with _Checksums() as checksums:
        for band, path in job.bands:
            cog_path = job.workdir / f"{job.item_id}_{slugify(band)}.tif"
            with stage("convert", f"convert {band}"):
                outcome = to_cog(str(path), cog_path, compression=job.compression,
                                 dtypes=[b.data_type for b in infos[band].bands],
                                 threads=job.threads,
                                 may_pass_through=infos[band].driver == "GTiff",
                                 cache_bytes=job.cache_bytes)  # fmt: skip
            checksums.start(cog_path)  # hashed beside the next band's conversion
            stage.move("convert", "validate", outcome.validate_s)
            with stage("inspect"), rasterio.open(cog_path) as cog:
                info = inspect(cog, label=f"{job.relpath} ({band})", max_pixels=job.max_pixels,
                               scan_nan=True)  # fmt: skip
            pending.append((band, path, cog_path, info, outcome))
        with stage("checksum"):
            assets = [SceneAsset(band, path.name, checksums.result(cog_path), info,
                                 outcome.passthrough)
                      for band, path, cog_path, info, outcome in pending]  # fmt: skip
    # The footprint of the finest data band (masks can be coarser or padded).
    finest = primary_asset(tuple(assets))
    thumb_path = job.workdir / f"{job.item_id}.png"
    with stage("footprint"), rasterio.open(finest.file.path) as cog:
        shape = _footprint(cog, finest.raster, job.relpath)
    rgb = [next((a for a in assets if a.key.upper() == name), None)
           for name in RGB_BANDS.get(job.product or "", ())]  # fmt: skip
    picked = [a for a in rgb if a is not None] if all(rgb) and rgb else [finest]
    with stage("thumbnail"), ExitStack() as stack:
        opened = [stack.enter_context(rasterio.open(a.file.path)) for a in picked]
        write_band_thumbnail([(src, 1) for src in opened], thumb_path)
    return _scene(job.item_id, None, (when, clouds, notes), shape, assets, thumb_path, stage,
                  job.product)  # fmt: skip


def _time_and_clouds(
    job: Job, tags: dict[str, str], source: str, label: str, stage: Clock
) -> tuple[Acquisition, CloudDecision, list[str]]:
    """`_time_and_clouds_of`, timed as the `metadata` stage."""
    with stage("metadata"):
        return _time_and_clouds_of(job, tags, source, label)


def _time_and_clouds_of(
    job: Job, tags: dict[str, str], source: str, label: str
) -> tuple[Acquisition, CloudDecision, list[str]]:
    """The acquisition time and the cloud decision, from every source the job's rules name:
    options, the folder's byod-metadata.csv, product metadata, acquisition tags, a CF time
    coordinate, names, TIFFTAG_DATETIME, and masks. With no time anywhere the input is
    time-less (`Acquisition.unknown`, noted for the report), or rejected as `no_datetime`
    when the run requires a time."""
    found, notes = metadata.read_products(job.metadata_paths)
    # A local source's discovery notes the table once per run; a fetched one's, per row.
    row, row_notes = metadata.user_row(job.user_metadata_path, job.relpath,
                                       table_notes=job.source_root is None)  # fmt: skip
    notes += row_notes
    embedded, cf_notes = metadata.cf_time(source, tags, label)
    notes += cf_notes
    user_source = f"user:{metadata.USER_METADATA_LABEL}"
    when = metadata.acquisition(job.rules, tags, job.relpath, found,
                                metadata.user_acquisition(row, user_source), embedded)  # fmt: skip
    if when is None and job.rules.time.require:
        raise RejectedInput(Reason.NO_DATETIME, no_time_message(label, job.rules.time.order))
    if when is None:  # first ingested now: the upper bound of when it was acquired
        when = Acquisition.unknown(datetime.now(UTC), job.rules.time.order)
    if when.note:
        notes.append(when.note)
    clouds = metadata.clouds(job.rules, tags, found, source, job.mask_path,
                             metadata.user_cloud(row, user_source))  # fmt: skip
    return when, clouds, notes


def _footprint(cog: DatasetReader, info: RasterInfo, label: str) -> Footprint:
    return _footprint_of([cog], info, label)


def _footprint_of(cogs: list[DatasetReader], info: RasterInfo, label: str) -> Footprint:
    """The valid-data footprint of COGs on one grid (a raster's bands stored one COG each):
    valid where any band is (rasters.decimated_mask's rule for the bands of one file)."""
    masks = [decimated_mask(cog) for cog in cogs]
    mask, col_scale, row_scale = masks[0]
    for other, _, _ in masks[1:]:
        mask = mask | other
    try:
        region = valid_region(mask, col_scale, row_scale)
        return footprint(region, pixel_to_crs(cogs[0]), CRS.from_wkt(info.crs_wkt))
    except NoValidData:
        raise RejectedInput(
            Reason.NO_VALID_DATA, f"{label}: every pixel is nodata or masked"
        ) from None


def _with_prj_crs(name: str, job: Job, label: str) -> str:
    """Apply a `.prj` sidecar GDAL ignored (its PNG and JPEG drivers read the world file but
    not the .prj): a tiled GeoTIFF copy with that CRS, in the job's folder. Otherwise `name`."""
    prj = job.path.with_suffix(".prj")
    with rasterio.open(name) as src:
        if not _prj_applies(job.path, src):
            return name
    try:
        crs = CRS.from_wkt(prj.read_text("utf-8", errors="replace"))
    except CRSError as exc:
        raise RejectedInput(Reason.UNKNOWN_CRS, f"{label}: {prj.name} is no CRS ({exc})") from None
    staged = job.workdir / f"{job.item_id}.prj-applied.tif"  # by id: names stay short
    return _staged(name, staged, rasterio.crs.CRS.from_wkt(crs.to_wkt()))


def _prj_applies(path: Path, src: DatasetReader) -> bool:
    """A `.prj` beside `path` GDAL did not apply: `src` is placed but has no CRS."""
    return path.with_suffix(".prj").is_file() and (
        src.crs is None and src.transform != Affine.identity()
    )


def _with_cf_placement(name: str, job: Job, label: str, item_id: str) -> tuple[str, list[str]]:
    """A NetCDF variable GDAL leaves unplaced but CF places (`cf.place`: a lat/lon grid
    without grid_mapping, a rotated-pole or projected grid beside 2-D lat/lon arrays) as a
    tiled GeoTIFF copy with that CRS and geotransform, and the report notes; else `name`."""
    with open_dataset(name) as src:
        placement = cf.place(src, label)
    if placement is None:
        return name, []
    staged = _staged(name, job.workdir / f"{item_id}.cf-placed.tif", placement.crs,
                     placement.transform)  # fmt: skip
    notes = [placement.note] if placement.note else []
    if not placement.crs.to_epsg():
        # GeoTIFF keys cannot hold every CRS (a rotated pole): the item's proj:wkt2 is exact.
        notes.append(f"{label}: CRS from {placement.source.removeprefix('cf:')}")
    return staged, notes


def _keep_crs(cog_path: Path, crs_wkt: str, label: str) -> list[str]:
    """Keep a CRS GeoTIFF keys cannot encode (a rotated pole: GeoTIFF 1.1 has no such
    projection, and GDAL then writes it only to a `.aux.xml` beside the file, which the COG
    conversion does not carry) for describing the COG here, in GDAL's PAM sidecar beside
    the local COG; the stored COG has no CRS then, and the note says the item's proj:wkt2
    is where it is. [] when the COG kept its CRS."""
    with rasterio.open(cog_path) as cog:
        if cog.crs is not None:
            return []
    crs = CRS.from_wkt(crs_wkt)
    first_axis = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
    root = ElementTree.Element("PAMDataset")
    srs = ElementTree.SubElement(root, "SRS")
    srs.set("dataAxisToSRSAxisMapping", "2,1" if first_axis in ("north", "south") else "1,2")
    srs.text = crs.to_wkt()
    ElementTree.ElementTree(root).write(f"{cog_path}.aux.xml", encoding="utf-8")
    return [f"{label}: GeoTIFF cannot encode its CRS ({crs.name}); the COG has none, "
            "the item's proj:wkt2 holds it"]  # fmt: skip


def _staged(name: str, path: Path, crs: rasterio.crs.CRS, transform: Affine | None = None) -> str:
    """A tiled GeoTIFF copy of `name` (metadata and band units kept) with `crs` and, when
    given, `transform` set: what GDAL did not read from the input's own files. A VRT of it
    instead when its bands differ in nodata or masks (a PNG's per-band nodata in its
    `.aux.xml`): a GeoTIFF would give every band band 1's nodata (see `_cog_parts`)."""
    with rasterio.open(name) as src:
        per_band = needs_band_files(src)
    if per_band:
        path = path.with_suffix(".vrt")
        rasterio.shutil.copy(name, path, driver="VRT")
    else:
        rasterio.shutil.copy(name, path, driver="GTiff", TILED="YES", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "r+") as dst:
        dst.crs = crs
        if transform is not None:
            dst.transform = transform
    return str(path)


def _local(path: Path) -> AssetFile:
    return AssetFile(path, path.stat().st_size, file_sha256(path))


class _Checksums:
    """The COGs' checksums (`_local`), each started in a thread as soon as its COG is
    written, so it runs beside what the worker does next: the COG's inspection, the next
    band's conversion, the footprint, the thumbnail. hashlib and file reads release the GIL,
    and a conversion keeps about 1.3 of 2 cores busy (PITFALLS): the hash of a 540 MB COG,
    0.4 s, costs no wall time then (benchmarks/README.md). One thread, no GDAL in it.

    A context manager: leaving it, on success or on an error (a rejected input), cancels
    the hashes not started and waits for the one running, so no thread outlives the input.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="byod-checksum")
        self._started: dict[Path, Future[AssetFile]] = {}

    def __enter__(self) -> _Checksums:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self, path: Path) -> None:
        """Hash `path`, which is not written to any more, in the background."""
        self._started[path] = self._pool.submit(_local, path)

    def result(self, path: Path) -> AssetFile:
        """`path`'s size and checksum, waiting for its hash; its error (OSError) if any."""
        return self._started[path].result()


def georef_sidecar_names(sidecars: tuple[str, ...]) -> bool:
    """Sidecars GDAL reads into the dataset: copying the raster alone would drop them."""
    return any(
        PurePosixPath(p).suffix.lower() in WORLD_FILE_EXTENSIONS | {".prj", ".msk", ".ovr", ".aux"}
        or p.lower().endswith(".aux.xml")
        for p in sidecars
    )
