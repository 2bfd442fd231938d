"""The Prefect flows, run in-process against a temporary Prefect API (a real server on
loopback with a throwaway SQLite database)."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
from prefect.utilities.schema_tools import ValidationError as SchemaError
from prefect.utilities.schema_tools import validate as schema_validate
from pydantic import BaseModel

from byod.azure import AzureOptions
from byod.catalog import VERSION
from byod.config import IngestSettings, build_settings
from byod.dataset_config import SETTING_KEYS, DatasetConfig
from byod.errors import ConfigurationError
from byod.options import CloudOptions, TimeOptions
from byod.report import markdown_text
from byod.validate import validate_catalog
from byod_flows import _explicit, check_local_paths, ingest, result_folder
from tests.conftest import ramp, write_geotiff
from tests.readback import asset_path, item_files
from tests.test_dask_cluster import big_raster, killing_workers_reading, task_runs


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
    tasks = await task_runs(flow_name)
    return {name: t.state.name if t.state else "" for name, t in tasks.items()}


async def _artifact(key: str) -> str:
    async with get_client() as client:
        artifact = await client.read_latest_artifacts()
        return str(next(a for a in artifact if a.key == key).data)


def _retry_in_another_process(settings: IngestSettings, home: Path) -> str:
    """The flow run again by a fresh process with another HOME and PREFECT_HOME (as another
    worker of the pool would be), reporting to the same API: the names of its task states."""
    script = (
        "import json, sys\n"
        "from byod.config import IngestSettings\n"
        "from byod_flows import ingest\n"
        "state = ingest(IngestSettings.model_validate_json(sys.argv[1]), return_state=True)\n"
        "print(json.dumps(state.result()['counts']))\n"
    )
    env = {**os.environ, "HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
           "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script, settings.model_dump_json()], env=env,
                          cwd=home, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_ingest_flow_reports_and_caches(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    settings = IngestSettings(source=str(tmp_path / "src"), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="flowtest")  # fmt: skip
    state = ingest(settings, return_state=True)
    assert state.is_completed()  # a rejected input is a report row, not a failed flow
    report = state.result()
    assert report["counts"] == {"ingested": 2, "replaced": 0, "unchanged": 0, "rejected": 1}
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []
    markdown = asyncio.run(_artifact("byod-ingest-report"))
    # Names from inputs are Markdown-escaped in the artifact (report.markdown_text).
    assert f"| {markdown_text('broken_20240103.tif')} | rejected |" in markdown
    assert "`not_a_raster`" in markdown  # reason codes are byod's own, shown as code
    assert "**2** ingested" in markdown and "flowtest/collection.json" in markdown
    tasks = asyncio.run(task_runs("byod-ingest-run"))
    assert tasks["a_20240101.tif"].state.name == "Completed"
    # A rejected input is a Completed task named Rejected, its reason the message.
    rejected = tasks["broken_20240103.tif"].state
    assert rejected.type.value == "COMPLETED" and rejected.name == "Rejected"
    assert rejected.message.startswith("not_a_raster: ")
    # Results and cache records are next to the local catalog, where every worker finds them.
    results = Path(result_folder(settings, None))
    assert results == tmp_path / ".byod-prefect-results" and any(results.iterdir())

    # The catalog is lost but the COGs are stored: the flow run again by another process
    # (another worker) takes each input's outcome from the shared cache, converts nothing.
    cogs = sorted((tmp_path / "data").rglob("*.tif"))
    assert len(cogs) == 2
    shutil.rmtree(tmp_path / "cat")
    other = tmp_path / "other-worker"
    other.mkdir()
    counts = json.loads(_retry_in_another_process(settings, other))
    assert counts["ingested"] == 2
    states = asyncio.run(_task_states("byod-ingest-run"))
    assert states["a_20240101.tif"] == "Cached" and states["sub/b_20240102.tif"] == "Cached"
    assert states["broken_20240103.tif"] == "Rejected"  # a rejection is done again
    assert sorted((tmp_path / "data").rglob("*.tif")) == cogs  # no second conversion
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []


def test_a_configuration_error_fails_the_flow_at_once(prefect_api: None, tmp_path: Path) -> None:
    settings = IngestSettings(source=str(tmp_path / "missing"), catalog=str(tmp_path / "cat"))
    state = ingest(settings, return_state=True)
    assert state.is_failed()
    assert "not a folder" in str(state.message) + repr(state.result(raise_on_failure=False))
    assert not (tmp_path / "cat").exists()
    runs = asyncio.run(task_runs("byod-ingest-run"))
    plan = next(run for name, run in runs.items() if name.startswith("plan"))
    assert plan.state.name == "Failed" and plan.run_count == 1  # not retried


def test_a_flow_where_every_input_crashed_fails(prefect_api: None, tmp_path: Path) -> None:
    big_raster(tmp_path / "src" / "big_20240105.tif")
    settings = IngestSettings(source=str(tmp_path / "src"), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="crashed")  # fmt: skip
    with killing_workers_reading("big_20240105.tif") as killed:
        state = ingest(settings, return_state=True)
    assert killed, "no worker was seen reading the input"
    assert state.is_failed() and "every input (1) crashed" in str(state.message)
    report = state.result(raise_on_failure=False)
    assert report["counts"]["rejected"] == 1 and report["rows"][0]["reason"] == "crashed"


def test_dask_runner_gives_the_same_catalog(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    catalogs = {}
    for runner in ("threads", "dask"):
        out = tmp_path / runner
        settings = IngestSettings(source=str(tmp_path / "src"), catalog=str(out / "cat"),
                                  target=str(out / "data"), collection="same")  # fmt: skip
        report = ingest(settings, task_runner=runner, dask_workers=2)
        assert report["counts"]["ingested"] == 2
        # Each run writes to its own version folders (catalog.py): compare without them.
        catalogs[runner] = {
            VERSION.sub("<v>", str(p.relative_to(out / "cat"))):
                json.loads(VERSION.sub("<v>", p.read_text()))
            for p in sorted((out / "cat").rglob("*.json"))
        }  # fmt: skip
        for data in catalogs[runner].values():  # the stat signature: none while files are
            data.get("properties", {}).pop("byod:stat", None)  # < 2 s old (racy, planning)
    assert catalogs["dask"] == catalogs["threads"]
    features = [k for k, v in catalogs["dask"].items() if v.get("type") == "Feature"]
    assert len(features) == 2  # the two items, beside the root and the collection's files


def _fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every field of a settings model, a section's (a model, or an optional one) fields as
    dotted paths; a list of models (byod.yaml's providers) is one field."""
    names = set()
    for name, info in model.model_fields.items():
        listed = typing.get_origin(info.annotation) in (list, tuple, dict)
        nested = [a for a in typing.get_args(info.annotation) or [info.annotation]
                  if isinstance(a, type) and issubclass(a, BaseModel) and not listed]  # fmt: skip
        names |= _fields(nested[0], f"{prefix}{name}.") if nested else {prefix + name}
    return names


def _schema_fields(schema: dict[str, Any], node: dict[str, Any], prefix: str = "") -> set[str]:
    """The same dotted paths, read from a JSON schema (definitions followed)."""
    names = set()
    for name, prop in node.get("properties", {}).items():
        refs = [p["$ref"] for p in [prop, *prop.get("anyOf", [])] if "$ref" in p]
        if refs:
            target = schema["definitions"][refs[0].rsplit("/", 1)[-1]]
            names |= _schema_fields(schema, target, f"{prefix}{name}.")
        else:
            names.add(prefix + name)
    return names


# The settings an edge does not reach, and why; every other field must be reachable, so a
# field added to the model (a section's too) without an option or a key fails here.
NOT_ON_THE_COMMAND_LINE = {
    "providers", "keywords",  # lists of mappings: byod.yaml (or flow parameters)
    "superseded_grace_s",  # an operator's setting: env BYOD_SUPERSEDED_GRACE_S
    # Secrets never go on a command line (shell history, `ps`): the environment has them.
    "azure.connection_string", "azure.account_key", "azure.sas_token",
}  # fmt: skip
NOT_IN_BYOD_YAML = {  # where and how one run goes, not what the dataset is
    "source", "collection", "target", "catalog", "config_file", "workers", "timeout_s",
    "max_memory_mb", "memory_budget_mb", "max_pixels", "disk_budget_mb", "compression",
    "superseded_grace_s", "prune", "publish_every_inputs", "publish_every_s",
    *(f"azure.{name}" for name in AzureOptions.model_fields),
}  # fmt: skip


def test_every_setting_is_reachable_from_each_edge() -> None:
    """Every IngestSettings field, a section's (`time.pattern`, `clouds.rule`) too, is a
    flow parameter (the form the Prefect UI renders), a `byod ingest` option and a byod.yaml
    key, but for the exceptions listed above: read from the models, not listed here."""
    fields = _fields(IngestSettings)
    assert {"time.datetime", "time.require", "clouds.rule", "clouds.order"} <= fields
    schema = ingest.parameters.model_dump()
    assert {"settings.time.pattern", "settings.clouds.band"} <= _schema_fields(schema, schema)
    assert {f"settings.{name}" for name in fields} - _schema_fields(schema, schema) == set()
    # The Prefect server checks a deployment run's parameters against this schema: a
    # section's fields are checked there too, before any worker runs.
    section = {"source": "/data", "clouds": {"band": 2}, "time": {"order": ["name"]}}
    assert schema_validate({"settings": section}, schema, raise_on_error=True) == []
    with pytest.raises(SchemaError, match=r"settings\.clouds.*bogus"):
        schema_validate({"settings": {"source": "/data", "clouds": {"bogus": 1}}}, schema,
                        raise_on_error=True)  # fmt: skip
    # The CLI: each field's parameter (its name, or the one cli._PARAMETER gives it).
    from byod.cli import _PARAMETER
    from byod.cli import ingest as cli_ingest

    edge_only = {"ctx", "quiet", "verbose", "json_", "report"}  # how the CLI shows its outcome
    parameters = set(inspect.signature(cli_ingest).parameters) - edge_only
    option = {name: _PARAMETER.get(name, name) for name in fields}
    assert {name for name in fields if option[name] not in parameters} == NOT_ON_THE_COMMAND_LINE
    assert parameters - set(option.values()) == set()  # ... and no option sets nothing
    # byod.yaml: its keys are the fields' paths (dataset_config.SETTING_KEYS where not).
    keys = {key: path for path, key in SETTING_KEYS.items()}
    in_yaml = {keys.get(key, key) for key in _fields(DatasetConfig)}
    assert in_yaml - fields == set()
    assert fields - in_yaml == NOT_IN_BYOD_YAML


def test_each_edge_sets_a_section_field_by_field(tmp_path: Path) -> None:
    """A section given at an edge overrides byod.yaml's field by field: `clouds.rule`
    typed keeps the file's `clouds.band`; the flow's sub-model counts only the fields set."""
    (tmp_path / "byod.yaml").write_text("clouds: {band: 2, cover: 5}\ntime: {require: true}\n")
    flow_given = IngestSettings(source=str(tmp_path), clouds=CloudOptions(rule="fmask"))
    for options in ({"clouds": {"rule": "fmask"}}, _explicit(flow_given)):
        settings = build_settings(str(tmp_path), options)
        assert settings.clouds == CloudOptions(rule="fmask", band=2, cover=5)
        assert settings.time == TimeOptions(require=True)


def _cog(catalog: Path, item_id: str) -> Path:
    """The COG the published item points at (read through the collection's links)."""
    item_file = item_files(catalog, "stale")[item_id]
    return asset_path(item_file, json.loads(item_file.read_text())["assets"]["data"]["href"])


def test_a_cached_outcome_whose_cog_changed_is_redone(prefect_api: None, tmp_path: Path) -> None:
    _rasters(tmp_path / "src")
    options = IngestSettings(source=str(tmp_path / "src"), catalog=str(tmp_path / "cat"),
                             target=str(tmp_path / "data"), collection="stale")  # fmt: skip
    ingest(options)
    cog = _cog(tmp_path / "cat", "a_20240101")
    original = cog.read_bytes()
    cog.write_bytes(original[:-10] + b"0123456789")  # the stored file is no longer that COG
    shutil.rmtree(tmp_path / "cat")  # so the plan finds no items and submits every input
    ingest(options)
    assert _cog(tmp_path / "cat", "a_20240101").read_bytes() == original  # redone, not cached
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []


def test_relative_paths_are_refused_in_a_process_workers_temporary_folder(
    tmp_path: Path,
) -> None:
    """A process worker runs a deployment's flow in a `...prefect` folder of the temp folder
    and deletes it afterwards: relative paths there would lose the catalog; elsewhere (a
    worker's working_dir, a script) and absolute or az:// paths are fine."""
    worker_folder = Path(tempfile.mkdtemp(suffix="prefect"))
    try:
        relative = IngestSettings(source="/data/in", catalog="catalogs")  # target: "data"
        with pytest.raises(ConfigurationError) as refused:
            check_local_paths(relative, worker_folder, worker_run=True)
        assert "target='data'" in str(refused.value) and "catalog='catalogs'" in str(refused.value)
        assert "source=" not in str(refused.value)
        check_local_paths(relative, worker_folder, worker_run=False)  # not a worker's run
        check_local_paths(relative, tmp_path, worker_run=True)  # a folder that stays
        absolute = IngestSettings(source="/data/in", target="az://cogs", catalog=str(tmp_path))
        check_local_paths(absolute, worker_folder, worker_run=True)
    finally:
        worker_folder.rmdir()


def _published(catalog: Path, collection: str) -> set[str]:
    """The item ids the catalog links to now (none while it is not there or mid-switch)."""
    try:
        return set(item_files(catalog, collection))
    except (OSError, ValueError, KeyError):
        return set()


def test_a_killed_flow_run_keeps_what_it_published(prefect_api: None, tmp_path: Path) -> None:
    """publish_every_inputs=1: each stored input is published as its task finishes, on the
    flow's process. The flow process is SIGKILLed (with its workers) while the third input
    never finishes: the two published inputs are in the catalog, and the next run finds
    them unchanged and converts only the third."""
    source = tmp_path / "src"
    for name in ("a_20240101.tif", "b_20240102.tif"):
        write_geotiff(source / name, ramp(), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    big_raster(source / "big_20240105.tif")
    settings = IngestSettings(source=str(source), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="kept",
                              workers=3, publish_every_inputs=1)  # fmt: skip
    script = (
        "import sys\n"
        "from byod.config import IngestSettings\n"
        "from byod_flows import ingest\n"
        "ingest(IngestSettings.model_validate_json(sys.argv[1]))\n"
    )
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    log = (tmp_path / "flow.log").open("wb")
    flow_run = subprocess.Popen([sys.executable, "-c", script, settings.model_dump_json()],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    seen: set[str] = set()
    try:
        # The big input's worker is stopped: it never finishes, so only the small ones can
        # be published; the flow process is killed once both are.
        with killing_workers_reading("big_20240105.tif", signum=signal.SIGSTOP) as stopped:
            deadline = time.monotonic() + 60
            while len(seen) < 2 and flow_run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                seen = _published(tmp_path / "cat", "kept")
    finally:
        os.killpg(flow_run.pid, signal.SIGKILL)  # the flow, its threads and its workers
        flow_run.wait()
        log.close()
    assert stopped, "no worker was seen reading the big input"
    assert seen == {"a_20240101", "b_20240102"}, (tmp_path / "flow.log").read_text()[-3000:]
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []

    report = ingest(settings)  # the next run
    assert report["counts"] == {"ingested": 1, "replaced": 0, "unchanged": 2, "rejected": 0}
    statuses = {r["input"]: r["status"] for r in report["rows"]}
    assert statuses == {"a_20240101.tif": "unchanged", "b_20240102.tif": "unchanged",
                        "big_20240105.tif": "ingested"}  # fmt: skip
    assert set(item_files(tmp_path / "cat", "kept")) == {
        "a_20240101", "b_20240102", "big_20240105"}  # fmt: skip
    assert validate_catalog(str(tmp_path / "cat" / "catalog.json"))[1] == []


def test_a_storage_outage_while_publishing_fails_the_flow_with_its_report(
    prefect_api: None, azure_env: str, azurite: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The catalog's store refuses every write of collection.json (HTTP 503, as a failing
    Azure front end answers) through the retries: the flow ends Failed with a one-line
    message and the report, as `byod ingest` ends (exit 3), not with the Azure SDK's
    exception escaping the flow (review RS 1: no report, an exception Prefect could not
    even pickle)."""
    from urllib.parse import urlsplit

    import byod_flows
    from tests.faultproxy import FaultProxy

    endpoint = urlsplit(azurite.split("BlobEndpoint=")[1].split(";")[0])
    assert endpoint.hostname and endpoint.port
    proxy = FaultProxy((endpoint.hostname, endpoint.port))
    proxy.decide = lambda method, path: (
        503 if method == "PUT" and "collection.json" in path else "forward")  # fmt: skip
    proxy.start()
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", proxy.connection_string(azurite))
    for name in ("publish_task", "publish_progress_task"):  # the retries, without waiting
        monkeypatch.setattr(getattr(byod_flows, name), "retry_delay_seconds", [0, 0, 0])
    source = tmp_path / "src"
    for i, name in enumerate(("a_20240101.tif", "b_20240102.tif")):
        write_geotiff(source / name, ramp() + i, crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    settings = IngestSettings(
        source=str(source),
        target=str(tmp_path / "data"),
        catalog=f"az://stac-{azure_env}",
        collection="outage",
        workers=1,
        publish_every_inputs=1,
        azure=AzureOptions(request_timeout_s=3),
    )
    try:
        state = ingest(settings, results=str(tmp_path / "results"), return_state=True)
    finally:
        proxy.down()
    assert state.is_failed()
    message = str(state.message)
    assert "\n" not in message and message.startswith("byod: "), message
    assert "HTTP 503" in message and "the run stopped" in message, message
    report = state.result(raise_on_failure=False)
    assert isinstance(report, dict), report
    statuses = {row["input"]: row["status"] for row in report["rows"]}
    assert set(statuses) == {"a_20240101.tif", "b_20240102.tif"}
    assert "ingested" not in statuses.values(), statuses  # nothing was published
    assert "the run stopped" in asyncio.run(_artifact("byod-ingest-report"))
    assert any(method == "PUT" and action == "503" for method, _, action in proxy.log)
