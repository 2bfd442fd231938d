"""CLI smoke tests: options reach the library, output and exit codes are right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from byod.cli import app
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files


def test_ingest_json_report_and_options(tmp_path: Path, write_raster: WriteRaster) -> None:
    write_raster("a.tif", ramp())
    args = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "cat"), "--datetime", "2021-02-03T04:05:06Z",
            "--license", "CC-BY-4.0", "--description", "My rasters", "--workers", "1",
            "--report", str(tmp_path / "report.json"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["counts"]["ingested"] == 1
    assert json.loads((tmp_path / "report.json").read_text()) == printed
    # Default collection id: the slug of the source folder's name.
    collection = json.loads((tmp_path / "cat" / "src" / "collection.json").read_text())
    assert collection["license"] == "CC-BY-4.0"
    assert collection["description"] == "My rasters"
    item = json.loads(item_files(tmp_path / "cat", "src")["a"].read_text())
    assert item["properties"]["datetime"] == "2021-02-03T04:05:06Z"


def test_summary_table_and_quiet(tmp_path: Path, write_raster: WriteRaster) -> None:
    write_raster("a_20240101.tif", ramp())
    base = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "d"),
            "--catalog", str(tmp_path / "c")]  # fmt: skip
    shown = CliRunner().invoke(app, base)
    assert shown.exit_code == 0
    assert "a_20240101.tif" in shown.output and "1 ingested" in shown.output
    quiet = CliRunner().invoke(app, [*base, "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_bad_option_is_a_usage_error(tmp_path: Path, write_raster: WriteRaster) -> None:
    write_raster("a_20240101.tif", ramp())
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "src"), "--compression", "lzma",
                                      "--catalog", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 2
    assert not (tmp_path / "c").exists()


def test_a_configuration_error_exits_2_with_one_line_and_a_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "missing"), "--catalog",
                                      str(tmp_path / "c"), "--report", str(report)])  # fmt: skip
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing" in lines[0]
    written = json.loads(report.read_text())
    assert "not a folder" in written["error"] and written["rows"] == []
    assert not (tmp_path / "c").exists()


def test_an_unexpected_error_exits_3_with_one_line_a_report_and_the_traceback_in_the_log(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """A catalog whose collection.json is not JSON: not a storage fault, not an input's
    fault. The run stops with exit 3 (not 1, which means rejected inputs)."""
    write_raster("a_20240101.tif", ramp())
    bad = tmp_path / "c" / "src" / "collection.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    args = ["ingest", str(tmp_path / "src"), "--catalog", str(tmp_path / "c"), "--target",
            str(tmp_path / "d"), "--report", str(tmp_path / "r.json")]  # fmt: skip
    result = subprocess.run([str(Path(sys.executable).with_name("byod")), *args],
                            capture_output=True, text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unexpected JSONDecodeError")
    assert "JSONDecodeError" in json.loads((tmp_path / "r.json").read_text())["error"]
    assert bad.read_text() == "{not json"  # nothing was written over it

    verbose = subprocess.run([str(Path(sys.executable).with_name("byod")), "-v", *args],
                             capture_output=True, text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert verbose.returncode == 3 and "Traceback" in verbose.stderr
