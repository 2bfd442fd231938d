"""What progress publishing costs when one month holds thousands of items (issue 13): N
synthetic items all dated in one month, published every `--every` items by a direct
`byod.catalog.publish` loop into a local catalog, as `byod ingest --publish-every` does.

    .venv/bin/python benchmarks/bench_month_pages.py [--items 5000] [--every 200]

Prints, per publish, the wall and CPU seconds of the `publish` call and the bytes of catalog
files it wrote (new files below the catalog root); then the totals. Before month pages every
publish rewrote the whole month (its cost grew with the items published: quadratic over the
run); with pages of at most `catalog.PAGE_ITEMS` items, a publish rewrites the last page only.
The items are those of `bench_catalog.synthetic` (asset hrefs to files that are not written:
publishing never reads the assets), moved into one month.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_catalog import COLLECTION, synthetic

from byod.catalog import CollectionInfo, publish
from byod.keys import new_version
from byod.storage import open_store

MONTH = datetime(2024, 6, 1, tzinfo=UTC)


def files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in root.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--every", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        root.mkdir()
        store = open_store(str(root))
        target = open_store(str(Path(tmp) / "data"))
        items = list(synthetic(args.items, target).values())
        for n, item in enumerate(items):  # all in one month, 8 minutes apart
            item.datetime = MONTH + timedelta(minutes=8 * n)
        info = CollectionInfo(COLLECTION, "One month of many items", "CC0-1.0")
        version = new_version()  # one run publishing progress
        print(f"{'published':>9} {'wall s':>7} {'cpu s':>6} {'written KB':>10}")
        wall_total = cpu_total = 0.0
        for start in range(0, len(items), args.every):
            batch = {i.id: i for i in items[start : start + args.every]}
            before = files(root)
            t0, c0 = time.perf_counter(), time.process_time()
            publish(store, info, batch, [], version)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            after = files(root)
            written = sum(s for p, s in after.items() if p not in before)
            wall_total += wall
            cpu_total += cpu
            print(f"{start + len(batch):>9} {wall:>7.2f} {cpu:>6.2f} {written / 1024:>10.0f}")
        print(f"{'total':>9} {wall_total:>7.2f} {cpu_total:>6.2f}")


if __name__ == "__main__":
    main()
