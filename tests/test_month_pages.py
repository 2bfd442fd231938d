"""A month holding more items than a page (issue 13): pages of at most `catalog.PAGE_ITEMS`
items, each its own sub-catalog and index partition, so a publish rewrites the page it
touches, not the month. PAGE_ITEMS is set to 5 here."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas
import pyarrow.parquet as pq
import pystac
import pytest
import stac_geoparquet.arrow

import byod
from byod import catalog
from byod.catalog import CollectionInfo, publish
from byod.keys import new_version
from byod.storage import Store, open_store

INFO = CollectionInfo("c", "Items of one busy month", "CC0-1.0")
JUNE = datetime(2024, 6, 1, tzinfo=UTC)
PAGE = 5


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "PAGE_ITEMS", PAGE)


def items(first: int, n: int, when: datetime = JUNE, tag: str = "a") -> dict[str, pystac.Item]:
    """Items i<first>..i<first+n-1>, 2 hours apart from `when`, each at its own place."""
    out = {}
    for i in range(first, first + n):
        lon, lat = -170 + (i * 3) % 340, -60 + i % 100
        item = pystac.Item(f"i{i:03d}", {"type": "Point", "coordinates": [lon, lat]},
                           [lon, lat, lon + 1, lat + 1], when + timedelta(hours=2 * i),
                           {"eo:cloud_cover": float(i), "byod:source": f"in/{i}.tif"})  # fmt: skip
        item.add_asset("data", pystac.Asset(f"/data/{i}-{tag}.tif", roles=["data"]))
        out[item.id] = item
    return out


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `root` (but lock files): its bytes and mtime."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")}  # fmt: skip


def collection(root: Path) -> dict:
    return json.loads((root / "c" / "collection.json").read_text())


def partitions(root: Path) -> dict[str, Path]:
    """The index partitions collection.json names (`collection-mirror` assets), by asset."""
    assets = collection(root)["assets"]
    return {k: (root / "c" / a["href"]).resolve() for k, a in assets.items()
            if "collection-mirror" in a["roles"]}  # fmt: skip


def page_files(root: Path) -> dict[str, set[str]]:
    """Per page child link (by title): its sub-catalog and partition, relative to `root`."""
    data = collection(root)
    out: dict[str, set[str]] = {}
    for name, page in data["byod:months"].items():
        out[name] = {str((root / "c" / page[k]).resolve().relative_to(root))
                     for k in ("catalog", "index")}  # fmt: skip
    return out


def walked(root: Path) -> list[str]:
    return [i.id for i in pystac.Catalog.from_file(str(root / "catalog.json"))
            .get_items(recursive=True)]  # fmt: skip


def changed(before: dict[str, tuple[bytes, int]], after: dict[str, tuple[bytes, int]]
            ) -> set[str]:  # fmt: skip
    return {k for k, v in after.items() if before.get(k) != v}


def test_a_month_of_many_items_is_paged_and_every_reader_finds_every_item(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    publish(store, INFO, items(0, 12), [], new_version())
    # Three pages of at most 5 items (counted by pyarrow, not by byod's records).
    rows = {k: pq.read_table(p).column("id").to_pylist() for k, p in partitions(tmp_path).items()}
    assert sorted(len(r) for r in rows.values()) == [2, 5, 5]
    assert sorted(i for r in rows.values() for i in r) == [f"i{i:03d}" for i in range(12)]
    data = collection(tmp_path)
    assert [x["title"] for x in data["links"] if x["rel"] == "child"] == [
        "2024-06", "2024-06 (page 2)", "2024-06 (page 3)"]  # fmt: skip
    assert data["extent"]["temporal"]["interval"][0][1] == "2024-06-01T22:00:00Z"
    assert data["summaries"]["eo:cloud_cover"] == {"minimum": 0.0, "maximum": 11.0}
    assert data["extent"]["spatial"]["bbox"][0] == [-170.0, -60.0, -136.0, -48.0]
    # pystac walks every item exactly once.
    ids = walked(tmp_path)
    assert sorted(ids) == [f"i{i:03d}" for i in range(12)] and len(ids) == len(set(ids))
    # geopandas and stac-geoparquet read every partition, assets included.
    for path in partitions(tmp_path).values():
        frame = geopandas.read_parquet(path)
        assert frame.crs.to_epsg() == 4326
        for item in stac_geoparquet.arrow.stac_table_to_items(pq.read_table(path)):
            assert item["assets"]["data"]["href"].endswith(f"/data/{int(item['id'][1:])}-a.tif")
    # Search finds items of every page.
    found = byod.search(str(tmp_path), datetime="2024-06-01/2024-06-30", max_cloud=10)
    assert sorted(i.id for i in found) == [f"i{i:03d}" for i in range(11)]


def test_adding_replacing_removing_rewrite_only_the_pages_concerned(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    publish(store, INFO, items(0, 12), [], new_version())
    first = page_files(tmp_path)
    before = snapshot(tmp_path)

    # One new item: the last page (2 items) only, plus the item, the pointer, the manifest.
    version = new_version()
    publish(store, INFO, items(12, 1), [], version)
    after = snapshot(tmp_path)
    pages = page_files(tmp_path)
    assert pages["2024-06"] == first["2024-06"] and pages["2024-06-p2"] == first["2024-06-p2"]
    new_page = pages["2024-06-p3"]
    assert new_page != first["2024-06-p3"]
    assert changed(before, after) == new_page | {
        "c/collection.json",
        f"c/i012/{version}/i012.json",
        f"c/_superseded/{version}.json",
    }
    rows = pq.read_table(tmp_path / sorted(new_page)[1]).column("id").to_pylist()
    assert sorted(rows) == ["i010", "i011", "i012"]

    # A replaced item of the first page: that page only.
    before, version = after, new_version()
    publish(store, INFO, items(1, 1, tag="b"), [], version)
    after = snapshot(tmp_path)
    pages, old = page_files(tmp_path), pages
    assert {k: v for k, v in pages.items() if k != "2024-06"} == {
        k: v for k, v in old.items() if k != "2024-06"}  # fmt: skip
    assert changed(before, after) == pages["2024-06"] | {
        "c/collection.json",
        f"c/i001/{version}/i001.json",
        f"c/_superseded/{version}.json",
    }
    partition = tmp_path / next(k for k in pages["2024-06"] if k.endswith(".parquet"))
    hrefs = {
        i["id"]: i["assets"]["data"]["href"]
        for i in stac_geoparquet.arrow.stac_table_to_items(pq.read_table(partition))
    }
    assert sorted(hrefs) == [f"i{i:03d}" for i in range(5)]
    assert hrefs["i001"].endswith("/data/1-b.tif") and hrefs["i002"].endswith("/data/2-a.tif")

    # Filling the last page (3 of 5) spills into a new page; the full pages stay.
    old = pages
    publish(store, INFO, items(13, 4), [], new_version())
    pages = page_files(tmp_path)
    assert pages["2024-06"] == old["2024-06"] and pages["2024-06-p2"] == old["2024-06-p2"]
    counts = {k: len(pq.read_table(p)) for k, p in partitions(tmp_path).items()}
    assert sorted(counts.values()) == [2, 5, 5, 5]  # 3 + 4 in page 3: 5 there, 2 in page 4
    assert "2024-06-p4" in pages

    # Removing every item of page 2: the page goes, the others stay as they are.
    old = pages
    publish(store, INFO, {}, [f"i{i:03d}" for i in range(5, 10)], new_version())
    pages = page_files(tmp_path)
    assert sorted(pages) == ["2024-06", "2024-06-p3", "2024-06-p4"]
    assert all(pages[k] == old[k] for k in pages)
    ids = walked(tmp_path)
    expected = [f"i{i:03d}" for i in (*range(5), *range(10, 17))]
    assert sorted(ids) == expected and len(ids) == len(expected)
    found = byod.search(str(tmp_path), bbox=[-180, -90, 180, 90])
    assert sorted(i.id for i in found) == expected


def test_a_month_written_before_pages_is_extended_not_rewritten(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:  # fmt: skip
    store = open_store(tmp_path)
    monkeypatch.setattr(catalog, "PAGE_ITEMS", 1000)  # one partition per month, as before pages
    publish(store, INFO, items(0, 12), [], new_version())
    assert list(collection(tmp_path)["byod:months"]) == ["2024-06"]
    monkeypatch.setattr(catalog, "PAGE_ITEMS", PAGE)
    first = page_files(tmp_path)["2024-06"]
    before = snapshot(tmp_path)
    publish(store, INFO, items(12, 2), [], new_version())
    assert changed(before, snapshot(tmp_path)) & first == set()
    pages = page_files(tmp_path)
    assert pages["2024-06"] == first and sorted(pages) == ["2024-06", "2024-06-p2"]
    counts = sorted(len(pq.read_table(p)) for p in partitions(tmp_path).values())
    assert counts == [2, 12]
    ids = walked(tmp_path)
    assert sorted(ids) == [f"i{i:03d}" for i in range(14)] and len(ids) == 14


def test_a_month_written_before_pages_is_split_when_rewritten_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    monkeypatch.setattr(catalog, "PAGE_ITEMS", 1000)
    publish(store, INFO, items(0, 12), [], new_version())
    monkeypatch.setattr(catalog, "PAGE_ITEMS", PAGE)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "c").glob("i*/*/i*.json")}
    # A replaced item of the over-full page: the page is rewritten, and split on the way.
    publish(store, INFO, items(11, 1, tag="b"), [], new_version())
    rows = {k: pq.read_table(p).column("id").to_pylist() for k, p in partitions(tmp_path).items()}
    assert sorted(len(r) for r in rows.values()) == [2, 5, 5]
    assert sorted(i for r in rows.values() for i in r) == [f"i{i:03d}" for i in range(12)]
    ids = walked(tmp_path)
    assert sorted(ids) == [f"i{i:03d}" for i in range(12)] and len(ids) == 12
    found = {i.id: i.assets["data"].href for i in byod.search(str(tmp_path))}
    assert sorted(found) == [f"i{i:03d}" for i in range(12)]
    assert found["i011"].endswith("/data/11-b.tif") and found["i010"].endswith("/data/10-a.tif")
    # The items moved between pages keep their files.
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    # From then on a new item rewrites the last page only.
    first = page_files(tmp_path)
    before = snapshot(tmp_path)
    publish(store, INFO, items(12, 1), [], new_version())
    pages = page_files(tmp_path)
    assert pages["2024-06"] == first["2024-06"] and pages["2024-06-p2"] == first["2024-06-p2"]
    assert changed(before, snapshot(tmp_path)) & (first["2024-06"] | first["2024-06-p2"]) == set()


def test_a_collection_of_the_layout_before_months_is_migrated_in_pages(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    publish(store, INFO, items(0, 12), [], new_version())
    # The layout before months: item links in collection.json, no pages, no index.
    pointer = tmp_path / "c" / "collection.json"
    old = json.loads(pointer.read_text())
    files = sorted((tmp_path / "c").glob("i*/*/i*.json"))
    old["links"] = [x for x in old["links"] if x["rel"] != "child"] + [
        {"rel": "item", "href": "./" + str(p.relative_to(tmp_path / "c")),
         "type": "application/geo+json"} for p in files]  # fmt: skip
    del old["byod:months"], old["assets"]
    pointer.write_text(json.dumps(old))
    shutil.rmtree(tmp_path / "c" / "_months")
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert sorted(walked(tmp_path)) == [f"i{i:03d}" for i in range(12)]

    publish(store, INFO, items(12, 1), [], new_version())
    rows = {k: pq.read_table(p).column("id").to_pylist() for k, p in partitions(tmp_path).items()}
    assert sorted(len(r) for r in rows.values()) == [3, 5, 5]
    assert sorted(i for r in rows.values() for i in r) == [f"i{i:03d}" for i in range(13)]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # items not rewritten
    ids = walked(tmp_path)
    assert sorted(ids) == [f"i{i:03d}" for i in range(13)] and len(ids) == 13


def _concurrent_publishes(open_: Callable[[], Store]) -> list[str]:
    """Three items, then two runs at once each publishing 12 items into the same month in
    three progress publishes; returns the expected ids."""
    publish(open_(), INFO, items(0, 3), [], new_version())
    errors: list[BaseException] = []

    def run(first: int) -> None:
        try:
            version = new_version()  # one run: three progress publishes of 4 items
            for n in range(3):
                publish(open_(), INFO, items(first + 4 * n, 4), [], version)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return sorted(f"i{i:03d}" for i in (*range(3), *range(100, 112), *range(200, 212)))


def test_concurrent_publishes_into_one_month_lose_nothing(tmp_path: Path) -> None:
    expected = _concurrent_publishes(lambda: open_store(tmp_path))
    ids = walked(tmp_path)
    assert sorted(ids) == expected and len(ids) == len(expected)
    rows = [i for p in partitions(tmp_path).values()
            for i in pq.read_table(p).column("id").to_pylist()]  # fmt: skip
    assert sorted(rows) == expected
    assert all(len(pq.read_table(p)) <= PAGE for p in partitions(tmp_path).values())


def test_concurrent_blob_publishes_into_one_month_lose_nothing(azure_env: str) -> None:
    """The same on Azurite: the switch is an ETag-conditioned write there."""
    from byod.azure import AzureOptions, resolve_access

    url = f"az://pages-{azure_env}"
    open_store(url, resolve_access(AzureOptions())).ensure_container()
    expected = _concurrent_publishes(lambda: open_store(url, resolve_access(AzureOptions())))
    store = open_store(url, resolve_access(AzureOptions()))
    walked_ids = list(catalog.load_items(store, "c"))  # the JSON walk, page by page
    assert sorted(walked_ids) == expected
    pages = json.loads(store.read_text("c/collection.json"))["byod:months"]
    assert sum(p["count"] for p in pages.values()) == len(expected)
    assert len(pages) >= len(expected) // PAGE
    found = byod.search(url, bbox=[-180, -90, 180, 90], access=resolve_access(AzureOptions()))
    assert sorted(i.id for i in found) == expected
