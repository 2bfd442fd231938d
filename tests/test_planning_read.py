"""Planning reads of the index only the rows of the inputs it found (issue 13: a run's cost
grows with its inputs, not the collection): every id still counts for new ids, the same path
in another source is still told apart, and a re-run still finds its own items unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pystac

from byod.catalog import CollectionInfo, current_index_keys, publish
from byod.config import IngestSettings
from byod.index import read_entries_of
from byod.keys import new_version
from byod.pipeline import plan_run, publish_run
from byod.report import Report, Status
from byod.storage import open_store
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files


def _synthetic(n: int, target: str) -> dict[str, pystac.Item]:
    """`n` items over 14 months, their input `bulk/<i>.tif` (hrefs need no files here)."""
    out = {}
    for i in range(n):
        props = {"byod:source": f"bulk/{i}.tif", "byod:fingerprint": f"{i:064x}"}
        item = pystac.Item(f"b{i:03d}", {"type": "Point", "coordinates": [i % 50, i % 40]},
                           [i % 50, i % 40, i % 50, i % 40],
                           datetime(2023 + i % 14 // 12, i % 14 % 12 + 1, 15, tzinfo=UTC),
                           props)  # fmt: skip
        item.add_asset("data", pystac.Asset(f"{target}/bench/b{i:03d}/v/b{i:03d}.tif",
                                            roles=["data"]))  # fmt: skip
        item.add_asset("thumbnail", pystac.Asset(f"{target}/bench/b{i:03d}/v/b{i:03d}.png",
                                                 roles=["thumbnail"]))  # fmt: skip
        out[item.id] = item
    return out


def test_only_the_rows_of_the_inputs_found_are_read_and_every_id(tmp_path: Path) -> None:
    store = open_store(tmp_path / "catalog")
    target = str(tmp_path / "data")
    publish(store, CollectionInfo("bench", "synthetic", "CC0-1.0"), _synthetic(90, target), [],
            new_version())  # fmt: skip
    keys = current_index_keys(store, "bench")
    assert len(keys) == 14  # one partition per month: the rows are spread over files
    wanted = {"bulk/3.tif", "bulk/47.tif", "bulk/89.tif", "bulk/none.tif"}

    found, ids = read_entries_of(store, keys, wanted)

    # The same, read with pyarrow from the files: every id, and the wanted rows' fields.
    rows = []
    for key in keys:
        path = tmp_path / "catalog" / key
        table = pq.read_table(path, columns=["id", "byod:source", "byod:fingerprint", "assets"])
        rows += [(r, path.parent) for r in table.to_pylist()]
    assert ids == {r["id"] for r, _ in rows} and len(ids) == 90
    expected = {
        r["id"]: (r["byod:source"], r["byod:fingerprint"],
                  os.path.normpath(os.path.join(folder, r["assets"]["data"]["href"])))
        for r, folder in rows if r["byod:source"] in wanted
    }  # fmt: skip
    assert sorted(expected) == ["b003", "b047", "b089"]
    got = {i: (e.source, e.fingerprint, e.data_hrefs[0]) for i, (e, _) in found.items()}
    assert got == expected
    assert all(len(e.hrefs) == 2 for e, _ in found.values())
    assert {k for _, k in found.values()} <= set(keys)

    nothing, same_ids = read_entries_of(store, keys, set())
    assert nothing == {} and same_ids == ids
    # By id (what a publish adds or removes): the same entries as by their inputs.
    by_id, _ = read_entries_of(store, keys, {"b003", "b047", "b089", "b999"}, by="id")
    assert {i: (e.source, e.fingerprint, e.data_hrefs[0]) for i, (e, _) in by_id.items()} == (
        expected)  # fmt: skip


def test_new_ids_see_every_item_and_each_source_keeps_its_own(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    other = tmp_path / "other"
    write_raster("x-y_20240101.tif", ramp())
    write_raster("zz.tif", ramp())
    first = run_ingest()
    assert sorted(i for r in first.rows for i in r.item_ids) == ["x-y_20240101", "zz"]
    catalog = tmp_path / "catalog"
    stamps = {i: p.stat().st_mtime_ns for i, p in item_files(catalog, "test").items()}

    # Another source: an input whose slug is an item's id though its path is not that
    # item's input (a row planning does not read), the same path as an item of the first
    # source (a row it reads, of another root), and a new one.
    write_raster("x+y_20240101.tif", ramp(dtype="int16"), folder=other)
    write_raster("zz.tif", ramp(dtype="int16"), folder=other)
    write_raster("n_20240301.tif", ramp(), folder=other)
    settings = IngestSettings(source=str(other), collection="test", catalog=str(catalog),
                              target=str(tmp_path / "data"))  # fmt: skip
    run = plan_run(settings)  # the ids planning gives (publishing would rename a clash)
    planned = {w.candidate.relpath: w.item_id for w in run.todo}
    publish_run(run, [])  # nothing converted: ends the run, writes nothing
    assert planned["x+y_20240101.tif"] not in ("x-y_20240101", "zz")
    assert planned["zz.tif"] not in ("x-y_20240101", "zz")
    second = run_ingest(source=str(other))
    rows = {r.input: (r.status, r.item_ids) for r in second.rows}
    assert {i: s for i, (s, _) in rows.items()} == dict.fromkeys(
        ["n_20240301.tif", "x+y_20240101.tif", "zz.tif"], Status.INGESTED)  # fmt: skip
    new_ids = {i: ids[0] for i, (_, ids) in rows.items()}
    assert new_ids == planned
    assert new_ids["n_20240301.tif"] == "n_20240301"
    assert new_ids["x+y_20240101.tif"] not in ("x-y_20240101", "zz")
    assert new_ids["zz.tif"] not in ("x-y_20240101", "zz")
    files = item_files(catalog, "test")
    assert sorted(files) == sorted(["x-y_20240101", "zz", *new_ids.values()])
    assert {i: files[i].stat().st_mtime_ns for i in stamps} == stamps  # not rewritten
    sources = {i: json.loads(p.read_text())["properties"]["byod:source"]
               for i, p in files.items()}  # fmt: skip
    assert sources == {"x-y_20240101": "x-y_20240101.tif", "zz": "zz.tif",
                       **{i: p for p, i in new_ids.items()}}  # fmt: skip

    again = run_ingest(source=str(other))
    assert {r.input: (r.status, r.item_ids[0]) for r in again.rows} == {
        p: (Status.UNCHANGED, i) for p, i in new_ids.items()}  # fmt: skip
    mine = run_ingest()
    assert {r.input: (r.status, r.item_ids) for r in mine.rows} == {
        "x-y_20240101.tif": (Status.UNCHANGED, ["x-y_20240101"]),
        "zz.tif": (Status.UNCHANGED, ["zz"]),
    }  # fmt: skip

    # --prune reads every row: the other source's input gone is removed, nothing else.
    (other / "n_20240301.tif").unlink()
    pruned = run_ingest(source=str(other), prune=True)
    assert {r.input: r.status for r in pruned.rows} == {
        "n_20240301.tif": Status.REMOVED, "x+y_20240101.tif": Status.UNCHANGED,
        "zz.tif": Status.UNCHANGED}  # fmt: skip
    assert sorted(item_files(catalog, "test")) == sorted(
        ["x-y_20240101", "zz", new_ids["x+y_20240101.tif"], new_ids["zz.tif"]])  # fmt: skip


def _rewrite_times(catalog: Path, change: Callable[[pa.Table], pa.Table]) -> int:
    """Every index partition of `catalog` rewritten through `change`; how many."""
    files = sorted(catalog.rglob("*.parquet"))
    for path in files:
        pq.write_table(change(pq.read_table(path)), path)
    return len(files)


def test_time_columns_as_other_writers_type_them_still_plan_unchanged(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """Planning reads an index's times without Arrow kernels (`index._micros`); partitions
    whose time columns another writer typed otherwise (all-null `datetime` of type null, as
    pyarrow and pandas type a column of None; dates; nanoseconds; ISO strings) still give
    the entries of the inputs found: a re-run finds them unchanged."""
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240215.tif", ramp())
    write_raster("plain.tif", ramp())  # no time: undated
    assert {r.status for r in run_ingest().rows} == {Status.INGESTED}
    catalog = tmp_path / "catalog"

    def times(table: pa.Table, kind: Callable[[pa.ChunkedArray], pa.Array]) -> pa.Table:
        for name in ("datetime", "start_datetime", "end_datetime"):
            if name in table.column_names:
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, kind(table.column(name)))
        return table

    def undated_as_null(table: pa.Table) -> pa.Table:
        if table.column("datetime").null_count < table.num_rows:
            return table
        return times(table, lambda c: pa.nulls(len(c)))

    kinds: list[Callable[[pa.ChunkedArray], pa.Array]] = [
        lambda c: pc.cast(c, pa.timestamp("ns", tz="UTC")),
        lambda c: pc.cast(pc.cast(c, pa.timestamp("us")), pa.date32()),  # midnights
        lambda c: pc.strftime(c, "%Y-%m-%dT%H:%M:%SZ"),
    ]
    assert _rewrite_times(catalog, undated_as_null) >= 2
    assert {r.status for r in run_ingest().rows} == {Status.UNCHANGED}
    for kind in kinds:
        _rewrite_times(catalog, lambda t, kind=kind: times(t, kind))  # type: ignore[misc]
        assert {r.status for r in run_ingest().rows} == {Status.UNCHANGED}
