"""Kills converge: `byod ingest` killed (SIGKILL to its whole process group) at seeded random
points during conversion, upload and publish, locally and on Azurite. After each kill the
catalog as published still agrees with itself and with the bytes it points at (old set or
new set, never a mix); the next run converges to exactly the catalog of an uninterrupted
run (items, assets, checksums, properties) and removes every file the killed run left (COGs,
thumbnails, item and index versions, its run marker). All read back from storage.
"""

from __future__ import annotations

import json
import os
import posixpath
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rasterio.transform import from_origin

from byod.azure import AzureOptions, resolve_access
from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.storage import Store, open_store
from tests.conftest import ramp, write_geotiff
from tests.readback import orphans, published, read_items, referenced_keys

COLLECTION = "kills"
PHASES = ("convert", "upload", "publish")
KILLS = 5  # per storage: phases in turn, each after a seeded random delay past its trigger
BYOD = [str(Path(sys.executable).with_name("byod"))]  # the installed CLI


def _write(folder: Path, name: str, offset: int) -> None:
    write_geotiff(folder / name, ramp(96, 96) + offset, crs="EPSG:32633",
                  transform=from_origin(500000 + 2000 * offset, 5000000, 10, 10))  # fmt: skip


def _first_inputs(folder: Path) -> None:
    for n, name in enumerate(("a_20240101.tif", "b_20240102.tif", "c_20240103.tif")):
        _write(folder, name, n)


def _second_inputs(folder: Path) -> None:
    """What the killed run has to do: replace one item, add two, leave two unchanged."""
    _write(folder, "a_20240101.tif", 7)
    _write(folder, "d_20240104.tif", 3)
    _write(folder, "sub/e_20240105.tif", 4)


@dataclass
class Place:
    """One catalog + target (a folder pair, or a prefix in two containers)."""

    catalog_url: str
    target_url: str
    catalog: Store
    target: Store

    def options(self, source: Path) -> dict[str, Any]:
        return {"source": str(source), "collection": COLLECTION, "catalog": self.catalog_url,
                "target": self.target_url, "workers": 1, "timeout_s": 120}  # fmt: skip


def _keys(place: Place) -> set[str]:
    return {f"c:{i.key}" for i in place.catalog.list_files()} | {
        f"t:{i.key}" for i in place.target.list_files()
    }


def _trigger(phase: str, before: set[str]) -> Callable[[set[str]], bool]:
    """When a phase has begun, judged from storage: the run's marker (planned: workers
    convert next), a new file in the target (uploads), a new item or index version in the
    catalog (publishing)."""

    def fired(now: set[str]) -> bool:
        new = now - before
        if phase == "convert":
            return any("/_runs/" in k for k in new)
        if phase == "upload":
            return any(k.startswith("t:") for k in new)
        return any(k.startswith("c:") and "/_runs/" not in k for k in new)

    return fired


def _kill_during(place: Place, source: Path, phase: str, delay: float) -> str:
    """Start `byod ingest` in a process group of its own and SIGKILL the group `delay`
    seconds after `phase` begins; returns what happened (for the failure message)."""
    before = _keys(place)
    fired = _trigger(phase, before)
    opts = place.options(source)
    command = [*BYOD, "ingest", opts["source"], "--collection", COLLECTION, "--catalog",
               opts["catalog"], "--target", opts["target"], "--workers", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if fired(_keys(place)):
                time.sleep(delay)
                break
            time.sleep(0.002)
        alive = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        alive = False
    proc.wait(timeout=30)
    return f"{phase}+{delay:.3f}s: {'killed' if alive else 'finished before the kill'}"


def _comparable(place: Place) -> dict[str, Any]:
    """The published items as a reader sees them, without what differs between two
    correct runs (the version folders in hrefs, the run version in `byod:version`, the
    source folder in `byod:source_root`: the reference has one of its own, and so the files'
    stat signature `byod:stat`, which names their inodes and times)."""
    out = {}
    for item_id, item in read_items(place.catalog, COLLECTION).items():
        assert posixpath.basename(posixpath.dirname(item["_key"])) == item["properties"].pop(
            "byod:version"
        )  # the version that wrote the item, its folder
        assert item["properties"].pop("byod:source_root").endswith("/src")
        item["properties"].pop("byod:stat", None)  # absent for files written < 2 s before
        assets = {
            name: {**{k: v for k, v in a.items() if k != "href"},
                   "file": posixpath.basename(a["href"])}
            for name, a in item["assets"].items()
        }  # fmt: skip
        out[item_id] = {"properties": item["properties"], "assets": assets,
                        "geometry": item["geometry"], "bbox": item["bbox"]}  # fmt: skip
    return out


def _reference(tmp_path: Path, make_place: Callable[[str], Place]) -> dict[str, Any]:
    """The catalog of the same two runs, uninterrupted."""
    place = make_place("reference")
    source = tmp_path / "reference" / "src"
    _first_inputs(source)
    ingest(IngestSettings(**place.options(source)))  # type: ignore[arg-type]
    _second_inputs(source)
    ingest(IngestSettings(**place.options(source)))  # type: ignore[arg-type]
    return _comparable(place)


def _check_consistent(place: Place, scratch: Path, sets: list[set[str]]) -> None:
    """The catalog agrees with itself and its bytes, and shows one whole set of items."""
    scratch.mkdir(parents=True, exist_ok=True)
    items = published(place.catalog, place.target, COLLECTION, scratch)
    assert set(items) in sets, sorted(items)


def _scenarios(tmp_path: Path, make_place: Callable[[str], Place],
               wait_for_dead: Callable[[Place], None]) -> None:  # fmt: skip
    reference = _reference(tmp_path, make_place)
    first_ids = {"a_20240101", "b_20240102", "c_20240103"}
    second_ids = first_ids | {"d_20240104", "sub-e_20240105"}
    rng = random.Random(20261129)
    killed = []
    for n in range(KILLS):
        phase, delay = PHASES[n % len(PHASES)], rng.uniform(0.0, 0.15)
        place = make_place(f"k{n}")
        source = tmp_path / f"k{n}" / "src"
        _first_inputs(source)
        ingest(IngestSettings(**place.options(source)))  # type: ignore[arg-type]
        _second_inputs(source)
        what = _kill_during(place, source, phase, delay)
        _check_consistent(place, tmp_path / f"k{n}" / "after-kill", [first_ids, second_ids])
        killed.append((place, source, what))
        print(what)  # shown with -s: where each kill landed
    for place, source, what in killed:
        wait_for_dead(place)
        ingest(IngestSettings(**place.options(source)))  # type: ignore[arg-type]
        scratch = tmp_path / "check"
        shutil.rmtree(scratch, ignore_errors=True)
        _check_consistent(place, scratch, [second_ids])
        assert _comparable(place) == reference, what
        assert orphans(place.catalog, place.target, COLLECTION) == [], what


def test_kills_converge_locally(tmp_path: Path) -> None:
    def make_place(name: str) -> Place:
        catalog, target = tmp_path / name / "catalog", tmp_path / name / "data"
        return Place(str(catalog), str(target), open_store(catalog), open_store(target))

    _scenarios(tmp_path, make_place, lambda place: None)  # the OS drops a dead run's lock


def test_kills_converge_on_azurite(azure_env: str, tmp_path: Path) -> None:
    access = resolve_access(AzureOptions())

    def make_place(name: str) -> Place:
        catalog, target = f"az://stac-{azure_env}/{name}", f"az://cogs-{azure_env}/{name}"
        place = Place(catalog, target, open_store(catalog, access), open_store(target, access))
        for store in (place.catalog, place.target):
            store.ensure_container()  # type: ignore[attr-defined]
        return place

    def wait_for_dead(place: Place) -> None:
        """A killed run's lease runs out within LEASE_SECONDS; until then it counts as alive
        and its files are kept, so the next run would rightly leave them."""
        markers = [i.key for i in place.catalog.list_files(f"{COLLECTION}/_runs/")]
        deadline = time.monotonic() + 60
        while any(place.catalog.held(m) for m in markers) and time.monotonic() < deadline:
            time.sleep(0.5)

    _scenarios(tmp_path, make_place, wait_for_dead)


def test_a_live_runs_files_are_never_removed(tmp_path: Path) -> None:
    """A run whose marker is still held is alive: another run finishing meanwhile must not
    remove its unpublished files (they are not orphans yet)."""
    catalog, target = tmp_path / "catalog", tmp_path / "data"
    store = open_store(catalog)
    hold = store.hold(f"{COLLECTION}/_runs/20260101T000000-abcdef.json", {"test": True})
    pending = target / COLLECTION / "x_20240101" / "20260101T000000-abcdef" / "x_20240101.tif"
    pending.parent.mkdir(parents=True)
    pending.write_bytes(b"not yet published")
    source = tmp_path / "src"
    _first_inputs(source)
    ingest(IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    assert pending.exists()
    hold.abandon()  # the run dies: the next run removes what it left
    ingest(IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    assert not pending.exists()
    assert json.loads((catalog / COLLECTION / "collection.json").read_text())["id"] == COLLECTION


def test_a_cached_outcome_of_a_dead_run_is_not_reused(tmp_path: Path) -> None:
    """An orchestrator's cache may hold an outcome whose COG a killed run stored and never
    published: those files are the next run's to remove, so the outcome must be redone,
    while the same outcome of a live run is still good."""
    from byod.pipeline import Outcome, RunContext, outcome_is_stored
    from byod.report import Row, Status
    from tests.readback import sha256_multihash

    catalog, target = tmp_path / "catalog", tmp_path / "data"
    source = tmp_path / "src"
    source.mkdir()
    version = "20260101T000000-abcdef"
    cog = target / COLLECTION / "x_20240101" / version / "x_20240101.tif"
    cog.parent.mkdir(parents=True)
    cog.write_bytes(b"a COG stored by a run that may die")
    data = {"id": "x_20240101", "assets": {"data": {
        "href": str(cog), "roles": ["data"], "file:checksum": sha256_multihash(cog.read_bytes()),
    }}}  # fmt: skip
    outcome = Outcome(Row("x_20240101.tif", Status.INGESTED), [data])
    settings = IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                              target=str(target))  # fmt: skip
    context = RunContext(settings, COLLECTION, "20260102T000000-012345")
    hold = open_store(catalog).hold(f"{COLLECTION}/_runs/{version}.json", {})
    assert outcome_is_stored(context, outcome)  # its run is alive
    hold.abandon()  # killed
    assert not outcome_is_stored(context, outcome)


def test_a_run_that_lost_its_marker_does_not_publish_removed_files(tmp_path: Path) -> None:
    """Other runs take a run whose marker is gone (an Azure lease not renewed in time) for
    dead and may remove its files: it must not then publish items pointing at them (and
    publishes when its files are all still there)."""
    from byod.pipeline import RunLost, plan_run, process_all, publish_run

    source = tmp_path / "src"
    _first_inputs(source)
    place = Place(str(tmp_path / "catalog"), str(tmp_path / "data"),
                  open_store(tmp_path / "catalog"), open_store(tmp_path / "data"))  # fmt: skip
    settings = IngestSettings(**place.options(source))  # type: ignore[arg-type]
    for remove_a_cog in (True, False):
        run = plan_run(settings)
        outcomes = list(process_all(run))
        assert run.marker is not None
        place.catalog.drop_hold(run.marker)  # what another run does to a dead run's marker
        if remove_a_cog:
            cog = outcomes[0].items[0]["assets"]["data"]["href"]
            Path(cog).unlink()  # ... and to its files
            with pytest.raises(RunLost):
                publish_run(run, outcomes)
            assert not (tmp_path / "catalog" / COLLECTION / "collection.json").exists()
        else:
            publish_run(run, outcomes)
            assert len(published(place.catalog, place.target, COLLECTION, tmp_path)) == 3


# --- signals: Ctrl-C and SIGTERM stop the run cleanly ------------------------------------


def _many_inputs(folder: Path, count: int) -> list[str]:
    names = [f"s{n}_202401{n + 1:02d}.tif" for n in range(count)]
    for n, name in enumerate(names):
        write_geotiff(folder / name, ramp(512, 512) + n, crs="EPSG:32633",
                      transform=from_origin(500000 + 6000 * n, 5000000, 10, 10))  # fmt: skip
    return names


@pytest.mark.parametrize(("signum", "group", "code"), [
    (signal.SIGINT, True, 130),  # Ctrl-C: the terminal signals the whole process group
    (signal.SIGTERM, False, 143),  # `kill PID`, `docker stop`: the main process only
])  # fmt: skip
def test_a_signal_mid_run_publishes_what_was_stored_and_reports_the_rest(
    tmp_path: Path, signum: signal.Signals, group: bool, code: int
) -> None:
    source, catalog, target = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    names = _many_inputs(source, 8)
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [*BYOD, "ingest", str(source), "--collection", COLLECTION, "--catalog", str(catalog),
         "--target", str(target), "--workers", "1", "--report", str(report), "-q"],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    # Two COGs stored: the first input is done, the run is storing or converting the next.
    while sum(p.suffix == ".tif" for p in target.rglob("*")) < 2 and proc.poll() is None \
            and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be signalled"
    if group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {signal.Signals(signum).name}"), stderr
    # No worker outlives the run: its process group empties (bounded wait, no timing claim).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("processes of the stopped run are still alive")
    rows = {r["input"]: r for r in json.loads(report.read_text("utf-8"))["rows"]}
    assert set(rows) == set(names)
    done = {i for i, r in rows.items() if r["status"] == "ingested"}
    assert {r["status"] for r in rows.values()} <= {"ingested", "not_done"}
    assert rows.keys() - done, "every input was done before the signal"
    # What was stored is published, whole, and nothing else was left behind.
    store, data = open_store(catalog), open_store(target)
    items = published(store, data, COLLECTION, tmp_path)
    assert {i["properties"]["byod:source"] for i in items.values()} == done
    assert orphans(store, data, COLLECTION) == []
    # The next run does the rest.
    ingest(IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    items = published(store, data, COLLECTION, tmp_path)
    assert {i["properties"]["byod:source"] for i in items.values()} == set(names)
    assert orphans(store, data, COLLECTION) == []


# --- superseded files: kept for readers, removed by a later run, also after a kill --------

_KILL_AFTER_SWITCH = """
import os, signal, sys
import byod.catalog, byod.publishing
original = byod.catalog.publish
def publish(store, info, new, removed, version, on_switch=lambda: None):
    def die():
        on_switch()
        os.kill(os.getpid(), signal.SIGKILL)  # right after collection.json was switched
    return original(store, info, new, removed, version, die)
byod.publishing.publish = publish
from byod.cli import app
sys.argv = ["byod", "ingest", *sys.argv[1:]]
app()
"""


def _run_killed_after_switch(source: Path, collection: str, catalog: Path, target: Path) -> int:
    return subprocess.run(
        [sys.executable, "-c", _KILL_AFTER_SWITCH, str(source), "--collection", collection,
         "--catalog", str(catalog), "--target", str(target), "--workers", "1", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
    ).returncode  # fmt: skip


def _all_keys(*stores: Store) -> set[str]:
    return {s.href(i.key) for s in stores for i in s.list_files()
            if not i.key.rsplit("/", 1)[-1].endswith(".lock")}  # fmt: skip


def test_a_kill_right_after_the_switch_leaves_no_orphans(tmp_path: Path) -> None:
    source, catalog, target = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    _first_inputs(source)
    settings = IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                              target=str(target), workers=1)  # fmt: skip
    ingest(settings)
    store, data = open_store(catalog), open_store(target)
    before = _all_keys(store, data)
    _write(source, "a_20240101.tif", 7)  # replaced by the killed run
    assert _run_killed_after_switch(source, COLLECTION, catalog, target) == -signal.SIGKILL
    items = published(store, data, COLLECTION, tmp_path)  # switched: the new set, whole
    assert "a_20240101" in items
    assert before - _all_keys(store, data) == set()  # superseded files kept, by the kill
    assert orphans(store, data, COLLECTION) != []  # ... so they are orphans, for now
    ingest(settings)  # any later run (grace 0 here) removes them
    assert orphans(store, data, COLLECTION) == []
    assert set(published(store, data, COLLECTION, tmp_path)) == set(items)


def test_superseded_files_stay_readable_for_the_grace_period(tmp_path: Path) -> None:
    """A reader that read collection.json just before a replacing run switched it still
    finds every file it names until the grace period is over; then a later run (any run into
    the collection) removes them, and search retries on a vanished index."""
    from byod.index import Query
    from byod.searching import search_store

    source, catalog, target = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    _first_inputs(source)
    options = {"source": str(source), "collection": COLLECTION, "catalog": str(catalog),
               "target": str(target), "workers": 1}  # fmt: skip
    ingest(IngestSettings(**options, superseded_grace_s=600))  # type: ignore[arg-type]
    store, data = open_store(catalog), open_store(target)
    old_text = store.read_text(f"{COLLECTION}/collection.json")
    old_refs = referenced_keys(store, data, COLLECTION)
    _write(source, "a_20240101.tif", 7)
    ingest(IngestSettings(**options, superseded_grace_s=600))  # type: ignore[arg-type]
    assert store.read_text(f"{COLLECTION}/collection.json") != old_text
    missing = [key for root, key in old_refs
               if not {store.root: store, data.root: data}[root].exists(key)]  # fmt: skip
    assert missing == [], "a reader of the previous collection.json finds its files"
    assert orphans(store, data, COLLECTION) != []

    class StaleReader(Store):
        """Reads collection.json as it was once (a reader that read it before the switch),
        then as it is."""

        stale = True

        def read_text(self, key: str) -> str:
            if key == f"{COLLECTION}/collection.json" and self.stale:
                self.stale = False
                return old_text
            return super().read_text(key)

    ingest(IngestSettings(**options, superseded_grace_s=0))  # type: ignore[arg-type]
    assert orphans(store, data, COLLECTION) == []
    found = search_store(StaleReader(catalog), Query.parse(None, None, None, None))
    assert sorted(i["id"] for i in found) == sorted(read_items(store, COLLECTION))
    checksums = {i["id"]: i["assets"]["data"]["file:checksum"] for i in found}
    assert checksums == {k: v["assets"]["data"]["file:checksum"]
                         for k, v in read_items(store, COLLECTION).items()}  # fmt: skip


def test_a_collection_hidden_by_a_kill_before_the_root_update_is_linked_again(
    tmp_path: Path,
) -> None:
    """Killed between its collection's switch and the root update: the root misses the new
    collection. `byod validate` says so, and the next run into any collection links it."""
    from byod.validate import validate_catalog

    catalog, target = tmp_path / "catalog", tmp_path / "data"
    first, second = tmp_path / "one", tmp_path / "two"
    _first_inputs(first)
    _write(second, "z_20240109.tif", 9)
    ingest(IngestSettings(source=str(first), collection="one", catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    # The kill comes before the root update of a new collection: no link to "hidden".
    assert _run_killed_after_switch(second, "hidden", catalog, target) == -signal.SIGKILL
    root = json.loads((catalog / "catalog.json").read_text())
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert children == {"./one/collection.json"}
    _, problems = validate_catalog(str(catalog))
    assert [(p.kind, Path(p.href).parent.name) for p in problems] == [("collection", "hidden")]
    ingest(IngestSettings(source=str(first), collection="one", catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    root = json.loads((catalog / "catalog.json").read_text())
    children = {link["href"] for link in root["links"] if link["rel"] == "child"}
    assert children == {"./one/collection.json", "./hidden/collection.json"}
    assert validate_catalog(str(catalog))[1] == []


def test_what_a_run_killed_in_its_bookkeeping_leaves_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A marker's temp file (killed inside `hold`, before the rename) and the index's temp
    folders are named so the next run knows them for a dead process's and removes them."""
    import re
    import tempfile

    from byod.index import write_index

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    source, catalog, target = tmp_path / "src", tmp_path / "catalog", tmp_path / "data"
    _first_inputs(source)
    stray = catalog / COLLECTION / "_runs" / ".20260101T000000-abcdef.json.0badc0de.partial"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")  # nobody holds its lock: its creator is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    left = temp / f"byod-{dead}-x1y2z3"
    left.mkdir()
    used: list[str] = []

    class Spy(Store):
        def put_file(self, local: Path, key: str, metadata: dict[str, str] | None = None) -> str:
            used.append(local.parent.name)
            return super().put_file(local, key, metadata)

    write_index(Spy(tmp_path / "elsewhere"), "i.parquet", [])
    assert re.fullmatch(rf"byod-{os.getpid()}-\w+", used[0]), used
    ingest(IngestSettings(source=str(source), collection=COLLECTION, catalog=str(catalog),
                          target=str(target), workers=1))  # fmt: skip
    assert not stray.exists() and not left.exists()
    assert list(temp.glob("byod-*")) == []  # (pymp-*: multiprocessing's, removed at exit)
