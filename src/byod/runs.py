"""The records of an ingest run, shared by its steps (planning, storing, publishing) and
by the edges that run them (the CLI, the Prefect flows): what a run needs, what it has to
do, and what each input gave. Plain data: a `RunContext` and a `WorkItem` travel to
threads, tasks and Dask workers (pickled; `RunStores` drops its clients on the way)."""

from __future__ import annotations

import time
from concurrent.futures import Future
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


# A fingerprint, the seconds it took and the stat signature (WorkItem).
Hashed = tuple[str, float, str | None]


class WorkItem:
    """One input (a file or a multi-file scene) to convert, describe and store.

    `fingerprint` (sources.fingerprint), `fingerprint_s` (the seconds it took, the report's
    `fingerprint` stage) and `stat` (sources.stat_signature, None when the stat may not be
    trusted) may be given as a `Future` of the three: a new input's hash is computed in a
    thread of the parent while the workers convert (planning), and reading any of them
    waits for it. Pickling (Prefect, Dask) waits for it too, so a copy always carries the
    values."""

    def __init__(self, candidate: Candidate, item_id: str,
                 fingerprint: str | Future[Hashed], previous_ids: list[str],
                 fingerprint_s: float = 0.0, stat: str | None = None) -> None:  # fmt: skip
        self.candidate = candidate
        self.item_id = item_id
        self.previous_ids = previous_ids
        self._fingerprint = fingerprint
        self._fingerprint_s = fingerprint_s
        self._stat = stat

    @property
    def fingerprint(self) -> str:
        """sha256 hex digest of the input and the output-shaping options (waits for it)."""
        return self._resolved()[0]

    @property
    def fingerprint_s(self) -> float:
        """Seconds the fingerprint took (waits for it)."""
        return self._resolved()[1]

    @property
    def stat(self) -> str | None:
        """The signature of the input's files' stat the item records (`byod:stat`; waits
        for it); None when it may not be trusted (a file changed too recently)."""
        return self._resolved()[2]

    @property
    def fingerprint_pending(self) -> bool:
        """Whether the fingerprint is still being computed (reading it would wait)."""
        pending = self._fingerprint
        return isinstance(pending, Future) and not pending.done()

    def _resolved(self) -> Hashed:
        pending = self._fingerprint
        if isinstance(pending, Future):
            # Two threads may both wait here: they get the same value.
            self._fingerprint, self._fingerprint_s, self._stat = pending.result()
        return str(self._fingerprint), self._fingerprint_s, self._stat

    def __getstate__(self) -> dict[str, Any]:
        self._resolved()
        return dict(self.__dict__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkItem):
            return NotImplemented
        return (self.candidate, self.item_id, self.fingerprint, self.previous_ids,
                self.fingerprint_s, self.stat) == (other.candidate, other.item_id,
                                                   other.fingerprint, other.previous_ids,
                                                   other.fingerprint_s, other.stat)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces

    def __repr__(self) -> str:
        shown = "<pending>" if self.fingerprint_pending else repr(self.fingerprint)
        return (f"WorkItem(candidate={self.candidate!r}, item_id={self.item_id!r}, "
                f"fingerprint={shown}, previous_ids={self.previous_ids!r})")  # fmt: skip


@dataclass
class Outcome:
    """What working on one input gave: its report row and its new items (as dicts)."""

    row: Row
    items: list[dict[str, Any]] = field(default_factory=list)
    replaced_ids: list[str] = field(default_factory=list)
    # The report's notes this input brings when it is stored (`Candidate.notes`).
    notes: list[str] = field(default_factory=list)


@dataclass
class Run:
    """A planned run: decided rows (rejected at discovery, unchanged) and the work to do."""

    context: RunContext
    report: Report
    todo: list[WorkItem]
    # The collection's items when planned (index columns): those of the inputs found, or all
    # with --prune (planning.PlannedEntries: true when the collection has any item at all).
    existing: dict[str, Entry]
    marker: str | None = None  # the run's marker in the catalog, held while it runs
    published: bool = False  # the catalog was switched to this run's items
    # --prune: inputs no longer in the source -> their item ids, removed by the first publish
    pruned: dict[str, list[str]] = field(default_factory=dict)
    flushed: set[str] = field(default_factory=set)  # inputs whose outcome was published
    # The collection's own fields given (title, license, ...) differ from the published ones:
    # published even when no item changes (`catalog.changed_fields`).
    fields_changed: bool = False
    last_publish: float = field(default_factory=time.monotonic)  # progress kept (ingest)


def finish_row(report: Report, progress: Progress, row: Row) -> None:
    """A decided input: its row in the report, and told to the edge."""
    report.rows.append(row)
    progress.finished(row)


class RunLost(RunFailed):
    """The run's marker was lost before it published (`publishing`): exit 3."""
