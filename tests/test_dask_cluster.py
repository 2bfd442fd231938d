"""byod on Dask as hubs run it: an external `dask scheduler` and two `dask worker` processes
on loopback with default settings (daemonic workers under a nanny), started from a folder
where the repository's flows/ and tests/ are not importable; the flow reaches them by
`dask_address`. Also the runner's subprocess workers inside a daemonic process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from azure.storage.blob import BlobServiceClient
from distributed import Client
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.sorting import FlowRunSort
from prefect.testing.utilities import prefect_test_harness

import byod
import byod_flows
from byod import confine
from byod.config import IngestSettings
from byod.errors import ConfigurationError
from byod.pipeline import Outcome
from byod.reasons import Reason
from byod_flows import check_cluster, ingest
from tests.conftest import AZURITE_KEY, ramp, write_geotiff
from tests.daemon_jobs import KEPT, SECRETS, leaked, run_in_daemon

DASK = str(Path(sys.executable).parent / "dask")
WORKER_MARKS = (b"byod.subworker", b"multiprocessing.forkserver")  # byod's worker processes


def big_raster(path: Path) -> Path:
    """A raster whose conversion takes seconds (noise does not compress): time to see it."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 60000, (3000, 3000), dtype="uint16")
    return write_geotiff(path, data, crs="EPSG:32633", transform=(10, 0, 500000, 0, -10, 5000000))


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _kill_readers(name: str, killed: list[int], nannies: set[int] | None,
                  signum: int = signal.SIGKILL) -> None:  # fmt: skip
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if not any(mark in cmdline for mark in WORKER_MARKS):
                continue
            fds = Path(f"/proc/{entry}/fd")
            if not any(os.readlink(fd).endswith(name) for fd in fds.iterdir()):
                continue
            victim = int(entry)
            if nannies is not None:  # its Dask worker: a child of one of the cluster's nannies
                victim = _parent(victim)
                if _parent(victim) not in nannies:
                    continue
            if victim in killed:  # already signalled (a stopped process stays)
                continue
            os.kill(victim, signum)
            killed.append(victim)
        except OSError:  # gone meanwhile, or not ours to read
            continue


@contextlib.contextmanager
def killing_workers_reading(name: str, nannies: set[int] | None = None,
                            signum: int = signal.SIGKILL) -> Iterator[list[int]]:  # fmt: skip
    """While the block runs, SIGKILL every byod worker process (forkserver child or
    `byod.subworker`) that has a file named `name` open: a worker that dies while reading
    an input, as a segfault in GDAL would make it. With `nannies` (the pids of `dask worker`
    processes), SIGKILL the Dask worker process running that byod worker instead, as the OOM
    killer or a pod eviction would. `signum`: another signal (SIGSTOP: an input that never
    finishes). Yields the pids signalled."""
    killed: list[int] = []
    with polling(lambda: _kill_readers(name, killed, nannies, signum)):
        yield killed


@contextlib.contextmanager
def polling(step: Callable[[], None], every_s: float = 0.02) -> Iterator[None]:
    """Call `step` every `every_s` seconds in a thread while the block runs."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            step()
            stop.wait(every_s)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- the runner inside a daemonic process --------------------------------------------------


def test_runner_in_a_daemonic_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """multiprocessing refuses children to daemonic processes; the runner starts them with
    subprocess there, with the same guarantees."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=secret")
    for name, value in {**SECRETS, **KEPT}.items():  # a hub's tokens, under any name
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets.py").write_text("raise SystemExit('imported from the cwd')\n")
    context = mp.get_context("spawn")
    out = context.Queue()
    daemon = context.Process(target=run_in_daemon, args=(out, tmp_path), daemon=True)
    daemon.start()
    done = out.get(timeout=300)
    daemon.join(timeout=10)
    assert done["ok"] == ("OK", None)
    assert done["crash"][1][0] is Reason.CRASHED and "exit code 3" in done["crash"][1][1]
    assert done["hang"][1][0] is Reason.TIMEOUT
    env = done["env"][0]
    assert env and not any(v.startswith(b"AZURE_") for v in env)  # never in its environment
    assert b"PYTHONSAFEPATH=1" in env
    # An allowlist: no secret reaches the job, in os.environ or in /proc/self/environ ...
    seen = done["environ"][0]
    assert seen is not None and leaked(seen) == [], leaked(seen)
    # ... and what GDAL and the libraries need does.
    assert all(seen["os"].get(k) == v for k, v in KEPT.items()), seen["os"]
    assert done["path"][1] is None, done["path"]
    assert str(tmp_path) not in done["path"][0] and "" not in done["path"][0]
    sandbox, rejection = done["sandbox"]
    assert rejection is None and sandbox["write work"] == "done", done["sandbox"]
    if confine.abi_version() >= 1:  # Landlock: the subprocess worker is confined too
        assert "Permission denied" in sandbox["open passwd"], sandbox


# --- an external cluster --------------------------------------------------------------------


def _probe() -> Callable[[], dict[str, bool]]:
    """A function for a worker that tells whether the repository's packages can be imported
    there and whether it is a daemonic process (Dask's default). A local function, so
    cloudpickle ships it by value: this module is not importable on the workers."""

    def probe() -> dict[str, bool]:
        import importlib.util
        import multiprocessing

        found = {n: importlib.util.find_spec(n) is not None for n in ("flows", "tests")}
        return {**found, "daemon": multiprocessing.current_process().daemon}

    return probe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the process has its own copy of the descriptor
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:  # each in a session of its own: its group is this test's
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, azurite: str) -> Iterator[dict[str, Any]]:
    """A scheduler and two default workers, as a hub's cluster: byod installed, the
    repository not on their path, no PREFECT_API_URL, a HOME and PREFECT_HOME of their own
    (no folder shared with the flow), Azurite's connection string in their environment (as
    a hub sets the storage account's), nothing else set but loopback. The flow's Prefect API
    is a temporary server in this process (prefect_test_harness)."""
    home = tmp_path_factory.mktemp("dask-home")
    dropped = ("PYTHONPATH", "PREFECT_API_URL", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_KEY",
               "AZURE_STORAGE_SAS_TOKEN")  # fmt: skip
    env = {k: v for k, v in os.environ.items()
           if k not in dropped and not k.startswith("PYTEST")}  # fmt: skip
    env.update(HOME=str(home), PREFECT_HOME=str(home / ".prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONSAFEPATH="1",
               AZURE_STORAGE_CONNECTION_STRING=azurite)  # fmt: skip
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":")[-1]
    # The scheduler gives up on a task at the first death of the worker running it (default:
    # after 4), and gives each worker one task at a time (default: 1.1 per thread, so a
    # second task could share the death): a crashed input in seconds, and only that one.
    scheduler_env = {**env, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
                     "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}  # fmt: skip
    # --no-dashboard still serves /metrics, on 0.0.0.0:8787 unless told otherwise.
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard",
                 "--dashboard-address", "127.0.0.1:0"]  # fmt: skip
    processes = [_start(scheduler, home, scheduler_env, home / "scheduler.log")]
    try:
        for n in range(2):
            worker = [DASK, "worker", address, "--nthreads", "1", "--no-dashboard",
                      "--host", "127.0.0.1"]  # fmt: skip
            processes.append(_start(worker, home, env, home / f"worker{n}.log"))
        # The flow's Prefect API starts while the cluster does (both take seconds).
        with prefect_test_harness(server_startup_timeout=60):
            with Client(address, timeout=60, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=60)
                importable = client.run(_probe())
            yield {"address": address, "home": home, "env": env, "processes": processes,
                   "importable": importable}  # fmt: skip
    finally:
        _stop(processes)


async def task_runs(flow_name: str) -> dict[str, Any]:
    """The task runs of the newest run of a flow, by name."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1,
        )  # fmt: skip
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id]))
        )
        return {t.name: t for t in tasks}


def test_ingest_on_an_external_cluster(cluster: dict[str, Any], tmp_path: Path) -> None:
    # The workers are as a hub's: daemonic, without the repository's code.
    assert all(v == {"flows": False, "tests": False, "daemon": True}
               for v in cluster["importable"].values())  # fmt: skip
    source = tmp_path / "src"
    for name, dtype in (("a_20240101.tif", "uint16"), ("sub/b_20240102.tif", "int16")):
        write_geotiff(source / name, ramp(dtype=dtype), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    big_raster(source / "big_20240105.tif")
    settings = IngestSettings(source=str(source), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="hub")  # fmt: skip
    with killing_workers_reading("big_20240105.tif") as killed:
        state = ingest(settings, task_runner="dask", dask_address=cluster["address"],
                       return_state=True)  # fmt: skip
    assert killed, "no worker was seen reading the big input"
    assert state.is_completed(), state.message
    report = state.result()
    # The workers reported their task runs to this flow's API (none ran its own).
    tasks = asyncio.run(task_runs("byod-ingest-run"))
    assert report["counts"]["ingested"] == 2 and report["counts"]["rejected"] == 1
    row = next(r for r in report["rows"] if r["input"] == "big_20240105.tif")
    assert row["reason"] == "crashed" and "the worker died" in row["message"]
    catalog = pystac.Catalog.from_file(str(tmp_path / "cat" / "catalog.json"))
    assert sorted(i.id for i in catalog.get_items(recursive=True)) == [
        "a_20240101", "sub-b_20240102"]  # fmt: skip
    assert tasks["a_20240101.tif"].state.name == "Completed"
    assert tasks["big_20240105.tif"].state.name == "Rejected"
    assert tasks["big_20240105.tif"].state.message.startswith("crashed: ")
    assert not (cluster["home"] / ".prefect" / "prefect.db").exists()  # no ephemeral server


def test_an_input_whose_dask_worker_dies_is_crashed_and_the_rest_published(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    """The Dask worker process running an input dies (the OOM killer, an evicted pod): Dask
    gives up on the task (KilledWorker), the input is a crashed row and a Rejected task run
    (not one left Running), and the run publishes the other inputs."""
    source = tmp_path / "src"
    write_geotiff(source / "a_20240101.tif", ramp(), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    big_raster(source / "kill_20240106.tif")
    settings = IngestSettings(source=str(source), catalog=str(tmp_path / "cat"),
                              target=str(tmp_path / "data"), collection="lost")  # fmt: skip
    nannies = {p.pid for p in cluster["processes"][1:3]}
    try:
        with killing_workers_reading("kill_20240106.tif", nannies) as killed:
            state = ingest(settings, task_runner="dask", dask_address=cluster["address"],
                           return_state=True)  # fmt: skip
        assert killed, "no Dask worker was seen running the input"
        assert state.is_completed(), state.message
        report = state.result()
        tasks = asyncio.run(task_runs("byod-ingest-run"))
    finally:  # the nannies start new workers: wait for them, for the tests that follow
        with Client(cluster["address"], timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
    assert report["counts"]["ingested"] == 1 and report["counts"]["rejected"] == 1
    row = next(r for r in report["rows"] if r["input"] == "kill_20240106.tif")
    assert row["reason"] == "crashed" and "KilledWorker" in row["message"], row
    catalog = pystac.Catalog.from_file(str(tmp_path / "cat" / "catalog.json"))
    assert [i.id for i in catalog.get_items(recursive=True)] == ["a_20240101"]
    assert tasks["kill_20240106.tif"].state.type.value == "COMPLETED"
    assert tasks["kill_20240106.tif"].state.name == "Rejected"
    assert tasks["kill_20240106.tif"].state.message.startswith("crashed: ")


def _result_blobs(container: str, prefix: str) -> dict[str, bytes]:
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    client = service.get_container_client(container)
    return {b.name: client.download_blob(b.name).readall()
            for b in client.list_blobs(name_starts_with=prefix)}  # fmt: skip


async def _block_documents() -> list[dict[str, Any]]:
    async with get_client() as client:
        documents = await client.read_block_documents(include_secrets=True)
        return [d.model_dump(mode="json") for d in documents]


def test_dask_task_results_are_kept_in_the_blob_target(
    cluster: dict[str, Any], azure_env: str, tmp_path: Path
) -> None:
    """An az:// catalog and target: the workers keep task results and cache records in the
    target's account (Azurite), not in a folder (theirs is not the flow's); the flow run
    again takes every outcome from there (Cached), on restarted workers (nothing in their
    memory)."""
    uid = azure_env
    inputs = ("a_20240101.tif", "sub/b_20240102.tif")
    for name in inputs:
        write_geotiff(tmp_path / "src" / name, ramp(), crs="EPSG:32633",
                      transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    settings = IngestSettings(source=str(tmp_path / "src"), target=f"az://cogs-{uid}/data",
                              catalog=f"az://stac-{uid}", collection="blobres")  # fmt: skip
    state = ingest(settings, task_runner="dask", dask_address=cluster["address"],
                   return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    assert state.result()["counts"]["ingested"] == 2

    # One record per input under the target's _prefect-results/, read straight from Azurite:
    # Prefect's result record (JSON) whose result is the input's pickled outcome.
    records = _result_blobs(f"cogs-{uid}", "data/_prefect-results/")
    assert len(records) == 2, sorted(records)
    outcomes = []
    for content in records.values():
        record = json.loads(content)
        assert record["metadata"]["serializer"]["type"] == "pickle"
        outcomes.append(pickle.loads(base64.b64decode(record["result"])))
    assert all(isinstance(o, Outcome) for o in outcomes)
    assert sorted(o.row.input for o in outcomes) == sorted(inputs)
    # Nothing went to a folder: not the workers' Prefect home, not beside the source.
    assert not (cluster["home"] / ".prefect" / "storage").exists()
    assert not list(tmp_path.rglob(".byod-prefect-results"))
    # The storage block saved in the Prefect API holds no secret.
    documents = json.dumps(asyncio.run(_block_documents()))
    assert f"cogs-{uid}" in documents and AZURITE_KEY not in documents
    assert "AccountKey" not in documents

    # The catalog is lost, the COGs stay: the flow run again takes each input's outcome
    # from the records in Azurite.
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    service.delete_container(f"stac-{uid}")
    with Client(cluster["address"], timeout=60, set_as_default=False) as client:
        client.restart(wait_for_workers=True, timeout=120)  # new worker processes
    state = ingest(settings, task_runner="dask", dask_address=cluster["address"],
                   return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    report = state.result()
    assert report["counts"]["ingested"] == 2, report["counts"]
    tasks = asyncio.run(task_runs("byod-ingest-run"))
    assert {tasks[n].state.name for n in inputs} == {"Cached"}, {
        n: tasks[n].state.name for n in inputs}  # fmt: skip
    assert _result_blobs(f"cogs-{uid}", "data/_prefect-results/") == records  # not rewritten


def _build_id(*packages: Path) -> str:
    """A byod build id, as the check is documented to compute it: SHA-256 of the sorted
    paths (package name first) and contents of the .py files of byod and byod_flows, the
    first 16 hex digits."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            digest.update(f"{package.name}/{path.relative_to(package).as_posix()}".encode())
            digest.update(b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def test_a_cluster_without_the_same_byod_is_refused(cluster: dict[str, Any]) -> None:
    """A worker with another build of byod under the same version number joins: the flow's
    check names it and both builds, and refuses to start."""
    fake = cluster["home"] / "other-byod"
    (fake / "byod").mkdir(parents=True)
    (fake / "byod" / "__init__.py").write_text(f"__version__ = {byod.__version__!r}\n")
    tasks = Path(byod_flows.__file__).parent  # the worker's flows are this install's
    mine = _build_id(Path(byod.__file__).parent, tasks)
    theirs = _build_id(fake / "byod", tasks)
    env = {**cluster["env"], "PYTHONPATH": str(fake)}
    with Client(cluster["address"], timeout=60, set_as_default=False) as client:
        before = set(client.scheduler_info()["workers"])
    other = _start([DASK, "worker", cluster["address"], "--nthreads", "1", "--no-dashboard",
                    "--host", "127.0.0.1"], cluster["home"], env,
                   cluster["home"] / "other.log")  # fmt: skip
    try:
        with Client(cluster["address"], timeout=60, set_as_default=False) as client:
            client.wait_for_workers(len(before) + 1, timeout=60)
            (added,) = set(client.scheduler_info()["workers"]) - before
        with pytest.raises(ConfigurationError) as refused:
            check_cluster(cluster["address"])
        message = str(refused.value)
        assert f"{added}: byod {byod.__version__} build {theirs}" in message, message
        assert f"byod {byod.__version__} build {mine}" in message, message
        assert not any(w in message for w in before), message  # the good workers are not named
        # The flow checks first: Failed at once, with that message, nothing planned.
        settings = IngestSettings(source=str(fake), catalog=str(fake / "cat"))
        state = ingest(settings, task_runner="dask", dask_address=cluster["address"],
                       return_state=True)  # fmt: skip
        assert state.is_failed() and theirs in str(state.message)
        assert not (fake / "cat").exists()
    finally:
        _stop([other])
    with pytest.raises(ConfigurationError, match="cannot reach the Dask scheduler"):
        check_cluster(f"tcp://127.0.0.1:{_free_port()}", timeout_s=2)


def test_a_scheduler_without_workers_is_refused(tmp_path: Path) -> None:
    """No worker ever joins (a cluster not scaled up): a ConfigurationError naming the
    address and the wait, not a time-out deep in the task runner."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    scheduler = _start([DASK, "scheduler", "--host", "127.0.0.1", "--port",
                        address.rsplit(":")[-1], "--no-dashboard", "--dashboard-address",
                        "127.0.0.1:0"], tmp_path, env,
                       tmp_path / "scheduler.log")  # fmt: skip
    try:
        with Client(address, timeout=60, set_as_default=False):
            pass  # the scheduler is up
        with pytest.raises(ConfigurationError) as refused:
            check_cluster(address, timeout_s=2)
        assert f"the Dask scheduler at {address} has no workers" in str(refused.value)
        assert "none joined within 2 s" in str(refused.value)
    finally:
        _stop([scheduler])
