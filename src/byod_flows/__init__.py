"""Prefect flows over the byod library: `byod-ingest` and `byod-sweep` (the Prefect edge).

Thin by design: every step is a byod function (`plan_run`, `process`, `publish_run`); this
module only decides what runs as a task, with which retries, caching and task runner. It is a
package of the installed distribution beside `byod` (not the repository's `flows/` folder), so
that a deployment's worker and the workers of a Dask cluster, which have byod installed and
nothing else, can import every function a task runs, while the library itself imports no
Prefect. Deployments name it as `byod_flows.ingest` (prefect.yaml).

Flow parameters are `IngestSettings` itself (a form in the Prefect UI): every option of
`byod ingest` is reachable; the fields given override the dataset's `byod.yaml`
(`settings.config_file`, or the one in the source folder), which overrides byod's defaults.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext
from prefect.futures import as_completed
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import get_transaction

from byod.config import IngestSettings, build_settings
from byod.errors import ByodError, ConfigurationError, StorageUnavailable, storage_failure
from byod.keys import ROOT_KEY, collection_key
from byod.pipeline import (
    Outcome,
    Run,
    RunContext,
    WorkItem,
    outcome_is_stored,
    plan_run,
    process,
    progress_due,
    publish_progress,
    publish_run,
    stop_run,
)
from byod.reasons import Reason
from byod.report import Report, Row, Status, to_markdown
from byod_flows.results import result_folder, result_storage

Runner = Literal["threads", "dask", "dask-gateway"]
log = logging.getLogger(__name__)
REJECTED = "Rejected"  # the name of a rejected input's Completed task state


def _retry_storage_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what a failing store caused (it may come back); fail fast on everything else
    (a configuration error, a rejected input, a bug): byod.errors' split."""
    try:
        state.result()
    except (StorageFailed, StorageUnavailable):
        return True
    except ByodError:
        return False
    except Exception as exc:  # noqa: BLE001 - e.g. a full disk or an Azure error in publish
        return storage_failure(exc, "") is not None
    return False


def _explicit(settings: IngestSettings) -> dict[str, Any]:
    """The fields the caller gave (pydantic's `model_fields_set`): only these override
    byod.yaml. Sections (time, clouds, azure) are kept as given: build_settings merges
    each over the file's field by field, the fields set in it only."""
    return {name: getattr(settings, name) for name in settings.model_fields_set
            if name not in ("source", "config_file")}  # fmt: skip


@task(name="plan", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_storage_only)  # fmt: skip
def plan_task(settings: IngestSettings) -> Run:
    """Discover, fingerprint and settle what is unchanged (a listing and HEADs, no downloads).
    A ConfigurationError (a missing source folder, a refused region, a relative path in a
    temporary working folder) is never retried."""
    resolved = build_settings(settings.source, _explicit(settings), settings.config_file)
    check_local_paths(resolved, Path.cwd(), "PREFECT__FLOW_RUN_ID" in os.environ)
    return plan_run(resolved)


def check_local_paths(settings: IngestSettings, cwd: Path, worker_run: bool) -> None:
    """Refuse relative `source`, `target` and `catalog` paths in a run whose working folder
    is a Prefect process worker's temporary one (`worker_run`: started by a worker; `cwd` a
    `...prefect` folder in the temp folder, which the worker deletes when the run ends): the
    catalog and COGs would go with it. Absolute paths and az:// URLs are always fine, and so
    are relative ones where the working folder stays (a worker's `working_dir`, a script).

    Raises ConfigurationError naming the fields."""
    temp = Path(tempfile.gettempdir()).resolve()
    if not worker_run or not (cwd.name.endswith("prefect") and cwd.resolve().parent == temp):
        return
    relative = [f"{name}={getattr(settings, name)!r}" for name in ("source", "target", "catalog")
                if "://" not in getattr(settings, name)
                and not Path(getattr(settings, name)).is_absolute()]  # fmt: skip
    if relative:
        raise ConfigurationError(
            f"relative paths ({', '.join(relative)}) in a run of a deployment: the worker runs "
            f"it in a temporary folder ({cwd}) that it deletes when the run ends; give source, "
            "target and catalog as absolute paths or az:// URLs"
        )


@dataclass
class InputFingerprint(CachePolicy):
    """An input's cache key (a Prefect 3 cache policy): its fingerprint (content and the
    options that shape the output) and where it goes, so a retried or re-run flow, on any
    worker that shares the result storage, never converts the same input twice."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        run: RunContext = inputs["context"]
        work: WorkItem = inputs["work"]
        s = run.settings
        parts = (work.fingerprint, work.item_id, run.collection_id, s.target, s.catalog,
                 s.timeout_s, s.max_memory_mb)  # fmt: skip
        return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


class InputRejected(Exception):
    """Storing the input failed: raised so that Prefect retries it, never cached."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)  # in args, so it survives pickling into Prefect's state
        self.outcome = outcome

    def __str__(self) -> str:
        return self.outcome.row.message or self.outcome.row.input


class StorageFailed(InputRejected):
    """Storing the input's files failed: retried with backoff."""


@task(
    name="convert-describe-store",
    task_run_name="{work.candidate.relpath}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_retry_storage_only,
    cache_policy=InputFingerprint(),
    cache_expiration=dt.timedelta(days=7),
)
def process_task(context: RunContext, work: WorkItem) -> Outcome | State[Outcome]:
    """One input, in a bounded worker process. A stored input is Completed (and cached); a
    rejected one is Completed named `Rejected`, its reason the state message, not cached; a
    storage failure raises to be retried."""
    outcome = process(context, work)
    if outcome.row.reason is Reason.STORAGE_FAILED:
        raise StorageFailed(outcome)
    if outcome.row.reason is not None:
        transaction = get_transaction()
        if transaction is not None:  # never cached: a time-out or a crash may not repeat
            transaction.write_on_commit = False
        message = f"{outcome.row.reason.value}: {outcome.row.message or outcome.row.input}"
        return Completed(name=REJECTED, message=message, data=outcome)
    return outcome


@task(name="publish", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_storage_only)  # fmt: skip
def publish_task(run: Run, outcomes: list[Outcome]) -> dict[str, Any]:
    report = publish_run(run, outcomes)
    _report_artifact(report)
    return report.to_dict()


def _report_artifact(report: Report) -> None:
    """The run's report as the flow run's `byod-ingest-report` artifact (Markdown)."""
    collection = report.catalog.removesuffix(ROOT_KEY) + collection_key(report.collection)
    create_markdown_artifact(to_markdown(report, collection), key="byod-ingest-report",
                             description=f"byod ingest of {report.source}")  # fmt: skip


def _redo(future: Any, result: Any, context: RunContext) -> bool:
    """A cached outcome is done again when it was a rejection (a time-out or a crash may
    not repeat) or its files are gone or replaced since."""
    if future.state.name != "Cached" or not isinstance(result, Outcome):
        return False
    return result.row.reason is not None or not outcome_is_stored(context, result)


@task(name="publish-progress", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_storage_only, cache_policy=NO_CACHE)  # fmt: skip
def publish_progress_task(run: Run, outcomes: list[Outcome]) -> int:
    """Publish the stored inputs not published yet while the run goes on (`byod ingest`'s
    progress publishes): a flow run killed or crashed after this loses only later inputs.
    Runs on the flow's process, on the flow's own `run` (which records what is published).
    Returns how many inputs are published so far."""
    publish_progress(run, outcomes)
    return len(run.flushed)


def _as_outcome(work: WorkItem, result: Any) -> Outcome:
    """The outcome a finished `process_task` gave: its own, a rejected one from the raised
    InputRejected, or a crashed row when the task itself failed. A storage outage still
    there after the retries is raised (the run ends Failed; the next run removes what it
    stored and keeps what was published)."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, InputRejected):
        return result.outcome
    if isinstance(result, StorageUnavailable):
        raise result
    row = Row(work.candidate.relpath, Status.REJECTED, reason=Reason.CRASHED,
              message=f"{work.candidate.relpath}: {result}")  # fmt: skip
    return Outcome(row)


@flow(name="byod-ingest-run")
def _ingest_run(settings: IngestSettings, results: str | None) -> Any:
    """The ingest itself, as a subflow so that the caller can choose its task runner.
    Outcomes are taken as their tasks finish (in any order), and published every
    `publish_every_inputs` stored inputs or `publish_every_s` seconds, as `byod ingest`
    does. Returns the flow's final state (Completed or Failed), with the report as its
    data."""
    run = plan_task(settings)
    # Results and cache records where every worker finds them (result_folder), from the
    # settings as byod.yaml completes them: a local folder, or the blob target's account.
    resolved = run.context.settings
    storage = result_storage(result_folder(resolved, results), resolved.azure)
    process_one = process_task.with_options(result_storage=storage, persist_result=True)
    outcomes: list[Outcome] = []
    try:
        report = _process_and_publish(run, process_one, outcomes)
    except Exception as exc:  # noqa: BLE001 - a store still failing after the retries, a bug
        if run.published:  # only the clean-up after the final switch failed: next run's
            get_run_logger().warning("byod: clean-up after publishing failed: %s", exc)
            run.report.notes.append(f"clean-up after publishing failed ({type(exc).__name__}); "
                                    "the next run removes what is left")  # fmt: skip
            _report_artifact(run.report)
            report = run.report.to_dict()
        else:  # as `byod ingest` ends (exit 3): what was published stays, the rest is said
            error = stop_run(run, outcomes, exc)
            stopped = error.report if error.report is not None else run.report
            _report_artifact(stopped)
            return Failed(message=f"byod: {error}", data=stopped.to_dict())
    counts = report["counts"]
    get_run_logger().info("byod: %s; catalog %s", counts, report["catalog"])
    if outcomes and all(o.row.reason is Reason.CRASHED for o in outcomes):
        # Nothing could be worked on: byod cannot run here (e.g. workers that may not start
        # processes), which a Completed run with an empty collection would hide.
        return Failed(message=f"byod: every input ({len(outcomes)}) crashed; see the "
                      "byod-ingest-report artifact", data=report)  # fmt: skip
    return Completed(data=report)


def _process_and_publish(run: Run, process_one: Any, outcomes: list[Outcome]) -> dict[str, Any]:
    """Submit every input, take the outcomes as their tasks finish (into `outcomes`),
    publish progress when due and the whole at the end. Returns the report (a dict)."""
    pending = {process_one.submit(run.context, w): w for w in run.todo}
    while pending:
        redo = {}
        for future in as_completed(list(pending)):
            work = pending[future]
            try:
                result = future.result(raise_on_failure=False)
            except Exception as exc:  # noqa: BLE001 - the task never ended: its input crashed
                outcomes.append(_lost(work, future, exc))
                continue
            if _redo(future, result, run.context):  # once: a redone task is not "Cached"
                redo[process_one.with_options(refresh_cache=True).submit(run.context, work)] = work
                continue
            outcomes.append(_as_outcome(work, result))
            if progress_due(run, outcomes):
                publish_progress_task(run, outcomes)
        pending = redo
    return publish_task(run, outcomes)


def _lost(work: WorkItem, future: Any, exc: Exception) -> Outcome:
    """The crashed row of an input whose task never ended: Dask gave up on it (KilledWorker:
    the worker process running it died, e.g. the OOM killer or an evicted pod, more often
    than distributed.scheduler.allowed-failures allows), or it was cancelled. Its task run,
    left Running by the dead worker, is set to Completed named Rejected, as other crashes."""
    relpath = work.candidate.relpath
    cause = f"{type(exc).__name__}: {exc}"
    message = f"{relpath}: its worker process died while working on it ({cause})"
    row = Row(relpath, Status.REJECTED, reason=Reason.CRASHED, message=message)
    task_run_id = getattr(future, "task_run_id", None)
    if task_run_id is not None:
        from prefect.client.orchestration import get_client

        state: State[Any] = Completed(name=REJECTED, message=f"{Reason.CRASHED.value}: {message}")
        try:
            with get_client(sync_client=True) as client:
                client.set_task_run_state(task_run_id, state, force=True)
        except Exception as error:  # noqa: BLE001 - the row is what counts; the UI may lag
            get_run_logger().warning("byod: cannot set the state of %s: %s", relpath, error)
    return Outcome(row)


def _identity_probe() -> Callable[[], str]:
    """A function for each Dask worker that returns the identity of the byod it imports,
    "byod VERSION build ID": the build id is the SHA-256 (first 16 hex digits) of the sorted
    paths and contents of the .py files of byod and byod_flows, so a worker whose byod differs
    from this one under the same version number is told apart. A local function, so
    cloudpickle ships it by value: a worker with an older byod (without this module) still
    answers, and one without byod fails to import it."""

    def probe() -> str:
        import hashlib
        import importlib.util
        from pathlib import Path

        import byod as installed

        digest = hashlib.sha256()
        # The library and the tasks the workers run; byod_flows found, not imported (it
        # imports the library, which may be another build).
        for name in ("byod", "byod_flows"):
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise ModuleNotFoundError(f"No module named {name!r}")
            root = Path(next(iter(spec.submodule_search_locations)))
            for path in sorted(root.rglob("*.py")):
                digest.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
                digest.update(b"\0" + path.read_bytes() + b"\0")
        return f"byod {installed.__version__} build {digest.hexdigest()[:16]}"

    return probe


@functools.cache
def build_identity() -> str:
    """This process's byod, "byod VERSION build ID", as `_identity_probe` computes it on
    workers (computed once per process)."""
    return _identity_probe()()


def _describe(identity: Any) -> str:
    if isinstance(identity, str):
        return identity
    return f"no usable byod ({identity!r})"  # the probe's exception, e.g. ModuleNotFoundError


def check_cluster(
    address: str, timeout_s: float = 30, *, security: Any = None, workers: int = 1
) -> dict[str, str]:
    """Check that the Dask cluster at `address` can run byod's tasks: `workers` workers join
    within `timeout_s` seconds (the run goes on with fewer, with a warning, when at least
    one did), and each imports the same byod build as this process (version and a hash of
    the package's files: `build_identity`). `security`: the cluster's TLS credentials (a
    dask-gateway cluster's `security`), None for a plain scheduler. Returns {worker: "byod
    VERSION build ID"}.

    Raises ConfigurationError: the scheduler is unreachable, no worker joined in time, or
    workers lack byod or run another build (the message names them and both identities)."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout_s, set_as_default=False, security=security)
    except OSError as exc:
        raise ConfigurationError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    with client:
        if len(client.scheduler_info().get("workers", {})) < workers:
            try:
                client.wait_for_workers(workers, timeout=timeout_s)
            except TimeoutError as exc:  # distributed's WorkerStartTimeoutError
                joined = len(client.scheduler_info().get("workers", {}))
                if not joined:
                    raise ConfigurationError(
                        f"the Dask scheduler at {address} has no workers: none joined within "
                        f"{timeout_s:g} s (start workers, or scale the cluster up, then run "
                        "again)"
                    ) from exc
                log.warning("byod: %d of %d Dask workers joined within %g s; going on with "
                            "them", joined, workers, timeout_s)  # fmt: skip
        identities = client.run(_identity_probe(), on_error="return")
    mine = build_identity()
    wrong = {w: i for w, i in identities.items() if i != mine}
    if wrong:
        detail = "; ".join(f"{w}: {_describe(i)}" for w, i in sorted(wrong.items()))
        raise ConfigurationError(
            f"the Dask cluster at {address} cannot run this process's {_describe(mine)}: "
            f"install the same byod on its workers ({detail})"
        )
    return {w: str(i) for w, i in identities.items()}


GATEWAY_CONFIG = (
    "set the gateway's address in dask's configuration, as hubs do (gateway.address in "
    "~/.config/dask/gateway.yaml, or the DASK_GATEWAY__ADDRESS environment variable)"
)


@contextlib.contextmanager
def gateway_cluster(
    name: str | None, options: dict[str, Any] | None, workers: int
) -> Iterator[tuple[str, Any]]:
    """A dask-gateway cluster for the block: the running cluster called `name`
    (`Gateway().connect`, left running afterwards), or a new one made with `options` (the
    gateway's cluster options, `Gateway().new_cluster(**options)`), scaled to `workers` and
    shut down afterwards. The gateway's address, proxy address and authentication come from
    dask's configuration, as a hub sets them (`gateway.*` in ~/.config/dask/gateway.yaml or
    DASK_GATEWAY__* variables). Yields the scheduler's address and its TLS credentials.

    Raises ConfigurationError: dask-gateway not installed (the `hub` extra), no gateway
    configured, the gateway unreachable or refusing the credentials, no cluster of that
    name, options the gateway refuses, or a cluster that failed to start."""
    try:
        import aiohttp
        from dask_gateway import Gateway, GatewayClusterError, GatewayServerError
    except ImportError as exc:
        raise ConfigurationError(
            f"dask-gateway is not installed here ({exc}): install byod with its `hub` extra"
        ) from exc
    try:
        gateway = Gateway()
    except ValueError as exc:  # "No dask-gateway address provided or found in configuration"
        raise ConfigurationError(f"no dask-gateway is configured: {GATEWAY_CONFIG}") from exc
    what = f"cluster {name!r}" if name else f"a new cluster with options {options or {}}"
    with closing_gateway(gateway):
        try:
            if name:
                cluster = gateway.connect(name)
            else:
                cluster = gateway.new_cluster(**(options or {}))
                cluster.scale(workers)
        except (ValueError, TypeError, GatewayClusterError, GatewayServerError,
                aiohttp.ClientError, OSError) as exc:  # fmt: skip
            # ValueError: no such cluster, or options refused (HTTP 404/422); ClientError,
            # OSError: the gateway unreachable or refusing the credentials (HTTP 401/403).
            raise ConfigurationError(
                f"dask-gateway at {gateway.address}: cannot reach {what}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        with closing_gateway(cluster.gateway):  # the cluster's own client of the gateway
            try:
                yield cluster.scheduler_address, cluster.security
            finally:
                cluster.close(shutdown=not name)  # connected: it stays for its owner


@contextlib.contextmanager
def closing_gateway(gateway: Any) -> Iterator[Any]:
    """Close a `dask_gateway.Gateway` client at the end of the block, once: its `__del__`
    closes it again, which raises with distributed's loop runner once stopped ("Accessing
    the loop property while the loop is not running"), an ignored exception printed at
    garbage collection. Without its loop runner, `__del__` does nothing."""
    try:
        yield gateway
    finally:
        gateway.close()
        gateway.__dict__.pop("_loop_runner", None)


def _api_url() -> str | None:
    """The Prefect API this flow reports to, also when it is an ephemeral server: Dask
    workers are given it, so their task runs are this flow's (and none starts its own)."""
    if url := PREFECT_API_URL.value():
        return str(url)
    try:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the one get_client() started (a singleton)
        return str(server.api_url) if server.running else None
    except Exception:  # noqa: BLE001 - no ephemeral server here either: leave it to Prefect
        return None


def awaited_workers(task_runner: Runner, dask_gateway_cluster: str | None,
                    dask_workers: int) -> tuple[int, float]:  # fmt: skip
    """How many Dask workers the flow waits for before it checks them, and for how many
    seconds: a new gateway cluster was scaled to `dask_workers` (they may be pods still
    starting: 300 s, then on with those that joined); a cluster found running, by address or
    by name, is its owner's, not scaled by the flow: one worker within 30 s."""
    if task_runner == "dask-gateway" and dask_gateway_cluster is None and dask_workers > 1:
        return dask_workers, 300.0
    return 1, 30.0


def _task_runner(runner: Runner, workers: int, dask_address: str | None, dask_workers: int,
                 security: Any = None, awaited: tuple[int, float] = (1, 30.0)) -> Any:  # fmt: skip
    if runner == "threads":
        # Threads suffice: each conversion runs in a worker process of its own.
        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    # Workers keep Dask's defaults (daemonic): byod.runner starts its bounded workers with
    # subprocess there, which daemonic processes may do.
    if dask_address:  # an existing cluster: a scheduler address, or a dask-gateway cluster's
        check_cluster(dask_address, awaited[1], security=security, workers=awaited[0])
        # The address and TLS credentials, not the cluster object: Prefect runs the flow
        # with a copy of its task runner (`duplicate`), which keeps only these.
        client: dict[str, Any] = {"security": security} if security is not None else {}
        return DaskTaskRunner(address=dask_address, client_kwargs=client)
    # The scheduler's HTTP server (dashboard off, /metrics still served) on a free loopback
    # port: with None it takes 8787 on every interface, which a hub's own Dask dashboard or
    # another run may hold.
    return DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1,
                                          "processes": True, "host": "127.0.0.1",
                                          "dashboard_address": "127.0.0.1:0"},
                          client_kwargs={"set_as_default": False})  # fmt: skip


def check_runner_options(
    task_runner: Runner,
    dask_address: str | None,
    dask_gateway_cluster: str | None,
    dask_gateway_options: dict[str, Any] | None,
    dask_workers: int = 2,
) -> None:
    """Refuse flow parameters that contradict each other (each names the cluster to use
    another way), an empty address or cluster name (a form field emptied in the UI: unset
    it instead) and fewer than one Dask worker (the tasks would wait forever). Raises
    ConfigurationError naming them."""
    for name, value in (("dask_address", dask_address),
                        ("dask_gateway_cluster", dask_gateway_cluster)):  # fmt: skip
        if value is not None and not value.strip():
            raise ConfigurationError(f"{name} is empty: give one, or leave it unset")
    if task_runner != "threads" and dask_workers < 1:
        raise ConfigurationError(f"dask_workers={dask_workers}: at least 1 Dask worker")
    gateway = [f"{n}={v!r}" for n, v in (("dask_gateway_cluster", dask_gateway_cluster),
                                          ("dask_gateway_options", dask_gateway_options))
               if v is not None]  # fmt: skip
    if dask_address is not None and task_runner != "dask":
        raise ConfigurationError(
            f"dask_address={dask_address!r} is for task_runner='dask' (not {task_runner!r})"
        )
    if gateway and task_runner != "dask-gateway":
        raise ConfigurationError(
            f"{', '.join(gateway)}: for task_runner='dask-gateway' (not {task_runner!r})"
        )
    if len(gateway) > 1:
        raise ConfigurationError(
            f"{' and '.join(gateway)}: give either the name of a running cluster or the "
            "options of a new one"
        )


@flow(name="byod-ingest", log_prints=True)
def ingest(
    settings: IngestSettings,
    task_runner: Runner = "threads",
    dask_address: str | None = None,
    dask_workers: int = 2,
    results: str | None = None,
    dask_gateway_cluster: str | None = None,
    dask_gateway_options: dict[str, Any] | None = None,
) -> dict[str, Any] | State[dict[str, Any]]:
    """Ingest `settings.source` (a folder or az://container/prefix) into COGs and the catalog.

    `settings` holds `byod ingest`'s options; those given override the dataset's byod.yaml.
    `task_runner="dask"` runs one task per input on a local Dask cluster of `dask_workers`,
    or on the cluster at `dask_address` (checked first: the same byod build on every worker).
    `task_runner="dask-gateway"` runs them on a hub's dask-gateway cluster (the gateway as
    dask's configuration names it): the running one called `dask_gateway_cluster`, or a new
    one made with `dask_gateway_options` (the gateway's cluster options; none: its defaults),
    scaled to `dask_workers` and shut down at the end (`gateway_cluster`).
    `results`: the folder or az://container/prefix task results and cache records are kept
    in; by default a folder beside a local catalog, else `_prefect-results` under the az://
    target, in a block of prefect-azure saved without secrets (`byod_flows.azure_results`).

    Returns the report (a dict, as `byod ingest --json` writes). Ends Completed when every
    input was ingested, unchanged or rejected for a reason (see the `byod-ingest-report`
    artifact; rejected inputs are Completed tasks named Rejected); Failed when byod could not
    work at all: bad configuration (not retried: contradicting parameters, no gateway
    configured, a cluster that cannot run byod), storage unreachable, region refused, or
    every input crashed (then with the report as the state's data).
    """
    check_runner_options(task_runner, dask_address, dask_gateway_cluster, dask_gateway_options,
                         dask_workers)  # fmt: skip
    with contextlib.ExitStack() as stack:
        security = None
        if task_runner == "dask-gateway":
            dask_address, security = stack.enter_context(
                gateway_cluster(dask_gateway_cluster, dask_gateway_options, dask_workers)
            )
        awaited = awaited_workers(task_runner, dask_gateway_cluster, dask_workers)
        runner = _task_runner(task_runner, settings.workers, dask_address, dask_workers,
                              security, awaited)  # fmt: skip
        url = _api_url() if task_runner != "threads" else None
        with temporary_settings({PREFECT_API_URL: url} if url else {}):
            state: State[dict[str, Any]] = _ingest_run.with_options(task_runner=runner)(
                settings, results, return_state=True
            )  # type: ignore[assignment]  # Prefect's overloads offer an Awaitable too
    report: dict[str, Any] = state.result(raise_on_failure=False)  # type: ignore[assignment]
    if state.is_failed():  # its message and, when byod got as far, the report as its data
        return Failed(message=state.message, data=report)
    return report


@flow(name="byod-sweep", log_prints=True)
def sweep(settings: IngestSettings) -> dict[str, Any] | State[dict[str, Any]]:
    """Ingest what was uploaded to `settings.source` since the last run, on a schedule.

    Fingerprints from the blob listing (MD5 or ETag) tell new and changed uploads from the
    ones already in the catalog without downloading them, so a sweep of a container where
    nothing changed costs one listing and a HEAD per known input."""
    state: State[dict[str, Any]] = ingest(settings=settings, return_state=True)  # type: ignore[assignment]
    report: dict[str, Any] = state.result(raise_on_failure=False)  # type: ignore[assignment]
    if state.is_failed():
        return Failed(message=state.message, data=report)
    new = [r["input"] for r in report["rows"] if r["status"] in ("ingested", "replaced")]
    print(f"byod sweep: {len(new)} new or changed input(s): {', '.join(new) or 'none'}")
    return report
