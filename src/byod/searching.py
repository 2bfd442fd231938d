"""Search a catalog: its collections (the root's child links), each collection's index
partitions as `collection.json` names them now (`catalog.current_index_keys`), searched by
`index.search_partitions`; a collection without an index, and the reference answer
(`walk_catalog`), by walking its JSON items as a STAC client would."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from typing import Any

from byod.catalog import current_index_keys, load_items
from byod.index import Query, SearchError, matches, search_partitions
from byod.keys import ROOT_KEY, collection_key
from byod.storage import Store


def collection_ids(store: Store) -> list[str]:
    """The collections the root catalog links. Raises `SearchError` when there is no root."""
    if not store.exists(ROOT_KEY):
        raise SearchError(f"{store.href(ROOT_KEY)}: no catalog there")
    root = json.loads(store.read_text(ROOT_KEY))
    return sorted(posixpath.dirname(posixpath.normpath(link["href"]))
                  for link in root.get("links", []) if link.get("rel") == "child")  # fmt: skip


def search_store(store: Store, query: Query, collections: Sequence[str] | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Matching items (as STAC dicts with absolute asset hrefs), from the index only.

    Each collection's index partitions (`catalog.current_index_keys`) are read but those
    whose month starts after the query's end; only the filter columns are read first, and
    only the hits are turned into items. A partition removed between reading
    collection.json and reading it (a publish switched the collection and its grace period
    ran out) makes the collection be read again, once, with the partitions it names then.
    With `limit`, collections and their partitions are read in order until that many items
    matched. `query` is an already checked `Query` (EPSG:4326 bbox, UTC period, percent).
    Raises `SearchError` when there is no root catalog or a named collection is not in it.
    """
    out: list[dict[str, Any]] = []
    known = collection_ids(store)
    for collection_id in collections or known:
        if collection_id not in known and not store.exists(collection_key(collection_id)):
            raise SearchError(f"{collection_id}: no such collection in {store.href(ROOT_KEY)}")
        left = None if limit is None else limit - len(out)
        out += _search_collection(store, collection_id, query, left)
        if limit is not None and len(out) >= limit:
            break
    return out


def _search_collection(store: Store, collection_id: str, query: Query, limit: int | None
                       ) -> list[dict[str, Any]]:  # fmt: skip
    """At most `limit` matching items of one collection, `collection` set."""
    keys = current_index_keys(store, collection_id)
    if not keys:  # published before byod wrote indexes: walk the JSON instead
        found = []
        for item in load_items(store, collection_id).values():
            data = {**item.to_dict(transform_hrefs=False), "collection": collection_id}
            if matches(data, query):
                found.append(data)
        return found[:limit]
    try:
        return search_partitions(store, keys, query, collection_id, limit)
    except FileNotFoundError:
        again = current_index_keys(store, collection_id)
        if again == keys:
            raise
        return search_partitions(store, again, query, collection_id, limit)


def walk_catalog(store: Store, query: Query) -> list[dict[str, Any]]:
    """The reference answer: every item of every collection, read from its JSON and matched
    one by one (what a STAC client does on a static catalog)."""
    out = []
    for collection_id in collection_ids(store):
        for item in load_items(store, collection_id).values():
            data = item.to_dict(transform_hrefs=False)
            if matches(data, query):
                out.append(data)
    return out
