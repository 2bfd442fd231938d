"""Concurrent runs lose nothing: 2 and 3 ingests at once (separate processes) into the same
catalog and collection, 10 trials each, on a local folder and on Azurite. Every check reads
the storage back (the collection, its index, its items, the bytes at their hrefs), never the
runs' reports.

Before this, every overlap lost the items of all runs but the last to publish: each run
merged its items into the collection it had read when it was planned."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from byod.azure import AzureOptions, resolve_access
from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.sources import disambiguated_id, item_id_for
from byod.storage import Store, open_store
from byod.validate import validate_catalog
from tests.conftest import ramp, write_geotiff
from tests.readback import orphans, published, read_items

TRIALS = 10
COLLECTION = "shared"


def _run(options: dict[str, Any]) -> list[str]:
    """One ingest, in a process of the pool (so runs are as separate as two CLIs)."""
    report = ingest(IngestSettings(**options))
    return [f"{r.input}:{r.status.value}:{r.reason}" for r in report.rows]


def _started(_: int) -> int:
    return os.getpid()


@pytest.fixture
def pool() -> Iterator[ProcessPoolExecutor]:
    """Three long-lived processes (imports paid once); spawned, so they inherit the
    environment of the test (Azurite's connection string) and nothing else."""
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as executor:
        list(executor.map(_started, range(3)))  # all three up before the first trial
        yield executor


def _sources(folder: Path, runs: int) -> dict[int, list[str]]:
    """Per run, its own folder with a tiny raster (conversion dominates a run's time, and
    one item per run suffices for runs to overlap); returns the item ids they must get
    (lower-case slugs of the file names, as the README defines them)."""
    ids: dict[int, list[str]] = {}
    for run in range(runs):
        ids[run] = []
        for n in range(1):
            name = f"run{run}_tile{n}_2024010{n + 1}"
            write_geotiff(folder / f"src{run}" / f"{name}.tif", ramp(32, 32) + run * 7 + n,
                          crs="EPSG:32633", transform=_origin(run, n))  # fmt: skip
            ids[run].append(name)
    return ids


def _origin(run: int, n: int) -> Any:
    from rasterio.transform import from_origin

    return from_origin(500000 + 1000 * run, 5000000 - 1000 * n, 10, 10)


def _trial(pool: ProcessPoolExecutor, folder: Path, runs: int, catalog: str, target: str,
           catalog_store: Store, target_store: Store) -> None:  # fmt: skip
    ids = _sources(folder, runs)
    options = [
        {"source": str(folder / f"src{run}"), "collection": COLLECTION, "catalog": catalog,
         "target": target, "workers": 1, "timeout_s": 120}
        for run in range(runs)
    ]  # fmt: skip
    results = list(pool.map(_run, options))
    assert all(":ingested:" in row for rows in results for row in rows), results
    expected = sorted(i for run_ids in ids.values() for i in run_ids)
    assert sorted(read_items(catalog_store, COLLECTION)) == expected  # no run's items lost
    assert sorted(published(catalog_store, target_store, COLLECTION, folder)) == expected
    assert orphans(catalog_store, target_store, COLLECTION) == []


@pytest.mark.parametrize("runs", [2, 3])
def test_concurrent_local_runs_lose_nothing(
    pool: ProcessPoolExecutor, tmp_path: Path, runs: int
) -> None:
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        catalog, target = folder / "catalog", folder / "data"
        _trial(pool, folder, runs, str(catalog), str(target), open_store(catalog),
               open_store(target))  # fmt: skip
    assert validate_catalog(str(tmp_path / f"trial{TRIALS - 1}" / "catalog"))[1] == []


@pytest.mark.parametrize("runs", [2, 3])
def test_concurrent_blob_runs_lose_nothing(
    azure_env: str, pool: ProcessPoolExecutor, tmp_path: Path, runs: int
) -> None:
    access = resolve_access(AzureOptions())
    for trial in range(TRIALS):
        catalog = f"az://stac-{azure_env}/t{trial}"
        target = f"az://cogs-{azure_env}/t{trial}"
        catalog_store, target_store = open_store(catalog, access), open_store(target, access)
        for store in (catalog_store, target_store):
            store.ensure_container()  # type: ignore[attr-defined]
        _trial(pool, tmp_path / f"trial{trial}", runs, catalog, target, catalog_store,
               target_store)  # fmt: skip
    assert validate_catalog(f"az://stac-{azure_env}/t{TRIALS - 1}")[1] == []


def test_runs_whose_inputs_share_a_slug_keep_both_items(
    pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    """`a b_….tif` and `a-b_….tif` in two folders both slug to `a-b_…`: run one after the
    other, the second gets the hashed id; run at once, neither may replace the other's
    item (different sources), so the later publisher takes the hashed id at the switch."""
    names = ("a b_20240101.tif", "a-b_20240101.tif")
    for trial in range(5):
        folder = tmp_path / f"trial{trial}"
        for run, name in enumerate(names):
            write_geotiff(folder / f"src{run}" / name, ramp(32, 32) + run, crs="EPSG:32633",
                          transform=_origin(run, 0))  # fmt: skip
        catalog, target = folder / "catalog", folder / "data"
        options = [{"source": str(folder / f"src{run}"), "collection": COLLECTION,
                    "catalog": str(catalog), "target": str(target), "workers": 1}
                   for run in range(2)]  # fmt: skip
        list(pool.map(_run, options))
        stores = open_store(catalog), open_store(target)
        items = published(*stores, COLLECTION, folder)
        assert sorted(i["properties"]["byod:source"] for i in items.values()) == sorted(names)
        slug = item_id_for(names[0])
        assert slug == item_id_for(names[1]) and slug in items
        (other,) = set(items) - {slug}
        assert other == disambiguated_id(items[other]["properties"]["byod:source"])
        assert orphans(*stores, COLLECTION) == []
        again = list(pool.map(_run, options))  # each input keeps the id it was published with
        assert all(":unchanged:" in row for rows in again for row in rows), again


def test_a_cli_run_and_a_flow_run_at_once_lose_nothing(tmp_path: Path) -> None:
    """`byod ingest` (its own process) and the Prefect flow (this process) at once, 3 trials:
    the flow publishes through the same `publish_run`, so it merges like any run."""
    import subprocess
    import sys

    from prefect.testing.utilities import prefect_test_harness

    from flows.ingest import ingest as ingest_flow

    cli = str(Path(sys.executable).with_name("byod"))
    with prefect_test_harness(server_startup_timeout=60):
        for trial in range(3):
            folder = tmp_path / f"trial{trial}"
            ids = _sources(folder, 2)
            catalog, target = folder / "catalog", folder / "data"
            command = [cli, "ingest", str(folder / "src0"), "--collection", COLLECTION,
                       "--catalog", str(catalog), "--target", str(target), "--workers", "1",
                       "-q"]  # fmt: skip
            with subprocess.Popen(command) as proc:
                ingest_flow(IngestSettings(source=str(folder / "src1"), collection=COLLECTION,
                                           catalog=str(catalog), target=str(target)))  # fmt: skip
                assert proc.wait(timeout=120) == 0
            expected = sorted(i for run_ids in ids.values() for i in run_ids)
            stores = open_store(catalog), open_store(target)
            assert sorted(read_items(stores[0], COLLECTION)) == expected
            assert sorted(published(*stores, COLLECTION, folder)) == expected
            assert orphans(*stores, COLLECTION) == []


def test_the_later_of_two_runs_adding_the_same_input_says_replaced(tmp_path: Path) -> None:
    """Two runs planned at once both find `x.tif` new; the one that publishes second replaced
    the item of the first (same `byod:source` of the same source), and its row says so."""
    from byod.pipeline import plan_run, process_all, publish_run
    from byod.report import Status

    catalog, target = tmp_path / "catalog", tmp_path / "data"
    runs, outcomes = [], []
    for n in range(2):  # the input changes between the runs: their COGs differ
        write_geotiff(tmp_path / "src" / "x_20240101.tif", ramp(32, 32) + n,
                      crs="EPSG:32633", transform=_origin(0, 0))  # fmt: skip
        settings = IngestSettings(source=str(tmp_path / "src"), collection=COLLECTION,
                                  catalog=str(catalog), target=str(target), workers=1)  # fmt: skip
        runs.append(plan_run(settings))
        outcomes.append(list(process_all(runs[-1])))
    reports = [publish_run(run, done) for run, done in zip(runs, outcomes, strict=True)]
    assert [[r.status for r in report.rows] for report in reports] == [
        [Status.INGESTED], [Status.REPLACED]]  # fmt: skip
    items = published(open_store(catalog), open_store(target), COLLECTION, tmp_path)
    (item,) = items.values()
    second = outcomes[1][0].items[0]["assets"]["data"]["file:checksum"]
    assert item["assets"]["data"]["file:checksum"] == second
    assert orphans(open_store(catalog), open_store(target), COLLECTION) == []


def test_two_runs_of_other_sources_adding_the_same_path_keep_both(tmp_path: Path) -> None:
    """Two runs of two sources planned at once both give `x.tif` the id `x_20240101`; the
    one that publishes second is another source's input (`byod:source_root`): it gets an id
    of its own, and neither item is lost."""
    from byod.pipeline import plan_run, process_all, publish_run
    from byod.report import Status

    catalog, target = tmp_path / "catalog", tmp_path / "data"
    runs = []
    for n in range(2):
        write_geotiff(tmp_path / f"src{n}" / "x_20240101.tif", ramp(32, 32) + n,
                      crs="EPSG:32633", transform=_origin(0, 0))  # fmt: skip
        settings = IngestSettings(source=str(tmp_path / f"src{n}"), collection=COLLECTION,
                                  catalog=str(catalog), target=str(target), workers=1)  # fmt: skip
        runs.append(plan_run(settings))
    outcomes = [list(process_all(run)) for run in runs]
    reports = [publish_run(run, done) for run, done in zip(runs, outcomes, strict=True)]
    assert [[r.status for r in report.rows] for report in reports] == [
        [Status.INGESTED], [Status.INGESTED]]  # fmt: skip
    ids = [report.rows[0].item_ids[0] for report in reports]
    assert ids[0] == "x_20240101" and ids[1] != ids[0]
    items = published(open_store(catalog), open_store(target), COLLECTION, tmp_path)
    assert sorted(items) == sorted(ids)
    roots = {i: item["properties"]["byod:source_root"] for i, item in items.items()}
    assert roots == {ids[n]: str((tmp_path / f"src{n}").resolve()) for n in range(2)}
    assert orphans(open_store(catalog), open_store(target), COLLECTION) == []


def _as_user(uid: int, gid: int, action: Any) -> int:
    """Run `action()` in a forked child as `uid`:`gid` with umask 002 (a member of a group
    sharing a catalog); its exit code (0: done)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o002)
            action()
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit code and stderr
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_two_members_of_a_group_both_publish_to_a_shared_catalog(tmp_path: Path) -> None:
    """A catalog folder writable by a group (setgid, mode 2775): each member updates the
    shared files (lock files the other created included), holds and releases run markers, and
    sees the other's marker held or not. Two accounts (nobody and daemon) in one group."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two other accounts")
    import pwd
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="byod-shared-test-"))  # outside root's 0700 tmp_path
    try:
        gid = 100  # `users`
        os.chown(shared, 0, gid)
        shared.chmod(0o2775)
        key = f"{COLLECTION}/collection.json"
        marker = f"{COLLECTION}/_runs/20260101T000000-abcdef.json"

        def first() -> None:
            store = Store(shared)
            store.update_text(key, lambda text: (text or "") + "first\n")
            store.hold(marker, {"run": "first"}).abandon()  # a run that died

        def second() -> None:
            store = Store(shared)
            store.update_text(key, lambda text: (text or "") + "second\n")
            store.update_text("catalog.json", lambda text: "{}\n")
            assert not store.held(marker)  # the other's dead run: not held
            store.drop_hold(marker)
            store.hold(f"{COLLECTION}/_runs/20260101T000001-abcdef.json", {}).release()

        users = [pwd.getpwnam(name).pw_uid for name in ("nobody", "daemon")]
        assert _as_user(users[0], gid, first) == 0
        assert _as_user(users[1], gid, second) == 0
        assert (shared / key).read_text() == "first\nsecond\n"
        assert not (shared / marker).exists()
        owners = {p.name: p.stat().st_uid for p in shared.rglob(".*.lock")}
        # The collection's lock file is the first member's, and the second used it.
        assert owners[".collection.json.lock"] == users[0]
    finally:
        shutil.rmtree(shared, ignore_errors=True)
