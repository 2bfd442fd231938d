"""`byod validate`: offline, every object checked, invalid ones reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from byod.cli import app
from byod.report import Report
from byod.validate import OfflineValidator, local_schemas, validate_catalog
from tests.conftest import WriteRaster, ramp
from tests.readback import item_files


def test_every_schema_an_item_needs_is_shipped() -> None:
    schemas = local_schemas()
    for ext in ("projection/v2.0.0", "raster/v1.1.0", "eo/v1.1.0", "file/v2.1.0"):
        assert f"https://stac-extensions.github.io/{ext}/schema.json" in schemas
    assert "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json" in schemas
    assert OfflineValidator().schema_cache.keys() >= schemas.keys()


def test_invalid_item_is_reported(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240101.tif", ramp())
    run_ingest()
    catalog = tmp_path / "catalog" / "catalog.json"
    assert validate_catalog(str(catalog)) == (5, [])  # root, collection, month, two items

    item_path = item_files(tmp_path / "catalog", "test")["a_20240101"]
    item = json.loads(item_path.read_text())
    item["properties"]["proj:shape"] = "64 x 64"  # the projection schema wants two integers
    item_path.write_text(json.dumps(item))
    count, problems = validate_catalog(str(catalog))
    assert count == 5
    assert [(p.kind, Path(p.href).name) for p in problems] == [("item", "a_20240101.json")]

    result = CliRunner().invoke(app, ["validate", str(tmp_path / "catalog")])
    assert result.exit_code == 1
    assert "a_20240101.json" in result.output and "1 invalid" in result.output


def test_validate_cli_missing_catalog(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nothing")])
    assert result.exit_code == 2
