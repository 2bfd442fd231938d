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
    """Item id -> the item file the collection links to (local catalog), through its month
    sub-catalogs (or, in the layout before months, its item links)."""
    folder = catalog / collection
    data = json.loads((folder / "collection.json").read_text("utf-8"))
    out = {Path(link["href"]).stem: (folder / link["href"]).resolve()
           for link in data["links"] if link["rel"] == "item"}  # fmt: skip
    for child in month_catalogs(catalog, collection):
        month = json.loads(child.read_text("utf-8"))
        out |= {Path(link["href"]).stem: (child.parent / link["href"]).resolve()
                for link in month["links"] if link["rel"] == "item"}  # fmt: skip
    return out


def month_catalogs(catalog: Path, collection: str) -> list[Path]:
    """The sub-catalog files the collection's child links name (local catalog)."""
    folder = catalog / collection
    data = json.loads((folder / "collection.json").read_text("utf-8"))
    return [(folder / link["href"]).resolve() for link in data["links"] if link["rel"] == "child"]


def item_keys(store: Store, collection: str) -> dict[str, str]:
    """Item id -> the key of the item file the collection links (any store), through its
    month sub-catalogs (child links) or its own item links."""
    key = f"{collection}/collection.json"
    out: dict[str, str] = {}
    queue = [key]
    while queue:
        current = queue.pop()
        data = json.loads(store.read_text(current))
        for link in data["links"]:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(current), link["href"]))
            if link["rel"] == "item":
                out[posixpath.basename(target).removesuffix(".json")] = target
            elif link["rel"] == "child":
                queue.append(target)
    return out


def read_items(store: Store, collection: str) -> dict[str, dict[str, Any]]:
    """Item id -> the item dict, read from the files the collection links (any store),
    with each asset's href made into the store key it points at (`key`), when it has one."""
    out = {}
    for item_key in item_keys(store, collection).values():
        item = json.loads(store.read_text(item_key))
        item["_key"] = item_key
        out[item["id"]] = item
    return out


def catalog_keys(store: Store, collection: str) -> set[str]:
    """Keys of the catalog files the collection names: itself, its month sub-catalogs and
    index partitions (its assets), not its items."""
    key = f"{collection}/collection.json"
    data = json.loads(store.read_text(key))
    keys = {key}
    for ref in [*data.get("assets", {}).values(),
                *(link for link in data["links"] if link["rel"] == "child")]:  # fmt: skip
        keys.add(posixpath.normpath(posixpath.join(collection, ref["href"])))
    return keys


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
    partitions the collection links hold exactly the linked items, each equal to its item
    file (checksums and properties)."""
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
    from byod.catalog import current_index_keys
    from byod.index import read_index_items

    indexed: dict[str, dict[str, Any]] = {}
    partitions = current_index_keys(catalog, collection)
    assert partitions, "the collection names no index partition"
    for key in partitions:
        found = read_index_items(catalog, key)
        assert not set(found) & set(indexed), "an item in two partitions"
        indexed |= found
    assert sorted(indexed) == sorted(items)
    for item_id, row in indexed.items():
        checksums = {k: a.get("file:checksum") for k, a in row["assets"].items()}
        assert checksums == {k: a.get("file:checksum") for k, a in items[item_id]["assets"].items()}
        assert row["properties"] == items[item_id]["properties"]
    return items


def referenced_keys(catalog: Store, target: Store, collection: str) -> set[tuple[str, str]]:
    """(store root, key) of every file the published collection needs."""
    keys = {(catalog.root, "catalog.json")}
    keys |= {(catalog.root, k) for k in catalog_keys(catalog, collection)}
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
    for the OS locks and the folder's byod marker, `keys.OUTPUT_MARKER`, excepted): what a
    killed or losing run must not leave behind."""
    from byod.keys import OUTPUT_MARKER

    needed = referenced_keys(catalog, target, collection)
    out = []
    for store in {catalog.root: catalog, target.root: target}.values():
        for info in store.list_files():
            if (store.root, info.key) in needed or posixpath.basename(info.key).endswith(".lock"):
                continue
            if info.key == OUTPUT_MARKER:
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
