"""CLI smoke tests: options reach the library, output and exit codes are right."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from byod.cli import app
from tests.conftest import WriteRaster, ramp


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
    item = json.loads((tmp_path / "cat" / "src" / "a" / "a.json").read_text())
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
