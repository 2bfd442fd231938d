"""Band-per-file products become one item with an asset per band (Landsat, Sentinel-2, and
a user's layout), with the QA/SCL band driving the cloud cover."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import ramp, write_geotiff
from tests.readback import asset_path, item_files

FIXTURES = Path(__file__).parent / "fixtures"
LANDSAT = "LC09_L2SP_190026_20240131_20240201_02_T1"
S2 = "T33UUP_20240131T101301"


def _item(tmp_path: Path, item_id: str) -> dict[str, Any]:
    return json.loads(item_files(tmp_path / "catalog", "test")[item_id].read_text())


def _landsat(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 30, 30), "nodata": 0}
    for band in ("SR_B2", "SR_B3", "SR_B4", "SR_B5"):
        write_geotiff(folder / f"{LANDSAT}_{band}.TIF", ramp(20, 20), **grid)
    qa = np.full((20, 20), 1 << 6, np.uint16)
    qa[:5, :] = 1 << 0  # fill: 100
    qa[5:8, :] = 1 << 3  # cloud: 60 of 300 valid
    write_geotiff(folder / f"{LANDSAT}_QA_PIXEL.TIF", qa, crs="EPSG:32633",
                  transform=from_origin(500000, 5000000, 30, 30))  # fmt: skip
    shutil.copy(FIXTURES / f"{LANDSAT}_MTL.txt", folder / f"{LANDSAT}_MTL.txt")


def test_landsat_scene(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    _landsat(tmp_path / "src" / "landsat")
    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.INGESTED and row.input == f"landsat/{LANDSAT}"
    item = _item(tmp_path, row.item_ids[0])
    assert sorted(item["assets"]) == ["QA_PIXEL", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "thumbnail"]
    red = item["assets"]["SR_B4"]
    assert red["eo:bands"] == [{"name": "SR_B4", "common_name": "red", "center_wavelength": 0.65}]
    assert red["title"] == f"{LANDSAT}_SR_B4.TIF (Cloud Optimized GeoTIFF)"
    assert item["assets"]["QA_PIXEL"]["roles"] == ["data", "cloud"]
    props = item["properties"]
    assert props["eo:cloud_cover"] == 20.0
    assert props["byod:cloud_cover_source"] == f"mask:{LANDSAT}_QA_PIXEL.TIF (landsat-qa)"
    assert props["datetime"] == "2024-01-31T09:41:27.123456Z"
    assert props["proj:code"] == "EPSG:32633" and props["proj:shape"] == [20, 20]
    for key in ("SR_B2", "SR_B4", "QA_PIXEL"):
        item_file = item_files(tmp_path / "catalog", "test")[row.item_ids[0]]
        cog = asset_path(item_file, item["assets"][key]["href"])
        assert cog.is_file()
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []
    assert run_ingest().rows[0].status is Status.UNCHANGED


def test_sentinel2_scene_with_20m_scl(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    safe = tmp_path / "src" / "S2B_MSIL2A.SAFE"
    img = safe / "GRANULE" / "L2A_T33UUP" / "IMG_DATA"
    (img / "R10m").mkdir(parents=True)
    (img / "R20m").mkdir(parents=True)
    shutil.copy(FIXTURES / "MTD_MSIL2A.xml", safe / "MTD_MSIL2A.xml")
    ten = from_origin(399960, 5400000, 10, 10)
    twenty = from_origin(399960, 5400000, 20, 20)
    for band in ("B02", "B03", "B04", "B08"):
        path = img / "R10m" / f"{S2}_{band}_10m.jp2"
        with rasterio.open(path, "w", driver="JP2OpenJPEG", width=40, height=40, count=1,
                           dtype="uint16", crs="EPSG:32633", transform=ten) as dst:  # fmt: skip
            dst.write(ramp(40, 40))
    # B04 also at 20 m (as in L2A): the 10 m one is kept.
    write_geotiff(img / "R20m" / f"{S2}_B04_20m.tif", ramp(20, 20), crs="EPSG:32633",
                  transform=twenty)  # fmt: skip
    scl = np.full((20, 20), 4, np.uint8)
    scl[:4, :] = 8  # 80 of 400 pixels cloud
    write_geotiff(img / "R20m" / f"{S2}_SCL_20m.tif", scl, crs="EPSG:32633", transform=twenty)

    report = run_ingest()
    (row,) = report.rows
    assert row.input == f"S2B_MSIL2A.SAFE/GRANULE/L2A_T33UUP/IMG_DATA/{S2}"
    assert any("B04_20m" in n and "left out" in n for n in report.notes)
    item = _item(tmp_path, row.item_ids[0])
    assert sorted(item["assets"]) == ["B02", "B03", "B04", "B08", "SCL", "thumbnail"]
    assert item["assets"]["B08"]["eo:bands"][0]["common_name"] == "nir"
    assert item["assets"]["B04"]["raster:bands"][0]["spatial_resolution"] == 10.0
    scl_asset = item["assets"]["SCL"]
    assert scl_asset["proj:shape"] == [20, 20]  # its own grid, unlike the item's 10 m one
    assert item["properties"]["proj:shape"] == [40, 40]
    assert item["properties"]["eo:cloud_cover"] == 20.0
    assert item["properties"]["datetime"] == "2024-01-31T10:13:01.024000Z"
    assert any("62.81" in n for n in row.notes)  # the MTD's value, kept in the report
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []


def test_custom_group_pattern(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    src = tmp_path / "src"
    for band in ("vv", "vh"):
        write_geotiff(src / f"sar_20240105_{band}.tif", ramp(16, 16), crs="EPSG:32633",
                      transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
    write_geotiff(src / "other_20240105.tif", ramp(16, 16), crs="EPSG:32633",
                  transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
    report = run_ingest(group_pattern=r"(?P<scene>sar_\d{8})_(?P<band>v[vh])\.tif$")
    assert sorted(r.input for r in report.rows) == ["other_20240105.tif", "sar_20240105"]
    item = _item(tmp_path, "sar_20240105")
    assert sorted(item["assets"]) == ["thumbnail", "vh", "vv"]
    assert item["properties"]["datetime"] == "2024-01-05T00:00:00Z"


def test_a_bad_band_rejects_the_whole_scene(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    _landsat(tmp_path / "src")
    (tmp_path / "src" / f"{LANDSAT}_SR_B5.TIF").write_bytes(b"")
    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.REJECTED and f"{LANDSAT}_SR_B5.TIF" in (row.message or "")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.tif"))
