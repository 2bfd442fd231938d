"""byod.yaml: a dataset ingested the same way every time; typed options still win."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from byod.cli import app
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files

CONFIG = """
title: Lab composites
description: Cloud-masked composites from the lab's pipeline.
license: CC-BY-4.0
providers: [{name: Example Lab, roles: [producer, processor], url: https://lab.example}]
keywords: [ndvi, vienna]
time: {pattern: 'doy(?P<year>\\d{4})_(?P<month>\\d{2})'}
clouds: {rule: 'values:1', band: 2}
"""


def _write(tmp_path: Path, write_raster: WriteRaster) -> None:
    mask = (np.arange(100).reshape(10, 10) < 30).astype("uint16")
    write_raster("tile_doy2019_05.tif", np.stack([ramp(10, 10)[0], mask]))
    (tmp_path / "src" / "byod.yaml").write_text(CONFIG)


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], dict[str, object]]:
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "src"), "--target",
                                      str(tmp_path / "d"), "--catalog", str(tmp_path / "c"),
                                      "--quiet", *extra])  # fmt: skip
    collection = json.loads((tmp_path / "c" / "src" / "collection.json").read_text())
    item = json.loads(item_files(tmp_path / "c", "src")["tile_doy2019_05"].read_text())
    return result.exit_code, collection, item


def test_config_file_in_the_source_folder(tmp_path: Path, write_raster: WriteRaster) -> None:
    _write(tmp_path, write_raster)
    code, collection, item = _run(tmp_path)
    assert code == 0
    assert collection["title"] == "Lab composites"
    assert collection["license"] == "CC-BY-4.0"
    assert collection["keywords"] == ["ndvi", "vienna"]
    assert collection["providers"][0]["roles"] == ["producer", "processor"]
    props = item["properties"]
    assert props["start_datetime"] == "2019-05-01T00:00:00Z"  # the file's pattern
    assert props["eo:cloud_cover"] == 30.0  # band 2 read with values:1
    assert collection["summaries"]["eo:cloud_cover"] == {"minimum": 30.0, "maximum": 30.0}


def test_typed_options_override_the_file(tmp_path: Path, write_raster: WriteRaster) -> None:
    _write(tmp_path, write_raster)
    code, collection, item = _run(tmp_path, "--license", "MIT", "--cloud-cover", "5")
    assert code == 0
    assert collection["license"] == "MIT" and collection["title"] == "Lab composites"
    assert item["properties"]["eo:cloud_cover"] == 5.0


def test_a_bad_config_is_a_usage_error(tmp_path: Path, write_raster: WriteRaster) -> None:
    write_raster("a_20240101.tif", ramp())
    bad = tmp_path / "other.yaml"
    bad.write_text("clouds: {rule: cumulus}\nunknown_key: 1\n")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "src"), "--config", str(bad),
                                      "--catalog", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 2
    assert "unknown_key" in result.output
    assert not (tmp_path / "c").exists()
    bad.write_text("clouds: {rule: cumulus}\n")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "src"), "--config", str(bad),
                                      "--catalog", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 2 and "cumulus" in result.output


def test_the_time_section_sets_every_field_and_keeps_its_former_name(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """`time:` is IngestSettings.time: its `datetime` stamps every item (a dataset of one
    day); `datetime:`, the section's name before, is still read."""
    _write(tmp_path, write_raster)
    config = tmp_path / "src" / "byod.yaml"
    config.write_text(CONFIG.replace("time: {pattern:", "datetime: {pattern:"))
    code, _, item = _run(tmp_path)
    assert code == 0 and item["properties"]["start_datetime"] == "2019-05-01T00:00:00Z"
    config.write_text(CONFIG.replace("time: {pattern:", "time: {datetime: 2020-02-02, pattern:"))
    code, _, item = _run(tmp_path, "--catalog", str(tmp_path / "c2"))
    assert code == 0
    item = json.loads(item_files(tmp_path / "c2", "src")["tile_doy2019_05"].read_text())
    assert item["properties"]["datetime"] == "2020-02-02T00:00:00Z"
    assert item["properties"]["byod:datetime_source"] == "option"


def test_a_typed_cloud_option_keeps_the_files_other_cloud_keys(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """--cloud-rule replaces clouds.rule only: the file's clouds.band still names the mask."""
    _write(tmp_path, write_raster)
    code, _, item = _run(tmp_path, "--cloud-rule", "values:0")
    assert code == 0
    assert item["properties"]["eo:cloud_cover"] == 70.0  # band 2's zeros: 70 of 100 pixels
