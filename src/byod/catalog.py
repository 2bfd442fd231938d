"""Static-catalog publishing that never lies, loses nothing to concurrent runs, and costs what
a run changes, not what the collection holds (issue 13).

Layout (keys below the catalog root, all made by `byod.keys`; `<v>` is the publishing run's
version, `keys.new_version`):

    catalog.json                                  root: links every collection (rewritten
                                                  only when that changes)
    <collection>/collection.json                  THE pointer: a child link to one version of
                                                  each month page's sub-catalog, a
                                                  `collection-mirror` asset per page's index
                                                  partition, and `byod:months` (their keys and
                                                  per-page aggregates: count, bbox, interval,
                                                  proj:code, cloud range), from which the
                                                  extent and summaries come; its size grows
                                                  with pages (months, and a page per
                                                  `PAGE_ITEMS` items of a crowded month)
    <collection>/_months/<YYYY-MM>/<v>/catalog.json   a month's first page: item links
    <collection>/_months/<YYYY-MM>/<v>/items.parquet  its index partition (stac-geoparquet,
                                                  byod.index)
    <collection>/_months/<YYYY-MM>/<v>/catalog-p<n>.json, items-p<n>.parquet
                                                  the month's page n >= 2 (`YYYY-MM-p<n>` in
                                                  `byod:months`)
    <collection>/<item>/<v>/<item>.json           an item version, never rewritten
    <collection>/_runs/<v>.json                   the marker of a run in progress
    <collection>/_superseded/<v>.json             what run <v>'s switches left unreferenced

The month of an item is the UTC month of its start (start_datetime, else datetime); time-less
items (start 0001-01-01) are in `0001-01`, titled "undated". A month is cut into pages of
at most `PAGE_ITEMS` items (`_paginate`): an item stays in its page while it stays in its
month, new items go to the month's last page, then to new pages after it; so a publish
rewrites the pages it touches, whatever the month holds. Items link the collection as their
parent (item files are immutable; page versions change). A publish writes new versions of the
pages it touches only (new, replaced, removed and moved items; `-<n>` names the run's n-th
rewrite of a page: a later publish of the same run, or a rewrite after a lost race; no key is
ever written twice), reading those pages' partitions and sub-catalogs, and finds which page an
id is in from the index's columns (`_entries_of`: the entries of the ids it adds or removes,
only the `id` column of the other rows; partitions read before are cached per immutable key).
A month written before pages (one partition, however large) is its first page: the next
publish adds pages after it and leaves it as it is, until a publish rewrites it anyway (a
replaced or removed item), which splits it into pages. A collection of the layout before months
(item links and one `_index/<v>/items-<n>.parquet` in collection.json) is read by
`read_layout` (`Layout.legacy`) and migrated by its next publish: every month written (in
pages), its item files kept as they are.

COGs and thumbnails are stored under the same `<collection>/<item>/<v>/` folders in the
target. Everything a version names is written first, under keys no reader knows yet; then
`collection.json` is switched in one atomic write. The files of the versions it no longer
names are listed, before the switch, in `_superseded/<v>.json`, and deleted only after a grace
period (`collect_superseded`, by this run or any later one, also after a kill), and only those
the collection as published then does not name. A reader that read `collection.json` just
before a switch therefore still finds what it names for the grace period: it sees the old
set or the new one, never a mix, and every item describes exactly the bytes at its hrefs.
The root catalog is merged after every publish to link the collection; a collection it does
not link yet is named in its `byod:unlinked` list before the switch, so a run killed between
the switch and the root update is repaired by the next run into any collection
(`repair_root`: one read of the root, no listing of the catalog's folders).

Concurrent runs merge: the switch is a read-modify-write of `collection.json`
(`Store.update_text`: an OS lock locally, ETag `If-Match` on Azure, re-read and merged on
conflict), so each run adds its own items to whatever the others published meanwhile. A new
item whose id another input holds is renamed (`_free_id`) against the entries each attempt
re-read, never an earlier attempt's: another run may have taken that name meanwhile.

Hrefs are relative when the catalog and the assets are on the local disk (a self-contained
catalog that survives a move of both); otherwise absolute.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import posixpath
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from byod.extents import union_bbox, union_interval
from byod.keys import (
    ROOT_ID,
    ROOT_KEY,
    VERSION,
    collection_key,
    item_key,
    legacy_index_key,
    month_keys,
    root_href_of,
    superseded_folder,
    superseded_key,
    version_of,
)
from byod.storage import UPDATE_ATTEMPTS, Store

if TYPE_CHECKING:  # pystac is imported where items are built: a no-op reads no item
    import pystac

log = logging.getLogger(__name__)

ROOT_DESCRIPTION = "Rasters ingested by byod as Cloud Optimized GeoTIFFs."
# Item properties summarised on the collection as the sorted set of their values.
SUMMARISED = ("proj:code",)
# Numeric item properties summarised as a {minimum, maximum} range.
RANGES = ("eo:cloud_cover",)
# stac-geoparquet spec: a collection-level asset of this media type and role mirrors its items.
INDEX_ASSET = "geoparquet-items"
INDEX_MEDIA_TYPE = "application/vnd.apache.parquet"
INDEX_ROLE = "collection-mirror"
# collection.json's record of its months (keys and aggregates): what a publish starts from.
MONTHS_FIELD = "byod:months"
UNDATED = "0001-01"  # the month of time-less items (temporal.py: start 0001-01-01)
# The most items a month's page holds. A publish rewrites the pages it touches (new items go
# to the month's last page, a new one when it is full), so this bounds a publish's rewriting
# whatever a month holds (5,000 tiles of one survey date): writing a page of 1,000 items
# costs about 0.1-0.2 s of CPU; and it keeps collection.json at one child per 1,000 items
# of a crowded month (100 pages at 100,000 items: as many as 100 months of 1,000).
PAGE_ITEMS = 1000
# The root catalog's list of collections being published for the first time, not linked
# yet (`_announce`, `repair_root`); absent when empty.
UNLINKED_FIELD = "byod:unlinked"
# (store root, collection) this process saw linked by the root catalog: asked once.
_LINKED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class CollectionInfo:
    """The collection's own fields (STAC Collection 1.1.0) as the run configures them:
    `license` an SPDX identifier or `other`; `providers` STAC Provider objects (JSON)."""

    id: str
    description: str
    license: str
    title: str | None = None
    providers: tuple[dict[str, Any], ...] = ()
    keywords: tuple[str, ...] = ()
    # The fields (`COLLECTION_FIELDS`) the run was given; the others keep the published
    # collection's values (`over`). None: every field is as given here.
    given: frozenset[str] | None = None

    def over(self, published: dict[str, Any]) -> CollectionInfo:
        """These fields over the collection as published (`Layout.fields`): a field the run
        was not given keeps its published value (a title given once stays until another is
        given), falling back to this default only where the collection has none."""
        if self.given is None or not published:
            return self
        kept: dict[str, Any] = {}
        for name in COLLECTION_FIELDS:
            if name in self.given or name not in published:
                continue
            value = published[name]
            kept[name] = tuple(value or ()) if name in ("keywords", "providers") else value
        return replace(self, **kept)


@dataclass
class State:
    """A collection in the layout before month sub-catalogs (item links and one index in
    `collection.json`): its items (asset hrefs absolute), the key of the item version it
    links for each, and the key of its index. Read only to walk or migrate such a collection."""

    items: dict[str, pystac.Item] = field(default_factory=dict)
    item_keys: dict[str, str] = field(default_factory=dict)
    index: str | None = None
    text: str | None = None  # collection.json as read


@dataclass(frozen=True)
class Month:
    """One page of a month of a collection as `collection.json` names it (`byod:months`, by
    `page_name`): the keys of its sub-catalog and index partition versions, and the
    aggregates the collection's extent and summaries are computed from (so a publish never
    reads the other pages' items)."""

    catalog: str
    index: str
    count: int
    bbox: list[float] | None = None  # W, S, E, N (EPSG:4326), None if no item has one
    interval: tuple[str | None, str | None] = (None, None)  # RFC 3339, UTC
    codes: tuple[str, ...] = ()  # the months' proj:code values
    cloud: tuple[float, float] | None = None  # eo:cloud_cover minimum, maximum

    def to_json(self, collection_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "catalog": _rel(collection_id, self.catalog),
            "index": _rel(collection_id, self.index),
            "count": self.count,
            "interval": list(self.interval),
        }
        if self.bbox is not None:
            data["bbox"] = self.bbox
        if self.codes:
            data["proj:code"] = list(self.codes)
        if self.cloud is not None:
            data["eo:cloud_cover"] = list(self.cloud)
        return data

    @classmethod
    def from_json(cls, collection_id: str, data: dict[str, Any]) -> Month:
        here = collection_key(collection_id)
        cloud = data.get("eo:cloud_cover")
        return cls(
            _resolve(here, data["catalog"]),
            _resolve(here, data["index"]),
            int(data["count"]),
            data.get("bbox"),
            (data["interval"][0], data["interval"][1]),
            tuple(data.get("proj:code", ())),
            None if cloud is None else (float(cloud[0]), float(cloud[1])),
        )


@dataclass
class Layout:
    """`collection.json` as read: its month pages (by `page_name`), or (`legacy`) a
    collection in the layout before months, which the next publish migrates."""

    text: str | None = None
    months: dict[str, Month] = field(default_factory=dict)
    legacy: State | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # its own (`COLLECTION_FIELDS`)


class Entry(NamedTuple):
    """What publishing and planning need of one published item (from the index partitions,
    column by column: `index.read_index_entries`), and the month page it is in. A
    tuple: 100,000 of them are built per planning."""

    id: str
    source: str | None
    fingerprint: str | None
    subdataset: str | None
    version: str | None  # the run version of the item's files (`byod:version`)
    month: str  # the page of `byod:months` it is in (`page_name`; the plain month when legacy)
    data_hrefs: tuple[str, ...]  # absolute hrefs of the assets whose roles hold "data"
    hrefs: tuple[str, ...]  # absolute hrefs of all its assets
    key: str | None = None  # its item file, where known without the version (old layouts)
    # The source folder or prefix its input was found in (`byod:source_root`, normalised as
    # `sources.source_root` does); None for items written before byod recorded it.
    source_root: str | None = None

    def same_input(self, source: str | None, source_root: str | None) -> bool:
        """Whether the item is of the input `source` of the source `source_root` (an item of
        unknown root: of the same path below any source)."""
        if self.source != source:
            return False
        return self.source_root is None or source_root is None or self.source_root == source_root

    def item_key(self, collection_id: str) -> str | None:
        """The key of the item version published, from `byod:version` (or the version folder
        of its assets, for items written before byod recorded it); None if unknown."""
        if self.key is not None:
            return self.key
        version = self.version if self.version and VERSION.fullmatch(self.version) else None
        version = version or next((v for h in self.hrefs if (v := version_of(h))), None)
        return None if version is None else item_key(collection_id, self.id, version)


# (store root, collection, run version) -> page -> how many versions of it the run wrote.
# A run publishes from one process (progress, then the final or interrupted publish), so
# a counter of the process is the run's: every month version gets a key of its own.
_MONTH_WRITES: dict[tuple[str, str, str], dict[str, int]] = {}


def _month_writes(store: Store, collection_id: str, version: str) -> dict[str, int]:
    with _ENTRIES_LOCK:
        return _MONTH_WRITES.setdefault((store.root, collection_id, version), {})


def month_of(when: datetime | str | None) -> str:
    """`YYYY-MM`, the UTC month of an instant; time-less items (start 0001-01-01, or none)
    fall in `0001-01` (titled "undated")."""
    if when is None:
        return UNDATED
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when.year:04d}-{when.month:02d}"


def item_month(item: pystac.Item) -> str:
    """The month an item belongs to: that of its start (start_datetime, else datetime)."""
    return month_of(item.common_metadata.start_datetime or item.datetime)


def page_name(month: str, page: int) -> str:
    """The name of page `page` (1-based) of a month in `byod:months`: `YYYY-MM` for the
    first page (a month's only partition before pages), `YYYY-MM-p<n>` for the others."""
    return month if page == 1 else f"{month}-p{page}"


def split_page(name: str) -> tuple[str, int]:
    """(`YYYY-MM`, page number) of a page name of `byod:months` (`page_name`); sorts pages
    in the order of their months, then of their numbers."""
    month, _, page = name.partition("-p")
    return month, int(page) if page else 1


def _page_title(name: str) -> str:
    month, page = split_page(name)
    title = "undated" if month == UNDATED else month
    return title if page == 1 else f"{title} (page {page})"


def read_layout(store: Store, collection_id: str, text: str | None = None) -> Layout:
    """`collection.json` (as `text`, or read from the store): its months; for a collection
    in the layout before months, its items as `legacy` (from its index, else its item files).
    """
    key = collection_key(collection_id)
    if text is None:
        if not store.exists(key):
            return Layout()
        text = store.read_text(key)
    data = json.loads(text)
    fields = {k: data[k] for k in COLLECTION_FIELDS if k in data}
    if MONTHS_FIELD in data:
        months = {m: Month.from_json(collection_id, v) for m, v in data[MONTHS_FIELD].items()}
        return Layout(text, months, fields=fields)
    return Layout(text, legacy=_legacy_state(store, collection_id, data, text), fields=fields)


# The collection's own fields a run configures (`CollectionInfo`), as collection.json names them.
COLLECTION_FIELDS = ("title", "description", "license", "keywords", "providers")


def changed_fields(info: CollectionInfo, published: dict[str, Any], given: Iterable[str]
                   ) -> list[str]:  # fmt: skip
    """The fields among `given` (names of `COLLECTION_FIELDS`) whose value in `info` differs
    from the collection as published (`Layout.fields`): what a run whose items are all
    unchanged still has to publish (a title or keywords edited in byod.yaml)."""
    providers = None
    if "providers" in given and info.providers:  # as collection.json has them: pystac's
        import pystac

        providers = [pystac.Provider.from_dict(dict(p)).to_dict() for p in info.providers]
    now = {"title": info.title, "description": info.description, "license": info.license,
           "keywords": list(info.keywords) or None, "providers": providers}  # fmt: skip
    return [f for f in COLLECTION_FIELDS if f in given and now[f] != published.get(f)]


def _legacy_state(
    store: Store, collection_id: str, collection: dict[str, Any], text: str, use_index: bool = True
) -> State:
    """A collection of the layout before months: item links in `collection.json` and one
    index (`_index/<v>/items-<n>.parquet`, or `items.parquet` before versions)."""
    key = collection_key(collection_id)
    index = _index_keys(store, collection_id, collection)
    state = State(text=text, index=index[0] if index else None)
    for link in collection.get("links", []):
        if link.get("rel") == "item":
            state.item_keys[_stem(link["href"])] = _resolve(key, link["href"])
    indexed: dict[str, dict[str, Any]] = {}
    if state.index is not None and use_index:
        from byod.index import read_index_items

        with contextlib.suppress(Exception):  # an index byod no longer reads: the files
            indexed = read_index_items(store, state.index)
    for item_id, item_path in state.item_keys.items():
        if item_id in indexed:
            state.items[item_id] = _item_from_dict(indexed[item_id])
        else:
            state.items[item_id] = _read_item(store, item_path)
    return state


def _item_from_dict(data: dict[str, Any]) -> pystac.Item:
    import pystac

    # migrate=False everywhere byod reads its items: pystac's migration of projection v1.2
    # drops proj:epsg, which items.py writes for stackstac (issue 9).
    return pystac.Item.from_dict(data, preserve_dict=False, migrate=False)


def _read_item(store: Store, key: str) -> pystac.Item:
    """An item file, its asset hrefs made absolute."""
    item = _item_from_dict(json.loads(store.read_text(key)))
    item_href = store.href(key)
    for asset in item.assets.values():
        asset.href = _absolute(asset.href, item_href)
    return item


def _linked(store: Store, key: str, rel: str) -> dict[str, str]:
    """The links of `rel` of the catalog file `key`: their target keys, by the target's
    file name without `.json` (an item's id)."""
    data = json.loads(store.read_text(key))
    return {_stem(link["href"]): _resolve(key, link["href"])
            for link in data.get("links", []) if link.get("rel") == rel}  # fmt: skip


def _children(store: Store, key: str) -> list[str]:
    data = json.loads(store.read_text(key))
    return [_resolve(key, link["href"]) for link in data.get("links", [])
            if link.get("rel") == "child"]  # fmt: skip


def load_items(store: Store, collection_id: str) -> dict[str, pystac.Item]:
    """The items of the collection, read from their JSON files as a STAC client walking the
    catalog would (collection -> month sub-catalogs -> items; asset hrefs made absolute);
    {} if none. One read per item: for tests and the reference walk, not for planning."""
    key = collection_key(collection_id)
    if not store.exists(key):
        return {}
    text = store.read_text(key)
    data = json.loads(text)
    if MONTHS_FIELD not in data:
        return _legacy_state(store, collection_id, data, text, use_index=False).items
    keys: dict[str, str] = {}
    for child in _children(store, key):
        keys |= _linked(store, child, "item")
    return {item_id: _read_item(store, k) for item_id, k in sorted(keys.items())}


def current_index_keys(store: Store, collection_id: str) -> list[str]:
    """The keys of the index partitions `collection.json` names now (its `collection-mirror`
    assets: one per month page, `<collection>/_months/<YYYY-MM>/<v>/items[-p<n>].parquet`),
    sorted; for a collection in the layout before months, its single index; [] when there is
    none."""
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
    legacy = legacy_index_key(collection_id)
    return [legacy] if store.exists(legacy) else []


def _stem(href: str) -> str:
    return posixpath.basename(href).removesuffix(".json")


def _resolve(key: str, href: str) -> str:
    if "://" in href:
        return href
    return posixpath.normpath(posixpath.join(posixpath.dirname(key), href))


def _rel(collection_id: str, key: str) -> str:
    return "./" + posixpath.relpath(key, collection_id)


def _absolute(href: str, relative_to: str) -> str:
    if "://" in href or os.path.isabs(href):
        return href
    if "://" in relative_to:
        return posixpath.normpath(posixpath.join(posixpath.dirname(relative_to), href)).replace(
            ":/", "://", 1
        )
    return os.path.normpath(os.path.join(os.path.dirname(relative_to), href))


def asset_hrefs(items: Iterable[pystac.Item]) -> set[str]:
    """Every asset href of the items, as they are set (absolute for published items)."""
    return {a.href for item in items for a in item.assets.values()}


# --- the published items' entries: read column by column, cached by immutable key -------

# Index partitions are never rewritten (a new version has a new key), so what one says
# stays true for as long as the process lives: planning and every publish attempt share it.
_ENTRIES: dict[tuple[str, str], dict[str, Entry]] = {}
_ENTRIES_LOCK = threading.Lock()
# The ids of a partition read for some ids (`_entries_of`): a later publish of this process
# (progress kept, a retry after a lost race) reads it again only if it holds an id asked.
_IDS: dict[tuple[str, str], frozenset[str]] = {}


def collection_entries(store: Store, collection_id: str, layout: Layout | None = None
                       ) -> dict[str, Entry]:  # fmt: skip
    """Every published item of the collection as an `Entry`, from the month partitions
    `collection.json` names (columns only, `index.read_index_entries`; each partition read
    once per process), or from the items of a collection of the old layout."""
    if layout is None:  # read here: read again if a switch meanwhile deleted what it named
        for _ in range(UPDATE_ATTEMPTS):
            layout = read_layout(store, collection_id)
            try:
                return collection_entries(store, collection_id, layout)
            except FileNotFoundError:
                if read_layout(store, collection_id).text == layout.text:
                    raise
        layout = read_layout(store, collection_id)
    if layout.legacy is not None:
        state = layout.legacy
        return {i: _entry(item.to_dict(transform_hrefs=False), item_month(item),
                          state.item_keys.get(i)) for i, item in state.items.items()}  # fmt: skip
    wanted = {m.index: month for month, m in layout.months.items()}
    missing = [k for k in wanted if (store.root, k) not in _ENTRIES]
    if missing:

        def read(key: str) -> dict[str, Entry]:
            return _read_entries(store, key, wanted[key])

        found = list(store.each(read, missing))  # one GET each on blob: overlapped
        with _ENTRIES_LOCK:
            for key, entries in zip(missing, found, strict=True):
                _ENTRIES[(store.root, key)] = entries
    out: dict[str, Entry] = {}
    for key in sorted(wanted, key=wanted.__getitem__):
        out |= _ENTRIES[(store.root, key)]
    return out


def _entries_of(store: Store, layout: Layout, ids: set[str]) -> dict[str, Entry]:
    """The published items among `ids` of a collection in pages (`layout.months`), as
    `collection_entries` gives them: from the partitions this process has read already,
    else from `index.read_entries_of` (only the `id` column of the other rows is read), so
    a publish costs the ids it changes, not the collection; a partition whose ids this
    process read before (`_IDS`) is not read again unless it holds one of `ids`. Raises
    FileNotFoundError when a partition is gone."""
    from byod.index import ids_read, read_entries_of

    pages = {m.index: page for page, m in layout.months.items()}
    keys = sorted(pages, key=pages.__getitem__)
    rest = []
    for key in keys:
        held = _IDS.get((store.root, key))
        if held is None:  # planning's read of the file (index.read_entries_of) tells too
            held = ids_read(store, key)
        if (store.root, key) not in _ENTRIES and (held is None or not held.isdisjoint(ids)):
            rest.append(key)

    def read(key: str) -> dict[str, Entry]:
        found, every = read_entries_of(store, [key], ids, by="id")
        _IDS[(store.root, key)] = frozenset(every)  # its ids: not read again for other ids
        return {i: Entry(i, e.source, e.fingerprint, e.subdataset, e.version, pages[key],
                         tuple(e.data_hrefs), tuple(e.hrefs), None, e.source_root)
                for i, (e, _) in found.items()}  # fmt: skip

    read_now = dict(zip(rest, store.each(read, rest), strict=True))  # overlapped on blob
    out: dict[str, Entry] = {}
    for key in keys:  # in page order: a later page's entry of an id wins
        cached = _ENTRIES.get((store.root, key))
        if cached is not None:
            out |= {i: cached[i] for i in ids if i in cached}
        elif key in read_now:
            out |= read_now[key]
    return out


def _read_entries(store: Store, key: str, month: str) -> dict[str, Entry]:
    from byod.index import read_index_entries

    found = read_index_entries(store, [key])
    # Thousands of new tuples set off the cycle collector again and again (bench_search).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return {
            i: Entry(i, e.source, e.fingerprint, e.subdataset, e.version, month,
                     tuple(e.data_hrefs), tuple(e.hrefs), None, e.source_root)
            for i, e in found.items()
        }  # fmt: skip
    finally:
        if enabled:
            gc.enable()


def _entry(data: dict[str, Any], month: str, key: str | None = None) -> Entry:
    props = data.get("properties", {})
    assets = data.get("assets", {}).values()
    return Entry(
        data["id"], props.get("byod:source"), props.get("byod:fingerprint"),
        props.get("byod:subdataset"), props.get("byod:version"), month,
        tuple(a["href"] for a in assets if "data" in (a.get("roles") or [])),
        tuple(a["href"] for a in assets), key, props.get("byod:source_root"),
    )  # fmt: skip


@dataclass(frozen=True)
class Names:
    """What the collection as published names: catalog keys and asset hrefs. Asked per key:
    an item file is named when its item is published at that version."""

    collection_id: str
    months: frozenset[str]
    entries: dict[str, Entry]
    hrefs: frozenset[str]

    def names_key(self, key: str) -> bool:
        if key in self.months:
            return True
        parts = key.split("/")
        if len(parts) != 4 or parts[0] != self.collection_id:
            return False
        entry = self.entries.get(parts[1])
        if entry is None:
            return False
        published = entry.item_key(self.collection_id)
        return published is None or published == key  # unknown: kept, never a lie

    def names_href(self, href: str) -> bool:
        return href in self.hrefs


def published_names(store: Store, collection_id: str) -> Names:
    """`Names` of the collection as published now (its entries: columns of its index)."""
    layout = read_layout(store, collection_id)
    entries = collection_entries(store, collection_id, layout)
    months = {k for m in layout.months.values() for k in (m.catalog, m.index)}
    if layout.legacy is not None and layout.legacy.index:
        months.add(layout.legacy.index)
    hrefs = frozenset(h for e in entries.values() for h in e.hrefs)
    return Names(collection_id, frozenset(months), entries, hrefs)


# --- publishing ----------------------------------------------------------------------------


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

    Order: the new item versions (`byod:version` set to `version`); then, as one
    conditional read-merge-write of `collection.json`, a new sub-catalog and index
    partition of each month page the change touches (new, replaced, removed and moved
    items: only those pages are read, from their partitions; `_paginate`), the manifest of
    what the switch leaves unreferenced (`_superseded/<version>.json`: item, sub-catalog and
    partition keys, asset hrefs) and the collection naming the pages (its size grows with
    the number of pages, not of items); then the root catalog (merged, linking every
    collection present; not rewritten when unchanged). A collection of the layout before
    months is migrated: all its months are written, in pages. Nothing a reader may still
    hold is deleted here: superseded files go after a grace period (`collect_superseded`).
    Returns the asset hrefs the switch superseded (informational) and the items it renamed:
    a new item whose id another run gave meanwhile to another input (another `byod:source`)
    gets the id `_plan` would have given it had it seen that item
    (`sources.disambiguated_id`), so neither run's item is lost; `Published.replaced` names
    the new ids that took the place of an item another run published meanwhile for the same
    input (so its report row says `replaced`).
    `on_switch` is called as soon as `collection.json` points at the new items: an error
    after it leaves a published catalog (and files the next run removes), not an old one.
    A run may publish several times (progress kept): its manifests are merged.

    Raises `storage.ConflictError` when other writers won `UPDATE_ATTEMPTS` times running.
    """
    for item in new.values():
        item.properties["byod:version"] = version
    new_keys = {item_id: item_key(info.id, item_id, version) for item_id in sorted(new)}

    def write_item(item_id: str) -> None:
        key = new_keys[item_id]
        store.write_text(key, _dumps(_item_dict(store, new[item_id], key)))

    list(store.each(write_item, new_keys))  # a blob each: overlapped
    gone = set(removed) - set(new)
    written: list[str] = []  # month files, by every attempt
    # month -> how many times this run wrote it: kept across the run's publish calls
    # (progress kept), so no key is written twice (readers and `_ENTRIES` trust that)
    attempts = _month_writes(store, info.id, version)
    done: dict[tuple[Any, ...], Month | None] = {}  # a month as written, by what it came from
    seen: list[tuple[dict[str, Entry], dict[str, str]]] = []  # per attempt: entries, renames
    effective: list[CollectionInfo] = []  # per attempt: the fields written (`info.over`)
    # Renamed items, written once each: (new item's id, the id it got) -> (item, its key).
    # Each attempt chooses the id again from its own entries (another run may have taken
    # the one an earlier attempt chose) and reuses the file only if it chose the same.
    moved: dict[tuple[str, str], tuple[pystac.Item, str]] = {}
    # Items moved out of a page fuller than PAGE_ITEMS: (dict, item key), by every attempt.
    carried: dict[str, tuple[dict[str, Any], str]] = {}
    # What any attempt's switch would leave unreferenced (a superset is safe: the collector
    # deletes only what the collection as published then does not name).
    manifest_key = superseded_key(info.id, version)
    manifest: dict[str, set[str]] = {"catalog": set(), "assets": set()}
    if store.exists(manifest_key):  # an earlier publish of this run (progress kept)
        with contextlib.suppress(ValueError, KeyError):
            data = json.loads(store.read_text(manifest_key))
            manifest = {"catalog": set(data["catalog"]), "assets": set(data["assets"])}

    def place(where: dict[str, Entry]) -> tuple[dict[str, pystac.Item], dict[str, str],
                                                dict[str, str]]:  # fmt: skip
        items, keys, renamed = {}, {}, {}
        for item_id in sorted(new):
            item, key = new[item_id], new_keys[item_id]
            other = where.get(item_id)
            root = item.properties.get("byod:source_root")
            if other is not None and not other.same_input(_source(item), root):
                free = _free_id(item_id, _source(item), root, where)
                if (item_id, free) not in moved:
                    item = item.clone()
                    item.id = free
                    key = item_key(info.id, item.id, version)
                    store.write_text(key, _dumps(_item_dict(store, item, key)))
                    moved[(item_id, free)] = (item, key)
                item, key = moved[(item_id, free)]
                renamed[item_id] = item.id
            items[item.id], keys[item.id] = item, key
        return items, keys, renamed

    def switch(text: str | None) -> str | None:
        # A blob's text may be stale by the time its months are read: another run switched
        # meanwhile and, past the grace period, deleted what that text named. Then its write
        # fails on the ETag anyway: read the pointer again (a file missing from the current
        # pointer, though, is an error).
        for _ in range(UPDATE_ATTEMPTS):
            try:
                return merged(text)
            except FileNotFoundError:
                key = collection_key(info.id)
                fresh = store.read_text(key) if store.exists(key) else None
                if fresh == text:
                    raise
                text = fresh
        return merged(text)

    def merged(text: str | None) -> str | None:
        layout = read_layout(store, info.id, text)
        fields = info.over(layout.fields)  # what the run was not given stays as published
        effective.append(fields)
        where = None
        if layout.legacy is None:  # the entries of the ids changed, not of every item
            where = _entries_of(store, layout, set(new) | gone)
            clash = any(not e.same_input(_source(new[i]), new[i].properties.get(
                "byod:source_root")) for i, e in where.items() if i in new)  # fmt: skip
            full = any(layout.months[e.month].count > PAGE_ITEMS for e in where.values())
            if clash or full:  # a new id for an item (every id), a page to split (its ids)
                where = None
        if where is None:
            where = collection_entries(store, info.id, layout)
        placed, placed_keys, renamed = place(where)
        seen.append((where, renamed))
        dropped = (set(placed) | gone) & where.keys()
        adds, leaving = _paginate(layout, where, placed, dropped)
        touched = set(adds)
        if layout.legacy is None:  # (migrated: every page is new, made by _paginate)
            touched |= {where[i].month for i in dropped}
        if not touched:  # no item changed: only the collection's own fields may have
            if layout.text is None or layout.legacy is not None:
                return None  # no collection (none is made without items), or one to migrate
            text = _dumps(_collection_dict(fields, layout.months))
            return None if text == layout.text else text  # unchanged: not rewritten
        legacy = layout.legacy

        def row(item_id: str) -> tuple[dict[str, Any], str]:
            if item_id in placed:
                item = placed[item_id].to_dict(include_self_link=False, transform_hrefs=False)
                return item, placed_keys[item_id]
            if item_id in carried:  # moved out of a page too full, read when that was written
                return carried[item_id]
            assert legacy is not None  # else only a migration adds items not placed
            return legacy.items[item_id].to_dict(transform_hrefs=False), legacy.item_keys[item_id]

        months = {m: v for m, v in layout.months.items() if m not in touched}
        old_keys: set[str] = set()
        drop = set(placed) | gone
        for page in sorted(touched, key=split_page):
            base = layout.months.get(page)
            ids = sorted(adds.get(page, ()))
            going = sorted(i for i, p in leaving.items() if p == page)
            origin = (page, base.index if base else legacy and layout.text, tuple(ids),
                      tuple(sorted(drop)), tuple(going))  # fmt: skip
            if origin not in done:  # (pages in order: one left is written before those joined)
                rows = {i: row(i) for i in ids}
                moving: dict[str, tuple[dict[str, Any], str]] = dict.fromkeys(going, ({}, ""))
                done[origin] = _write_page(store, info.id, page, version, attempts, written,
                                           base, rows, drop, moving)  # fmt: skip
                carried.update(moving)
            if done[origin] is not None:
                months[page] = done[origin]  # type: ignore[assignment]
            if base is not None and months.get(page) != base:
                old_keys |= {base.catalog, base.index}
        old_keys |= {k for i in dropped if (k := where[i].item_key(info.id))}
        old_keys -= set(placed_keys.values())
        if layout.legacy is not None and layout.legacy.index is not None:
            old_keys.add(layout.legacy.index)
        old_assets = {h for i in dropped for h in where[i].hrefs} - asset_hrefs(placed.values())
        _record_superseded(store, manifest_key, manifest, old_keys, old_assets)
        return _dumps(_collection_dict(fields, months))

    _announce(store, info.id)
    switched = store.update_text(collection_key(info.id), switch)
    on_switch()
    before, renamed = seen[-1]
    # What this run's switch named (not a later run's: files it named may still be read).
    named = json.loads(switched).get(MONTHS_FIELD, {}) if switched else {}
    linked = {_resolve(collection_key(info.id), m[k]) for m in named.values()
              for k in ("catalog", "index")}  # fmt: skip
    final = effective[-1] if effective else info  # (the last merge is the one written)
    store.update_text(ROOT_KEY, lambda text: _dumps(_root_dict(text, final, store)))
    _LINKED.add((store.root, info.id))
    # Never linked by any collection.json: no reader knows them, delete them now.
    unlinked = [k for k in written if k not in linked] + [new_keys[i] for i in renamed]
    unlinked += [k for (i, free), (_, k) in moved.items() if renamed.get(i) != free]
    for key in unlinked:
        remove_file(store, key)
    kept = set(new) - set(renamed)
    superseded = {h for i in kept & before.keys() for h in before[i].hrefs}
    superseded -= asset_hrefs(new.values())
    return Published(sorted(superseded), renamed, sorted(kept & before.keys()))


def _paginate(layout: Layout, where: dict[str, Entry], placed: dict[str, pystac.Item],
              dropped: set[str]) -> tuple[dict[str, list[str]], dict[str, str]]:  # fmt: skip
    """Which page (`page_name`) each placed item goes to: the page it is in when it stays in
    its month (a replacement rewrites that page only), else its month's last page while that
    holds fewer than `PAGE_ITEMS` items once `dropped` are gone, then new pages after it.
    Migrating the layout before months (`layout.legacy`), its items that stay are placed
    too, each month paged from its first page. A page fuller than `PAGE_ITEMS` (a month
    written before pages) that is rewritten anyway keeps its first `PAGE_ITEMS` ids and
    moves the others to the month's last page and new pages: they are listed in the second
    result (id -> the page it leaves), and placed like the others in the first."""
    out: dict[str, list[str]] = {}
    arrivals: dict[str, list[str]] = {}
    if layout.legacy is not None:
        for item_id, item in layout.legacy.items.items():
            if item_id not in dropped:
                arrivals.setdefault(item_month(item), []).append(item_id)
    for item_id in sorted(placed):
        month = item_month(placed[item_id])
        old = where.get(item_id)
        if old is not None and old.month in layout.months and split_page(old.month)[0] == month:
            out.setdefault(old.month, []).append(item_id)
        else:
            arrivals.setdefault(month, []).append(item_id)
    counts = {name: m.count for name, m in layout.months.items()}
    for item_id in dropped:
        if where[item_id].month in counts:
            counts[where[item_id].month] -= 1
    for name, ids in out.items():
        counts[name] += len(ids)
    leaving: dict[str, str] = {}
    hit = set(out) | {where[i].month for i in dropped}
    full = {n for n in hit if counts.get(n, 0) > PAGE_ITEMS and layout.legacy is None}
    if full:  # one pass over the entries: which ids those pages hold
        members = {name: set(out.get(name, ())) for name in full}
        for item_id, entry in where.items():
            if entry.month in full and item_id not in dropped:
                members[entry.month].add(item_id)
        for name, held in members.items():
            for item_id in sorted(held)[PAGE_ITEMS:]:
                if item_id in placed:
                    out[name].remove(item_id)
                else:
                    leaving[item_id] = name
                arrivals.setdefault(split_page(name)[0], []).append(item_id)
            counts[name] = PAGE_ITEMS
    for month, ids in sorted(arrivals.items()):
        ids.sort()
        page = max((n for m, n in map(split_page, layout.months) if m == month), default=1)
        room = PAGE_ITEMS - counts.get(page_name(month, page), 0)
        while ids:
            if room <= 0:  # full (or fuller than pages are now: a month before pages)
                page, room = page + 1, PAGE_ITEMS
            out.setdefault(page_name(month, page), []).extend(ids[:room])
            ids, room = ids[room:], room - len(ids[:room])
    return out, leaving


def _write_page(
    store: Store,
    collection_id: str,
    page: str,
    version: str,
    attempts: dict[str, int],
    written: list[str],
    base: Month | None,
    adds: dict[str, tuple[dict[str, Any], str]],
    drop: set[str],
    leaving: dict[str, tuple[dict[str, Any], str]],
) -> Month | None:
    """Write a new version of one page of a month (`page_name`): its items as published
    (`base`'s partition and sub-catalog, if any) without the `drop` ids and those `leaving`
    names (filled in with their item dicts and item file keys, for the pages they move to),
    plus `adds` (id -> item dict with absolute asset hrefs, key of its item file). None when
    the page is left empty."""
    from byod.index import read_index_items, write_index

    # Item dicts, not pystac Items: a page of up to PAGE_ITEMS items is rewritten by every
    # publish that touches it, and a round trip through pystac cost a sixth of that.
    items: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    if base is not None:
        keys = _linked(store, base.catalog, "item")
        items = read_index_items(store, base.index)
    for item_id in leaving:
        leaving[item_id] = (items.pop(item_id), keys.pop(item_id))
    for item_id in drop:
        items.pop(item_id, None)
        keys.pop(item_id, None)
    for item_id, (data, key) in adds.items():
        items[item_id], keys[item_id] = data, key
    if not items:
        return None
    attempt = attempts.get(page, 0)
    attempts[page] = attempt + 1
    month, number = split_page(page)
    catalog_key, index = month_keys(collection_id, month, version, attempt, number)
    written += [catalog_key, index]
    ordered = [items[k] for k in sorted(items)]
    rows: Any = [_Row(d) for d in ordered]  # what write_index asks of an Item: to_dict
    write_index(store, index, rows)
    links = {d["id"]: keys[d["id"]] for d in ordered}
    store.write_text(catalog_key, _dumps(_month_dict(collection_id, page, catalog_key, links)))
    return _aggregate(catalog_key, index, ordered)


class _Row:
    """An item dict where `index.write_index` takes a pystac Item (it calls `to_dict`);
    a shallow copy, so the writer's changes (relative hrefs) stay its own."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self, **_: Any) -> dict[str, Any]:
        return dict(self.data)


def _aggregate(catalog_key: str, index: str, items: list[dict[str, Any]]) -> Month:
    """The month's record in collection.json, from its item dicts."""
    import pystac

    bboxes = [d["bbox"] for d in items if d.get("bbox")]
    props = [d["properties"] for d in items]
    when = pystac.utils.str_to_datetime
    start, end = union_interval(
        (when(p.get("start_datetime") or p["datetime"]),
         when(p.get("end_datetime") or p["datetime"])) for p in props
    )  # fmt: skip
    codes = sorted({str(p[f]) for p in props for f in SUMMARISED if p.get(f)})
    clouds = [float(p[f]) for p in props for f in RANGES if p.get(f) is not None]
    return Month(
        catalog_key,
        index,
        len(items),
        union_bbox(bboxes) if bboxes else None,
        (_iso(start), _iso(end)),
        tuple(codes),
        (min(clouds), max(clouds)) if clouds else None,
    )


def _iso(when: datetime | None) -> str | None:
    import pystac

    return None if when is None else pystac.utils.datetime_to_str(when)


def _month_dict(collection_id: str, page: str, key: str, keys: dict[str, str]) -> dict[str, Any]:
    """A page of a month (`page_name`): its sub-catalog of item links (one version each),
    root and parent links."""
    import pystac

    month, number = split_page(page)
    what = "without acquisition time" if month == UNDATED else f"acquired from {month} (UTC)"
    what += f", page {number}" if number > 1 else ""
    data = pystac.Catalog(
        id=f"{collection_id}-{page}",
        title=_page_title(page),
        description=f"Items of {collection_id} {what}.",
    ).to_dict(include_self_link=False, transform_hrefs=False)
    folder = posixpath.dirname(key)
    data["links"] = [
        {"rel": "root", "href": posixpath.relpath(ROOT_KEY, folder),
         "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": posixpath.relpath(collection_key(collection_id), folder),
         "type": pystac.MediaType.JSON},
        *({"rel": "item", "href": posixpath.relpath(keys[i], folder),
           "type": pystac.MediaType.GEOJSON} for i in sorted(keys)),
    ]  # fmt: skip
    return data


def _record_superseded(
    store: Store, key: str, manifest: dict[str, set[str]], keys: set[str], assets: set[str]
) -> None:
    """Add to the manifest `key` the catalog `keys` and asset hrefs a switch leaves
    unreferenced; written before the switch, so a kill right after it leaves a list for the
    next run instead of orphans."""
    more_keys = {k for k in keys if "://" not in k} - manifest["catalog"]
    more_assets = assets - manifest["assets"]
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
    collection as published now names (`published_names`: per key and href, from the
    index's columns); then the manifests. Catalog keys are deleted from `store`, asset hrefs
    from whichever of `stores` holds them. Returns the keys and hrefs deleted. A manifest
    that cannot be read (its writer was killed mid-write: writes are atomic, so it is absent
    or whole) is left for a later run."""
    due: list[tuple[str, dict[str, Any]]] = []
    now = datetime.now(UTC)
    for info in store.list_files(superseded_folder(collection_id)):
        version = version_of(info.key)
        if version is None or not info.key.endswith(".json") or running(version):
            continue
        data = json.loads(store.read_text(info.key))
        if (now - datetime.fromisoformat(data["written"])).total_seconds() >= grace_s:
            due.append((info.key, data))
    if not due:
        return []
    names = published_names(store, collection_id)
    deleted: list[str] = []
    # Deleted store by store, `Store.each` at a time (overlapped on blob storage: the first
    # run after a pause may have a backlog of many runs' superseded pages and COGs).
    doomed: dict[int, tuple[Store, list[str]]] = {id(store): (store, [])}
    for _, data in due:
        for key in data.get("catalog", []):
            if not names.names_key(key):
                doomed[id(store)][1].append(key)
                deleted.append(key)
        for href in data.get("assets", []):
            if names.names_href(href):
                continue
            holder = next((s for s in stores if s.key_of(href) is not None), None)
            if holder is not None:
                doomed.setdefault(id(holder), (holder, []))[1].append(str(holder.key_of(href)))
                deleted.append(href)
    for holder, keys in doomed.values():
        list(holder.each(functools.partial(remove_file, holder), keys))
    for manifest_key, _ in due:  # once what it lists is gone: a kill before leaves it listed
        store.remove(manifest_key)
    return deleted


@dataclass(frozen=True)
class Published:
    """What `publish` did beyond publishing: hrefs it superseded and ids it changed."""

    superseded: list[str]  # asset hrefs no published item points at any more
    renamed: dict[str, str]  # new item id -> the id it was published under
    replaced: list[str] = field(default_factory=list)  # new ids that replaced a published item


def _source(item: pystac.Item) -> str | None:
    return item.properties.get("byod:source")


def _free_id(item_id: str, source: str | None, root: str | None, taken: dict[str, Entry]) -> str:
    """The id of an item whose id another input took, as `_plan` chooses it
    (`sources.disambiguated_id`): the hash of its source path added, else (that one taken
    too: the same path in another source folder) the hash of its source root and path.
    `taken` must be the entries as published now: an id another run took meanwhile is
    passed over, one of the same input is reused (the item replaces it)."""
    from byod.sources import path_hash

    candidate = ""
    for hashed in (str(source), str(source) if root is None else f"{root}/{source}"):
        candidate = f"{item_id}-{path_hash(hashed)}"  # disambiguated_id's, for `item_id`
        if candidate not in taken or taken[candidate].same_input(source, root):
            return candidate
    return f"{candidate}-{uuid.uuid4().hex[:6]}"  # a collision of hashes, too


def remove_quietly(store: Store, key: str) -> None:
    """Delete a file no published item points at; a failure leaves an orphan, not a lie."""
    try:
        remove_file(store, key)
    except Exception as exc:  # noqa: BLE001 - storage trouble: log it, the run is published
        log.warning("%s: not removed (%s)", store.href(key), exc)


def remove_file(store: Store, key: str) -> None:
    """Delete a file, and its version folder once empty, and then the item folder
    (`<collection>/<item>/`) once its last version is gone (local disks keep empty
    folders; blob prefixes vanish with their last blob)."""
    store.remove(key)
    folder = posixpath.dirname(key)
    if version_of(key) and VERSION.fullmatch(posixpath.basename(folder)):
        folders = [folder]
        parts = key.split("/")
        if len(parts) == 4 and not parts[1].startswith("_"):  # <coll>/<item>/<v>/<name>
            folders.append(posixpath.dirname(folder))  # the item's, after its last version
        store.remove_empty_folders(*folders)


def _item_dict(store: Store, item: pystac.Item, key: str) -> dict[str, Any]:
    import pystac

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
    for asset in data["assets"].values():
        asset["href"] = store.relative_href(asset["href"], key)
    return data


def _collection_dict(info: CollectionInfo, months: dict[str, Month]) -> dict[str, Any]:
    """The collection: extent and summaries from the pages' aggregates, a child link to
    each page's sub-catalog and a `collection-mirror` asset for each page's partition,
    and the pages themselves (`byod:months`, by `page_name`: what the next publish starts
    from)."""
    import pystac

    names = sorted(months, key=split_page)
    ordered = [months[m] for m in names]
    bboxes = [m.bbox for m in ordered if m.bbox is not None]
    if ordered:
        # As datetimes: as text "...:00.5Z" sorts before "...:00Z" (issue 13 review).
        spans = [(_when(m.interval[0]), _when(m.interval[1])) for m in ordered]
        start = min((s for s, _ in spans if s is not None), default=None)
        end = max((e for _, e in spans if e is not None), default=None)
        interval: list[list[datetime | None]] = [[start, end]]
    else:
        interval = [[None, None]]
    bbox = union_bbox(bboxes) if bboxes else [-180.0, -90.0, 180.0, 90.0]
    extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent(interval))
    summaries: dict[str, Any] = {}
    codes = sorted({c for m in ordered for c in m.codes})
    if codes:
        summaries[SUMMARISED[0]] = codes
    clouds = [m.cloud for m in ordered if m.cloud is not None]
    if clouds:
        summaries[RANGES[0]] = {"minimum": min(c[0] for c in clouds),
                                "maximum": max(c[1] for c in clouds)}  # fmt: skip
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
    data["links"] = [
        {"rel": "root", "href": f"../{ROOT_KEY}", "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": f"../{ROOT_KEY}", "type": pystac.MediaType.JSON},
        *({"rel": "child", "href": _rel(info.id, months[m].catalog),
           "type": pystac.MediaType.JSON, "title": _page_title(m)} for m in names),
    ]  # fmt: skip
    if months:
        data["assets"] = {f"{INDEX_ASSET}-{m}": {
            "href": _rel(info.id, months[m].index), "type": INDEX_MEDIA_TYPE,
            "roles": [INDEX_ROLE],
            "title": f"The items of {_page_title(m)} as stac-geoparquet",
        } for m in names}  # fmt: skip
    data[MONTHS_FIELD] = {m: months[m].to_json(info.id) for m in names}
    return data


def _when(text: str | None) -> datetime | None:
    import pystac

    return None if text is None else pystac.utils.str_to_datetime(text)


def _interval(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return start, end


def repair_root(store: Store) -> None:
    """Link every collection the root catalog misses because a run was killed between its
    collection's switch and the root update: those the root names as `UNLINKED_FIELD` whose
    `collection.json` exists now (one read of the root, a HEAD each); when there is no root
    at all (a kill before the first one was written), every collection present (a listing
    of the root's folders). Nothing is written when none is missing: a no-op run reads the
    root once."""
    text = store.read_text(ROOT_KEY) if store.exists(ROOT_KEY) else None
    if text is not None and not _missing(json.loads(text), store):
        return
    if text is None and not collection_ids(store):
        return
    store.update_text(ROOT_KEY, lambda now: _dumps(_root_dict(now, None, store)))


def _linked_ids(root: dict[str, Any]) -> set[str]:
    """The collections a root catalog (as a dict) has a child link to."""
    return {link["href"].removeprefix("./").split("/", 1)[0]
            for link in root.get("links", []) if link.get("rel") == "child"}  # fmt: skip


def _missing(root: dict[str, Any], store: Store) -> list[str]:
    """The collections the root names as `UNLINKED_FIELD`, does not link and that exist."""
    linked = _linked_ids(root)
    return [c for c in root.get(UNLINKED_FIELD, [])
            if c not in linked and store.exists(collection_key(c))]  # fmt: skip


def _announce(store: Store, collection_id: str) -> None:
    """Before the first switch of a collection the root does not link: name it in the root's
    `UNLINKED_FIELD`, so that a kill between the switch and the root update is repaired by
    the next run into any collection (`repair_root`) without listing the catalog's folders
    (at 100,000 items a delimited listing of the root took 1.6-3.5 s on Azurite). No root
    yet: nothing (`repair_root` then lists). Once linked, never asked again by this
    process (links to collections are never removed)."""
    if (store.root, collection_id) in _LINKED:
        return
    text = store.read_text(ROOT_KEY) if store.exists(ROOT_KEY) else None
    if text is None:
        return
    if collection_id in _linked_ids(json.loads(text)):
        _LINKED.add((store.root, collection_id))
        return

    def add(now: str | None) -> str | None:
        if now is None:
            return None
        root = json.loads(now)
        if collection_id in _linked_ids(root) or collection_id in root.get(UNLINKED_FIELD, []):
            return None
        root[UNLINKED_FIELD] = sorted({*root.get(UNLINKED_FIELD, []), collection_id})
        return _dumps(root)

    store.update_text(ROOT_KEY, add)


def _root_dict(text: str | None, info: CollectionInfo | None, store: Store) -> dict[str, Any]:
    """The root catalog `text` (None: a new one) with a child link to the collection `info`,
    keeping the other collections it links to and adding one for each collection named in
    its `UNLINKED_FIELD` that exists (a run killed between its switch and the root update),
    or, for a new root, for every collection present (`collection_ids`: a kill before the
    first root was written). Names of collections not switched yet stay in the field."""
    import pystac

    children: dict[str, dict[str, Any]] = {}
    if text is not None:
        root = json.loads(text)
        for link in root.get("links", []):
            if link.get("rel") == "child":
                children[link["href"]] = link
        others = _missing(root, store)
    else:
        root = pystac.Catalog(id=ROOT_ID, description=ROOT_DESCRIPTION).to_dict(
            include_self_link=False, transform_hrefs=False
        )
        others = collection_ids(store)
    if info is not None:
        href = root_href_of(info.id)
        children[href] = {"rel": "child", "href": href, "type": pystac.MediaType.JSON,
                          "title": info.title or info.id}  # fmt: skip
    for other in others:
        href = root_href_of(other)
        if href not in children:
            title = json.loads(store.read_text(collection_key(other))).get("title")
            children[href] = {"rel": "child", "href": href, "type": pystac.MediaType.JSON,
                              "title": title or other}  # fmt: skip
    links = [link for link in root.get("links", []) if link.get("rel") not in {"child", "root"}]
    root["links"] = [
        {"rel": "root", "href": f"./{ROOT_KEY}", "type": pystac.MediaType.JSON},
        *links,
        *(children[k] for k in sorted(children)),
    ]
    linked = {href.removeprefix("./").split("/", 1)[0] for href in children}
    waiting = sorted(set(root.pop(UNLINKED_FIELD, [])) - linked)
    if waiting:
        root[UNLINKED_FIELD] = waiting
    return root


def collection_ids(store: Store) -> list[str]:
    """The collections present in a catalog: top-level folders holding a `collection.json`
    (one listing of the root's folders, then one existence check each)."""
    return sorted(name for name in store.list_folders() if store.exists(collection_key(name)))


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
