"""Benchmark byod's COG conversion and ingest: time, output size and peak memory, side by side.

    .venv/bin/python benchmarks/bench_cog.py --size-mb 400

Generates one realistic input (uint16, 4 bands, smooth signal + noise, striped uncompressed
GeoTIFF in EPSG:32633 with a nodata border), then runs every case in its own fresh subprocess
and prints one table (see benchmarks/README.md for what each row means):

1. conversion routes on the same input: byod's `to_cog` with deflate (the baseline row) and
   zstd; the same `cog_translate` call byod makes, once with GDAL_CACHEMAX=268435456 (256 MiB in
   bytes, what byod passes) and once with GDAL_CACHEMAX=256 (256 bytes, what byod passed before
   the fix); and rio-cogeo's `cog_translate` as a naive user calls it (stock deflate profile,
   default in_memory, no GDAL config);
2. the whole `byod.pipeline.ingest` of that one file: wall time and the peak RSS of its worker
   process against the input size;
3. two inputs ingested with workers=1 (baseline) against workers=2.

Peak RSS is measured twice, independently:
- by the kernel: `os.wait4` on the case's subprocess returns its ru_maxrss, which includes the
  descendants it reaped. ingest's workers are children of multiprocessing's forkserver, not of
  the process that calls ingest, so the ingest case stops the forkserver (which reaps it) before
  reading RUSAGE_CHILDREN; the table notes what RUSAGE_CHILDREN said before that (0);
- by sampling: every 50 ms the parent reads VmHWM (the kernel's high-water mark of resident
  memory) of every process in the case's tree from /proc, and keeps each process's maximum.

The machine may be shared: before each case the script waits (--quiet-wait) for idle CPUs, and
a row says CONTENTION when other processes used CPU during it. --repeat N keeps the fastest
time and the largest memory of N runs.

Measurement only: nothing is asserted. Everything generated lives under --workdir and is
deleted at the end unless --keep is given.
"""

from __future__ import annotations

# Only the standard library at module level: each case imports what it needs in its subprocess.
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ALL_CASES = ("deflate", "zstd", "cache-bytes", "cache-256", "naive", "ingest", "parallel")
MB = 1_000_000  # sizes in this benchmark are decimal megabytes
POLL_S = 0.05
DATETIME = "2024-01-31T10:15:00Z"
THIS = Path(__file__).resolve()


# --------------------------------------------------------------------------------------------
# Input generation
# --------------------------------------------------------------------------------------------


def generate_input(path: Path, size_mb: float, seed: int = 0) -> dict[str, object]:
    """A striped, uncompressed 4-band uint16 GeoTIFF of about `size_mb` MB.

    The signal is smooth (a few sine waves per band, like terrain and land cover gradients)
    plus uniform noise of +-40 counts, which gives deflate ratios near real reflectance data.
    The valid area is a slanted parallelogram, like a satellite scene in its UTM tile: the
    border is nodata (0).
    """
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    bands = 4
    side = int(math.sqrt(size_mb * MB / (bands * 2)))
    width = height = side
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "count": bands,
        "width": width,
        "height": height,
        "crs": "EPSG:32633",
        "transform": from_origin(399960.0, 5900040.0, 10.0, 10.0),
        "nodata": 0,
        "tiled": False,  # strips, as most plain GeoTIFF writers produce
        "compress": "none",
        "interleave": "pixel",
        "BIGTIFF": "IF_NEEDED",
    }
    rng = np.random.default_rng(seed)
    cols = np.arange(width, dtype=np.float32)
    base = (900, 1200, 1500, 2800)  # blue, green, red, nir-like levels
    names = ("blue", "green", "red", "nir")
    strip = 256
    started = time.perf_counter()
    with rasterio.open(path, "w", **profile) as dst:
        for b, name in enumerate(names, start=1):
            dst.set_band_description(b, name)
        for row0 in range(0, height, strip):
            h = min(strip, height - row0)
            rows = np.arange(row0, row0 + h, dtype=np.float32)[:, None]
            # the valid parallelogram: 3% nodata top and bottom, slanted left and right edges
            frac = rows / height
            left = (0.06 + 0.12 * frac) * width
            right = (0.82 + 0.12 * frac) * width
            valid = (cols[None, :] >= left) & (cols[None, :] < right)
            valid &= (frac >= 0.03) & (frac < 0.97)
            for b in range(bands):
                phase = 0.7 * b
                signal = (
                    base[b]
                    + 600.0 * np.sin(cols / 900.0 + phase)[None, :] * np.cos(rows / 1300.0)
                    + 250.0 * np.sin((cols[None, :] + 1.7 * rows) / 170.0 + phase)
                    + 80.0 * np.cos(cols / 37.0)[None, :] * np.sin(rows / 53.0 + phase)
                )
                noise = rng.integers(-40, 41, size=(h, width), dtype=np.int16)
                data = np.clip(signal + noise, 1, 65535).astype(np.uint16)
                data[~valid] = 0
                dst.write(data, b + 1, window=Window(0, row0, width, h))
    seconds = time.perf_counter() - started
    return {"width": width, "height": height, "bands": bands, "bytes": path.stat().st_size,
            "seconds": seconds}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Cases: each runs in a fresh subprocess (`bench_cog.py --_case SPEC`) and writes a JSON result
# --------------------------------------------------------------------------------------------


def _status_kb(field_name: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _case_convert(spec: dict) -> dict:
    import warnings

    import rasterio
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    from byod.cog import cog_profile, is_valid_cog, to_cog

    src, dst = spec["src"], Path(spec["dst"])
    with rasterio.open(src) as ds:
        dtypes = list(ds.dtypes)
    imports_kb = _status_kb("VmHWM")
    started = time.perf_counter()
    if spec["route"] == "naive":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cog_translate(src, str(dst), cog_profiles.get("deflate"), quiet=True)
    elif spec["route"] == "plain":
        # byod's call with only GDAL_CACHEMAX chosen here. rasterio.Env hands an int straight
        # to GDALSetCacheMax64, which counts bytes: 256 is a 256-byte cache.
        config = {"GDAL_NUM_THREADS": str(spec["threads"]), "GDAL_CACHEMAX": spec["cachemax"],
                  "GDAL_TIFF_INTERNAL_MASK": "TRUE"}  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cog_translate(src, str(dst), cog_profile(spec["compression"], dtypes),
                          in_memory=False, config=config, quiet=True,
                          forward_band_tags=True)  # fmt: skip
    else:
        to_cog(src, dst, compression=spec["compression"], dtypes=dtypes,
               threads=spec["threads"], may_pass_through=False)  # fmt: skip
    seconds = time.perf_counter() - started
    check = time.perf_counter()
    valid = is_valid_cog(dst)
    validate_s = time.perf_counter() - check
    return {"seconds": seconds, "output_bytes": dst.stat().st_size, "valid": valid,
            "validate_s": validate_s, "imports_kb": imports_kb}  # fmt: skip


def _case_ingest(spec: dict) -> dict:
    import datetime as dt
    import resource

    from byod.config import IngestSettings
    from byod.pipeline import ingest

    for folder in (spec["target"], spec["catalog"]):  # a repeat must not find the last run's
        shutil.rmtree(folder, ignore_errors=True)
    settings_kw: dict[str, object] = {
        "source": spec["source"],
        "target": spec["target"],
        "catalog": spec["catalog"],
        "time": {"datetime": dt.datetime.fromisoformat(DATETIME)},
        "compression": spec.get("compression", "deflate"),
    }
    if spec.get("workers") is not None:
        settings_kw["workers"] = spec["workers"]
    settings = IngestSettings(**settings_kw)
    imports_kb = _status_kb("VmHWM")
    started = time.perf_counter()
    report = ingest(settings)
    seconds = time.perf_counter() - started
    # The workers are children of the forkserver; their rusage reaches this process only when
    # the forkserver, our child, is reaped. Read RUSAGE_CHILDREN before and after that.
    before_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stopped = False
    try:
        from multiprocessing import forkserver

        forkserver._forkserver._stop()  # type: ignore[attr-defined]  # private, but it closes the server's pipe and reaps it
        stopped = True
    except Exception:  # noqa: BLE001 - then only the /proc sampling remains; said in the table
        pass
    after_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cogs = sorted(Path(spec["target"]).rglob("*.tif"))
    return {
        "seconds": seconds,
        "statuses": [str(r.status) for r in report.rows],
        "messages": [r.message for r in report.rows if r.message],
        "row_seconds": [r.seconds for r in report.rows],
        "output_bytes": sum(p.stat().st_size for p in cogs),
        "children_kb_before_reap": before_kb,
        "children_kb_after_reap": after_kb,
        "forkserver_reaped": stopped,
        "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "imports_kb": imports_kb,
        "workers": settings.workers,
    }


def _run_case_in_child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    kind = spec["kind"]
    if kind == "generate":
        result = generate_input(Path(spec["path"]), spec["size_mb"])
    elif kind == "convert":
        result = _case_convert(spec)
    else:
        result = _case_ingest(spec)
    Path(spec["result"]).write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Parent side: run a case, sample its process tree, reap it with wait4
# --------------------------------------------------------------------------------------------


@dataclass
class ProcPeak:
    role: str
    hwm_kb: int = 0


@dataclass
class Measured:
    result: dict | None
    wall_s: float
    exit_code: int | None
    maxrss_kb: int  # wait4: the case process and the descendants it reaped
    procs: dict[int, ProcPeak] = field(default_factory=dict)
    tree_peak_kb: int = 0  # largest sum of VmRSS over the tree at one sample (shared pages twice)
    timed_out: bool = False
    stderr_tail: str = ""
    cpu_s: float = 0.0  # user + system CPU of the case and the descendants it reaped
    others_cpu_s: float = 0.0  # CPU used meanwhile by everything else on the machine
    steal_s: float = 0.0  # CPU the hypervisor gave to other guests meanwhile

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    def sampled_peak(self, role: str) -> int:
        return max((p.hwm_kb for p in self.procs.values() if p.role == role), default=0)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _sample_tree(root: int, procs: dict[int, ProcPeak]) -> int:
    """Update each descendant's VmHWM maximum; return the sum of their current VmRSS."""
    kids = _children_map()
    roles = {root: "case"}
    stack, total = [root], 0
    while stack:
        pid = stack.pop()
        peak = procs.setdefault(pid, ProcPeak(roles[pid]))
        # A new process shows its parent's cmdline until it execs, an exiting one none:
        # keep a role once it is known.
        if roles[pid] != "other":
            peak.role = roles[pid]
        role = peak.role
        hwm = _status_kb("VmHWM", pid)
        peak.hwm_kb = max(peak.hwm_kb, hwm)
        total += _status_kb("VmRSS", pid)
        for kid in kids.get(pid, []):
            if role == "forkserver":
                roles[kid] = "worker"
            else:
                cmd = _cmdline(kid)
                roles[kid] = ("forkserver" if "forkserver" in cmd
                              else "tracker" if "resource_tracker" in cmd
                              else "other")  # fmt: skip
            stack.append(kid)
    return total


def _cpu_ticks() -> tuple[int, int]:
    """Busy and steal ticks of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal


def wait_until_quiet(max_wait_s: float, threshold_cores: float = 0.15) -> float:
    """Wait (up to max_wait_s) for a second in which the machine's CPUs are nearly idle, so
    other work on a shared machine does not land inside a case. Returns the seconds waited."""
    tick = os.sysconf("SC_CLK_TCK")
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait_s:
        busy0, _ = _cpu_ticks()
        time.sleep(1.0)
        busy1, _ = _cpu_ticks()
        if (busy1 - busy0) / tick < threshold_cores:
            break
    return time.perf_counter() - started


QUIET_WAIT_S = 120.0  # set from --quiet-wait


def run_case(spec: dict, workdir: Path, timeout_s: float) -> Measured:
    result_path = workdir / f"result-{spec['name']}.json"
    result_path.unlink(missing_ok=True)
    spec = {**spec, "result": str(result_path)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "CPL_"))}
    env["TMPDIR"] = str(workdir / "tmp")  # ingest's work folders land in the work dir too
    err_path = workdir / f"stderr-{spec['name']}.txt"
    import resource

    if QUIET_WAIT_S > 0:
        wait_until_quiet(QUIET_WAIT_S)
    tick = os.sysconf("SC_CLK_TCK")
    busy0, steal0 = _cpu_ticks()
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(THIS), "--_case", json.dumps(spec)],
            stdout=err, stderr=err, env=env, start_new_session=True,
        )  # fmt: skip
    procs: dict[int, ProcPeak] = {}
    tree_peak = 0
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        tree_peak = max(tree_peak, _sample_tree(proc.pid, procs))
        if time.perf_counter() - started > timeout_s:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the group of this case's subprocess only
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    busy1, steal1 = _cpu_ticks()
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    own = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime  # the sampling
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (busy1 - busy0) / tick - cpu - own)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen consistent
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    tail = err_path.read_text()[-1500:] if result is None else ""
    return Measured(result, wall, proc.returncode, usage.ru_maxrss, procs, tree_peak,
                    timed_out, tail, cpu, others, (steal1 - steal0) / tick)  # fmt: skip


def measure(spec: dict, workdir: Path, timeout_s: float, repeat: int) -> Measured:
    """Run a case `repeat` times: the fastest run's time, the largest memory of any run."""
    runs = [run_case(spec, workdir, timeout_s) for _ in range(repeat)]
    done = [m for m in runs if m.result is not None and "seconds" in m.result]
    if not done:
        return runs[-1]
    best = min(done, key=lambda m: m.result["seconds"])  # type: ignore[index]
    best.maxrss_kb = max(m.maxrss_kb for m in runs)
    best.tree_peak_kb = max(m.tree_peak_kb for m in runs)
    for m in runs:
        best.procs.update(m.procs)  # pids differ between runs; peaks are taken per role
    for key in ("children_kb_after_reap", "self_kb"):
        if key in best.result:  # type: ignore[operator]
            best.result[key] = max(m.result.get(key, 0) for m in done)  # type: ignore[index,union-attr]
    return best


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    case: str
    seconds: float | None
    time_base: float | None
    output_mb: float | None
    size_base: float | None
    peak_mb: float | None
    input_mb: float
    notes: str
    cores: float | None = None


def _with_cpu(row: Row, m: Measured) -> Row:
    """CPU cores the case used over its subprocess's life; note what else used the CPUs."""
    row.cores = m.cores
    if m.others_cpu_s / m.wall_s > 0.1 or m.steal_s / m.wall_s > 0.05:
        row.notes += (f"; CONTENTION: other processes used {m.others_cpu_s / m.wall_s:.2f} "
                      f"cores, steal {m.steal_s / m.wall_s:.2f} cores")  # fmt: skip
    return row


def _mb(kb: int) -> float:
    return kb * 1024 / MB


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb",
        type=float,
        default=400,
        help="size of the generated input in MB (10^6 bytes); default 400",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="scratch folder (default: the system temp dir); a subfolder is "
        "created in it and removed at the end",
    )
    parser.add_argument(
        "--cases",
        default=",".join(ALL_CASES),
        help=f"comma-separated subset of: {', '.join(ALL_CASES)}",
    )
    parser.add_argument(
        "--naive-timeout",
        type=float,
        default=900,
        help="seconds after which the naive cog_translate case is killed",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds after which any other case is killed"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30,
        help="before each case, wait up to this many seconds for the CPUs to be idle "
        "(a shared machine); 0 to not wait",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every case this many times: fastest time, largest memory (default 1)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--_case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._case:
        _run_case_in_child(args._case)
        return

    global QUIET_WAIT_S
    QUIET_WAIT_S = args.quiet_wait
    sections = {c.strip() for c in args.cases.split(",")}
    unknown = sections - set(ALL_CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_cog-", dir=parent))
    (workdir / "tmp").mkdir()
    try:
        rows, input_desc = _bench(args, sections, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    _print_table(rows, input_desc, args.repeat)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2))


def _bench(args: argparse.Namespace, sections: set[str], workdir: Path) -> tuple[list[Row], str]:
    inputs = workdir / "inputs"
    inputs.mkdir()
    scene = inputs / "scene.tif"
    print(f"generating ~{args.size_mb:g} MB input in {workdir} ...", flush=True)
    made = run_case({"kind": "generate", "name": "generate", "path": str(scene),
                     "size_mb": args.size_mb}, workdir, args.timeout)  # fmt: skip
    if made.result is None:
        raise SystemExit(f"could not generate the input: {made.stderr_tail}")
    gen = made.result
    input_mb = gen["bytes"] / MB  # type: ignore[operator]
    print(f"  {gen['width']} x {gen['height']} px, 4 x uint16, {input_mb:.0f} MB, "
          f"written in {gen['seconds']:.1f} s", flush=True)  # fmt: skip
    rows: list[Row] = []
    base: dict[str, float] = {}
    input_desc = (f"{gen['width']} x {gen['height']} px, 4 bands uint16, striped, "
                  f"{input_mb:.0f} MB")  # fmt: skip

    def ingest(name: str, files: list[Path], workers: int | None) -> Measured:
        print(f"  case {name} ...", flush=True)
        source = workdir / f"src-{name}"
        source.mkdir()
        for f in files:
            os.link(f, source / f.name)  # same bytes, no copy
        spec = {"kind": "ingest", "name": name, "source": str(source), "workers": workers,
                "target": str(workdir / f"target-{name}"),
                "catalog": str(workdir / f"catalog-{name}")}  # fmt: skip
        m = measure(spec, workdir, args.timeout, args.repeat)
        for d in (source, workdir / f"target-{name}", workdir / f"catalog-{name}"):
            shutil.rmtree(d, ignore_errors=True)
        return m

    # ---- 1. conversion routes -------------------------------------------------------------
    cache_mib = 256 * 1024 * 1024  # what byod passes now (GDAL_CACHEMAX_MB * 1024 * 1024)
    byod_route = "in_memory=False, GDAL_CACHEMAX=256 MiB, 2 threads"
    conversions = [
        ("deflate", "byod", "deflate", None,
         f"byod to_cog deflate (BASELINE): {byod_route}"),
        ("zstd", "byod", "zstd", None, "byod to_cog zstd (level 1, predictor 2), same route"),
        ("cache-bytes", "plain", "deflate", cache_mib,
         f"byod's cog_translate call, deflate, GDAL_CACHEMAX={cache_mib} (256 MiB)"),
        ("cache-256", "plain", "deflate", 256,
         "the same, GDAL_CACHEMAX=256 (256 bytes: byod before the fix)"),
        ("naive", "naive", "deflate", None,
         "naive cog_translate: stock deflate profile, default in_memory, no config"),
    ]  # fmt: skip
    for name, route, compression, cachemax, label in conversions:
        if name not in sections:
            continue
        print(f"  case {name} ...", flush=True)
        dst = workdir / f"{name}.tif"
        spec = {
            "kind": "convert",
            "name": name,
            "route": route,
            "compression": compression,
            "threads": 2,
            "cachemax": cachemax,
            "src": str(scene),
            "dst": str(dst),
        }
        timeout = args.naive_timeout if route == "naive" else args.timeout
        m = measure(spec, workdir, timeout, args.repeat)
        left = dst.stat().st_size / MB if dst.exists() else None
        dst.unlink(missing_ok=True)
        r = m.result
        if r is None:
            why = (
                f"killed after {m.wall_s:.0f} s (timeout)"
                if m.timed_out
                else f"failed (exit {m.exit_code}): {m.stderr_tail.strip()[-300:]}"
            )
            if left is not None:
                why += f"; output file already {left:.0f} MB"
            rows.append(_with_cpu(Row("1", label, None, None, None, None, _mb(m.maxrss_kb),
                                      input_mb, why), m))  # fmt: skip
            continue
        if name == "deflate":
            base["time"], base["size"] = r["seconds"], r["output_bytes"]
        notes = [f"valid COG: {'yes' if r['valid'] else 'NO'}",
                 f"{'incl.' if route == 'byod' else 'then'} validate {r['validate_s']:.2f} s",
                 f"imports {_mb(r['imports_kb']):.0f} MB",
                 f"/proc VmHWM {_mb(m.sampled_peak('case')):.0f} MB"]  # fmt: skip
        rows.append(_with_cpu(Row(
            "1", label, r["seconds"],
            r["seconds"] / base["time"] if "time" in base else None,
            r["output_bytes"] / MB,
            r["output_bytes"] / base["size"] if "size" in base else None,
            _mb(m.maxrss_kb), input_mb, "; ".join(notes),
        ), m))  # fmt: skip

    # ---- 2. the whole ingest of that file ---------------------------------------------------
    def ingest_row(section: str, label: str, m: Measured, baseline: float | None) -> Row:
        r = m.result
        if r is None or any(s != "ingested" for s in r["statuses"]):
            why = (
                f"killed after {m.wall_s:.0f} s (timeout)"
                if m.timed_out
                else f"exit {m.exit_code}, statuses {(r or {}).get('statuses')}: "
                f"{(r or {}).get('messages') or m.stderr_tail[-300:]}"
            )
            return _with_cpu(Row(section, label, None, None, None, None, None, input_mb, why), m)
        kernel_kb = r["children_kb_after_reap"]
        worker_kb = m.sampled_peak("worker")
        notes = [
            f"workers={r['workers']}",
            f"RUSAGE_CHILDREN {_mb(kernel_kb):.0f} MB "
            f"({_mb(r['children_kb_before_reap']):.0f} MB before reaping the forkserver)",
            f"worker alone (/proc VmHWM) {_mb(worker_kb):.0f} MB",
            f"ingest process {_mb(r['self_kb']):.0f} MB",
            f"forkserver {_mb(m.sampled_peak('forkserver')):.0f} MB",
            f"sum of tree RSS {_mb(m.tree_peak_kb):.0f} MB",
        ]
        if not r["forkserver_reaped"]:
            notes.append("forkserver NOT reaped: kernel figure unreliable")
        peak_kb = kernel_kb if r["forkserver_reaped"] else worker_kb
        n = len(r["statuses"])
        row = Row(section, label, r["seconds"],
                  r["seconds"] / baseline if baseline else None,
                  r["output_bytes"] / MB,  # all outputs of the run
                  r["output_bytes"] / (n * base["size"]) if "size" in base else None,
                  _mb(peak_kb), input_mb, "; ".join(notes))  # fmt: skip
        return _with_cpu(row, m)

    time_base = base.get("time")
    if "ingest" in sections:
        # One input alone gets all the cores: cores // min(workers, inputs) = 2 GDAL threads.
        m = ingest("ingest", [scene], None)
        label = "ingest 1 file, default workers (2) -> 2 GDAL threads"
        rows.append(ingest_row("2", label, m, time_base))

    # ---- 3. parallelism -------------------------------------------------------------------
    if "parallel" in sections:
        second = inputs / "scene-b.tif"
        shutil.copyfile(scene, second)  # a distinct file with its own cached pages
        m1 = ingest("parallel-w1", [scene, second], 1)
        row1 = ingest_row("3", "ingest 2 files, workers=1, 2 threads each (BASELINE)", m1, None)
        if row1.seconds:
            row1.time_base = 1.0
        rows.append(row1)
        m2 = ingest("parallel-w2", [scene, second], 2)
        rows.append(ingest_row("3", "ingest 2 files, workers=2 (default), 1 thread each",
                               m2, row1.seconds))  # fmt: skip
        second.unlink(missing_ok=True)
    return rows, input_desc


def _print_table(rows: list[Row], input_desc: str, repeat: int) -> None:
    import datetime as dt
    import platform

    import rasterio
    import rio_cogeo
    from rich.console import Console
    from rich.table import Table

    title = (f"byod COG benchmark {dt.date.today()}, input {input_desc}; "
             f"{os.cpu_count()} cores, "
             f"Python {platform.python_version()}, GDAL {rasterio.__gdal_version__}, "
             f"rasterio {rasterio.__version__}, rio-cogeo {rio_cogeo.__version__}")  # fmt: skip
    table = Table(title=title, show_lines=False, caption=(
        "x time: sections 1-2 relative to the BASELINE row 'byod to_cog deflate', section 3 to "
        "the BASELINE row just above. "
        "x size: relative to 'byod to_cog deflate'. Peak RSS: sections 1: wait4 ru_maxrss of the "
        "case's subprocess; 2-3: RUSAGE_CHILDREN of the ingest process after it reaped the "
        "forkserver, i.e. the largest of the forkserver and its workers (the worker alone, "
        "sampled from /proc, is in the notes). RSS/input: peak RSS over input MB. "
        "CPU cores: user+system CPU of the "
        "case's process tree over its wall time (imports included)."
        + (f" Each case ran {repeat} times: fastest time, largest memory." if repeat > 1 else "")),
        caption_justify="left")  # fmt: skip
    for col, justify in [
        ("#", "left"),
        ("case", "left"),
        ("time s", "right"),
        ("x time", "right"),
        ("output MB", "right"),
        ("x size", "right"),
        ("peak RSS MB", "right"),
        ("RSS/input", "right"),
        ("CPU cores", "right"),
        ("notes", "left"),
    ]:
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    previous = None
    for r in rows:
        if previous is not None and r.section != previous:
            table.add_section()
        previous = r.section
        table.add_row(
            r.section, r.case, _fmt(r.seconds, ".1f"), _fmt(r.time_base, ".2f"),
            _fmt(r.output_mb, ".0f"), _fmt(r.size_base, ".2f"), _fmt(r.peak_mb, ".0f"),
            _fmt(r.peak_mb / r.input_mb if r.peak_mb else None, ".2f"), _fmt(r.cores, ".2f"),
            r.notes,
        )  # fmt: skip
    Console(width=int(os.environ.get("COLUMNS", "200"))).print(table)


if __name__ == "__main__":
    main()
