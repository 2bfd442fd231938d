"""Cloud Optimized GeoTIFF conversion and validation (rio-cogeo; GDAL's COG driver for
rasters placed by GCPs or RPCs)."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import defusedxml.ElementTree as DefusedET
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.transform import Affine
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles
from rio_cogeo.utils import has_mask_band

from byod.band_units import keep_band_units, source_units
from byod.config import Compression
from byod.rasters import is_out_of_memory
from byod.reasons import Reason, RejectedInput

log = logging.getLogger(__name__)

# PITFALLS: the stock profiles lack BIGTIFF (a 3.4 GB input then took 9 min to close), and
# GDAL's block cache defaults to 5% of RAM (256 MB kept peak RSS at 0.7 GB, no slowdown).
GDAL_CACHEMAX_MB = 256
# Issue 14: the whole process tree within 1 GB whatever --workers is, so GDAL_CACHEMAX_MB is
# the run's budget, shared by the conversions that run at once (`cache_budget`), each
# getting at least CACHE_FLOOR_MB: enough for one row of 512-pixel tiles of a 10980-pixel
# wide, 4-band uint16 striped input (45 MB), below which GDAL re-reads the source per tile.
CACHE_FLOOR_MB = 64
_FLOAT_TYPES = {"float16", "float32", "float64"}
_COMPLEX_PREFIX = "complex"


@dataclass(frozen=True)
class CogOutcome:
    """What `to_cog` wrote: the COG's local path, and whether it is the input's bytes."""

    path: Path
    passthrough: bool  # the input already was a valid COG and was copied byte for byte
    validate_s: float = 0.0  # seconds of the validation inside the call (stage timings)


def is_valid_cog(path: str | Path, *, strict: bool = False) -> bool:
    """rio-cogeo's `cog_validate`; `strict` turns its warnings (no overviews) into errors.
    A file that cannot be read is not valid (False; nothing is raised)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            valid, _, _ = cog_validate(str(path), strict=strict, quiet=True)
        except (RasterioError, OSError, ValueError, KeyError, IndexError):
            return False
    return bool(valid)


def is_publishable_cog(path: str | Path) -> bool:
    """Whether an input may be stored byte for byte: a real COG, not merely a valid one.

    rio-cogeo's strict validation, plus what it lets through (PITFALLS: any raster of at most
    512 x 512 pixels passes `cog_validate`, striped and uncompressed or not): tiled (a
    full-width strip shorter than the image is no tile), compressed, with internal overviews
    wherever the image is larger than one tile, and placed by a geotransform (GCPs and RPCs
    are rewritten by GDAL's COG driver, which carries sidecar RPCs into the file).
    """
    if not is_valid_cog(path, strict=True):
        return False
    try:
        with rasterio.open(path) as src:
            return _tiled_compressed_with_overviews(src) and _placed_by_transform(src)
    except (RasterioError, OSError):
        return False


def _tiled_compressed_with_overviews(src: DatasetReader) -> bool:
    rows, cols = src.block_shapes[0]
    striped = cols == src.width and rows < src.height
    larger_than_tile = src.width > cols or src.height > rows
    has_overviews = all(src.overviews(i) for i in src.indexes)
    return not striped and src.compression is not None and (has_overviews or not larger_than_tile)


def _placed_by_transform(src: DatasetReader) -> bool:
    return src.crs is not None and src.transform != Affine.identity()


def cog_profile(compression: Compression, dtypes: list[str]) -> dict[str, object]:
    """The rio-cogeo profile, with a predictor that fits the data type and BIGTIFF when needed.

    `compression` names a rio-cogeo profile (512 x 512 tiles); `dtypes` are the bands'
    rasterio dtype names. GDAL's TIFF PREDICTOR: 3 (floating point) when every band is a
    float, 2 (horizontal differencing) when every band is an integer, none for complex or
    mixed bands. ZSTD at level 1 (PITFALLS); BIGTIFF=IF_SAFER always (GDAL writes BigTIFF
    when the output may pass 4 GB)."""
    profile = dict(cog_profiles.get(compression))
    if all(d in _FLOAT_TYPES for d in dtypes):
        profile["predictor"] = 3
    elif not any(d.startswith(_COMPLEX_PREFIX) or d in _FLOAT_TYPES for d in dtypes):
        profile["predictor"] = 2
    if compression == "zstd":
        profile["zstd_level"] = 1  # PITFALLS: level 1 + predictor beat deflate; GDAL's 9 did not
    profile["bigtiff"] = "IF_SAFER"
    return profile


def to_cog(
    source: str,
    dst: Path,
    *,
    compression: Compression,
    dtypes: list[str],
    threads: int,
    may_pass_through: bool,
    cache_bytes: int | None = None,
) -> CogOutcome:
    """Write `source` as a validated COG at `dst`; a real COG is copied unchanged.

    A raster placed by GCPs or RPCs only is written by GDAL's COG driver, which keeps its
    bands, GCPs or RPCs, nodata and mask: rio-cogeo would warp it through an affine fitted
    to the GCPs (a 1-band raster then gains an alpha band; a strip across 180° is stretched
    over the globe) and cannot open RPC-only rasters at all. A raster with a geotransform is
    placed by it (GDAL's priority) even when it also has GCPs or RPCs (a DigitalGlobe
    `.RPB`), which are then left out of the COG (see `_stage_if_needed`).
    `cache_bytes` is GDAL's block cache in bytes (default GDAL_CACHEMAX_MB MiB): the share
    of the run's budget this conversion gets (`cache_budget`). `threads` is GDAL_NUM_THREADS;
    `dtypes` the bands' rasterio dtype names (`cog_profile`); with `may_pass_through`, an
    input `is_publishable_cog` calls a real COG is copied byte for byte. The output is
    checked with `cog_validate` (strict when it can have overviews).
    Raises RejectedInput (CONVERSION_FAILED) and MemoryError at the worker's memory bound.
    """
    start = time.perf_counter()
    passes = may_pass_through and is_publishable_cog(source)
    checked = time.perf_counter() - start  # the input's own validation, counted as validate
    if passes:
        shutil.copyfile(source, dst)
        return CogOutcome(dst, passthrough=True, validate_s=checked)
    config = {
        "GDAL_NUM_THREADS": str(threads),
        # rasterio hands an int straight to GDALSetCacheMax64, which counts bytes: 256 alone
        # would be a 256-byte cache, 2.7-6x slower (benchmarks/README.md).
        "GDAL_CACHEMAX": cache_bytes or GDAL_CACHEMAX_MB * 1024 * 1024,
        "GDAL_TIFF_INTERNAL_MASK": "TRUE",
    }
    try:
        with rasterio.open(source) as src:
            by_transform = _placed_by_transform(src)
        if by_transform:
            _rio_cogeo(source, dst, cog_profile(compression, dtypes), config)
        else:
            _gdal_cog(source, dst, cog_profile(compression, dtypes), config)
    # GDAL's own errors (CPLE_*) are no RasterioError: the COG driver path raises them.
    except (RasterioError, CPLE_BaseError, OSError, ValueError) as exc:
        dst.unlink(missing_ok=True)
        if is_out_of_memory(exc):  # the worker's memory bound, not a broken input
            raise MemoryError(str(exc)) from exc
        raise RejectedInput(
            Reason.CONVERSION_FAILED, f"{Path(source).name}: COG conversion failed ({exc})"
        ) from None
    # Strict: a tiled file larger than one tile without overviews is no COG byod would pass
    # through either (is_publishable_cog), so it is none byod may write.
    validating = time.perf_counter()
    if not is_valid_cog(dst, strict=_halvable(dst)):
        dst.unlink(missing_ok=True)
        raise RejectedInput(
            Reason.CONVERSION_FAILED,
            f"{Path(source).name}: converted file is not a valid COG (rio-cogeo strict)",
        )
    return CogOutcome(dst, passthrough=False,
                      validate_s=checked + time.perf_counter() - validating)  # fmt: skip


def cache_budget(at_once: int) -> int:
    """GDAL's block cache in BYTES for one of `at_once` conversions running together: an
    equal share of GDAL_CACHEMAX_MB, at least CACHE_FLOOR_MB (PITFALLS: an int passed to
    rasterio.Env counts bytes)."""
    return max(CACHE_FLOOR_MB, GDAL_CACHEMAX_MB // max(1, at_once)) * 1024 * 1024


def overview_levels(width: int, height: int, tile: int) -> int:
    """How many 2x overviews a COG of `width` x `height` pixels needs: until its LONGER side
    fits in one `tile` (GDAL's COG driver rule). rio-cogeo's default counts from the shorter
    side, so a 720 x 360 global grid or a 100 x 4000 strip got none and failed
    `cog_validate(strict=True)` ("greater than 512xH or 512xW ... internal overviews").
    One pixel wide (or high), a raster has none: every overview would be one pixel wide too,
    which rio-cogeo reads as decimation 1, an error.
    """
    levels = 0
    while min(width, height) > 1 and max(width, height) > tile * 2**levels:
        levels += 1
    return levels


def _halvable(path: Path) -> bool:
    """Whether strict validation can hold: a raster one pixel wide or high has no overviews."""
    with rasterio.open(path) as src:
        return min(src.width, src.height) > 1


def _rio_cogeo(source: str, dst: Path, profile: dict[str, object], config: dict[str, Any]) -> None:
    staged = _stage_if_needed(source, dst)
    unmasked = _mask_over_nodata(str(staged or source), dst)
    with rasterio.open(source) as src:
        levels = overview_levels(src.width, src.height, int(str(profile["blockxsize"])))
    with rasterio.open(unmasked or staged or source) as src:
        # rio-cogeo reads through a WarpedVRT, which calls every pixel of a multi-band
        # raster valid despite its per-dataset mask (GDAL 3.10: 3072 valid of 4096 in, 4096
        # out; one band is fine): GDAL's COG driver copies the mask as the internal mask.
        masked_bands = has_mask_band(src) and src.count > 1
    try:
        if masked_bands:
            _gdal_cog(str(unmasked or staged or source), dst, profile, config)
            keep_band_units(source_units(source), dst, profile, config)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rio-cogeo warns about zstd support and masks
            cog_translate(
                str(unmasked or staged or source),
                str(dst),
                profile,
                # Never in memory: rio-cogeo would otherwise hold rasters below 10980² whole.
                in_memory=False,
                overview_level=levels,
                config=config,
                quiet=True,
                forward_band_tags=True,
            )
        keep_band_units(source_units(source), dst, profile, config)  # rio-cogeo drops them
    finally:
        for path in (unmasked, staged):
            if path is not None:
                path.unlink(missing_ok=True)


def _gdal_cog(source: str, dst: Path, profile: dict[str, object], config: dict[str, Any]) -> None:
    """GDAL's COG driver with byod's profile: same tiles, compression, predictor, BIGTIFF
    and overview resampling (nearest, as rio-cogeo) as the rio-cogeo path."""
    options: dict[str, object] = {
        "COMPRESS": profile["compress"],
        "BLOCKSIZE": profile["blockxsize"],
        "BIGTIFF": profile["bigtiff"],
        "NUM_THREADS": config["GDAL_NUM_THREADS"],
        "OVERVIEW_RESAMPLING": "NEAREST",
    }
    if "predictor" in profile:
        options["PREDICTOR"] = profile["predictor"]
    if "zstd_level" in profile:
        options["LEVEL"] = profile["zstd_level"]
    with rasterio.Env(**config):
        rasterio.shutil.copy(source, dst, driver="COG", **options)


def _stage_if_needed(source: str, dst: Path) -> Path | None:
    """A source rio-cogeo would misplace, restaged; None when `source` is fine as it is.

    rio-cogeo warps through the GCPs whenever it finds a GCP CRS, and rasterio's warper
    uses RPCs, even beside a geotransform: the output then lands where the GCPs or RPCs say
    (a `.RPB` sidecar put a Vienna scene in Kansas). Such a source is read through a VRT
    without its GCPs and RPCs (`_without_gcps_and_rpcs`). Drivers such as JP2OpenJPEG also
    report a GCP CRS with no GCPs, and the conversion then fails with "Cannot invert
    geotransform": those are copied to a tiled GeoTIFF (CRS, transform, nodata and masks
    kept, streamed block by block).
    """
    with rasterio.open(source) as src:
        gcps, _ = src.gcps
        if gcps or src.rpcs is not None:
            return _without_gcps_and_rpcs(source, dst)
        if not stages_gtiff_copy(src):
            return None
    staged = dst.with_name(dst.stem + ".staged.tif")
    rasterio.shutil.copy(source, staged, driver="GTiff", TILED="YES", BIGTIFF="IF_SAFER")
    return staged


def stages_gtiff_copy(src: DatasetReader) -> bool:
    """Whether `_stage_if_needed` copies `src` to an uncompressed tiled GeoTIFF (a GCP CRS
    without GCPs or RPCs, as JP2OpenJPEG reports): the temp disk estimate counts that copy."""
    gcps, gcp_crs = src.gcps
    return not gcps and src.rpcs is None and gcp_crs is not None


def band_vrt(source: str, band: int, dst: Path, *, mask: tuple[str, str] | None) -> Path:
    """Band `band` of `source` alone, as a one-band VRT at `dst`: its data type, nodata,
    description, unit, scale, offset, colour table and metadata kept (GDAL's VRT copy).
    With `mask` (file, GDAL band name: `(source, "mask,N")` for GDAL's mask of the band in
    the source, a per-band mask or the dataset's mask or alpha; or a mask file's band "1"),
    that mask is the VRT's dataset mask, which rio-cogeo writes as the COG's internal mask,
    and the band's nodata is dropped: the mask then tells validity alone, as GDAL reads a
    masked band (rio-cogeo would take the nodata and drop the mask). For inputs whose bands'
    validity one GeoTIFF cannot hold (rasters.needs_band_files). A geotransform is kept
    beside GCPs (GDAL's VRT copy writes only the GCPs then)."""
    copy = dst.with_name(dst.stem + ".all.vrt")
    rasterio.shutil.copy(source, copy, driver="VRT")
    root = DefusedET.parse(copy).getroot()
    copy.unlink()
    for element in root.findall("VRTRasterBand"):
        if element.get("band") != str(band):
            root.remove(element)
            continue
        element.set("band", "1")
        for inner in element.findall("MaskBand"):  # per band: moved to the dataset below
            element.remove(inner)
        if mask is not None:
            for inner in element.findall("NoDataValue"):
                element.remove(inner)
        color = element.find("ColorInterp")
        if color is not None and color.text == "Alpha":  # one band is no alpha in a TIFF
            color.text = "Gray"
        # Sources relative to the copy stay right: `dst` is in the same folder.
    for element in root.findall("MaskBand"):
        root.remove(element)
    with rasterio.open(source) as src:
        placed = _placed_by_transform(src)
        crs_wkt, geotransform = (src.crs.to_wkt(), src.transform.to_gdal()) if placed else ("", ())
    if placed and root.find("GeoTransform") is None:
        _place(root, crs_wkt, geotransform)
    if mask is not None:
        _add_mask(root, *mask)
    dst.write_bytes(ElementTree.tostring(root))
    return dst


def _add_mask(root: ElementTree.Element, filename: str, band: str) -> None:
    """A dataset <MaskBand> read from band `band` ("mask,N" or "1") of `filename`."""
    element = ElementTree.SubElement(root, "MaskBand")
    mask_band = ElementTree.SubElement(element, "VRTRasterBand", dataType="Byte")
    simple = ElementTree.SubElement(mask_band, "SimpleSource")
    name = ElementTree.SubElement(simple, "SourceFilename", relativeToVRT="0")
    name.text = str(Path(filename).resolve()) if Path(filename).exists() else filename
    ElementTree.SubElement(simple, "SourceBand").text = band


def combined_mask(source: str, band: int, alpha: int, dst: Path) -> Path:
    """A one-band Byte GeoTIFF at `dst`: 255 where band `band` of `source` is valid by its
    own GDAL mask (its nodata) AND the alpha band `alpha` is not 0, else 0. A COG holds one
    mask, so a band's nodata and the dataset's alpha are combined into it; written block by
    block (memory bounded by a block)."""
    with rasterio.open(source) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
                   "dtype": "uint8", "tiled": True, "compress": "deflate",
                   "blockxsize": 512, "blockysize": 512, "bigtiff": "IF_SAFER"}  # fmt: skip
        with rasterio.open(dst, "w", **profile) as out:
            for _, window in out.block_windows(1):
                valid = (src.read_masks(band, window=window) > 0) & (
                    src.read(alpha, window=window) > 0
                )
                out.write((valid * 255).astype("uint8"), 1, window=window)
    return dst


def _mask_over_nodata(source: str, dst: Path) -> Path | None:
    """A VRT of `source` without its nodata, its per-dataset mask kept as the dataset mask,
    when it has both (None otherwise). GDAL reads such a raster by its mask and ignores the
    nodata; rio-cogeo takes the nodata and drops the mask (pixels the mask hid became data)."""
    with rasterio.open(source) as src:
        if not (has_mask_band(src) and any(v is not None for v in src.nodatavals)):
            return None
    vrt = dst.with_name(dst.stem + ".masked.vrt")
    rasterio.shutil.copy(source, vrt, driver="VRT")
    root = DefusedET.parse(vrt).getroot()
    for element in root.findall("VRTRasterBand"):
        for inner in element.findall("NoDataValue") + element.findall("MaskBand"):
            element.remove(inner)
    for element in root.findall("MaskBand"):
        root.remove(element)
    _add_mask(root, source, "mask,1")
    vrt.write_bytes(ElementTree.tostring(root))
    return vrt


def _without_gcps_and_rpcs(source: str, dst: Path) -> Path:
    """A VRT of `source` (bands, nodata, mask, metadata) placed by its CRS and geotransform
    alone, next to `dst`: its GCP list and RPC metadata domain removed. GDAL's VRT copy
    writes GCPs instead of the geotransform when a dataset has both, so the CRS and the
    geotransform are written back from the source."""
    vrt = dst.with_name(dst.stem + ".georef.vrt")
    rasterio.shutil.copy(source, vrt, driver="VRT")
    with rasterio.open(source) as src:
        crs_wkt, geotransform = src.crs.to_wkt(), src.transform.to_gdal()
    root = DefusedET.parse(vrt).getroot()
    for element in list(root):
        if element.tag in {"GCPList", "SRS", "GeoTransform"} or (
            element.tag == "Metadata" and element.get("domain") == "RPC"
        ):
            root.remove(element)
    _place(root, crs_wkt, geotransform)
    vrt.write_bytes(ElementTree.tostring(root))
    return vrt


def _place(root: ElementTree.Element, crs_wkt: str, geotransform: tuple[float, ...]) -> None:
    """Put a CRS and a geotransform first in a VRT's root element."""
    srs = ElementTree.Element("SRS")  # read in GIS order (x = easting or longitude)
    srs.text = crs_wkt
    transform = ElementTree.Element("GeoTransform")
    transform.text = ", ".join(repr(float(v)) for v in geotransform)
    root[0:0] = [srs, transform]
