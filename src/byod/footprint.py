"""Valid-data footprint and bbox in EPSG:4326, antimeridian- and pole-safe.

Pure: takes a boolean mask (possibly decimated), the scale back to full-resolution pixels,
a pixel -> CRS function and the CRS, and returns GeoJSON-ready values. The outline is traced
in pixel space, so rotated, south-up, GCP- and RPC-georeferenced rasters get their true shape.

Every simplification is outward (Douglas-Peucker at a tolerance, then a buffer a little wider
than it): a footprint only ever gains area, so no valid pixel falls outside it
(`gdal_footprint` traces without simplifying; a vertex budget needs this instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import antimeridian
import numpy as np
import numpy.typing as npt
import rasterio.features
import shapely
from pyproj import CRS, Transformer
from rasterio.transform import Affine
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from byod.extents import union_bbox
from byod.records import Footprint

PixelToCrs = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# Points per raster side after densifying, so curved edges (polar, large UTM) stay curved.
DENSIFY_STEPS = 32
# The footprint is simplified until it has at most this many vertices.
MAX_VERTICES = 200
# The pixel-space outline is simplified to this many vertices before it is reprojected.
PIXEL_VERTICES = 2000
# A piece cut off by the antimeridian narrower than this (degrees, about 1 m) is an edge a
# hair past 180° (cell edges rounded in the file), not data: it would make the bbox end at
# -179.999998 instead of the data's real east edge.
ANTIMERIDIAN_SLIVER = 1e-5
WORLD = box(-180.0, -90.0, 180.0, 90.0)


class NoValidData(ValueError):
    """The mask has no valid pixel, or nothing of the region is left on the Earth after
    reprojection (the input's `no_valid_data` rejection)."""


def valid_region(
    mask: npt.NDArray[np.bool_], col_scale: float, row_scale: float
) -> Polygon | MultiPolygon:
    """The outline of the True pixels, in full-resolution pixel coordinates (col, row).

    `mask` is the (rows, cols) boolean mask of the decimated read (True: valid);
    `col_scale`/`row_scale` are full-resolution pixels per mask pixel. Holes are filled: a
    footprint says where data is, not where it is missing inside. Every valid pixel,
    speckle included, lies inside the result: the staircase of decimated pixels is
    smoothed outward, by one mask pixel, and clipped to the raster.
    Raises NoValidData when no pixel is valid.
    """
    height, width = mask.shape
    raster = box(0, 0, width * col_scale, height * row_scale)
    if mask.all():
        return raster
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
    tolerance = max(col_scale, row_scale)
    # Only a first cut (the budget in lon/lat is met, and refined, after reprojection).
    return _as_polygonal(simplify_outward(region, PIXEL_VERTICES, tolerance, raster, refine=False))


def footprint(
    region: Polygon | MultiPolygon, pixel_to_crs: PixelToCrs, crs: CRS | str
) -> Footprint:
    """Map a pixel-space region to EPSG:4326, split at the antimeridian, simplified outward.

    `region` is in full-resolution pixel (col, row) coordinates (`valid_region`);
    `pixel_to_crs` maps arrays of them to x, y in `crs`, the raster's own CRS (anything
    `pyproj.CRS.from_user_input` reads; a CRSError otherwise). The result's `geometry` is a
    GeoJSON Polygon or MultiPolygon in lon/lat degrees with counter-clockwise exteriors
    (RFC 7946 sections 3.1.6, 3.1.9: cut at 180°, never crossing it) and at most
    MAX_VERTICES coordinates, containing every valid pixel; `bbox` is `lonlat_bbox`'s.

    Latitudes are clamped to [-90, 90] and longitudes wrapped into [-180, 180] (a global grid
    whose cell edges start at 90.5 or -180.5 covers the globe once). A ring around a pole is
    closed over it. Raises NoValidData when nothing is left.
    """
    source = CRS.from_user_input(crs)
    to_lonlat = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    minx, miny, maxx, maxy = region.bounds
    step = max(maxx - minx, maxy - miny) / DENSIFY_STEPS
    pieces: list[Polygon] = []
    for poly in _polygons(region):
        ring = np.asarray(shapely.segmentize(poly, step).exterior.coords)
        xs, ys = pixel_to_crs(ring[:, 0], ring[:, 1])
        for xs_on, ys_on in _on_the_earth(np.asarray(xs), np.asarray(ys), source):
            lon, lat = to_lonlat.transform(xs_on, ys_on)
            lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
            finite = np.isfinite(lon) & np.isfinite(lat)
            if finite.sum() >= 3:
                pieces.extend(_lonlat_polygons(lon[finite], np.clip(lat[finite], -90.0, 90.0)))
    merged = shapely.make_valid(shapely.union_all(pieces)) if pieces else Polygon()
    polys = [p for p in _polygons(merged) if p.area > 0]
    if not polys:
        raise NoValidData("footprint is empty after reprojection")
    geom = simplify_outward(MultiPolygon(polys), MAX_VERTICES, _start_tolerance(polys), WORLD)
    out = [orient(p, sign=1.0) for p in _polygons(geom) if p.area > 0]
    final = MultiPolygon(out) if len(out) > 1 else out[0]
    return Footprint(geometry=_as_lists(mapping(final)), bbox=lonlat_bbox(out))


def _on_the_earth(xs: np.ndarray, ys: np.ndarray, crs: CRS) -> list[tuple[np.ndarray, np.ndarray]]:
    """A ring in a projected CRS as rings within the projection's valid domain.

    Unchanged when every vertex maps to longitude/latitude and back to itself. Otherwise the
    ring leaves the Earth, as the corners of a global grid in Mollweide (GHSL, ESRI:54009) or
    of a MODIS sinusoidal tile at the map's edge do: PROJ's inverse then gives non-finite
    values (Mollweide) or longitudes wrapped past 180° (sinusoidal), and dropping those
    vertices left a sliver. The ring's polygon is then clipped, in the projected CRS, to the
    image of the whole globe (`_projected_globe`) and densified again.
    """
    if not crs.is_projected or _round_trips(xs, ys, crs):
        return [(xs, ys)]
    globe = _projected_globe(crs)
    if globe is None:
        return [(xs, ys)]
    inside = shapely.make_valid(Polygon(zip(xs, ys, strict=True))).intersection(globe)
    minx, miny, maxx, maxy = globe.bounds
    # Simplified (outward) here, where the outline is smooth: near the limb a one-pixel step
    # of the traced staircase spans degrees of longitude, and simplifying those spikes in
    # lon/lat grew the footprint by as much (a Meteosat disk to ±100°).
    tolerance = max(maxx - minx, maxy - miny) * 1e-5
    inside = simplify_outward(inside, MAX_VERTICES, tolerance, globe)
    step = max(maxx - minx, maxy - miny) / (DENSIFY_STEPS * 8)
    rings = []
    for part in _polygons(inside):
        if part.area > 0:
            coords = np.asarray(shapely.segmentize(part, step).exterior.coords)
            rings.append((coords[:, 0], coords[:, 1]))
    return rings


# Degrees kept off the globe's edges (poles, the antimeridian of the projection) when its
# outline is projected: points exactly on them are ambiguous (-180 or 180) or singular.
GLOBE_MARGIN = 1e-7
# Points per side of the globe's outline (0.25° apart along meridians, 0.5° along parallels).
GLOBE_STEPS = 720


def _round_trips(xs: np.ndarray, ys: np.ndarray, crs: CRS) -> bool:
    """Whether every point maps to its geodetic CRS's lon/lat and back to itself (to within
    a millionth of the ring's extent, or 1 CRS unit)."""
    to_geo = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_geo.transform(xs, ys)
    back_x, back_y = to_geo.transform(lon, lat, direction="INVERSE")
    extent = max(float(np.ptp(xs)), float(np.ptp(ys)))
    tolerance = max(1.0, extent * 1e-6)
    with np.errstate(invalid="ignore"):
        error = np.hypot(np.asarray(back_x) - xs, np.asarray(back_y) - ys)
    return bool(np.all(np.isfinite(error) & (error <= tolerance)))


def _projected_globe(crs: CRS) -> Polygon | None:
    """The part of the globe the projected CRS can show, as a polygon in that CRS.

    First the whole globe's outline (the geodetic CRS's longitudes lon_0 ± 180°, latitudes
    ±90°, a hair inside): for the cylindrical and pseudo-cylindrical projections global grids
    use (Mollweide, sinusoidal, Robinson, Eckert, equirectangular) it is the edge of the map,
    the ellipse, the sinusoids. Where that outline does not project (a geostationary view
    sees one side of the Earth only: GOES, Meteosat, Himawari full disks), the convex hull
    of a 0.25° graticule's points that project and come back (`_visible_globe`). None when
    neither gives an area.
    """
    lon_0 = _central_meridian(crs)
    edge = 180.0 - GLOBE_MARGIN
    along = np.linspace(-edge, edge, GLOBE_STEPS)
    lon = np.concatenate([np.full(GLOBE_STEPS, -edge), along, np.full(GLOBE_STEPS, edge),
                          along[::-1]]) + lon_0  # fmt: skip
    lat = np.concatenate([along[::-1] / 2, np.full(GLOBE_STEPS, -edge / 2), along / 2,
                          np.full(GLOBE_STEPS, edge / 2)])  # fmt: skip
    to_crs = Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    xs, ys = to_crs.transform(lon, lat)
    xs, ys = np.asarray(xs), np.asarray(ys)
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        return _visible_globe(crs)
    globe = shapely.make_valid(Polygon(zip(xs, ys, strict=True)))
    polys = [p for p in _polygons(globe) if p.area > 0]
    return max(polys, key=lambda p: p.area) if polys else None


def _visible_globe(crs: CRS) -> Polygon | None:
    """Convex hull, in the projected CRS, of the graticule points (every 0.25°) it maps to and
    back: the disk a geostationary projection sees (convex, as the Earth's limb is), a hair
    inside the limb (the limb's foreshortening keeps the gap to a small part of a pixel)."""
    lon, lat = np.meshgrid(np.arange(-180.0, 180.0, 0.25), np.arange(-89.875, 90.0, 0.25))
    lon, lat = lon.ravel(), lat.ravel()
    to_crs = Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    xs, ys = (np.asarray(v) for v in to_crs.transform(lon, lat))
    back_lon, back_lat = (np.asarray(v) for v in to_crs.transform(xs, ys, direction="INVERSE"))
    with np.errstate(invalid="ignore"):
        dlon = (back_lon - lon + 180.0) % 360.0 - 180.0
        ok = np.isfinite(xs) & np.isfinite(ys) & (np.hypot(dlon, back_lat - lat) < 1e-6)
    if ok.sum() < 3:
        return None
    hull = shapely.MultiPoint(np.column_stack([xs[ok], ys[ok]])).convex_hull
    return hull if isinstance(hull, Polygon) and hull.area > 0 else None


def _central_meridian(crs: CRS) -> float:
    """The projection's central meridian (degrees), 0 when it names none."""
    operation = crs.coordinate_operation
    for param in operation.params if operation is not None else []:
        name = param.name.lower()
        if "longitude" in name and ("origin" in name or "centre" in name or "center" in name):
            return float(param.value)
    return 0.0


def lonlat_bbox(parts: list[Polygon]) -> list[float]:
    """[west, south, east, north] of lon/lat parts that never cross 180°.

    The smallest interval on the circle of longitudes covering every part (extents.union_bbox),
    so parts either side of 180° give west > east (RFC 7946 section 5.2). When that interval
    crosses 180° and is wider than half the globe (the data spread over every longitude, as a
    global cropland map is), the bbox is the plain [-180, 180]: it excludes almost nothing
    and every reader handles it.
    """
    west, south, east, north = union_bbox(p.bounds for p in parts)
    if west > east and (east + 360.0 - west) > 180.0:
        west, east = -180.0, 180.0
    return [west, south, east, north]


def simplify_outward(
    geom: BaseGeometry, max_vertices: int, tolerance: float, clip: Polygon, *, refine: bool = True
) -> BaseGeometry:
    """`geom` with at most `max_vertices` coordinates, containing `geom`, within `clip`.
    `tolerance` is the first one tried, in `geom`'s units (pixels, degrees, CRS units).

    Unchanged when within budget (exactly collinear points removed). Otherwise simplified by
    Douglas-Peucker at a tolerance, which moves the boundary by less than it, then grown by
    a little more (mitred, so corners stay corners): the result contains the original. The
    tolerance doubles until the budget holds (nearby parts
    merge on the way, so many islands converge too); with `refine` it is then bisected back
    towards the smallest one that holds, so the footprint grows no more than needed.
    """
    plain = shapely.make_valid(geom.simplify(0.0, preserve_topology=True))
    if shapely.get_num_coordinates(plain) <= max_vertices:
        return plain
    low, high = 0.0, max(tolerance, 1e-12)
    best = _grown_and_simplified(geom, high, clip)
    for _ in range(64):
        if shapely.get_num_coordinates(best) <= max_vertices:
            break
        low, high = high, high * 2
        best = _grown_and_simplified(geom, high, clip)
    for _ in range(6 if refine else 0):
        middle = (low + high) / 2
        candidate = _grown_and_simplified(geom, middle, clip)
        if shapely.get_num_coordinates(candidate) <= max_vertices:
            best, high = candidate, middle
        else:
            low = middle
    return best


def _grown_and_simplified(geom: BaseGeometry, tolerance: float, clip: Polygon) -> BaseGeometry:
    # Simplifying first moves every boundary point of `geom` by less than the tolerance, so
    # growing the result by a little more contains `geom` again; a mitred buffer (cut no
    # closer than the mitre limit times the distance) contains the round one. Growing the
    # few simplified vertices is much faster than growing the traced staircase.
    simplified = geom.simplify(tolerance, preserve_topology=True)
    grown = simplified.buffer(1.1 * tolerance, join_style="mitre", mitre_limit=4.0)
    return shapely.make_valid(grown.intersection(clip))


def _start_tolerance(polys: list[Polygon]) -> float:
    minx, miny, maxx, maxy = MultiPolygon(polys).bounds
    return max(maxx - minx, maxy - miny) * 1e-5


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
    # On continuous longitudes the ring is a plain polygon, possibly beyond ±180 (or wider
    # than 360° for a grid with edges past both): cut it into 360° windows, shift each back.
    plane = shapely.make_valid(Polygon(zip(unwrapped, lat, strict=True)))
    minx, _, maxx, _ = plane.bounds
    pieces: list[Polygon] = []
    for k in range(math.floor((minx + 180) / 360), math.floor((maxx + 180) / 360) + 1):
        window = box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        part = translate(plane.intersection(window), xoff=-360.0 * k)
        pieces.extend(p for p in _polygons(part) if p.area > 0)
    wide = [p for p in pieces if p.bounds[2] - p.bounds[0] >= ANTIMERIDIAN_SLIVER]
    return wide or pieces


def _as_polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    polys = [p for p in _polygons(geom) if p.area > 0]
    return MultiPolygon(polys) if len(polys) > 1 else polys[0]


def _polygons(geom: BaseGeometry) -> list[Polygon]:
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
