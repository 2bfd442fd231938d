"""`byod export`: a catalog's collections and items as the bulk files that catalogs with an
API load: pgstac (`pypgstac load collections|items`) and Planetary Computer Pro (a
collection created from its JSON, then a StacGeoparquet bulk ingestion of its parquet file).

What is written, into one new folder (README "Export"):

- `collections.ndjson`: one collection per line (both formats);
- `items.ndjson` (`ndjson`): one item per line, collection after collection, ids sorted;
- `<collection id>.parquet` (`parquet`): one stac-geoparquet file per collection, written
  by `byod.index.write_geoparquet` (so `raster:bands[].nodata` is a float64 there, NaN for
  the raster extension's `"nan"`, as in byod's index).

Every item carries its `collection` field and absolute asset hrefs (local paths or https
URLs, as `byod search` gives them). The links of the static catalog (root, parent, self,
child, item, collection: hrefs relative to files the export does not contain) are left out;
other links are kept (a collection's with relative hrefs made absolute; byod's index keeps
no item links). A collection's
`collection-mirror` assets (byod's own versioned index, deleted after a later publish
supersedes it) are left out, its other assets kept with absolute hrefs.

Items are read from the index (`byod.searching.search_store`), one collection at a time, so
memory holds one collection's items. The folder is built under a temporary name beside
`out` and renamed into place: a reader never sees half an export.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from byod.errors import ConfigurationError
from byod.workspace import remove_stale

if TYPE_CHECKING:
    from byod.storage import Store

log = logging.getLogger(__name__)

COLLECTIONS_FILE = "collections.ndjson"
ITEMS_FILE = "items.ndjson"
# Links whose hrefs point into the static catalog's own files.
STATIC_RELS = frozenset({"root", "parent", "self", "child", "item", "items", "collection"})
INDEX_ROLE = "collection-mirror"


class ExportFormat(StrEnum):
    """What the items are written as: newline-delimited JSON or stac-geoparquet."""

    NDJSON = "ndjson"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the folder, the files in it (names), and the counts."""

    folder: Path
    files: tuple[str, ...]
    collections: int
    items: int


def export_catalog(
    store: Store,
    out: Path,
    format: ExportFormat,
    collections: Sequence[str] | None = None,
    *,
    overwrite: bool = False,
) -> Exported:
    """Write the collections (all, or those named) of the catalog in `store` and their items
    into the folder `out` as `format` (see the module docstring for the files).

    Raises `ConfigurationError` (exit 2) when there is no catalog in `store`, a named
    collection is not in it, `out` is a file or under one, or `out` exists and is not an
    empty folder (unless `overwrite` and it holds only an earlier export's files: then it is
    replaced whole, once the new export is complete), or `out` holds the catalog
    or files its items point at (replacing it would delete them). Storage errors propagate
    (the CLI maps them with `errors.storage_failure`).
    """
    out = Path(out).absolute()
    format = ExportFormat(format)  # a plain "ndjson" from a library caller too
    _check_out(out, overwrite)
    root = store.local_path("")  # a catalog on this machine: not to be replaced or nested in
    if root is not None and _under(root, out):
        raise ConfigurationError(f"{out}: holds the catalog {store.root}; export elsewhere")
    if root is not None and _under(out, root.absolute()):
        # --overwrite would replace a collection's folder (its items, index and runs).
        raise ConfigurationError(f"{out}: inside the catalog {store.root}; export elsewhere")
    from byod.keys import ROOT_KEY

    found = _collections(store)
    wanted = list(dict.fromkeys(collections)) if collections else sorted(found)
    missing = [c for c in wanted if c not in found]
    if missing:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigurationError(
            f"{', '.join(missing)}: no such collection in {store.href(ROOT_KEY)} (it has: {known})"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(out, "export"), dir=out.parent))
    try:
        files, count = _write(store, tmp, format, {c: found[c] for c in wanted}, out)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would keep the export private
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, files, len(wanted), count)


def _write(
    store: Store,
    folder: Path,
    format: ExportFormat,
    collections: dict[str, dict[str, Any]],
    out: Path,
) -> tuple[tuple[str, ...], int]:
    from byod.index import Query, SearchError, write_geoparquet
    from byod.keys import collection_key
    from byod.searching import search_store

    _write_lines(folder / COLLECTIONS_FILE, collections.values())
    files = [COLLECTIONS_FILE]
    count = 0
    lines = None
    if format is ExportFormat.NDJSON:
        lines = (folder / ITEMS_FILE).open("w", encoding="utf-8", newline="\n")
        files.append(ITEMS_FILE)
    try:
        for collection_id in collections:
            try:
                found = search_store(store, Query(), [collection_id])
            except SearchError as exc:  # vanished since the root was read
                raise ConfigurationError(str(exc)) from None
            href = store.href(collection_key(collection_id))
            items = sorted((export_item(i, collection_id, href) for i in found), key=_id)
            _check_assets_outside(items, out)
            count += len(items)
            if lines is not None:
                for item in items:
                    lines.write(ndjson_line(item))
            else:
                name = f"{collection_id}.parquet"
                write_geoparquet(folder / name, items)
                files.append(name)
    finally:
        if lines is not None:
            lines.close()
    return tuple(files), count


def _check_assets_outside(items: list[dict[str, Any]], out: Path) -> None:
    """Refuse an `out` that holds files the items point at (COGs, thumbnails): replacing it
    (--overwrite) would delete them."""
    for item in items:
        for asset in item.get("assets", {}).values():
            href = asset.get("href", "")
            if "://" not in href and _under(Path(href), out):
                raise ConfigurationError(f"{out}: holds {href}, a file of item "
                                         f"{item['id']}; export elsewhere")  # fmt: skip


def _under(path: Path, folder: Path) -> bool:
    return path.absolute().is_relative_to(folder)


def _id(item: dict[str, Any]) -> str:
    return str(item["id"])


def export_item(item: dict[str, Any], collection_id: str, collection_href: str) -> dict[str, Any]:
    """`item` (asset hrefs absolute, as `search_store` gives it) as exported: its
    `collection` field set with a `collection` link to `collection_href` (absolute: STAC
    1.1's item schema refuses a `collection` field without that link), the static
    catalog's other links left out."""
    out = dict(item)
    out["collection"] = collection_id
    kept = [link for link in item.get("links", []) if link.get("rel") not in STATIC_RELS]
    out["links"] = [
        {"rel": "collection", "href": collection_href, "type": "application/json"},
        *kept,
    ]
    return out


def export_collection(collection: dict[str, Any], href: str) -> dict[str, Any]:
    """A collection read from `href` as exported: static-catalog links and byod's index
    assets left out, every other href made absolute against `href`."""
    out = dict(collection)
    out["links"] = [{**link, "href": _absolute(link["href"], href)}
                    for link in collection.get("links", [])
                    if link.get("rel") not in STATIC_RELS]  # fmt: skip
    assets = {key: {**asset, "href": _absolute(asset["href"], href)}
              for key, asset in collection.get("assets", {}).items()
              if INDEX_ROLE not in asset.get("roles", [])}  # fmt: skip
    if assets:
        out["assets"] = assets
    else:
        out.pop("assets", None)
    return out


def ndjson_line(data: dict[str, Any]) -> str:
    """One JSON document on one line, as `pypgstac load` reads it.

    pypgstac 0.10's reader replaces every `\\\\` in a line by `\\` before parsing, which
    breaks any string holding a backslash (a file name `a\\b.tif`); the same character
    written as the escape `\\u005c` reaches the database intact, and is the same JSON for
    every other reader. NaN or infinity (not JSON) raise ValueError.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # json.dumps escapes a backslash only as the pair `\\`; every other escape starts with
    # one backslash and a letter or quote, so a left-to-right replace meets only those pairs.
    return text.replace("\\\\", "\\u005c") + "\n"


def _write_lines(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for document in documents:
            f.write(ndjson_line(document))


def _collections(store: Store) -> dict[str, dict[str, Any]]:
    """The collections the root catalog links (child links), by id, as exported."""
    from byod.keys import ROOT_KEY

    if not store.exists(ROOT_KEY):
        raise ConfigurationError(f"{store.href(ROOT_KEY)}: no catalog there")
    root = json.loads(store.read_text(ROOT_KEY))
    out: dict[str, dict[str, Any]] = {}
    for link in root.get("links", []):
        if link.get("rel") != "child":
            continue
        href = link["href"]
        key = store.key_of(href) if _is_absolute(href) else posixpath.normpath(href)
        if key is None:
            log.warning("%s: a child link outside the catalog, not exported", href)
            continue
        data = json.loads(store.read_text(key))
        if data.get("type") != "Collection":
            continue
        out[data["id"]] = export_collection(data, store.href(key))
    return out


def _is_absolute(href: str) -> bool:
    return "://" in href or href.startswith("/")


def _absolute(href: str, base: str) -> str:
    """`href` resolved against the file `base` (a local path or a URL) it was read from."""
    if _is_absolute(href):
        return href
    if "://" in base:
        scheme, rest = base.split("://", 1)
        host, _, path = rest.partition("/")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname("/" + path), href))
        return f"{scheme}://{host}{joined}"
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an `out` that is a file or under one, and one --overwrite must not replace: a
    folder holding anything but an earlier export's files (a user's folder is never deleted)."""
    file = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if file is not None:
        under = "" if file == out else f" ({file} is a file)"
        raise ConfigurationError(f"{out}: a file, not a folder{under}; give a folder to export to")
    if out.exists() and not _empty_folder(out) and not _an_export(out):
        raise ConfigurationError(f"{out}: holds files byod export did not write; export "
                                 "elsewhere (--overwrite replaces only an earlier "
                                 "export)")  # fmt: skip
    if out.exists() and not overwrite and not _empty_folder(out):
        raise ConfigurationError(f"{out}: holds an earlier export; --overwrite replaces it")


def _an_export(path: Path) -> bool:
    """A folder holding only what an export writes (collections.ndjson, with items.ndjson or
    `.parquet` files): the only kind of folder --overwrite replaces."""
    if path.is_symlink() or not (path / COLLECTIONS_FILE).is_file():
        return False
    return all(p.is_file() and not p.is_symlink()
               and (p.name in (COLLECTIONS_FILE, ITEMS_FILE) or p.suffix == ".parquet")
               for p in path.iterdir())  # fmt: skip


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished export to `out`: over nothing or an empty folder (one rename), or,
    with `overwrite`, after moving what is there aside (removed once the new one is in)."""
    _check_out(out, overwrite)  # again: something may have appeared while writing
    if (not out.exists() and not out.is_symlink()) or _empty_folder(out):
        os.replace(tmp, out)  # rename(2) replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(prefix=_temp_prefix(out, "old"), dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _temp_prefix(out: Path, kind: str) -> str:
    """Hidden folders beside `out` named after this process: `.<out>.byod-<kind>-<pid>-`."""
    return f".{out.name}.byod-{kind}-{os.getpid()}-"


def _remove_stale(out: Path) -> None:
    """Remove the temp folders beside `out` of exports that were killed (their process is
    gone), which could not remove their own."""
    named = re.compile(rf"^\.{re.escape(out.name)}\.byod-(?:export|old)-(\d+)-\w+$")
    remove_stale(out.parent, named)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
