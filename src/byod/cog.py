"""Cloud Optimized GeoTIFF conversion and validation (rio-cogeo)."""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio.errors import RasterioError
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from byod.config import Compression
from byod.rasters import is_out_of_memory
from byod.reasons import Reason, RejectedInput

log = logging.getLogger(__name__)

# PITFALLS: the stock profiles lack BIGTIFF (a 3.4 GB input then took 9 min to close), and
# GDAL's block cache defaults to 5% of RAM (256 MB kept peak RSS at 0.7 GB, no slowdown).
GDAL_CACHEMAX_MB = 256
_FLOAT_TYPES = {"float16", "float32", "float64"}
_COMPLEX_PREFIX = "complex"


@dataclass(frozen=True)
class CogOutcome:
    path: Path
    passthrough: bool  # the input already was a valid COG and was copied byte for byte


def is_valid_cog(path: str | Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            valid, _, _ = cog_validate(str(path), quiet=True)
        except (RasterioError, OSError, ValueError, KeyError, IndexError):
            return False
    return bool(valid)


def cog_profile(compression: Compression, dtypes: list[str]) -> dict[str, object]:
    """The rio-cogeo profile, with a predictor that fits the data type and BIGTIFF when needed."""
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
) -> CogOutcome:
    """Write `source` as a validated COG at `dst`; a valid COG is copied unchanged."""
    if may_pass_through and is_valid_cog(source):
        shutil.copyfile(source, dst)
        return CogOutcome(dst, passthrough=True)
    staged = _stage_if_needed(source, dst)
    config = {
        "GDAL_NUM_THREADS": str(threads),
        # rasterio hands an int straight to GDALSetCacheMax64, which counts bytes: 256 alone
        # would be a 256-byte cache, 2.7-6x slower (benchmarks/README.md).
        "GDAL_CACHEMAX": GDAL_CACHEMAX_MB * 1024 * 1024,
        "GDAL_TIFF_INTERNAL_MASK": "TRUE",
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rio-cogeo warns about zstd support and masks
            cog_translate(
                str(staged or source),
                str(dst),
                cog_profile(compression, dtypes),
                # Never in memory: rio-cogeo would otherwise hold rasters below 10980² whole.
                in_memory=False,
                config=config,
                quiet=True,
                forward_band_tags=True,
            )
    except (RasterioError, OSError, ValueError) as exc:
        dst.unlink(missing_ok=True)
        if is_out_of_memory(exc):  # the worker's memory bound, not a broken input
            raise MemoryError(str(exc)) from exc
        raise RejectedInput(
            Reason.CONVERSION_FAILED, f"{Path(source).name}: COG conversion failed ({exc})"
        ) from None
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    if not is_valid_cog(dst):
        dst.unlink(missing_ok=True)
        raise RejectedInput(
            Reason.CONVERSION_FAILED, f"{Path(source).name}: converted file is not a valid COG"
        )
    return CogOutcome(dst, passthrough=False)


def _stage_if_needed(source: str, dst: Path) -> Path | None:
    """Copy inputs that rio-cogeo mistakes for GCP rasters to a plain GeoTIFF first.

    rio-cogeo 7 tests `src.gcps[1]` (the GCP CRS) rather than the GCPs themselves; drivers
    such as JP2OpenJPEG report a CRS there with no GCPs, and the conversion then fails with
    "Cannot invert geotransform". A GDAL CreateCopy to a tiled GeoTIFF keeps CRS, transform,
    nodata and masks, streaming block by block.
    """
    with rasterio.open(source) as src:
        gcps, gcp_crs = src.gcps
        if gcps or gcp_crs is None:
            return None
    staged = dst.with_name(dst.stem + ".staged.tif")
    rasterio.shutil.copy(source, staged, driver="GTiff", TILED="YES", BIGTIFF="IF_SAFER")
    return staged
