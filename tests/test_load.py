"""Notebook-side reading: open a catalog, search it, load the COGs lazily into xarray."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

import byod
from byod.report import Report
from tests.conftest import WriteRaster, ramp


def test_search_then_load_lazily(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp(64, 64, "uint16", bands=2), nodata=0)
    write_raster("b_20240201.tif", ramp(64, 64, "uint16", bands=2) * 2, nodata=0)
    run_ingest()
    catalog = byod.open_catalog(str(tmp_path / "catalog"))
    assert [c.id for c in catalog.get_children()] == ["test"]
    items = byod.search(str(tmp_path / "catalog"), datetime="2024-01-15/..")
    assert [i.id for i in items] == ["b_20240201"]
    ds = byod.load(items, bands=["data"], chunks={"x": 32, "y": 32})
    assert ds["data"].chunks is not None  # dask-backed: nothing read yet
    values = ds["data"].isel(time=0).compute().values
    assert values.shape == (64, 64)
    np.testing.assert_array_equal(values, ramp(64, 64, "uint16", bands=2)[0] * 2)
