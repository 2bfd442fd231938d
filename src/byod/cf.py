"""Place a NetCDF variable by its CF coordinates where GDAL's netCDF driver does not.

GDAL (3.10, the rasterio wheel's) leaves two common kinds of CF files without a CRS or a
geotransform, though their grid is regular and fully described:

- a latitude/longitude grid without a `grid_mapping` variable (most CMIP6, CORDEX and
  Copernicus CDS files): GDAL computes the geotransform from the 1-D `lat`/`lon` coordinates
  but sets a CRS only with its `GDAL_NETCDF_ASSUME_LONGLAT` option (off by default, and
  decided on the coordinates' range alone). CF 1.11 section 4.1/4.2 identifies latitude and
  longitude coordinates by `units` (`degrees_north`, `degrees_east` and their variants) or
  `standard_name`; with no grid mapping CF leaves the datum unspecified, and byod assumes
  WGS 84 (EPSG:4326), as GDAL's option, xarray/rioxarray and CDO do, and says so in a note.
- a grid whose variable names 2-D latitude/longitude arrays in `coordinates` (CF 5.2): GDAL
  then exposes only those arrays (its GEOLOCATION metadata domain, RFC 4) and drops the
  geotransform of the 1-D grid coordinates, and it does not read a
  `rotated_latitude_longitude` grid mapping (EURO-CORDEX) at all. The CRS comes from the
  grid mapping (CF appendix F, through pyproj's `CRS.from_cf`), the geotransform from the
  1-D grid coordinates, and both are checked against the 2-D latitude/longitude arrays.

A variable placed only by 2-D arrays (curvilinear grids, swaths) has no regular grid to
find: `place` returns None and the caller rejects it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
import rasterio.crs
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.transform import Affine
from rasterio.windows import Window

from byod.reasons import Reason, RejectedInput

# CF 1.11 sections 4.1 and 4.2: the units that make a coordinate latitude or longitude.
LATITUDE_UNITS = frozenset(
    {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
)
LONGITUDE_UNITS = frozenset(
    {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
)
_X_NAMES = frozenset({"longitude", "grid_longitude", "projection_x_coordinate"})
_Y_NAMES = frozenset({"latitude", "grid_latitude", "projection_y_coordinate"})
# Units of projection coordinates (CF: UDUNITS lengths) in metres, pyproj's CRS unit.
_METRES = {"m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0,
           "km": 1000.0, "kilometre": 1000.0, "kilometer": 1000.0,
           "kilometres": 1000.0, "kilometers": 1000.0}  # fmt: skip
# Spacing of 1-D coordinates counted as regular: relative to the step (float32 coordinates
# of a 0.11° grid drift by about 1e-5 of it).
REGULAR_TOLERANCE = 1e-3
# How far (in cells) a 2-D latitude/longitude array may lie from the grid it should match.
GEOLOCATION_TOLERANCE = 0.5

ASSUMED_WGS84 = "cf:coordinate units (WGS 84 assumed)"


@dataclass(frozen=True)
class Placement:
    """Where a CF variable lies: its CRS, the geotransform of its GDAL pixel grid (rows as
    GDAL's netCDF driver returns them, north up; in the CRS's units: degrees for
    latitude/longitude and rotated poles, metres for a projected grid mapping, km
    coordinates converted), and where the CRS came from (`source`; `note` for
    the report when WGS 84 was assumed)."""

    crs: rasterio.crs.CRS
    transform: Affine
    source: str  # "cf:grid_mapping <name>" or ASSUMED_WGS84
    note: str | None = None


def variable_name(name: str, variable: str) -> str:
    """The GDAL name of another variable of the NetCDF file that `name` was opened as
    (`NETCDF:"file":var`, GDAL's `netcdf:file:var`, or the file itself)."""
    base = name.rsplit(":", 1)[0] if name.lower().startswith("netcdf:") else f'NETCDF:"{name}"'
    return f"{base}:{variable}"


def is_geolocated(src: DatasetReader) -> bool:
    """Whether GDAL places the raster by 2-D geolocation arrays (its GEOLOCATION domain)."""
    return bool(src.tags(ns="GEOLOCATION").get("X_DATASET"))


def place(src: DatasetReader, label: str) -> Placement | None:
    """The CF placement of a netCDF variable GDAL opened without a CRS or geotransform.

    `src` is the variable as GDAL's netCDF driver opened it (`NETCDF:"file":var`); `label`
    names the input in messages. None when GDAL already places it, when it is no netCDF
    variable, or when its coordinates are no regular grid of latitude/longitude or of a CF
    grid mapping.
    Raises RejectedInput (not_georeferenced) when the grid contradicts the file's own 2-D
    latitude/longitude arrays, (unknown_crs) when its grid mapping is no CRS PROJ knows.
    """
    has_transform = src.transform != Affine.identity()
    if src.driver != "netCDF" or (src.crs is not None and has_transform):
        return None
    tags = src.tags()
    variable = src.tags(1).get("NETCDF_VARNAME") or src.name.rsplit(":", 1)[-1]
    axes = _grid_axes(tags, variable)
    if axes is None:
        return None
    (x_name, x_attrs), (y_name, y_attrs) = axes
    mapping_name = tags.get(f"{variable}#grid_mapping", "").split(":")[0].strip()
    if mapping_name:
        crs = _mapping_crs(_attributes(tags, mapping_name), label, mapping_name)
        source, note = f"cf:grid_mapping {mapping_name}", None
    elif _is_longitude(x_attrs) and _is_latitude(y_attrs):
        crs, source = CRS.from_epsg(4326), ASSUMED_WGS84
        note = (f"{label}: no grid_mapping; CRS assumed WGS 84 (EPSG:4326) from its CF "
                f"coordinate units ({x_name}, {y_name} in degrees east/north)")  # fmt: skip
    else:
        return None
    if has_transform:  # GDAL's own geotransform from the same 1-D coordinates
        transform = src.transform
    else:
        found = _grid_transform(src, crs, (x_name, x_attrs), (y_name, y_attrs))
        if found is None or not is_geolocated(src):
            return None  # a grid whose rows GDAL's orientation cannot be checked for
        transform = found
    if is_geolocated(src):
        _check_geolocation(src, crs, transform, label)
    return Placement(rasterio.crs.CRS.from_wkt(crs.to_wkt()), transform, source, note)


def _grid_axes(
    tags: Mapping[str, str], variable: str
) -> tuple[tuple[str, dict[str, str]], tuple[str, dict[str, str]]] | None:
    """The X and Y coordinate variables among those GDAL tagged with the variable (its
    dimensions' coordinate variables): by `axis`, `standard_name` or latitude/longitude
    units (CF 4.1, 4.2, 4.4 and appendix F)."""
    owners: dict[str, dict[str, str]] = {}
    for key, value in tags.items():
        owner, _, attribute = key.partition("#")
        if attribute and owner not in ("NC_GLOBAL", variable):
            owners.setdefault(owner, {})[attribute] = value
    named = set(tags.get(f"{variable}#coordinates", "").split())
    xs = [(n, a) for n, a in owners.items() if n not in named and _is_axis(a, "X")]
    ys = [(n, a) for n, a in owners.items() if n not in named and _is_axis(a, "Y")]
    if len(xs) != 1 or len(ys) != 1:
        return None
    return xs[0], ys[0]


def _is_axis(attrs: Mapping[str, str], axis: str) -> bool:
    names, units_of = (_X_NAMES, _is_longitude) if axis == "X" else (_Y_NAMES, _is_latitude)
    return (attrs.get("axis", "").upper() == axis or attrs.get("standard_name") in names
            or units_of(attrs))  # fmt: skip


def _is_longitude(attrs: Mapping[str, str]) -> bool:
    units = attrs.get("units", "").strip().lower()
    return units in LONGITUDE_UNITS or attrs.get("standard_name") == "longitude"


def _is_latitude(attrs: Mapping[str, str]) -> bool:
    units = attrs.get("units", "").strip().lower()
    return units in LATITUDE_UNITS or attrs.get("standard_name") == "latitude"


def _attributes(tags: Mapping[str, str], owner: str) -> dict[str, Any]:
    """A variable's attributes from GDAL's `<var>#<attr>` tags, numbers (and GDAL's
    `{a,b}` arrays) as floats."""
    out: dict[str, Any] = {}
    for key, value in tags.items():
        name, _, attribute = key.partition("#")
        if name == owner and attribute:
            out[attribute] = _value(value)
    return out


def _value(text: str) -> float | list[float] | str:
    parts = text.strip().strip("{}").split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return text
    return numbers[0] if len(numbers) == 1 else numbers


def _mapping_crs(attrs: dict[str, Any], label: str, name: str) -> CRS:
    try:
        return CRS.from_cf(attrs)
    except CRSError as exc:
        raise RejectedInput(
            Reason.UNKNOWN_CRS, f"{label}: its grid_mapping {name} is no CRS PROJ knows ({exc})"
        ) from None


def _grid_transform(
    src: DatasetReader,
    crs: CRS,
    x: tuple[str, dict[str, str]],
    y: tuple[str, dict[str, str]],
) -> Affine | None:
    """The geotransform of regular 1-D X/Y coordinates (cell centres) in the CRS's unit.

    Rows are north up: GDAL's netCDF driver flips a grid stored south to north
    (GDAL_NETCDF_BOTTOMUP, on by default); `_check_geolocation` confirms it on the file.
    """
    scale = 1.0
    if crs.is_projected:
        factor = _METRES.get(x[1].get("units", "m").strip().lower())
        if factor is None:
            return None
        scale = factor
    xs = _coordinate(src, x[0], src.width)
    ys = _coordinate(src, y[0], src.height)
    if xs is None or ys is None:
        return None
    dx, dy = _step(xs * scale), _step(ys * scale)
    if dx is None or dy is None:
        return None
    west = float(xs[0]) * scale - dx / 2
    north = float(ys.max()) * scale + abs(dy) / 2
    return Affine(dx, 0.0, west, 0.0, -abs(dy), north)


def _coordinate(src: DatasetReader, variable: str, length: int) -> np.ndarray | None:
    """A 1-D coordinate variable's values, read through GDAL (one row of `length`)."""
    try:
        with rasterio.open(variable_name(src.name, variable)) as coord:
            if coord.count != 1 or coord.height != 1 or coord.width != length:
                return None
            return np.asarray(coord.read(1)[0], dtype=float)
    except RasterioError:
        return None


def _step(values: np.ndarray) -> float | None:
    """The step of evenly spaced values, None when they are not (or fewer than two)."""
    if values.size < 2 or not np.isfinite(values).all():
        return None
    steps = np.diff(values)
    step = float((values[-1] - values[0]) / (values.size - 1))
    if step == 0 or np.abs(steps - step).max() > REGULAR_TOLERANCE * abs(step):
        return None
    return step


def _check_geolocation(src: DatasetReader, crs: CRS, transform: Affine, label: str) -> None:
    """The grid must put sample pixels (corners and centre) where the file's own 2-D
    latitude/longitude arrays (GDAL's GEOLOCATION X/Y datasets) put them, within half a
    cell; otherwise the grid mapping or the coordinates are wrong and nothing is guessed."""
    geo = src.tags(ns="GEOLOCATION")
    cols = np.array([0, src.width - 1, 0, src.width - 1, src.width // 2])
    rows = np.array([0, 0, src.height - 1, src.height - 1, src.height // 2])
    lons = _samples(geo.get("X_DATASET", ""), int(geo.get("X_BAND", "1")), cols, rows)
    lats = _samples(geo.get("Y_DATASET", ""), int(geo.get("Y_BAND", "1")), cols, rows)
    if lons is None or lats is None:
        return
    to_grid = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
    gx, gy = to_grid.transform(lons, lats)
    x, y = transform * (cols + 0.5, rows + 0.5)
    dx = np.asarray(gx) - np.asarray(x)
    if crs.is_geographic:  # longitudes (rotated or not) compare on the circle
        dx = (dx + 180.0) % 360.0 - 180.0
    off = np.maximum(np.abs(dx) / abs(transform.a), np.abs(np.asarray(gy) - y) / abs(transform.e))
    if not np.isfinite(off).all() or off.max() > GEOLOCATION_TOLERANCE:
        worst = float(np.nanmax(off)) if np.isfinite(off).any() else math.inf
        raise RejectedInput(
            Reason.NOT_GEOREFERENCED,
            f"{label}: its grid mapping and 1-D coordinates put pixels {worst:.1f} cells away "
            "from its own 2-D latitude/longitude arrays; placed by 2-D geolocation arrays "
            "(curvilinear/swath), which byod does not rectify yet",
        )


def _samples(name: str, band: int, cols: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """Values of a geolocation array at (col, row) pixels, read one pixel at a time."""
    try:
        with rasterio.open(name) as array:
            return np.array(
                [
                    float(array.read(band, window=Window(int(c), int(r), 1, 1))[0, 0])
                    for c, r in zip(cols, rows, strict=True)
                ]
            )
    except (RasterioError, IndexError, ValueError):
        return None
