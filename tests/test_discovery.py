"""Discovery: every file GDAL can open as a raster is a candidate, whatever its extension;
sidecars stay sidecars; documents and tables stay ignored.

The oracle is GDAL itself: a file is expected among the candidates exactly when rasterio
opens it as a raster (outside the documented exclusions: PDF documents and CSV tables).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from pyproj import CRS
from rasterio.errors import RasterioIOError
from rasterio.transform import from_origin

from byod.identify import identify_driver, looks_like_raster
from byod.report import Report, Status
from byod.sources import discover, discover_listing
from tests.conftest import ramp, write_geotiff

UTM = {"crs": "EPSG:32611", "transform": from_origin(500000, 4000000, 30, 30)}


def _lcp(path: Path) -> None:
    """A FARSITE landscape (GDAL's LCP driver): 5 int16 bands (elevation, slope, aspect,
    fuel model, canopy cover) on a projected grid, written by GDAL's CreateCopy."""
    tif = path.with_suffix(".src.tif")
    write_geotiff(tif, ramp(40, 50, "int16", bands=5), **UTM)
    rasterio.shutil.copy(tif, path, driver="LCP")
    tif.unlink()


def _netcdf(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as ds:
        ds.createDimension("y", 10)
        ds.createDimension("x", 12)
        x = ds.createVariable("x", "f8", ("x",))
        x[:] = 500015 + 30 * np.arange(12)
        x.standard_name = "projection_x_coordinate"
        y = ds.createVariable("y", "f8", ("y",))
        y[:] = 3999985 - 30 * np.arange(10)
        y.standard_name = "projection_y_coordinate"
        crs = ds.createVariable("crs", "i4")
        crs.spatial_ref = crs.crs_wkt = CRS.from_epsg(32611).to_wkt()
        crs.grid_mapping_name = "transverse_mercator"
        var = ds.createVariable("fuel", "f4", ("y", "x"))
        var[:] = np.arange(120, dtype="f4").reshape(10, 12)
        var.grid_mapping = "crs"


def _opens_as_raster(path: Path) -> bool:
    try:
        with rasterio.open(path) as src:
            return src.count > 0 or bool(src.subdatasets)
    except RasterioIOError:
        return False


def _folder(src: Path) -> dict[str, str]:
    """Files of every kind, named as they come: {relpath: what it is}."""
    _lcp(src / "fire" / "landscape_20240101.lcp")  # also writes landscape_20240101.prj
    write_geotiff(src / "dem_20240101", ramp(20, 20), **UTM)  # a GeoTIFF with no extension
    write_geotiff(src / "ortho_20240101.geotiff", ramp(20, 20), **UTM)
    write_geotiff(src / "scan_20240101.tif.1", ramp(20, 20), **UTM)  # a rotated copy
    _netcdf(src / "fuel_20240101.cdf")  # netCDF-3 classic under an old extension
    write_geotiff(src / "plain_20240101.tif", ramp(20, 20), **UTM)
    (src / "plain_20240101.tfw").write_text("30\n0\n0\n-30\n500015\n3999985\n")
    (src / "plain_20240101.tif.aux.xml").write_text("<PAMDataset></PAMDataset>")
    (src / "notes.csv").write_text("site,date,observer\nA,2024-01-01,kim\n")
    (src / "points.csv").write_text("x,y,z\n0,0,1\n1,0,2\n0,1,3\n1,1,4\n")  # XYZ-like table
    (src / "report.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    (src / "README").write_text("Fire landscapes for the 2024 season.\n")
    (src / "methods.md").write_text("# Methods\n")
    (src / "blob.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    return {
        "fire/landscape_20240101.lcp": "raster",
        "dem_20240101": "raster",
        "ortho_20240101.geotiff": "raster",
        "scan_20240101.tif.1": "raster",
        "fuel_20240101.cdf": "raster",
        "plain_20240101.tif": "raster",
        "fire/landscape_20240101.prj": "sidecar",
        "plain_20240101.tfw": "sidecar",
        "plain_20240101.tif.aux.xml": "sidecar",
        "notes.csv": "ignored",
        "points.csv": "ignored",
        "report.pdf": "ignored",
        "README": "ignored",
        "methods.md": "ignored",
        "blob.bin": "ignored",
    }


def test_gdal_decides_what_is_a_raster(tmp_path: Path) -> None:
    src = tmp_path / "src"
    kinds = _folder(src)
    found = discover(src)
    candidates = {c.relpath for c in found.candidates}
    sidecars = {Path(s).relative_to(src).as_posix() for c in found.candidates for s in c.sidecars}
    # The oracle: what GDAL opens (documents and tables aside) is a raster.
    for rel, kind in kinds.items():
        if kind == "raster":
            assert _opens_as_raster(src / rel), rel
        if kind == "ignored" and rel.endswith((".csv", ".pdf")):
            continue  # GDAL's XYZ/PDF drivers may claim them: excluded by rule
        elif kind == "ignored":
            assert not _opens_as_raster(src / rel), rel
    assert candidates == {r for r, k in kinds.items() if k == "raster"}
    assert sidecars >= {r for r, k in kinds.items() if k == "sidecar"}
    assert set(found.ignored) == {r for r, k in kinds.items() if k == "ignored"}
    assert found.problems == []


def test_identify_reads_headers_not_names(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "a.tif", ramp(8, 8), **UTM)
    shutil.copy(tmp_path / "a.tif", tmp_path / "a.data")
    assert identify_driver(str(tmp_path / "a.data")) == "GTiff"
    (tmp_path / "table.csv").write_text("x,y,z\n0,0,1\n1,0,2\n0,1,3\n1,1,4\n")
    assert identify_driver(str(tmp_path / "table.csv")) == "XYZ"  # GDAL claims it...
    assert not looks_like_raster(str(tmp_path / "table.csv"))  # ...byod does not
    assert identify_driver(str(tmp_path / "missing.tif")) is None


def test_remote_listing_knows_gdal_extensions() -> None:
    """A listing has no bytes to identify: GDAL's declared extensions decide there."""
    found = discover_listing([("fire/landscape.lcp", "1"), ("fire/landscape.prj", "2"),
                              ("dem.hgt", "3"), ("notes.pdf", "4")])  # fmt: skip
    assert [c.relpath for c in found.candidates] == ["dem.hgt", "fire/landscape.lcp"]
    assert found.ignored == ["notes.pdf"]


def test_lcp_and_extensionless_rasters_are_ingested(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    src = tmp_path / "src"
    _lcp(src / "landscape_20240101.lcp")
    write_geotiff(src / "dem_20240101", ramp(20, 20), **UTM)
    (src / "notes.csv").write_text("site,date\nA,2024-01-01\n")
    report = run_ingest()
    rows = {r.input: r for r in report.rows}
    assert rows["landscape_20240101.lcp"].status is Status.INGESTED, rows
    assert rows["dem_20240101"].status is Status.INGESTED, rows
    assert "notes.csv" not in rows and report.ignored == ["notes.csv"]
    item_path = next((tmp_path / "catalog").rglob("landscape_20240101.json"))
    item = json.loads(item_path.read_text())
    with rasterio.open(src / "landscape_20240101.lcp") as lcp:
        assert len(item["assets"]["data"]["raster:bands"]) == lcp.count == 5
        assert item["properties"]["proj:code"] == "EPSG:32611"


@pytest.mark.parametrize("name", ["notes.csv", "report.pdf", "README"])
def test_non_rasters_stay_ignored_in_the_report(
    tmp_path: Path, run_ingest: Callable[..., Report], name: str
) -> None:
    src = tmp_path / "src"
    write_geotiff(src / "plain_20240101.tif", ramp(20, 20), **UTM)
    (src / name).write_bytes(b"%PDF-1.4\n%%EOF\n" if name.endswith(".pdf") else b"a,b\n1,2\n")
    report = run_ingest()
    rows = {r.input: r for r in report.rows}
    assert rows["plain_20240101.tif"].status is Status.INGESTED
    assert name not in rows and report.ignored == [name]
