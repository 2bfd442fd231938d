"""Search from the geoparquet index vs walking the JSON catalog, side by side in one run.

    .venv/bin/python benchmarks/bench_search.py [--sizes 1000,10000] [--index-only 100000]

Prints one table: publish time, index size, and the time of the same query (bbox + period +
cloud limit) answered from the index and by walking every item's JSON, with their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pystac

from byod.catalog import CollectionInfo, current_index_key, new_version, publish
from byod.index import Query, search_store, walk_catalog
from byod.storage import open_store

START = datetime(2020, 1, 1, tzinfo=UTC)
QUERY = Query.parse(bbox=[5, 40, 20, 55], datetime="2021-01-01/2021-12-31", max_cloud=30)


def items(n: int) -> dict[str, pystac.Item]:
    out = {}
    for i in range(n):
        west = -180 + (i * 37.1) % 355
        south = -80 + (i * 23.3) % 150
        item = pystac.Item(f"i{i:06d}", {"type": "Point", "coordinates": [west, south]},
                           [west, south, west + 2, south + 2],
                           START + timedelta(hours=(i * 97) % 35000),
                           {"eo:cloud_cover": float((i * 17) % 101)})  # fmt: skip
        item.add_asset("data", pystac.Asset(f"/data/{i}.tif"))
        out[item.id] = item
    return out


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--index-only", default="100000", help="sizes searched from the index only")
    args = parser.parse_args()
    rows = []
    for n, walk in [(int(s), True) for s in args.sizes.split(",") if s] + [
        (int(s), False) for s in args.index_only.split(",") if s
    ]:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Path(tmp))
            made = items(n)
            # Every publish writes the item files too (byod.catalog: versions, one switch).
            _, publish_s = timed(publish, store, CollectionInfo("c", "bench", "CC0-1.0"), made,
                                 (), new_version())  # fmt: skip
            size = (Path(tmp) / str(current_index_key(store, "c"))).stat().st_size
            found, index_s = timed(search_store, store, QUERY)
            walk_s = None
            if walk:
                walked, walk_s = timed(walk_catalog, store, QUERY)
                assert {i["id"] for i in walked} == {i["id"] for i in found}
            rows.append((n, publish_s, size, len(found), index_s, walk_s))
    print(f"{'items':>8} {'publish s':>10} {'index MB':>9} {'hits':>6} {'index s':>8} "
          f"{'walk s':>8} {'walk/index':>10}")  # fmt: skip
    for n, publish_s, size, hits, index_s, walk_s in rows:
        walk = f"{walk_s:8.3f}" if walk_s is not None else f"{'-':>8}"
        ratio = f"{walk_s / index_s:10.1f}" if walk_s is not None else f"{'-':>10}"
        print(
            f"{n:>8} {publish_s:>10.2f} {size / 1e6:>9.2f} {hits:>6} {index_s:>8.3f} {walk} {ratio}"
        )
    print("publish: item JSON files, one index version and the collection switch, for every size.")


if __name__ == "__main__":
    main()
