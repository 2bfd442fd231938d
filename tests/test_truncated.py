"""Files cut short are `truncated`, whatever part of them is missing: a header a GDAL driver
recognises but cannot open (HFA, JPEG 2000, PNG, TIFF), and a header that opens but whose
GeoKeys or pixel data lie past the end (it read as "no georeferencing" before). The files are
real rasters written by GDAL's own drivers, then cut; an intact file without georeferencing
stays `not_georeferenced`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from byod.reasons import Reason
from byod.report import Report, Status

SIZE = 300
DRIVERS = {"tif": "GTiff", "img": "HFA", "jp2": "JP2OpenJPEG", "png": "PNG"}


def _whole(folder: Path, ext: str, georeferenced: bool = True) -> bytes:
    """A 300 x 300 uint16 raster written by the driver for `ext`, as bytes."""
    path = folder / f"whole.{ext}"
    profile = {"driver": DRIVERS[ext], "width": SIZE, "height": SIZE, "count": 1,
               "dtype": "uint16"}  # fmt: skip
    if georeferenced:
        profile |= {"crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 10, 10)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write((np.arange(SIZE * SIZE).reshape(1, SIZE, SIZE) % 1000).astype("uint16"))
    data = path.read_bytes()
    for written in folder.glob("whole.*"):  # the file and any sidecar GDAL wrote
        written.unlink()
    return data


@pytest.fixture
def cut_files(tmp_path: Path) -> dict[str, int]:
    """name -> the whole file's size, for files cut at 16 bytes, 200 bytes and half."""
    scratch, src = tmp_path / "scratch", tmp_path / "src"
    scratch.mkdir()
    src.mkdir()
    sizes = {}
    for ext in DRIVERS:
        whole = _whole(scratch, ext)
        for cut in (16, 200, len(whole) // 2):
            name = f"{ext}_{cut}.{ext}"
            (src / name).write_bytes(whole[:cut])
            sizes[name] = len(whole)
    (src / "plain.png").write_bytes(_whole(scratch, "png", georeferenced=False))
    return sizes


def test_cut_files_are_truncated(
    cut_files: dict[str, int], run_ingest: Callable[..., Report]
) -> None:
    rows = {r.input: r for r in run_ingest().rows}
    # GDAL's HFA driver does not recognise 16 bytes of an .img at all: not a raster then.
    unrecognised = {"img_16.img"}
    for name in cut_files:
        expected = Reason.NOT_A_RASTER if name in unrecognised else Reason.TRUNCATED
        assert rows[name].status is Status.REJECTED
        assert rows[name].reason is expected, (name, rows[name].message)
        assert rows[name].message.startswith(name)
        assert "See previous exception" not in rows[name].message  # GDAL's own words
    assert rows["plain.png"].reason is Reason.NOT_GEOREFERENCED
