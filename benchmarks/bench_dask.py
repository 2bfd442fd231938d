"""Throughput of the `byod-ingest` flow on an external Dask cluster of 1 and of 2 workers, on
the same inputs, as a hub runs it (`dask scheduler` + `dask worker` processes on loopback with
default settings: daemonic workers, so each input's bounded worker is a `byod.subworker`
subprocess).

    .venv/bin/python benchmarks/bench_dask.py [--inputs 8] [--size 1500] [--workers 1,2]
                                              [--repeat 1] [--workdir DIR]

Prints one table: per cluster size, the flow's wall-clock time (best of `--repeat`, each run a
fresh catalog and target so nothing is cached or unchanged), the inputs ingested, inputs per
minute and MB of input per second. The Prefect API is a temporary local server started once
(not counted). Measures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# Before Prefect is imported: its temporary server would phone home otherwise.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

import numpy as np
import rasterio
from distributed import Client
from prefect.testing.utilities import prefect_test_harness
from rasterio.transform import from_origin

from byod.config import IngestSettings
from byod_flows import ingest

DASK = str(Path(sys.executable).parent / "dask")


def make_inputs(folder: Path, n: int, size: int) -> int:
    """`n` uint16 GeoTIFFs of `size` x `size` pixels (smooth signal plus noise, so they
    compress like imagery); returns their total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    total = 0
    for i in range(n):
        data = (1000 + 500 * np.sin(xx / (40 + i)) * np.cos(yy / 57)
                + rng.integers(0, 80, (size, size))).astype("uint16")  # fmt: skip
        path = folder / f"scene{i:02d}_2024{1 + i % 12:02d}01.tif"
        profile = {"driver": "GTiff", "width": size, "height": size, "count": 1,
                   "dtype": "uint16", "crs": "EPSG:32633",
                   "transform": from_origin(500000 + i * size * 10, 5000000, 10, 10)}  # fmt: skip
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
        total += path.stat().st_size
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def cluster(workers: int, home: Path) -> Iterator[str]:
    """A scheduler and `workers` default workers (1 thread each) on loopback."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    commands = [[DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1],
                 "--no-dashboard"]]  # fmt: skip
    commands += [[DASK, "worker", address, "--nthreads", "1", "--no-dashboard", "--host",
                  "127.0.0.1"]] * workers  # fmt: skip
    processes = [subprocess.Popen(c, cwd=home, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
                 for c in commands]  # fmt: skip
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in processes:  # each in a session of its own, started here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.wait(timeout=30)


def run(source: Path, out: Path, address: str) -> tuple[float, int]:
    """One flow run into a fresh catalog and target: (seconds, inputs ingested)."""
    shutil.rmtree(out, ignore_errors=True)
    settings = IngestSettings(source=str(source), catalog=str(out / "cat"),
                              target=str(out / "data"), collection="bench")  # fmt: skip
    started = time.perf_counter()
    report = ingest(settings, task_runner="dask", dask_address=address,
                    results=str(out / "results"))  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, int(report["counts"]["ingested"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--size", type=int, default=1500, help="pixels per side")
    parser.add_argument("--workers", default="1,2", help="cluster sizes to compare")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_dask-", dir=args.workdir) as tmp:
        work = Path(tmp)
        size_bytes = make_inputs(work / "src", args.inputs, args.size)
        rows = []
        with prefect_test_harness(server_startup_timeout=120):
            for workers in (int(w) for w in args.workers.split(",")):
                with cluster(workers, work) as address:
                    runs = [run(work / "src", work / "out", address) for _ in range(args.repeat)]
                seconds, ingested = min(runs)
                rows.append((workers, seconds, ingested))
    print(f"{args.inputs} inputs of {args.size}x{args.size} uint16, "
          f"{size_bytes / 1e6:.1f} MB in all; best of {args.repeat}")  # fmt: skip
    print(f"| {'Dask workers':>12} | {'seconds':>8} | {'ingested':>8} | {'inputs/min':>10} "
          f"| {'MB/s':>6} | {'speed-up':>8} |")  # fmt: skip
    print(f"| {'-' * 12} | {'-' * 8} | {'-' * 8} | {'-' * 10} | {'-' * 6} | {'-' * 8} |")
    base = rows[0][1]
    for workers, seconds, ingested in rows:
        print(f"| {workers:>12} | {seconds:>8.1f} | {ingested:>8} | "
              f"{60 * ingested / seconds:>10.1f} | {size_bytes / 1e6 / seconds:>6.1f} | "
              f"{base / seconds:>7.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
