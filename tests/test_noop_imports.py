"""A no-op re-run imports no GDAL (rasterio), no shapely, no pystac and no
pyarrow.compute, and a quiet CLI no-op without byod.yaml no rich or PyYAML (issue 13: its
time should be listing the source, and a 1,000-input no-op was mostly imports): discovery
knows `.tif` without GDAL's extension list, planning reads the index without shapely or
Arrow kernels, and items are built with pystac only when there are some. A file of an
extension byod does not know still asks GDAL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from byod.report import Report, Status
from tests.conftest import WriteRaster, ramp

# Each was a tenth or more of a 1,000-input no-op on the 2-core machine (importtime).
HEAVY = ("rasterio", "shapely", "pystac", "pyarrow.compute")


def _no_op_in_a_fresh_process(tmp_path: Path) -> tuple[list[str], list[str]]:
    """The modules of HEAVY a library no-op loads, and its rows' statuses."""
    code = f"""
import json, sys
from byod.config import IngestSettings
from byod.pipeline import ingest
report = ingest(IngestSettings(source={str(tmp_path / "src")!r}, collection="test",
                               target={str(tmp_path / "data")!r},
                               catalog={str(tmp_path / "catalog")!r}, workers=2))
print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules],
                  [str(r.status) for r in report.rows]]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)  # fmt: skip
    loaded, statuses = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded, statuses


def test_a_no_op_over_tifs_imports_no_gdal_nor_shapely(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.TIF", ramp())
    (tmp_path / "src" / "a_20240101.tfw").write_text("10\n0\n0\n-10\n500005\n4999995\n")
    assert {r.status for r in run_ingest().rows} == {Status.INGESTED}
    loaded, statuses = _no_op_in_a_fresh_process(tmp_path)
    assert statuses == [Status.UNCHANGED, Status.UNCHANGED]
    assert loaded == []


def test_a_quiet_cli_no_op_imports_none_of_them_nor_rich_nor_yaml(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    # The CLI's own run of the same folder, as `byod ingest ... -q` (nothing to print).
    code = f"""
import sys
from byod.cli import app
try:
    app(["ingest", {str(tmp_path / "src")!r}, "--collection", "test", "-q",
         "--target", {str(tmp_path / "data")!r}, "--catalog", {str(tmp_path / "catalog")!r}])
except SystemExit as exc:
    print(exc.code, [m for m in (*{HEAVY!r}, "rich", "yaml") if m in sys.modules])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stderr


def test_a_file_of_another_extension_still_asks_gdal(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    (tmp_path / "src" / "notes.csv").write_text("a,b\n1,2\n")
    run_ingest()
    loaded, statuses = _no_op_in_a_fresh_process(tmp_path)
    assert statuses == [Status.UNCHANGED]
    assert "rasterio" in loaded
