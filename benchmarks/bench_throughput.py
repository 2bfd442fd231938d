"""byod ingest against a bare `rio cogeo create` loop: wall time, peak memory, stages (issue 14),
and the throughput of many small files (issue 13).

    .venv/bin/python benchmarks/bench_throughput.py                   # 2 x 1 GB, 3 runs
    .venv/bin/python benchmarks/bench_throughput.py --small --runs 1  # 2 x 60 MB, quick
    .venv/bin/python benchmarks/bench_throughput.py --skip-big --small-files 5000

Generates the inputs once into --workdir (cached across runs): two Sentinel-2-like rasters
(4 x uint16, 10980 x 10980, striped, uncompressed, about 965 MB each; --small: 2745 x 2745)
and N small 256 x 256 ones. Every case runs as the commands a user types, in subprocesses:
`rio cogeo create -p deflate` one file after the other, and `byod ingest --workers 2` of the
folder (local target, and Azurite's blob storage with --azurite). Each process tree is
polled every 50 ms from /proc: the peak of the summed RSS of every process in it (shared
pages counted once per process) and of the summed PSS (shared pages split between the
processes that share them), and its CPU seconds; the Azurite row adds Azurite's own CPU
seconds (its node process shares the cores). The median of --runs runs is printed, with the
load average around each case. It asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
MB = 1_000_000
S2_SIDE = 10980
SMALL_SIDE = 2745  # 1/16 of the pixels
STAGES = ("fingerprint", "fetch", "inspect", "metadata", "convert", "validate", "footprint",
          "thumbnail", "checksum", "store")  # fmt: skip


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------


def big_inputs(workdir: Path, side: int) -> Path:
    """Two Sentinel-2-like rasters in `workdir/big-<side>/` (made once, then reused)."""
    sys.path.insert(0, str(HERE))
    from bench_cog import generate_input  # the same signal, nodata border and layout

    folder = workdir / f"big-{side}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("S2A_T33UVP_20240101.tif", "S2B_T33UWP_20240102.tif")):
        path = folder / name
        if not path.exists():
            partial = path.with_suffix(".partial.tif")
            generate_input(partial, (side * side * 8 + 1) / MB, seed=i)
            partial.rename(path)
    return folder


def small_inputs(workdir: Path, count: int) -> Path:
    """`count` 256 x 256 single-band uint16 rasters (smooth signal and noise, nodata 0 in a
    corner), all in one folder (made once, then reused)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    folder = workdir / f"small-{count}"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256].astype("float32")
    for i in range(count):
        path = folder / f"tile_{i:05d}_20240101.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        signal = 1500 + 500 * np.sin(xx / 40 + i) * np.cos(yy / 55)
        data = (signal + rng.integers(-30, 31, (256, 256))).astype("uint16")
        data[:32, :32] = 0
        col, row = i % 100, i // 100
        with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=1,
                           dtype="uint16", crs="EPSG:32633", nodata=0,
                           transform=from_origin(300000 + 2560 * col, 6000000 - 2560 * row,
                                                 10, 10)) as dst:  # fmt: skip
            dst.write(data, 1)
    done.touch()
    return folder


# ------------------------------------------------------------------------------------------
# Measuring a process tree
# ------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds used so far by the live processes of `pid`'s tree."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _kb(path: str, field_name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Measured:
    wall: float
    rss_mb: float  # peak of the summed RSS of the tree
    pss_mb: float  # peak of the summed PSS of the tree
    processes: int  # most processes seen at once
    cpu: float  # user + system CPU seconds of the tree (each process's last sample)
    load: tuple[float, float]  # 1-minute load average before and after
    code: int
    extra: dict[str, object] = field(default_factory=dict)


# The environment of every case (see `bytecode_cache`).
ENV: dict[str, str] = dict(os.environ)


def bytecode_cache(workdir: Path) -> None:
    """Let the cases read and write compiled bytecode in `workdir/pycache`
    (PYTHONPYCACHEPREFIX), as any installed Python does in its own __pycache__ folders,
    and warm it with the modules the commands import. Without it, where
    PYTHONDONTWRITEBYTECODE=1 is set and the venv has no .pyc files (this machine), every
    command compiles its imports from source: `byod ingest` spent 5-7 s of a run importing
    stac-geoparquet, pyarrow and pandas for the index."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    modules = ("byod.cli, byod.pipeline, byod.catalog, byod.index, byod.work, byod.batches, "
               "stac_geoparquet, pyarrow.parquet, pystac, azure.storage.blob, "
               "rio_cogeo.scripts.cli")  # fmt: skip
    subprocess.run([sys.executable, "-c", f"import {modules}"], env=ENV, check=True)


def measure(command: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run `command`, polling its process tree every 50 ms; the wall time and the peaks."""
    load_before = os.getloadavg()[0]
    peak = {"rss": 0, "pss": 0, "n": 0}
    ticks: dict[tuple[int, str], int] = {}  # (pid, start time) -> utime + stime
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env or ENV)  # fmt: skip
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            pids = _tree(proc.pid)
            rss = sum(_kb(f"/proc/{p}/status", "VmRSS") for p in pids)
            pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            peak["n"] = max(peak["n"], len(pids))
            for p in pids:
                try:
                    fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                ticks[(p, fields[19])] = int(fields[11]) + int(fields[12])
            stop.wait(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    if proc.returncode not in (0, 1):
        print(f"  ! {' '.join(command[:3])} exited {proc.returncode}: {err.decode()[-500:]}")
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return Measured(wall, peak["rss"] / 1024, peak["pss"] / 1024, peak["n"], cpu,
                    (load_before, os.getloadavg()[0]), proc.returncode)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------


def bare_loop(files: list[Path], out: Path) -> Measured:
    """`rio cogeo create -p deflate` on each file, one after the other, as one shell loop."""
    out.mkdir(parents=True, exist_ok=True)
    script = " && ".join(f"'{BIN / 'rio'}' cogeo create -p deflate -q '{f}' '{out / f.name}'"
                         for f in files)  # fmt: skip
    result = measure(["bash", "-c", script])
    shutil.rmtree(out, ignore_errors=True)
    return result


def byod_ingest(source: Path, out: Path, workers: int, env: dict[str, str] | None = None,
                target: str | None = None, catalog: str | None = None) -> Measured:  # fmt: skip
    """`byod ingest SOURCE --workers N` into fresh target and catalog folders (or URLs)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    report = out / "report.json"
    command = [str(BIN / "byod"), "ingest", str(source), "--collection", "bench",
               "--target", target or str(out / "data"), "--catalog", catalog or str(out / "cat"),
               "--workers", str(workers), "--report", str(report), "-q"]  # fmt: skip
    result = measure(command, env)
    if report.exists():
        data = json.loads(report.read_text("utf-8"))
        result.extra = {"rows": data["rows"], "run": data.get("seconds", {}),
                        "counts": data.get("counts", {})}  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return result


class Azurite:
    """Azurite's blob service on a free loopback port, its data in a temp folder. `cpu()`:
    the CPU seconds its node process tree used so far (it shares the machine's cores with
    byod: the Azurite row shows what it cost)."""

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid)

    def __enter__(self) -> str:
        binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.folder = Path(tempfile.mkdtemp(prefix="bench-azurite-"))
        self.proc = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
             str(self.folder), "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(300):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        key = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")  # Azurite's published development key  # fmt: skip
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def machine() -> str:
    import rasterio
    import rio_cogeo

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                if line.startswith("model name")), platform.processor())  # fmt: skip
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (
        f"{os.cpu_count()} cores ({cpu}), {ram:.0f} GiB RAM; Python "
        f"{platform.python_version()}, GDAL {rasterio.__gdal_version__}, rasterio "
        f"{rasterio.__version__}, rio-cogeo {rio_cogeo.__version__}; byod {commit}"
        f"{' + uncommitted src/ changes' if dirty else ''}"
    )


def median_of(runs: list[Measured]) -> dict[str, float]:
    return {"wall": statistics.median(r.wall for r in runs),
            "min": min(r.wall for r in runs), "max": max(r.wall for r in runs),
            "rss": max(r.rss_mb for r in runs), "pss": max(r.pss_mb for r in runs),
            "cpu": statistics.median(r.cpu for r in runs),
            "server_cpu": statistics.median(float(r.extra.get("server_cpu", 0.0))  # type: ignore[arg-type]
                                            for r in runs),
            "load": max(max(r.load) for r in runs)}  # fmt: skip


def print_table(rows: list[tuple[str, dict[str, float], str]]) -> None:
    print(f"{'case':58} {'wall s (min-max)':>20} {'ratio':>7} {'CPU s':>7} {'Azurite CPU s':>14} "
          f"{'peak RSS MB':>12} {'peak PSS MB':>12} {'load':>5}")  # fmt: skip
    for name, m, ratio in rows:
        spread = f"{m['wall']:.1f} ({m['min']:.1f}-{m['max']:.1f})"
        server = f"{m['server_cpu']:.1f}" if m["server_cpu"] else ""
        print(f"{name:58} {spread:>20} {ratio:>7} {m['cpu']:>7.1f} {server:>14} "
              f"{m['rss']:>12.0f} {m['pss']:>12.0f} {m['load']:>5.1f}")  # fmt: skip


def print_stages(title: str, runs: list[Measured]) -> None:
    """Median seconds per stage over every ingested input of every run, and their sum."""
    rows = [row for r in runs for row in r.extra.get("rows", []) if "stages" in row]  # type: ignore[attr-defined]
    if not rows:
        return
    print(f"\nstages of {title} (median s per input over {len(rows)} inputs; total s summed):")
    print(f"{'stage':12} {'median':>9} {'total':>9}")
    for stage in STAGES:
        values = [row["stages"].get(stage, 0.0) for row in rows]
        print(f"{stage:12} {statistics.median(values):>9.3f} {sum(values):>9.2f}")
    walls = [row.get("seconds", 0.0) for row in rows]
    print(f"{'input total':12} {statistics.median(walls):>9.3f} {sum(walls):>9.2f}")
    steps: dict[str, list[float]] = {}
    for r in runs:
        for step, seconds in r.extra.get("run", {}).items():  # type: ignore[attr-defined]
            steps.setdefault(step, []).append(seconds)
    for step, values in steps.items():
        print(f"run {step:8} {statistics.median(values):>9.3f} (median per run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "byod-bench")
    parser.add_argument("--small", action="store_true", help="2745 x 2745 inputs (quick)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--azurite", action="store_true", help="also a blob target (Azurite)")
    parser.add_argument("--skip-big", action="store_true", help="only the small files")
    parser.add_argument("--small-files", type=int, default=0, metavar="N",
                        help="also ingest N 256 x 256 files (issue 13: 5000)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--as-installed", action="store_true",
                        help="no bytecode cache of its own: the environment as it is")  # fmt: skip
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.as_installed:
        bytecode_cache(args.workdir)
    cache = "as installed" if args.as_installed else "bytecode cached in --workdir"
    print(f"byod throughput benchmark {time.strftime('%Y-%m-%d %H:%M')}; {machine()}; {cache}")
    results: dict[str, list[Measured]] = {}
    out = args.workdir / "out"
    if not args.skip_big:
        side = SMALL_SIDE if args.small else S2_SIDE
        folder = big_inputs(args.workdir, side)
        files = sorted(folder.glob("*.tif"))
        one = args.workdir / f"one-{side}"
        one.mkdir(exist_ok=True)
        if not (one / files[0].name).exists():
            os.link(files[0], one / files[0].name)
        size = sum(f.stat().st_size for f in files) / MB
        print(
            f"inputs: {len(files)} x {side} x {side} px, 4 x uint16, striped, uncompressed, "
            f"{size:.0f} MB in all; {args.runs} run(s) per case, cases interleaved"
        )
        cases = {
            "bare: rio cogeo create -p deflate, files one after the other":
                lambda: bare_loop(files, out / "bare"),
            f"byod ingest --workers {args.workers} (folder, local target)":
                lambda: byod_ingest(folder, out / "byod", args.workers),
            "bare: rio cogeo create -p deflate, one file":
                lambda: bare_loop(files[:1], out / "bare1"),
            f"byod ingest --workers {args.workers} (one file, local target)":
                lambda: byod_ingest(one, out / "byod1", args.workers),
        }  # fmt: skip
        azurite = Azurite() if args.azurite else None
        env = None
        if azurite is not None:
            env = {**ENV, "AZURE_STORAGE_CONNECTION_STRING": azurite.__enter__()}

            def on_azurite() -> Measured:
                assert azurite is not None
                before = azurite.cpu()
                result = byod_ingest(folder, out / "az", args.workers, env,
                                     target=f"az://cogs-{time.time_ns()}",
                                     catalog=f"az://stac-{time.time_ns()}")  # fmt: skip
                result.extra["server_cpu"] = azurite.cpu() - before
                return result

            cases[f"byod ingest --workers {args.workers} (folder, Azurite target)"] = on_azurite
        try:
            for _ in range(args.runs):  # interleaved: a load change hits every case alike
                for name, case in cases.items():
                    results.setdefault(name, []).append(case())
        finally:
            if azurite is not None:
                azurite.__exit__()
        m = {name: median_of(runs) for name, runs in results.items()}
        names = list(cases)
        ratios = {names[0]: "1.00", names[2]: "1.00",
                  names[1]: f"{m[names[1]]['wall'] / m[names[0]]['wall']:.2f}",
                  names[3]: f"{m[names[3]]['wall'] / m[names[2]]['wall']:.2f}"}  # fmt: skip
        if azurite is not None:
            ratios[names[4]] = f"{m[names[4]]['wall'] / m[names[1]]['wall']:.2f}"
        print()
        print_table([(name, m[name], ratios[name]) for name in names])
        print(
            "ratio: byod over the bare loop above it (targets: folder <= 0.75, one file "
            "<= 1.05); Azurite over the local folder ingest (target <= 1.10). CPU s: byod's "
            "process tree; Azurite CPU s: Azurite's own node process, on the same 2 cores. "
            "Peak RSS: the tree's summed RSS (target <= 1000 MB); PSS splits shared pages."
        )
        print_stages(names[1], results[names[1]])
        print_stages(names[3], results[names[3]])
    if args.small_files:
        folder = small_inputs(args.workdir, args.small_files)
        runs = [byod_ingest(folder, out / "small", args.workers) for _ in range(args.runs)]
        results["small files"] = runs
        small = median_of(runs)
        rate = args.small_files / small["wall"]
        counts = runs[-1].extra.get("counts", {})
        print(f"\n{args.small_files} small files (256 x 256, 1 x uint16), byod ingest --workers "
              f"{args.workers}: {small['wall']:.1f} s ({small['min']:.1f}-{small['max']:.1f}), "
              f"{rate:.1f} files/s (target >= 20), peak RSS {small['rss']:.0f} MB, PSS "
              f"{small['pss']:.0f} MB, load up to {small['load']:.1f}; {counts}; CPU "
              f"{small['cpu']:.0f} s, {small['cpu'] / args.small_files * 1000:.0f} ms a file: "
              f"at most {os.cpu_count() or 1:d} / that = "
              f"{(os.cpu_count() or 1) * args.small_files / small['cpu']:.0f} files/s on idle "
              "cores")  # fmt: skip
        print_stages("the small files", runs)
    if args.json:
        args.json.write_text(json.dumps({k: [vars(r) for r in v] for k, v in results.items()},
                                        default=str, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
