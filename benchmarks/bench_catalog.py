"""What a run costs against a large collection: adding one input, a no-op re-run, a search,
locally and on Azurite (issue 13's targets), with the whole CLI timed as a user runs it.

    .venv/bin/python benchmarks/bench_catalog.py [--sizes 1000,10000,100000]
        [--azurite-sizes 1000,10000] [--noop-inputs 1000] [--local-only] [--workdir DIR]

The collections are built with byod itself through its bulk path: `byod.catalog.publish`
called once with N synthetic items (one item per input, spread over N/1000 months, at least
12, as byod publishes them: absolute asset hrefs, `byod:source` and `byod:fingerprint`),
whose COG and thumbnail are tiny real files stored in the target (a 16 x 16 COG and a PNG,
copied locally, uploaded 16 at a time on Azurite). Then, timed as wall clock of the
installed `byod` CLI in a fresh process:

- add one: `byod ingest` of a source folder holding one new 64 x 64 raster into that
  collection (plan: the index's columns; publish: one month rewritten);
- no-op: the same command again (nothing converted, nothing written);
- search: `byod search --bbox --datetime --max-cloud --json` over the collection.

`--noop-inputs N` adds a second table: a first run of N small rasters (32 x 32) and a no-op
re-run of the same folder, and their ratio (target: the re-run <= 2% of the first run).
Azurite (node_modules/.bin/azurite-blob, loopback, --disableTelemetry) is started by the
script. The machine is shared: the load average is printed with each table, and each time
is wall seconds with, in parentheses, the CPU seconds of the CLI process and the children
it waited for (not its forkserver's workers: a first run's CPU is undercounted).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.transform import from_origin

from byod.catalog import CollectionInfo, publish
from byod.keys import new_version
from byod.storage import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
BYOD = str(Path(sys.executable).with_name("byod"))
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START = datetime(2015, 1, 1, tzinfo=UTC)
COLLECTION = "bench"
PYCACHE = Path(tempfile.gettempdir()) / "byod-bench-pycache"
SEARCH = ["--bbox", "5,40,20,55", "--datetime", "2016-01-01/2016-12-31", "--max-cloud", "30"]


def tiny_files(folder: Path) -> tuple[Path, Path]:
    """A 16 x 16 COG and a small PNG: the bytes every synthetic item's assets point at."""
    folder.mkdir(parents=True, exist_ok=True)
    cog, png = folder / "tiny.tif", folder / "tiny.png"
    data = np.arange(256, dtype="uint8").reshape(1, 16, 16)
    with rasterio.open(cog, "w", driver="COG", width=16, height=16, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(0, 16, 1, 1)) as dst:  # fmt: skip
        dst.write(data)
    with rasterio.open(png, "w", driver="PNG", width=16, height=16, count=1,
                       dtype="uint8") as dst:  # fmt: skip
        dst.write(data)
    return cog, png


def synthetic(n: int, target: Store) -> dict[str, pystac.Item]:
    """`n` items over the globe, spread evenly over max(12, n // 1000) months."""
    months = max(12, n // 1000)
    step = timedelta(days=30.4 * months) / n
    out = {}
    for i in range(n):
        west, south = -180 + (i * 37.1) % 355, -80 + (i * 23.3) % 150
        item = pystac.Item(f"b{i:06d}", {"type": "Point", "coordinates": [west, south]},
                           [west, south, west + 2, south + 2], START + i * step,
                           {"eo:cloud_cover": float((i * 17) % 101), "proj:code": "EPSG:4326",
                            "byod:source": f"bulk/{i}.tif",
                            "byod:fingerprint": f"{i:064x}"})  # fmt: skip
        folder = f"{COLLECTION}/{item.id}/bulk"
        item.add_asset("data", pystac.Asset(target.href(f"{folder}/{item.id}.tif"),
                                            roles=["data"]))  # fmt: skip
        item.add_asset("thumbnail", pystac.Asset(target.href(f"{folder}/{item.id}.png"),
                                                 roles=["thumbnail"]))  # fmt: skip
        out[item.id] = item
    return out


def build(catalog: Store, target: Store, n: int, scratch: Path) -> float:
    """The bulk path: store the tiny files for `n` items, then one `catalog.publish`."""
    start = time.perf_counter()
    cog, png = tiny_files(scratch)
    items = synthetic(n, target)

    def store(item: pystac.Item) -> None:
        for asset, local in ((item.assets["data"], cog), (item.assets["thumbnail"], png)):
            key = str(target.key_of(asset.href))
            if target.is_local:
                Path(target.href(key)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target.href(key))
            else:
                target.put_file(local, key)

    with ThreadPoolExecutor(max_workers=1 if target.is_local else 16) as pool:
        list(pool.map(store, items.values()))
    info = CollectionInfo(COLLECTION, "Synthetic items (benchmarks/bench_catalog.py)", "CC0-1.0")
    publish(catalog, info, items, [], new_version())
    return time.perf_counter() - start


def raster(path: Path, size: int, offset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ((np.arange(size * size).reshape(1, size, size) + offset) % 1000 + 1).astype("uint16")
    where = from_origin(500000 + 99 * offset, 5e6, 10, 10)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="uint16", crs="EPSG:32633", transform=where) as dst:  # fmt: skip
        dst.write(data)


def cli(*args: str, env: dict[str, str] | None = None) -> Timed:
    """Wall seconds of one `byod` command in a fresh process; fails loudly on exit > 1.
    Compiled bytecode is cached (`PYCACHE`) as in any installation: an environment with
    PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process (~3 s)."""
    env = dict(env or os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([BYOD, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"byod {' '.join(args)} exited {done.returncode}: {done.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timed(seconds, cpu)


@dataclass(frozen=True)
class Timed:
    """Wall seconds and CPU seconds (user + system, the process and its workers): on a
    shared machine the wall clock waits for cores, the CPU time does not."""

    wall: float
    cpu: float

    def __format__(self, spec: str) -> str:
        return format(f"{self.wall:.2f} ({self.cpu:.2f})", spec)

    def __truediv__(self, other: Timed) -> float:
        return self.wall / other.wall


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


@contextmanager
def azurite(folder: Path) -> Iterator[dict[str, str]]:
    """Azurite on a free loopback port; the environment that points byod at it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                             "--location", str(folder), "--disableTelemetry",
                             "--skipApiVersionCheck", "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("Azurite did not start")
        time.sleep(0.1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["AZURE_STORAGE_CONNECTION_STRING"] = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    try:
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stores(n: int, base: Path, env: dict[str, str] | None) -> tuple[str, str]:
    if env is None:
        return str(base / f"{n}" / "catalog"), str(base / f"{n}" / "data")
    return f"az://cat{n}/c", f"az://dat{n}/d"


def open_stores(catalog: str, target: str, env: dict[str, str] | None) -> tuple[Store, Store]:
    if env is None:
        return open_store(catalog), open_store(target)
    from byod.azure import AzureOptions, resolve_access

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        access = resolve_access(AzureOptions())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = []
    for url in (catalog, target):
        store = open_store(url, access)
        store.ensure_container()
        out.append(store)
    return out[0], out[1]


def size_rows(where: str, sizes: list[int], base: Path, env: dict[str, str] | None) -> None:
    print(f"\n{where}: {load()}")
    print(f"{'items':>8} {'build s':>8} {'add one s (cpu)':>16} {'no-op s (cpu)':>14} "
          f"{'search s (cpu)':>15}")  # fmt: skip
    for n in sizes:
        catalog_url, target_url = stores(n, base, env)
        catalog, target = open_stores(catalog_url, target_url, env)
        built = build(catalog, target, n, base / f"{n}" / "tiny")
        source = base / f"{n}" / "one"
        raster(source / "new_20160615.tif", 64, 1)
        run = ["ingest", str(source), "--collection", COLLECTION, "--catalog", catalog_url,
               "--target", target_url, "--workers", "1", "-q"]  # fmt: skip
        add = cli(*run, env=env)
        noop = cli(*run, env=env)
        found = cli("search", catalog_url, *SEARCH, "--json", env=env)
        print(f"{n:>8} {built:>8.1f} {add:>16} {noop:>14} {found:>15}")


def noop_rows(where: str, n: int, base: Path, env: dict[str, str] | None) -> None:
    source = base.parent / "noop-src"  # the same inputs for both tables
    if not source.exists():
        for i in range(n):
            raster(source / f"s{i:05d}_2016{1 + i % 12:02d}01.tif", 32, i)
    catalog_url, target_url = stores(0, base / "noop", env)
    run = ["ingest", str(source), "--collection", "noop", "--catalog", catalog_url,
           "--target", target_url, "-q"]  # fmt: skip
    first = cli(*run, env=env)
    again = cli(*run, env=env)
    print(f"\n{where}, {n} small inputs: {load()}")
    print(f"{'first run s (cpu)':>18} {'no-op s (cpu)':>14} {'ratio':>7}")
    print(f"{first:>18} {again:>14} {again / first:>7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--azurite-sizes", default="1000,10000")
    parser.add_argument("--noop-inputs", type=int, default=1000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--local-only", action="store_true", help="no Azurite tables")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    blob_sizes = [int(s) for s in args.azurite_sizes.split(",") if s]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    print(f"byod bench_catalog: {os.cpu_count()} cores, workdir {base}")
    cli("search", "--help")  # fills the bytecode cache: every timed run starts warm
    try:
        if sizes:
            size_rows("local", sizes, base / "local", None)
        if args.noop_inputs:
            noop_rows("local", args.noop_inputs, base / "local", None)
        if (blob_sizes or args.noop_inputs) and not args.local_only:
            with azurite(base / "azurite") as env:
                if blob_sizes:
                    size_rows("Azurite", blob_sizes, base / "blob", env)
                if args.noop_inputs:
                    noop_rows("Azurite", args.noop_inputs, base / "blob", env)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
