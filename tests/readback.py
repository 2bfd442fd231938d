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
