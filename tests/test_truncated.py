"""Files cut short are `truncated`, whatever part of them is missing: a header a GDAL driver
recognises but cannot open (HFA, JPEG 2000, PNG, TIFF), and a header that opens but whose
GeoKeys or pixel data lie past the end (it read as "no georeferencing" before). The files are
real rasters written by GDAL's own drivers, then cut; an intact file without georeferencing
stays `not_georeferenced`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
import rasterio.errors
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
    # GDAL's HFA driver does not recognise 16 bytes of an .img, but they hold its signature
    # (EHFA_HEADER_TAG): a cut file, not an unknown format.
    for name in cut_files:
        expected = Reason.TRUNCATED
        assert rows[name].status is Status.REJECTED
        assert rows[name].reason is expected, (name, rows[name].message)
        assert rows[name].message.startswith(name)
        assert "See previous exception" not in rows[name].message  # GDAL's own words
        # ... without a handle's address or errno 0's "Success" (HFA's short reads)
        assert "0x" not in rows[name].message and "Success" not in rows[name].message
    assert rows["plain.png"].reason is Reason.NOT_GEOREFERENCED


# --- Formats GDAL reads zeros past the end of: the file is shorter than its header says ----

NC_SIZE = 200
NC_FORMATS = {"classic": "NETCDF3_CLASSIC", "offset64": "NETCDF3_64BIT_OFFSET",
              "cdf5": "NETCDF3_64BIT_DATA", "nc4": "NETCDF4"}  # fmt: skip


def _netcdf(path: Path, fmt: str, *, records: bool) -> None:
    """A CF lat/lon grid of t2m around 250 K (no zero in it), as netCDF-C writes it; with
    `records`, along an unlimited time dimension (record variables, 2 records)."""
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.createDimension("lat", NC_SIZE)
        ds.createDimension("lon", NC_SIZE)
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat[:] = np.linspace(50, 40, NC_SIZE)
        lat.units, lat.standard_name = "degrees_north", "latitude"
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon[:] = np.linspace(0, 10, NC_SIZE)
        lon.units, lon.standard_name = "degrees_east", "longitude"
        values = np.random.default_rng(1).random((NC_SIZE, NC_SIZE)).astype("f4") + 250
        if records:
            ds.createDimension("time", None)
            time = ds.createVariable("time", "f8", ("time",))
            time.units = "days since 2024-01-01"
            time[:] = [0, 1]
            t2m = ds.createVariable("t2m", "f4", ("time", "lat", "lon"), fill_value=-999.0)
            t2m[:] = np.stack([values, values])
        else:
            t2m = ds.createVariable("t2m", "f4", ("lat", "lon"), fill_value=-999.0)
            t2m[:] = values


@pytest.fixture
def short_files(tmp_path: Path) -> dict[str, bool]:
    """name -> whether the file is whole: NetCDF classic, 64-bit offset, CDF-5 (fixed and
    record variables) and NetCDF-4 cut at a third, at half, 2000 bytes short and inside the
    header (100 bytes); ENVI raw data cut at half and one line short; the whole files."""
    scratch, src = tmp_path / "scratch", tmp_path / "src"
    scratch.mkdir()
    src.mkdir()
    names = {}
    for label, fmt in NC_FORMATS.items():
        for records in (False, True) if fmt != "NETCDF4" else (False,):
            whole = scratch / f"{label}{'_rec' if records else ''}.nc"
            _netcdf(whole, fmt, records=records)
            data = whole.read_bytes()
            for cut in (len(data) // 3, len(data) // 2, len(data) - 2000, 100, len(data)):
                name = f"{whole.stem}_{cut}.nc"
                (src / name).write_bytes(data[:cut])
                names[name] = cut == len(data)
    envi = scratch / "envi.bin"
    with rasterio.open(envi, "w", driver="ENVI", width=SIZE, height=SIZE, count=2,
                       dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:  # fmt: skip
        dst.write(np.full((2, SIZE, SIZE), 7, np.uint16))
    data = envi.read_bytes()
    for cut in (len(data) // 2, len(data) - SIZE * 2, len(data)):
        (src / f"envi_{cut}.bin").write_bytes(data[:cut])
        (src / f"envi_{cut}.hdr").write_bytes(envi.with_suffix(".hdr").read_bytes())
        names[f"envi_{cut}.bin"] = cut == len(data)
    return names


def test_files_shorter_than_their_header_are_truncated(
    short_files: dict[str, bool], run_ingest: Callable[..., Report], tmp_path: Path
) -> None:
    """netCDF-C opens a cut classic file and reads zeros for the missing bytes (no error),
    and GDAL zero-fills an ENVI file's short reads: byod stored those zeros as data. The
    producer's header says how long the file is."""
    rows = {r.input: r for r in run_ingest(time={"datetime": "2024-01-01"}).rows}
    src = tmp_path / "src"  # run_ingest's source
    for name, whole in short_files.items():
        if whole:
            # GDAL's build may lack netCDF-C's CDF-5 support: then the whole file is not
            # readable at all, and no more.
            expected = Status.INGESTED if _gdal_opens(src / name) else Status.REJECTED
            assert rows[name].status is expected, (name, rows[name].message)
            if expected is Status.REJECTED:
                assert rows[name].reason is Reason.NOT_A_RASTER, rows[name].message
            continue
        assert rows[name].reason is Reason.TRUNCATED, (name, rows[name].message)
        assert rows[name].message.startswith(name)


def _gdal_opens(path: Path) -> bool:
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


def test_cut_classic_netcdf_reads_zeros_without_error(tmp_path: Path) -> None:
    """Why the header is measured: GDAL reads a classic file cut at half without an error,
    zeros where the values were (none of them is zero in the whole file)."""
    path = tmp_path / "whole.nc"
    _netcdf(path, "NETCDF3_CLASSIC", records=False)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with rasterio.open(f'NETCDF:"{path}":t2m') as src:
        assert (src.read(1) == 0).sum() == 0
    with rasterio.open(f'NETCDF:"{cut}":t2m') as src:
        assert (src.read(1) == 0).sum() > 0


def test_vrt_reasons(tmp_path: Path, run_ingest: Callable[..., Report]) -> None:
    """A VRT whose source file is missing is a broken reference (unreadable, naming the
    file), not truncated pixel data; a VRT whose XML is cut is damaged (truncated), not a
    reference outside the source."""
    src = tmp_path / "src"
    src.mkdir()
    head = ('<VRTDataset rasterXSize="10" rasterYSize="10">'
            "<GeoTransform>500000,10,0,5000000,0,-10</GeoTransform>")  # fmt: skip
    (src / "missing_src.vrt").write_text(
        f'{head}<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">nothere.tif</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    (src / "bad_xml.vrt").write_text(f'{head}<VRTRasterBand dataType="Byte" ban')
    rows = {r.input: r for r in run_ingest(time={"datetime": "2024-01-01"}).rows}
    missing, cut = rows["missing_src.vrt"], rows["bad_xml.vrt"]
    assert missing.reason is Reason.UNREADABLE, missing.message
    assert "nothere.tif" in missing.message and "does not exist" in missing.message
    assert cut.reason is Reason.TRUNCATED, cut.message
