"""Search from the geoparquet index vs walking the JSON catalog, and the index's column
reader for planning, in one run.

    .venv/bin/python benchmarks/bench_search.py [--sizes 1000,10000] [--index-only 100000]
                            [--entries 100000 --files 120] [--repeat 5] [--workdir DIR]

Prints two tables. Search: publish time (`byod.catalog.publish`: item files, the index
partitions and the collection switch), index size and partitions, and the time of the same
query (bbox + one year + cloud limit) answered by `byod.searching.search_store` the first time
(cold: parquet footers and pages not yet in the page cache for this process) and warm (best of
`--repeat`), by `byod.search` warm (the same plus pystac Items), and by walking every item's
JSON (`walk_catalog`, what a STAC client does on a static catalog; not at `--index-only`
sizes). Entries: `byod.index.read_index_entries` over `--entries` rows written by
`write_index` into `--files` partitions, best of `--repeat`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pystac

import byod
from byod.catalog import CollectionInfo, current_index_keys, publish
from byod.index import Query, read_index_entries, write_index
from byod.keys import new_version
from byod.searching import search_store, walk_catalog
from byod.storage import open_store

START = datetime(2020, 1, 1, tzinfo=UTC)
BBOX, PERIOD, CLOUD = [5, 40, 20, 55], "2021-01-01/2021-12-31", 30
QUERY = Query.parse(bbox=BBOX, datetime=PERIOD, max_cloud=CLOUD)


def items(n: int, data: Path, first: int = 0) -> dict[str, pystac.Item]:
    """`n` items spread over the globe and four years, each with a data and a thumbnail
    asset (absolute local hrefs, as byod publishes them) and byod's planning properties."""
    out = {}
    for i in range(first, first + n):
        west = -180 + (i * 37.1) % 355
        south = -80 + (i * 23.3) % 150
        item = pystac.Item(f"i{i:06d}", {"type": "Point", "coordinates": [west, south]},
                           [west, south, west + 2, south + 2],
                           START + timedelta(hours=(i * 97) % 35000),
                           {"eo:cloud_cover": float((i * 17) % 101), "byod:source": f"{i}.tif",
                            "byod:fingerprint": f"{i:064x}"})  # fmt: skip
        item.add_asset("data", pystac.Asset(str(data / f"{i}.tif"), roles=["data"]))
        item.add_asset("thumbnail", pystac.Asset(str(data / f"{i}.png"), roles=["thumbnail"]))
        out[item.id] = item
    return out


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def best(repeat: int, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    runs = [timed(fn, *args) for _ in range(repeat)]
    return runs[-1][0], min(t for _, t in runs)


def api_search(root: str) -> pystac.ItemCollection:
    return byod.search(root, bbox=BBOX, datetime=PERIOD, max_cloud=CLOUD)


def search_rows(sizes: list[tuple[int, bool]], repeat: int, workdir: Path | None) -> None:
    print(f"{'items':>8} {'publish s':>10} {'parts':>6} {'index MB':>9} {'hits':>5} "
          f"{'cold s':>7} {'warm s':>7} {'byod.search s':>14} {'walk s':>8}")  # fmt: skip
    for n, walk in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = (workdir or Path(tmp)) / str(n)
            store = open_store(folder / "catalog")
            published = "reused"
            if not current_index_keys(store, "c"):  # a --workdir catalog is kept and reused
                made = items(n, folder / "data")
                _, publish_s = timed(publish, store, CollectionInfo("c", "bench", "CC0-1.0"),
                                     made, (), new_version())  # fmt: skip
                published = f"{publish_s:.2f}"
            keys = current_index_keys(store, "c")
            size = sum(Path(store.href(k)).stat().st_size for k in keys)
            found, cold_s = timed(search_store, store, QUERY)
            _, warm_s = best(repeat, search_store, store, QUERY)
            from_api, api_s = best(repeat, api_search, store.root)
            assert {i.id for i in from_api} == {i["id"] for i in found}
            walked_s = "-"
            if walk:
                walked, walk_s = timed(walk_catalog, store, QUERY)
                assert {i["id"] for i in walked} == {i["id"] for i in found}
                walked_s = f"{walk_s:.3f}"
            print(f"{n:>8} {published:>10} {len(keys):>6} {size / 1e6:>9.2f} {len(found):>5} "
                  f"{cold_s:>7.3f} {warm_s:>7.3f} {api_s:>14.3f} {walked_s:>8}")  # fmt: skip


def entries_row(n: int, files: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "catalog")
        per = -(-n // files)
        keys = []
        for f in range(files):
            key = f"c/_months/{2000 + f // 12:04d}-{f % 12 + 1:02d}/v/items.parquet"
            write_index(store, key, items(min(per, n - f * per), Path(tmp) / "data", f * per)
                        .values())  # fmt: skip
            keys.append(key)
        entries, cold_s = timed(read_index_entries, store, keys)
        _, warm_s = best(repeat, read_index_entries, store, keys)
        assert len(entries) == n
    print(f"\nread_index_entries: {n} rows in {files} files: cold {cold_s:.3f} s, "
          f"warm {warm_s:.3f} s (best of {repeat})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="sizes also walked as JSON")
    parser.add_argument("--index-only", default="100000", help="sizes searched from the index only")
    parser.add_argument("--entries", type=int, default=100000)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep the catalogs here and reuse them")
    args = parser.parse_args()
    sizes = [(int(s), True) for s in args.sizes.split(",") if s]
    sizes += [(int(s), False) for s in args.index_only.split(",") if s]
    search_rows(sizes, args.repeat, args.workdir)
    print(
        f"query: bbox {BBOX}, datetime {PERIOD}, max_cloud {CLOUD}; publish: item JSON "
        "files, the index partitions and the collection switch."
    )
    if args.entries:
        entries_row(args.entries, args.files, args.repeat)


if __name__ == "__main__":
    main()
