"""What a run asks of the catalog's root on Azure (issue 13): a no-op run reads the root
catalog and writes nothing; neither it nor a later publish lists the catalog container's
top-level folders (a delimited listing Azurite answers by walking every blob: 1.6-3.5 s at
100,000 items). A collection hidden by a kill between its switch and the root update is
still linked by the next run into any collection. Requests are seen by the fault proxy in
front of Azurite (every one logged, none faulted)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pystac

import byod.catalog as catalog
from byod.catalog import CollectionInfo, publish
from byod.config import IngestSettings
from byod.keys import ROOT_KEY, collection_key, new_version
from byod.pipeline import ingest
from tests.conftest import WriteRaster, ramp
from tests.faultproxy import FaultProxy

# The fault proxy in front of Azurite, as the storage fault tests set it up.
from tests.test_faults import _direct_stores, proxy, via_proxy  # noqa: F401


def _settings(tmp_path: Path, uid: str, collection: str) -> IngestSettings:
    return IngestSettings(source=str(tmp_path / "src"), collection=collection,
                          target=f"az://cogs-{uid}", catalog=f"az://stac-{uid}", workers=1,
                          timeout_s=120)  # fmt: skip


def _root_listings(log: list[tuple[str, str, str]], uid: str) -> list[str]:
    """Delimited listings of the catalog container's top level (no prefix)."""
    return [p for m, p, _ in log if m == "GET" and p.startswith(f"/devstoreaccount1/stac-{uid}?")
            and "comp=list" in p and "delimiter=" in p and "prefix=" not in p]  # fmt: skip


def _writes(log: list[tuple[str, str, str]], uid: str) -> list[str]:
    mine = f"/devstoreaccount1/stac-{uid}/"
    return [f"{m} {p}" for m, p, _ in log if m in {"PUT", "DELETE"} and p.startswith(mine)]


def test_a_no_op_run_on_azure_reads_the_root_once_and_lists_no_folders(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy,  # noqa: F811
    write_raster: WriteRaster,
) -> None:  # fmt: skip
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.tif", ramp() + 1)
    assert ingest(_settings(tmp_path, via_proxy, "one")).counts()["ingested"] == 2
    write_raster("c_20240103.tif", ramp() + 2)
    proxy.log.clear()
    assert ingest(_settings(tmp_path, via_proxy, "one")).counts()["ingested"] == 1
    assert _root_listings(proxy.log, via_proxy) == []  # a publish into a linked collection
    proxy.log.clear()
    report = ingest(_settings(tmp_path, via_proxy, "one"))
    assert report.counts()["unchanged"] == 3
    assert _root_listings(proxy.log, via_proxy) == []
    root_gets = [p for m, p, _ in proxy.log if m == "GET" and p.split("?")[0].endswith(
        f"/stac-{via_proxy}/{ROOT_KEY}")]  # fmt: skip
    assert len(root_gets) == 1
    writes = [w for w in _writes(proxy.log, via_proxy) if "/_runs/" not in w]
    assert writes == []


def test_a_collection_switched_but_not_linked_is_linked_by_a_no_op_of_another(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy,  # noqa: F811
    write_raster: WriteRaster,
) -> None:  # fmt: skip
    """A run killed right after its first switch of a new collection ("hidden"): the root
    names it as unlinked, so a no-op run into "one" links it, reading no folder listing."""
    write_raster("a_20240101.tif", ramp())
    ingest(_settings(tmp_path, via_proxy, "one"))
    store, _ = _direct_stores(azurite, via_proxy, proxy)
    item = pystac.Item("x", {"type": "Point", "coordinates": [1, 1]}, [1, 1, 1, 1],
                       datetime(2024, 1, 1, tzinfo=UTC), {"byod:source": "x.tif"})  # fmt: skip
    item.add_asset("data", pystac.Asset("https://example.invalid/x.tif", roles=["data"]))

    class Killed(Exception):
        pass

    def killed() -> None:
        raise Killed

    with contextlib.suppress(Killed):  # killed once collection.json is switched: no root update
        publish(store, CollectionInfo("hidden", "d", "CC0-1.0"), {"x": item}, [], new_version(),
                killed)  # fmt: skip
    assert store.exists(collection_key("hidden"))
    root = json.loads(store.read_text(ROOT_KEY))
    assert "./hidden/collection.json" not in {link["href"] for link in root["links"]}
    catalog._LINKED.clear()
    proxy.log.clear()
    assert ingest(_settings(tmp_path, via_proxy, "one")).counts()["unchanged"] == 1
    assert _root_listings(proxy.log, via_proxy) == []
    root = json.loads(store.read_text(ROOT_KEY))
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert children == {"./one/collection.json", "./hidden/collection.json"}
    assert catalog.UNLINKED_FIELD not in root
