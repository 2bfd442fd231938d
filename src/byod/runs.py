"""The records of an ingest run, shared by its steps (planning, storing, publishing) and
by the edges that run them (the CLI, the Prefect flows): what a run needs, what it has to
do, and what each input gave. Plain data: a `RunContext` and a `WorkItem` travel to
threads, tasks and Dask workers (pickled; `RunStores` drops its clients on the way)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from byod.config import IngestSettings
from byod.errors import RunFailed
from byod.report import Report, Row
from byod.stores import RunStores

if TYPE_CHECKING:  # types only: `import byod.pipeline` loads no GDAL, pystac or rasterio
    from byod.catalog import Entry
    from byod.sources import Candidate


class Progress:
    """Callbacks for the edges to render; every method is optional to override."""

    def discovered(self, total: int) -> None:
        """Planning discovered `total` inputs (candidates and refused files, before the
        unchanged ones are settled)."""

    def stage(self, input: str, stage: str) -> None:
        """The input (its relative path) entered `stage`: "queued", or a worker stage
        ("inspect", "convert" or "convert <band>", "footprint", ...; report.STAGE_NAMES)."""

    def finished(self, row: Row) -> None:
        """The input is done: its report row."""


@dataclass(frozen=True)
class RunContext:
    """What every step of a run needs; small, so it travels to tasks and Dask workers."""

    settings: IngestSettings
    collection_id: str
    version: str = ""  # this run's version: the folder its new files go to (catalog.py)
    # Opened once per process (byod.stores); None: opened from `settings` when first used.
    stores: RunStores = field(default=None, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.stores is None:
            object.__setattr__(self, "stores", RunStores(self.settings))


@dataclass
class WorkItem:
    """One input (a file or a multi-file scene) to convert, describe and store."""

    candidate: Candidate
    item_id: str
    fingerprint: str
    previous_ids: list[str]
    fingerprint_s: float = 0.0  # seconds its fingerprint took (the report's stage timings)


@dataclass
class Outcome:
    """What working on one input gave: its report row and its new items (as dicts)."""

    row: Row
    items: list[dict[str, Any]] = field(default_factory=list)
    replaced_ids: list[str] = field(default_factory=list)


@dataclass
class Run:
    """A planned run: decided rows (rejected at discovery, unchanged) and the work to do."""

    context: RunContext
    report: Report
    todo: list[WorkItem]
    existing: dict[str, Entry]  # the collection's items when planned (index columns)
    marker: str | None = None  # the run's marker in the catalog, held while it runs
    published: bool = False  # the catalog was switched to this run's items
    # --prune: inputs no longer in the source -> their item ids, removed by the first publish
    pruned: dict[str, list[str]] = field(default_factory=dict)
    flushed: set[str] = field(default_factory=set)  # inputs whose outcome was published
    last_publish: float = field(default_factory=time.monotonic)  # progress kept (ingest)


def finish_row(report: Report, progress: Progress, row: Row) -> None:
    """A decided input: its row in the report, and told to the edge."""
    report.rows.append(row)
    progress.finished(row)


class RunLost(RunFailed):
    """The run's marker was lost before it published (`publishing`): exit 3."""
