"""The plain records the describe step shares: an input (`Candidate`), what a raster says
(`RasterInfo`, `BandInfo`), a footprint, and a scene with its files (`Scene`, `SceneAsset`,
`AssetFile`), filled by the worker that converts an input and completed by the parent that
stores it.

No I/O, and nothing that opens rasters or stores: item building (`items.py`), grouping
(`scenes.py`) and the time and cloud rules can be read and tested with hand-made records
(tests/test_structure.py holds this module and those to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from byod.clouds import CloudDecision
from byod.temporal import Acquisition


@dataclass(frozen=True)
class Candidate:
    """A raster input and the sidecars paired with it."""

    path: str  # a local path, or a key in the source store
    relpath: str  # POSIX path relative to the source; what the report and the item name
    sidecars: tuple[str, ...] = ()
    # For a remote source, what the listing says of the raster and each sidecar (MD5 or
    # ETag): enough to fingerprint without downloading. Empty for local files (hashed).
    versions: tuple[str, ...] = ()
    # Product metadata (MTL, MTD) in the raster's folder or above it, and a cloud mask raster
    # named after it (`<stem>_SCL.tif`, ...); both are also among `sidecars`.
    metadata_files: tuple[str, ...] = ()
    cloud_mask: str | None = None
    user_metadata: str | None = None  # the folder's byod-metadata.csv, also among sidecars
    # A band-per-file scene (scenes.group): (band name, path) of each band file, and the
    # product the layout was recognised as ("landsat", "sentinel2", "custom").
    bands: tuple[tuple[str, str], ...] = ()
    product: str | None = None
    # What discovery says of this input, for the report's notes when it is stored (ingested
    # or replaced), not on runs that leave it unchanged or reject it: a VRT whose members
    # are inputs too (`sources._join_vrt_members`).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BandInfo:
    """One band as GDAL reads it (rasters.inspect): what becomes its `raster:bands` entry
    (raster extension v1.1.0) and, with a colour interpretation, its `eo:bands` entry.
    `scale`/`offset` are GDAL's (value = raw * scale + offset; 1 and 0 when unset)."""

    index: int  # 1-based, as GDAL numbers bands
    data_type: str  # rasterio's dtype name ("uint16", "float32", "complex64", ...)
    nodata: float | int | None
    color: str  # GDAL colour interpretation name, lower case ("red", "gray", "undefined", ...)
    scale: float
    offset: float
    unit: str | None
    description: str | None
    # A float band with no declared nodata that holds NaN (GDAL's mask calls NaN valid then).
    has_nan: bool = False


@dataclass(frozen=True)
class RasterInfo:
    """What one raster says about itself; read from headers only (rasters.inspect)."""

    name: str  # the path or GDAL dataset name it was opened with
    driver: str
    width: int  # pixels
    height: int
    crs_wkt: str
    crs_code: str | None  # "EPSG:32633" only when the CRS is equivalent to that code's definition
    # rasterio's Affine (a, b, c, d, e, f) in CRS units, the order of `proj:transform` (GDAL's
    # geotransform is c, a, b, f, d, e); None with GCPs / RPCs
    transform: tuple[float, float, float, float, float, float] | None
    georeferencing: str  # "transform", "gcps" or "rpcs"
    bands: tuple[BandInfo, ...]
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Footprint:
    """Where an input has valid data (footprint.footprint): the item's `geometry` and
    `bbox`, in EPSG:4326 lon/lat degrees, cut at 180° (RFC 7946 sections 3.1.9, 5.2)."""

    geometry: dict[str, Any]  # GeoJSON Polygon or MultiPolygon, EPSG:4326
    bbox: list[float]  # [west, south, east, north]; west > east when it crosses 180°


@dataclass(frozen=True)
class AssetFile:
    """A file of a scene (a COG, a thumbnail): made in the worker's temporary folder, then
    stored by the parent, which completes it with where it went (`stored_at`)."""

    path: Path  # the local file the worker wrote
    size: int  # bytes
    sha256: str  # hex digest
    href: str | None = None  # where it was stored (absolute path or URL); None until then

    def stored_at(self, href: str) -> AssetFile:
        """A copy with `href` set to where the file was stored."""
        return replace(self, href=href)


@dataclass(frozen=True)
class SceneAsset:
    """One COG of a scene: `data` for a single raster, a band name in a multi-file scene."""

    key: str
    source_name: str  # the input file it was made from
    file: AssetFile
    raster: RasterInfo  # read from the COG
    passthrough: bool  # the input was a valid COG, stored byte for byte

    @property
    def resolution(self) -> tuple[float, float] | None:
        """Pixel size along columns and rows, CRS units (`resolution_of`)."""
        return resolution_of(self.raster.transform)


@dataclass(frozen=True)
class Scene:
    """Everything an item says but where the input came from (items.build_item): one raster,
    a container's variable (`subdataset`) or a band-per-file scene."""

    item_id: str
    subdataset: str | None  # the NetCDF/HDF variable, for a container's scene
    acquisition: Acquisition
    footprint: Footprint
    assets: tuple[SceneAsset, ...]
    thumbnail: AssetFile
    clouds: CloudDecision
    notes: tuple[str, ...] = ()
    product: str | None = None  # "landsat", "sentinel2": band facts from byod/data/bands.json


def resolution_of(transform: tuple[float, ...] | None) -> tuple[float, float] | None:
    """Pixel size along columns and rows of a geotransform, in CRS units; for rotated grids
    the length of each pixel side. None without a geotransform (GCPs, RPCs)."""
    if transform is None:
        return None
    a, b, _, d, e, _ = transform
    return math.hypot(a, d), math.hypot(b, e)
