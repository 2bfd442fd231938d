"""Run markers: a run holds `<collection>/_runs/<v>.json` (a flock or a blob lease) while it
lives, so that no other run removes the files it stored and has not published yet; once its
holder is gone the files it left are a dead run's, removed by the next run (`publishing`)."""

from __future__ import annotations

import logging
import os
import socket

from byod.keys import run_marker_key
from byod.runs import Run, RunContext
from byod.storage import Hold, Store

log = logging.getLogger(__name__)


# Run markers this process holds (see `register_run`), by (catalog root, marker key).
HOLDS: dict[tuple[str, str], Hold] = {}


def register_run(catalog: Store, context: RunContext) -> str:
    """Create and hold this run's marker before it stores anything: while it is held, no
    other run removes this run's files; once its holder is gone (finished, or killed, when
    the OS drops the lock or the Azure lease runs out) the files it left can be removed."""
    key = run_marker_key(context.collection_id, context.version)
    note = {"version": context.version, "source": context.settings.source,
            "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip
    HOLDS[(catalog.root, key)] = catalog.hold(key, note)
    return key


def end_run(run: Run, *, finished: bool) -> None:
    """Release the run's marker (finished) or only stop holding it (failed: the next run
    then removes the files this one stored and never published)."""
    if run.marker is None:
        return
    catalog = run.context.stores.catalog
    hold = HOLDS.pop((catalog.root, run.marker), None)
    try:
        if hold is None:  # planned in another process (an orchestrator's worker)
            if finished:
                catalog.drop_hold(run.marker)
        elif finished:
            hold.release()
        else:
            hold.abandon()
    except Exception as exc:  # noqa: BLE001 - the marker is bookkeeping: the run is done
        log.warning("run marker %s not released: %s", run.marker, exc)
