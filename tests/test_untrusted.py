"""Uploads are untrusted (issue 11): every hostile route an upload folder offers, each beside
good inputs, checked by reading back what was published (the catalog through pystac, the
pixels of every stored COG through rasterio), never by trusting byod's report alone.

Routes: VRTs to files outside the source (absolute, relative, relativeToVRT=0 against the
working directory, through a link, nested, as a `.ovr`), a raw band on /etc/passwd, an ERS
header naming an outside data file, network URLs (a loopback HTTP server that must see no
request), /vsiaz/ to another Azurite container, an upsampling bomb, modules in the working
directory of the ingest process, a script without a main guard, names that are not UTF-8 or
255 bytes long, links out of the source, and one file reached twice.
"""

from __future__ import annotations

import ast
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pystac
import pytest
import rasterio
from azure.storage.blob import BlobServiceClient
from PIL import Image
from typer.testing import CliRunner

from byod import confine, runner
from byod.cli import app
from byod.confine import abi_version
from byod.reasons import Reason
from byod.report import Report, Status
from byod.runner import run_bounded
from byod.untrusted import (
    ABSOLUTE,
    CONNECTION,
    LINK,
    NETWORK,
    RELATIVE,
    VSI,
    reference_class,
)
from byod.workspace import remove_stale
from tests.conftest import WriteRaster, ramp, write_geotiff
from tests.daemon_jobs import KEPT, SECRETS, leaked

RunIngest = Callable[..., Report]
GOOD = "good_20240101.tif"
# Pixel values no good input has (ramp() stays below 1100): the outside "secret" raster.
SECRET_OFFSET = 5000
BYOD = Path(sys.executable).parent / "byod"
CRS_WKT = rasterio.crs.CRS.from_epsg(32633).to_wkt()


# --- what was published --------------------------------------------------------------------


def _items(tmp_path: Path) -> list[pystac.Item]:
    """Every item reachable from the root catalog, read by pystac (not by byod)."""
    root = tmp_path / "catalog" / "catalog.json"
    if not root.exists():
        return []
    return list(pystac.Catalog.from_file(str(root)).get_items(recursive=True))


def _stored_pixels(tmp_path: Path) -> list[np.ndarray]:
    """The pixels of every GeoTIFF stored in the target, whatever its key."""
    out = []
    for path in sorted((tmp_path / "data").rglob("*.tif")):
        with rasterio.open(path) as src:
            out.append(src.read())
    return out


def _assert_only_good_published(tmp_path: Path, report: Report, good: list[str]) -> None:
    items = _items(tmp_path)
    assert sorted(i.properties["byod:source"] for i in items) == sorted(good), report.rows
    for pixels in _stored_pixels(tmp_path):
        assert pixels.max() < SECRET_OFFSET  # nothing of the outside raster was stored


def _rows(report: Report) -> dict[str, Any]:
    return {r.input: r for r in report.rows}


def _assert_outside(report: Report, name: str, secret: str | None = None) -> None:
    row = _rows(report)[name]
    assert row.status is Status.REJECTED and row.reason is Reason.OUTSIDE_SOURCE, row
    assert name in (row.message or "")
    if secret:  # the class is named, never the path or URL itself
        assert secret not in (row.message or ""), row


# --- hostile files -------------------------------------------------------------------------


def _vrt(reference: str, relative: bool, *, size: int = 64, dtype: str = "UInt16",
         source_size: int = 64, raw: bool = False) -> str:  # fmt: skip
    """A VRT as gdalbuildvrt writes one (one band, a SimpleSource), or a raw-band VRT."""
    flag = "1" if relative else "0"
    if raw:
        band = (
            f'<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
            f'<SourceFilename relativetoVRT="{flag}">{reference}</SourceFilename>'
            f"<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>"
            f"<LineOffset>{size}</LineOffset></VRTRasterBand>"
        )
    else:
        band = (
            f'<VRTRasterBand dataType="{dtype}" band="1"><SimpleSource>'
            f'<SourceFilename relativeToVRT="{flag}">{reference}</SourceFilename>'
            f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{source_size}" '
            f'ySize="{source_size}"/><DstRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>'
            f"</SimpleSource></VRTRasterBand>"
        )
    return (
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{CRS_WKT}</SRS>'
        f"<GeoTransform>500000, {10 * 64 / size}, 0, 5000000, 0, {-10 * 64 / size}"
        f"</GeoTransform>{band}</VRTDataset>"
    )


def _geotiff(path: Path, data: np.ndarray) -> Path:
    """A GeoTIFF on the grid of the good inputs (UTM 33N, 10 m)."""
    transform = rasterio.transform.from_origin(500000, 5000000, 10, 10)
    return write_geotiff(path, data, crs="EPSG:32633", transform=transform)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A good raster outside the source: what a hostile VRT would publish."""
    return _geotiff(tmp_path / "outside" / "secret.tif", ramp() + SECRET_OFFSET)


def _route_absolute(src: Path, secret: Path) -> None:
    (src / "abs_20240101.vrt").write_text(_vrt(str(secret), relative=False))


def _route_relative(src: Path, secret: Path) -> None:
    (src / "sub").mkdir()
    (src / "sub" / "rel_20240101.vrt").write_text(_vrt("../../outside/secret.tif", True))


def _route_cwd(src: Path, secret: Path) -> None:
    # relativeToVRT="0": GDAL resolves the name against the process's working directory.
    (src / "cwd_20240101.vrt").write_text(_vrt(os.path.relpath(secret), relative=False))


def _route_link(src: Path, secret: Path) -> None:
    os.symlink(secret, src / "innocent.tif")  # the walk skips it; the VRT names it
    (src / "link_20240101.vrt").write_text(_vrt("innocent.tif", relative=True))


def _route_nested(src: Path, secret: Path) -> None:
    (src / "inner").mkdir()
    (src / "inner" / "inner.xml").write_text(_vrt(str(secret), relative=False))
    (src / "nested_20240101.vrt").write_text(_vrt("inner/inner.xml", relative=True))


def _route_overview(src: Path, secret: Path) -> None:
    # GDAL opens `x.tif.ovr` by name, whatever driver it is: here a VRT on the secret.
    write_geotiff(src / "ovr_20240101.tif", ramp(128, 128), crs="EPSG:32633",
                  transform=rasterio.transform.from_origin(500000, 5000000, 5, 5))  # fmt: skip
    (src / "ovr_20240101.tif.ovr").write_text(_vrt(str(secret), relative=False))


def _route_sidecar_link(src: Path, secret: Path) -> None:
    # GDAL reads `x.tif.aux.xml` (PAM) itself; a link to a file outside is read through it.
    _geotiff(src / "side_20240101.tif", ramp())
    outside = secret.parent / "meta.xml"
    outside.write_text('<PAMDataset><Metadata><MDI key="X">secret</MDI></Metadata></PAMDataset>')
    os.symlink(outside, src / "side_20240101.tif.aux.xml")


def _route_vsi(src: Path, secret: Path) -> None:
    (src / "vsi_20240101.vrt").write_text(_vrt(f"/vsigzip/{secret}", relative=False))


def _route_connection(src: Path, secret: Path) -> None:
    (src / "conn_20240101.vrt").write_text(_vrt(f"vrt://{secret}?bands=1", relative=False))


def _processed(gain: str, folder: Path) -> str:
    """A VRTProcessedDataset (GDAL 3.9+) scaling an inside raster by a gain raster named in an
    `<Argument>`, as GDAL's LocalScaleOffset documents it (not a `*Filename` element)."""
    return (
        '<VRTDataset subClass="VRTProcessedDataset"><Input>'
        f'<SourceFilename relativeToVRT="0">{folder / "in.tif"}</SourceFilename></Input>'
        '<ProcessingSteps><Step name="scale"><Algorithm>LocalScaleOffset</Algorithm>'
        '<Argument name="relativeToVRT">false</Argument>'
        f'<Argument name="gain_dataset_filename_1">{gain}</Argument>'
        '<Argument name="gain_dataset_band_1">1</Argument>'
        f'<Argument name="offset_dataset_filename_1">{folder / "zero.tif"}</Argument>'
        '<Argument name="offset_dataset_band_1">1</Argument>'
        "</Step></ProcessingSteps></VRTDataset>"
    )


def _route_processed(src: Path, secret: Path) -> list[str]:
    (src / "proc").mkdir()
    _geotiff(src / "proc" / "in.tif", np.ones((1, 64, 64), "uint16"))
    _geotiff(src / "proc" / "zero.tif", np.zeros((1, 64, 64), "uint16"))
    (src / "proc_20240101.vrt").write_text(_processed(str(secret), src / "proc"))
    return ["proc/in.tif", "proc/zero.tif"]  # inside inputs of their own


def _route_inline(src: Path, secret: Path) -> None:
    # A source named by a whole VRT document, XML-escaped: GDAL opens it as a VRT string.
    inline = html.escape(_vrt(str(secret), relative=False), quote=False)
    (src / "inline_20240101.vrt").write_text(_vrt(inline, relative=False))


def _route_root_path(src: Path, secret: Path) -> None:
    # An inside VRT whose relative source GDAL re-roots by the ROOT_PATH open option.
    (src / "inner").mkdir()
    (src / "inner" / "secret.tif").write_bytes(b"")  # the parsed name exists inside
    (src / "inner" / "inner.vrt").write_text(_vrt("secret.tif", relative=True))
    outer = _vrt("inner/inner.vrt", relative=True).replace(
        "<SourceBand>", f'<OpenOptions><OOI key="ROOT_PATH">{secret.parent}</OOI>'
        "</OpenOptions><SourceBand>",
    )  # fmt: skip
    (src / "rootpath_20240101.vrt").write_text(outer)


def _route_source_overview(src: Path, secret: Path) -> None:
    # A VRT downsampling an inside GeoTIFF whose PAM sidecar points its overviews outside.
    (src / "sub").mkdir()
    _geotiff(src / "sub" / "base.tif", ramp(128, 128))
    (src / "sub" / "base.tif.aux.xml").write_text(
        '<PAMDataset><Metadata domain="OVERVIEWS">'
        f'<MDI key="OVERVIEW_FILE">{secret}</MDI></Metadata></PAMDataset>'
    )
    vrt = _vrt("sub/base.tif", relative=True, source_size=128, size=64)
    (src / "srcovr_20240101.vrt").write_text(vrt)


def _route_inline_passwd(src: Path, secret: Path) -> None:
    inline = html.escape(_vrt("/etc/passwd", relative=False, size=16, raw=True), quote=False)
    vrt = _vrt(inline, False, size=16, source_size=16, dtype="Byte")
    (src / "inpasswd_20240101.vrt").write_text(vrt)


ROUTES: dict[str, Callable[[Path, Path], list[str] | None]] = {
    "inpasswd_20240101.vrt": _route_inline_passwd,
    "proc_20240101.vrt": _route_processed,
    "inline_20240101.vrt": _route_inline,
    "rootpath_20240101.vrt": _route_root_path,
    "srcovr_20240101.vrt": _route_source_overview,
    "abs_20240101.vrt": _route_absolute,
    "sub/rel_20240101.vrt": _route_relative,
    "cwd_20240101.vrt": _route_cwd,
    "link_20240101.vrt": _route_link,
    "nested_20240101.vrt": _route_nested,
    "ovr_20240101.tif": _route_overview,
    "side_20240101.tif": _route_sidecar_link,
    "vsi_20240101.vrt": _route_vsi,
    "conn_20240101.vrt": _route_connection,
}


@pytest.mark.parametrize("name", list(ROUTES))
def test_reference_outside_the_source_is_rejected(
    name: str, tmp_path: Path, secret: Path, write_raster: WriteRaster,
    run_ingest: RunIngest, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # the working directory the cwd route resolves against
    write_raster(GOOD, ramp())
    inside = ROUTES[name](tmp_path / "src", secret) or []
    report = run_ingest()
    _assert_outside(report, name, secret=str(tmp_path))
    _assert_only_good_published(tmp_path, report, [GOOD, *inside])


def test_references_inside_the_source_are_ingested(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    """The allowed kind: VRTs (also nested, also through a link that stays inside) whose
    every file lies in the source are converted, with the pixels of what they reference."""
    src = tmp_path / "src"
    write_raster("tiles/base.tif", ramp())
    (src / "mosaic_20240101.vrt").write_text(_vrt("tiles/base.tif", relative=True))
    (src / "tiles" / "inner.xml").write_text(_vrt("base.tif", relative=True))
    (src / "nested_20240102.vrt").write_text(_vrt("tiles/inner.xml", relative=True))
    report = run_ingest(time={"datetime": "2024-01-01T00:00:00Z"})
    rows = _rows(report)
    for name in ("mosaic_20240101.vrt", "nested_20240102.vrt"):
        assert rows[name].status is Status.INGESTED, rows[name]
    items = {i.properties["byod:source"]: i for i in _items(tmp_path)}
    with rasterio.open(src / "tiles" / "base.tif") as base:
        expected = base.read()
    for name in ("mosaic_20240101.vrt", "nested_20240102.vrt"):
        href = items[name].assets["data"].get_absolute_href()
        with rasterio.open(href) as cog:
            np.testing.assert_array_equal(cog.read(), expected)


def test_raw_band_on_etc_passwd_is_rejected(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster(GOOD, ramp())
    vrt = _vrt("/etc/passwd", relative=False, size=16, raw=True)
    (tmp_path / "src" / "passwd_20240101.vrt").write_text(vrt)
    report = run_ingest()
    _assert_outside(report, "passwd_20240101.vrt", secret="/etc/passwd")
    _assert_only_good_published(tmp_path, report, [GOOD])
    passwd = Path("/etc/passwd").read_bytes()[:16]
    for pixels in _stored_pixels(tmp_path):
        assert passwd not in pixels.tobytes()


def test_raw_band_inside_the_source_is_read(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    """A raw band on a file beside the VRT is allowed, and its bytes become the pixels."""
    src = tmp_path / "src"
    src.mkdir()
    data = (np.arange(16 * 16) % 200 + 1).astype("uint8")
    (src / "plane.raw").write_bytes(data.tobytes())
    (src / "raw_20240101.vrt").write_text(_vrt("plane.raw", relative=True, size=16, raw=True))
    report = run_ingest()
    row = _rows(report)["raw_20240101.vrt"]
    assert row.status is Status.INGESTED, row
    (item,) = _items(tmp_path)
    with rasterio.open(item.assets["data"].get_absolute_href()) as cog:
        np.testing.assert_array_equal(cog.read(1).ravel(), data)


def test_ers_header_naming_a_data_file_outside_is_rejected(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    """ER Mapper headers name their data file (`DataFile`); GDAL follows a relative one out
    of the folder. (ENVI and EHdr headers cannot name one: their data file is the input.)"""
    write_raster(GOOD, ramp())
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "plane.raw").write_bytes(bytes(range(16)))
    header = "\n".join([
        "DatasetHeader Begin", '\tVersion = "6.0"', '\tDataFile = "../outside/plane.raw"',
        "\tDataSetType = ERStorage", "\tDataType = Raster", "\tByteOrder = LSBFirst",
        "\tCoordinateSpace Begin", '\t\tDatum = "WGS84"', '\t\tProjection = "GEODETIC"',
        "\t\tCoordinateType = LATLONG", "\tCoordinateSpace End", "\tRasterInfo Begin",
        "\t\tCellType = Unsigned8BitInteger", "\t\tNrOfLines = 4", "\t\tNrOfCellsPerLine = 4",
        "\t\tNrOfBands = 1", "\tRasterInfo End", "DatasetHeader End", "",
    ])  # fmt: skip
    (tmp_path / "src" / "ers_20240101.ers").write_text(header)
    report = run_ingest()
    _assert_outside(report, "ers_20240101.ers", secret="plane.raw")
    _assert_only_good_published(tmp_path, report, [GOOD])


# --- the sandbox: the wall that does not depend on parsing --------------------------------

needs_landlock = pytest.mark.skipif(
    abi_version() < 1, reason="no Landlock on this kernel: workers have the parsed checks only"
)
SANDBOX_ROUTES = ["proc_20240101.vrt", "inline_20240101.vrt", "inpasswd_20240101.vrt",
                  "rootpath_20240101.vrt", "srcovr_20240101.vrt", "abs_20240101.vrt"]  # fmt: skip


@dataclass(frozen=True)
class _SandboxJob:
    """A job naming its folders (runner.Confined): its worker reads `source_root` only and
    writes `workdir` only."""

    path: Path
    workdir: Path
    source_root: Path


def _read_unchecked(job: _SandboxJob, stage: Callable[[str], None]) -> bytes:
    """Every pixel GDAL gives for `job.path`, at full and half resolution (overviews), with
    no parsed check before: what the sandbox alone lets through."""
    with rasterio.open(job.path) as src:
        full = src.read()
        half = src.read(out_shape=(src.count, max(1, src.height // 2), max(1, src.width // 2)))
    return full.tobytes() + half.tobytes()


def _secret_in(pixels: bytes, secret: Path) -> bool:
    with rasterio.open(secret) as src:
        values = src.read(1)
    return values[0, :4].tobytes() in pixels or Path("/etc/passwd").read_bytes()[:8] in pixels


@needs_landlock
@pytest.mark.parametrize("name", SANDBOX_ROUTES)
def test_sandbox_refuses_outside_reads_the_parser_would_miss(
    name: str, tmp_path: Path, secret: Path
) -> None:
    """The same hostile VRTs, opened in a worker with no parsed check at all: the worker's
    Landlock sandbox refuses the outside read, and the refusal is an outside_source rejection
    (a GDAL error raised, or only logged while GDAL went on with nodata)."""
    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir()
    work.mkdir()
    ROUTES[name](src, secret)
    job = _SandboxJob(src / name, work, src)
    assert _secret_in(_read_unchecked(job, print), secret)  # hostile indeed, unconfined
    (done,) = run_bounded([(name, job)], _read_unchecked, workers=1, timeout_s=60,
                          max_memory_mb=2048)  # fmt: skip
    if done.rejection is None:  # GDAL did without the outside file, silently
        assert done.result is not None and not _secret_in(done.result, secret)
        assert name == "srcovr_20240101.vrt", "only a missing overview may go unnoticed"
    else:
        assert done.rejection.reason is Reason.OUTSIDE_SOURCE, done.rejection
        assert str(tmp_path) not in done.rejection.message  # the class, never the path


def _read_file(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read()


def _touch_outside(job: _SandboxJob, stage: Callable[[str], None]) -> dict[str, str]:
    """Try reads and writes in and out of the job's folders with plain Python; say what
    happened to each."""
    outcome = {}
    tries: dict[str, Callable[[], object]] = {
        "read source": lambda: _read_file(job.path),
        "write work": lambda: (job.workdir / "out.bin").write_bytes(b"ok"),
        "open passwd": lambda: _read_file(Path("/etc/passwd")),
        "list etc": lambda: os.listdir("/etc"),
        "write outside": lambda: (job.source_root.parent / "escape.bin").write_bytes(b"x"),
        "write source": lambda: (job.source_root / "planted.bin").write_bytes(b"x"),
    }
    for what, attempt in tries.items():
        try:
            attempt()
            outcome[what] = "done"
        except OSError as exc:
            outcome[what] = f"refused: {exc}"
    return outcome


def _rasterio_passwd(job: _SandboxJob, stage: Callable[[str], None]) -> bytes:
    with rasterio.open("/etc/passwd") as src:
        return src.read().tobytes()


@needs_landlock
def test_worker_is_confined_to_its_source_and_work_folders(tmp_path: Path) -> None:
    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir()
    work.mkdir()
    job = _SandboxJob(_geotiff(src / "in.tif", ramp()), work, src)
    assert _read_file(Path("/etc/passwd"))  # readable here, outside the sandbox
    (done,) = run_bounded([("in.tif", job)], _touch_outside, workers=1, timeout_s=60,
                          max_memory_mb=2048)  # fmt: skip
    assert done.result is not None, done.rejection
    assert done.result["read source"] == done.result["write work"] == "done", done.result
    for what in ("open passwd", "list etc", "write outside", "write source"):
        assert "Permission denied" in done.result[what], (what, done.result)
    assert not (tmp_path / "escape.bin").exists() and not (src / "planted.bin").exists()
    # GDAL refused the same way; the worker reports it as outside_source, naming no path.
    (done,) = run_bounded([("in.tif", job)], _rasterio_passwd, workers=1, timeout_s=60,
                          max_memory_mb=2048)  # fmt: skip
    assert done.rejection is not None and done.rejection.reason is Reason.OUTSIDE_SOURCE
    assert "passwd" not in done.rejection.message


def test_without_landlock_workers_fall_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where the kernel has no Landlock (abi 0), `confine` restricts nothing and says so, the
    run notes it once and warns once."""
    monkeypatch.setattr(confine, "abi_version", lambda: 0)
    monkeypatch.setattr(runner, "_WARNED", False)
    assert confine.confine([Path("/nonexistent")], []) == 0
    assert Path("/etc/passwd").read_bytes()  # this process was not restricted
    with caplog.at_level("WARNING", logger="byod.runner"):
        first, second = runner.sandbox_note(), runner.sandbox_note()
    assert first is not None and first == second and "Landlock" in first
    assert len([r for r in caplog.records if "Landlock" in r.getMessage()]) == 1


def test_a_run_without_landlock_says_so_in_its_report(
    monkeypatch: pytest.MonkeyPatch, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster(GOOD, ramp())
    monkeypatch.setattr(confine, "abi_version", lambda: 0)  # the planning process's view
    report = run_ingest()
    assert _rows(report)[GOOD].status is Status.INGESTED
    assert [n for n in report.notes if n.startswith("byod:") and "Landlock" in n], report.notes


@needs_landlock
def test_with_landlock_the_run_has_no_sandbox_note(
    write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    assert runner.sandbox_note() is None
    write_raster(GOOD, ramp())
    assert not [n for n in run_ingest().notes if "Landlock" in n]


# --- NetCDF-4 / HDF5 whose data lives elsewhere ------------------------------------------------


def _netcdf4_outside(path: Path, outside: Path, kind: str) -> None:
    """A CF NetCDF-4 file (HDF5 with dimension scales, as netCDF-C writes them) whose `data`
    variable's bytes are not in it: HDF5 external storage (H5Pset_external), a virtual
    dataset mapping another file, or an external link."""
    secret = ramp(8, 32) + SECRET_OFFSET
    with h5py.File(outside / "secret.h5", "w") as other:
        other.create_dataset("data", data=secret)
    (outside / "secret.bin").write_bytes(secret.astype("<u2").tobytes())
    with h5py.File(path, "w") as f:
        lat = f.create_dataset("lat", data=np.linspace(50.0, 49.3, 8))
        lon = f.create_dataset("lon", data=np.linspace(10.0, 13.1, 32))
        lat.attrs["units"], lon.attrs["units"] = "degrees_north", "degrees_east"
        lat.make_scale("lat")
        lon.make_scale("lon")
        if kind == "external":
            data = f.create_dataset(
                "data",
                shape=(8, 32),
                dtype="<u2",
                external=[(str(outside / "secret.bin"), 0, secret.nbytes)],
            )
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(8, 32), dtype="<u2")
            layout[:] = h5py.VirtualSource(str(outside / "secret.h5"), "data", shape=(8, 32))
            data = f.create_virtual_dataset("data", layout)
        else:
            f["data"] = h5py.ExternalLink(str(outside / "secret.h5"), "/data")
            return
        data.dims[0].attach_scale(lat)
        data.dims[1].attach_scale(lon)


@needs_landlock
@pytest.mark.parametrize("kind", ["external", "virtual", "link"])
def test_netcdf4_data_stored_outside_is_not_published(
    kind: str, tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    """HDF5 resolves external storage, virtual datasets and external links inside the library,
    where no parsed check looks: only the sandbox stops them. Nothing of the outside bytes is
    published, whatever the row says."""
    write_raster(GOOD, ramp())
    (tmp_path / "outside").mkdir()
    name = f"{kind}_20240101.nc"
    _netcdf4_outside(tmp_path / "src" / name, tmp_path / "outside", kind)
    with rasterio.open(f'NETCDF:"{tmp_path / "src" / name}":data') as direct:
        assert direct.read().max() >= SECRET_OFFSET  # hostile indeed, unconfined
    report = run_ingest()
    assert _rows(report)[GOOD].status is Status.INGESTED
    row = _rows(report)[name]
    for pixels in _stored_pixels(tmp_path):
        assert pixels.max() < SECRET_OFFSET, report.rows
    if kind == "virtual":  # HDF5 fills a virtual dataset whose source it cannot open (0)
        assert row.status is Status.INGESTED, row
        (item,) = [i for i in _items(tmp_path) if i.properties["byod:source"] == name]
        with rasterio.open(item.assets["data"].get_absolute_href()) as cog:
            assert not cog.read().any()
    else:  # external storage: the read fails; external link: no variable to read
        assert row.status is Status.REJECTED, row
        assert row.reason in (Reason.UNREADABLE, Reason.NOT_A_RASTER), row
    assert str(tmp_path / "outside") not in (_rows(report)[name].message or "")


# --- the network ---------------------------------------------------------------------------


_SERVER = """
import http.server, pathlib, sys
body = pathlib.Path(sys.argv[1]).read_bytes()
log = pathlib.Path(sys.argv[2])

class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, with_body):
        with log.open("a") as f:
            f.write(self.command + " " + self.path + "\\n")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (its own process: GDAL's requests from this process must not wait
    on this process's GIL) serving a GeoTIFF at any path; yields its URL and its request log."""
    folder = tmp_path_factory.mktemp("http")
    body, log = folder / "served.tif", folder / "requests.log"
    _geotiff(body, ramp() + SECRET_OFFSET)
    log.touch()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(body), str(log)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.kill()
        server.communicate()  # waits, and closes its stdout


@pytest.mark.parametrize("form", ["/vsicurl/{url}/served.tif", "{url}/served.tif"])
def test_vrt_to_a_loopback_http_server_makes_no_request(
    form: str, tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest,
    http_server: tuple[str, Path],
) -> None:  # fmt: skip
    url, log = http_server
    write_raster(GOOD, ramp())
    reference = form.format(url=url)
    (tmp_path / "src" / "web_20240101.vrt").write_text(_vrt(reference, relative=False))
    report = run_ingest()
    _assert_outside(report, "web_20240101.vrt", secret="127.0.0.1")
    assert log.read_text() == ""  # the server got no request
    _assert_only_good_published(tmp_path, report, [GOOD])


def _open_in_worker(name: str, stage: Callable[[str], None]) -> str:
    """Open a GDAL name inside a byod worker: the second wall, GDAL's own switches."""
    try:
        with rasterio.open(name) as src:
            return f"read {src.read(1).sum()}"
    except rasterio.errors.RasterioIOError as exc:
        return f"refused: {exc}"


def test_workers_cannot_reach_the_network_even_when_gdal_is_asked_directly(
    http_server: tuple[str, Path],
) -> None:
    url, log = http_server
    with rasterio.open(f"/vsicurl/{url}/served.tif") as src:  # the same name, in this process
        assert src.read(1).max() >= SECRET_OFFSET
    assert log.read_text() != ""
    log.write_text("")
    jobs = [(n, n) for n in (f"/vsicurl/{url}/served.tif", f"/vsicurl/{url}/x.vrt")]
    done = list(run_bounded(jobs, _open_in_worker, workers=2, timeout_s=60, max_memory_mb=2048))
    assert all(d.result is not None and d.result.startswith("refused") for d in done), done
    assert log.read_text() == ""


@pytest.fixture
def private_blob(azure_env: str) -> str:
    """A GeoTIFF in another, private container of the same account; its /vsiaz/ name."""
    container = f"private-{azure_env}"
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    client.create_container(container)
    path = Path(tempfile.mkdtemp()) / "secret.tif"
    _geotiff(path, ramp() + SECRET_OFFSET)
    client.get_blob_client(container, "secret.tif").upload_blob(path.read_bytes())
    shutil.rmtree(path.parent, ignore_errors=True)
    return f"/vsiaz/{container}/secret.tif"


def test_vrt_to_another_azurite_container_is_rejected(
    private_blob: str, tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    with rasterio.open(private_blob) as blob:  # byod's credentials can read it in this process
        assert blob.read(1).max() >= SECRET_OFFSET
    write_raster(GOOD, ramp())
    (tmp_path / "src" / "blob_20240101.vrt").write_text(_vrt(private_blob, relative=False))
    report = run_ingest()
    _assert_outside(report, "blob_20240101.vrt", secret="private-")
    _assert_only_good_published(tmp_path, report, [GOOD])


def test_blob_source_vrts_reach_neither_other_containers_nor_the_machine(
    private_blob: str, azure_env: str, tmp_path: Path, run_ingest: RunIngest
) -> None:
    """An upload container whose VRTs name another container (/vsiaz/) or, relative to the
    folder the upload is fetched to, a file of the machine (a raw band on /etc/passwd)."""
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    uploads = f"uploads-{azure_env}"
    client.create_container(uploads)
    good = _geotiff(tmp_path / "local" / GOOD, ramp())
    escape = "../" * 40 + "etc/passwd"
    blobs = {
        f"projectA/{GOOD}": good.read_bytes(),
        "projectA/blob_20240101.vrt": _vrt(private_blob, relative=False).encode(),
        "projectA/passwd_20240101.vrt": _vrt(escape, True, size=16, raw=True).encode(),
    }
    for key, body in blobs.items():
        client.get_blob_client(uploads, key).upload_blob(body)
    report = run_ingest(source=f"az://{uploads}/projectA")
    _assert_outside(report, "blob_20240101.vrt", secret="private-")
    _assert_outside(report, "passwd_20240101.vrt", secret="etc/passwd")
    _assert_only_good_published(tmp_path, report, [GOOD])


def test_workers_hold_no_azure_credentials(private_blob: str) -> None:
    (done,) = run_bounded([("blob", private_blob)], _open_in_worker, workers=1, timeout_s=60,
                          max_memory_mb=2048)  # fmt: skip
    assert done.result is not None and done.result.startswith("refused"), done
    (env,) = run_bounded([("env", "")], _environment, workers=1, timeout_s=60, max_memory_mb=2048)
    assert env.result is not None
    assert not [k for k in env.result if k.startswith("AZURE_")], env.result


def _environment(_: str, stage: Callable[[str], None]) -> list[str]:
    return sorted(os.environ)


def test_forkserver_workers_start_with_an_allowlisted_environment() -> None:
    """A hub's environment holds tokens under any name: none reaches a forkserver worker, in
    os.environ or in the environment it was forked with (/proc/self/environ). A fresh
    interpreter, so that its forkserver starts with these variables in its parent."""
    env = {**os.environ, **SECRETS, **KEPT, "PYTHONPATH": str(Path(__file__).parents[1])}
    code = "from tests.daemon_jobs import environ_in_forkserver_workers as f; f()"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=180, cwd="/")  # fmt: skip
    assert out.returncode == 0, out.stderr
    seen = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert leaked(seen) == [], leaked(seen)
    assert all(seen["os"].get(k) == v for k, v in KEPT.items()), seen["os"]
    assert all(k.encode() + b"=" in seen["proc"] for k in KEPT), seen["proc"]


# --- resource bombs ------------------------------------------------------------------------


# A 1 KB VRT upsampling a 64² tile: 22.5 GB of one Byte band against a budget of half that,
# and 289 GB of Float64 against the default budget (the free temp space, which is less).
BOMBS = [(150_000, "Byte", 150_000**2 // 1024**2 // 2, "--disk-budget"),
         (190_000, "Float64", None, "free temp space")]  # fmt: skip


@pytest.mark.timeout(120)  # a conversion of the bomb would run for many minutes
@pytest.mark.parametrize(("size", "dtype", "budget_mb", "named"), BOMBS)
def test_upsampling_vrt_bomb_is_rejected_before_conversion(
    size: int, dtype: str, budget_mb: int | None, named: str,
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest,
) -> None:  # fmt: skip
    write_raster(GOOD, ramp())
    write_raster("tiles/small.tif", ramp())
    vrt = _vrt("tiles/small.tif", relative=True, size=size, dtype=dtype)
    (tmp_path / "src" / "bomb_20240101.vrt").write_text(vrt)
    needed = size**2 * np.dtype(dtype.lower().replace("byte", "uint8")).itemsize
    budget = shutil.disk_usage(tempfile.gettempdir()).free if budget_mb is None else (
        budget_mb * 1024**2)  # fmt: skip
    assert needed > budget  # the premise
    report = run_ingest(disk_budget_mb=budget_mb)
    row = _rows(report)["bomb_20240101.vrt"]
    assert row.status is Status.REJECTED and row.reason is Reason.TOO_LARGE, row
    assert "bomb_20240101.vrt" in (row.message or "") and named in (row.message or "")
    _assert_only_good_published(tmp_path, report, [GOOD, "tiles/small.tif"])


@pytest.mark.timeout(120)
def test_disk_budget_option_of_the_cli(tmp_path: Path, write_raster: WriteRaster) -> None:
    """`--disk-budget MB` reaches the check: 1000 MB refuses the 22.5 GB bomb, not the rest."""
    write_raster(GOOD, ramp())
    write_raster("tiles/small_20240101.tif", ramp())
    vrt = _vrt("tiles/small_20240101.tif", relative=True, size=150_000, dtype="Byte")
    (tmp_path / "src" / "bomb_20240101.vrt").write_text(vrt)
    args = ["ingest", str(tmp_path / "src"), "--collection", "test", "--json",
            "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
            "--disk-budget", "1000"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    rows = {r["input"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["bomb_20240101.vrt"]["reason"] == Reason.TOO_LARGE
    assert "1.0 GB" in rows["bomb_20240101.vrt"]["message"]  # 1000 MB, as GB
    assert rows[GOOD]["status"] == "ingested"


def test_stale_temp_folders_of_dead_runs_are_removed(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    child = subprocess.Popen(["true"])  # a pid that is surely gone once waited for
    child.wait()
    stale = temp / f"byod-{child.pid}-abc123"
    (stale / "job").mkdir(parents=True)
    (stale / "job" / "cog.tif").write_bytes(bytes(1024))
    live = temp / f"byod-{os.getpid()}-keepme"
    live.mkdir()
    other = temp / "byod-test-notours"
    other.mkdir()
    write_raster(GOOD, ramp())
    report = run_ingest()
    assert _rows(report)[GOOD].status is Status.INGESTED
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert remove_stale(temp) == []


@pytest.mark.timeout(180)
def test_temp_folder_of_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    """SIGKILL the whole CLI run while it converts; the next run removes what it left."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    src = tmp_path / "src"
    for i in range(3):
        write_geotiff(src / f"big_{i}_20240101.tif", ramp(2048, 2048, bands=3),
                      crs="EPSG:32633",
                      transform=rasterio.transform.from_origin(500000, 5000000, 1, 1))  # fmt: skip
    env = {**os.environ, "TMPDIR": str(temp)}
    command = [str(BYOD), "ingest", str(src), "--collection", "test", "--quiet",
               "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
               "--workers", "1"]  # fmt: skip
    run = subprocess.Popen(command, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(temp.glob(f"byod-{run.pid}-*/*/*.tif")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until a conversion writes into the run's temp folder
    os.killpg(run.pid, 9)
    run.wait()
    left = list(temp.glob(f"byod-{run.pid}-*"))
    assert left, "the killed run left no temp folder: nothing to test"
    again = subprocess.run(command, env=env, capture_output=True, check=False)
    assert again.returncode == 0, again.stderr
    assert not any(p.exists() for p in left)
    assert list(temp.glob("byod-*")) == []


# --- the processes' own code ---------------------------------------------------------------

_MARKER_MODULE = """
import pathlib
pathlib.Path({marker!r}).open("a").write({name!r} + "\\n")
raise ImportError("shadowing module from the working directory was imported")
"""


def _plant_modules(folder: Path, marker: Path) -> None:
    """Modules that shadow ones byod's workers import (stdlib and third party)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("secrets", "uuid", "random", "csv", "rasterio", "numpy", "byod"):
        if name == "byod":
            (folder / "byod").mkdir(exist_ok=True)
            target = folder / "byod" / "__init__.py"
        else:
            target = folder / f"{name}.py"
        target.write_text(_MARKER_MODULE.format(marker=str(marker), name=name))


@pytest.mark.timeout(180)
def test_modules_in_the_working_directory_are_never_imported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _geotiff(src / GOOD, ramp())
    cwd = tmp_path / "cwd"
    marker = tmp_path / "imported.txt"
    _plant_modules(cwd, marker)
    _plant_modules(src, marker)  # and in the source folder
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH",)}
    result = subprocess.run(
        [str(BYOD), "ingest", str(src), "--collection", "test", "--quiet",
         "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
         "--report", str(tmp_path / "report.json")],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert not marker.exists(), marker.read_text()
    assert result.returncode == 0, result.stderr
    assert [i.properties["byod:source"] for i in _items(tmp_path)] == [GOOD]


_SCRIPT = """
import json, pathlib
from byod.config import IngestSettings
from byod.pipeline import ingest

pathlib.Path({ran!r}).open("a").write("ran\\n")
report = ingest(IngestSettings(source={src!r}, collection="test", target={data!r},
                               catalog={catalog!r}, workers=2))
print(json.dumps(report.counts()))
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["script", "python -c", "notebook cell"])
def test_a_script_without_main_guard_runs_once_and_ingests(tmp_path: Path, how: str) -> None:
    """The README's snippet saved as a plain script, given to `python -c`, or run in a
    notebook cell (issue 12): workers must not import the caller's __main__ again (a
    forkserver would, and fail on the unguarded script), so the code runs once and every
    input is converted."""
    src = tmp_path / "src"
    for name in (GOOD, "good_20240102.tif"):
        _geotiff(src / name, ramp())
    ran = tmp_path / "ran.txt"
    code = _SCRIPT.format(ran=str(ran), src=str(src), data=str(tmp_path / "data"),
                          catalog=str(tmp_path / "catalog"))  # fmt: skip
    (tmp_path / "cwd").mkdir()
    if how == "script":  # python -c and a kernel put the working folder first on sys.path
        _plant_modules(tmp_path / "cwd", tmp_path / "imported.txt")  # for the caller too
    if how == "notebook cell":
        import nbclient
        import nbformat

        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        in_cwd = {"metadata": {"path": str(tmp_path / "cwd")}}
        nbclient.NotebookClient(notebook, timeout=150, kernel_name="python3",
                                resources=in_cwd).execute()  # fmt: skip
        printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    else:
        if how == "script":
            script = tmp_path / "scripts" / "ingest_mine.py"
            script.parent.mkdir()
            script.write_text(code)
            command = [sys.executable, str(script)]
        else:
            command = [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path / "cwd", capture_output=True, text=True,
                                check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
        printed = result.stdout
    assert not (tmp_path / "imported.txt").exists()
    assert ran.read_text() == "ran\n"  # once: no worker ran the caller's code again
    assert sorted(i.properties["byod:source"] for i in _items(tmp_path)) == [
        GOOD, "good_20240102.tif"]  # fmt: skip
    assert json.loads(printed.strip().splitlines()[-1])["ingested"] == 2


# --- names and links -----------------------------------------------------------------------


def test_names_that_are_not_utf8_never_abort_the_run(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster(GOOD, ramp())
    write_raster("tmp_20240102.tif", ramp())
    src = os.fsencode(tmp_path / "src")
    os.rename(src + b"/tmp_20240102.tif", src + b"/caf\xe9_20240102.tif")
    os.mkdir(src + b"/dossier_\xff")
    (tmp_path / "src" / "inner.tif").write_bytes(b"")
    os.rename(src + b"/inner.tif", src + b"/dossier_\xff/inner_20240103.tif")
    (tmp_path / "src" / "notes.txt").write_text("hello")
    os.rename(src + b"/notes.txt", src + b"/r\xe9sum\xe9.txt")
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [str(BYOD), "ingest", str(tmp_path / "src"), "--collection", "test", "--quiet",
         "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
         "--report", str(report_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # inputs rejected, the run completed
    assert "Traceback" not in result.stderr
    report = json.loads(report_path.read_text("utf-8"))
    rows = {r["input"]: r for r in report["rows"]}
    assert rows[r"caf\xe9_20240102.tif"]["reason"] == Reason.BAD_NAME
    assert rows[r"dossier_\xff"]["reason"] == Reason.BAD_NAME
    assert rows[GOOD]["status"] == "ingested"
    assert [i.properties["byod:source"] for i in _items(tmp_path)] == [GOOD]


def test_names_up_to_255_bytes_are_ingested(tmp_path: Path, write_raster: WriteRaster,
                                             run_ingest: RunIngest) -> None:  # fmt: skip
    src = tmp_path / "src"
    long_tif = "a" * 242 + "_20240101.tif"  # 255 bytes: the usual limit of a name
    multi = "é" * 117 + "_20240102.tif"  # 247 bytes in UTF-8
    png_stem = "p" * 238 + "_20240103"  # 247 + ".png" / ".pgw" / ".prj" = 251 bytes
    assert len(long_tif.encode()) == 255 and len(multi.encode()) <= 255
    write_raster(long_tif, ramp())
    write_raster(multi, ramp())
    Image.fromarray((ramp()[0] % 200 + 1).astype("uint8")).save(src / f"{png_stem}.png")
    (src / f"{png_stem}.pgw").write_text("10\n0\n0\n-10\n500005\n4999995\n")
    (src / f"{png_stem}.prj").write_text(CRS_WKT)
    report = run_ingest()
    rows = _rows(report)
    names = (long_tif, multi, f"{png_stem}.png")
    for name in names:
        assert rows[name].status is Status.INGESTED, rows[name]
    items = {i.properties["byod:source"]: i for i in _items(tmp_path)}
    for name in names:
        with (
            rasterio.open(src / name) as original,
            rasterio.open(items[name].assets["data"].get_absolute_href()) as cog,
        ):
            np.testing.assert_array_equal(cog.read(1), original.read(1))


def test_links_out_of_the_source_are_not_followed(
    tmp_path: Path, secret: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster(GOOD, ramp())
    src = tmp_path / "src"
    os.symlink(secret, src / "file_link_20240101.tif")
    os.symlink(secret.parent, src / "folder_link")
    os.symlink("../outside/secret.tif", src / "relative_link_20240101.tif")
    report = run_ingest()
    assert {r.input for r in report.rows} == {GOOD}
    for name in ("file_link_20240101.tif", "folder_link", "relative_link_20240101.tif"):
        assert name in report.ignored
        assert any(n.startswith(f"{name}: ") and "outside the source" in n
                   for n in report.notes), report.notes  # fmt: skip
    _assert_only_good_published(tmp_path, report, [GOOD])


def test_one_file_reached_twice_is_ingested_once(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    real = write_raster("data/scene_20240101.tif", ramp())
    src = tmp_path / "src"
    os.symlink("data/scene_20240101.tif", src / "a_link_20240101.tif")
    os.symlink(real, src / "b_link_20240101.tif")
    os.link(real, src / "hard_20240101.tif")
    report = run_ingest()
    assert [r.input for r in report.rows] == ["data/scene_20240101.tif"], report.rows
    sources = [i.properties["byod:source"] for i in _items(tmp_path)]
    assert sources == ["data/scene_20240101.tif"]
    assert {"a_link_20240101.tif", "b_link_20240101.tif"} <= set(report.ignored)


# --- the classes of references -------------------------------------------------------------


@pytest.mark.parametrize(("reference", "expected"), [
    ("https://169.254.169.254/latest/meta-data", NETWORK),
    ("HTTP://example.org/a.tif", NETWORK),
    ("ftp://example.org/a.tif", NETWORK),
    ("/vsicurl/http://x/a.tif", VSI),
    ("/vsiaz/other/a.tif", VSI),
    ("/vsis3/bucket/a.tif", VSI),
    ('NETCDF:"/etc/x.nc":var', CONNECTION),
    ("vrt:///etc/passwd", CONNECTION),
    ("/etc/passwd", ABSOLUTE),
    ("../../etc/passwd", RELATIVE),
    ("inside/a.tif", None),
    ("link.tif", LINK),
])  # fmt: skip
def test_reference_classes(reference: str, expected: str | None, tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "inside").mkdir(parents=True)
    os.symlink("/etc/hostname", root / "link.tif")
    assert reference_class(reference, root, root.resolve()) == expected
