"""Cloud cover and acquisition time through the whole ingest, from real-format sidecars and
masks with known pixel counts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from byod.report import Report, Status
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files

FIXTURES = Path(__file__).parent / "fixtures"


def _item(tmp_path: Path, item_id: str) -> dict[str, Any]:
    return json.loads(item_files(tmp_path / "catalog", "test")[item_id].read_text())


def test_sentinel2_scl_mask_and_mtd(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    granule = tmp_path / "src" / "S2B.SAFE" / "GRANULE" / "T33UUP"
    granule.mkdir(parents=True)
    shutil.copy(FIXTURES / "MTD_MSIL2A.xml", tmp_path / "src" / "S2B.SAFE" / "MTD_MSIL2A.xml")
    write_raster("scene.tif", ramp(40, 50), folder=granule)
    scl = np.full((40, 50), 4, np.uint8)  # vegetation
    scl[:10, :] = 0  # no data: 500 pixels
    scl[10:16, :] = 9  # cloud high probability: 300
    scl[16:18, :] = 3  # cloud shadow: 100
    scl[18:19, :] = 11  # snow: 50
    write_raster("scene_SCL.tif", scl, folder=granule)

    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.INGESTED and row.input == "S2B.SAFE/GRANULE/T33UUP/scene.tif"
    props = _item(tmp_path, "s2b.safe-granule-t33uup-scene")["properties"]
    assert props["eo:cloud_cover"] == 20.0  # 300 of 1500 valid pixels
    assert props["byod:cloud_shadow_cover"] == round(100 / 1500 * 100, 2)
    assert props["eo:snow_cover"] == round(50 / 1500 * 100, 2)
    assert props["byod:cloud_cover_source"] == "mask:scene_SCL.tif (s2-scl)"
    assert props["datetime"] == "2024-01-31T10:13:01.024000Z"
    assert props["byod:datetime_source"] == "sidecar:MTD_MSIL2A.xml"
    # The producer's 62.81 disagrees with the mask: both values are in the report.
    assert any("62.81" in n and "20.0" in n for n in row.notes)


def test_landsat_qa_pixel_and_mtl(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    product = "LC09_L2SP_190026_20240131_20240201_02_T1"
    (tmp_path / "src").mkdir()
    shutil.copy(FIXTURES / f"{product}_MTL.txt", tmp_path / "src" / f"{product}_MTL.txt")
    write_raster(f"{product}_SR.tif", ramp(10, 10))
    qa = np.full((10, 10), 1 << 6, np.uint16)  # clear
    qa[0, :] = 1  # fill: 10 pixels
    qa[1:4, :] = (1 << 3) | (1 << 1)  # cloud + dilated: 30
    qa[4, :5] = 1 << 2  # cirrus: 5
    write_raster(f"{product}_SR_QA_PIXEL.tif", qa)

    # USGS's CLOUD_COVER counts the cloud bit (3) of the non-fill pixels: dilated cloud and
    # cirrus are not cloud (Landsat 8-9 C2 L2 product guide, QA_PIXEL).
    valid = (qa & 1) == 0
    usgs = round(
        100.0 * np.count_nonzero(valid & ((qa >> 3) & 1 == 1)) / np.count_nonzero(valid), 2
    )
    report = run_ingest(clouds={"order": ("sidecar", "mask")})
    (row,) = report.rows
    props = _item(tmp_path, row.item_ids[0])["properties"]
    assert props["eo:cloud_cover"] == 37.52  # the configured order put the MTL first
    assert props["byod:cloud_cover_source"] == f"sidecar:{product}_MTL.txt"
    assert props["datetime"] == "2024-01-31T09:41:27.123456Z"
    assert any(str(usgs) in n for n in row.notes)  # the mask's value, kept in the report

    by_mask = run_ingest()  # default order: the mask
    props = _item(tmp_path, by_mask.rows[0].item_ids[0])["properties"]
    assert by_mask.rows[0].status is Status.REPLACED  # the options changed the output
    assert props["eo:cloud_cover"] == usgs


def test_fmask_band_rules_and_option(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    fmask = np.zeros((10, 10), np.uint8)
    fmask[:2, :] = 255  # fill
    fmask[2:4, :] = 4  # cloud: 20 of 80
    write_raster("x_20240101.tif", ramp(10, 10))
    write_raster("x_20240101_fmask.tif", fmask)
    two_bands = np.stack([ramp(10, 10)[0], np.where(np.arange(100).reshape(10, 10) < 25, 8, 0)])
    write_raster("y_20240101.tif", two_bands.astype("uint16"))

    report = run_ingest(clouds={"band": 2, "rule": "bits:3"})
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in report.rows}
    assert props["y_20240101.tif"]["eo:cloud_cover"] == 25.0
    assert props["y_20240101.tif"]["byod:cloud_cover_source"] == "mask:band 2 (bits:3)"

    by_name = run_ingest()
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in by_name.rows}
    assert props["x_20240101.tif"]["eo:cloud_cover"] == 25.0  # 20 of 80 by the fmask preset
    assert "eo:cloud_cover" not in props["y_20240101.tif"]  # no rule for its band: absent
    row = next(r for r in by_name.rows if r.input == "y_20240101.tif")
    assert any("eo:cloud_cover left out" in n for n in row.notes)

    forced = run_ingest(clouds={"cover": 12.0})
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in forced.rows}
    assert {p["eo:cloud_cover"] for p in props.values()} == {12.0}


def test_imagery_cloudcover_999_is_absent(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    for name, value in (("unknown_20240101.tif", "999"), ("known_20240101.tif", "17")):
        path = write_raster(name, ramp(10, 10))
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(ns="IMAGERY", CLOUDCOVER=value)
    report = run_ingest()
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in report.rows}
    assert "eo:cloud_cover" not in props["unknown_20240101.tif"]
    assert props["known_20240101.tif"]["eo:cloud_cover"] == 17.0
    assert props["known_20240101.tif"]["byod:cloud_cover_source"] == "imagery:CLOUDCOVER"


def test_periods_become_start_and_end(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("ndvi_2020-07.tif", ramp(10, 10))
    write_raster("composite_20200101_20200131.tif", ramp(10, 10))
    report = run_ingest()
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in report.rows}
    july = props["ndvi_2020-07.tif"]
    assert (july["start_datetime"], july["end_datetime"]) == (
        "2020-07-01T00:00:00Z", "2020-07-31T23:59:59.999999Z")  # fmt: skip
    assert july["datetime"] == "2020-07-01T00:00:00Z"
    january = props["composite_20200101_20200131.tif"]
    assert january["end_datetime"] == "2020-01-31T23:59:59.999999Z"
    collection = json.loads((tmp_path / "catalog" / "test" / "collection.json").read_text())
    assert collection["extent"]["temporal"]["interval"] == [
        ["2020-01-01T00:00:00Z", "2020-07-31T23:59:59.999999Z"]]  # fmt: skip


def test_user_metadata_file_per_folder(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("plot_a.tif", ramp(10, 10))
    write_raster("plot_b.tif", ramp(10, 10))
    write_raster("plot_c_20240301.tif", ramp(10, 10))
    (tmp_path / "src" / "byod-metadata.csv").write_text(
        "file,cloud_cover,datetime,start_datetime,end_datetime\n"
        "plot_a.tif,42.5,2023-05-04T10:00:00Z,,\n"
        "plot_b,,,2023-06-01T00:00:00Z,2023-06-30T23:59:59Z\n"
    )
    report = run_ingest()
    assert [r.status for r in report.rows] == [Status.INGESTED] * 3
    assert report.ignored == []  # the table is metadata, not an unknown file
    props = {r.input: _item(tmp_path, r.item_ids[0])["properties"] for r in report.rows}
    a = props["plot_a.tif"]
    assert a["eo:cloud_cover"] == 42.5 and a["byod:cloud_cover_source"] == "user:byod-metadata.csv"
    assert a["datetime"] == "2023-05-04T10:00:00Z"
    b = props["plot_b.tif"]
    assert (b["start_datetime"], b["end_datetime"]) == (
        "2023-06-01T00:00:00Z",
        "2023-06-30T23:59:59Z",
    )
    assert "eo:cloud_cover" not in b
    c = props["plot_c_20240301.tif"]
    assert c["datetime"] == "2024-03-01T00:00:00Z"  # no row: the name still decides
