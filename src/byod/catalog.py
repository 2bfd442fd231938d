"""Incremental, atomic static-catalog publishing.

Layout: `<root>/catalog.json`, `<root>/<collection>/collection.json`,
`<root>/<collection>/<item-id>/<item-id>.json`. Written in the order a reader can trust:
items first, then the collection that links them, the root catalog last. Only new or changed
items are written; unrelated items are not touched.

Hrefs are relative when the catalog and the assets are on the local disk (a self-contained
catalog that survives a move of both); otherwise absolute.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CollectionInfo:
    id: str
    description: str
    license: str
    title: str | None = None
    providers: tuple[dict[str, Any], ...] = ()
    keywords: tuple[str, ...] = ()


def collection_key(collection_id: str) -> str:
    return f"{collection_id}/collection.json"


def item_key(collection_id: str, item_id: str) -> str:
    return f"{collection_id}/{item_id}/{item_id}.json"


def load_items(store: Store, collection_id: str) -> dict[str, pystac.Item]:
    """The items the collection links to, with asset hrefs made absolute; {} if none."""
    key = collection_key(collection_id)
    if not store.exists(key):
        return {}
    collection = json.loads(store.read_text(key))
    items: dict[str, pystac.Item] = {}
    for link in collection.get("links", []):
        if link.get("rel") != "item":
            continue
        href = link["href"]
        item_path = href if "://" in href else posixpath.normpath(
            posixpath.join(posixpath.dirname(key), href))  # fmt: skip
        # migrate=False: pystac's migration drops proj:epsg (items.py declares projection v1.2)
        data = json.loads(store.read_text(item_path))
        item = pystac.Item.from_dict(data, preserve_dict=False, migrate=False)
        item_href = store.href(item_path)
        for asset in item.assets.values():
            asset.href = _absolute(asset.href, item_href)
        items[item.id] = item
    return items


def _absolute(href: str, relative_to: str) -> str:
    if "://" in href or os.path.isabs(href):
        return href
    if "://" in relative_to:
        return posixpath.normpath(posixpath.join(posixpath.dirname(relative_to), href)).replace(
            ":/", "://", 1
        )
    return os.path.normpath(os.path.join(os.path.dirname(relative_to), href))


def publish(
    store: Store,
    info: CollectionInfo,
    items: dict[str, pystac.Item],
    changed: Iterable[str],
    removed: Iterable[str] = (),
) -> None:
    """Write the changed items, then the collection over all `items`, then the root."""
    for item_id in sorted(set(changed)):
        key = item_key(info.id, item_id)
        store.write_text(key, _dumps(_item_dict(store, items[item_id], info.id)))
    store.write_text(collection_key(info.id), _dumps(_collection_dict(info, items)))
    # The search index beside it: absolute hrefs, so search results are usable as they are.
    from byod.index import write_index

    write_index(store, info.id, (items[k] for k in sorted(items)))
    for item_id in sorted(set(removed) - set(items)):
        store.remove(item_key(info.id, item_id))
    store.write_text(ROOT_KEY, _dumps(_root_dict(store, info)))


def _item_dict(store: Store, item: pystac.Item, collection_id: str) -> dict[str, Any]:
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    data["collection"] = collection_id
    data["links"] = [
        {"rel": "root", "href": "../../catalog.json", "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": "../collection.json", "type": pystac.MediaType.JSON},
        {"rel": "collection", "href": "../collection.json", "type": pystac.MediaType.JSON},
    ]
    item_href = store.href(item_key(collection_id, item.id))
    for asset in data["assets"].values():
        asset["href"] = _relative_if_local(asset["href"], item_href, store.is_local)
    return data


def _relative_if_local(href: str, start: str, catalog_is_local: bool) -> str:
    if catalog_is_local and "://" not in href and os.path.isabs(href):
        return os.path.relpath(href, os.path.dirname(start))
    return href


def _collection_dict(info: CollectionInfo, items: dict[str, pystac.Item]) -> dict[str, Any]:
    ordered = [items[k] for k in sorted(items)]
    if ordered:
        bbox = union_bbox(i.bbox for i in ordered if i.bbox)
        start, end = union_interval(_interval(i) for i in ordered)
        extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]]))
    else:
        extent = pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                               pystac.TemporalExtent([[None, None]]))  # fmt: skip
    summaries: dict[str, Any] = {}
    for field in SUMMARISED:
        values = sorted({str(i.properties[field]) for i in ordered if i.properties.get(field)})
        if values:
            summaries[field] = values
    for field in RANGES:
        numbers = [float(i.properties[field]) for i in ordered if field in i.properties]
        if numbers:
            summaries[field] = {"minimum": min(numbers), "maximum": max(numbers)}
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
        {"rel": "root", "href": "../catalog.json", "type": pystac.MediaType.JSON},
        {"rel": "parent", "href": "../catalog.json", "type": pystac.MediaType.JSON},
        *(
            {"rel": "item", "href": f"./{i.id}/{i.id}.json", "type": pystac.MediaType.GEOJSON}
            for i in ordered
        ),
    ]
    return data


def _interval(item: pystac.Item) -> tuple[Any, Any]:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    return start, end


def _root_dict(store: Store, info: CollectionInfo) -> dict[str, Any]:
    """The root catalog, keeping the other collections it already links to."""
    children: dict[str, dict[str, Any]] = {}
    if store.exists(ROOT_KEY):
        root = json.loads(store.read_text(ROOT_KEY))
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
    links = [link for link in root.get("links", []) if link.get("rel") not in {"child", "root"}]
    root["links"] = [
        {"rel": "root", "href": "./catalog.json", "type": pystac.MediaType.JSON},
        *links,
        *(children[k] for k in sorted(children)),
    ]
    return root


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
