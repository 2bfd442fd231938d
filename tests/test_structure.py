"""The library's structure (issue 12): a run opens its stores once, and the modules of
src/byod import each other without a cycle."""

from __future__ import annotations

import ast
import importlib
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from rasterio.transform import from_origin

import byod.azure
from byod.config import IngestSettings
from byod.pipeline import ingest, plan_run, process_all, publish_run
from byod.report import Status
from tests.conftest import ramp, write_geotiff

SRC = Path(__file__).resolve().parents[1] / "src" / "byod"


@pytest.fixture
def resolves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the reads of credentials: every `resolve_access`, from wherever it is imported,
    goes through `azure._resolve` (looked up at call time), which is wrapped, not replaced."""
    calls: list[int] = []
    real: Callable[..., Any] = byod.azure._resolve

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(byod.azure, "_resolve", counting)
    return calls


def _blob_source(uid: str, conn: str, folder: Path) -> None:
    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(f"in-{uid}")
    for name in ("a_20240101.tif", "b_20240102.tif", "c_20240103.tif"):
        path = write_geotiff(folder / name, ramp(32, 32), crs="EPSG:32633",
                             transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
        service.get_blob_client(f"in-{uid}", name).upload_blob(path.read_bytes())


def test_a_blob_run_reads_its_credentials_once(
    azure_env: str, azurite: str, tmp_path: Path, resolves: list[int]
) -> None:
    _blob_source(azure_env, azurite, tmp_path / "local")
    settings = IngestSettings(source=f"az://in-{azure_env}", target=f"az://cogs-{azure_env}",
                              catalog=f"az://stac-{azure_env}", collection="once",
                              workers=2)  # fmt: skip
    report = ingest(settings)
    assert sorted((r.input, r.status) for r in report.rows) == [
        ("a_20240101.tif", Status.INGESTED), ("b_20240102.tif", Status.INGESTED),
        ("c_20240103.tif", Status.INGESTED),
    ]  # fmt: skip
    # Plan, three inputs fetched and stored, publish, clean-up: one read of the credentials.
    assert len(resolves) == 1
    blobs = BlobServiceClient.from_connection_string(azurite).get_container_client(
        f"stac-{azure_env}"
    )
    assert "once/collection.json" in {b.name for b in blobs.list_blobs()}


def test_a_run_travels_without_its_clients_and_reopens_once_per_process(
    azure_env: str, azurite: str, tmp_path: Path, resolves: list[int]
) -> None:
    """What an orchestrator ships to another process (pickled) holds no client and no
    credential; its copies open the stores once in the process that unpickles them."""
    _blob_source(azure_env, azurite, tmp_path / "local")
    settings = IngestSettings(source=f"az://in-{azure_env}", target=f"az://cogs-{azure_env}",
                              catalog=f"az://stac-{azure_env}", collection="shipped",
                              workers=2)  # fmt: skip
    run = plan_run(settings)
    assert len(resolves) == 1
    shipped = pickle.dumps(run)
    key = azurite.split("AccountKey=")[1].split(";")[0]
    assert key.encode() not in shipped  # the settings came from the environment, not options
    assert b"BlobServiceClient" not in shipped and b"ContainerClient" not in shipped

    import byod.stores

    byod.stores._OPENED.pop(run.context.stores.token)  # as in a fresh process
    copies = [pickle.loads(shipped) for _ in range(3)]
    outcomes = list(process_all(copies[0]))
    assert sorted(o.row.status for o in outcomes) == [Status.INGESTED] * 3
    report = publish_run(copies[1], outcomes)
    assert sorted(r.status for r in report.rows) == [Status.INGESTED] * 3
    target = copies[2].context.stores.target
    hrefs = [o.items[0]["assets"]["data"]["href"] for o in outcomes]
    assert all(target.exists(target.key_of(h) or "") for h in hrefs)
    assert len(resolves) == 2  # planning, then once for the three unpickled copies


def _imports(path: Path, package: str) -> set[str]:
    """The modules of `package` that the module at `path` imports when it runs (at any level,
    inside functions too; not those imported for type checking only)."""
    found = set()
    nodes: list[ast.AST] = [ast.parse(path.read_text("utf-8"))]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes += node.orelse
            continue
        nodes += ast.iter_child_nodes(node)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == package:
                found |= {f"{package}.{a.name}" for a in node.names}
            elif node.module.startswith(f"{package}."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(f"{package}.")}
    return found


def test_the_modules_of_byod_import_each_other_without_a_cycle() -> None:
    modules = {f"byod.{p.stem}": p for p in SRC.glob("*.py") if p.stem != "__init__"}
    for name in modules:  # each one imports (a cycle at module level would fail here too)
        importlib.import_module(name)
    graph = {name: _imports(path, "byod") & set(modules) for name, path in modules.items()}
    assert "byod.index" in graph["byod.catalog"]  # the graph sees imports inside functions
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_module_shadows_a_lazy_name_of_the_package() -> None:
    """Importing `byod.x` binds `x` on the package: a module named like one of the notebook
    API's lazy names (`byod.search`, ...) would replace that function by the module."""
    import byod

    modules = {p.stem for p in SRC.glob("*.py")}
    assert modules & set(byod._LAZY) == set()


# Modules of plain records and pure rules, and the I/O modules they must not reach: item
# building, grouping, time, cloud and product rules are read and tested with hand-made records.
PURE = ("byod.records", "byod.items", "byod.scenes", "byod.temporal", "byod.clouds",
        "byod.products", "byod.extents")  # fmt: skip
IO_MODULES = ("rasterio", "byod.rasters", "byod.storage", "byod.azure", "byod.sources")


def _module_level_imports(path: Path) -> set[str]:
    """What the module at `path` imports when it is imported: its top-level statements
    (inside `if`/`try` too), not function bodies, not blocks for type checking only. Every
    import is named in full (`rasterio.features`); `from byod import x` as `byod.x`."""
    found: set[str] = set()
    nodes: list[ast.stmt] = list(ast.parse(path.read_text("utf-8")).body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If):
            typing_only = "TYPE_CHECKING" in ast.unparse(node.test)
            nodes += node.orelse if typing_only else [*node.body, *node.orelse]
        elif isinstance(node, ast.Try):
            nodes += [*node.body, *node.orelse, *node.finalbody]
            nodes += [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if node.module == "byod"}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _banned(name: str) -> bool:
    return any(name == m or name.startswith(f"{m}.") for m in IO_MODULES)


def test_records_and_pure_modules_import_no_io_module() -> None:
    """records, items, scenes, temporal, clouds, products and extents reach, through what
    they import at module level, none of rasterio, rasters, storage, azure, sources (issue
    12)."""
    modules = {f"byod.{p.stem}": p for p in SRC.glob("*.py") if p.stem != "__init__"}
    direct = {name: _module_level_imports(path) for name, path in modules.items()}
    assert "rasterio.features" in direct["byod.footprint"]  # the walk sees third-party names
    assert "byod.sources" not in direct["byod.catalog"]  # ... and skips function bodies
    reached: list[str] = []
    for start in PURE:
        paths = {start: [start]}
        todo = [start]
        while todo:
            name = todo.pop()
            for dep in sorted(direct[name]):
                if _banned(dep):
                    reached.append(" -> ".join([*paths[name], dep]))
                elif dep in modules and dep not in paths:
                    paths[dep] = [*paths[name], dep]
                    todo.append(dep)
    assert reached == []


def test_importing_the_pure_modules_loads_no_io_module() -> None:
    """The same rule as Python sees it, third-party imports included: a fresh interpreter
    that imports the pure modules has none of the I/O modules loaded."""
    code = (f"import sys; import {', '.join(PURE)}; "
            f"print('\\n'.join(sorted(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=SRC.parent).stdout.split()  # fmt: skip
    assert set(PURE) <= set(out)
    assert [m for m in out if _banned(m)] == []
