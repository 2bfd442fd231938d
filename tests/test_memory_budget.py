"""The run's memory budget: more --workers than it holds run fewer conversions at once
(issue 14: the whole tree within 1 GB for any --workers value)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import psutil
import pytest

from byod.cog import cache_budget
from byod.config import MIN_MEMORY_BUDGET_MB
from byod.memory import PARENT_MB, WORKER_MB, conversions_at_once, tree_mb
from tests.conftest import ramp, write_geotiff
from tests.test_cli_manners import invoke, one_error_line

BYOD = Path(sys.executable).parent / "byod"
UTM = {"crs": "EPSG:32633", "transform": (10, 0, 500000, 0, -10, 5000000)}


@pytest.mark.parametrize("budget", [256, 700, 1024, 1500, 4096])
@pytest.mark.parametrize("workers", [1, 2, 3, 8, 32])
def test_at_once_is_the_most_the_budget_holds(budget: int, workers: int) -> None:
    inputs = 20
    at_once = conversions_at_once(workers, inputs, budget)
    assert 1 <= at_once <= min(workers, inputs)

    def peak(k: int) -> int:  # the model, written out: PARENT_MB + k (WORKER_MB + cache)
        return PARENT_MB + k * (WORKER_MB + cache_budget(k) // (1024 * 1024))

    assert tree_mb(at_once) == peak(at_once)
    assert at_once == 1 or peak(at_once) <= budget
    if at_once < min(workers, inputs):  # one more would not fit
        assert peak(at_once + 1) > budget
    assert conversions_at_once(workers, 1, budget) == 1  # never more than the inputs


def _tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 1024**2


def test_eight_workers_stay_in_the_budget(tmp_path: Path) -> None:
    """`--workers 8` over 8 inputs with the default 1 GB budget: the report says how many ran
    at once, and the summed RSS of byod's process tree (the CLI, the forkserver, every
    worker), sampled from the OS while it runs, stays within the budget. Without the cap
    8 workers peaked at 2.2 GB (benchmarks/README.md)."""
    rng = np.random.default_rng(7)
    for i in range(8):
        data = rng.integers(1, 4000, size=(4, 1200, 1200), dtype=np.uint16)
        write_geotiff(tmp_path / "src" / f"S2A_T33UVP_202401{i + 1:02d}.tif", data, **UTM)
    report = tmp_path / "report.json"
    command = [str(BYOD), "ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
               "--catalog", str(tmp_path / "cat"), "--workers", "8", "--report", str(report),
               "--quiet"]  # fmt: skip
    process = subprocess.Popen(command)
    peak, stop = [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            stop.wait(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        assert process.wait(timeout=600) == 0
    finally:
        stop.set()
        watcher.join()
    data = json.loads(report.read_text())
    at_once = conversions_at_once(8, 8, 1024)
    assert at_once < 8
    assert any(n.startswith(f"--workers 8: {at_once} conversion(s) at once") for n in data["notes"])
    assert {r["status"] for r in data["rows"]} == {"ingested"}
    assert 0 < peak[0] <= 1024, f"peak summed RSS {peak[0]:.0f} MB"


def test_a_budget_one_conversion_cannot_keep_is_refused(tmp_path: Path) -> None:
    # Review RT: 300 MB was accepted, then the run used 517 MB and the note said it fit.
    assert tree_mb(1) == MIN_MEMORY_BUDGET_MB  # the CLI's bound is the model's least tree
    write_geotiff(tmp_path / "src" / "a_20240101.tif", ramp(16, 16), **UTM)
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"),
                    "--target", str(tmp_path / "d"), "--memory-budget",
                    str(MIN_MEMORY_BUDGET_MB - 1))  # fmt: skip
    assert result.exit_code == 2
    assert "--memory-budget" in one_error_line(result)
    assert str(MIN_MEMORY_BUDGET_MB) in one_error_line(result)
    assert not (tmp_path / "c").exists()


def test_the_run_notes_are_printed_under_the_table(tmp_path: Path) -> None:
    # Review RT: the cap's note reached only the JSON report.
    for i in range(3):
        write_geotiff(tmp_path / "src" / f"a_2024010{i + 1}.tif", ramp(16, 16), **UTM)
    result = invoke("ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"),
                    "--target", str(tmp_path / "d"), "--workers", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    at_once = conversions_at_once(3, 3, 1024)
    assert at_once < 3
    printed = " ".join(result.output.split())  # the terminal may wrap the note
    assert f"note: --workers 3: {at_once} conversion(s) at once" in printed
