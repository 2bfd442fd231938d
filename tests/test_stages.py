"""Stage timings in the report, and small inputs worked on in batches (issues 13 and 14).

No speed is asserted: timings must be present, non-negative and consistent with the wall
time this test measures itself; batching must not change what is ingested or rejected.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio

from byod.batches import run_in_batches
from byod.reasons import Reason
from byod.report import STAGE_NAMES, Report, Status
from tests.batch_jobs import Job, work
from tests.conftest import WriteRaster, ramp


def test_report_times_every_stage_of_every_input(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp(300, 200, bands=3), nodata=0)
    write_raster("b_20240102.tif", ramp(64, 64))
    (tmp_path / "src" / "broken_20240103.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    started = time.perf_counter()
    report = run_ingest()
    wall = time.perf_counter() - started
    path = tmp_path / "report.json"
    report.write(path)
    rows = {row["input"]: row for row in json.loads(path.read_text("utf-8"))["rows"]}

    for name in ("a_20240101.tif", "b_20240102.tif"):
        row = rows[name]
        assert row["status"] == "ingested"
        assert list(row["stages"]) == [s for s in STAGE_NAMES if s in row["stages"]]
        assert set(row["stages"]) == set(STAGE_NAMES)  # a local single-file input has them all
        assert all(seconds >= 0 for seconds in row["stages"].values())
        # The stages are parts of the input's own time, which is part of the run's.
        assert sum(row["stages"].values()) <= row["seconds"] + 0.005
        assert 0 < row["seconds"] <= wall
    broken = rows["broken_20240103.tif"]
    assert broken["status"] == "rejected"
    assert broken["stages"]["fingerprint"] >= 0 and "convert" not in broken["stages"]
    run_steps = json.loads(path.read_text("utf-8"))["seconds"]
    assert set(run_steps) == {"plan", "publish"}
    assert all(0 <= s <= wall for s in run_steps.values())


def test_small_inputs_in_batches_are_ingested_and_rejected_as_alone(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    # 24 small inputs, 2 workers: batches of 3 (byod.batches.batch_size), one of them broken.
    rng = np.random.default_rng(7)
    arrays = {}
    for i in range(23):
        arrays[f"t{i:02d}_20240101.tif"] = rng.integers(1, 5000, (1, 40, 50), dtype="uint16")
        write_raster(f"t{i:02d}_20240101.tif", arrays[f"t{i:02d}_20240101.tif"])
    (tmp_path / "src" / "t99_20240101.tif").write_bytes(b"II*\x00" + b"\x01" * 300)
    report = run_ingest()
    by_input = {r.input: r for r in report.rows}
    assert by_input["t99_20240101.tif"].status is Status.REJECTED
    # Its first IFD offset (0x01010101) lies past its end: truncated, as when alone.
    assert by_input["t99_20240101.tif"].reason is Reason.TRUNCATED
    for name, data in arrays.items():
        row = by_input[name]
        assert row.status is Status.INGESTED, row
        (cog,) = (tmp_path / "data").rglob(f"{row.item_ids[0]}.tif")
        with rasterio.open(cog) as src:  # the COG holds this input's pixels, not another's
            assert np.array_equal(src.read(), data)


def test_a_batch_that_fails_is_split_and_each_input_bounded_alone(tmp_path: Path) -> None:
    names = [f"ok{i}" for i in range(13)] + ["crash", "hang", "reject"]
    jobs = []
    for name in names:
        (tmp_path / name).mkdir()
        jobs.append((name, Job(name, tmp_path / name, tmp_path)))
    stages: list[tuple[str, str]] = []
    done = {d.job.name: d for d in run_in_batches(
        jobs, work, small=lambda job: True, workers=2, timeout_s=3, max_memory_mb=2048,
        on_stage=lambda label, stage: stages.append((label, stage)),
    )}  # fmt: skip
    assert set(done) == set(names)
    results = {name: done[name].result for name in names[:13]}
    assert {name: result and result[0] for name, result in results.items()} == {
        name: name for name in results
    }  # each job's own result
    # 16 inputs, 2 workers: batches of 2; the ok ones not beside crash or hang stayed batched.
    pids = [result[1] for result in results.values() if result is not None]
    assert len(set(pids)) < len(pids)
    crash, hang, reject = (done[n].rejection for n in ("crash", "hang", "reject"))
    assert crash is not None and crash.reason is Reason.CRASHED
    assert hang is not None and hang.reason is Reason.TIMEOUT
    assert "3 s" in hang.message  # its own --timeout, alone
    assert reject is not None and reject.reason is Reason.NOT_A_RASTER
    assert ("ok0", "working") in stages  # progress names the input, not the batch
