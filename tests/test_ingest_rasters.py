"""One ingest of a folder holding every kind of raster the issue names; per-item assertions.

Expected footprints, bboxes and projection fields are computed here independently, from the
pixel grid and pyproj, not from byod's own functions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.control import GroundControlPoint
from rasterio.transform import Affine, from_origin
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles
from shapely.geometry import Polygon, box, shape

from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import ramp, write_geotiff
from tests.readback import asset_path, item_files, month_catalogs

UTM = from_origin(500000, 5000000, 10, 10)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    root = tmp_path_factory.mktemp("kinds")
    src = root / "src"
    # UTM uint16, 3 bands, nodata border: valid rows 10..50, cols 20..60.
    utm = ramp(64, 64, "uint16", bands=3)
    utm[:, :10, :] = 0
    utm[:, 50:, :] = 0
    utm[:, :, :20] = 0
    utm[:, :, 60:] = 0
    write_geotiff(src / "utm_20240131.tif", utm, crs="EPSG:32633", transform=UTM, nodata=0)
    # Geographic, int16, time in TIFFTAG_DATETIME.
    write_geotiff(src / "geo.tif", ramp(50, 100, "int16"), crs="EPSG:4326",
           transform=from_origin(10.0, 50.0, 0.01, 0.01), nodata=-9999,
           tags={"TIFFTAG_DATETIME": "2023:06:15 09:30:00"})  # fmt: skip
    # Polar stereographic covering the north pole.
    write_geotiff(src / "polar_2024-03-01.tif", ramp(40, 40, "uint8"), crs="EPSG:3413",
           transform=from_origin(-1_000_000, 1_000_000, 50_000, 50_000))  # fmt: skip
    # Crossing the antimeridian: 4326 longitudes 179..181.
    write_geotiff(src / "dateline_20200101.tif", ramp(20, 40, "float32"), crs="EPSG:4326",
           transform=from_origin(179.0, -16.0, 0.05, 0.05))  # fmt: skip
    # Internal mask: only the left half is valid.
    mask = np.zeros((32, 32), bool)
    mask[:, :16] = True
    write_geotiff(
        src / "masked_20240101.tif",
        ramp(32, 32, "uint8"),
        crs="EPSG:32633",
        transform=UTM,
        mask=mask,
    )
    # uint8 RGB.
    write_geotiff(src / "rgb_20240102.tif", ramp(32, 32, "uint8", bands=3), crs="EPSG:32633",
           transform=UTM, photometric="RGB")  # fmt: skip
    # float32 with NaN nodata: bottom half NaN.
    floats = ramp(32, 32, "float32")
    floats[:, 16:, :] = np.nan
    write_geotiff(
        src / "nan_20240103.tif", floats, crs="EPSG:32633", transform=UTM, nodata=float("nan")
    )
    # Rotated grid (30 degrees) and a south-up grid.
    rotated = Affine.translation(500000, 5000000) * Affine.rotation(30) * Affine.scale(10, -10)
    write_geotiff(src / "rotated_20240104.tif", ramp(20, 40), crs="EPSG:32633", transform=rotated)
    south_up = Affine(10, 0, 500000, 0, 10, 4999000)
    write_geotiff(src / "southup_20240105.tif", ramp(20, 40), crs="EPSG:32633", transform=south_up)
    # GCP-georeferenced: four corners of a 40 x 20 image on a skewed quadrilateral.
    gcps = [
        GroundControlPoint(0, 0, 500000, 5000000),
        GroundControlPoint(0, 40, 500400, 5000100),
        GroundControlPoint(20, 40, 500450, 4999900),
        GroundControlPoint(20, 0, 500050, 4999800),
    ]
    path = write_geotiff(src / "gcps_20240106.tif", ramp(20, 40))
    with rasterio.open(path, "r+") as dst:
        dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(32633))
    # A CRS without an authority code (a custom transverse mercator).
    custom = "+proj=tmerc +lat_0=0 +lon_0=13.3 +k=0.9996 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m"
    write_geotiff(src / "custom_crs_20240107.tif", ramp(16, 16), crs=custom, transform=UTM)
    # Already a valid COG.
    plain = write_geotiff(root / "plain.tif", ramp(64, 64), crs="EPSG:32633", transform=UTM)
    cog_translate(plain, src / "cog_20240108.tif", cog_profiles.get("deflate"), quiet=True)

    report = ingest(IngestSettings(source=str(src), collection="kinds", target=str(root / "data"),
                                   catalog=str(root / "catalog"), workers=2))  # fmt: skip
    return root, report


def _item(root: Path, item_id: str) -> dict[str, Any]:
    return json.loads(item_files(root / "catalog", "kinds")[item_id].read_text())


def _cog(root: Path, item_id: str) -> Path:
    """The stored COG, found through the published item (never by guessing the layout)."""
    item_file = item_files(root / "catalog", "kinds")[item_id]
    return asset_path(item_file, json.loads(item_file.read_text())["assets"]["data"]["href"])


def _lonlat(crs: str, xs: list[float], ys: list[float]) -> list[tuple[float, float]]:
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return list(zip(*t.transform(xs, ys), strict=True))


def _corners(transform: Affine, c0: float, r0: float, c1: float, r1: float) -> list[Any]:
    return [transform * p for p in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))]


def test_every_input_ingested_and_catalog_valid(ingested: tuple[Path, Report]) -> None:
    root, report = ingested
    assert [r.input for r in report.rows if r.status is not Status.INGESTED] == []
    assert len(report.rows) == 12
    count, problems = validate_catalog(str(root / "catalog" / "catalog.json"))
    assert problems == []
    # root, collection, its month sub-catalogs (catalog.py), one item per input
    assert count == 1 + 1 + len(month_catalogs(root / "catalog", "kinds")) + 12


def test_cogs_are_valid_and_checksums_match(ingested: tuple[Path, Report]) -> None:
    root, report = ingested
    for row in report.rows:
        item = _item(root, row.item_ids[0])
        cog = _cog(root, row.item_ids[0])
        assert cog.resolve().is_relative_to((root / "data").resolve())
        assert cog_validate(str(cog), quiet=True)[0], row.input
        digest = hashlib.sha256(cog.read_bytes()).hexdigest()
        assert item["assets"]["data"]["file:checksum"] == "1220" + digest
        assert item["assets"]["data"]["file:size"] == cog.stat().st_size
        assert item["assets"]["data"]["type"] == (
            "image/tiff; application=geotiff; profile=cloud-optimized"
        )
        thumb = cog.parent / item["assets"]["thumbnail"]["href"].rsplit("/", 1)[-1]
        assert thumb.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_valid_cog_input_is_stored_byte_for_byte(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "cog_20240108")
    stored = _cog(root, "cog_20240108")
    assert stored.read_bytes() == (root / "src" / "cog_20240108.tif").read_bytes()
    assert item["properties"]["byod:cog_passthrough"] is True


def test_utm_footprint_excludes_nodata_border(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "utm_20240131")
    expected = Polygon(_lonlat("EPSG:32633", *zip(*_corners(UTM, 20, 10, 60, 50), strict=True)))
    footprint = shape(item["geometry"])
    assert footprint.is_valid
    assert footprint.symmetric_difference(expected).area / expected.area < 0.01
    assert item["bbox"] == pytest.approx(list(expected.bounds), abs=1e-5)
    full = box(*_lonlat("EPSG:32633", [500000, 500640], [4999360, 5000000])[0],
               *_lonlat("EPSG:32633", [500640], [5000000])[0])  # fmt: skip
    assert footprint.area < 0.5 * full.area  # smaller than the raster's own extent
    props = item["properties"]
    assert props["proj:code"] == "EPSG:32633"
    assert props["proj:shape"] == [64, 64]
    assert props["proj:transform"] == [10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0]
    assert props["proj:bbox"] == [500000.0, 4999360.0, 500640.0, 5000000.0]
    assert props["datetime"] == "2024-01-31T00:00:00Z"
    bands = item["assets"]["data"]["raster:bands"]
    assert [b["data_type"] for b in bands] == ["uint16"] * 3
    assert all(b["nodata"] == 0 and b["spatial_resolution"] == 10.0 for b in bands)


def test_geographic_item_and_tag_datetime(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "geo")
    assert item["bbox"] == pytest.approx([10.0, 49.5, 11.0, 50.0], abs=1e-9)
    assert shape(item["geometry"]).equals(box(10.0, 49.5, 11.0, 50.0))
    assert item["properties"]["datetime"] == "2023-06-15T09:30:00Z"
    assert item["properties"]["byod:datetime_source"] == "tag:TIFFTAG_DATETIME"
    assert item["assets"]["data"]["raster:bands"][0]["nodata"] == -9999


def test_polar_footprint_covers_the_pole(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "polar_2024-03-01")
    geom = shape(item["geometry"])
    assert geom.is_valid
    assert item["bbox"][0] == -180 and item["bbox"][2] == 180 and item["bbox"][3] == 90
    # The corner (-1000 km, -1000 km) of the grid is its southernmost latitude.
    (_, lowest), = _lonlat("EPSG:3413", [-1_000_000], [-1_000_000])  # fmt: skip
    assert item["bbox"][1] == pytest.approx(lowest, abs=0.05)
    assert item["properties"]["datetime"] == "2024-03-01T00:00:00Z"


def test_antimeridian_split(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "dateline_20200101")
    assert item["geometry"]["type"] == "MultiPolygon"
    assert item["bbox"] == pytest.approx([179.0, -17.0, -179.0, -16.0], abs=1e-9)
    geom = shape(item["geometry"])
    assert geom.is_valid
    east, west = sorted(geom.geoms, key=lambda g: -g.bounds[0])
    assert east.bounds == pytest.approx((179.0, -17.0, 180.0, -16.0))
    assert west.bounds == pytest.approx((-180.0, -17.0, -179.0, -16.0))


def test_internal_mask_kept_and_footprint(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "masked_20240101")
    expected = Polygon(_lonlat("EPSG:32633", *zip(*_corners(UTM, 0, 0, 16, 32), strict=True)))
    assert shape(item["geometry"]).symmetric_difference(expected).area / expected.area < 0.01
    cog = _cog(root, "masked_20240101")
    with rasterio.open(cog) as src:
        valid = src.dataset_mask()
    assert valid[:, :16].all() and not valid[:, 16:].any()


def test_rgb_has_eo_bands(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "rgb_20240102")
    common = [b["common_name"] for b in item["assets"]["data"]["eo:bands"]]
    assert common == ["red", "green", "blue"]
    assert "https://stac-extensions.github.io/eo/v1.1.0/schema.json" in item["stac_extensions"]
    assert "eo:bands" not in _item(root, "utm_20240131")["assets"]["data"]


def test_nan_nodata(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "nan_20240103")
    assert item["assets"]["data"]["raster:bands"][0]["nodata"] == "nan"
    expected = Polygon(_lonlat("EPSG:32633", *zip(*_corners(UTM, 0, 0, 32, 16), strict=True)))
    assert shape(item["geometry"]).symmetric_difference(expected).area / expected.area < 0.01


@pytest.mark.parametrize(
    ("item_id", "transform"),
    [
        ("rotated_20240104",
         Affine.translation(500000, 5000000) * Affine.rotation(30) * Affine.scale(10, -10)),
        ("southup_20240105", Affine(10, 0, 500000, 0, 10, 4999000)),
    ],
)  # fmt: skip
def test_rotated_and_south_up_true_outline(
    ingested: tuple[Path, Report], item_id: str, transform: Affine
) -> None:
    root, _ = ingested
    item = _item(root, item_id)
    expected = Polygon(_lonlat("EPSG:32633", *zip(*_corners(transform, 0, 0, 40, 20), strict=True)))
    geom = shape(item["geometry"])
    assert geom.symmetric_difference(expected).area / expected.area < 0.01
    assert item["properties"]["proj:transform"] == pytest.approx(list(transform)[:6])


def test_gcp_outline(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    item = _item(root, "gcps_20240106")
    corners = [(500000, 5000000), (500400, 5000100), (500450, 4999900), (500050, 4999800)]
    expected = Polygon(_lonlat("EPSG:32633", *zip(*corners, strict=True)))
    geom = shape(item["geometry"])
    # A first-order polynomial through 4 GCPs is not exact at the corners: within 5%.
    assert geom.symmetric_difference(expected).area / expected.area < 0.05
    assert geom.area < expected.envelope.area * 0.95  # not the envelope
    # GDAL stores GCPs that fit an affine exactly as a geotransform: the item describes the
    # stored COG, so its proj:transform is the COG's.
    cog = _cog(root, "gcps_20240106")
    with rasterio.open(cog) as src:
        stored = None if src.gcps[0] else list(src.transform)[:6]
    assert item["properties"].get("proj:transform") == stored
    # Kept as GCPs, the grid is unrectified: no CRS of its own (projection extension).
    assert item["properties"]["proj:code"] == ("EPSG:32633" if stored else None)


def test_crs_without_authority_has_wkt2_not_a_guess(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    props = _item(root, "custom_crs_20240107")["properties"]
    assert props["proj:code"] is None
    assert "TRANSVERSE" in props["proj:wkt2"].upper() or "Transverse" in props["proj:wkt2"]


def test_collection_extent_covers_items(ingested: tuple[Path, Report]) -> None:
    root, _ = ingested
    collection = json.loads((root / "catalog" / "kinds" / "collection.json").read_text())
    assert len(item_files(root / "catalog", "kinds")) == 12
    start, end = collection["extent"]["temporal"]["interval"][0]
    # The latest item is named with a day (2024-03-01): the whole day, to its last microsecond.
    assert start == "2020-01-01T00:00:00Z" and end == "2024-03-01T23:59:59.999999Z"
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    assert north == 90 and south == pytest.approx(-17.0)
    # The polar item spans every longitude, so the union does too.
    assert (west, east) == (-180, 180)
    assert "EPSG:32633" in collection["summaries"]["proj:code"]
