"""Every GDAL-readable georeferenced format the issue names becomes a valid COG and an item."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import ramp, write_cf_grid
from tests.readback import asset_path, item_files

GRID = from_origin(500000, 5000000, 10, 10)


def _write(path: Path, driver: str, **options: object) -> None:
    data = ramp(64, 64, "uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver=driver, count=1, height=64, width=64, dtype="uint8",
                       crs="EPSG:32633", transform=GRID, **options) as dst:  # fmt: skip
        dst.write(data)


def _netcdf(path: Path) -> None:
    """A CF NetCDF with two variables on one projected grid: two GDAL subdatasets."""
    with netCDF4.Dataset(path, "w") as ds:
        write_cf_grid(ds)
        for name in ("temperature", "humidity"):
            var = ds.createVariable(name, "f4", ("y", "x"))
            var[:] = np.arange(600, dtype="f4").reshape(20, 30)
            var.grid_mapping = "crs"


def test_formats(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    src = tmp_path / "src"
    _write(src / "jp2_20240101.jp2", "JP2OpenJPEG")
    _write(src / "envi_20240101.dat", "ENVI")  # writes the .hdr sidecar beside it
    _write(src / "erdas_20240101.img", "HFA")
    _write(src / "png_20240101.png", "PNG", WORLDFILE="YES")  # .wld + .aux.xml with the CRS
    # A plain VRT over a GeoTIFF inside the source folder (a VRT may read only files there).
    _write(src / "tiles" / "tile_20240101.tif", "GTiff")
    rasterio.shutil.copy(src / "tiles" / "tile_20240101.tif", src / "mosaic_20240101.vrt",
                         driver="VRT")  # fmt: skip
    _netcdf(src / "climate_20240101.nc")

    report = run_ingest()
    rows = {r.input: r for r in report.rows}
    assert {k: r.status for k, r in rows.items()} == {
        "climate_20240101.nc": Status.INGESTED,
        "envi_20240101.dat": Status.INGESTED,
        "erdas_20240101.img": Status.INGESTED,
        "jp2_20240101.jp2": Status.INGESTED,
        "mosaic_20240101.vrt": Status.INGESTED,
        "png_20240101.png": Status.INGESTED,
        "tiles/tile_20240101.tif": Status.INGESTED,
    }
    assert rows["climate_20240101.nc"].item_ids == [
        "climate_20240101-humidity", "climate_20240101-temperature"
    ]  # fmt: skip
    # Sidecars are metadata, never items.
    assert len([i for r in report.rows for i in r.item_ids]) == 8
    items = item_files(tmp_path / "catalog", "test")
    assert len(items) == 8
    for item_json in items.values():
        item = json.loads(item_json.read_text())
        cog = asset_path(item_json, item["assets"]["data"]["href"])
        assert cog_validate(str(cog), quiet=True)[0], item["id"]
        assert item["properties"]["proj:code"] == "EPSG:32633", item["id"]
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []
    nc_item = json.loads(items["climate_20240101-humidity"].read_text())
    assert nc_item["properties"]["byod:subdataset"] == "humidity"
    assert nc_item["properties"]["proj:shape"] == [20, 30]
    assert nc_item["bbox"][0] < nc_item["bbox"][2]
