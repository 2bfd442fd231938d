"""The deployment end to end, as on a hub: a real Prefect server (SQLite) started by the
project's script on loopback, a process worker started the way Prefect's docs teach
(`prefect worker start --pool byod-process`, from another folder, with no byod variable in
its environment), `prefect deploy --all` from prefect.yaml, then `prefect deployment run`
ingesting uploads from Azurite into Azurite."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pystac
import pytest
from azure.storage.blob import BlobServiceClient
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

import byod
from byod.azure import AzureOptions, resolve_access
from byod.report import markdown_text
from tests.test_azure import _upload_rasters

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(REPO / ".venv" / "bin" / "prefect")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, azurite: str
) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BYOD_")},
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "AZURE_STORAGE_CONNECTION_STRING": azurite,  # the worker's flow runs inherit it
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    up = subprocess.run(["bash", "scripts/prefect-up", str(port), "--server-only"], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    worker = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # A worker in "any shell": another folder, no BYOD_HOME, byod's Python on the PATH.
        elsewhere = tmp_path_factory.mktemp("worker-cwd")
        worker_env = {**env, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"}
        with (elsewhere / "worker.log").open("wb") as log:
            worker = subprocess.Popen(["prefect", "worker", "start", "--pool", "byod-process"],
                                      cwd=elsewhere, env=worker_env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        yield env
    finally:
        if worker is not None:  # its own session: the group is this worker and its runs
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        subprocess.run(["bash", "scripts/prefect-down"], cwd=REPO, env=env, timeout=60)


async def _latest_run_and_report(url: str) -> tuple[str, str]:
    with temporary_settings({PREFECT_API_URL: url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("byod-ingest/local")
            runs = await client.read_flow_runs(limit=50)
            run = max((r for r in runs if r.deployment_id == deployment.id),
                      key=lambda r: r.expected_start_time)  # fmt: skip
            artifacts = await client.read_latest_artifacts()
            report = next(a for a in artifacts if a.key == "byod-ingest-report")
            return run.state.name if run.state else "", str(report.data)


async def _pull_steps(url: str) -> Any:
    with temporary_settings({PREFECT_API_URL: url}):
        async with get_client() as client:
            return (await client.read_deployment_by_name("byod-ingest/local")).pull_steps


def test_deploy_and_run_against_azurite(
    prefect_server: dict[str, str], azurite: str, tmp_path: Path
) -> None:
    env = prefect_server
    _upload_rasters(azurite, "uploads-deployed", tmp_path)
    # Deployed from a folder that is gone when the worker runs it (a laptop's clone, a CI
    # checkout): nothing of it may be needed.
    deployed_from = tmp_path / "deployed-from"
    deployed_from.mkdir()
    shutil.copy(REPO / "prefect.yaml", deployed_from / "prefect.yaml")
    deploy = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=deployed_from,
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "byod-ingest/local" in deploy.stdout and "byod-sweep/hourly" in deploy.stdout
    shutil.rmtree(deployed_from)
    settings = {"source": "az://uploads-deployed/projectA", "target": "az://cogs-deployed",
                "catalog": "az://stac-deployed", "collection": "deployed"}  # fmt: skip
    run = subprocess.run(
        [PREFECT, "deployment", "run", "byod-ingest/local",
         "--params", json.dumps({"settings": settings}), "--watch", "--watch-timeout", "240"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    state, report = asyncio.run(_latest_run_and_report(env["PREFECT_API_URL"]))
    assert state == "Completed"
    assert not asyncio.run(_pull_steps(env["PREFECT_API_URL"]))  # no step names that folder
    # Names from inputs are Markdown-escaped in the artifact (report.markdown_text).
    assert "**2** ingested" in report
    assert f"| {markdown_text('a_20240101.tif')} | ingested |" in report

    access = resolve_access(AzureOptions(connection_string=azurite))
    catalog = pystac.Catalog.from_file(f"{access.account_url}/stac-deployed/catalog.json",
                                       stac_io=byod.SignedStacIO(access))  # fmt: skip
    items = list(catalog.get_items(recursive=True))
    assert sorted(i.id for i in items) == ["a_20240101", "sub-b_20240102"]
    cogs = BlobServiceClient.from_connection_string(azurite).get_container_client("cogs-deployed")
    assert sum(1 for b in cogs.list_blobs() if b.name.endswith(".tif")) == 2
