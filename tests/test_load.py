"""Notebook-side reading: open a catalog, search it, load the COGs lazily into xarray."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import byod
from byod.analysis import MixedCrs
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


def test_items_in_several_crss_need_a_crs(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """odc-stac takes the first item's CRS and reads `resolution` in its units: a UTM item
    and a geographic one loaded at resolution=30 gave a 1 x 1 pixel cube (30 degrees) and
    dropped a band. byod.load refuses and names the CRSs; with crs= given it loads."""
    write_raster("utm_20240101.tif", ramp(64, 64, "uint16"), nodata=0)
    write_raster("geo_20240102.tif", ramp(64, 64, "uint16"), nodata=0, crs="EPSG:4326",
                 transform=Affine(0.001, 0, 15.0, 0, -0.001, 45.1))  # fmt: skip
    run_ingest()
    items = byod.search(str(tmp_path / "catalog"))
    codes = {i.properties["proj:code"] for i in items}
    assert codes == {"EPSG:32633", "EPSG:4326"}
    with pytest.raises(MixedCrs, match=r"2 CRSs .*EPSG:32633.*EPSG:4326"):
        byod.load(items, bands=["data"], resolution=30)
    ds = byod.load(items, bands=["data"], crs="EPSG:32633", resolution=30)
    assert ds.odc.crs == "EPSG:32633" and ds["data"].shape[0] == 2
