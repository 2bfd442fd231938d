"""Open a raster and read what it says into plain records; the reasons an input is rejected.

Everything read here comes from headers, overviews or decimated reads, so memory stays
bounded by the block size, not the raster size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader
from rasterio.transform import Affine, GCPTransformer, RPCTransformer
from rasterio.warp import transform as warp_transform

from byod.footprint import PixelToCrs
from byod.reasons import Reason, RejectedInput

# Longest side of the mask read for a footprint; PITFALLS: a 16x decimated mask took 32 ms
# where the full-resolution one took 4-5 s.
FOOTPRINT_MASK_SIZE = 1024


@dataclass(frozen=True)
class BandInfo:
    index: int
    data_type: str
    nodata: float | int | None
    color: str  # GDAL colour interpretation name, lower case ("red", "gray", "undefined", ...)
    scale: float
    offset: float
    unit: str | None
    description: str | None


@dataclass(frozen=True)
class RasterInfo:
    """What one raster says about itself; read from headers only."""

    name: str  # the path or GDAL dataset name it was opened with
    driver: str
    width: int
    height: int
    crs_wkt: str
    crs_code: str | None  # "EPSG:32633" only when the authority match is certain
    transform: tuple[float, float, float, float, float, float] | None  # None with GCPs / RPCs
    georeferencing: str  # "transform", "gcps" or "rpcs"
    bands: tuple[BandInfo, ...]
    tags: dict[str, str] = field(default_factory=dict)
    has_mask: bool = False


def open_dataset(name: str | Path) -> DatasetReader:
    """Open with rasterio, turning its errors into rejections with the file named."""
    path = Path(name)
    if path.exists() and path.is_file() and path.stat().st_size == 0:
        raise RejectedInput(Reason.EMPTY_FILE, f"{path.name}: file is empty (0 bytes)")
    try:
        return rasterio.open(name)
    except RasterioIOError as exc:
        text = str(exc)
        if "not recognized as being in a supported file format" in text or (
            "not recognized as a supported file format" in text
        ):
            raise RejectedInput(
                Reason.NOT_A_RASTER, f"{path.name}: not a raster format GDAL can read"
            ) from None
        if "TIFFReadDirectory" in text or "truncated" in text.lower() or "TIFF" in text:
            raise RejectedInput(
                Reason.TRUNCATED, f"{path.name}: damaged or truncated file ({_first_line(text)})"
            ) from None
        raise RejectedInput(
            Reason.UNREADABLE, f"{path.name}: cannot be opened ({_first_line(text)})"
        ) from None


def subdatasets(name: str | Path) -> list[str]:
    """GDAL names of the subdatasets of a container (NetCDF, HDF), or [] for a plain raster."""
    with open_dataset(name) as src:
        return list(src.subdatasets)


def inspect(src: DatasetReader, *, label: str, max_pixels: int) -> RasterInfo:
    """Read the header of an open dataset; reject what cannot become a georeferenced COG."""
    if src.count == 0:
        raise RejectedInput(Reason.NOT_A_RASTER, f"{label}: has no raster bands")
    if src.width * src.height > max_pixels:
        raise RejectedInput(
            Reason.TOO_LARGE,
            f"{label}: header claims {src.width} x {src.height} pixels, over the limit of "
            f"{max_pixels:,} (--max-pixels)",
        )
    crs, transform, georef = _georeferencing(src, label)
    _check_crs(crs, src, label)
    _check_readable(src, label)
    bands = tuple(
        BandInfo(
            index=i,
            data_type=src.dtypes[i - 1],
            nodata=src.nodatavals[i - 1],
            color=src.colorinterp[i - 1].name.lower(),
            scale=float(src.scales[i - 1]),
            offset=float(src.offsets[i - 1]),
            unit=src.units[i - 1] or None,
            description=src.descriptions[i - 1] or None,
        )
        for i in src.indexes
    )
    tags = {**src.tags(), **src.tags(ns="IMAGERY")}
    flags = src.mask_flag_enums[0]
    return RasterInfo(
        name=src.name,
        driver=src.driver,
        width=src.width,
        height=src.height,
        crs_wkt=crs.to_wkt(),
        crs_code=certain_authority_code(crs),
        transform=None if transform is None else tuple(transform)[:6],  # type: ignore[arg-type]
        georeferencing=georef,
        bands=bands,
        tags=tags,
        has_mask=MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags,
    )


def certain_authority_code(crs: CRS) -> str | None:
    """`AUTH:CODE` only when PROJ matches the CRS to it with full confidence, else None."""
    try:
        found = ProjCRS.from_wkt(crs.to_wkt()).to_authority(min_confidence=100)
    except CRSError:
        return None
    return None if found is None else f"{found[0]}:{found[1]}"


def _georeferencing(src: DatasetReader, label: str) -> tuple[CRS, Affine | None, str]:
    if src.crs is not None and src.transform != Affine.identity():
        return src.crs, src.transform, "transform"
    gcps, gcp_crs = src.gcps
    if gcps and gcp_crs is not None:
        return gcp_crs, None, "gcps"
    if src.rpcs is not None:
        return CRS.from_epsg(4326), None, "rpcs"
    if src.crs is not None:
        what = "a coordinate system but no geotransform"
    elif src.transform != Affine.identity():
        what = "a geotransform (world file) but no coordinate system: add a .prj beside it"
    else:
        what = "no georeferencing"
    raise RejectedInput(
        Reason.NOT_GEOREFERENCED,
        f"{label}: has {what}; a raster needs a CRS with a geotransform, GCPs or RPCs",
    )


def _check_crs(crs: CRS, src: DatasetReader, label: str) -> None:
    """A CRS is usable when the raster's centre maps to finite longitude and latitude."""
    xs, ys = pixel_to_crs(src)(np.array([src.width / 2]), np.array([src.height / 2]))
    try:
        lon, lat = warp_transform(crs, "EPSG:4326", xs.tolist(), ys.tolist())
        ok = all(math.isfinite(v) for v in (*lon, *lat))
    # GDAL's own errors are no RasterioError: an engineering (LOCAL_CS) CRS raises
    # CPLE_NotSupportedError here, which the worker used to report as CRASHED.
    except (RasterioError, CPLE_BaseError, CRSError, ValueError) as exc:
        raise RejectedInput(
            Reason.UNKNOWN_CRS,
            f"{label}: coordinate system cannot be related to longitude/latitude "
            f"({_first_line(str(exc))})",
        ) from None
    if not ok:
        raise RejectedInput(
            Reason.UNKNOWN_CRS, f"{label}: coordinate system cannot be related to lon/lat"
        )


def _check_readable(src: DatasetReader, label: str) -> None:
    """Read the last block: a truncated file fails here rather than mid-conversion."""
    rows, cols = src.block_shapes[0]
    window = rasterio.windows.Window(
        (src.width - 1) // cols * cols, (src.height - 1) // rows * rows, 1, 1
    )
    try:
        src.read(src.count, window=window)
    except RasterioError as exc:
        if is_out_of_memory(exc):
            # A block too big for the worker's RLIMIT_AS (a decompression bomb) is the memory
            # bound, not a truncated file: the runner turns MemoryError into MEMORY_LIMIT.
            raise MemoryError(f"{label}: {_first_line(str(exc.__cause__ or exc))}") from exc
        raise RejectedInput(
            Reason.TRUNCATED, f"{label}: pixel data cannot be read ({_first_line(str(exc))})"
        ) from None


def pixel_to_crs(src: DatasetReader) -> PixelToCrs:
    """A function mapping pixel (col, row) corner coordinates to the raster's CRS."""
    if src.crs is not None and src.transform != Affine.identity():
        transform = src.transform

        def affine(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = transform * (cols, rows)
            return np.asarray(xs), np.asarray(ys)

        return affine
    gcps, _ = src.gcps
    transformer: Any = GCPTransformer(gcps) if gcps else RPCTransformer(src.rpcs)

    def warped(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = transformer.xy(rows, cols, offset="ul")
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    return warped


def decimated_mask(src: DatasetReader) -> tuple[np.ndarray, float, float]:
    """The valid-data mask read at most FOOTPRINT_MASK_SIZE on a side (from overviews in a
    COG) and the column and row scale back to full-resolution pixels."""
    factor = max(1, math.ceil(max(src.width, src.height) / FOOTPRINT_MASK_SIZE))
    shape = (max(1, src.height // factor), max(1, src.width // factor))
    if _all_valid(src):
        return np.ones(shape, dtype=bool), src.width / shape[1], src.height / shape[0]
    mask = src.dataset_mask(out_shape=shape, resampling=Resampling.nearest)
    return mask > 0, src.width / shape[1], src.height / shape[0]


def _all_valid(src: DatasetReader) -> bool:
    return all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums)


_OUT_OF_MEMORY_WORDS = ("out of memory", "cannot allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is a failed allocation.

    rasterio wraps GDAL's "cannot allocate N bytes" in a generic "Read failed. See previous
    exception for details."; only the chained cause names the allocation.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if isinstance(current, MemoryError) or any(w in text for w in _OUT_OF_MEMORY_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"
