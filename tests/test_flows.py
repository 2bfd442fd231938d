"""The Prefect flows, run in-process against a temporary Prefect API (a real server on
loopback with a throwaway SQLite database)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.testing.utilities import prefect_test_harness

from byod.catalog import VERSION
from byod.report import markdown_text
from byod.validate import validate_catalog
from flows.ingest import ingest
from tests.conftest import ramp, write_geotiff
from tests.readback import asset_path, item_files


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=60):
        yield


def _rasters(folder: Path) -> None:
    write_geotiff(folder / "a_20240101.tif", ramp(), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    write_geotiff(folder / "sub" / "b_20240102.tif", ramp(dtype="int16"), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    (folder / "broken_20240103.tif").write_bytes(b"not a tiff")


async def _task_states(flow_name: str) -> dict[str, str]:
    """Names and final states of the tasks of the newest run of a flow."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1,
        )  # fmt: skip
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id]))
        )
        return {t.name: t.state.name if t.state else "" for t in tasks}


async def _artifact(key: str) -> str:
    async with get_client() as client:
        artifact = await client.read_latest_artifacts()
        return str(next(a for a in artifact if a.key == key).data)


def test_ingest_flow_reports_and_caches(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    options: dict[str, Any] = {
        "source": str(tmp_path / "src"), "catalog": str(tmp_path / "cat"),
        "target": str(tmp_path / "data"), "collection": "flowtest",
    }  # fmt: skip
    state = ingest(**options, return_state=True)
    assert state.is_completed()  # a rejected input is a report row, not a failed flow
    report = state.result()
    assert report["counts"] == {"ingested": 2, "replaced": 0, "unchanged": 0, "rejected": 1}
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []
    markdown = asyncio.run(_artifact("byod-ingest-report"))
    # Names from inputs are Markdown-escaped in the artifact (report.markdown_text).
    assert f"| {markdown_text('broken_20240103.tif')} | rejected |" in markdown
    assert "`not_a_raster`" in markdown  # reason codes are byod's own, shown as code
    assert "**2** ingested" in markdown and "flowtest/collection.json" in markdown
    states = asyncio.run(_task_states("byod-ingest-run"))
    assert states["a_20240101.tif"] == "Completed"

    # The catalog is lost but the COGs are stored: a re-run takes each input's outcome from
    # Prefect's cache (keyed by its fingerprint) and converts nothing.
    shutil.rmtree(tmp_path / "cat")
    again = ingest(**options)
    assert again["counts"]["ingested"] == 2
    states = asyncio.run(_task_states("byod-ingest-run"))
    assert states["a_20240101.tif"] == "Cached" and states["sub/b_20240102.tif"] == "Cached"
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []


def test_a_configuration_error_fails_the_flow(prefect_api: None, tmp_path: Path) -> None:
    state = ingest(source=str(tmp_path / "missing"), catalog=str(tmp_path / "cat"),
                   return_state=True)  # fmt: skip
    assert state.is_failed()
    assert "source is not a folder" in str(state.message) or "not a folder" in repr(
        state.result(raise_on_failure=False))  # fmt: skip
    assert not (tmp_path / "cat").exists()


def test_dask_runner_gives_the_same_catalog(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    catalogs = {}
    for runner in ("threads", "dask"):
        out = tmp_path / runner
        report = ingest(source=str(tmp_path / "src"), catalog=str(out / "cat"),
                        target=str(out / "data"), collection="same", task_runner=runner,
                        dask_workers=2)  # fmt: skip
        assert report["counts"]["ingested"] == 2
        # Each run writes to its own version folders (catalog.py): compare without them.
        catalogs[runner] = {
            VERSION.sub("<v>", str(p.relative_to(out / "cat"))):
                json.loads(VERSION.sub("<v>", p.read_text()))
            for p in sorted((out / "cat").rglob("*.json"))
        }  # fmt: skip
    assert catalogs["dask"] == catalogs["threads"]
    assert len(catalogs["dask"]) == 4  # root, collection, two items


def test_flow_parameters_mirror_the_cli() -> None:
    import inspect

    from byod.cli import ingest as cli_ingest

    flow_params = set(inspect.signature(ingest.fn).parameters)
    renamed = {"datetime_": "datetime", "timeout": "timeout_s", "max_memory": "max_memory_mb"}
    cli_params = {renamed.get(p, p) for p in inspect.signature(cli_ingest).parameters}
    shared = {"source", "collection", "target", "catalog", "datetime", "datetime_pattern",
              "require_datetime", "cloud_cover", "cloud_rule", "cloud_band", "group_pattern",
              "compression", "license", "description", "title", "config", "azure_region",
              "timeout_s", "max_memory_mb"}  # fmt: skip
    assert shared <= flow_params and shared <= cli_params


def _cog(catalog: Path, item_id: str) -> Path:
    """The COG the published item points at (read through the collection's links)."""
    item_file = item_files(catalog, "stale")[item_id]
    return asset_path(item_file, json.loads(item_file.read_text())["assets"]["data"]["href"])


def test_a_cached_outcome_whose_cog_changed_is_redone(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    options: dict[str, Any] = {
        "source": str(tmp_path / "src"), "catalog": str(tmp_path / "cat"),
        "target": str(tmp_path / "data"), "collection": "stale",
    }  # fmt: skip
    ingest(**options)
    cog = _cog(tmp_path / "cat", "a_20240101")
    original = cog.read_bytes()
    cog.write_bytes(original[:-10] + b"0123456789")  # the stored file is no longer that COG
    shutil.rmtree(tmp_path / "cat")  # so the plan finds no items and submits every input
    ingest(**options)
    assert _cog(tmp_path / "cat", "a_20240101").read_bytes() == original  # redone, not cached
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []
