"""Prefect flows over the byod library: `byod-ingest` and `byod-sweep`.

Thin by design: every step is a byod function (`plan_run`, `process`, `publish_run`); this file
only decides what runs as a task, with which retries, caching and task runner. Run them with
`prefect deployment run 'byod-ingest/local' --param source=...` after `prefect deploy --all`
(see prefect.yaml and the README), or call them directly as Python functions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.context import TaskRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from byod.config import build_settings, default_workers
from byod.errors import ByodError, StorageUnavailable, storage_failure
from byod.pipeline import (
    Outcome,
    Run,
    RunContext,
    WorkItem,
    outcome_is_stored,
    plan_run,
    process,
    publish_run,
)
from byod.reasons import Reason
from byod.report import Row, Status, to_markdown

Runner = Literal["threads", "dask"]


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


@task(name="plan", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_storage_only)  # fmt: skip
def plan_task(options: dict[str, Any], source: str, config: str | None) -> Run:
    """Discover, fingerprint and settle what is unchanged (a listing and HEADs, no downloads)."""
    return plan_run(build_settings(source, options, config))


def _input_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """An input's cache key: its fingerprint (content + options) and where it goes, so a
    retried or re-run flow never converts the same input twice."""
    run: RunContext = parameters["context"]
    work: WorkItem = parameters["work"]
    s = run.settings
    return "-".join(str(p) for p in (work.fingerprint, work.item_id, run.collection_id, s.target,
                                     s.catalog, s.timeout_s, s.max_memory_mb))  # fmt: skip


class InputRejected(Exception):
    """The input was rejected for a reason: not worth a retry, and never cached."""

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
    cache_key_fn=_input_key,
    cache_expiration=dt.timedelta(days=7),
)
def process_task(context: RunContext, work: WorkItem) -> Outcome:
    """One input, in a bounded worker process. Only a stored input completes (and is cached);
    a storage failure raises to be retried, any other rejection raises once, unretried, and
    becomes a report row in the flow."""
    outcome = process(context, work)
    if outcome.row.reason is Reason.STORAGE_FAILED:
        raise StorageFailed(outcome)
    if outcome.row.reason is not None:
        raise InputRejected(outcome)
    return outcome


@task(name="publish", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_storage_only)  # fmt: skip
def publish_task(run: Run, outcomes: list[Outcome]) -> dict[str, Any]:
    report = publish_run(run, outcomes)
    collection = report.catalog.replace("catalog.json", f"{report.collection}/collection.json")
    create_markdown_artifact(to_markdown(report, collection), key="byod-ingest-report",
                             description=f"byod ingest of {report.source}")  # fmt: skip
    return report.to_dict()


@flow(name="byod-ingest-run")
def _ingest_run(options: dict[str, Any], source: str, config: str | None) -> dict[str, Any]:
    """The ingest itself, as a subflow so that the caller can choose its task runner."""
    run = plan_task(options, source, config)
    futures = [(w, process_task.submit(run.context, w)) for w in run.todo]
    outcomes = []
    for work, future in futures:
        result = future.result(raise_on_failure=False)
        if (
            isinstance(result, Outcome)
            and future.state.name == "Cached"
            and not (outcome_is_stored(run.context, result))
        ):  # the cache remembers files that are gone or replaced since: do it again
            fresh = process_task.with_options(refresh_cache=True).submit(run.context, work)
            result = fresh.result(raise_on_failure=False)
        if isinstance(result, Outcome):
            outcomes.append(result)
        elif isinstance(result, InputRejected):
            outcomes.append(result.outcome)
        elif isinstance(result, StorageUnavailable):  # still down after the retries: an
            raise result  # outage ends the run (Failed); the next run removes what it stored
        else:  # the task itself failed: the input is rejected, and the run goes on
            row = Row(work.candidate.relpath, Status.REJECTED, reason=Reason.CRASHED,
                      message=f"{work.candidate.relpath}: {result}")  # fmt: skip
            outcomes.append(Outcome(row))
    report = publish_task(run, outcomes)
    counts = report["counts"]
    get_run_logger().info("byod: %s; catalog %s", counts, report["catalog"])
    return report


def _task_runner(runner: Runner, dask_address: str | None, dask_workers: int) -> Any:
    if runner == "threads":
        # Threads suffice: each conversion runs in a worker process of its own.
        return ThreadPoolTaskRunner(max_workers=default_workers())
    import dask
    from prefect_dask import DaskTaskRunner

    # byod starts a process per input inside each task: Dask workers must not be daemons.
    dask.config.set({"distributed.worker.daemon": False})
    if dask_address:  # an existing cluster: a Pangeo hub's dask-gateway, a scheduler address
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None},
                          client_kwargs={"set_as_default": False})  # fmt: skip


def _options(**given: Any) -> dict[str, Any]:
    """Flow parameters left at None fall to byod.yaml and byod's defaults."""
    return {k: v for k, v in given.items() if v is not None}


@flow(name="byod-ingest", log_prints=True)
def ingest(
    source: str,
    collection: str | None = None,
    target: str | None = None,
    catalog: str | None = None,
    datetime: str | None = None,
    datetime_pattern: str | None = None,
    require_datetime: bool | None = None,
    cloud_cover: float | None = None,
    cloud_rule: str | None = None,
    cloud_band: int | None = None,
    group_pattern: str | None = None,
    compression: Literal["deflate", "zstd"] | None = None,
    license: str | None = None,
    description: str | None = None,
    title: str | None = None,
    config: str | None = None,
    azure_region: str | None = None,
    timeout_s: float | None = None,
    max_memory_mb: int | None = None,
    task_runner: Runner = "threads",
    dask_address: str | None = None,
    dask_workers: int = 2,
) -> dict[str, Any]:
    """Ingest SOURCE (a folder or az://container/prefix) into COGs and the STAC catalog.

    Parameters mirror `byod ingest`'s options. Ends Completed when every input was ingested,
    unchanged or rejected for a reason (see the `byod-ingest-report` artifact); Failed only
    when byod could not work at all (bad configuration, storage unreachable, region refused).
    """
    options = _options(
        collection=collection, target=target, catalog=catalog, datetime=datetime,
        datetime_pattern=datetime_pattern, require_datetime=require_datetime,
        cloud_cover=cloud_cover, cloud_rule=cloud_rule,
        cloud_band=cloud_band, group_pattern=group_pattern, compression=compression,
        license=license, description=description, title=title, timeout_s=timeout_s,
        max_memory_mb=max_memory_mb,
        azure={"region": azure_region} if azure_region else None,
    )  # fmt: skip
    runner = _task_runner(task_runner, dask_address, dask_workers)
    return _ingest_run.with_options(task_runner=runner)(options, source, config)


@flow(name="byod-sweep", log_prints=True)
def sweep(
    source: str,
    collection: str | None = None,
    target: str | None = None,
    catalog: str | None = None,
    config: str | None = None,
    azure_region: str | None = None,
) -> dict[str, Any]:
    """Ingest what was uploaded to SOURCE since the last run, on an interval schedule.

    Fingerprints from the blob listing (MD5 or ETag) tell new and changed uploads from the
    ones already in the catalog without downloading them, so a sweep of a container where
    nothing changed costs one listing and a HEAD per known input."""
    report = ingest(source=source, collection=collection, target=target, catalog=catalog,
                    config=config, azure_region=azure_region)  # fmt: skip
    new = [r["input"] for r in report["rows"] if r["status"] in ("ingested", "replaced")]
    print(f"byod sweep: {len(new)} new or changed input(s): {', '.join(new) or 'none'}")
    return report
