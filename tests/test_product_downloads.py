"""Producers' downloads as they arrive: a USGS Landsat Collection 2 Level-2 product (Landsat 8
and Landsat 7) and an ESA Sentinel-2 L2A SAFE. Each becomes one scene item; the files the
producer ships beside the bands (browse JPEGs, previews, quality masks and reports, HTML,
auxiliary GRIB data) are listed as ignored, never rejected and never items of their own.

File names and folders follow USGS LSDS-1619 / LSDS-1618 (Landsat 8-9 / 4-7 Collection 2
Level-2 Science Product Guides, "Product Contents") and ESA S2-PDGS-TAS-DI-PSD (the SAFE
layout of a Level-2A product).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from typer.testing import CliRunner

from byod.cli import app
from byod.report import Report, Status
from byod.scenes import auxiliary_of, group
from byod.sources import discover_listing
from tests.conftest import ramp, write_geotiff
from tests.readback import item_files

FIXTURES = Path(__file__).parent / "fixtures"
L8 = "LC08_L2SP_190026_20230601_20230610_02_T1"
L7 = "LE07_L2SP_028030_20230817_20230912_02_T1"
SAFE = "S2A_MSIL2A_20230605T101031_N0509_R022_T33UXP_20230605T150000.SAFE"
GRANULE = "L2A_T33UXP_A041000_20230605T101500"
TILE = "T33UXP_20230605T101031"
L9_L1 = "LC09_L1TP_001028_20220615_20220627_02_T1"
UTM = {"crs": "EPSG:32633"}

# Bands of each product as the guides list them (a subset of the Level-2 files: enough kinds).
L8_BANDS = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7", "SR_QA_AEROSOL",
            "ST_B10", "ST_TRAD", "ST_URAD", "ST_DRAD", "ST_ATRAN", "ST_EMIS", "ST_EMSD",
            "ST_CDIST", "ST_QA", "QA_PIXEL", "QA_RADSAT"]  # fmt: skip
L7_BANDS = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7", "SR_ATMOS_OPACITY",
            "SR_CLOUD_QA", "ST_B6", "ST_QA", "QA_PIXEL", "QA_RADSAT"]  # fmt: skip
S2_10M = ["B02", "B03", "B04", "B08", "AOT", "WVP", "TCI"]
S2_20M = ["B02", "B05", "B8A", "B11", "SCL"]  # B02 again at 20 m, as L2A ships it


def _jpeg(path: Path, rows: int, cols: int, seed: int) -> None:
    """A browse image as producers write it: a plain RGB JPEG, no georeferencing (GDAL's
    JPEG driver, through an in-memory GeoTIFF without CRS or transform)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (3, rows, cols), dtype=np.uint8)
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=cols, height=rows, count=3, dtype="uint8") as dst:
            dst.write(pixels)
        with mem.open() as src:
            rasterio.shutil.copy(src, str(path), driver="JPEG")


def _jp2(path: Path, data: np.ndarray, res: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype.name,
                       transform=from_origin(399960, 5400000, res, res), **UTM) as dst:  # fmt: skip
        dst.write(data)


def _grib(path: Path) -> None:
    """ECMWF/CAMS auxiliary data as the SAFE ships it: GRIB without an extension (GDAL
    identifies it: it is a georeferenced global raster)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=9, height=9, count=1, dtype="float32",
                      crs="EPSG:4326", transform=from_origin(-180, 90, 40, 20)) as dst:  # fmt: skip
            dst.write(np.ones((1, 9, 9), "float32"))
        with mem.open() as src:
            rasterio.shutil.copy(src, str(path), driver="GRIB")


def _landsat(folder: Path, product: str, bands: list[str]) -> list[str]:
    """A Level-2 product's folder as the USGS bundle unpacks; returns the auxiliary files'
    paths relative to the source (`folder`'s parent)."""
    grid = {**UTM, "transform": from_origin(500000, 5300000, 30, 30)}
    for band in bands:
        if band == "QA_PIXEL":
            write_geotiff(folder / f"{product}_{band}.TIF", np.full((16, 16), 21824, np.uint16),
                          nodata=1, **grid)  # fmt: skip
        else:
            write_geotiff(folder / f"{product}_{band}.TIF", ramp(16, 16), nodata=0, **grid)
    (folder / f"{product}_MTL.txt").write_text(
        "GROUP = LANDSAT_METADATA_FILE\n  GROUP = IMAGE_ATTRIBUTES\n    CLOUD_COVER = 12.34\n"
        f"    DATE_ACQUIRED = {product[17:21]}-{product[21:23]}-{product[23:25]}\n"
        '    SCENE_CENTER_TIME = "09:48:12.1234560Z"\n  END_GROUP = IMAGE_ATTRIBUTES\n'
        "END_GROUP = LANDSAT_METADATA_FILE\nEND\n"
    )
    (folder / f"{product}_MTL.xml").write_text("<LANDSAT_METADATA_FILE/>")
    auxiliary = {
        f"{product}_MTL.json": json.dumps({"LANDSAT_METADATA_FILE": {}}),
        f"{product}_ANG.txt": "GROUP = FILE_HEADER\nEND\n",
        f"{product}_SR_stac.json": "{}",
        f"{product}_ST_stac.json": "{}",
    }
    for name, text in auxiliary.items():
        (folder / name).write_text(text)
    _jpeg(folder / f"{product}_thumb_small.jpeg", 16, 16, 1)
    _jpeg(folder / f"{product}_thumb_large.jpeg", 48, 48, 2)
    names = [*auxiliary, f"{product}_thumb_small.jpeg", f"{product}_thumb_large.jpeg"]
    return [f"{folder.name}/{n}" for n in names]


def _sentinel2(source: Path) -> list[str]:
    """An L2A SAFE as ESA's zip unpacks (one granule); returns the auxiliary files' paths
    relative to `source`."""
    safe = source / SAFE
    granule = safe / "GRANULE" / GRANULE
    granule.mkdir(parents=True)
    shutil.copy(FIXTURES / "MTD_MSIL2A.xml", safe / "MTD_MSIL2A.xml")
    shutil.copy(FIXTURES / "MTD_TL.xml", granule / "MTD_TL.xml")
    for band in S2_10M:
        data = ramp(32, 32, bands=3, dtype="uint8") if band == "TCI" else ramp(32, 32)
        _jp2(granule / "IMG_DATA" / "R10m" / f"{TILE}_{band}_10m.jp2", data, 10)
    for band in S2_20M:
        data = np.full((16, 16), 4, np.uint8) if band == "SCL" else ramp(16, 16)
        _jp2(granule / "IMG_DATA" / "R20m" / f"{TILE}_{band}_20m.jp2", data, 20)
    texts = {
        "manifest.safe": "<xfdu:XFDU/>",
        "INSPIRE.xml": "<gmd:MD_Metadata/>",
        "HTML/UserProduct_index.html": "<html/>",
        "HTML/UserProduct_index.xsl": "<xsl:stylesheet/>",
        "rep_info/S2_User_Product_Level-2A_Metadata.xsd": "<xs:schema/>",
        "DATASTRIP/DS_2APS_20230605T150000_S20230605T101500/MTD_DS.xml": "<n1:DataStrip/>",
        f"GRANULE/{GRANULE}/QI_DATA/GENERAL_QUALITY.xml": "<Earth_Explorer_File/>",
        f"GRANULE/{GRANULE}/QI_DATA/L2A_QUALITY.xml": "<Earth_Explorer_File/>",
    }  # fmt: skip
    for rel, text in texts.items():
        (safe / rel).parent.mkdir(parents=True, exist_ok=True)
        (safe / rel).write_text(text)
    qi = f"GRANULE/{GRANULE}/QI_DATA"
    rasters = {
        f"{qi}/MSK_CLDPRB_20m.jp2": (np.zeros((16, 16), np.uint8), 20),
        f"{qi}/MSK_SNWPRB_20m.jp2": (np.zeros((16, 16), np.uint8), 20),
        f"{qi}/MSK_CLDPRB_60m.jp2": (np.zeros((6, 6), np.uint8), 60),
        f"{qi}/MSK_CLASSI_B00.jp2": (np.zeros((3, 6, 6), np.uint8), 60),
        f"{qi}/MSK_DETFOO_B02.jp2": (np.ones((32, 32), np.uint8), 10),
        f"{qi}/MSK_QUALIT_B02.jp2": (np.zeros((8, 32, 32), np.uint8), 10),
        f"{qi}/{TILE}_PVI.jp2": (ramp(8, 8, bands=3, dtype="uint8"), 320),
    }
    for rel, (data, res) in rasters.items():
        _jp2(safe / rel, data, res)
    _jpeg(safe / "HTML" / "star_bg.jpg", 16, 16, 3)
    _jpeg(safe / "HTML" / "banner_1.png", 8, 32, 4)  # a JPEG's bytes by a .png name: no matter
    _grib(granule / "AUX_DATA" / "AUX_ECMWFT")
    _grib(granule / "AUX_DATA" / "AUX_CAMSFO")
    aux = f"GRANULE/{GRANULE}/AUX_DATA"
    names = [*texts, *rasters, "HTML/star_bg.jpg", "HTML/banner_1.png", f"{aux}/AUX_ECMWFT",
             f"{aux}/AUX_CAMSFO"]  # fmt: skip
    return [f"{SAFE}/{n}" for n in names]


def _downloads(source: Path) -> list[str]:
    """The three products in `source`; the auxiliary files (relative paths), sorted."""
    auxiliary = _landsat(source / L8, L8, L8_BANDS) + _landsat(source / L7, L7, L7_BANDS)
    return sorted(auxiliary + _sentinel2(source))


def _cli(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["ingest", str(tmp_path / "src"), "--collection", "test", "--target",
            str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"), "--workers", "2",
            "--json", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(result.stdout)


def _all_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_downloads_ingest_one_item_per_scene_and_ignore_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "src"
    auxiliary = _downloads(source)
    code, report = _cli(tmp_path)
    assert code == 0, report
    rows = {r["input"]: r for r in report["rows"]}
    scenes = {f"{L8}/{L8}", f"{L7}/{L7}", f"{SAFE}/GRANULE/{GRANULE}/IMG_DATA/{TILE}"}
    assert set(rows) == scenes
    assert {r["status"] for r in rows.values()} == {"ingested"}
    assert report["counts"]["rejected"] == 0
    # Every auxiliary file is listed as ignored, and nothing else but these: the metadata
    # read (MTL.txt/.xml, MTD_*.xml) is neither listed nor an input of its own.
    assert sorted(report["ignored"]) == auxiliary
    metadata = {f"{L8}/{L8}_MTL.txt", f"{L8}/{L8}_MTL.xml", f"{L7}/{L7}_MTL.txt",
                f"{L7}/{L7}_MTL.xml", f"{SAFE}/MTD_MSIL2A.xml",
                f"{SAFE}/GRANULE/{GRANULE}/MTD_TL.xml"}  # fmt: skip
    bands = set(_all_files(source)) - set(auxiliary) - metadata
    assert all("/IMG_DATA/" in b or b.upper().endswith(".TIF") for b in bands)
    # One note per product family says why, naming the product.
    notes = [n for n in report["notes"] if "ignored" in n]
    assert any(SAFE in n and "Sentinel-2" in n for n in notes)
    assert any("2 Landsat Collection 2 products" in n for n in notes)

    # Each scene's item has an asset per band of the product (the finest resolution of an
    # S2 band given twice), and no asset of an auxiliary file.
    files = item_files(tmp_path / "catalog", "test")
    assert len(files) == 3
    assets = {}
    for row in rows.values():
        (item_id,) = row["item_ids"]
        item = json.loads(files[item_id].read_text())
        assets[row["input"]] = set(item["assets"]) - {"thumbnail"}
    assert assets[f"{L8}/{L8}"] == set(L8_BANDS)
    assert assets[f"{L7}/{L7}"] == set(L7_BANDS)
    assert assets[f"{SAFE}/GRANULE/{GRANULE}/IMG_DATA/{TILE}"] == set(S2_10M) | set(S2_20M)
    # The band numbers name other wavelengths on ETM+ (Landsat 7) than on OLI (Landsat 8):
    # LSDS-1618/1619's band tables (band 1 blue and band 4 near infrared on ETM+).
    common = {}
    for row in rows.values():
        item = json.loads(files[row["item_ids"][0]].read_text())
        for key in ("SR_B1", "SR_B4"):
            if key in item["assets"]:
                common[(row["input"][:4], key)] = item["assets"][key]["eo:bands"][0]["common_name"]
    assert common == {("LC08", "SR_B1"): "coastal", ("LC08", "SR_B4"): "red",
                      ("LE07", "SR_B1"): "blue", ("LE07", "SR_B4"): "nir08"}  # fmt: skip
    # Each Landsat scene's thumbnail is in true colour, from its red, green and blue bands
    # (ETM+ bands 3, 2, 1; OLI 4, 3, 2), not one band.
    for row in rows.values():
        if row["input"].startswith(("LC08", "LE07")):
            path = files[row["item_ids"][0]]
            href = json.loads(path.read_text())["assets"]["thumbnail"]["href"]
            with rasterio.open(path.parent / href) as png:
                assert png.count >= 3, row["input"]

    # A no-op re-run exits 0 with every row unchanged; so does one after the producer's
    # auxiliary files changed (they are in no scene's fingerprint).
    code, again = _cli(tmp_path)
    assert code == 0 and again["counts"]["rejected"] == 0
    assert {r["input"]: r["status"] for r in again["rows"]} == dict.fromkeys(scenes, "unchanged")
    _jpeg(source / L8 / f"{L8}_thumb_small.jpeg", 20, 20, 9)
    qi = source / SAFE / "GRANULE" / GRANULE / "QI_DATA"
    _jp2(qi / "MSK_CLDPRB_20m.jp2", np.full((16, 16), 80, np.uint8), 20)
    (source / SAFE / "HTML" / "UserProduct_index.html").write_text("<html>changed</html>")
    code, third = _cli(tmp_path)
    assert code == 0
    assert {r["input"]: r["status"] for r in third["rows"]} == dict.fromkeys(scenes, "unchanged")
    assert sorted(third["ignored"]) == auxiliary


def test_a_jpeg_of_no_product_is_still_rejected(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    source = tmp_path / "src"
    _jpeg(source / "holiday" / "photo.jpg", 16, 16, 5)
    # Named like a USGS browse image, but after no Landsat product id.
    _jpeg(source / "field_thumb_small.jpeg", 16, 16, 6)
    # In a folder named like a SAFE that is none (no sensing times, no tile).
    _jpeg(source / "S2A_MSIL2A_mine" / "HTML" / "star_bg.jpg", 16, 16, 7)
    report = run_ingest()
    rejected = {r.input: r.reason for r in report.rows if r.status is Status.REJECTED}
    assert rejected == {
        "holiday/photo.jpg": "not_georeferenced",
        "field_thumb_small.jpeg": "not_georeferenced",
        "S2A_MSIL2A_mine/HTML/star_bg.jpg": "not_georeferenced",
    }
    assert report.ignored == []
    code, _ = _cli(tmp_path)
    assert code == 1  # some inputs rejected, as before


@pytest.mark.parametrize(
    ("relpath", "product"),
    [
        (f"x/{L8}_thumb_small.jpeg", L8),
        (f"{L8}_thumb_large.jpeg", L8),
        (f"{L8}_ANG.txt", L8),
        (f"{L8}_MTL.json", L8),
        (f"{L9_L1}_GCP.txt", L9_L1),
        (f"{L9_L1}_thumb_small.jpeg", L9_L1),
        (f"{SAFE}/HTML/star_bg.jpg", SAFE),
        (f"{SAFE}/manifest.safe", SAFE),
        (f"{SAFE}/GRANULE/{GRANULE}/QI_DATA/MSK_CLDPRB_20m.jp2", SAFE),
        (f"{SAFE}/GRANULE/{GRANULE}/QI_DATA/{TILE}_PVI.jp2", SAFE),
        (f"{SAFE}/DATASTRIP/DS_X/QI_DATA/GENERAL_QUALITY.xml", SAFE),
        (f"{SAFE}/rep_info/S2_PDI_Level-2A_Tile_Metadata.xsd", SAFE),
        (f"{SAFE}/AUX_DATA/AUX_CAMSFO", SAFE),
        (f"{SAFE}/{SAFE[:-5]}_PVI.jp2", SAFE),  # a product-level preview
        (f"{SAFE[:-5]}/HTML/star_bg.jpg", SAFE[:-5]),  # unpacked without the .SAFE suffix
        (f"dl/GRANULE/{GRANULE}/QI_DATA/MSK_SNWPRB_20m.jp2", GRANULE),  # a granule alone
        (f"dl/GRANULE/{GRANULE}/AUX_DATA/AUX_ECMWFT", GRANULE),
        # Not auxiliary: bands, the metadata byod reads, a user's raster, other folders.
        (f"{L8}_SR_B4.TIF", None),
        (f"{L8}_MTL.txt", None),
        (f"{L8}_MTL.xml", None),
        (f"{L8}_NDVI.tif", None),
        (f"{L9_L1}_VAA.TIF", None),
        (f"{SAFE}/MTD_MSIL2A.xml", None),
        (f"{SAFE}/GRANULE/{GRANULE}/MTD_TL.xml", None),
        (f"{SAFE}/GRANULE/{GRANULE}/IMG_DATA/R10m/{TILE}_B02_10m.jp2", None),
        (f"dl/GRANULE/{GRANULE}/IMG_DATA/R20m/{TILE}_SCL_20m.jp2", None),
        (f"{GRANULE}/QI_DATA/MSK_CLDPRB_20m.jp2", None),  # no GRANULE/ parent: not the layout
        (f"{SAFE}/ndvi.tif", None),  # a user's own raster, in no folder of ESA's
        (f"{SAFE}/GRANULE/{GRANULE}/mine/ndvi.tif", None),
        (f"{SAFE}/{SAFE[:-5]}-ql.jpg", None),
        ("photo.jpg", None),
        ("QI_DATA/MSK_CLDPRB_20m.jp2", None),
    ],
)
def test_auxiliary_of_by_the_producers_names(relpath: str, product: str | None) -> None:
    found = auxiliary_of(relpath)
    assert (found.product if found else None) == product


def test_a_listing_sorts_the_same_files_the_same_way() -> None:
    """Blob storage (a listing, no bytes): the same product files give the same scenes and
    ignored files as a folder."""
    ends = [f"{b}.TIF" for b in L7_BANDS] + ["MTL.txt", "thumb_small.jpeg", "thumb_large.jpeg"]
    landsat = [f"{L7}/{L7}_{end}" for end in ends]
    granule = f"{SAFE}/GRANULE/{GRANULE}"
    s2 = [f"{granule}/IMG_DATA/R10m/{TILE}_{b}_10m.jp2" for b in S2_10M] + [
        f"{granule}/IMG_DATA/R20m/{TILE}_SCL_20m.jp2", f"{granule}/MTD_TL.xml",
        f"{granule}/QI_DATA/MSK_CLDPRB_20m.jp2", f"{granule}/QI_DATA/{TILE}_PVI.jp2",
        f"{SAFE}/HTML/star_bg.jpg", f"{SAFE}/manifest.safe", f"{SAFE}/MTD_MSIL2A.xml"]  # fmt: skip
    found = discover_listing((key, f"v-{i}") for i, key in enumerate(landsat + s2))
    scenes, _ = group(found.candidates)
    assert sorted(c.relpath for c in scenes) == [f"{L7}/{L7}", f"{granule}/IMG_DATA/{TILE}"]
    assert sorted(found.ignored) == sorted([
        f"{L7}/{L7}_thumb_small.jpeg", f"{L7}/{L7}_thumb_large.jpeg",
        f"{granule}/QI_DATA/MSK_CLDPRB_20m.jp2", f"{granule}/QI_DATA/{TILE}_PVI.jp2",
        f"{SAFE}/HTML/star_bg.jpg", f"{SAFE}/manifest.safe"])  # fmt: skip
    # The scenes' files: their bands and the metadata read, no auxiliary file.
    used = {p for c in scenes for p in (c.path, *c.sidecars)}
    assert used.isdisjoint(found.ignored)
    assert {f"{L7}/{L7}_MTL.txt", f"{granule}/MTD_TL.xml", f"{SAFE}/MTD_MSIL2A.xml"} <= used


def test_every_raster_a_product_ships_is_a_band_of_its_scene() -> None:
    """Level-1 bundles (Landsat 7's two band-6 gains, the angle bands) and Sentinel-2 L2A of
    2017-2018 (`L2A_T..._B02_10m.jp2`) group into one scene each, as Level-2 does."""
    le07 = "LE07_L1TP_028030_20230817_20230912_02_T1"
    l1_bands = ["B1", "B2", "B3", "B4", "B5", "B6_VCID_1", "B6_VCID_2", "B7", "B8", "QA_PIXEL",
                "QA_RADSAT", "SAA", "SZA", "VAA", "VZA"]  # fmt: skip
    old = ("S2A_MSIL2A_20170706T101031_N0205_R022_T32TQM_20170706T101030.SAFE/GRANULE/"
           "L2A_T32TQM_A010000_20170706T101030/IMG_DATA")  # fmt: skip
    old_bands = {"R10m": ["B02", "B03", "B04", "B08"], "R20m": ["B05", "SCL"]}
    keys = [f"{le07}/{le07}_{b}.TIF" for b in l1_bands] + [
        f"{old}/{res}/L2A_T32TQM_20170706T101031_{b}_{res[1:]}.jp2"
        for res, bands in old_bands.items() for b in bands]  # fmt: skip
    found = discover_listing((key, "v") for key in keys)
    scenes, notes = group(found.candidates)
    got = {c.relpath: sorted(b for b, _ in c.bands) for c in scenes}
    assert got == {
        f"{le07}/{le07}": sorted(l1_bands),
        f"{old}/T32TQM_20170706T101031": sorted(old_bands["R10m"] + old_bands["R20m"]),
    }
    assert notes == [] and found.ignored == []
