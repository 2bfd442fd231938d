"""byod on a hub's dask-gateway: a real `dask-gateway-server` on loopback (its local backend:
schedulers and workers as processes of this machine, TLS through the gateway's proxy),
reached as a hub configures it (dask's `gateway.*` configuration), by a new cluster made
with options or by the name of a running one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pystac
import pytest
from dask_gateway import Gateway
from distributed import Client
from prefect.testing.utilities import prefect_test_harness

from byod.config import IngestSettings
from byod.errors import ConfigurationError
from byod_flows import awaited_workers, check_runner_options, closing_gateway, ingest
from tests.conftest import ramp, write_geotiff
from tests.test_dask_cluster import (
    DASK,
    _free_port,
    _parent,
    _start,
    _stop,
    polling,
    task_runs,
)

SERVER = str(Path(sys.executable).parent / "dask-gateway-server")

CONFIG = """
from dask_gateway_server.options import Integer, Options

c.DaskGateway.address = "127.0.0.1:0"  # its private API
c.Proxy.address = "127.0.0.1:{http}"  # the API and dashboards, for clients
c.Proxy.tcp_address = "127.0.0.1:{tcp}"  # the schedulers, through TLS (SNI)
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker"]
c.ClusterConfig.environment = {environment!r}
c.ClusterConfig.idle_timeout = 600  # a cluster a test leaves behind goes by itself
# One option, as hubs offer a few (worker size, image): threads per worker, at most 2.
c.Backend.cluster_options = Options(
    Integer("worker_threads", default=1, min=1, max=2, label="Threads per worker"),
    handler=lambda options: {{"worker_threads": options.worker_threads}},
)
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dask-gateway server whose clusters' processes have byod installed, the repository
    not on their path, and no PREFECT_API_URL; the flow's Prefect API is a temporary server
    in this process. Yields the client configuration a hub would set."""
    home = tmp_path_factory.mktemp("gateway-home")
    http, tcp = _free_port(), _free_port()
    environment = {"HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONSAFEPATH": "1"}  # fmt: skip
    (home / "dask_gateway_config.py").write_text(CONFIG.format(
        http=http, tcp=tcp, clusters=str(home / "clusters"), dask=DASK,
        environment=environment))  # fmt: skip
    dropped = ("PYTHONPATH", "PREFECT_API_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PYTEST")}
    env.update(environment)
    server = _start([SERVER, "-f", str(home / "dask_gateway_config.py")], home, env,
                    home / "gateway.log")  # fmt: skip
    config = {"gateway.address": f"http://127.0.0.1:{http}",
              "gateway.proxy-address": f"gateway://127.0.0.1:{tcp}",
              "gateway.auth.type": "basic"}  # fmt: skip
    try:
        with prefect_test_harness(server_startup_timeout=60):
            deadline = time.monotonic() + 60
            while True:  # the gateway's API answers through its proxy
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/health") as up:
                        if up.status == 200:
                            break
                except OSError:
                    assert server.poll() is None, (home / "gateway.log").read_text()
                    assert time.monotonic() < deadline, (home / "gateway.log").read_text()
                    time.sleep(0.2)
            yield {"config": config, "home": home, "server": server}
    finally:
        _stop([server])  # it stops the clusters it runs


def _clusters(config: dict[str, str]) -> list[str]:
    """Names of the gateway's running clusters."""
    with dask.config.set(config), closing_gateway(Gateway()) as gateway:
        return [c.name for c in gateway.list_clusters()]


@contextlib.contextmanager
def _workers_running_byod() -> Iterator[set[int]]:
    """While the block runs, the pids of the processes that start byod's subprocess workers
    (`python -P -m byod.subworker`): the daemonic Dask workers the inputs ran on."""
    parents: set[int] = set()

    def look() -> None:
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (
                    entry.isdigit()
                    and b"byod.subworker" in Path(f"/proc/{entry}/cmdline").read_bytes()
                ):
                    parents.add(_parent(int(entry)))

    with polling(look):
        yield parents


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_a_flow_on_a_new_gateway_cluster(gateway: dict[str, Any], tmp_path: Path) -> None:
    """task_runner="dask-gateway" with options: a new cluster, scaled to 2 workers, runs the
    inputs on both (its workers are processes the gateway started), and is shut down at the
    end; options the gateway refuses fail the flow at once."""
    source = tmp_path / "src"
    names = ["a_20240101.tif", "b_20240102.tif", "c_20240103.tif", "d_20240104.tif"]
    for name in names:
        write_geotiff(source / name, ramp(), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    settings = IngestSettings(source=str(source), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="gw",
                              publish_every_inputs=2)  # fmt: skip
    with dask.config.set(gateway["config"]), _workers_running_byod() as ran_on:
        state = ingest(settings, task_runner="dask-gateway", dask_workers=2,
                       dask_gateway_options={"worker_threads": 1}, return_state=True)  # fmt: skip
        nannies = {n: _parent(n) for n in map(_parent, ran_on)}  # theirs: the gateway
        lines = {pid: _cmdline(pid) for pid in nannies}
    assert state.is_completed(), state.message
    assert state.result()["counts"]["ingested"] == 4
    catalog = pystac.Catalog.from_file(str(tmp_path / "cat" / "catalog.json"))
    assert sorted(i.id for i in catalog.get_items(recursive=True)) == [
        n.removesuffix(".tif") for n in names]  # fmt: skip
    # Both workers of the cluster worked, each the worker process of a `dask worker` nanny
    # the gateway started (gone by now, with the cluster: read while the flow ran).
    assert len(ran_on) == 2, ran_on
    assert len(nannies) == 2 and set(nannies.values()) == {gateway["server"].pid}, nannies
    assert all(" worker tls://" in line for line in lines.values()), lines
    assert _clusters(gateway["config"]) == []  # the flow's cluster was shut down
    # Progress published on the flow's process while the workers converted the rest.
    progress = [t for n, t in asyncio.run(task_runs("byod-ingest-run")).items()
                if n.startswith("publish-progress")]  # fmt: skip
    assert progress and all(t.state.name == "Completed" for t in progress), progress

    with dask.config.set(gateway["config"]):
        refused = ingest(settings, task_runner="dask-gateway",
                         dask_gateway_options={"worker_threads": 5}, return_state=True)  # fmt: skip
    assert refused.is_failed()
    message = str(refused.message)
    assert "dask-gateway at http://127.0.0.1:" in message, message
    assert "worker_threads" in message and "5" in message, message
    assert _clusters(gateway["config"]) == []


def test_a_running_cluster_by_name_as_a_hub_configures_it(
    gateway: dict[str, Any], tmp_path: Path
) -> None:
    """The gateway found in ~/.config/dask/gateway.yaml (as a hub writes it), the cluster by
    its name: another process checks it through `gateway_cluster` and `check_cluster`, and
    leaves it running for its owner."""
    config = gateway["config"]
    with dask.config.set(config), closing_gateway(Gateway()) as owner:
        cluster = owner.new_cluster()
        try:
            cluster.scale(2)
            with Client(cluster.scheduler_address, security=cluster.security,
                        set_as_default=False) as client:  # fmt: skip
                client.wait_for_workers(2, timeout=60)
                workers = sorted(client.scheduler_info()["workers"])
            home = tmp_path / "hub-home"
            (home / ".config" / "dask").mkdir(parents=True)
            (home / ".config" / "dask" / "gateway.yaml").write_text(json.dumps({"gateway": {
                "address": config["gateway.address"],
                "proxy-address": config["gateway.proxy-address"],
                "auth": {"type": "basic"}}}))  # fmt: skip
            script = (
                "import json, sys\n"
                "from byod_flows import check_cluster, gateway_cluster\n"
                "with gateway_cluster(sys.argv[1], None, 0) as (address, security):\n"
                "    print(json.dumps(sorted(check_cluster(address, security=security))))\n"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
            env |= {"HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}
            done = subprocess.run([sys.executable, "-c", script, cluster.name], env=env, cwd=home,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            assert json.loads(done.stdout.splitlines()[-1]) == workers
            assert cluster.name in _clusters(config)  # connected, not shut down
        finally:
            with closing_gateway(cluster.gateway):
                cluster.shutdown()


def test_no_gateway_configured_fails_the_flow_at_once(
    gateway: dict[str, Any], tmp_path: Path
) -> None:
    """No gateway address in dask's configuration, or one that does not answer: the flow
    fails at once (a ConfigurationError, no retries), saying what to set, nothing planned."""
    settings = IngestSettings(source=str(tmp_path), catalog=str(tmp_path / "cat"))
    with dask.config.set({"gateway.address": None}):
        state = ingest(settings, task_runner="dask-gateway", return_state=True)
    assert state.is_failed()
    assert "no dask-gateway is configured" in str(state.message), state.message
    assert "DASK_GATEWAY__ADDRESS" in str(state.message)
    with pytest.raises(ConfigurationError, match="no dask-gateway is configured"):
        state.result()
    dead = f"http://127.0.0.1:{_free_port()}"
    with dask.config.set({"gateway.address": dead}):
        state = ingest(settings, task_runner="dask-gateway", dask_gateway_cluster="nope",
                       return_state=True)  # fmt: skip
    assert state.is_failed() and f"dask-gateway at {dead}: cannot reach cluster 'nope'" in str(
        state.message)  # fmt: skip
    with dask.config.set(gateway["config"]):  # a name the gateway does not know
        state = ingest(settings, task_runner="dask-gateway", dask_gateway_cluster="nope",
                       return_state=True)  # fmt: skip
    assert state.is_failed() and "cannot reach cluster 'nope'" in str(state.message)
    assert not (tmp_path / "cat").exists()


def test_contradicting_runner_parameters_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="for task_runner='dask' \\(not 'threads'\\)"):
        check_runner_options("threads", "tcp://127.0.0.1:8786", None, None)
    with pytest.raises(ConfigurationError, match="dask_gateway_cluster='c1': for task_runner="):
        check_runner_options("dask", None, "c1", None)
    with pytest.raises(ConfigurationError, match="either the name of a running cluster or"):
        check_runner_options("dask-gateway", None, "c1", {"worker_threads": 2})
    with pytest.raises(ConfigurationError, match="dask_address="):
        check_runner_options("dask-gateway", "tcp://127.0.0.1:8786", "c1", None)
    check_runner_options("dask-gateway", None, None, {})  # a new cluster, default options
    check_runner_options("dask", "tcp://127.0.0.1:8786", None, None)


def test_empty_names_and_no_workers_are_refused() -> None:
    """A form field emptied in the Prefect UI is "", not None: it was read as "no name" by
    one check and as a name by another (a new cluster made behind the user's back); no
    Dask worker at all left the tasks waiting forever."""
    with pytest.raises(ConfigurationError, match="dask_gateway_cluster is empty"):
        check_runner_options("dask-gateway", None, "", None)
    with pytest.raises(ConfigurationError, match="dask_address is empty"):
        check_runner_options("dask", " ", None, None)
    for runner in ("dask", "dask-gateway"):
        with pytest.raises(ConfigurationError, match="dask_workers=0: at least 1"):
            check_runner_options(runner, None, None, None, 0)  # type: ignore[arg-type]
    check_runner_options("threads", None, None, None, 0)  # threads: dask_workers unused


def test_only_a_cluster_the_flow_scaled_is_waited_for_at_length() -> None:
    """A new gateway cluster was scaled to dask_workers by the flow; a running one (by
    name or address) is its owner's: the flow waits for one worker, as the README says."""
    assert awaited_workers("dask-gateway", None, 3) == (3, 300.0)
    assert awaited_workers("dask-gateway", "owned-by-someone", 3) == (1, 30.0)
    assert awaited_workers("dask", None, 3) == (1, 30.0)
    assert awaited_workers("dask-gateway", None, 1) == (1, 30.0)
