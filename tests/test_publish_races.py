"""Publishing faults found by review (issue 13): runs publishing the same ids at once on Azure
(ETag retries of the switch) must lose no item, and the collection's temporal extent must
come from the pages' intervals compared as times, not as text."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pystac
import pytest

from byod import catalog
from byod.azure import AzureOptions, resolve_access
from byod.catalog import CollectionInfo, publish
from byod.keys import new_version
from byod.sources import disambiguated_id
from byod.storage import Store, open_store

INFO = CollectionInfo("c", "Items of three sources", "CC0-1.0")


def item(i: int, root: str, tag: str, when: datetime | None = None) -> pystac.Item:
    """Item i<i> of the input `<i>.tif` in the source folder `root`."""
    when = when or datetime(2024, 6, 3, tzinfo=UTC) + timedelta(hours=i)
    out = pystac.Item(f"i{i:03d}", {"type": "Point", "coordinates": [i % 50, 0]},
                      [i % 50, 0, i % 50 + 1, 1], when,
                      {"byod:source": f"{i}.tif", "byod:source_root": root})  # fmt: skip
    out.add_asset("data", pystac.Asset(f"/data{root}/{i}-{tag}.tif", roles=["data"]))
    return out


def inputs_published(store: Store) -> set[tuple[str, str]]:
    """(source root, source path) of every item the catalog links (walked as pystac does)."""
    found = catalog.load_items(store, "c")
    return {(i.properties["byod:source_root"], i.properties["byod:source"])
            for i in found.values()}  # fmt: skip


def test_runs_publishing_the_same_ids_at_once_on_azure_lose_nothing(
    azure_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three runs, each of its own source folder holding files of the same names, publish
    their progress at once: every publish adds the same three ids as the other runs'. Each
    input must end as an item of its own (36 inputs, 36 items), whatever the ETag retries."""
    monkeypatch.setattr(catalog, "PAGE_ITEMS", 3)
    access = resolve_access(AzureOptions())
    url = f"az://races-{azure_env}"
    open_store(url, access).ensure_container()
    publish(open_store(url, access), INFO, {f"i{i:03d}": item(i, "/init", "0") for i in range(12)},
            [], new_version())  # fmt: skip
    errors: list[str] = []
    start = threading.Barrier(3)

    def run(r: int) -> None:
        try:
            store, version = open_store(url, access), new_version()
            start.wait()
            for n in range(4):
                new = {
                    f"i{k:03d}": item(k, f"/run{r}", "x") for k in range(100 + 3 * n, 103 + 3 * n)
                }
                gone = [f"i{k:03d}" for k in range(12) if k % 3 == r and k // 3 == n]
                publish(store, INFO, new, gone, version)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(r,)) for r in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = {(f"/run{r}", f"{k}.tif") for r in range(3) for k in range(100, 112)}
    assert inputs_published(open_store(url, access)) == expected


def test_a_third_source_of_the_same_path_gets_the_id_planning_gives(tmp_path: Path) -> None:
    """The same file name in three source folders, published one after the other: the third
    takes the id `_plan` gives when the path's hash is taken too (hash of root and path),
    the same in every run, not a random one."""
    store = open_store(str(tmp_path / "cat"))
    for root in ("/a", "/b", "/c"):
        publish(store, INFO, {"i100": item(100, root, "x")}, [], new_version())
    ids = {(i.properties["byod:source_root"]): i.id
           for i in catalog.load_items(store, "c").values()}  # fmt: skip
    assert ids == {"/a": "i100", "/b": f"i100-{_hash('100.tif')}",
                   "/c": f"i100-{_hash('/c/100.tif')}"}  # fmt: skip
    assert ids["/c"].endswith(disambiguated_id("100.tif", "/c").rsplit("-", 1)[1])


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_collection_interval_compares_times_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pages within one second, one with a fractional second: as text
    "...10:00:00.500000Z" < "...10:00:00Z", so a min/max of strings gives a backwards
    interval; the extent must be [earliest start, latest end]."""
    monkeypatch.setattr(catalog, "PAGE_ITEMS", 1)
    whole = datetime(2024, 6, 5, 10, 0, 0, tzinfo=UTC)
    half = whole + timedelta(microseconds=500000)
    a, b = item(1, "/s", "x", whole), item(2, "/s", "x", half)
    publish(open_store(str(tmp_path)), INFO, {a.id: a, b.id: b}, [], new_version())
    data = json.loads((tmp_path / "c" / "collection.json").read_text())
    assert len(data[catalog.MONTHS_FIELD]) == 2  # one page each
    start, end = (
        pystac.utils.str_to_datetime(t) for t in data["extent"]["temporal"]["interval"][0]
    )
    assert (start, end) == (whole, half)


def test_a_later_publish_of_the_process_reads_no_partition_without_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress publishes of one run: the first reads the `id` column of every partition to
    find its ids; a later one reads again only partitions that may hold its ids (the others'
    ids are known). Proved by taking a partition away (a read of it would fail) between
    two publishes that touch only another month."""
    monkeypatch.setattr(catalog, "PAGE_ITEMS", 5)
    store, version = open_store(str(tmp_path)), new_version()
    june = datetime(2024, 6, 1, tzinfo=UTC)
    first = {f"i{i:03d}": item(i, "/s", "a", june + timedelta(hours=i)) for i in range(10)}
    publish(store, INFO, first, [], new_version())
    august = datetime(2024, 8, 1, tzinfo=UTC)
    publish(store, INFO, {"i100": item(100, "/s", "a", august)}, [], version)
    data = json.loads((tmp_path / "c" / "collection.json").read_text())
    june_pages = [k for k in data[catalog.MONTHS_FIELD] if k.startswith("2024-06")]
    assert len(june_pages) == 2
    away = tmp_path / "c" / data[catalog.MONTHS_FIELD][june_pages[0]]["index"]
    hidden = away.rename(tmp_path / "elsewhere.parquet")
    publish(store, INFO, {"i101": item(101, "/s", "a", august)}, [], version)
    hidden.rename(away)
    published = catalog.load_items(store, "c")
    assert sorted(published) == sorted([*first, "i100", "i101"])


def test_publishing_after_planning_reads_no_partition_without_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh process (a CLI run): planning reads the `id` column of every partition
    (`index.read_entries_of`); the publish that follows reads again only partitions that may
    hold its ids. Proved as above: a partition taken away after planning is not read."""
    from byod import index

    monkeypatch.setattr(catalog, "PAGE_ITEMS", 5)
    store = open_store(str(tmp_path))
    june = datetime(2024, 6, 1, tzinfo=UTC)
    first = {f"i{i:03d}": item(i, "/s", "a", june + timedelta(hours=i)) for i in range(10)}
    publish(store, INFO, first, [], new_version())
    for cache in ("_ENTRIES", "_IDS"):  # what a new process knows: nothing
        monkeypatch.setattr(catalog, cache, {})
    monkeypatch.setattr(index, "_IDS_READ", {})
    keys = [m.index for m in catalog.read_layout(store, "c").months.values()]
    _, ids = index.read_entries_of(store, keys, {"new.tif"})  # planning's read
    assert ids == set(first)
    away = tmp_path / keys[0]
    hidden = away.rename(tmp_path / "elsewhere.parquet")
    publish(store, INFO, {"i100": item(100, "/s", "a", datetime(2024, 8, 1, tzinfo=UTC))}, [],
            new_version())  # fmt: skip
    hidden.rename(away)
    assert sorted(catalog.load_items(store, "c")) == sorted([*first, "i100"])
