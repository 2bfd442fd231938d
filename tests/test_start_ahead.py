"""A run that converts prepares what comes next while it would otherwise wait (issue 13:
adding one input to a large collection): the forkserver is started as soon as planning
knows there is work, and a run whose inputs all convert at once imports what publishing
needs (pystac, stac-geoparquet) while its workers convert, not after. Each is checked in a
fresh process, where nothing was imported or started before."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from byod.report import Report
from tests.conftest import WriteRaster, ramp

_SETTINGS = """
from byod.config import IngestSettings
settings = IngestSettings(source={src!r}, collection="test", target={data!r},
                          catalog={catalog!r}, workers={workers})
"""


def _in_a_fresh_process(tmp_path: Path, code: str, workers: int = 2) -> dict[str, object]:
    setup = _SETTINGS.format(src=str(tmp_path / "src"), data=str(tmp_path / "data"),
                             catalog=str(tmp_path / "catalog"), workers=workers)  # fmt: skip
    result = subprocess.run([sys.executable, "-c", setup + code], capture_output=True,
                            text=True, check=True, cwd=tmp_path)  # fmt: skip
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_planning_with_work_starts_the_forkserver_and_a_no_op_does_not(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    code = """
import json
from multiprocessing import forkserver
from byod.pipeline import plan_run
run = plan_run(settings)
print(json.dumps({"todo": len(run.todo),
                  "started": forkserver._forkserver._forkserver_pid is not None}))
"""
    assert _in_a_fresh_process(tmp_path, code) == {"todo": 1, "started": True}
    run_ingest()
    assert _in_a_fresh_process(tmp_path, code) == {"todo": 0, "started": False}


def _imported_when_stored(tmp_path: Path, workers: int) -> dict[str, object]:
    """Whether pystac and stac-geoparquet were imported when the last input was stored
    (before publishing), in a fresh process."""
    code = """
import json, sys
from byod.pipeline import ingest
from byod.runs import Progress
seen = {}
class Watch(Progress):
    def finished(self, row):
        seen[row.input] = [m for m in ("pystac", "stac_geoparquet") if m in sys.modules]
report = ingest(settings, Watch())
print(json.dumps({"statuses": sorted(str(r.status) for r in report.rows),
                  "imported": seen[max(seen)]}))
"""
    return _in_a_fresh_process(tmp_path, code, workers)


def test_inputs_converting_at_once_import_publishing_while_they_convert(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.tif", ramp())
    found = _imported_when_stored(tmp_path, workers=2)
    assert found == {"statuses": ["ingested", "ingested"],
                     "imported": ["pystac", "stac_geoparquet"]}  # fmt: skip


def test_a_signal_during_the_imports_ahead_waits_for_them_and_the_next_run_works(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """A Ctrl-C while `process_all` imports GDAL's and publishing's modules (pandas) is
    taken after them: cut inside an import, a module stays half-imported in `sys.modules`
    and a notebook's next run failed with `partially initialized module 'pandas'`."""
    write_raster("a_20240101.tif", ramp())
    code = """
import json, os, signal
import byod.publishing
from byod.errors import RunInterrupted
from byod.pipeline import ingest
done = []
real = byod.publishing.import_ahead
def ahead():
    os.kill(os.getpid(), signal.SIGINT)  # delivered inside the block of imports
    real()
    done.append("imported")
byod.publishing.import_ahead = ahead
try:
    ingest(settings)
    first = "finished"
except RunInterrupted as exc:
    first = f"interrupted {exc.signum}"
byod.publishing.import_ahead = real
again = ingest(settings)
print(json.dumps({"first": first, "done": done,
                  "again": sorted(str(r.status) for r in again.rows)}))
"""
    found = _in_a_fresh_process(tmp_path, code)
    assert found == {"first": f"interrupted {int(signal.SIGINT)}", "done": ["imported"],
                     "again": ["ingested"]}  # fmt: skip
