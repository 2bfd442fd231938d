"""A browsable view of a catalog: static HTML pages (root, collections, items, thumbnails
inlined) rendered from the catalog, and a tiny server on loopback to look at them.

Thumbnails are inlined as data URIs, so pages work for blob catalogs in private containers
without handing signed URLs to the browser, and for local catalogs without serving `data/`.
"""

from __future__ import annotations

import base64
import html
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pystac

from byod.catalog import ROOT_KEY, collection_key, load_items
from byod.searching import collection_ids
from byod.storage import Store
from byod.temporal import UNKNOWN_SOURCE, UNKNOWN_START, shown_time

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }
.items { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 1rem; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: .5rem; }
.card img, .item img { max-width: 100%; background: repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0/16px 16px; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: .2rem .6rem; text-align: left; vertical-align: top; }
"""  # noqa: E501
# How a time-less item's start (and so a collection's extent holding one) is written.
UNKNOWN_START_TEXT = UNKNOWN_START.isoformat().replace("+00:00", "Z")


def render_site(store: Store, out: Path) -> Path:
    """Write index.html, one page per collection and one per item under `out` (thumbnails
    inlined as data: URIs, so the pages work offline); returns the top index.html.
    Raises FileNotFoundError when `store` holds no root catalog."""
    root = json.loads(store.read_text(ROOT_KEY))
    out.mkdir(parents=True, exist_ok=True)
    collections = []
    for collection_id in collection_ids(store):
        data = json.loads(store.read_text(collection_key(collection_id)))
        items = load_items(store, collection_id)
        collections.append((collection_id, data, len(items)))
        cards = []
        for item in sorted(items.values(), key=lambda i: i.id):
            thumb = _data_uri(store, item.assets.get("thumbnail"))
            _page(out / collection_id / f"{item.id}.html", item.id, _item_body(item, thumb,
                  collection_id))  # fmt: skip
            when = shown_time(item.properties)  # a period as one, never 0001-01-01
            cards.append(
                f'<div class="card"><a class="item-link" href="{html.escape(item.id)}.html">'
                f'<img alt="thumbnail of {html.escape(item.id)}" src="{thumb}"><br>'
                f"{html.escape(item.id)}</a><br><small>{html.escape(str(when))}</small></div>"
            )
        body = (f"<p><a href='../index.html'>catalog</a></p><h1>{html.escape(data.get('title') or collection_id)}</h1>"  # noqa: E501
                f"<p>{html.escape(data.get('description', ''))}</p>"
                f"<p>license {html.escape(data.get('license', ''))}; extent "
                f"{html.escape(json.dumps(data['extent']['spatial']['bbox'][0]))}, "
                f"{html.escape(_interval(data['extent']['temporal']['interval'][0]))}</p>"
                f"<div class='items'>{''.join(cards)}</div>")  # fmt: skip
        _page(out / collection_id / "index.html", collection_id, body)
    links = "".join(
        f'<li><a class="collection-link" href="{html.escape(cid)}/index.html">'
        f"{html.escape(data.get('title') or cid)}</a> ({count} items)</li>"
        for cid, data, count in collections
    )
    body = (f"<h1>{html.escape(root.get('title') or root['id'])}</h1>"
            f"<p>{html.escape(root.get('description', ''))}</p><ul>{links}</ul>")  # fmt: skip
    _page(out / "index.html", root["id"], body)
    return out / "index.html"


def _interval(interval: list[str | None]) -> str:
    """A temporal extent as START/END; STAC's 0001-01-01 start (the collection holds
    time-less items, see byod.temporal) is shown as "unknown", "..." an open end."""
    start, end = interval
    first = "unknown" if start == UNKNOWN_START_TEXT else start or ".."
    return f"{first}/{end or '..'}"


def _item_body(item: pystac.Item, thumb: str, collection_id: str) -> str:
    timeless = item.properties.get("byod:datetime_source") == UNKNOWN_SOURCE

    def shown(key: str, value: Any) -> str:
        text = json.dumps(value)
        if timeless and key == "start_datetime":  # STAC's placeholder, not a time
            text += " (STAC's earliest instant: the acquisition time is unknown)"
        return html.escape(text)

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{shown(k, v)}</td></tr>"
                   for k, v in sorted(item.properties.items()))  # fmt: skip
    assets = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(a.title or '')}</td>"
        f"<td>{html.escape(a.media_type or '')}</td><td>{html.escape(a.href)}</td></tr>"
        for k, a in item.assets.items()
    )
    return (f"<p><a href='../index.html'>catalog</a> / <a href='index.html'>"
            f"{html.escape(collection_id)}</a></p><h1>{html.escape(item.id)}</h1>"
            f"<p class='time'>time: {html.escape(shown_time(item.properties))}</p>"
            f"<div class='item'><img id='thumbnail' alt='thumbnail' src='{thumb}'></div>"
            f"<h2>Properties</h2><table>{rows}</table><h2>Assets</h2><table>{assets}</table>"
            f"<h2>Footprint</h2><pre>{html.escape(json.dumps(item.geometry))}</pre>")  # fmt: skip


def _data_uri(store: Store, asset: pystac.Asset | None) -> str:
    data = _read_href(store, asset.href) if asset is not None else b""
    return "data:image/png;base64," + base64.b64encode(data).decode() if data else ""


def _read_href(store: Store, href: str) -> bytes:
    """An asset's bytes: a local file, or a blob of the catalog's storage account (assets
    may live in another container, such as cogs, than the catalog)."""
    return store.read_href(href)


def _page(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                    f"{html.escape(title)}</title><style>{_STYLE}</style></head>"
                    f"<body>{body}</body></html>", "utf-8")  # fmt: skip


def serve(folder: Path, port: int = 0) -> ThreadingHTTPServer:
    """Serve `folder` on 127.0.0.1 (port 0: any free one) in a background thread; the
    caller stops it with `shutdown()`. Raises OSError (EADDRINUSE) for a port in use."""
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
