"""Names that must fit in a file name: a NetCDF variable name may be 256 characters, and a
container's items are `<file id>-<variable>`; the COG, thumbnail and their `.partial` names
while stored once passed 255 bytes (OSError 36: storage_failed, on every run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import rasterio

from byod.report import Report, Status
from tests.conftest import write_cf_grid
from tests.readback import item_files

LONG = "surface_air_temperature_" + "x" * 200


def test_long_variable_names_fit(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path = src / "model_2021.nc"
    with netCDF4.Dataset(path, "w") as ds:
        write_cf_grid(ds)
        for i, name in enumerate((f"{LONG}_1", f"{LONG}_2")):
            var = ds.createVariable(name, "f4", ("y", "x"))
            var.grid_mapping = "crs"
            var[:] = np.full((20, 30), 280.0 + i, np.float32)
    report = run_ingest(time={"datetime": "2021-01-01"})
    row = next(r for r in report.rows if r.input == "model_2021.nc")
    assert row.status is Status.INGESTED, row.message
    items = item_files(tmp_path / "catalog", "test")
    assert len(items) == 2 and len(set(items)) == 2
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored and all(len(p.name.encode()) <= 255 - 18 for p in stored)  # + `.partial`
    held = set()
    for item_id, item_path in items.items():
        assert len(item_id) <= 180
        item = json.loads(item_path.read_text())
        href = (item_path.parent / item["assets"]["data"]["href"]).resolve()
        with rasterio.open(href) as cog:
            values = cog.read(1)
        for variable in (f"{LONG}_1", f"{LONG}_2"):  # each item holds one variable, whole
            with rasterio.open(f'NETCDF:"{path}":{variable}') as var:
                if np.array_equal(values, var.read(1)):
                    held.add(variable)
    assert held == {f"{LONG}_1", f"{LONG}_2"}
