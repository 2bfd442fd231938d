"""A no-op re-run does not read its inputs (issue 13): each item records a signature of its
files' stat (`byod:stat`: size, mtime, ctime, inode, mode, with the options), planning reads
it from the index, and an input whose files stat the same is unchanged without hashing.
Any difference: the files are hashed and their content decides. A file that changed too
shortly before its stat was taken ("racy git") records no signature: it is hashed again.

Bytes read are counted by the kernel (`rchar` of /proc/self/io: every read() of this
process, the parent that plans and hashes), not by byod."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import byod.planning
import byod.sources
from byod.config import IngestSettings
from byod.report import Report, Status
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files

# Short enough to wait for in a test: what sources.settled asks of a file's last change.
MARGIN_NS = 300_000_000
SIZE = 2048  # pixels a side: uint16, uncompressed, 8 MiB an input


@pytest.fixture(autouse=True)
def _short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(byod.sources, "RACY_NS", MARGIN_NS)


def _settle() -> None:
    time.sleep(2 * MARGIN_NS / 1e9)


def _read_bytes() -> int:
    """Bytes this process has read with read() and the like so far (the kernel's count)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _counted(run: Callable[[], Report]) -> tuple[Report, int]:
    before = _read_bytes()
    report = run()
    return report, _read_bytes() - before


def _props(tmp_path: Path) -> dict[str, dict[str, object]]:
    return {i: json.loads(p.read_text())["properties"]
            for i, p in item_files(tmp_path / "catalog", "test").items()}  # fmt: skip


def _expected_stat(tmp_path: Path, path: Path) -> str:
    """The signature's definition, computed here: sha256 of the options, then NUL, the file
    name, NUL and "size,mtime_ns,ctime_ns,inode,mode"; its first 32 hex digits."""
    settings = IngestSettings(source=str(tmp_path / "src"), collection="test",
                              target=str(tmp_path / "data"), catalog=str(tmp_path / "catalog"),
                              workers=2, timeout_s=120)  # fmt: skip
    info = path.stat()
    fields = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_mode)
    digest = hashlib.sha256(byod.planning._recipe(settings).encode())
    digest.update(b"\0" + path.name.encode() + b"\0" + ",".join(map(str, fields)).encode())
    return digest.hexdigest()[:32]


def _inputs(write_raster: WriteRaster) -> list[Path]:
    paths = [write_raster("a_20240101.tif", ramp(SIZE, SIZE)),
             write_raster("b_20240102.tif", ramp(SIZE, SIZE) + 1)]  # fmt: skip
    _settle()
    return paths


def test_a_no_op_reads_none_of_its_inputs_bytes(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a, b = _inputs(write_raster)
    first = run_ingest()
    assert [r.status for r in first.rows] == [Status.INGESTED, Status.INGESTED]
    props = _props(tmp_path)
    assert props["a_20240101"]["byod:stat"] == _expected_stat(tmp_path, a)
    assert props["b_20240102"]["byod:stat"] == _expected_stat(tmp_path, b)
    # Carried by the stac-geoparquet index, where planning reads it (as pyarrow reads it).
    (index,) = (tmp_path / "catalog").rglob("*.parquet")
    table = pq.read_table(index, columns=["id", "byod:stat"]).to_pylist()
    assert {r["id"]: r["byod:stat"] for r in table} == {
        i: p["byod:stat"] for i, p in props.items()}  # fmt: skip

    again, read = _counted(run_ingest)
    assert [r.status for r in again.rows] == [Status.UNCHANGED, Status.UNCHANGED]
    assert read < a.stat().st_size  # neither input read (the hash of each reads all of it)
    assert again.rows[0].stages is None or again.rows[0].stages.get("fingerprint", 0) < 0.5


def test_a_touched_input_is_hashed_and_stays_unchanged(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a, b = _inputs(write_raster)
    run_ingest()
    catalog = {p: p.stat().st_mtime_ns for p in (tmp_path / "catalog").rglob("*")}
    os.utime(a)  # new mtime and ctime, same bytes
    _settle()
    again, read = _counted(run_ingest)
    assert [r.status for r in again.rows] == [Status.UNCHANGED, Status.UNCHANGED]
    assert read >= a.stat().st_size  # a was hashed: its content decided
    assert read < a.stat().st_size + b.stat().st_size  # b was not
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "catalog").rglob("*")} == catalog


def test_an_edit_of_the_same_size_is_ingested_again(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a, _ = _inputs(write_raster)
    run_ingest()
    size = a.stat().st_size
    write_raster(a.name, ramp(SIZE, SIZE) + 7)  # same shape: same size, new bytes
    assert a.stat().st_size == size
    _settle()
    again = run_ingest()
    assert {r.input: r.status for r in again.rows} == {
        "a_20240101.tif": Status.REPLACED, "b_20240102.tif": Status.UNCHANGED}  # fmt: skip
    assert _props(tmp_path)["a_20240101"]["byod:stat"] == _expected_stat(tmp_path, a)


def test_an_edit_with_its_mtime_restored_is_ingested_again(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """Size and mtime as recorded (`touch -r`, `cp -p`, `rsync -t` do that): the ctime, which
    only the clock sets, shows the edit."""
    a, _ = _inputs(write_raster)
    run_ingest()
    before = a.stat()
    with a.open("r+b") as f:  # a few bytes of the last strip, in place: same inode and size
        f.seek(before.st_size - 16)
        f.write(bytes(range(16)))
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = a.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino)  # fmt: skip
    _settle()
    again = run_ingest()
    assert {r.input: r.status for r in again.rows}["a_20240101.tif"] == Status.REPLACED


def test_a_file_changed_just_before_its_stat_records_none_and_is_hashed(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Racy git: a file whose mtime or ctime is within the margin of when its stat was taken
    may be written again in the same timestamp tick without its stat changing, so the stat
    is not trusted: no `byod:stat`, and the next run hashes it (its content decides)."""
    monkeypatch.setattr(byod.sources, "RACY_NS", 3600 * 10**9)  # every file is "recent"
    a, b = _inputs(write_raster)
    run_ingest()
    assert all("byod:stat" not in p for p in _props(tmp_path).values())
    again, read = _counted(run_ingest)
    assert [r.status for r in again.rows] == [Status.UNCHANGED, Status.UNCHANGED]
    assert read >= a.stat().st_size + b.stat().st_size  # both hashed
    # Still none recorded: a no-op writes nothing, so they are hashed until re-ingested.
    assert all("byod:stat" not in p for p in _props(tmp_path).values())


def test_another_recipe_is_not_taken_from_the_stat(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    _inputs(write_raster)
    run_ingest()
    again = run_ingest(compression="zstd")
    assert {r.status for r in again.rows} == {Status.REPLACED}


def test_a_prune_run_reads_none_of_the_unchanged_inputs_bytes(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """--prune reads every row of the index, and the stats of the inputs found too."""
    a, b = _inputs(write_raster)
    run_ingest()
    b.unlink()
    again, read = _counted(lambda: run_ingest(prune=True))
    assert {r.input: r.status for r in again.rows} == {
        "a_20240101.tif": Status.UNCHANGED, "b_20240102.tif": Status.REMOVED}  # fmt: skip
    assert read < a.stat().st_size
    assert sorted(_props(tmp_path)) == ["a_20240101"]
