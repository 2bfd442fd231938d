"""Reading a published catalog back from storage, by following its links (never by guessing
the key layout), for tests that check what byod wrote."""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path
from typing import Any

from byod.storage import Store


def item_files(catalog: Path, collection: str) -> dict[str, Path]:
    """Item id -> the item file the collection links to (local catalog)."""
    folder = catalog / collection
    data = json.loads((folder / "collection.json").read_text("utf-8"))
    return {Path(link["href"]).stem: (folder / link["href"]).resolve()
            for link in data["links"] if link["rel"] == "item"}  # fmt: skip


def read_items(store: Store, collection: str) -> dict[str, dict[str, Any]]:
    """Item id -> the item dict, read from the files `collection.json` links (any store),
    with each asset's href made into the store key it points at (`key`), when it has one."""
    key = f"{collection}/collection.json"
    data = json.loads(store.read_text(key))
    out = {}
    for link in data["links"]:
        if link["rel"] != "item":
            continue
        item_key = posixpath.normpath(posixpath.join(collection, link["href"]))
        item = json.loads(store.read_text(item_key))
        item["_key"] = item_key
        out[item["id"]] = item
    return out


def asset_path(item_file: Path, href: str) -> Path:
    """The local file an asset href of a local item points at."""
    return (item_file.parent / href).resolve()


def sha256_multihash(data: bytes) -> str:
    """The file extension's `file:checksum` of `data`, computed here (multihash sha2-256)."""
    return "1220" + hashlib.sha256(data).hexdigest()


def published(catalog: Store, target: Store, collection: str, scratch: Path) -> dict[str, Any]:
    """Check, from storage alone, that the collection, its index, its items and the bytes
    they point at agree, and return the items by id. Checked: the root links the collection;
    each linked item's assets exist in `target` and hash to their `file:checksum`; the index
    the collection links holds exactly the linked items, each equal to its item file."""
    import pyarrow.parquet as pq

    root = json.loads(catalog.read_text("catalog.json"))
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert f"./{collection}/collection.json" in children
    items = read_items(catalog, collection)
    for item in items.values():
        for name, asset in item["assets"].items():
            href = asset["href"]
            if catalog.is_local and "://" not in href:
                href = str((Path(catalog.href(item["_key"])).parent / href).resolve())
            key = target.key_of(href)
            assert key is not None, f"{item['id']}/{name}: {href} is not in the target"
            local = scratch / "asset"
            target.get_file(key, local)
            if "file:checksum" in asset:
                assert sha256_multihash(local.read_bytes()) == asset["file:checksum"], key
    data = json.loads(catalog.read_text(f"{collection}/collection.json"))
    (mirror,) = [a for a in data["assets"].values() if "collection-mirror" in a["roles"]]
    catalog.get_file(posixpath.normpath(posixpath.join(collection, mirror["href"])),
                     scratch / "index.parquet")  # fmt: skip
    rows = pq.read_table(scratch / "index.parquet").column("byod:item").to_pylist()
    indexed = {json.loads(r)["id"]: json.loads(r) for r in rows}
    assert sorted(indexed) == sorted(items)
    for item_id, row in indexed.items():
        checksums = {k: a.get("file:checksum") for k, a in row["assets"].items()}
        assert checksums == {k: a.get("file:checksum") for k, a in items[item_id]["assets"].items()}
        assert row["properties"] == items[item_id]["properties"]
    return items


def referenced_keys(catalog: Store, target: Store, collection: str) -> set[tuple[str, str]]:
    """(store root, key) of every file the published collection needs."""
    data = json.loads(catalog.read_text(f"{collection}/collection.json"))
    keys = {(catalog.root, "catalog.json"), (catalog.root, f"{collection}/collection.json")}
    for asset in data.get("assets", {}).values():
        keys.add((catalog.root, posixpath.normpath(posixpath.join(collection, asset["href"]))))
    for item in read_items(catalog, collection).values():
        keys.add((catalog.root, item["_key"]))
        for asset in item["assets"].values():
            href = asset["href"]
            if catalog.is_local and "://" not in href:
                href = str((Path(catalog.href(item["_key"])).parent / href).resolve())
            key = target.key_of(href)
            assert key is not None
            keys.add((target.root, key))
    return keys


def orphans(catalog: Store, target: Store, collection: str) -> list[str]:
    """Files in the catalog or target that the published catalog does not need (lock files
    for the OS locks excepted): what a killed or losing run must not leave behind."""
    needed = referenced_keys(catalog, target, collection)
    out = []
    for store in {catalog.root: catalog, target.root: target}.values():
        for info in store.list_files():
            if (store.root, info.key) in needed or posixpath.basename(info.key).endswith(".lock"):
                continue
            out.append(f"{store.root}/{info.key}")
    return sorted(out)


def assert_all_ingested_and_walkable(catalog: Path, report: Any) -> None:
    """Every input of `report` was ingested, the local catalog at `catalog` passes
    `byod validate`, and a pystac walk from its root finds exactly the reported items."""
    import pystac

    from byod.report import Status
    from byod.validate import validate_catalog

    assert {r.input: r.status for r in report.rows if r.status is not Status.INGESTED} == {}
    assert validate_catalog(str(catalog / "catalog.json"))[1] == []
    walked = pystac.Catalog.from_file(str(catalog / "catalog.json"))
    ids = {item.id for item in walked.get_items(recursive=True)}
    assert ids == {i for row in report.rows for i in row.item_ids}
