"""What a run costs against a large collection: adding one input, a no-op re-run, a search,
locally and on Azurite (issue 13's targets), with the whole CLI timed as a user runs it.

    .venv/bin/python benchmarks/bench_catalog.py [--sizes 1000,10000,100000]
        [--azurite-sizes 1000,10000] [--noop-inputs 1000] [--local-only] [--workdir DIR]
        [--skip-build] [--uploads 48]

The collections are built with byod itself through its bulk path: `byod.catalog.publish`
called once with N synthetic items (one item per input, spread over N/1000 months, at least
12, as byod publishes them: absolute asset hrefs, `byod:source` and `byod:fingerprint`),
whose COG and thumbnail are tiny real files stored in the target (a 16 x 16 COG and a PNG,
copied locally; on Azurite uploaded `--uploads` at a time, and publish's own item writes
overlapped as many at a time instead of byod's `storage.REQUESTS_AT_ONCE`: the same blobs,
written by the same calls, only more of them in flight). Then, timed as wall clock of the
installed `byod` CLI in a fresh process:

- add one: `byod ingest` of the size's source folder after one new 64 x 64 raster was put
  in it (plan: the index's columns; publish: one month rewritten);
- no-op: the same command again (nothing converted, nothing written);
- search: `byod search --bbox --datetime --max-cloud --json` over the collection.

`--noop-inputs N` adds a second table: a first run of N small rasters (32 x 32) and five
no-op re-runs of the same folder (the median, and the range), and their ratio (target: the
re-run <= 2% of the first run).
Azurite (node_modules/.bin/azurite-blob, loopback, --disableTelemetry) is started by the
script, saving its database every 30 min instead of every 5 s and without its garbage
collector (both stall it for seconds at 300,000 blobs; see `azurite`). The machine is
shared: the load average is printed with each table, and each time is wall seconds with,
in parentheses, the CPU seconds of the CLI process and the children it waited for (not its
forkserver's workers: a first run's CPU is undercounted); the last column is byod's own
report of add one's `plan` and `publish` seconds (`--report`).

`--workdir DIR` keeps everything (collections, Azurite's data folder and port, the source
folders) and a run reuses what it finds there: a collection whose `built.json` is present
is measured, not built again (its build time is the one recorded, marked `*`), and every
run adds a new input (add one stays "add one" on a collection of N + runs items).
`--skip-build` measures only the collections the workdir holds (a size not built is
skipped with a note): the build of 100,000 items on Azurite takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

import byod.storage
from byod.catalog import CollectionInfo, publish
from byod.keys import collection_key, new_version
from byod.storage import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
BYOD = str(Path(sys.executable).with_name("byod"))
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START = datetime(2015, 1, 1, tzinfo=UTC)
SAVE_SECONDS = 1800
SAVE_EVERY = """
const loki = require(require.resolve("lokijs", {paths: [AZURITE_DIR]}));
const configure = loki.prototype.configureOptions;
loki.prototype.configureOptions = function (options, initial) {
  if (options && options.autosaveInterval) {
    options = Object.assign({}, options, {autosaveInterval: SECONDS * 1000});
  }
  return configure.call(this, options, initial);
};
require(AZURITE_DIR + "/gc/BlobGCManager.js").default.prototype.markSweep = async () => {};
"""
COLLECTION = "bench"
NOOP_RUNS = 5  # no-op re-runs after the first run; the table shows their median
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
    with warnings.catch_warnings():  # a thumbnail has no georeferencing
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
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


def build(catalog: Store, target: Store, n: int, scratch: Path, uploads: int) -> float:
    """The bulk path: store the tiny files for `n` items, then one `catalog.publish`.
    On a blob store `uploads` requests are in flight at once (asset uploads, and publish's
    item writes through `Store.each`); assets already stored by an interrupted build are
    not uploaded again (one listing)."""
    start = time.perf_counter()
    cog, png = tiny_files(scratch)
    items = synthetic(n, target)
    stored = set() if target.is_local else {i.key for i in target.list_files(f"{COLLECTION}/")}

    def store(item: pystac.Item) -> None:
        for asset, local in ((item.assets["data"], cog), (item.assets["thumbnail"], png)):
            key = str(target.key_of(asset.href))
            if target.is_local:
                Path(target.href(key)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target.href(key))
            elif key not in stored:
                target.put_file(local, key)

    with ThreadPoolExecutor(max_workers=1 if target.is_local else uploads) as pool:
        list(pool.map(store, items.values()))
    info = CollectionInfo(COLLECTION, "Synthetic items (benchmarks/bench_catalog.py)", "CC0-1.0")
    if catalog.exists(collection_key(COLLECTION)):
        where = catalog.href(collection_key(COLLECTION))
        raise SystemExit(f"{where} exists, not recorded as built (built.json): remove it")
    at_once = byod.storage.REQUESTS_AT_ONCE
    byod.storage.REQUESTS_AT_ONCE = uploads  # read by BlobStore.each at each call
    try:
        publish(catalog, info, items, [], new_version())
    finally:
        byod.storage.REQUESTS_AT_ONCE = at_once
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
    """Azurite on a loopback port, its data in `folder`; the environment that points byod at
    it. The port is kept in `folder.with_suffix(".port")` and used again by the next run on
    the same folder: the published asset hrefs name it."""
    kept = folder.with_suffix(".port")
    if kept.exists():
        port = int(kept.read_text())
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        folder.mkdir(parents=True, exist_ok=True)
        kept.write_text(f"{port}\n")
    if socket.socket().connect_ex(("127.0.0.1", port)) == 0:
        raise SystemExit(f"port {port} of {folder} is taken: is its Azurite still running?")
    # Azurite keeps its blob records in LokiJS and saves the whole database every 5 s when
    # it changed: at 300,000 blobs (~1 KB each) each save stalls its one thread for seconds,
    # a growing share of its CPU while building, and noise in a timed run. Preloaded, this
    # saves every SAVE_SECONDS instead (and, as before, when Azurite stops); and turns off
    # its garbage collector, which walks every blob at start and every 10 min (the space of
    # overwritten blobs is not reclaimed: a few MB a run here).
    preload = folder.with_suffix(".save.js")
    where = json.dumps(str(AZURITE.resolve().parent))
    preload.write_text(
        SAVE_EVERY.replace("SECONDS", str(SAVE_SECONDS)).replace("AZURITE_DIR", where)
    )
    node = shutil.which("node") or "node"
    proc = subprocess.Popen([node, "--require", str(preload), str(AZURITE.resolve()),
                             "--blobHost", "127.0.0.1", "--blobPort", str(port),
                             "--location", str(folder), "--disableTelemetry",
                             "--skipApiVersionCheck", "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600  # it reads its whole database (~1 KB a blob) first
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
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
        proc.terminate()  # Azurite saves its database (seconds at 300,000 blobs), then exits
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def size_rows(where: str, sizes: list[int], base: Path, env: dict[str, str] | None,
              uploads: int, skip_build: bool) -> None:  # fmt: skip
    print(f"\n{where}: {load()}")
    print(f"{'items':>8} {'build s':>8} {'add one s (cpu)':>16} {'no-op s (cpu)':>14} "
          f"{'search s (cpu)':>15} {'plan+publish s':>15}")  # fmt: skip
    kept_any = False
    for n in sizes:
        catalog_url, target_url = stores(n, base, env)
        marker = base / f"{n}" / "built.json"
        if marker.exists():
            built, kept = json.loads(marker.read_text())["seconds"], "*"
            kept_any = True
        elif skip_build:
            print(f"{n:>8} not built in {base} (--skip-build)")
            continue
        else:
            catalog, target = open_stores(catalog_url, target_url, env)
            built, kept = build(catalog, target, n, base / f"{n}" / "tiny", uploads), ""
            record = {"items": n, "seconds": built, "catalog": catalog_url,
                      "target": target_url, "load": load()}  # fmt: skip
            marker.write_text(json.dumps(record) + "\n")
        source = base / f"{n}" / "one"
        runs = len(list(source.glob("*.tif"))) if source.exists() else 0
        # a new input for every run: the earlier ones are in the collection, unchanged
        raster(source / f"new{runs}_20160615.tif", 64, 1 + runs)
        report = base / f"{n}" / f"add-{runs}.json"
        run = ["ingest", str(source), "--collection", COLLECTION, "--catalog", catalog_url,
               "--target", target_url, "--workers", "1", "-q"]  # fmt: skip
        add = cli(*run, "--report", str(report), env=env)
        noop = cli(*run, env=env)
        found = cli("search", catalog_url, *SEARCH, "--json", env=env)
        stages = json.loads(report.read_text()).get("seconds", {})
        split = f"{stages.get('plan', 0):.2f}+{stages.get('publish', 0):.2f}"
        print(f"{n:>8} {built:>7.1f}{kept:1} {add:>16} {noop:>14} {found:>15} {split:>15}")
    if kept_any:
        print("* built by an earlier run in this workdir (kept); its build time then")


def noop_rows(where: str, n: int, base: Path, env: dict[str, str] | None) -> None:
    source = base.parent / "noop-src"  # the same inputs for both tables
    if not source.exists():
        for i in range(n):
            raster(source / f"s{i:05d}_2016{1 + i % 12:02d}01.tif", 32, i)
    # A first run needs a catalog and target with nothing in them (a kept workdir has them).
    stamp = datetime.now(UTC).strftime("%H%M%S")
    catalog_url, target_url = stores(0, base / "noop" / stamp, env)
    if env is not None:
        catalog_url, target_url = f"az://noop{stamp}/c", f"az://noopdata{stamp}/d"
    run = ["ingest", str(source), "--collection", "noop", "--catalog", catalog_url,
           "--target", target_url, "-q"]  # fmt: skip
    first = cli(*run, env=env)
    # A no-op writes nothing, so it can be run again: the median of NOOP_RUNS, each a fresh
    # process (the first right after the first run, while its writes are still flushed).
    agains = sorted((cli(*run, env=env) for _ in range(NOOP_RUNS)), key=lambda t: t.wall)
    again = agains[len(agains) // 2]
    spread = f"{agains[0].wall:.2f}-{agains[-1].wall:.2f}"
    print(f"\n{where}, {n} small inputs: {load()}")
    print(f"{'first run s (cpu)':>18} {'no-op s (cpu), median':>22} {'ratio':>7} "
          f"{'no-ops s':>10} {'ratios':>12}")  # fmt: skip
    ratios = f"{agains[0] / first:.1%}-{agains[-1] / first:.1%}"
    print(f"{first:>18} {again:>22} {again / first:>7.1%} {spread:>10} {ratios:>12}")
    # Not kept: a kept Azurite would read these blobs' records at every start.
    if env is None:
        shutil.rmtree(base / "noop" / stamp, ignore_errors=True)
    else:
        for store in open_stores(catalog_url, target_url, env):
            assert isinstance(store, byod.storage.BlobStore)
            store.container_client.delete_container()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="local; '' for none")
    parser.add_argument("--azurite-sizes", default="1000,10000", help="'' for none")
    parser.add_argument("--noop-inputs", type=int, default=1000, help="0: no no-op table")
    parser.add_argument("--workdir", type=Path, help="kept, and reused when present")
    parser.add_argument("--local-only", action="store_true", help="no Azurite tables")
    parser.add_argument("--skip-build", action="store_true",
                        help="measure only the collections the workdir holds")  # fmt: skip
    parser.add_argument("--uploads", type=int, default=48,
                        help="blob requests in flight while building on Azurite")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    blob_sizes = [int(s) for s in args.azurite_sizes.split(",") if s]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    print(f"byod bench_catalog: {os.cpu_count()} cores, workdir {base}")
    cli("search", "--help")  # fills the bytecode cache: every timed run starts warm
    try:
        if sizes:
            size_rows("local", sizes, base / "local", None, args.uploads, args.skip_build)
        if args.noop_inputs:
            noop_rows("local", args.noop_inputs, base / "local", None)
        if (blob_sizes or args.noop_inputs) and not args.local_only:
            with azurite(base / "azurite") as env:
                if blob_sizes:
                    size_rows("Azurite", blob_sizes, base / "blob", env, args.uploads,
                              args.skip_build)  # fmt: skip
                if args.noop_inputs:
                    noop_rows("Azurite", args.noop_inputs, base / "blob", env)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
