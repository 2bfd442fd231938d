"""Footprints and bboxes against the truth (issue 9): valid data never left outside, latitudes
and longitudes in range, antimeridian bboxes from the footprint's parts, NaN as no data.

Expected values are computed here from the rasters themselves: pixel centres of the valid
(and of the NaN) pixels placed with the raster's own transform and pyproj, tested against
the footprint with shapely; bboxes from the grid's edges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import Affine, from_origin
from shapely.geometry import shape

from byod import rasters
from byod.analysis import search
from byod.config import IngestSettings
from byod.footprint import MAX_VERTICES, footprint, lonlat_bbox, valid_region
from byod.pipeline import ingest
from byod.report import Report, Status
from tests.conftest import write_geotiff
from tests.readback import assert_all_ingested_and_walkable, item_files

GLOBAL = from_origin(-180.0, 90.0, 0.25, 0.25)  # 1440 x 720 cells
NSIDC_SOUTH = ("+proj=stere +lat_0=-90 +lat_ts=-70 +lon_0=0 +k=1 +x_0=0 +y_0=0 +a=6378273 "
               "+b=6356889.449 +units=m +no_defs")  # fmt: skip
SEA_ICE = from_origin(-3950000, 4350000, 25000, 25000)  # NSIDC 25 km southern grid, 332 x 316
# Sparse valid data (issue 9 review, D1): 5 fire detections gridded on 100 m UTM cells, at
# pixels the COG's nearest-neighbour overviews skip; one station alone; a 0.1° global land
# mask of 379 one-pixel islands.
UTM_100M = from_origin(400000, 5400000, 100, 100)
FIRES = (np.array([1, 301, 1000, 1501, 2098]), np.array([4, 700, 1300, 1900, 10]))
GLOBAL_01 = from_origin(-180.0, 90.0, 0.1, 0.1)  # 3600 x 1800 cells
# Global grids in pseudo-cylindrical projections (D6): GHSL's Mollweide (ESRI:54009), 400 x
# 200 cells over the whole map; MODIS sinusoidal tile h35v08 (240 x 240, its east edge on
# 180°), with MODIS's sphere and tile size (MODIS land grid, 10° tiles of 1111950.519667 m).
MOLL_X, MOLL_Y = 18040095.7, 9020047.85
MOLLWEIDE = from_origin(-MOLL_X, MOLL_Y, 2 * MOLL_X / 400, 2 * MOLL_X / 400)
MODIS_SIN = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_TILE = 1111950.519667
# A Meteosat (SEVIRI) full disk as GDAL describes it (geostationary view from 0°), at 30 km
# instead of 3 km: the corners see space.
GEOS = ("+proj=geos +lon_0=0 +h=35785831 +x_0=0 +y_0=0 +a=6378169 +b=6356583.8 +units=m "
        "+no_defs")  # fmt: skip
FULL_DISK = from_origin(-5568748.276, 5568748.276, 2 * 5568748.276 / 371, 2 * 5568748.276 / 371)
H35V08 = from_origin(-20015109.354 + 35 * MODIS_TILE, 10007554.677 - 8 * MODIS_TILE,
                     MODIS_TILE / 240, MODIS_TILE / 240)  # fmt: skip


def cropland_mask(rows: int = 720, cols: int = 1440, seed: int = 7) -> np.ndarray:
    """A global cropland-like mask: continents of irregular blobs, a scatter of small islands,
    fields either side of 180° (Chukotka, Fiji) and the Po valley (10-11°E, 45-46°N)."""
    rng = np.random.default_rng(seed)
    lat = 90 - (np.arange(rows) + 0.5) * 180 / rows
    lon = -180 + (np.arange(cols) + 0.5) * 360 / cols
    lon2, lat2 = np.meshgrid(lon, lat)
    field = np.zeros((rows, cols))
    for _ in range(60):
        clon, clat = rng.uniform(-180, 180), rng.uniform(-55, 70)
        sx, sy = rng.uniform(2, 15), rng.uniform(2, 10)
        dlon = (lon2 - clon + 180) % 360 - 180
        field += np.exp(-((dlon / sx) ** 2 + ((lat2 - clat) / sy) ** 2))
    noise = rng.uniform(0, 1, (rows, cols))
    mask = (field > 0.5) & (noise > 0.35)  # ragged fields, not smooth blobs
    near = np.argwhere((field > 0.05) & (field < 0.5))
    for r, c in near[rng.integers(0, len(near), 400)]:  # islands of 1-3 cells off the coasts
        mask[r : r + rng.integers(1, 4), c : c + rng.integers(1, 4)] = True
    for west, south, east, north in ((175, 62, 180, 68), (-180, 62, -172, 68), (9, 44, 12, 46.5)):
        mask[(lon2 >= west) & (lon2 <= east) & (lat2 >= south) & (lat2 <= north)] = True
    return mask


def _centres(transform: Affine, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(mask)
    xs, ys = transform * (cols + 0.5, rows + 0.5)
    return np.asarray(xs), np.asarray(ys)


def island_mask(seed: int = 3) -> np.ndarray:
    """379 one-pixel islands scattered over a 0.1° global grid, at least 3 cells apart."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((1800, 3600), bool)
    rows = rng.choice(np.arange(20, 1780, 3), 379, replace=False)
    cols = rng.choice(np.arange(0, 3600, 3), 379, replace=False)
    mask[rows, cols] = True
    return mask


def on_earth_lonlat(crs: str, transform: Affine, valid: np.ndarray) -> tuple[Any, Any, Any]:
    """Lon/lat of the centres of `valid` pixels, at full resolution, with pyproj, and which
    of them lie on the Earth (map to lon/lat and back to the same point)."""
    xs, ys = _centres(transform, valid)
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = (np.asarray(v) for v in to_lonlat.transform(xs, ys))
    back_x, back_y = (np.asarray(v) for v in to_lonlat.transform(lon, lat, direction="INVERSE"))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lon) & (np.hypot(back_x - xs, back_y - ys) < 1.0)
    return lon, lat, ok


def share_inside(geom: Any, lon: np.ndarray, lat: np.ndarray) -> float:
    """Share of the points inside (or on) the geometry."""
    inside = shapely.contains_xy(geom, lon, lat) | shapely.intersects_xy(geom, lon, lat)
    return float(inside.mean())


def test_simplified_footprint_keeps_valid_pixels_inside() -> None:
    mask = cropland_mask()
    region = valid_region(mask, 1.0, 1.0)

    def affine(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = GLOBAL * (cols, rows)
        return np.asarray(xs), np.asarray(ys)

    result = footprint(region, affine, "EPSG:4326")
    geom = shape(result.geometry)
    assert geom.is_valid
    assert shapely.get_num_coordinates(geom) <= MAX_VERTICES
    assert share_inside(geom, *_centres(GLOBAL, mask)) >= 0.99
    # Not simply the whole grid: most of the empty sea stays outside.
    assert share_inside(geom, *_centres(GLOBAL, ~mask)) < 0.9
    assert result.bbox[0] == -180 and result.bbox[2] == 180


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        # A hair-wide sliver past 180 is an edge, not data (lonlat_bbox gets pieces already
        # cut; a sliver wider than the tolerance still counts).
        ([(170, 0, 180, 10)], [170, 0, 180, 10]),
        ([(179, -17, 180, -16), (-180, -17, -179, -16)], [179, -17, -179, -16]),
        # Parts spread over every longitude: the plain world range.
        ([(-180, 60, -170, 70), (-20, 40, 50, 60), (170, 60, 180, 70), (100, 0, 140, 30)],
         [-180, 0, 180, 70]),
        # The widest gap is the Pacific: no crossing, west < east.
        ([(-120, 30, -60, 50), (0, 40, 100, 60), (150, -40, 178, -30)],
         [-120, -40, 178, 60]),
    ],
)  # fmt: skip
def test_lonlat_bbox_from_parts(parts: list[tuple[float, ...]], expected: list[float]) -> None:
    from shapely.geometry import box

    assert lonlat_bbox([box(*p) for p in parts]) == pytest.approx(expected)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    root = tmp_path_factory.mktemp("truth")
    src = root / "src"
    crops = cropland_mask()
    write_geotiff(src / "cropland_2020.tif", crops.astype("uint8"), crs="EPSG:4326",
                  transform=GLOBAL, nodata=0)  # fmt: skip
    # A global grid whose cell edges start half a cell beyond the globe (90.5, -180.5).
    write_geotiff(src / "global_edges_2021.tif", np.ones((181, 361), "int16"), crs="EPSG:4326",
                  transform=from_origin(-180.5, 90.5, 1.0, 1.0))  # fmt: skip
    # A grid whose east edge is 2e-6° past 180 (its cell size rounded in the file).
    write_geotiff(src / "east_edge_2022.tif", np.ones((100, 200), "uint8"), crs="EPSG:4326",
                  transform=from_origin(170.0, -10.0, 10.000002 / 200, 0.05))  # fmt: skip
    # Grids on 0..360° longitudes (GRIB/NetCDF models write them so): one global, one with
    # data only over the eastern Pacific (190-230°E, i.e. 170-130°W).
    write_geotiff(src / "model_0_360_2023.tif", np.ones((180, 360), "float32"),
                  crs="EPSG:4326", transform=from_origin(0.0, 90.0, 1.0, 1.0))  # fmt: skip
    pacific = np.zeros((180, 360), "float32")
    pacific[60:100, 190:230] = 1.0  # rows: 30N..10S
    write_geotiff(src / "pacific_0_360_2023.tif", pacific, crs="EPSG:4326",
                  transform=from_origin(0.0, 90.0, 1.0, 1.0), nodata=0)  # fmt: skip
    # A polar sea-ice grid (NSIDC 25 km, south), float32, ice in a disk around the pole,
    # NaN over 72% of the grid and no nodata tag, as in NSIDC's float products.
    xs, ys = _centres(SEA_ICE, np.ones((332, 316), bool))
    ice = np.hypot(xs, ys).reshape(332, 316) < 2_419_000
    conc = np.where(ice, 0.8, np.nan).astype("float32")
    write_geotiff(src / "sea_ice_20240915.tif", conc, crs=NSIDC_SOUTH, transform=SEA_ICE)
    fires = np.zeros((2100, 2100), "uint8")
    fires[FIRES] = 9
    station = np.zeros((2100, 2100), "uint8")
    station[301, 700] = 9
    for name, data in (("fires_20230801", fires), ("station_20230801", station)):
        write_geotiff(src / f"{name}.tif", data, crs="EPSG:32633", transform=UTM_100M, nodata=0,
                      tiled=True, compress="deflate")  # fmt: skip
    write_geotiff(src / "islands_2020.tif", island_mask().astype("uint8"), crs="EPSG:4326",
                  transform=GLOBAL_01, nodata=0)  # fmt: skip
    xs, ys = _centres(MOLLWEIDE, np.ones((200, 400), bool))
    ellipse = ((xs / MOLL_X) ** 2 + (ys / MOLL_Y) ** 2 < 1).reshape(200, 400)
    write_geotiff(src / "ghsl_moll_2020.tif", ellipse.astype("uint8") * 5, crs="ESRI:54009",
                  transform=MOLLWEIDE, nodata=0)  # fmt: skip
    write_geotiff(src / "moll_nonodata_2020.tif", np.full((200, 400), 3, "uint8"),
                  crs="ESRI:54009", transform=MOLLWEIDE)  # fmt: skip
    _, _, sees_earth = on_earth_lonlat(GEOS, FULL_DISK, np.ones((371, 371), bool))
    disk = sees_earth.reshape(371, 371)
    write_geotiff(src / "msg_disk_20240101.tif", disk.astype("uint8") * 9, crs=GEOS,
                  transform=FULL_DISK, nodata=0)  # fmt: skip
    write_geotiff(src / "msg_disk_nonodata_20240101.tif", np.full((371, 371), 9, "uint8"),
                  crs=GEOS, transform=FULL_DISK)  # fmt: skip
    xs, ys = _centres(H35V08, np.ones((240, 240), bool))
    # On the sinusoidal map where |x| <= pi R cos(y / R) (MODIS fills the rest with 255).
    on_map = (np.abs(xs) <= 6371007.181 * np.pi * np.cos(ys / 6371007.181)).reshape(240, 240)
    write_geotiff(src / "MOD13A2.A2021001.h35v08.061.2021018000000.tif",
                  np.where(on_map, 7, 255).astype("uint8"), crs=MODIS_SIN, transform=H35V08,
                  nodata=255)  # fmt: skip
    report = ingest(IngestSettings(source=str(src), collection="truth", target=str(root / "data"),
                                   catalog=str(root / "catalog"), workers=2))  # fmt: skip
    return root, report


def _item(root: Path, item_id: str) -> dict[str, Any]:
    return json.loads(item_files(root / "catalog", "truth")[item_id].read_text())


def test_every_input_ingested_and_catalog_valid(ingested: tuple[Path, Report]) -> None:
    root, report = ingested
    assert_all_ingested_and_walkable(root / "catalog", report)


def _in_range(item: dict[str, Any]) -> bool:
    geom = shape(item["geometry"])
    minx, miny, maxx, maxy = geom.bounds
    return geom.is_valid and minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90


def test_global_cropland_footprint_and_bbox(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "cropland_2020")
    geom = shape(item["geometry"])
    assert _in_range(item)
    assert shapely.get_num_coordinates(geom) <= MAX_VERTICES
    crops = cropland_mask()
    assert share_inside(geom, *_centres(GLOBAL, crops)) >= 0.99
    lat = 90 - (np.nonzero(crops)[0] + 0.5) * 0.25
    assert item["bbox"][0] == -180 and item["bbox"][2] == 180
    assert item["bbox"][1] <= lat.min() and item["bbox"][3] >= lat.max()
    found = search(str(root / "catalog"), bbox=[10, 45, 11, 46])
    assert "cropland_2020" in [i.id for i in found]


def test_latitudes_clamped_longitudes_wrapped(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "global_edges_2021")
    assert _in_range(item)
    assert item["bbox"] == [-180, -90, 180, 90]
    # Every point of the globe is inside: the grid covers it (more than once at the edges).
    lon, lat = np.meshgrid(np.linspace(-179.9, 179.9, 50), np.linspace(-89.9, 89.9, 30))
    assert share_inside(shape(item["geometry"]), lon.ravel(), lat.ravel()) == 1.0


def test_hair_past_antimeridian_does_not_wreck_the_bbox(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "east_edge_2022")
    assert _in_range(item)
    west, south, east, north = item["bbox"]
    assert (west, south, north) == pytest.approx((170.0, -15.0, -10.0))
    assert east == pytest.approx(180.0, abs=1e-5)


def test_nan_is_nodata_for_float_rasters(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "sea_ice_20240915")
    assert item["assets"]["data"]["raster:bands"][0]["nodata"] == "nan"
    geom = shape(item["geometry"])
    assert _in_range(item)
    xs, ys = _centres(SEA_ICE, np.ones((332, 316), bool))
    ice = np.hypot(xs, ys) < 2_419_000
    assert 0.7 < 1 - ice.mean() < 0.74  # the fixture is 72% NaN
    lon, lat = Transformer.from_crs(NSIDC_SOUTH, "EPSG:4326", always_xy=True).transform(xs, ys)
    lon, lat = np.asarray(lon), np.asarray(lat)
    assert share_inside(geom, lon[ice], lat[ice]) >= 0.99
    assert share_inside(geom, lon[~ice], lat[~ice]) < 0.05  # not the whole grid
    assert item["bbox"][1] == -90 and item["bbox"][0] == -180 and item["bbox"][2] == 180


def test_grids_on_0_to_360_longitudes(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    whole = _item(root, "model_0_360_2023")
    assert _in_range(whole)
    assert whole["bbox"] == [-180, -90, 180, 90]
    pacific = _item(root, "pacific_0_360_2023")
    assert _in_range(pacific)
    # Columns 190..230 of a grid starting at 0°: 190°E..230°E, that is 170°W..130°W.
    assert pacific["bbox"] == pytest.approx([190 - 360, -10, 230 - 360, 30])
    assert shape(pacific["geometry"]).equals(shapely.box(-170, -10, -130, 30))


def _valid_centres(root: Path, name: str) -> tuple[Any, Any]:
    """Lon/lat of every valid, on-Earth pixel centre of a source file, at full resolution."""
    with rasterio.open(root / "src" / name) as src:
        valid = src.dataset_mask() > 0
        crs, transform = src.crs.to_wkt(), src.transform
    lon, lat, ok = on_earth_lonlat(crs, transform, valid)
    return lon[ok], lat[ok]


@pytest.mark.parametrize(
    ("item_id", "valid_pixels"),
    [("fires_20230801", 5), ("station_20230801", 1), ("islands_2020", 379)],
)
def test_every_sparse_valid_pixel_inside(
    ingested: tuple[Path, Report], item_id: str, valid_pixels: int
) -> None:
    root, _ = ingested
    item = _item(root, item_id)
    lon, lat = _valid_centres(root, f"{item_id}.tif")
    assert len(lon) == valid_pixels
    geom = shape(item["geometry"])
    assert _in_range(item)
    assert share_inside(geom, lon, lat) == 1.0
    west, south, east, north = item["bbox"]
    assert west <= lon.min() and east >= lon.max() and south <= lat.min() and north >= lat.max()


def test_sparse_footprint_is_not_the_whole_raster(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    # One 100 m pixel in a 210 km square: the footprint is a small part of the raster.
    station = shape(_item(root, "station_20230801")["geometry"])
    corners = np.array([[0, 0], [2100, 0], [2100, 2100], [0, 2100]], float)
    xs, ys = UTM_100M * (corners[:, 0], corners[:, 1])
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(xs, ys)
    assert station.area < 0.05 * shapely.Polygon(zip(lon, lat, strict=True)).area


def _ingested_footprint(root: Path, report: Report, item_id: str) -> tuple[Any, Any, Any, Any]:
    """(item, footprint, lon, lat of the valid on-Earth centres) of an input that must have
    been ingested, with every valid centre inside its in-range footprint."""
    assert {r.input: r.status for r in report.rows}[f"{item_id}.tif"] is Status.INGESTED
    item = _item(root, item_id)
    lon, lat = _valid_centres(root, f"{item_id}.tif")
    geom = shape(item["geometry"])
    assert _in_range(item)
    assert share_inside(geom, lon, lat) == 1.0
    return item, geom, lon, lat


@pytest.mark.parametrize("item_id", ["ghsl_moll_2020", "moll_nonodata_2020"])
def test_global_mollweide_grid_covers_the_globe(
    ingested: tuple[Path, Report], item_id: str
) -> None:
    item, geom, lon, lat = _ingested_footprint(*ingested, item_id)
    # The valid centres span every longitude and latitudes to about ±88°: the footprint is
    # (about) the lon/lat box they span, not a sliver.
    spanned = (lon.max() - lon.min()) * (lat.max() - lat.min())
    assert geom.area >= 0.97 * spanned
    assert item["bbox"][0] == -180 and item["bbox"][2] == 180
    assert item["bbox"][1] <= lat.min() and item["bbox"][3] >= lat.max()


def test_modis_sinusoidal_tile_at_the_map_edge(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    name = "MOD13A2.A2021001.h35v08.061.2021018000000.tif"
    item = _item(root, Path(name).stem.lower())
    lon, lat = _valid_centres(root, name)
    geom = shape(item["geometry"])
    assert _in_range(item)
    assert share_inside(geom, lon, lat) == 1.0
    west, south, east, north = item["bbox"]
    # h35v08 is 0..10°N and reaches the map's east edge, 180° (MODIS land grid).
    assert east == pytest.approx(180.0, abs=1e-5)
    assert west == pytest.approx(lon.min(), abs=0.1) and west <= lon.min()
    assert (south, north) == pytest.approx((0.0, 10.0), abs=0.1)
    # Tight: points of the footprint mostly fall on valid pixels of the tile.
    glon, glat = np.meshgrid(np.linspace(west, 179.999, 200), np.linspace(south, north, 100))
    inside = shapely.contains_xy(geom, glon.ravel(), glat.ravel())
    xs, ys = Transformer.from_crs(4326, MODIS_SIN, always_xy=True).transform(
        glon.ravel()[inside], glat.ravel()[inside]
    )
    cols, rows = ~H35V08 * (np.asarray(xs), np.asarray(ys))
    with rasterio.open(root / "src" / name) as src:
        valid = src.dataset_mask() > 0
    r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
    on_tile = (r >= 0) & (r < 240) & (c >= 0) & (c < 240)
    hits = np.zeros(len(r), bool)
    hits[on_tile] = valid[r[on_tile], c[on_tile]]
    assert hits.mean() >= 0.95


@pytest.mark.parametrize(
    ("size", "shape"),
    [((2100, 2100), (700, 700)), ((997, 3001), (332, 1000)), ((4000, 100), (1024, 25))],
)
def test_pooled_mask_cells_cover_every_valid_pixel(
    size: tuple[int, int], shape: tuple[int, int]
) -> None:
    """Pooling to a shape that does not divide the raster: each valid pixel's whole extent
    [r, r+1] x [c, c+1] lies in True cells (checked pixel by pixel), read in small chunks."""
    full = np.random.default_rng(1).random(size) < 0.001
    pooled = rasters._pooled_chunks(
        lambda w: full[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width],
        size, shape, None,
    )  # fmt: skip
    sy, sx = size[0] / shape[0], size[1] / shape[1]
    for r, c in zip(*np.nonzero(full), strict=True):
        rows = range(int(r // sy), min(shape[0], int(np.ceil((r + 1) / sy))))
        cols = range(int(c // sx), min(shape[1], int(np.ceil((c + 1) / sx))))
        assert all(pooled[i, j] for i in rows for j in cols)
    # Tight: no more cells than the valid pixels touch.
    assert pooled.sum() <= 4 * full.sum()


@pytest.mark.parametrize("item_id", ["msg_disk_20240101", "msg_disk_nonodata_20240101"])
def test_geostationary_full_disk_is_the_visible_earth(
    ingested: tuple[Path, Report], item_id: str
) -> None:
    item, _, lon, lat = _ingested_footprint(*ingested, item_id)
    assert len(lon) < 0.8 * 371 * 371  # the centres seeing Earth, nodata declared or not
    # The Earth seen from 35786 km: a cap of arccos(a / (a + h)) = 81.3° around (0°, 0°).
    limb = np.degrees(np.arccos(6378169 / (6378169 + 35785831)))
    west, south, east, north = item["bbox"]
    assert -limb - 0.5 <= west <= lon.min() and lon.max() <= east <= limb + 0.5
    assert -limb - 0.5 <= south <= lat.min() and lat.max() <= north <= limb + 0.5
