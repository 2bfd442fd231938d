"""Issue 11, review findings 6-8: the temp disk budget counts every copy a conversion makes,
its default is a fixed per-input cap shared fairly between workers, and names from inputs
reach the operator's terminal and the Prefect artifact as text, never as control sequences
or markup.

Peaks are measured (a thread sums the sizes of the files in the run's temp folder while it
converts), never taken from byod's own estimate.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections import namedtuple
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
from markdown_it import MarkdownIt
from pyproj import CRS
from rasterio.transform import from_origin
from rich.console import Console
from rich.progress import Progress
from rich.text import Text
from typer.testing import CliRunner

from byod.cli import _rich_progress, app
from byod.config import DEFAULT_DISK_BUDGET_MB, IngestSettings
from byod.reasons import Reason, RejectedInput
from byod.report import Report, Row, Status, printable, to_markdown
from byod.untrusted import DISK_MARGIN_BYTES, check_disk
from tests.conftest import WriteRaster, ramp, write_geotiff

MB = 1024**2
CRS_WKT = CRS.from_epsg(32633).to_wkt()

# --- finding 6: every temp copy counted ------------------------------------------------------


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run's temp folder (byod's work folders are made with tempfile.mkdtemp)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


class PeakUse:
    """Samples the bytes of every file under `root` (apparent sizes) in a thread."""

    def __init__(self, root: Path) -> None:
        self.root, self.peak, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakUse:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _used(self.root))
            self._stop.wait(0.002)


def _used(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # removed between listing and stat
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def _noise(rows: int, cols: int, dtype: str) -> np.ndarray:
    """Incompressible pixels: the COG is as large as the raw bands, as for real noisy data."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    rng = np.random.default_rng(11)
    if info is None:
        return rng.random((rows, cols)).astype(dtype)
    return rng.integers(info.min, info.max, (rows, cols), endpoint=True).astype(dtype)


def _tif_with_prj(src: Path) -> Path:
    """A tiled GeoTIFF placed by its geotransform whose CRS is only in a `.prj` sidecar (as
    ArcGIS and PNG/JPEG exporters leave it): byod stages a copy with the CRS applied."""
    path = write_geotiff(src / "scene_20240101.tif", _noise(1400, 1400, "uint16"),
                         transform=from_origin(500000, 5000000, 10, 10), tiled=True,
                         blockxsize=256, blockysize=256, compress="deflate")  # fmt: skip
    (src / "scene_20240101.prj").write_text(CRS_WKT)
    return path


def _cf_latlon_netcdf(src: Path) -> Path:
    """A CF-1.8 NetCDF grid on 1-D latitude/longitude coordinates with no grid_mapping and a
    `units` attribute (as ERA5/CMIP downloads are): byod stages a CF-placed copy and
    rewrites the COG once more to keep the band's unit."""
    rows, cols = 1000, 1200
    path = src / "t2m_20240101.nc"
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.Conventions = "CF-1.8"
        ds.createDimension("lat", rows)
        ds.createDimension("lon", cols)
        lat = ds.createVariable("lat", "f8", ("lat",))
        lat[:] = 60 - 0.01 * (np.arange(rows) + 0.5)
        lat.units, lat.standard_name = "degrees_north", "latitude"
        lon = ds.createVariable("lon", "f8", ("lon",))
        lon[:] = 5 + 0.01 * (np.arange(cols) + 0.5)
        lon.units, lon.standard_name = "degrees_east", "longitude"
        t2m = ds.createVariable("t2m", "f4", ("lat", "lon"))
        t2m.units, t2m.standard_name = "K", "air_temperature"
        t2m[:] = 250 + 50 * _noise(rows, cols, "float32")
    return path


def _ingest(tmp_path: Path, run: str, budget_mb: int) -> Report:
    """One worker (the whole temp disk is its share), its own target and catalog."""
    from byod.pipeline import ingest

    places = {"target": str(tmp_path / f"d{run}"), "catalog": str(tmp_path / f"c{run}")}
    return ingest(IngestSettings(source=str(tmp_path / "src"), collection="test", workers=1,
                                 timeout_s=240, disk_budget_mb=budget_mb, **places))  # fmt: skip


STAGED = [pytest.param(_tif_with_prj, id="geotiff+prj"),
          pytest.param(_cf_latlon_netcdf, id="cf-netcdf+units")]  # fmt: skip


@pytest.mark.timeout(300)
@pytest.mark.parametrize("make", STAGED)
def test_disk_budget_covers_the_measured_peak_of_staged_inputs(
    make: object, tmp_path: Path, temp_root: Path
) -> None:
    """Measure the peak temp use of converting the input; a budget below that peak must
    refuse it (too_large) before conversion, and one twice the peak must accept it."""
    source = make(tmp_path / "src")  # type: ignore[operator]
    with PeakUse(temp_root) as use:
        report = _ingest(tmp_path, "1", 100_000)
    assert [r.status for r in report.rows] == [Status.INGESTED], report.rows
    with rasterio.open(source) as src:
        raw = src.width * src.height * np.dtype(src.dtypes[0]).itemsize
    # The premise: a staged copy, the temp file and the COG were all there at once.
    assert use.peak > 2 * raw, (use.peak, raw)

    below = (use.peak - 1) // MB  # MB, strictly below the measured peak
    report = _ingest(tmp_path, "2", below)
    row = report.rows[0]
    assert row.status is Status.REJECTED and row.reason is Reason.TOO_LARGE, (use.peak, row)
    assert not (tmp_path / "d2").exists() or not any((tmp_path / "d2").rglob("*.tif"))

    above = 2 * use.peak // MB + 1
    report = _ingest(tmp_path, "3", above)
    assert report.rows[0].status is Status.INGESTED, report.rows[0]


# --- finding 7: a fixed default cap, shared free space ---------------------------------------


def _bomb_vrt(size: int) -> str:
    """The README's bomb: a 1 KB VRT upsampling a 64² tile beside it to `size`²."""
    return (
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:32633</SRS>'
        f"<GeoTransform>500000, {640 / size}, 0, 5000000, 0, {-640 / size}</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">tiles/small_20240101.tif</SourceFilename>'
        '<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="64" ySize="64"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/></SimpleSource>'
        "</VRTRasterBand></VRTDataset>"
    )


def _sparse_lzw_bomb(path: Path, size: int = 120_000) -> Path:
    """A decompression bomb: a tiled LZW GeoTIFF of `size`² pixels with no tile written
    (GDAL's SPARSE_OK): a few hundred KB on disk, 14.4 GB of pixels when read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="uint8", crs="EPSG:32633", compress="lzw", tiled=True,
                       blockxsize=512, blockysize=512, sparse_ok=True,
                       transform=from_origin(500000, 5000000, 10, 10)):  # fmt: skip
        pass
    return path


def _ingest_cli(tmp_path: Path, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    args = ["ingest", str(tmp_path / "src"), "--collection", "test", "--json",
            "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
            *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result.exit_code, {r["input"]: r for r in json.loads(result.stdout)["rows"]}


@pytest.mark.timeout(180)  # converting either bomb would take many minutes
def test_bombs_are_refused_with_the_default_settings(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("good_20240101.tif", ramp())
    write_raster("tiles/small_20240101.tif", ramp(dtype="uint8"))
    vrt = tmp_path / "src" / "bomb_20240101.vrt"
    vrt.write_text(_bomb_vrt(150_000))
    sparse = _sparse_lzw_bomb(tmp_path / "src" / "sparse_20240101.tif")
    assert vrt.stat().st_size < 2048 and sparse.stat().st_size < 2 * MB  # the premise

    code, rows = _ingest_cli(tmp_path)  # no --disk-budget: the defaults
    assert code == 1
    for name, size in (("bomb_20240101.vrt", 150_000), ("sparse_20240101.tif", 120_000)):
        row = rows[name]
        assert row["reason"] == Reason.TOO_LARGE, row
        # The premise: rio-cogeo's uncompressed temp file and the COG exceed the cap.
        assert 2 * size**2 > DEFAULT_DISK_BUDGET_MB * MB
        assert name in row["message"]
    assert rows["good_20240101.tif"]["status"] == "ingested"
    assert rows["tiles/small_20240101.tif"]["status"] == "ingested"


def test_default_cap_holds_whatever_the_free_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with 10 PB free still refuses an input over the default per-input cap."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**16, 0, 10**16))
    default = IngestSettings(source=".", collection="c").disk_budget_mb
    assert default == DEFAULT_DISK_BUDGET_MB
    budget = default * MB
    check_disk(budget, budget, Path("."), "fits.tif")  # at the cap: accepted
    with pytest.raises(RejectedInput) as caught:
        check_disk(budget + 1, budget, Path("."), "over.tif")
    assert caught.value.reason is Reason.TOO_LARGE and "--disk-budget" in caught.value.message


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_free_space_is_shared_between_workers(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N workers converting at once each get (free - margin) / N: together they cannot
    overflow the temp disk, whatever their own cap."""
    free = 9 * 1024**3 + DISK_MARGIN_BYTES
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(free, 0, free))
    share = (free - DISK_MARGIN_BYTES) // workers
    check_disk(share, None, Path("."), "a.tif", workers)
    check_disk(share, 10**15, Path("."), "a.tif", workers)
    with pytest.raises(RejectedInput) as caught:
        check_disk(share + 1, 10**15, Path("."), "b.tif", workers)
    assert "free temp space" in caught.value.message
    assert workers * share + DISK_MARGIN_BYTES <= free


# --- finding 8: names shown, never interpreted ------------------------------------------------

HOSTILE = [
    "[link=http://127.0.0.1:8765/x]click[/link] [bold red]FAKE ok[/]_20240101.tif",
    "\x1b[2J\x1b[31mesc_20240101.tif",
    "a\nb_20240101.tif",
    "\x1b]8;;http://127.0.0.1:8765/\x1b\\osc_20240101.tif",
    "bidi\u202egnp_20240101.tif",
    "plain_20240101.tif",
]


def _write_hostile(tmp_path: Path, write_raster: WriteRaster) -> None:
    for name in HOSTILE:
        write_raster(name, ramp())
    text = tmp_path / "src" / "\x1b[2Jnot [bold]a[/] raster_20240101.tif"  # "/": a folder
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text("hello\n")


def _assert_terminal_safe(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "]8;;" not in text or "\\x1b]8;;" in text  # an OSC-8 link only as shown text


@pytest.mark.timeout(180)
def test_cli_table_shows_names_as_text(tmp_path: Path, write_raster: WriteRaster) -> None:
    _write_hostile(tmp_path, write_raster)
    args = ["ingest", str(tmp_path / "src"), "--collection", "test",
            "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog")]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output  # the text file is rejected
    _assert_terminal_safe(result.output)
    lines = result.output.splitlines()
    for name in HOSTILE:
        shown = printable(os.path.normpath(name))  # "//" in a name is one folder separator
        rows = [line for line in lines if shown in line]
        assert len(rows) == 1 and "ingested" in rows[0], (shown, rows)  # one row per file
    assert sum("ingested" in line for line in lines if "│" in line) == len(HOSTILE)
    rejected = [line for line in lines if "not_a_raster" in line or "rejected" in line]
    assert any(printable("\x1b[2Jnot [bold]a[/] raster_20240101.tif") in r for r in rejected)


def test_one_line_error_shows_the_name_as_text(tmp_path: Path) -> None:
    missing = tmp_path / "up\x1b[2J[bold red]loads[/]\nsecond line"
    result = CliRunner().invoke(app, ["ingest", str(missing), "--collection", "test"])
    assert result.exit_code == 2
    _assert_terminal_safe(result.output)
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and printable(str(missing)) in error[0], result.output


def test_progress_shows_names_as_text() -> None:
    buffer = StringIO()
    console = Console(file=buffer, width=400)  # not a terminal: what is printed, as is
    with Progress(console=console) as bar:
        progress = _rich_progress(bar)
        for name in HOSTILE:
            progress.stage(name, "convert")
            description = bar.tasks[0].description
            assert Text.from_markup(description).plain == f" convert {printable(name)}"
            progress.finished(Row(name, Status.REJECTED, reason=Reason.CONVERSION_FAILED,
                                  message=f"{name}: COG conversion failed"))  # fmt: skip
    _assert_terminal_safe(buffer.getvalue())
    printed = [line for line in buffer.getvalue().splitlines() if line.startswith("rejected")]
    assert printed == [f"rejected {printable(n)}: COG conversion failed" for n in HOSTILE]


def _cells(html: str) -> Iterator[list[str]]:
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.links = 0
            self.cell: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.cell = []
            elif self.cell is not None and tag not in ("br", "code"):
                self.links += 1  # a link, emphasis or HTML inside a cell

        def handle_endtag(self, tag: str) -> None:
            if tag == "td" and self.cell is not None:
                self.rows[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(html)
    assert parser.links == 0, html  # none came from a name
    yield from (r for r in parser.rows if r)


def test_markdown_artifact_shows_names_as_text() -> None:
    names = [*HOSTILE, "pipe | <b>bold</b> & `code` *x*.tif"]
    report = Report("src", "test", "catalog/catalog.json", "data")
    report.rows = [
        Row(n, Status.REJECTED, reason=Reason.NOT_A_RASTER, message=f"{n}: not a raster",
            notes=[f"[note]({n})"])
        for n in names
    ]  # fmt: skip
    markdown = to_markdown(report)
    _assert_terminal_safe(markdown)
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    rows = list(_cells(html))
    assert len(rows) == len(names)
    for name, cells in zip(names, rows, strict=True):
        assert len(cells) == 3
        assert cells[0] == printable(name)
        assert cells[2].startswith(f"not_a_raster: {printable(name)}: not a raster")
