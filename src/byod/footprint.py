"""Valid-data footprint and bbox in EPSG:4326, antimeridian- and pole-safe.

Pure: takes a boolean mask (possibly decimated), the scale back to full-resolution pixels,
a pixel -> CRS function and the CRS, and returns GeoJSON-ready values. The outline is traced
in pixel space, so rotated, south-up, GCP- and RPC-georeferenced rasters get their true shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import antimeridian
import numpy as np
import rasterio.features
import shapely
from pyproj import CRS, Transformer
from rasterio.transform import Affine
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.polygon import orient

PixelToCrs = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# Points per raster side after densifying, so curved edges (polar, large UTM) stay curved.
DENSIFY_STEPS = 32
# The footprint is simplified until it has at most this many vertices.
MAX_VERTICES = 200
# Parts of the valid area smaller than this share of the raster are speckle, not footprint.
MIN_PART_SHARE = 1e-4


@dataclass(frozen=True)
class Footprint:
    geometry: dict[str, Any]  # GeoJSON Polygon or MultiPolygon, EPSG:4326
    bbox: list[float]  # [west, south, east, north]; west > east when it crosses 180°


class NoValidData(ValueError):
    """The mask has no valid pixel."""


def valid_region(mask: np.ndarray, col_scale: float, row_scale: float) -> Polygon | MultiPolygon:
    """The outline of the True pixels, in full-resolution pixel coordinates (col, row).

    Holes are filled: a footprint says where data is, not where it is missing inside.
    """
    height, width = mask.shape
    if mask.all():
        return box(0, 0, width * col_scale, height * row_scale)
    if not mask.any():
        raise NoValidData("no valid pixel")
    scale = Affine.scale(col_scale, row_scale)
    parts = [
        Polygon(shape(geom).exterior)
        for geom, value in rasterio.features.shapes(
            mask.astype(np.uint8), mask=mask, transform=scale, connectivity=8
        )
        if value == 1
    ]
    region = shapely.union_all(parts)
    min_area = MIN_PART_SHARE * width * height * col_scale * row_scale
    polys = [p for p in _polygons(region) if p.area >= min_area] or list(_polygons(region))
    # A staircase of decimated pixels carries no information: smooth it by one pixel.
    tolerance = max(col_scale, row_scale)
    simplified = [Polygon(p.exterior).simplify(tolerance, preserve_topology=True) for p in polys]
    return shapely.union_all(simplified)


def footprint(
    region: Polygon | MultiPolygon, pixel_to_crs: PixelToCrs, crs: CRS | str
) -> Footprint:
    """Map a pixel-space region to EPSG:4326, split at the antimeridian, simplified."""
    to_lonlat = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True)
    minx, miny, maxx, maxy = region.bounds
    step = max(maxx - minx, maxy - miny) / DENSIFY_STEPS
    pieces: list[Polygon] = []
    for poly in _polygons(region):
        ring = np.asarray(shapely.segmentize(poly, step).exterior.coords)
        xs, ys = pixel_to_crs(ring[:, 0], ring[:, 1])
        lon, lat = to_lonlat.transform(xs, ys)
        pieces.extend(_lonlat_polygons(np.asarray(lon), np.asarray(lat)))
    geom = _simplify(shapely.make_valid(shapely.union_all(pieces)))
    if geom.is_empty:
        raise NoValidData("footprint is empty after reprojection")
    geojson = mapping(geom)
    return Footprint(geometry=_as_lists(geojson), bbox=[float(v) for v in antimeridian.bbox(geom)])


def _lonlat_polygons(lon: np.ndarray, lat: np.ndarray) -> list[Polygon]:
    """One ring in lon/lat (PROJ wraps longitudes to ±180) to polygons that never cross 180°."""
    unwrapped = np.degrees(np.unwrap(np.radians(lon)))
    encloses_pole = abs(unwrapped[-1] - unwrapped[0]) > 180
    if encloses_pole:
        fixed = antimeridian.fix_polygon(
            Polygon(zip(lon, lat, strict=True)),
            force_north_pole=bool(np.mean(lat) > 0),
            force_south_pole=bool(np.mean(lat) < 0),
            fix_winding=False,
            great_circle=False,
        )
        return list(_polygons(fixed))
    # Orientation is only meaningful on the continuous (unwrapped) ring.
    ccw = orient(Polygon(zip(unwrapped, lat, strict=True)), sign=1.0)
    cw_lon, cw_lat = np.asarray(ccw.exterior.coords).T
    wrapped = (cw_lon + 180.0) % 360.0 - 180.0
    # Keep +180 as +180 where the unwrapped ring touches it from the west.
    wrapped = np.where((wrapped == -180.0) & (cw_lon > 0), 180.0, wrapped)
    if np.all(np.abs(np.diff(wrapped)) <= 180):
        return [Polygon(zip(wrapped, cw_lat, strict=True))]
    fixed = antimeridian.fix_polygon(
        Polygon(zip(wrapped, cw_lat, strict=True)), fix_winding=False, great_circle=False
    )
    return list(_polygons(fixed))


def _simplify(geom: Any) -> Polygon | MultiPolygon:
    polys = [p for p in _polygons(geom) if p.area > 0]
    geom = MultiPolygon(polys) if len(polys) > 1 else (polys[0] if polys else Polygon())
    if geom.is_empty:
        return geom
    minx, miny, maxx, maxy = geom.bounds
    tolerance = max(maxx - minx, maxy - miny) * 1e-7
    simplified = geom.simplify(tolerance, preserve_topology=True)
    while shapely.get_num_coordinates(simplified) > MAX_VERTICES:
        tolerance *= 2
        simplified = geom.simplify(tolerance, preserve_topology=True)
    out = [orient(p, sign=1.0) for p in _polygons(shapely.make_valid(simplified)) if p.area > 0]
    return MultiPolygon(out) if len(out) > 1 else out[0]


def _polygons(geom: Any) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def _as_lists(value: Any) -> Any:
    """GeoJSON with lists, not tuples, so it compares and serialises plainly."""
    if isinstance(value, (tuple, list)):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value
