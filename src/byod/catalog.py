"""Static-catalog publishing that never lies and loses nothing to concurrent runs.

Layout (keys below the catalog root; `<v>` is the publishing run's version, `new_version`):

    catalog.json                                  root: links every collection
    <collection>/collection.json                  THE pointer: links exactly one version of
                                                  each item and of the index
    <collection>/<item>/<v>/<item>.json           an item version, never rewritten
    <collection>/_index/<v>/items-<n>.parquet     an index version (the `collection-mirror`
                                                  asset of the collection, stac-geoparquet)
    <collection>/_runs/<v>.json                   the marker of a run in progress
    <collection>/_superseded/<v>.json             what run <v>'s switch left unreferenced

COGs and thumbnails are stored under the same `<collection>/<item>/<v>/` folders in the
target. Everything a version names is written first, under keys no reader knows yet; then
`collection.json` is switched in one atomic write. The files of the versions it no longer
names are listed, before the switch, in `_superseded/<v>.json`, and deleted only after a grace
period (`collect_superseded`, by this run or any later one, also after a kill), and only those
the collection as published then does not name. A reader that read `collection.json` just
before a switch therefore still finds what it names for the grace period: it sees the old
set or the new one, never a mix, and every item describes exactly the bytes at its hrefs.
The root catalog is merged on every publish to link every collection present (a run killed
between a collection's switch and the root update is repaired by the next run anywhere).

Concurrent runs merge: the switch is a read-modify-write of `collection.json`
(`Store.update_text`: an OS lock locally, ETag `If-Match` on Azure, re-read and merged on
conflict), so each run adds its own items to whatever the others published meanwhile.

Hrefs are relative when the catalog and the assets are on the local disk (a self-contained
catalog that survives a move of both); otherwise absolute.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pystac

from byod.extents import union_bbox, union_interval
from byod.storage import Store

log = logging.getLogger(__name__)

ROOT_ID = "byod"
ROOT_KEY = "catalog.json"
ROOT_DESCRIPTION = "Rasters ingested by byod as Cloud Optimized GeoTIFFs."
# Item properties summarised on the collection as the sorted set of their values.
SUMMARISED = ("proj:code",)
# Numeric item properties summarised as a {minimum, maximum} range.
RANGES = ("eo:cloud_cover",)
# stac-geoparquet spec: a collection-level asset of this media type and role mirrors its items.
INDEX_ASSET = "geoparquet-items"
INDEX_MEDIA_TYPE = "application/vnd.apache.parquet"
INDEX_ROLE = "collection-mirror"
LEGACY_INDEX = "items.parquet"  # byod before versioned indexes: `<collection>/items.parquet`
RUNS = "_runs"
SUPERSEDED = "_superseded"
# How long superseded files stay readable after a switch (readers that read the old
# collection.json); IngestSettings.superseded_grace_s overrides it.
GRACE_SECONDS = 600.0
# `20261129T203015-3fa2c1`: sortable by time, unique per run; the upper-case T keeps it apart
# from item ids (lower-case slugs).
VERSION = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")


@dataclass(frozen=True)
class CollectionInfo:
    id: str
    description: str
    license: str
    title: str | None = None
    providers: tuple[dict[str, Any], ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass
class State:
    """A collection as published: its items (asset hrefs absolute), the key of the item
    version it links for each, and the key of its index (None if it has none)."""

    items: dict[str, pystac.Item] = field(default_factory=dict)
    item_keys: dict[str, str] = field(default_factory=dict)
    index: str | None = None
    text: str | None = None  # collection.json as read


def new_version() -> str:
    """A fresh version for one run's files: UTC time to the second and 24 random bits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def collection_key(collection_id: str) -> str:
    return f"{collection_id}/collection.json"


def versioned_key(collection_id: str, item_id: str, version: str, name: str) -> str:
    """Key of a file of one item version: `<collection>/<item>/<version>/<name>`."""
    return f"{collection_id}/{item_id}/{version}/{name}"


def item_key(collection_id: str, item_id: str, version: str) -> str:
    return versioned_key(collection_id, item_id, version, f"{item_id}.json")


def index_key(collection_id: str, version: str, attempt: int = 0) -> str:
    return f"{collection_id}/_index/{version}/items-{attempt}.parquet"


def run_marker_key(collection_id: str, version: str) -> str:
    return f"{collection_id}/{RUNS}/{version}.json"


def superseded_key(collection_id: str, version: str) -> str:
    return f"{collection_id}/{SUPERSEDED}/{version}.json"


def version_of(key: str) -> str | None:
    """The run version a key belongs to (a folder, or the name of a run marker), if any."""
    parts = key.split("/")
    parts[-1] = posixpath.splitext(parts[-1])[0]
    return next((p for p in parts if VERSION.fullmatch(p)), None)


def read_state(
    store: Store, collection_id: str, text: str | None = None, *, use_index: bool = True
) -> State:
    """The published state of a collection, from `text` (collection.json as just read) or
    from the store. Items come from the index the collection links (one read; PITFALLS:
    10,000 item files take ~9 s), else, or with `use_index=False`, from each linked item
    file (collections written before byod kept versioned indexes)."""
    key = collection_key(collection_id)
    if text is None:
        if not store.exists(key):
            return State()
        text = store.read_text(key)
    collection = json.loads(text)
    state = State(text=text, index=_index_of(store, collection_id, collection))
    for link in collection.get("links", []):
        if link.get("rel") == "item":
            state.item_keys[_stem(link["href"])] = _resolve(key, link["href"])
    indexed: dict[str, dict[str, Any]] = {}
    if state.index is not None and use_index:
        from byod.index import read_index_items

        indexed = read_index_items(store, state.index)
    for item_id, item_path in state.item_keys.items():
        if item_id in indexed:
            # migrate=False everywhere byod reads its items: pystac's migration of projection
            # v1.2 drops proj:epsg, which items.py writes for stackstac (issue 9).
            state.items[item_id] = pystac.Item.from_dict(
                indexed[item_id], preserve_dict=False, migrate=False
            )
            continue
        data = json.loads(store.read_text(item_path))
        item = pystac.Item.from_dict(data, preserve_dict=False, migrate=False)
        item_href = store.href(item_path)
        for asset in item.assets.values():
            asset.href = _absolute(asset.href, item_href)
        state.items[item_id] = item
    return state


def load_items(store: Store, collection_id: str) -> dict[str, pystac.Item]:
    """The items the collection links to, read from their JSON files as a STAC client
    walking the catalog would (asset hrefs made absolute); {} if none."""
    return read_state(store, collection_id, use_index=False).items


def current_index_key(store: Store, collection_id: str) -> str | None:
    """The key of the index the collection links now (None if it has none)."""
    key = collection_key(collection_id)
    if not store.exists(key):
        return None
    return _index_of(store, collection_id, json.loads(store.read_text(key)))


def current_index_keys(store: Store, collection_id: str) -> list[str]:
    """The keys of the index partitions `collection.json` names now (its `collection-mirror`
    assets: one per month, `<collection>/_months/<YYYY-MM>/<v>/items.parquet`), sorted; for a
    collection in the layout before months, its single index; [] when there is none."""
    key = collection_key(collection_id)
    if not store.exists(key):
        return []
    return _index_keys(store, collection_id, json.loads(store.read_text(key)))


def _index_keys(store: Store, collection_id: str, collection: dict[str, Any]) -> list[str]:
    keys = sorted(
        _resolve(collection_key(collection_id), asset["href"])
        for asset in collection.get("assets", {}).values()
        if INDEX_ROLE in (asset.get("roles") or []) and "://" not in asset["href"]
    )
    if keys:
        return keys
    legacy = f"{collection_id}/{LEGACY_INDEX}"
    return [legacy] if store.exists(legacy) else []


def _index_of(store: Store, collection_id: str, collection: dict[str, Any]) -> str | None:
    for asset in collection.get("assets", {}).values():
        if INDEX_ROLE in (asset.get("roles") or []) and "://" not in asset["href"]:
            return _resolve(collection_key(collection_id), asset["href"])
    legacy = f"{collection_id}/{LEGACY_INDEX}"
    return legacy if store.exists(legacy) else None


def _stem(href: str) -> str:
    return posixpath.basename(href).removesuffix(".json")


def _resolve(key: str, href: str) -> str:
    if "://" in href:
        return href
    return posixpath.normpath(posixpath.join(posixpath.dirname(key), href))


def _absolute(href: str, relative_to: str) -> str:
    if "://" in href or os.path.isabs(href):
        return href
    if "://" in relative_to:
        return posixpath.normpath(posixpath.join(posixpath.dirname(relative_to), href)).replace(
            ":/", "://", 1
        )
    return os.path.normpath(os.path.join(os.path.dirname(relative_to), href))


def asset_hrefs(items: Iterable[pystac.Item]) -> set[str]:
    return {a.href for item in items for a in item.assets.values()}


def publish(
    store: Store,
    info: CollectionInfo,
    new: dict[str, pystac.Item],
    removed: Iterable[str],
    version: str,
    on_switch: Callable[[], None] = lambda: None,
) -> Published:
    """Publish `new` items (asset hrefs absolute, their files already stored) and drop the
    `removed` ids, merged into whatever the collection holds at the moment of the switch.

    Order: the new item versions; then, as one conditional read-merge-write of
    `collection.json`, an index version of the merged set, the manifest of what the switch
    leaves unreferenced (`_superseded/<version>.json`: item and index keys, asset hrefs) and
    the collection linking the new set; then the root catalog (merged, linking every
    collection present). Nothing a reader may still hold is deleted here: superseded files
    go after a grace period (`collect_superseded`). Returns the asset hrefs the switch
    superseded (informational) and the items it renamed: a new item whose id another run
    gave meanwhile to another input (another `byod:source`) gets the id `_plan` would have
    given it had it seen that item (`sources.disambiguated_id`), so neither run's item is
    lost; `Published.replaced` names the new ids that took the place of an item another run
    published meanwhile for the same input (so its report row says `replaced`).
    `on_switch` is called as soon as `collection.json` points at the new items: an error
    after it leaves a published catalog (and files the next run removes), not an old one.

    Raises `storage.ConflictError` when other writers won `UPDATE_ATTEMPTS` times running.
    """
    from byod.index import write_index

    new_keys = {}
    for item_id in sorted(new):
        key = item_key(info.id, item_id, version)
        store.write_text(key, _dumps(_item_dict(store, new[item_id], key)))
        new_keys[item_id] = key
    gone = set(removed) - set(new)
    written: list[str] = []  # index versions, one per attempt that needed one
    seen: list[tuple[State, str, dict[str, str]]] = []  # per attempt: read, index, renames
    moved: dict[str, tuple[pystac.Item, str]] = {}  # renamed items, written once
    # What any attempt's switch would leave unreferenced (a superset is safe: the collector
    # deletes only what the collection as published then does not name).
    manifest: dict[str, set[str]] = {"catalog": set(), "assets": set()}

    def place(state: State) -> tuple[dict[str, pystac.Item], dict[str, str], dict[str, str]]:
        items, keys, renamed = {}, {}, {}
        for item_id in sorted(new):
            item, key = new[item_id], new_keys[item_id]
            other = state.items.get(item_id)
            if other is not None and _source(other) != _source(item):
                if item_id not in moved:
                    item = item.clone()
                    item.id = _free_id(item_id, _source(item), state.items)
                    key = item_key(info.id, item.id, version)
                    store.write_text(key, _dumps(_item_dict(store, item, key)))
                    moved[item_id] = (item, key)
                item, key = moved[item_id]
                renamed[item_id] = item.id
            items[item.id], keys[item.id] = item, key
        return items, keys, renamed

    def switch(text: str | None) -> str:
        state = read_state(store, info.id, text)
        placed, placed_keys, renamed = place(state)
        items = {k: v for k, v in state.items.items() if k not in gone} | placed
        keys = {k: v for k, v in state.item_keys.items() if k not in gone} | placed_keys
        index = state.index
        if new or gone & state.items.keys() or index is None or version_of(index) is None:
            index = index_key(info.id, version, len(written))
            written.append(index)
            write_index(store, index, (items[k] for k in sorted(items)))
        seen.append((state, index, renamed))
        _record_superseded(store, superseded_key(info.id, version), manifest, state,
                           keys, index, asset_hrefs(items.values()))  # fmt: skip
        return _dumps(_collection_dict(info, items, keys, index))

    store.update_text(collection_key(info.id), switch)
    on_switch()
    before, linked, renamed = seen[-1]
    store.update_text(ROOT_KEY, lambda text: _dumps(_root_dict(text, info, store)))
    # Never linked by any collection.json: no reader knows them, delete them now.
    unlinked = [i for i in written if i != linked] + [new_keys[i] for i in renamed]
    unlinked += [k for i, (_, k) in moved.items() if i not in renamed]
    for key in unlinked:
        remove_file(store, key)
    kept = set(new) - set(renamed)
    touched = (kept | gone) & before.item_keys.keys()
    superseded = asset_hrefs(before.items[i] for i in touched) - asset_hrefs(new.values())
    return Published(sorted(superseded), renamed, sorted(kept & before.items.keys()))


def _record_superseded(
    store: Store,
    key: str,
    manifest: dict[str, set[str]],
    before: State,
    keys: dict[str, str],
    index: str | None,
    hrefs: set[str],
) -> None:
    """Add to the manifest `key` what switching from `before` to (`keys`, `index`, asset
    `hrefs`) leaves unreferenced; written before the switch, so a kill right after it
    leaves a list for the next run instead of orphans."""
    linked = set(keys.values()) | {index}
    catalog_keys = {k for k in [*before.item_keys.values(), before.index] if k}
    more_keys = {k for k in catalog_keys - linked if "://" not in k} - manifest["catalog"]
    more_assets = asset_hrefs(before.items.values()) - hrefs - manifest["assets"]
    if not more_keys and not more_assets:
        return
    manifest["catalog"] |= more_keys
    manifest["assets"] |= more_assets
    store.write_text(key, _dumps({
        "written": datetime.now(UTC).isoformat(),
        "catalog": sorted(manifest["catalog"]), "assets": sorted(manifest["assets"]),
    }))  # fmt: skip


def collect_superseded(
    store: Store,
    collection_id: str,
    stores: Iterable[Store],
    grace_s: float,
    running: Callable[[str], bool],
) -> list[str]:
    """Delete the files listed by `_superseded/<v>.json` manifests that are at least
    `grace_s` seconds old and whose run `v` is over (`running(v)` False), except what the
    collection as published now names; then the manifests. Catalog keys are deleted from
    `store`, asset hrefs from whichever of `stores` holds them. Returns the keys and hrefs
    deleted. A manifest that cannot be read (its writer was killed mid-write: writes are
    atomic, so it is absent or whole) is left for a later run."""
    due: list[tuple[str, dict[str, Any]]] = []
    now = datetime.now(UTC)
    for info in store.list_files(f"{collection_id}/{SUPERSEDED}/"):
        version = version_of(info.key)
        if version is None or not info.key.endswith(".json") or running(version):
            continue
        data = json.loads(store.read_text(info.key))
        if (now - datetime.fromisoformat(data["written"])).total_seconds() >= grace_s:
            due.append((info.key, data))
    if not due:
        return []
    state = read_state(store, collection_id)
    named = {k for k in [*state.item_keys.values(), state.index] if k}
    named_assets = asset_hrefs(state.items.values())
    deleted: list[str] = []
    for manifest_key, data in due:
        for key in data.get("catalog", []):
            if key not in named:
                remove_file(store, key)
                deleted.append(key)
        for href in data.get("assets", []):
            if href in named_assets:
                continue
            holder = next((s for s in stores if s.key_of(href) is not None), None)
            if holder is not None:
                remove_file(holder, str(holder.key_of(href)))
                deleted.append(href)
        store.remove(manifest_key)
    return deleted


@dataclass(frozen=True)
class Published:
    superseded: list[str]  # asset hrefs no published item points at any more
    renamed: dict[str, str]  # new item id -> the id it was published under
    replaced: list[str] = field(default_factory=list)  # new ids that replaced a published item


def _source(item: pystac.Item) -> Any:
    return item.properties.get("byod:source")


def _free_id(item_id: str, source: Any, taken: dict[str, pystac.Item]) -> str:
    """The id of an item whose id another input took: the hash of its source path added, as
    `_plan` does (`sources.disambiguated_id`)."""
    from byod.sources import disambiguated_id, item_id_for

    with_hash = disambiguated_id(str(source))
    candidate = with_hash if item_id == item_id_for(str(source)) else (
        f"{item_id}-{with_hash.rsplit('-', 1)[1]}")  # fmt: skip
    if candidate in taken and _source(taken[candidate]) != source:
        candidate = f"{candidate}-{uuid.uuid4().hex[:6]}"  # a collision of hashes, too
    return candidate


def remove_file(store: Store, key: str) -> None:
    """Delete a file, and its version folder once empty (local disks keep empty folders)."""
    store.remove(key)
    if store.is_local and version_of(key):
        folder = os.path.dirname(store.href(key))
        if VERSION.fullmatch(os.path.basename(folder)):
            with contextlib.suppress(OSError):  # not empty: the version has other files
                os.rmdir(folder)


def _item_dict(store: Store, item: pystac.Item, key: str) -> dict[str, Any]:
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    collection_id = key.split("/", 1)[0]
    folder = posixpath.dirname(key)
    data["collection"] = collection_id
    up = posixpath.relpath(collection_key(collection_id), folder)
    data["links"] = [
        {"rel": "root", "href": posixpath.relpath(ROOT_KEY, folder),
         "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": up, "type": pystac.MediaType.JSON},
        {"rel": "collection", "href": up, "type": pystac.MediaType.JSON},
    ]  # fmt: skip
    item_href = store.href(key)
    for asset in data["assets"].values():
        asset["href"] = _relative_if_local(asset["href"], item_href, store.is_local)
    return data


def _relative_if_local(href: str, start: str, catalog_is_local: bool) -> str:
    if catalog_is_local and "://" not in href and os.path.isabs(href):
        return os.path.relpath(href, os.path.dirname(start))
    return href


def _collection_dict(info: CollectionInfo, items: dict[str, pystac.Item],
                     keys: dict[str, str], index: str | None) -> dict[str, Any]:  # fmt: skip
    ordered = [items[k] for k in sorted(items)]
    if ordered:
        bbox = union_bbox(i.bbox for i in ordered if i.bbox)
        start, end = union_interval(_interval(i) for i in ordered)
        extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]]))
    else:
        open_interval: list[list[datetime | None]] = [[None, None]]
        extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                               pystac.TemporalExtent(open_interval))  # fmt: skip
    summaries: dict[str, Any] = {}
    for field_name in SUMMARISED:
        values = sorted({str(i.properties[field_name]) for i in ordered
                         if i.properties.get(field_name)})  # fmt: skip
        if values:
            summaries[field_name] = values
    for field_name in RANGES:
        numbers = [float(i.properties[field_name]) for i in ordered if field_name in i.properties]
        if numbers:
            summaries[field_name] = {"minimum": min(numbers), "maximum": max(numbers)}
    collection = pystac.Collection(
        id=info.id,
        description=info.description,
        extent=extent,
        license=info.license,
        title=info.title,
        summaries=pystac.Summaries(summaries),
        keywords=list(info.keywords) or None,
        providers=[pystac.Provider.from_dict(p) for p in info.providers] or None,
    )
    data = collection.to_dict(include_self_link=False, transform_hrefs=False)
    here = info.id

    def rel(key: str) -> str:
        return "./" + posixpath.relpath(key, here)

    data["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": "../catalog.json", "type": pystac.MediaType.JSON},
        *(
            {"rel": "item", "href": rel(keys[i.id]), "type": pystac.MediaType.GEOJSON}
            for i in ordered
        ),
    ]
    if index is not None:
        data["assets"] = {INDEX_ASSET: {
            "href": rel(index), "type": INDEX_MEDIA_TYPE, "roles": [INDEX_ROLE],
            "title": "Every item of the collection as stac-geoparquet (byod's search index)",
        }}  # fmt: skip
    return data


def _interval(item: pystac.Item) -> tuple[Any, Any]:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return start, end


def _root_dict(text: str | None, info: CollectionInfo, store: Store) -> dict[str, Any]:
    """The root catalog `text` (None: a new one) with a child link to the collection, keeping
    the other collections it links to and adding one for every collection present that it
    misses (a run killed between its switch and this update; see `collection_ids`)."""
    children: dict[str, dict[str, Any]] = {}
    if text is not None:
        root = json.loads(text)
        for link in root.get("links", []):
            if link.get("rel") == "child":
                children[link["href"]] = link
    else:
        root = pystac.Catalog(id=ROOT_ID, description=ROOT_DESCRIPTION).to_dict(
            include_self_link=False, transform_hrefs=False
        )
    href = f"./{info.id}/collection.json"
    children[href] = {"rel": "child", "href": href, "type": pystac.MediaType.JSON,
                      "title": info.title or info.id}  # fmt: skip
    for other in collection_ids(store):
        href = f"./{other}/collection.json"
        if href not in children:
            title = json.loads(store.read_text(collection_key(other))).get("title")
            children[href] = {"rel": "child", "href": href, "type": pystac.MediaType.JSON,
                              "title": title or other}  # fmt: skip
    links = [link for link in root.get("links", []) if link.get("rel") not in {"child", "root"}]
    root["links"] = [
        {"rel": "root", "href": "./catalog.json", "type": pystac.MediaType.JSON},
        *links,
        *(children[k] for k in sorted(children)),
    ]
    return root


def collection_ids(store: Store) -> list[str]:
    """The collections present in a catalog: top-level folders holding a `collection.json`
    (one listing of the root's folders, then one existence check each)."""
    return sorted(name for name in store.list_folders() if store.exists(collection_key(name)))


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
