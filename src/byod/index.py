"""The collection's index: standard stac-geoparquet files (one per month partition, linked
from `collection.json` as `collection-mirror` assets; see byod.catalog), and search by space,
time, cloud cover and CQL2 over them, without walking the JSON catalog.

The files are written with stac-geoparquet's own writer (`parse_stac_items_to_arrow` +
`to_parquet`: GeoParquet `geo` metadata, a `geoarrow.wkb` geometry, the bbox as a struct,
properties as top-level columns, assets as real struct columns), so geopandas, rustac, DuckDB,
pgstac and stac-geoparquet read them as they are. Two things differ from the JSON items, both
undone by `read_index_items` (`restore_item`), which returns the items exactly as published:
field types are unified across items (`normalise_item`), and for a local catalog asset hrefs
are relative to the index file (the catalog survives a move of `catalogs/` and `data/`).

PITFALLS: walking 10,000 JSON items took 9.2 s; the same as geoparquet, 0.03 s. DuckDB's
spatial extension would be downloaded at run time, so the filters here are plain column
arithmetic (numpy over Arrow), which needs no network.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from byod.errors import ConfigurationError
from byod.keys import INDEX_NAME, month_in
from byod.storage import Store
from byod.workspace import scratch_folder

if TYPE_CHECKING:
    import cql2
    import pystac

LEGACY_ITEM_JSON = "byod:item"  # byod before the standard index kept each item's JSON here
# STAC's top-level item fields; every other column of a stac-geoparquet file is a property.
TOP_LEVEL = ("type", "stac_version", "stac_extensions", "id", "geometry", "bbox", "links",
             "assets", "collection")  # fmt: skip
# Properties stac-geoparquet stores as timestamp[us, UTC] (its list, to_arrow.py).
TIMESTAMPS = ("datetime", "start_datetime", "end_datetime", "created", "updated", "expires",
              "published", "unpublished")  # fmt: skip
# The stac-geoparquet spec's link struct: typed even when every item's list is empty.
LINKS = pa.list_(pa.struct([("href", pa.string()), ("rel", pa.string()), ("type", pa.string())]))
# Null in the JSON and absent are one null in Arrow: these properties are restored as null
# (STAC: `datetime` is null when a period is given; the projection extension: `proj:code` is
# null for a CRS without a code and for unrectified rasters), every other null as absent.
NULLABLE: dict[str, str | None] = {"datetime": None, "proj:code": "/projection/"}  # -> extension
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAT = np.iinfo(np.int64).min  # numpy's datetime64 NaT, as int64


def normalise_item(item: dict[str, Any]) -> dict[str, Any]:
    """`item` (a STAC dict, not modified) with the fields whose JSON types differ between
    items unified, so stac-geoparquet's schema inference over all items of a file succeeds
    (PITFALLS: it refuses `"nan"` beside integer nodata): `raster:bands[].nodata` of the
    item and of each asset becomes a float64 (`"nan"` NaN, `"inf"`/`"-inf"` ±inf, integers
    as floats). `links` become [] (an item's links point from its JSON file, not from the
    index; read them from the item JSON). `restore_item` undoes the rest exactly.

    Every other field byod writes has one JSON type across items (numbers are floats or
    integers throughout; `proj:code` and `datetime` are null or a string, which Arrow
    unifies), so nothing else needs it.
    """
    out = {**item, "links": []}
    out["properties"] = _each_band(item.get("properties", {}), _float_nodata)
    out["assets"] = {k: _each_band(a, _float_nodata) for k, a in (item.get("assets") or {}).items()}
    return out


def _each_band(fields: dict[str, Any], change: Callable[[dict[str, Any]], dict[str, Any]]
               ) -> dict[str, Any]:  # fmt: skip
    """`fields` (an item's properties or an asset) with `change` applied to each band of its
    `raster:bands`."""
    bands = fields.get("raster:bands")
    if not isinstance(bands, list):
        return fields
    return {**fields, "raster:bands": [change(b) if isinstance(b, dict) else b for b in bands]}


def _float_nodata(band: dict[str, Any]) -> dict[str, Any]:
    if band.get("nodata") is None:
        return band
    return {**band, "nodata": float(band["nodata"])}  # float("nan"), float("-inf")


def _json_nodata(band: dict[str, Any]) -> dict[str, Any]:
    """nodata as the raster extension writes it (see items._raster_band)."""
    nodata = band.get("nodata")
    if not isinstance(nodata, float):
        return band
    if math.isnan(nodata):
        return {**band, "nodata": "nan"}
    if math.isinf(nodata):
        return {**band, "nodata": "inf" if nodata > 0 else "-inf"}
    if nodata.is_integer() and str(band.get("data_type", "")).startswith(("int", "uint")):
        return {**band, "nodata": int(nodata)}
    return band


def restore_item(row: dict[str, Any]) -> dict[str, Any]:
    """The STAC item a stac-geoparquet row (as `pyarrow` gives it, properties at the top
    level, geometry as WKB, timestamps as datetimes) was written from by `write_index`.

    Undoes `normalise_item` and Arrow's unification: nulls are dropped (an asset, a field)
    except `NULLABLE` properties; `raster:bands[].nodata` goes back to an integer for integer
    `data_type`s and to `"nan"`, `"inf"`, `"-inf"`; timestamps are written as pystac writes
    them (RFC 3339, `Z`, microseconds only when not zero); the bbox struct becomes a list.
    Asset hrefs are left as stored (see `read_index_items`).
    """
    # Here, not at the top: planning reads the index without them (shapely 0.03 s).
    import pystac.utils
    import shapely

    item: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, value in row.items():
        if name in TOP_LEVEL:
            item[name] = value
        else:
            properties[name] = value
    extensions = item.get("stac_extensions") or []
    for name in list(properties):
        value = properties[name]
        if value is None:
            if not _null_kept(name, extensions):
                del properties[name]
        elif isinstance(value, datetime):
            properties[name] = pystac.utils.datetime_to_str(value)
        else:
            properties[name] = _without_nulls(value)
    item["properties"] = _each_band(properties, _json_nodata)
    geometry = item.get("geometry")
    if isinstance(geometry, bytes):
        item["geometry"] = _lists(shapely.from_wkb(geometry).__geo_interface__)
    bbox = item.get("bbox")
    if isinstance(bbox, dict):
        item["bbox"] = [v for v in bbox.values() if v is not None]
    item["assets"] = {k: _each_band(_without_nulls(a), _json_nodata)
                      for k, a in (item.get("assets") or {}).items() if a is not None}  # fmt: skip
    item.pop("links", None)
    return {k: v for k, v in item.items() if v is not None}


def _null_kept(name: str, extensions: list[str]) -> bool:
    """Whether a null property stays null (`NULLABLE`, its extension declared)."""
    if name not in NULLABLE:
        return False
    needs = NULLABLE[name]
    return needs is None or any(needs in uri for uri in extensions)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _lists(value: Any) -> Any:
    """GeoJSON from shapely's __geo_interface__ (tuples) with lists, as JSON has them."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def write_index(store: Store, key: str, items: Iterable[pystac.Item]) -> None:
    """Write the stac-geoparquet index of `items` (asset hrefs absolute) to `key`,
    atomically (`Store.put_file`); byod.catalog chooses a new key per version and links it.

    The collection of each item is the first part of `key` (`<collection>/...`). On a local
    store asset hrefs are written relative to the index file, so the catalog and its data
    can be moved together; URLs stay absolute.
    """
    collection_id = key.split("/", 1)[0]
    rows = []
    for item in items:
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        if not data.get("collection"):
            data["collection"] = collection_id
        data["assets"] = {k: {**a, "href": store.relative_href(a["href"], key)}
                          for k, a in data.get("assets", {}).items()}  # fmt: skip
        rows.append(data)
    with scratch_folder() as tmp:
        path = Path(tmp) / INDEX_NAME
        write_geoparquet(path, rows)
        store.put_file(path, key)


def import_writer() -> None:
    """Import `write_geoparquet`'s writer now (stac-geoparquet, with pyarrow.dataset and
    pandas: about 0.3 s), for a caller that waits anyway (`pipeline.process_all`)."""
    import stac_geoparquet.arrow  # noqa: F401


def write_geoparquet(path: Path, items: Iterable[dict[str, Any]]) -> None:
    """Write STAC item dicts to a stac-geoparquet file at `path` with stac-geoparquet's
    writer (GeoParquet 1.1 `geo` metadata, geometry WKB in EPSG:4326), hrefs as given,
    after `normalise_item`. No items: a file with the core columns and no rows.
    Raises `pyarrow.ArrowInvalid` for fields whose types still do not unify."""
    # Imported here: it imports pyarrow.dataset, a second of `byod search`'s start-up.
    from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet

    rows = [normalise_item(i) for i in items]
    if not rows:
        table = _empty_table()
    else:
        # stac-geoparquet logs `logger.debug(schema, batch)`, which raises inside logging
        # whenever DEBUG is on: keep its logger above DEBUG while it runs.
        quiet = logging.getLogger("stac_geoparquet")
        level = quiet.level
        quiet.setLevel(max(quiet.getEffectiveLevel(), logging.INFO))
        try:
            table = parse_stac_items_to_arrow(rows).read_all()
        finally:
            quiet.setLevel(level)
        links = table.schema.get_field_index("links")
        table = table.set_column(links, "links", pa.array([[]] * table.num_rows, LINKS))
    to_parquet(table, path)


def _empty_table() -> pa.Table:
    from stac_geoparquet.arrow._to_arrow import assign_geoarrow_metadata

    bbox = pa.struct([(n, pa.float64()) for n in ("xmin", "ymin", "xmax", "ymax")])
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("type", pa.string()), ("stac_version", pa.string()),
                        ("stac_extensions", pa.list_(pa.string())), ("id", pa.string()),
                        ("geometry", pa.binary()), ("bbox", bbox), ("links", LINKS),
                        ("collection", pa.string()), ("datetime", stamp)])  # fmt: skip
    batch = pa.RecordBatch.from_pylist([], schema=schema)
    return pa.Table.from_batches([assign_geoarrow_metadata(batch)])


def _absolute(href: str, folder: str | None) -> str:
    if folder is None or "://" in href or os.path.isabs(href):
        return href
    return os.path.normpath(os.path.join(folder, href))


def read_index_items(store: Store, key: str) -> dict[str, dict[str, Any]]:
    """The items an index holds, by id: equal to the published item JSON with absolute
    asset hrefs, except `links` (not kept in the index). Raises FileNotFoundError when
    the file is gone."""
    with _opened(store, key) as index:
        return {i["id"]: i for i in index.items(index.file.read())}


class IndexEntry(NamedTuple):
    """What planning needs of one indexed item, hrefs absolute. Immutable; a NamedTuple with
    its times as integers (turned into datetimes when asked) rather than a frozen dataclass
    of datetimes, which took 2.4 times as long to build (0.24 s of 100,000 entries) and
    0.12 s more for the datetimes."""

    id: str
    source: str | None  # property byod:source: the input's path below the source folder
    fingerprint: str | None  # property byod:fingerprint
    subdataset: str | None  # property byod:subdataset
    version: str | None  # property byod:version
    start_us: int | None  # start_datetime, else datetime: microseconds since 1970 (UTC)
    end_us: int | None  # end_datetime, else datetime
    data_hrefs: tuple[str, ...]  # assets whose roles contain "data"
    hrefs: tuple[str, ...]  # every asset
    source_root: str | None = None  # property byod:source_root: the source folder or prefix
    # Property byod:stat: the signature of its input's files' stat (sources.stat_signature).
    stat: str | None = None

    @property
    def start(self) -> datetime | None:
        """The item's start_datetime, else its datetime (UTC); None if it has neither."""
        return None if self.start_us is None else EPOCH + timedelta(microseconds=self.start_us)

    @property
    def end(self) -> datetime | None:
        """The item's end_datetime, else its datetime (UTC); None if it has neither."""
        return None if self.end_us is None else EPOCH + timedelta(microseconds=self.end_us)


_ENTRY_PROPERTIES = {"source": "byod:source", "fingerprint": "byod:fingerprint",
                     "subdataset": "byod:subdataset", "version": "byod:version",
                     "source_root": "byod:source_root", "stat": "byod:stat"}  # fmt: skip


def read_index_entries(store: Store, keys: Sequence[str]) -> dict[str, IndexEntry]:
    """The entries of every item in the index files `keys`, by id (a later key wins for an
    id in two). Reads only the columns needed (ids, byod:* fields, times, asset hrefs and
    roles), never whole items; files are read in a thread pool on blob stores. Raises
    FileNotFoundError when a file is gone."""
    out: dict[str, IndexEntry] = {}
    with _gc_paused():
        for entries in store.each(functools.partial(_read_entries, store), keys):
            out.update((e.id, e) for e in entries)
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cycle collector paused: 100,000 entries of tuples and strings (no cycles)
    set it off again and again, 0.17 s of 0.56 s."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# The ids of each index file `read_entries_of` read, by (store root, key): files are never
# rewritten (a new version has a new key), so publishing (`catalog._entries_of`) knows
# which files hold none of its ids without reading them again after planning did.
_IDS_READ: dict[tuple[str, str], frozenset[str]] = {}


def ids_read(store: Store, key: str) -> frozenset[str] | None:
    """The ids of the index file `key` as this process last read them, or None."""
    return _IDS_READ.get((store.root, key))


def read_entries_of(store: Store, keys: Sequence[str], values: Collection[str],
                    by: str = "byod:source") -> tuple[dict[str, tuple[IndexEntry, str]],
                                                      set[str]]:  # fmt: skip
    """The entries of the items in the index files `keys` whose column `by` (a property
    such as `byod:source`, the input's path, or `id`) holds one of `values`, with the key of
    the file each is in, by id; and the ids of every item. As `read_index_entries` for those
    items (a later key wins for an id in two files, also over a matching entry), but only
    the `id` and `by` columns of the other items are read, and only their ids become Python
    objects: planning (the inputs found) and publishing (the ids it adds or removes) cost
    what a run changes, not what the collection holds. Raises FileNotFoundError when a file
    is gone."""
    out: dict[str, tuple[IndexEntry, str]] = {}
    ids: set[str] = set()
    read = functools.partial(_wanted_entries, store, frozenset(values), by)
    with _gc_paused():
        for key, (entries, every) in zip(keys, store.each(read, keys), strict=True):
            if out:  # an id of an earlier file given again here: this file's row wins
                for item_id in every:
                    out.pop(item_id, None)
            ids.update(every)
            _IDS_READ[(store.root, key)] = frozenset(every)
            out.update((e.id, (e, key)) for e in entries)
    return out, ids


def _wanted_entries(store: Store, wanted: frozenset[str], by: str, key: str
                    ) -> tuple[list[IndexEntry], list[str]]:  # fmt: skip
    """The entries of the file's items whose column `by` is in `wanted`, and every id."""
    with _opened(store, key) as index:
        names = set(index.file.schema_arrow.names)
        if LEGACY_ITEM_JSON in names:
            legacy = [_entry(i) for i in index.items(index.file.read([LEGACY_ITEM_JSON]))]
            field = {v: k for k, v in _ENTRY_PROPERTIES.items()}.get(by, by)  # -> IndexEntry
            chosen = [e for e in legacy if getattr(e, field, None) in wanted]
            return chosen, [e.id for e in legacy]
        head = index.file.read(list(dict.fromkeys(c for c in ("id", by) if c in names)),
                               use_threads=False)  # fmt: skip
        every: list[str] = head.column("id").to_pylist()
        found = head.column(by).to_pylist() if by in names else []
        chosen_rows = [r for r, v in enumerate(found) if v in wanted]
        if not chosen_rows:
            return [], every
        rows = None if len(chosen_rows) == head.num_rows else chosen_rows
        return _entries_of(index, names, rows), every


def _read_entries(store: Store, key: str) -> list[IndexEntry]:
    """Column by column, with no item dicts (figures in benchmarks/README.md)."""
    with _opened(store, key) as index:
        names = set(index.file.schema_arrow.names)
        if LEGACY_ITEM_JSON in names:
            return [_entry(i) for i in index.items(index.file.read([LEGACY_ITEM_JSON]))]
        return _entries_of(index, names, None)


def _entries_of(index: _Index, names: set[str], rows: list[int] | None) -> list[IndexEntry]:
    """The entries of an index file of the standard layout (of the rows `rows` only).

    No pyarrow.compute (no `take`, `cast` or kernels): importing it is 60 ms, a tenth of a
    no-op run, and a partition holds at most a page of rows (`catalog.PAGE_ITEMS`)."""
    props = [p if p in names else None for p in _ENTRY_PROPERTIES.values()]
    times = [t for t in ("datetime", "start_datetime", "end_datetime") if t in names]
    assets = index.asset_keys()
    columns = ["id", *(p for p in props if p), *times]
    columns += [f"assets.{a}.{f}" for a in assets for f in ("href", "roles")]
    # pyarrow's own threads cost more than they bring on files this small.
    table = index.file.read(columns, use_threads=False)
    n = table.num_rows
    values = [table.column(p).to_pylist() if p else [None] * n for p in props]

    def when(first: str, then: str) -> list[int | None]:
        cols = [_micros(table.column(c)) for c in (first, then) if c in times]
        if not cols:
            return [None] * n
        if len(cols) == 1:
            return cols[0]
        return [a if a is not None else b for a, b in zip(*cols, strict=True)]

    hrefs: list[list[str | None]] = []
    data: list[list[str | None]] = []
    if assets:
        column = table.column("assets").combine_chunks()
        for name in assets:
            asset = column.field(name)
            absolute = _absolute_all(asset.field("href"), index.folder)
            hrefs.append(absolute)
            is_data = _has_role(asset.field("roles"), "data")
            if is_data.all():
                data.append(absolute)
            elif is_data.any():
                data.append([h if d else None for h, d in zip(absolute, is_data, strict=True)])
    *values, roots, stats = values  # byod:source_root and byod:stat come last in IndexEntry
    fields = zip(table.column("id").to_pylist(), *values,
                 when("start_datetime", "datetime"), when("end_datetime", "datetime"),
                 _per_row(data, n), _per_row(hrefs, n), roots, stats, strict=True)  # fmt: skip
    entries = list(itertools.starmap(IndexEntry, fields))
    return entries if rows is None else [entries[r] for r in rows]


_MICROS_PER = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _micros(column: pa.ChunkedArray) -> list[int | None]:
    """A time column as integer microseconds since the epoch (UTC), nulls as None: a
    timestamp through each chunk's int64 view (a reinterpretation, no pyarrow.compute;
    nanoseconds floored to the microsecond), a date at its midnight UTC, an all-null column
    (pyarrow's type for a column of None, as other writers leave an undated `datetime`) as
    None. Any other type (ISO strings) through pyarrow's own cast, which raises
    `pyarrow.ArrowInvalid` for what is no time."""
    kind = column.type
    if pa.types.is_null(kind):
        return [None] * len(column)
    if pa.types.is_date32(kind):  # days
        return [None if d is None else d * 86_400_000_000 for d in _ticks(column, pa.int32())]
    if pa.types.is_date64(kind):  # milliseconds
        return [None if d is None else d * 1_000 for d in _ticks(column, pa.int64())]
    if not pa.types.is_timestamp(kind):
        try:  # `...Z` and `+01:00` strings need a zoned type, zone-less ones do not
            column = column.cast(pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            column = column.cast(pa.timestamp("us"))
    ticks = _ticks(column, pa.int64())
    unit = column.type.unit
    if unit == "us":
        return ticks
    if unit == "ns":
        return [None if t is None else t // 1_000 for t in ticks]
    return [None if t is None else t * _MICROS_PER[unit] for t in ticks]


def _ticks(column: pa.ChunkedArray, kind: pa.DataType) -> list[int | None]:
    """The column's values as integers of `kind` (each chunk viewed, not converted)."""
    return [t for chunk in column.chunks for t in chunk.view(kind).to_pylist()]


def _per_row(columns: list[list[str | None]], n: int) -> Iterable[tuple[str, ...]]:
    """Row r of every column but the nulls, as a tuple."""
    if not columns:
        return [()] * n
    if not any(None in c for c in columns):  # every asset in every row: no filtering
        return zip(*columns, strict=True)
    return (tuple(filter(None, row)) for row in zip(*columns, strict=True))  # no href is ""


def _has_role(roles: pa.Array, role: str) -> np.ndarray:
    """Per row of a list<string> column, whether its list holds `role`. In Python, not
    pyarrow.compute (see `_entries_of`): 0.6 us a row."""
    return np.array([r is not None and role in r for r in roles.to_pylist()], bool)


def _absolute_all(hrefs: pa.Array, folder: str | None) -> list[str | None]:
    """`_absolute` of each href of a column (nulls stay null). byod's relative hrefs are a
    run of `../` and a clean rest: each run is resolved once; anything else goes through
    `_absolute`."""
    values: list[str | None] = hrefs.to_pylist()
    if folder is None:
        return values
    bases: dict[str, str] = {}
    out: list[str | None] = []
    for href in values:
        if href is None or "://" in href or href[:1] == "/":
            out.append(href)
            continue
        up = len(href) - len(href.lstrip("./"))
        prefix, rest = href[:up], href[up:]
        if prefix != "../" * (up // 3) or "/." in rest or "//" in rest or rest[-1:] in "/":
            out.append(_absolute(href, folder))
            continue
        base = bases.get(prefix)
        if base is None:
            base = bases[prefix] = os.path.normpath(os.path.join(folder, prefix)).rstrip("/")
        out.append(f"{base}/{rest}")
    return out


def _entry(item: dict[str, Any]) -> IndexEntry:
    props = item["properties"]

    def when(name: str) -> int | None:
        text = props.get(name) or props.get("datetime")
        return None if not text else (_parse(text) - EPOCH) // timedelta(microseconds=1)

    assets = list(item.get("assets", {}).values())
    return IndexEntry(
        id=item["id"],
        source=props.get("byod:source"),
        fingerprint=props.get("byod:fingerprint"),
        subdataset=props.get("byod:subdataset"),
        version=props.get("byod:version"),
        start_us=when("start_datetime"),
        end_us=when("end_datetime"),
        data_hrefs=tuple(a["href"] for a in assets if "data" in (a.get("roles") or [])),
        hrefs=tuple(a["href"] for a in assets),
        source_root=props.get("byod:source_root"),
        stat=props.get("byod:stat"),
    )


class _Index:
    """One open index file: the parquet file, and the folder its relative hrefs start from
    (None: hrefs are absolute)."""

    def __init__(self, file: pq.ParquetFile, folder: str | None) -> None:
        self.file = file
        self.folder = folder

    def asset_keys(self) -> list[str]:
        schema = self.file.schema_arrow
        if "assets" not in schema.names:
            return []
        kind = schema.field("assets").type
        return [kind.field(i).name for i in range(kind.num_fields)
                if "." not in kind.field(i).name]  # fmt: skip  # dotted names: no column path

    def items(self, table: pa.Table) -> list[dict[str, Any]]:
        """Rows of `table` (columns of this file) as items with absolute asset hrefs."""
        if LEGACY_ITEM_JSON in table.column_names:
            return [json.loads(t) for t in table.column(LEGACY_ITEM_JSON).to_pylist()]
        # Timestamps through int64: pyarrow turns tz-aware ones into datetimes with pandas.
        stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        micros = [table.column(n).cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
                  for n in stamps]  # fmt: skip
        out = []
        for r, row in enumerate(table.drop_columns(stamps).to_pylist()):
            for name, values in zip(stamps, micros, strict=True):
                v = values[r]
                row[name] = None if v is None else EPOCH + timedelta(microseconds=v)
            item = restore_item(row)
            for asset in item["assets"].values():
                asset["href"] = _absolute(asset["href"], self.folder)
            out.append(item)
        return out


@contextlib.contextmanager
def _opened(store: Store, key: str) -> Iterator[_Index]:
    """The index file at `key`, opened in place on a local store, else downloaded to a
    scratch folder removed afterwards. Raises FileNotFoundError when it is gone."""
    path = store.local_path(key)
    if path is not None:
        with pq.ParquetFile(path) as file:
            yield _Index(file, str(path.parent))
        return
    with scratch_folder() as tmp:
        local = Path(tmp) / INDEX_NAME
        store.get_file(key, local)
        with pq.ParquetFile(local) as file:
            yield _Index(file, None)


# --- the query -------------------------------------------------------------------------


class SearchError(ConfigurationError):
    """A query that cannot be run: a malformed bbox, period or CQL2 filter, or a catalog or
    collection that does not exist."""


@dataclass(frozen=True)
class Query:
    """A search: bbox W,S,E,N in degrees (EPSG:4326, longitudes in [-180, 180], west > east
    crosses 180°), an inclusive UTC period (either end open), a largest cloud cover in
    percent and a CQL2 filter."""

    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    max_cloud: float | None = None
    filter: str | None = None  # CQL2 text or JSON

    @classmethod
    def parse(cls, bbox: Sequence[float] | str | None = None, datetime: str | None = None,
              max_cloud: float | None = None, filter: str | None = None) -> Query:  # fmt: skip
        """Check and normalise user input; raises SearchError saying what is wrong.

        `bbox` may give longitudes in the 0..360 form (`200,-10,202,-8` is
        `-160,-10,-158,-8`); `datetime` is an RFC 3339 instant, a day, or START/END with
        `..` for an open end (STAC API), START not after END.
        """
        box = None if bbox is None else _bbox(bbox)
        start, end = _interval(datetime) if datetime else (None, None)
        if filter is not None:
            _cql2(filter)  # fail early, with the parser's message
        return cls(box, start, end, max_cloud, filter)


def _bbox(bbox: Sequence[float] | str) -> tuple[float, float, float, float]:
    """W,S,E,N with longitudes brought into [-180, 180] (items' bboxes are: RFC 7946)."""
    try:
        values = [float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)]
    except ValueError:
        raise SearchError(f"bbox must be four numbers W,S,E,N, got {bbox!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise SearchError(f"bbox must be four numbers W,S,E,N, got {bbox!r}")
    west, south, east, north = values
    if not -90 <= south <= north <= 90:
        raise SearchError(f"bbox must be W,S,E,N with -90 <= S <= N <= 90, got {bbox!r}")
    if not (-180 <= west <= 360 and -180 <= east <= 360):
        raise SearchError(
            f"bbox longitudes must lie in -180..180 (or 0..360), got W={west:g}, E={east:g}"
        )
    if west <= east and east - west >= 360:  # the whole circle, in either form
        return (-180.0, south, 180.0, north)
    # The 0..360 form: 200 is -160; a box that then has west > east crosses 180°.
    west, east = (v - 360 if v > 180 else v for v in (west, east))
    return (west, south, east, north)


def _interval(text: str) -> tuple[datetime | None, datetime | None]:
    """`2024-01-01/2024-02-01`, `../2024-02-01`, `2024-01-01/..`, or one instant or day."""
    parts = text.split("/")
    if len(parts) > 2:
        raise SearchError(
            f"datetime must be START/END, one instant or one day, each "
            f"YYYY-MM-DD or RFC 3339 (2024-01-31T10:00:00Z), got {text!r}"
        )
    bounds = [_instant(p, end=(i == 1 or len(parts) == 1)) for i, p in enumerate(parts)]
    if len(parts) == 1:
        return _instant(parts[0], end=False), bounds[0]
    start, end = bounds
    if start is not None and end is not None and end < start:
        raise SearchError(f"datetime period ends before it starts: {text!r}")
    return start, end


def _instant(text: str, *, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"not an ISO 8601 time: {text!r}") from None
    if len(text) == 10 and end:  # a bare day ends at its last microsecond
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@functools.lru_cache(maxsize=32)  # matched per item: parse each expression once
def _cql2(text: str) -> cql2.Expr:
    import cql2

    try:
        return cql2.parse_json(text) if text.lstrip().startswith("{") else cql2.parse_text(text)
    except (ValueError, cql2.ParseError, cql2.ValidationError) as exc:
        # The parser's message spans lines (a caret under the column): one line for the CLI.
        raise SearchError(f"CQL2 filter does not parse: {' '.join(str(exc).split())}") from None


# --- matching: vectorised over the index, and one item at a time (the reference) --------


def _lon_overlap(a0: Any, a1: Any, b0: float, b1: float) -> Any:
    """Whether longitude ranges overlap, where a range with west > east crosses 180°."""

    def pieces(w: Any, e: Any) -> list[tuple[Any, Any]]:
        cross = w > e
        return [(w, np.where(cross, 180.0, e)), (np.where(cross, -180.0, np.inf), e)]

    out = False
    for x0, x1 in pieces(np.asarray(a0, float), np.asarray(a1, float)):
        for y0, y1 in pieces(np.asarray(b0, float), np.asarray(b1, float)):
            out = out | ((x0 <= y1) & (y0 <= x1))
    return out


def _mask(table: pa.Table, query: Query) -> np.ndarray:
    n = table.num_rows
    keep = np.ones(n, bool)
    if n == 0:
        return keep
    if query.bbox is not None:
        bbox = table.column("bbox").combine_chunks()
        xmin, ymin, xmax, ymax = (_numbers(bbox.field(f), np.nan)
                                  for f in ("xmin", "ymin", "xmax", "ymax"))  # fmt: skip
        w, s, e, north = query.bbox
        keep &= (ymin <= north) & (s <= ymax) & _lon_overlap(xmin, xmax, w, e)
    if query.start is not None or query.end is not None:
        start, end = _times(table)
        if query.end is not None:
            keep &= start <= np.datetime64(query.end.replace(tzinfo=None), "us")
        if query.start is not None:
            keep &= end >= np.datetime64(query.start.replace(tzinfo=None), "us")
    if query.max_cloud is not None:
        if "eo:cloud_cover" not in table.column_names:
            return np.zeros(n, bool)
        cloud = _numbers(table.column("eo:cloud_cover"), np.nan)
        keep &= ~np.isnan(cloud) & (cloud <= query.max_cloud)
    return keep


def _times(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    def column(name: str) -> np.ndarray:
        if name not in table.column_names:
            return np.full(table.num_rows, np.datetime64("NaT"), "datetime64[us]")
        return _numbers(table.column(name), NAT).view("datetime64[us]")

    instant = column("datetime")
    start, end = column("start_datetime"), column("end_datetime")
    return np.where(np.isnat(start), instant, start), np.where(np.isnat(end), instant, end)


def _numbers(values: pa.Array | pa.ChunkedArray, fill: float | int) -> np.ndarray:
    """A numeric or timestamp column as float64 (or, for timestamps and an int `fill`, int64
    microseconds), nulls as `fill`, read through its Arrow buffer: pyarrow's `to_numpy` and
    `pa.array` import pandas, which took 1-4 s of `byod search` on this machine."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.timestamp("us"))
    kind, dtype = (pa.int64(), np.int64) if isinstance(fill, int) else (pa.float64(), np.float64)
    values = values.cast(kind)
    if len(values) == 0:
        return np.empty(0, dtype)
    out = np.frombuffer(values.buffers()[1], dtype, len(values), values.offset * 8)
    if values.null_count:  # (pa.scalar, for pc.fill_null, imports pandas too)
        import pyarrow.compute as pc  # (`cast` above imported it; see `_entries_of`)

        nulls = pc.is_null(values).cast(pa.int8())
        where = np.frombuffer(nulls.buffers()[1], np.int8, len(nulls), nulls.offset) == 1
        out = np.where(where, dtype(fill), out)
    return out


def _indices(rows: np.ndarray) -> pa.Array:
    """Row numbers as an Arrow array for `take`, without pandas (see `_numbers`)."""
    rows = np.ascontiguousarray(rows, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


def matches(item: dict[str, Any], query: Query) -> bool:
    """The reference semantics, one item at a time (what walking the JSON catalog gives):
    the item's bbox intersects the query's (both EPSG:4326, either may cross 180°), its
    time or period overlaps the query's period, its eo:cloud_cover (percent) is at most
    `max_cloud` (none: no match), and it matches the CQL2 filter (`filter_matches`)."""
    props = item["properties"]
    if query.bbox is not None:
        w, s, e, n = query.bbox
        b = item["bbox"]
        xmin, ymin, xmax, ymax = (
            (b[0], b[1], b[2], b[3]) if len(b) == 4 else (b[0], b[1], b[3], b[4])
        )
        if not (ymin <= n and s <= ymax and bool(_lon_overlap(xmin, xmax, w, e))):
            return False
    if query.start is not None or query.end is not None:
        start = _parse(props.get("start_datetime") or props["datetime"])
        end = _parse(props.get("end_datetime") or props["datetime"])
        if query.end is not None and start > query.end:
            return False
        if query.start is not None and end < query.start:
            return False
    if query.max_cloud is not None:
        cloud = props.get("eo:cloud_cover")
        if cloud is None or math.isnan(cloud) or cloud > query.max_cloud:
            return False
    return query.filter is None or filter_matches(query.filter, item)


def filter_matches(text: str, item: dict[str, Any]) -> bool:
    """Whether `item` matches the CQL2 filter `text`. An item that lacks a property the
    filter compares is no match (SQL's NULL semantics, as pgstac answers): cql2 cannot
    reduce such an expression to a boolean and raises a bare Exception saying so."""
    try:
        return bool(_cql2(text).matches(item))
    except Exception as exc:  # cql2 raises a bare Exception
        if "reduce expression to boolean" in str(exc):
            return False
        raise


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- searching index partitions -----------------------------------------------------------


def search_partitions(store: Store, keys: Sequence[str], query: Query, collection_id: str,
                      limit: int | None) -> list[dict[str, Any]]:  # fmt: skip
    """Matching items of one collection's index partitions `keys` (as STAC dicts, absolute
    asset hrefs, `collection` set), read in key order until `limit` items matched; partitions
    whose month starts after the query's end are not read. Raises FileNotFoundError for a
    partition that is gone (byod.searching reads collection.json again)."""
    wanted = [k for k in keys if _may_overlap(k, query)]
    read = functools.partial(_search_key, query=query, collection_id=collection_id, limit=limit)
    out: list[dict[str, Any]] = []
    for found in store.each(functools.partial(read, store), wanted):
        out += found
        if limit is not None and len(out) >= limit:
            break
    return out[:limit]


def _may_overlap(key: str, query: Query) -> bool:
    """False for a month partition (a `YYYY-MM` folder in its key below the collection,
    `keys.month_keys`) that starts after the query ends: a partition holds the items that
    start in its month (`catalog.item_month`), so none of them can overlap."""
    if query.end is None:
        return True
    month = month_in(key)
    if month is None:
        return True
    first = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)
    return first <= query.end


def _search_key(store: Store, key: str, query: Query, collection_id: str, limit: int | None
                ) -> list[dict[str, Any]]:  # fmt: skip
    """At most `limit` matching items of one partition: the filter columns first, then the
    rows of the hits only turned into items, then the CQL2 filter on them."""
    with _opened(store, key) as index:
        names = set(index.file.schema_arrow.names)
        filters = [c for c in ("id", "bbox", *TIMESTAMPS[:3], "eo:cloud_cover") if c in names]
        if "bbox" not in names:  # an empty index
            return []
        hits = np.flatnonzero(_mask(index.file.read(filters), query))
        if query.filter is None:
            hits = hits[:limit]
        if len(hits) == 0:
            return []
        out = []
        for item in index.items(index.file.read().take(_indices(hits))):
            item["collection"] = collection_id
            if query.filter is None or filter_matches(query.filter, item):
                out.append(item)
        return out[:limit]
