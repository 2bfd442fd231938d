"""Bad inputs, each a real file beside good GeoTIFFs: rejected with a reason and a message
naming the file, while the good inputs are still ingested and nothing of the bad one reaches
the target folder or the catalog. Plus the CLI's exit codes (0 / 1 / 2).
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pyproj import CRS
from typer.testing import CliRunner

from byod.catalog import VERSION
from byod.cli import app
from byod.reasons import Reason
from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import WriteRaster, ramp, write_geotiff
from tests.readback import item_files, month_catalogs

RunIngest = Callable[..., Report]
MakeBad = Callable[[Path, WriteRaster], str]

# Two good inputs written beside every bad one; their names carry their acquisition dates.
GOOD = ("good_20240101.tif", "good_20240102.tif")
# Dates without a time are whole days: the extent ends at the second day's last microsecond.
GOOD_INTERVAL = [["2024-01-01T00:00:00Z", "2024-01-02T23:59:59.999999Z"]]
URL_SAFE = re.compile(r"[a-z0-9._-]+")
# An engineering CRS: metres on a lab floor, with no relation to any datum on Earth.
LOCAL_CS = (
    'LOCAL_CS["Lab grid",LOCAL_DATUM["Lab",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
)


# --- real bad files ------------------------------------------------------------------------


def _write_goods(write_raster: WriteRaster, names: tuple[str, ...] = GOOD) -> None:
    for name in names:
        write_raster(name, ramp())


def _tiny_geotiff(
    path: Path, width: int, height: int, *, data: bytes = bytes(8), tile: int | None = None
) -> Path:
    """A minimal little-endian 8-bit GeoTIFF written byte by byte, whose header may claim
    anything: one strip (uncompressed) or one square tile (deflate) holding `data`, in
    EPSG:4326 at 0.001 degree from (10 E, 50 N) via ModelPixelScale + ModelTiepoint."""
    short, long_, double = 3, 4, 12
    formats = {short: "H", long_: "I", double: "d"}
    tags: dict[int, tuple[int, list[Any]]] = {
        256: (long_, [width]), 257: (long_, [height]), 258: (short, [8]),
        259: (short, [8 if tile else 1]), 262: (short, [1]), 277: (short, [1]),
        284: (short, [1]), 339: (short, [1]),
        33550: (double, [0.001, 0.001, 0.0]),  # ModelPixelScale
        33922: (double, [0, 0, 0, 10.0, 50.0, 0]),  # ModelTiepoint
        # GeoKeyDirectory: geographic model, pixel is area, GeographicType EPSG:4326.
        34735: (short, [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326]),
    }  # fmt: skip
    if tile:
        tags |= {322: (long_, [tile]), 323: (long_, [tile]), 324: (long_, [0]),
                 325: (long_, [len(data)])}  # fmt: skip
    else:
        tags |= {273: (long_, [0]), 278: (long_, [height]), 279: (long_, [len(data)])}
    ifd_end = 8 + 2 + 12 * len(tags) + 4
    packed = {t: struct.pack("<" + formats[k] * len(v), *v) for t, (k, v) in tags.items()}
    data_offset = ifd_end + sum(len(p) + len(p) % 2 for p in packed.values() if len(p) > 4)
    for offsets_tag in (273, 324):  # StripOffsets / TileOffsets: the data follows the values
        if offsets_tag in tags:
            packed[offsets_tag] = struct.pack("<I", data_offset)
    ifd, values = bytearray(struct.pack("<H", len(tags))), bytearray()
    for tag in sorted(tags):
        kind, count, raw = tags[tag][0], len(tags[tag][1]), packed[tag]
        if len(raw) <= 4:
            ifd += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, kind, count, ifd_end + len(values))
            values += raw + b"\0" * (len(raw) % 2)
    ifd += struct.pack("<I", 0)  # no next IFD
    header = b"II*\0" + struct.pack("<I", 8)
    assert len(header) + len(ifd) + len(values) == data_offset
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + ifd + values + data)
    return path


@cache
def _deflated_zeros(size: int, chunk: int = 1 << 24) -> bytes:
    """A zlib stream of `size` zero bytes in ~0.1 s: after a full flush the compressor starts
    afresh, so every chunk compresses to the same bytes and one can be repeated."""
    comp = zlib.compressobj(9)
    first = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert first[2:] == again  # zlib header + the same chunk
    end = comp.flush()[:-4]  # the final empty block, without the checksum of two chunks
    adler32 = ((size % 65521) << 16) | 1  # Adler-32 of `size` zero bytes
    return first + again * (size // chunk - 1) + end + struct.pack(">I", adler32)


def _empty(src: Path, _: WriteRaster) -> str:
    (src / "empty_20240101.tif").write_bytes(b"")
    return "empty_20240101.tif"


def _text(src: Path, _: WriteRaster) -> str:
    (src / "notes_20240101.tif").write_text("field notes, not a raster\n" * 20, "utf-8")
    return "notes_20240101.tif"


def _truncated(src: Path, write_raster: WriteRaster) -> str:
    """A real deflate-tiled GeoTIFF of random data, cut to 60% of its bytes.

    GDAL writes the IFD (and the tile offset and byte-count arrays) ahead of the tile data,
    so the cut keeps a header that opens; the last tiles then point past the end of the file
    and reading the last block (rasters._check_readable) fails: TRUNCATED, not UNREADABLE,
    which would mean GDAL could not even open it. The IFD offset is asserted to make that
    argument checked rather than assumed.
    """
    data = np.random.default_rng(7).integers(0, 65535, (256, 256), dtype="uint16")
    path = write_raster("cut_20240101.tif", data, compress="deflate", tiled=True,
                        blockxsize=64, blockysize=64)  # fmt: skip
    raw = path.read_bytes()
    cut = int(len(raw) * 0.6)
    assert struct.unpack("<I", raw[4:8])[0] < 1024 < cut  # the header survives the cut
    path.write_bytes(raw[:cut])
    return path.name


def _not_georeferenced(src: Path, _: WriteRaster) -> str:
    write_geotiff(src / "nogeo_20240101.tif", ramp())  # no crs, no transform
    return "nogeo_20240101.tif"


def _png_without_world_file(src: Path, _: WriteRaster) -> str:
    Image.fromarray(ramp(dtype="uint8")[0]).save(src / "scan_20240101.png")
    return "scan_20240101.png"


def _unknown_crs(src: Path, write_raster: WriteRaster) -> str:
    write_raster("lab_20240101.tif", ramp(), crs=LOCAL_CS)
    return "lab_20240101.tif"


def _absurd_header(src: Path, _: WriteRaster) -> str:
    # 294 bytes claiming 10^12 pixels (the default limit is 4 * 10^10), georeferenced.
    _tiny_geotiff(src / "huge_20240101.tif", 1_000_000, 1_000_000)
    return "huge_20240101.tif"


BAD_INPUTS: list[Any] = [
    pytest.param(_empty, {Reason.EMPTY_FILE}, id="empty"),
    pytest.param(_text, {Reason.NOT_A_RASTER}, id="text-named-tif"),
    pytest.param(_truncated, {Reason.TRUNCATED}, id="truncated"),
    pytest.param(_not_georeferenced, {Reason.NOT_GEOREFERENCED}, id="no-crs-no-transform"),
    pytest.param(_png_without_world_file, {Reason.NOT_GEOREFERENCED}, id="png-no-world-file"),
    pytest.param(_unknown_crs, {Reason.UNKNOWN_CRS}, id="local-cs"),
    pytest.param(_absurd_header, {Reason.TOO_LARGE}, id="absurd-header"),
]


# --- what a run must and must not leave behind ---------------------------------------------


def _catalog_items(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {k: json.loads(p.read_text("utf-8"))
            for k, p in item_files(tmp_path / "catalog", "test").items()}  # fmt: skip


def _files(root: Path) -> list[str]:
    """Files below `root`, a run's version folder shown as `<v>` (catalog.py's layout)."""
    return sorted(VERSION.sub("<v>", p.relative_to(root).as_posix())
                  for p in root.rglob("*") if p.is_file())  # fmt: skip


def _assert_outcome(
    tmp_path: Path, report: Report, rejected: dict[str, set[Reason]], ingested: list[str]
) -> dict[str, dict[str, Any]]:
    """Rows as expected; the catalog valid and holding exactly the ingested inputs; the
    target folder holding exactly their COGs and thumbnails. Returns the items by id."""
    rows = {r.input: r for r in report.rows}
    assert sorted(rows) == sorted([*rejected, *ingested]), report.rows
    for name, reasons in rejected.items():
        row = rows[name]
        assert row.status is Status.REJECTED, row
        assert row.reason in reasons, row
        assert PurePosixPath(name).name in (row.message or ""), row
        assert row.item_ids == []
    for name in ingested:
        assert rows[name].status is Status.INGESTED, rows[name]
        assert len(rows[name].item_ids) == 1

    count, problems = validate_catalog(str(tmp_path / "catalog" / "catalog.json"))
    assert problems == []
    months = [p.parent.parent.name for p in month_catalogs(tmp_path / "catalog", "test")]
    # root catalog, collection, its month sub-catalogs (catalog.py), one item per input
    assert count == 2 + len(months) + len(ingested)

    items = _catalog_items(tmp_path)
    ids = sorted(i for name in ingested for i in rows[name].item_ids)
    assert sorted(items) == ids
    assert sorted(i["properties"]["byod:source"] for i in items.values()) == sorted(ingested)
    # Nothing derived from a rejected input, and no half-written file, anywhere.
    assert _files(tmp_path / "data") == sorted(
        [".byod-output",  # byod's folder: not read as input by a later run (sources._walk)
         *(f"test/{i}/<v>/{i}{suffix}" for i in ids for suffix in (".tif", "-thumbnail.png"))]
    )  # fmt: skip
    assert _files(tmp_path / "catalog") == sorted(
        [
            ".byod-output",
            ".catalog.json.lock",  # the OS locks of concurrent runs (empty files)
            "catalog.json",
            "test/.collection.json.lock",
            "test/collection.json",
            *(
                f"test/_months/{m}/<v>/{f}"
                for m in months
                for f in ("catalog.json", "items.parquet")
            ),
            *(f"test/{i}/<v>/{i}.json" for i in ids),
        ]
    )
    return items


def _interval(tmp_path: Path) -> list[list[str]]:
    collection = json.loads((tmp_path / "catalog" / "test" / "collection.json").read_text())
    return collection["extent"]["temporal"]["interval"]


# --- library runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("make_bad", "reasons"), BAD_INPUTS)
def test_bad_input_is_rejected_beside_good_ones(
    tmp_path: Path,
    write_raster: WriteRaster,
    run_ingest: RunIngest,
    make_bad: MakeBad,
    reasons: set[Reason],
) -> None:
    _write_goods(write_raster)
    bad = make_bad(tmp_path / "src", write_raster)
    report = run_ingest()
    _assert_outcome(tmp_path, report, {bad: reasons}, list(GOOD))
    # Only the good inputs' dates: a rejected input widens no extent. (Time-less inputs
    # are ingested, or rejected with --require-datetime: tests/test_timeless.py.)
    assert _interval(tmp_path) == GOOD_INTERVAL
    assert report.ignored == []


def test_png_world_file_and_prj_never_become_items(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    _write_goods(write_raster)
    src = tmp_path / "src"
    Image.fromarray(ramp(dtype="uint8")[0]).save(src / "scan_20240101.png")
    (src / "scan_20240101.pgw").write_text("10\n0\n0\n-10\n500005\n4999995\n")
    (src / "scan_20240101.prj").write_text(CRS.from_epsg(32633).to_wkt("WKT1_ESRI"))
    report = run_ingest()
    assert sorted(r.input for r in report.rows) == sorted([*GOOD, "scan_20240101.png"])
    assert report.ignored == []  # sidecars are neither inputs nor "ignored" clutter
    sources = {i["properties"]["byod:source"] for i in _catalog_items(tmp_path).values()}
    assert not sources & {"scan_20240101.pgw", "scan_20240101.prj"}
    count, problems = validate_catalog(str(tmp_path / "catalog" / "catalog.json"))
    months = len(month_catalogs(tmp_path / "catalog", "test"))
    assert problems == [] and count == 5 + months  # root, collection, two goods, the PNG


def test_png_with_world_file_and_prj_is_ingested(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    _write_goods(write_raster)
    src = tmp_path / "src"
    Image.fromarray(ramp(dtype="uint8")[0]).save(src / "scan_20240101.png")
    (src / "scan_20240101.pgw").write_text("10\n0\n0\n-10\n500005\n4999995\n")
    (src / "scan_20240101.prj").write_text(CRS.from_epsg(32633).to_wkt("WKT1_ESRI"))
    report = run_ingest()
    items = _assert_outcome(tmp_path, report, {}, [*GOOD, "scan_20240101.png"])
    assert items["scan_20240101"]["properties"]["proj:code"] == "EPSG:32633"


def test_directory_named_like_a_raster_is_walked(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("good_20240101.tif", ramp())
    write_raster("inner_20240102.tif", ramp(), folder=tmp_path / "src" / "folder_20240101.tif")
    report = run_ingest()
    _assert_outcome(
        tmp_path,
        report,
        {"folder_20240101.tif": {Reason.NOT_A_FILE}},
        ["folder_20240101.tif/inner_20240102.tif", "good_20240101.tif"],
    )


def test_symlink_loop_is_rejected(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    _write_goods(write_raster)
    src = tmp_path / "src"
    os.symlink("loop_b_20240101.tif", src / "loop_a_20240101.tif")
    os.symlink("loop_a_20240101.tif", src / "loop_b_20240101.tif")
    report = run_ingest()
    loops = {"loop_a_20240101.tif": {Reason.SYMLINK_LOOP},
             "loop_b_20240101.tif": {Reason.SYMLINK_LOOP}}  # fmt: skip
    _assert_outcome(tmp_path, report, loops, list(GOOD))


@pytest.mark.timeout(60)  # an endless walk would hang here, not pass
def test_directory_link_to_its_parent_is_reported_not_walked(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("good_20240101.tif", ramp())
    write_raster("good_20240102.tif", ramp(), folder=tmp_path / "src" / "sub")
    os.symlink("..", tmp_path / "src" / "sub" / "up")
    report = run_ingest()
    # Each raster once, under its real path: nothing reached through sub/up/...
    _assert_outcome(
        tmp_path,
        report,
        {"sub/up": {Reason.SYMLINK_LOOP}},
        ["good_20240101.tif", "sub/good_20240102.tif"],
    )


def test_spaces_and_unicode_in_names_give_url_safe_ids(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    names = ["Scène d'été 2024-01-31.tif", "東京 20240201.tif"]
    for name in names:
        write_raster(name, ramp())
    report = run_ingest()
    items = _assert_outcome(tmp_path, report, {}, names)
    by_source = {i["properties"]["byod:source"]: i for i in items.values()}
    assert {s: i["id"] for s, i in by_source.items()} == {
        "Scène d'été 2024-01-31.tif": "scene-d-ete-2024-01-31",
        "東京 20240201.tif": "20240201",
    }
    assert all(URL_SAFE.fullmatch(i) for i in items)
    assert by_source[names[0]]["properties"]["datetime"] == "2024-01-31T00:00:00Z"
    assert by_source[names[1]]["properties"]["datetime"] == "2024-02-01T00:00:00Z"


def test_timeout_rejects_the_slow_input_only(
    tmp_path: Path,
    write_raster: WriteRaster,
    run_ingest: RunIngest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Converting 5000 x 5000 random float32 takes ~4-5 s here; the small file ~0.25-0.5 s
    # (worker start included). 0.3 s would time the small file out as well, so 1.5 s: about
    # 3x both ways. Running it costs only the timeout, as the worker is killed then.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the run's work folders go here
    write_raster("good_20240101.tif", ramp())
    noise = np.random.default_rng(1).random((5000, 5000), dtype="float32")
    write_raster("slow_20240101.tif", noise)
    report = run_ingest(timeout_s=1.5)
    _assert_outcome(
        tmp_path, report, {"slow_20240101.tif": {Reason.TIMEOUT}}, ["good_20240101.tif"]
    )
    slow = next(r for r in report.rows if r.input == "slow_20240101.tif")
    assert slow.seconds is not None and 1.5 <= slow.seconds < 5  # stopped, not waited for
    assert list(scratch.iterdir()) == []  # the killed worker's half-made COG went with it


def test_memory_limit_rejects_a_decompression_bomb(
    tmp_path: Path,
    write_raster: WriteRaster,
    run_ingest: RunIngest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not the timeout test's big raster: converting it stays within ~300 MB of address
    # space (GDAL reads it block by block), and a limit below that fails even the small file
    # (a worker starts at ~267 MiB of address space here and peaks ~279 MiB on a 64x64
    # GeoTIFF; byod's floor is 512 MB). A ~1 MB file whose single deflate tile inflates to
    # 1 GiB needs over 1 GiB to read, far above the 512 MB limit and far below it the small file.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    write_raster("good_20240101.tif", ramp())
    side = 32768
    bomb = _tiny_geotiff(tmp_path / "src" / "bomb_20240101.tif", side, side,
                         data=_deflated_zeros(side * side), tile=side)  # fmt: skip
    assert bomb.stat().st_size < 2_000_000
    report = run_ingest(max_memory_mb=512, timeout_s=60)
    _assert_outcome(
        tmp_path, report, {"bomb_20240101.tif": {Reason.MEMORY_LIMIT}}, ["good_20240101.tif"]
    )
    row = next(r for r in report.rows if r.input == "bomb_20240101.tif")
    assert "512 MB" in (row.message or "")
    assert list(scratch.iterdir()) == []


# --- the CLI's exit codes -------------------------------------------------------------------


def _cli(tmp_path: Path, source: Path, *extra: str) -> Any:
    args = ["ingest", str(source), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "catalog"), "--workers", "2", *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


def test_cli_exits_0_when_all_ingested_then_unchanged(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    _write_goods(write_raster)
    first = _cli(tmp_path, tmp_path / "src", "--collection", "test", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["counts"]["ingested"] == 2
    again = _cli(tmp_path, tmp_path / "src", "--collection", "test", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"] == {
        "ingested": 0, "replaced": 0, "unchanged": 2, "rejected": 0
    }  # fmt: skip


@pytest.mark.parametrize(("make_bad", "reason"), [
    pytest.param(_empty, Reason.EMPTY_FILE, id="empty"),
    pytest.param(_text, Reason.NOT_A_RASTER, id="text-named-tif"),
])  # fmt: skip
def test_cli_exits_1_when_some_are_rejected(
    tmp_path: Path, write_raster: WriteRaster, make_bad: MakeBad, reason: Reason
) -> None:
    _write_goods(write_raster)
    bad = make_bad(tmp_path / "src", write_raster)
    result = _cli(tmp_path, tmp_path / "src", "--collection", "test", "--json")
    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)
    rows = {r["input"]: r for r in printed["rows"]}
    assert (rows[bad]["status"], rows[bad]["reason"]) == ("rejected", reason.value)
    assert bad in rows[bad]["message"]
    assert [rows[g]["status"] for g in GOOD] == ["ingested", "ingested"]
    months = len(month_catalogs(tmp_path / "catalog", "test"))
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json")) == (4 + months, [])
    assert not any(bad.removesuffix(".tif") in f for f in _files(tmp_path / "data"))


@pytest.mark.parametrize(("source", "extra", "says"), [
    pytest.param("missing", (), "source is not a folder", id="source-missing"),
    pytest.param("src/good_20240101.tif", (), "source is not a folder; byod ingests a folder "
                 "(every raster in it): give ", id="source-is-a-file"),
    pytest.param("src", ("--collection", "Bad Id!"), "not URL-safe", id="bad-collection-id"),
    # It names folders and export's <id>.parquet: 300 characters failed every input with
    # "File name too long" (storage_failed) on a 255-byte file system.
    pytest.param("src", ("--collection", "c" * 300), "collection id of 300 characters; at most",
                 id="long-collection-id"),
])  # fmt: skip
def test_cli_exits_2_on_configuration_errors_and_writes_nothing(
    tmp_path: Path, write_raster: WriteRaster, source: str, extra: tuple[str, ...], says: str
) -> None:
    _write_goods(write_raster)
    before = _files(tmp_path)
    result = _cli(tmp_path, tmp_path / source, *extra)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "catalog").exists()
    assert _files(tmp_path) == before


def test_a_long_source_name_gives_a_collection_id_that_fits(tmp_path: Path) -> None:
    """A source folder named with 200 characters (a long product name): its collection id
    is cut like item ids (with a hash of the whole name), so every folder and file it names
    fits a 255-byte file name, and two such names that differ only at the end stay apart."""
    from byod.config import IngestSettings
    from byod.planning import _collection_id
    from byod.sources import MAX_ID_LENGTH

    long_a, long_b = "s" * 199 + "a", "s" * 199 + "b"
    ids = [_collection_id(IngestSettings(source=str(tmp_path / n))) for n in (long_a, long_b)]
    assert all(len(i) <= MAX_ID_LENGTH for i in ids) and ids[0] != ids[1]
    assert _collection_id(IngestSettings(source=str(tmp_path / "S2.SAFE"))) == "s2.safe"
