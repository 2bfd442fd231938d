"""Issue 13: the catalog by month, progress kept, a no-op that writes nothing, --prune.

Layout: collection.json -> month sub-catalogs -> items, one index partition per month
(catalog.py). Read back from storage by following links (tests/readback.py) and checked with
pystac and the offline schemas; a run killed with SIGKILL after its first publish of progress
loses only what came after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
from azure.storage.blob import BlobServiceClient
from rasterio.transform import from_origin

import byod.planning
import byod.publishing
from byod.catalog import (
    MONTHS_FIELD,
    CollectionInfo,
    Published,
    collect_superseded,
    current_index_keys,
    load_items,
    publish,
)
from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.reasons import Reason
from byod.report import Report, Status
from byod.storage import Store, open_store
from byod.validate import OfflineValidator, validate_catalog
from tests.conftest import WriteRaster, ramp, write_geotiff
from tests.readback import item_files, month_catalogs, orphans, published

BYOD = str(Path(sys.executable).with_name("byod"))  # the installed CLI


def _write(folder: Path, name: str, offset: int) -> None:
    write_geotiff(folder / name, ramp(48, 48) + offset, crs="EPSG:32633",
                  transform=from_origin(500000 + 1000 * offset, 5000000, 10, 10))  # fmt: skip


def _walk(catalog: Path) -> list[pystac.Item]:
    """Every item pystac finds from the root, after validating everything it walks
    (offline: the schemas byod ships)."""
    pystac.validation.set_validator(OfflineValidator())
    try:
        root = pystac.Catalog.from_file(str(catalog / "catalog.json"))
        root.validate_all()
        return list(root.get_items(recursive=True))
    finally:
        pystac.validation.set_validator(pystac.validation.JsonSchemaSTACValidator())


def test_months_are_sub_catalogs_pystac_walks_and_validates(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    write_raster("b_20240120.tif", ramp(dtype="int16"))
    write_raster("c_20240302.tif", ramp())
    write_raster("srtm_dem.tif", ramp(dtype="int16"))  # no time: the undated month
    report = run_ingest()
    assert {r.status for r in report.rows} == {Status.INGESTED}
    catalog = tmp_path / "catalog"
    collection = json.loads((catalog / "test" / "collection.json").read_text())
    children = {link["title"]: link["href"] for link in collection["links"]
                if link["rel"] == "child"}  # fmt: skip
    assert sorted(children) == ["2024-01", "2024-03", "undated"]
    assert not [link for link in collection["links"] if link["rel"] == "item"]
    by_month = {}
    for path in month_catalogs(catalog, "test"):
        month = json.loads(path.read_text())
        by_month[month["title"]] = sorted(
            Path(link["href"]).stem for link in month["links"] if link["rel"] == "item"
        )
    assert by_month == {"2024-01": ["a_20240105", "b_20240120"], "2024-03": ["c_20240302"],
                        "undated": ["srtm_dem"]}  # fmt: skip
    assert collection[MONTHS_FIELD]["2024-01"]["count"] == 2
    # One index partition per month, each holding that month's items.
    keys = current_index_keys(open_store(catalog), "test")
    assert [k.split("/")[2] for k in keys] == ["0001-01", "2024-01", "2024-03"]
    walked = _walk(catalog)
    assert sorted(i.id for i in walked) == sorted(i for r in report.rows for i in r.item_ids)
    assert len(walked) == 4  # one item per input
    assert validate_catalog(str(catalog / "catalog.json"))[1] == []
    # The collection's extent is the union of the items' (from the months' aggregates).
    start, end = collection["extent"]["temporal"]["interval"][0]
    assert start == "0001-01-01T00:00:00Z"  # the open start of the time-less item
    items = [json.loads(p.read_text()) for p in item_files(catalog, "test").values()]
    ends = [i["properties"].get("end_datetime") or i["properties"]["datetime"] for i in items]
    assert end == max(ends)
    # Items name the collection as their parent: their files are never rewritten.
    for path in item_files(catalog, "test").values():
        parent = next(x for x in json.loads(path.read_text())["links"] if x["rel"] == "parent")
        assert (path.parent / parent["href"]).resolve() == catalog / "test" / "collection.json"


def test_an_added_input_rewrites_only_its_month(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    write_raster("c_20240302.tif", ramp())
    run_ingest()
    catalog = tmp_path / "catalog"
    before = {p: p.stat().st_mtime_ns for p in month_catalogs(catalog, "test")}
    write_raster("d_20240310.tif", ramp())
    report = run_ingest()
    assert {r.input: r.status for r in report.rows}["d_20240310.tif"] is Status.INGESTED
    after = month_catalogs(catalog, "test")
    january = [p for p in before if "/2024-01/" in str(p)]
    assert january and all(p in after and p.stat().st_mtime_ns == before[p] for p in january)
    march = [p for p in after if "/2024-03/" in str(p)]
    assert len(march) == 1 and march[0] not in before  # a new version of March
    assert len(_walk(catalog)) == 3


def test_a_run_killed_after_publishing_progress_keeps_it(tmp_path: Path) -> None:
    source, catalog, data = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    names = [f"s{n}_2024010{n + 1}.tif" for n in range(8)]
    for n, name in enumerate(names):
        _write(source, name, n)
    command = [BYOD, "ingest", str(source), "--collection", "p", "--catalog", str(catalog),
               "--target", str(data), "--workers", "1", "--publish-every", "2", "-q"]  # fmt: skip
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    # The root is the last file a publish writes (after the switch of collection.json; a
    # kill between the two is repaired by the next run, tests/test_kills.py): killed once it
    # exists, the run has published progress that a reader finds from the root.
    pointer = catalog / "catalog.json"
    deadline = time.monotonic() + 120
    while proc.poll() is None and not pointer.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    alive = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the CLI and its workers
    proc.wait(timeout=30)
    assert alive, "the run ended before its first publish of progress"
    store, target = open_store(catalog), open_store(data)
    kept = published(store, target, "p", tmp_path)  # consistent: items and their bytes
    assert 2 <= len(kept) < len(names)

    report = ingest(IngestSettings(source=str(source), collection="p", catalog=str(catalog),
                                   target=str(data), workers=1))  # fmt: skip
    statuses = {r.input: r.status for r in report.rows}
    sources = {item["properties"]["byod:source"] for item in kept.values()}
    assert {n for n, s in statuses.items() if s is Status.UNCHANGED} == sources
    assert {n for n, s in statuses.items() if s is Status.INGESTED} == set(names) - sources
    assert len(published(store, target, "p", tmp_path)) == len(names)
    assert orphans(store, target, "p") == []  # the killed run's unpublished files removed


def test_progress_is_published_every_n_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    for n in range(5):
        _write(source, f"s{n}_2024010{n + 1}.tif", n)
    seen: list[int] = []
    original = byod.publishing.publish

    def spy(store: Store, info: CollectionInfo, new: dict[str, pystac.Item],
            *args: Any, **kwargs: Any) -> Published:  # fmt: skip
        seen.append(len(new))
        return original(store, info, new, *args, **kwargs)

    monkeypatch.setattr(byod.publishing, "publish", spy)
    report = ingest(IngestSettings(source=str(source), collection="p", workers=1,
                                   catalog=str(tmp_path / "catalog"),
                                   target=str(tmp_path / "data"),
                                   publish_every_inputs=2))  # fmt: skip
    assert seen == [2, 2, 1]
    assert {r.status for r in report.rows} == {Status.INGESTED}
    assert len(_walk(tmp_path / "catalog")) == 5


def test_sigint_after_publishing_progress_keeps_every_published_items_files(
    tmp_path: Path,
) -> None:
    # Review R1: the final publish of an interrupted run wrote its month under the key of the
    # progress publish (in place); the clean-up then judged by the old contents, cached by
    # key, and deleted the files of items the catalog still linked.
    source, catalog, data = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    names = [f"s{n}_2024010{n + 1}.tif" for n in range(6)]  # one month
    for n, name in enumerate(names):
        _write(source, name, n)
    report_path = tmp_path / "report.json"
    command = [BYOD, "ingest", str(source), "--collection", "p", "--catalog", str(catalog),
               "--target", str(data), "--workers", "1", "--publish-every", "2",
               "--report", str(report_path), "-q"]  # fmt: skip
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    pointer = catalog / "p" / "collection.json"
    deadline = time.monotonic() + 120
    # Progress published, and a third input stored (its COG is whole once the fourth's
    # upload starts, one worker): the final publish has work to do in the same month.
    while (
        proc.poll() is None
        and time.monotonic() < deadline
        and not (pointer.exists() and sum(1 for _ in data.rglob("*.tif")) >= 4)
    ):
        time.sleep(0.002)
    alive = proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    _, stderr = proc.communicate(timeout=120)
    assert alive, "the run ended before it could be interrupted"
    assert proc.returncode == 130, stderr
    rows = {r["input"]: r for r in json.loads(report_path.read_text("utf-8"))["rows"]}
    done = {i for i, r in rows.items() if r["status"] == "ingested"}
    assert len(done) >= 3
    store, target = open_store(catalog), open_store(data)
    items = published(store, target, "p", tmp_path)  # every linked item's bytes are there
    assert {i["properties"]["byod:source"] for i in items.values()} == done
    for item_file in item_files(catalog, "p").values():
        assert item_file.exists()
    walked = _walk(catalog)
    assert sorted(i.id for i in walked) == sorted(items)
    for item in walked:
        assert all(Path(a.get_absolute_href() or "").exists() for a in item.assets.values())
    assert orphans(store, target, "p") == []


def test_no_catalog_key_is_written_twice_by_the_publishes_of_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, catalog = tmp_path / "src", tmp_path / "catalog"
    for n in range(5):
        _write(source, f"s{n}_2024010{n + 1}.tif", n)  # one month: every publish rewrites it
    # The pointers (collection.json, the root) and the run's own bookkeeping are rewritten
    # by design; every other key is immutable once written.
    mutable = ("p/collection.json", "catalog.json", "p/_superseded/", "p/_runs/")
    seen: dict[str, tuple[int, int, int]] = {}  # key -> (inode, mtime_ns, size) first seen
    rewritten: list[str] = []
    calls: list[int] = []
    original = byod.publishing.publish

    def snapshot() -> None:
        for path in catalog.rglob("*"):
            key = path.relative_to(catalog).as_posix()
            if not path.is_file() or key.startswith(mutable) or key.endswith(".lock"):
                continue
            stat = path.stat()
            now = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if seen.setdefault(key, now) != now:
                rewritten.append(key)

    def spy(*args: Any, **kwargs: Any) -> Published:
        done = original(*args, **kwargs)
        calls.append(1)
        snapshot()
        return done

    monkeypatch.setattr(byod.publishing, "publish", spy)
    report = ingest(IngestSettings(source=str(source), collection="p", workers=1,
                                   catalog=str(catalog), target=str(tmp_path / "data"),
                                   publish_every_inputs=2))  # fmt: skip
    snapshot()
    assert len(calls) == 3 and {r.status for r in report.rows} == {Status.INGESTED}
    assert any("/_months/" in k for k in seen)
    assert rewritten == []
    assert len(_walk(catalog)) == 5


def test_a_switch_from_a_stale_pointer_reads_the_pointer_again(tmp_path: Path) -> None:
    # On blob storage the pointer a switch starts from may be stale: another run switched
    # since and, past the grace period (0 s here), deleted the month version it named.
    store = open_store(tmp_path / "catalog")
    info = CollectionInfo("c", "test", "CC0-1.0")

    def item(item_id: str) -> pystac.Item:
        bbox = [10.0, 50.0, 10.1, 50.1]
        geometry = {"type": "Polygon", "coordinates": [[[10.0, 50.0], [10.1, 50.0],
                    [10.1, 50.1], [10.0, 50.1], [10.0, 50.0]]]}  # fmt: skip
        found = pystac.Item(item_id, geometry, bbox, datetime(2024, 1, 5, tzinfo=UTC),
                            {"byod:source": f"{item_id}.tif"})  # fmt: skip
        found.add_asset("data", pystac.Asset(str(tmp_path / f"{item_id}.tif"), roles=["data"]))
        return found

    publish(store, info, {"a": item("a")}, [], "20240101T000000-aaaaaa")
    stale = store.read_text("c/collection.json")
    publish(store, info, {"b": item("b")}, [], "20240101T000001-bbbbbb")
    collect_superseded(store, "c", [store], 0.0, lambda _: False)
    assert current_index_keys(store, "c")[0].split("/")[3] == "20240101T000001-bbbbbb"
    assert not [f for f in store.list_files("c/_months/") if "aaaaaa" in f.key]
    update = store.update_text
    calls: list[str | None] = []

    def stale_first(key: str, change: Callable[[str | None], str | None]) -> str | None:
        if key == "c/collection.json" and not calls:
            calls.append(change(stale))  # what a conditional write on a stale ETag computes
        return update(key, change)

    store.update_text = stale_first  # type: ignore[method-assign]
    publish(store, info, {"c": item("c")}, [], "20240101T000002-cccccc")
    assert calls and calls[0] is not None and json.loads(calls[0])[MONTHS_FIELD]
    assert sorted(load_items(store, "c")) == ["a", "b", "c"]


def test_prune_removes_the_items_of_inputs_gone_from_the_source(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    gone = write_raster("b_20240302.tif", ramp())
    first = run_ingest()
    b_id = next(r.item_ids[0] for r in first.rows if r.input == "b_20240302.tif")
    b_file = item_files(tmp_path / "catalog", "test")[b_id]
    b_cog = (b_file.parent / json.loads(b_file.read_text())["assets"]["data"]["href"]).resolve()
    gone.unlink()

    kept = run_ingest()  # without --prune nothing is removed
    assert [(r.input, r.status) for r in kept.rows] == [("a_20240105.tif", Status.UNCHANGED)]
    assert b_id in item_files(tmp_path / "catalog", "test") and b_cog.exists()

    pruned = run_ingest(prune=True)
    assert {r.input: (r.status, r.item_ids) for r in pruned.rows} == {
        "a_20240105.tif": (Status.UNCHANGED, ["a_20240105"]),
        "b_20240302.tif": (Status.REMOVED, [b_id]),
    }
    assert pruned.counts()["removed"] == 1
    assert set(item_files(tmp_path / "catalog", "test")) == {"a_20240105"}
    assert not b_cog.exists()  # superseded, past the grace period (0 s in the tests)
    # No empty folder is left of the removed item, in the catalog or the target.
    assert not (tmp_path / "catalog" / "test" / b_id).exists()
    assert not (tmp_path / "data" / "test" / b_id).exists()
    assert [i.id for i in _walk(tmp_path / "catalog")] == ["a_20240105"]
    assert orphans(open_store(tmp_path / "catalog"), open_store(tmp_path / "data"), "test") == []


def test_prune_is_skipped_when_part_of_the_source_cannot_be_listed(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    write_raster("sub/b_20240302.tif", ramp())
    run_ingest()
    (tmp_path / "src" / "loop").symlink_to("loop")  # a link loop: what is behind is unknown
    shutil.rmtree(tmp_path / "src" / "sub")  # gone, but --prune cannot be sure
    report = run_ingest(prune=True)
    assert any(r.reason is Reason.SYMLINK_LOOP for r in report.rows)
    assert not [r for r in report.rows if r.status is Status.REMOVED]
    assert any(n.startswith("--prune skipped") for n in report.notes)
    assert len(item_files(tmp_path / "catalog", "test")) == 2


def test_prune_with_a_source_that_lists_nothing_removes_nothing(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    write_raster("b_20240302.tif", ramp())
    run_ingest()
    files = item_files(tmp_path / "catalog", "test")
    cogs = sorted((tmp_path / "data").rglob("*.tif"))
    # An emptied folder looks like a mistyped one: the collection is not wiped.
    shutil.rmtree(tmp_path / "src")
    (tmp_path / "src").mkdir()
    report = run_ingest(prune=True)
    assert report.rows == []
    assert any(n.startswith("--prune skipped") and "no input" in n for n in report.notes)
    assert item_files(tmp_path / "catalog", "test") == files
    assert all(p.exists() for p in files.values()) and all(c.exists() for c in cogs)
    assert len(cogs) == 2 and sorted((tmp_path / "data").rglob("*.tif")) == cogs


def test_prune_and_ids_keep_to_their_own_source(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    other = tmp_path / "other"
    write_raster("a_20240105.tif", ramp())
    write_raster("zz.tif", ramp())
    write_raster("zz.tif", ramp(dtype="int16"), folder=other)  # the same path, another source
    write_raster("o_20240301.tif", ramp(), folder=other)
    run_ingest()
    catalog = tmp_path / "catalog"
    first = item_files(catalog, "test")
    assert sorted(first) == ["a_20240105", "zz"]
    zz_stamp = first["zz"].stat().st_mtime_ns

    report = run_ingest(source=str(other), prune=True)
    rows = {r.input: (r.status, r.item_ids) for r in report.rows}
    assert {i: s for i, (s, _) in rows.items()} == {"o_20240301.tif": Status.INGESTED,
                                                   "zz.tif": Status.INGESTED}  # fmt: skip
    other_zz = rows["zz.tif"][1][0]
    assert other_zz != "zz"  # not the first source's item: an id of its own
    files = item_files(catalog, "test")
    assert sorted(files) == sorted(["a_20240105", "zz", other_zz, "o_20240301"])
    assert files["zz"] == first["zz"] and files["zz"].stat().st_mtime_ns == zz_stamp
    roots = {i: json.loads(p.read_text())["properties"]["byod:source_root"]
             for i, p in files.items()}  # fmt: skip
    src, oth = str((tmp_path / "src").resolve()), str(other.resolve())
    assert roots == {"a_20240105": src, "zz": src, other_zz: oth, "o_20240301": oth}

    (other / "o_20240301.tif").unlink()
    pruned = run_ingest(source=str(other), prune=True)
    assert {r.input: r.status for r in pruned.rows} == {
        "o_20240301.tif": Status.REMOVED, "zz.tif": Status.UNCHANGED}  # fmt: skip
    assert sorted(item_files(catalog, "test")) == sorted(["a_20240105", "zz", other_zz])
    again = run_ingest(prune=True)  # the first source: its items are its own, unchanged
    assert {r.input: (r.status, r.item_ids) for r in again.rows} == {
        "a_20240105.tif": (Status.UNCHANGED, ["a_20240105"]),
        "zz.tif": (Status.UNCHANGED, ["zz"]),
    }  # fmt: skip
    assert sorted(i.id for i in _walk(catalog)) == sorted(["a_20240105", "zz", other_zz])
    assert orphans(open_store(catalog), open_store(tmp_path / "data"), "test") == []


def test_prune_keeps_items_that_do_not_record_their_source(
    tmp_path: Path,
    write_raster: WriteRaster,
    run_ingest: Callable[..., Report],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_raster("a_20240105.tif", ramp())
    gone = write_raster("b_20240302.tif", ramp())
    with monkeypatch.context() as patch:  # as a byod before byod:source_root wrote them
        patch.setattr(byod.planning, "source_root", lambda _: None)
        patch.setattr(byod.publishing, "source_root", lambda _: None)
        run_ingest()
    files = item_files(tmp_path / "catalog", "test")
    assert all(json.loads(p.read_text())["properties"].get("byod:source_root") is None
               for p in files.values())  # fmt: skip
    gone.unlink()
    report = run_ingest(prune=True)  # which source b came from is unknown: kept
    assert {r.input: r.status for r in report.rows} == {"a_20240105.tif": Status.UNCHANGED}
    assert any(n.startswith("--prune kept 1 item") for n in report.notes)
    assert item_files(tmp_path / "catalog", "test") == files


def test_an_all_rejected_run_leaves_no_collection(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    report = run_ingest()
    assert [r.status for r in report.rows] == [Status.REJECTED]
    assert not (tmp_path / "catalog" / "test").exists()


def test_a_no_op_rerun_writes_nothing_on_azurite(
    azure_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One listing of the target (with metadata) instead of a HEAD per COG, even for 3 inputs.
    monkeypatch.setattr(byod.planning, "LISTING_FROM", 0)
    source = tmp_path / "src"
    for n in range(3):
        _write(source, f"s{n}_2024010{n + 1}.tif", n)
    settings = IngestSettings(
        source=str(source),
        collection="p",
        workers=1,
        catalog=f"az://cat{azure_env}/c",
        target=f"az://dat{azure_env}/d",
    )
    assert {r.status for r in ingest(settings).rows} == {Status.INGESTED}
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])

    def blobs() -> dict[str, tuple[str, datetime]]:
        return {f"{c}/{b.name}": (str(b.etag), b.last_modified.astimezone(UTC))
                for c in (f"cat{azure_env}", f"dat{azure_env}")
                for b in client.get_container_client(c).list_blobs()}  # fmt: skip

    before = blobs()
    assert any(k.endswith("collection.json") for k in before)
    again = ingest(settings)
    assert {r.status for r in again.rows} == {Status.UNCHANGED}
    assert blobs() == before
    # The listing sees a COG gone: its input is converted again.
    cog = next(
        k for k in before if k.startswith(f"dat{azure_env}/") and k.endswith("s1_20240102.tif")
    )
    client.get_container_client(f"dat{azure_env}").delete_blob(cog.split("/", 1)[1])
    third = ingest(settings)
    assert {r.input: r.status for r in third.rows} == {
        "s0_20240101.tif": Status.UNCHANGED, "s1_20240102.tif": Status.REPLACED,
        "s2_20240103.tif": Status.UNCHANGED,
    }  # fmt: skip


def test_a_collection_of_the_layout_before_months_is_migrated(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240105.tif", ramp())
    write_raster("c_20240302.tif", ramp())
    run_ingest()
    catalog = tmp_path / "catalog"
    # The layout byod wrote before months: item links in collection.json, no index
    # partition (its one index left out: the migration then reads the item files).
    pointer = catalog / "test" / "collection.json"
    old = json.loads(pointer.read_text())
    files = item_files(catalog, "test")
    old["links"] = [x for x in old["links"] if x["rel"] != "child"] + [
        {"rel": "item", "href": "./" + str(p.relative_to(catalog / "test")),
         "type": "application/geo+json"} for _, p in sorted(files.items())]  # fmt: skip
    del old[MONTHS_FIELD], old["assets"]
    pointer.write_text(json.dumps(old))
    shutil.rmtree(catalog / "test" / "_months")
    stamps = {p: p.stat().st_mtime_ns for p in files.values()}
    assert sorted(i.id for i in _walk(catalog)) == ["a_20240105", "c_20240302"]

    write_raster("d_20240310.tif", ramp())
    report = run_ingest()
    assert {r.input: r.status for r in report.rows} == {
        "a_20240105.tif": Status.UNCHANGED, "c_20240302.tif": Status.UNCHANGED,
        "d_20240310.tif": Status.INGESTED,
    }  # fmt: skip
    migrated = json.loads(pointer.read_text())
    assert sorted(migrated[MONTHS_FIELD]) == ["2024-01", "2024-03"]
    assert not [x for x in migrated["links"] if x["rel"] == "item"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # items not rewritten
    assert sorted(i.id for i in _walk(catalog)) == ["a_20240105", "c_20240302", "d_20240310"]
    store, target = open_store(catalog), open_store(tmp_path / "data")
    assert len(published(store, target, "test", tmp_path)) == 3
    assert orphans(store, target, "test") == []
