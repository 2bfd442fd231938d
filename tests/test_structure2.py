"""Faults review RS found in the structure refactor (issue 12): locations parsed once at every
edge, one reading of a catalog location, stores that never make a caller ask their kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_cli_manners import invoke, one_error_line

# --- RS 2: Azure container names refused before anything is opened ----------------------------

# Azure's "Naming and Referencing Containers, Blobs, and Metadata": 3-63 characters,
# lower-case letters, digits, single hyphens, starting and ending with a letter or digit.
BAD_CONTAINERS = ["ab", "Bad_Name", "a--b", "-abc", "abc-", "x" * 64, "UPPER"]


@pytest.mark.parametrize("name", BAD_CONTAINERS)
@pytest.mark.parametrize("where", ["SOURCE", "--target", "--catalog"])
def test_a_container_name_azure_refuses_is_a_usage_error(
    azure_env: str, tmp_path: Path, name: str, where: str
) -> None:
    places = {"SOURCE": str(tmp_path), "--target": f"az://{azure_env}t/cogs",
              "--catalog": f"az://{azure_env}c/stac"}  # fmt: skip
    places[where] = f"az://{name}/x"
    result = invoke("ingest", places["SOURCE"], "--target", places["--target"], "--catalog",
                    places["--catalog"], "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"'{where}'" in line and repr(name) in line and "3-63" in line, line


@pytest.mark.parametrize("command", ["search", "validate", "browse", "export"])
@pytest.mark.parametrize(
    "url",
    ["az://ab/stac", "https://acct.blob.core.windows.net/Bad_Name/stac/catalog.json",
     "http://127.0.0.1:10000/devstoreaccount1/a--b/stac"],
)  # fmt: skip
def test_a_catalog_in_a_container_azure_refuses_is_a_usage_error(
    azure_env: str, tmp_path: Path, command: str, url: str
) -> None:
    extra = ["--format", "ndjson", "--out", str(tmp_path / "o")] if command == "export" else []
    result = invoke(command, url, *extra)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "'CATALOG'" in line and "3-63" in line, line
    assert not (tmp_path / "o").exists()


def test_the_container_names_azure_allows_pass() -> None:
    from byod.locations import parse_location

    for name in ("abc", "a-b-c", "0ab", "x" * 63, "$root", "$web"):
        assert parse_location(f"az://{name}/p").container == name
    assert parse_location("https://acct.blob.core.windows.net/stac/c.json").container == "stac"
    assert parse_location("http://example.org/A_B/c.json").container is None


# --- RS 3: one reading of a catalog location -----------------------------------------------------


@pytest.fixture
def blob_catalog(azure_env: str, azurite: str, tmp_path: Path) -> str:
    """An az:// catalog of one item, ingested into Azurite; returns its https URL."""
    from tests.conftest import ramp, write_geotiff

    write_geotiff(tmp_path / "src" / "a_20240101.tif", ramp(16, 16), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    done = invoke("ingest", str(tmp_path / "src"), "--target", f"az://{azure_env}d/cogs",
                  "--catalog", f"az://{azure_env}c/stac", "--quiet")  # fmt: skip
    assert done.exit_code == 0, done.output
    endpoint = azurite.split("BlobEndpoint=", 1)[1].split(";", 1)[0]
    return f"{endpoint}/{azure_env}c/stac"


def test_validate_reads_a_catalog_as_search_does(blob_catalog: str) -> None:
    import json

    for url in (blob_catalog, f"{blob_catalog}/catalog.json"):
        found = invoke("search", url, "--json")
        assert found.exit_code == 0, found.output
        assert len(json.loads(found.output)["features"]) == 1
        checked = invoke("validate", url, "--json")
        assert checked.exit_code == 0, checked.output
        # root, collection, month sub-catalog, item: counted independently of byod
        assert json.loads(checked.output) == {"checked": 4, "invalid": []}


@pytest.mark.parametrize("kind", ["local", "blob"])
def test_validate_where_there_is_no_catalog_is_a_usage_error(
    azure_env: str, tmp_path: Path, kind: str
) -> None:
    from byod.errors import ConfigurationError
    from byod.validate import validate_catalog

    where = str(tmp_path / "nothing") if kind == "local" else f"az://{azure_env}none/stac"
    result = invoke("validate", where)
    assert result.exit_code == 2, result.output
    assert "no catalog there" in one_error_line(result)
    with pytest.raises(ConfigurationError, match="no catalog there"):
        validate_catalog(where)


# --- RS 4: the pipeline never asks which kind of store it has ---------------------------------

PIPELINE = ("planning", "publishing", "storing", "catalog", "index", "export", "searching",
            "markers", "pipeline")  # fmt: skip
SRC = Path(__file__).resolve().parents[1] / "src" / "byod"


def test_the_pipeline_never_asks_a_store_its_kind() -> None:
    """No `store.is_local`, `is_blob_url(...)` or `os.rmdir` in the pipeline's modules: a
    store's own methods (`local_path`, `relative_href`, `remove_empty_folders`, `each`)."""
    import ast

    found = []
    for name in PIPELINE:
        tree = ast.parse((SRC / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("is_local", "rmdir"):
                found.append(f"{name}.py:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Name) and node.id == "is_blob_url":
                found.append(f"{name}.py:{node.lineno} is_blob_url")
    assert found == []


def _blob_store(conn: str, uid: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    from byod.azure import AzureOptions, resolve_access
    from byod.storage import open_store

    BlobServiceClient.from_connection_string(conn).create_container(f"{uid}s")
    return open_store(f"az://{uid}s/cat", resolve_access(AzureOptions()))


def test_a_local_store_removes_empty_folders_and_keeps_relative_links(tmp_path: Path) -> None:
    from byod.storage import open_store

    store = open_store(tmp_path / "cat")
    store.write_text("c/_runs/keep.json", "{}")
    (tmp_path / "cat" / "c" / "i" / "v").mkdir(parents=True)
    store.remove_empty_folders("c/i/v", "c/i", "c/_runs", "c")
    assert not (tmp_path / "cat" / "c" / "i").exists()  # empty: removed
    assert (tmp_path / "cat" / "c" / "_runs" / "keep.json").is_file()  # not empty: stays
    assert (tmp_path / "cat" / "c").is_dir()  # after the first that is not empty: kept
    store.remove_empty_folders("c/gone", "c/i")  # missing ones are skipped
    assert store.local_path("c/x.json") == tmp_path.resolve() / "cat" / "c" / "x.json"
    cog = str(tmp_path.resolve() / "data" / "c" / "i" / "v" / "i.tif")
    assert store.relative_href(cog, "c/i/v/i.json") == "../../../../data/c/i/v/i.tif"
    assert store.relative_href("https://h/x.tif", "c/i/v/i.json") == "https://h/x.tif"
    assert list(store.each(str.upper, ["a", "b", "c"])) == ["A", "B", "C"]


def test_a_blob_store_answers_the_same_questions(azure_env: str, azurite: str) -> None:
    store = _blob_store(azurite, azure_env)
    store.write_text("c/i/v/i.json", "{}")
    store.remove_empty_folders("c/i/v", "c/i")  # nothing to do, nothing removed
    assert [f.key for f in store.list_files()] == ["c/i/v/i.json"]
    assert store.local_path("c/i/v/i.json") is None
    href = store.href("c/i/v/i.tif")
    assert store.relative_href(href, "c/i/v/i.json") == href
    keys = [f"k{n}" for n in range(20)]
    assert list(store.each(str.upper, keys)) == [k.upper() for k in keys]  # in order


# --- RS 8: one name for a source ------------------------------------------------------------------


@pytest.mark.parametrize("given", [".", "./", "../in/."])
def test_a_source_given_as_dot_is_named_by_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    import json

    from tests.conftest import ramp, write_geotiff

    write_geotiff(tmp_path / "in" / "a_20240101.tif", ramp(16, 16), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    monkeypatch.chdir(tmp_path / "in")
    done = invoke("ingest", given, "--target", "../out/cogs", "--catalog", "../out/cat", "-q")
    assert done.exit_code == 0, done.output
    collection = json.loads((tmp_path / "out" / "cat" / "in" / "collection.json").read_text())
    assert collection["id"] == "in"
    assert collection["description"].endswith(" from in."), collection["description"]


# --- RS 5: no sideways imports between the steps of a run -----------------------------------------


def test_planning_and_publishing_import_no_other_step() -> None:
    """The planner needs none of the worker's code; publishing neither planning nor storing;
    the flows take `progress_due` from the pipeline's public API."""
    import subprocess
    import sys

    code = ("import sys, byod.planning, byod.publishing; "
            "print(sorted(m for m in ('byod.work', 'byod.storing', 'byod.metadata', "
            "'byod.planning') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "['byod.planning']"
    code = "import sys, byod.publishing; print('byod.planning' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "False"
    import byod.pipeline

    assert "progress_due" in byod.pipeline.__all__
    flows = (SRC.parent / "byod_flows" / "__init__.py").read_text()
    assert "from byod.publishing" not in flows


# --- RS 7: an interrupted run removes its own leftovers at once, on Azure too --------------------


@pytest.mark.parametrize("kind", ["local", "blob"])
def test_an_interrupted_run_removes_what_it_stored_and_did_not_publish(
    azure_env: str, tmp_path: Path, kind: str
) -> None:
    from byod.config import build_settings
    from byod.pipeline import plan_run, process, publish_run
    from tests.conftest import ramp, write_geotiff

    for name in ("a_20240101.tif", "b_20240102.tif"):
        write_geotiff(tmp_path / "in" / name, ramp(16, 16), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    if kind == "blob":
        target, catalog = f"az://{azure_env}t/cogs", f"az://{azure_env}c/stac"
    else:
        target, catalog = str(tmp_path / "cogs"), str(tmp_path / "stac")
    settings = build_settings(str(tmp_path / "in"), {"target": target, "catalog": catalog,
                              "collection": "c1"})  # fmt: skip
    run = plan_run(settings)
    stored = process(run.context, run.todo[0])
    assert stored.items  # its COG and thumbnail are in the target now
    stores = run.context.stores
    assert stores.target.list_files("c1/") != []
    publish_run(run, [], complete=False)  # interrupted before its outcome was published
    assert stores.target.list_files("c1/") == []
    assert [f.key for f in stores.catalog.list_files("c1/_runs/")] == []


# Exceptions that never leave byod: each is caught where it is raised and becomes a rejection
# reason, a retry or byod's own error (the reason is the entry's value).
_INTERNAL_EXCEPTIONS = {
    "byod.declared_size.HeaderError": "rasters.open_dataset: a damaged header, TRUNCATED",
    "byod.footprint.NoValidData": "work.prepare: the NO_VALID_DATA rejection",
    "byod.storage.ConflictError": "a publish still conflicting: RunFailed via pipeline",
    "byod.validate.SchemaNotShipped": "validate_catalog: reported as that object's problem",
    "byod.storage.UploadStopped": "process_all's uploads stopped as the run ends: not done",
    "byod.errors.Interrupted": "a signal (BaseException): RunInterrupted via pipeline",
    "byod.cli._ReaderGone": "stdout's reader went away: cli._output ends the output quietly",
}


def test_every_error_byod_raises_to_its_callers_is_of_its_family() -> None:
    """Issue 12: one error family. A user catching `byod.errors.ByodError` (or the CLI mapping
    it to exit codes) meets every error byod raises on purpose: search, load, open_catalog,
    sign, byod.yaml and the cloud rules' errors too (they were plain ValueErrors)."""
    import importlib
    import inspect
    import pkgutil

    import byod
    from byod.errors import ByodError

    outside = []
    for module_info in pkgutil.iter_modules(byod.__path__):
        module = importlib.import_module(f"byod.{module_info.name}")
        for name, obj in vars(module).items():
            ours = inspect.isclass(obj) and obj.__module__ == module.__name__
            if ours and issubclass(obj, BaseException) and not issubclass(obj, ByodError):
                outside.append(f"{module.__name__}.{name}")
    assert sorted(outside) == sorted(_INTERNAL_EXCEPTIONS)


def test_open_catalog_where_there_is_none_is_a_configuration_error(tmp_path: Path) -> None:
    """byod.open_catalog on a folder without a catalog raised pystac's FileNotFoundError."""
    import byod
    from byod.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no catalog there"):
        byod.open_catalog(str(tmp_path))
