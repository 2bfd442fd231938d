"""byod.load refuses items whose data assets differ: one product's files are one `data` COG
when their bands share a nodata and one asset per band when they do not, and odc-stac loads
nodata, silently, for the bands an item lacks (the March scene of a series came back empty).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

import byod
from byod.analysis import MixedAssets
from byod.report import Report
from tests.conftest import WriteRaster


@pytest.fixture
def series(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> list[str]:
    """January and February: nodata 0 on both bands (one COG `data`); March: nodata 0 and
    255 per band in its `.aux.xml` (one COG per band, b1 and b2)."""
    data = np.full((2, 64, 64), 50, np.uint8)
    data[:, :, :10] = 0
    write_raster("ndvi_20240101.tif", data, nodata=0)
    write_raster("ndvi_20240201.tif", data, nodata=0)
    march = data.copy()
    march[1, :, :10] = 255
    path = write_raster("ndvi_20240301.tif", march)
    Path(f"{path}.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand>'
        '<PAMRasterBand band="2"><NoDataValue>255</NoDataValue></PAMRasterBand></PAMDataset>'
    )
    with rasterio.open(path) as src:  # GDAL reads the bands' nodata apart
        assert src.nodatavals == (0.0, 255.0)
    run_ingest()
    return [i.id for i in byod.search(str(tmp_path / "catalog"))]


def test_mixed_layouts_are_refused(tmp_path: Path, series: list[str]) -> None:
    items = byod.search(str(tmp_path / "catalog"))
    layouts = {i.id: [k for k, a in i.assets.items() if "data" in (a.roles or [])] for i in items}
    assert layouts == {"ndvi_20240101": ["data"], "ndvi_20240201": ["data"],
                       "ndvi_20240301": ["b1", "b2"]}  # fmt: skip
    with pytest.raises(MixedAssets, match=r"2 layouts .*b1, b2: ndvi_20240301.*bands=") as err:
        byod.load(items, resolution=10)
    assert "\n" not in str(err.value)
    with pytest.raises(MixedAssets, match=r"no data: ndvi_20240301"):
        byod.load(items, bands=["data"], resolution=10)
    with pytest.raises(MixedAssets, match=r"no b1: ndvi_20240101, ndvi_20240201"):
        byod.load(items, bands=["b1"], resolution=10)


def test_one_layout_loads(tmp_path: Path, series: list[str]) -> None:
    """The items of one layout load, every value as written."""
    items = [i for i in byod.search(str(tmp_path / "catalog")) if "data" in i.assets]
    ds = byod.load(items, resolution=10)
    for band in ("data.1", "data.2"):  # odc-stac's names for a multi-band asset's bands
        values = ds[band].compute().values
        assert values.shape == (2, 64, 64)
        assert (values[:, :, 10:] == 50).all()
