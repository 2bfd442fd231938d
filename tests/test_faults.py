"""Storage faults and how a run ends: a fault proxy in front of Azurite injects resets,
stalls, 429/500/503 with and without Retry-After, and outages; a small tmpfs fills up.

Every outcome is checked by reading back Azurite (directly, not through the proxy) or the
folder itself, and by the exit code and stderr of the CLI, never by trusting the report.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from byod.azure import AzureOptions, resolve_access
from byod.cli import exit_code
from byod.config import IngestSettings
from byod.errors import RunFailed, StorageUnavailable, storage_failure
from byod.pipeline import Progress, ingest
from byod.report import Row, Status
from byod.storage import BlobStore, Store
from tests.conftest import ramp, write_geotiff
from tests.faultproxy import Fault, FaultProxy
from tests.readback import orphans, published

RETRYABLE = [
    pytest.param(429, "1", id="429-retry-after"),
    pytest.param(429, None, id="429"),
    pytest.param(503, "1", id="503-retry-after"),
    pytest.param(503, None, id="503"),
    pytest.param(500, None, id="500"),
    pytest.param("reset", None, id="reset"),
]


@pytest.fixture
def proxy(azurite: str) -> Iterator[FaultProxy]:
    endpoint = urlsplit(azurite.split("BlobEndpoint=")[1].split(";")[0])
    assert endpoint.hostname and endpoint.port
    running = FaultProxy((endpoint.hostname, endpoint.port)).start()
    try:
        yield running
    finally:
        running.down()


@pytest.fixture
def via_proxy(azure_env: str, azurite: str, proxy: FaultProxy,
              monkeypatch: pytest.MonkeyPatch) -> str:  # fmt: skip
    """byod talks to Azurite through the proxy; the test reads Azurite directly."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", proxy.connection_string(azurite))
    return azure_env


def _store(container: str, timeout_s: float = 60.0) -> BlobStore:
    access = resolve_access(AzureOptions(request_timeout_s=timeout_s))
    store = BlobStore(f"az://{container}", access)
    store.ensure_container()
    return store


@pytest.mark.parametrize(("fault", "retry_after"), RETRYABLE)
def test_a_failed_request_is_retried_and_then_succeeds(
    via_proxy: str, azurite: str, proxy: FaultProxy, fault: int | str, retry_after: str | None
) -> None:
    store = _store(f"retry-{via_proxy}")
    proxy.faults.append(Fault(fault, count=2, match="PUT", retry_after=retry_after))
    store.write_text("a/b.json", '{"x": 1}')
    # The same PUT failed twice, then went through; Azurite holds exactly what was written.
    puts = [action for method, path, action in proxy.log if method == "PUT" and "b.json" in path]
    assert puts == [str(fault), str(fault), "forward"]
    direct = BlobServiceClient.from_connection_string(azurite)
    blob = direct.get_blob_client(f"retry-{via_proxy}", "a/b.json")
    assert blob.download_blob().readall() == b'{"x": 1}'


def test_a_stalled_request_fails_within_the_bound_and_a_stall_once_is_retried(
    via_proxy: str, proxy: FaultProxy
) -> None:
    store = _store(f"stall-{via_proxy}", timeout_s=12)
    proxy.faults.append(Fault("stall", count=1, match="PUT"))
    store.write_text("once.json", "{}")  # stalled once: retried on a fresh connection
    assert [a for m, p, a in proxy.log if "once.json" in p] == ["stall", "forward"]

    stalled = _store(f"stall-{via_proxy}", timeout_s=2)
    proxy.faults.append(Fault("stall", count=100, match="PUT"))
    with pytest.raises(AzureError) as failed:
        stalled.write_text("never.json", "{}")
    failure = storage_failure(failed.value, "catalog")
    assert isinstance(failure, StorageUnavailable)
    assert "\n" not in str(failure) and "Timeout" in str(failure)


def test_an_outage_is_storage_unavailable(via_proxy: str, proxy: FaultProxy) -> None:
    store = _store(f"down-{via_proxy}", timeout_s=3)
    proxy.down()
    with pytest.raises(AzureError) as failed:
        store.read_text("catalog.json")
    failure = storage_failure(failed.value, "catalog az://x")
    assert isinstance(failure, StorageUnavailable) and "unreachable" in str(failure)


# --- whole runs through the CLI, as a user starts them --------------------------------------

BYOD = Path(sys.executable).with_name("byod")


def _rasters(folder: Path, *names: str) -> None:
    for i, name in enumerate(names):
        write_geotiff(folder / name, ramp(64, 64) + i, crs="EPSG:32633",
                      transform=(10.0, 0.0, 500000.0 + 640 * i, 0.0, -10.0, 5000000.0))  # fmt: skip


def _byod(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`byod ingest` in a process of its own, the way a user runs it (its stderr is what a
    terminal would show)."""
    return subprocess.run([str(BYOD), "ingest", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())  # fmt: skip


def _blob_run(tmp_path: Path, uid: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _byod(tmp_path, str(tmp_path / "src"), "--collection", "faults", "--workers", "1",
                 "--target", f"az://cogs-{uid}", "--catalog", f"az://stac-{uid}",
                 "--report", str(tmp_path / "report.json"), "--quiet", *extra)  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """stderr ends with the error, in one line, and holds no traceback: besides it, only
    one-line log warnings (e.g. that the run's marker could not be released)."""
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert all(line.startswith("WARNING ") for line in lines[:-1]), result.stderr
    return lines[-1]


def _direct_stores(azurite: str, uid: str, proxy: FaultProxy) -> tuple[BlobStore, BlobStore]:
    """The catalog and target read straight from Azurite, not through the proxy; hrefs (which
    name the endpoint byod used, the proxy's) are still recognised as theirs."""
    direct = resolve_access(AzureOptions(connection_string=azurite))
    seen_as = resolve_access(AzureOptions(connection_string=proxy.connection_string(azurite)))
    access = replace(direct, account_url=seen_as.account_url)
    return BlobStore(f"az://stac-{uid}", access), BlobStore(f"az://cogs-{uid}", access)


def _blobs(azurite: str, container: str) -> dict[str, bytes]:
    service = BlobServiceClient.from_connection_string(azurite).get_container_client(container)
    if not service.exists():
        return {}
    return {b.name: service.download_blob(b.name).readall() for b in service.list_blobs()}


def _report(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "report.json").read_text("utf-8")))


def test_storage_down_from_the_start_exits_2_and_writes_nothing(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy
) -> None:
    _rasters(tmp_path / "src", "a_20240101.tif")
    proxy.down()
    result = _blob_run(tmp_path, via_proxy, "--request-timeout", "2")
    assert result.returncode == 2
    assert "unreachable" in _one_error_line(result)
    report = _report(tmp_path)
    assert "unreachable" in report["error"] and report["collection"] == "faults"
    assert _blobs(azurite, f"stac-{via_proxy}") == {} and _blobs(azurite, f"cogs-{via_proxy}") == {}


def test_an_outage_midway_exits_3_keeps_the_old_catalog_and_the_next_run_converges(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy
) -> None:
    uid = via_proxy
    _rasters(tmp_path / "src", "a_20240101.tif")
    first = _blob_run(tmp_path, uid, "--request-timeout", "8")
    assert first.returncode == 0, first.stderr
    catalog, target = _direct_stores(azurite, uid, proxy)
    before = published(catalog, target, "faults", tmp_path)
    collection_before = catalog.read_text("faults/collection.json")

    # Two new inputs; the storage goes away once the first of them is stored (its thumbnail,
    # stored after its COG, went through), so the second cannot be stored nor anything
    # published.
    _rasters(tmp_path / "src", "b_20240102.tif", "c_20240103.tif")
    state = {"down": False}

    def outage_after_first_thumbnail(method: str, path: str) -> str:
        if state["down"]:
            return "reset"
        if method == "PUT" and path.split("?")[0].endswith(".png") and "stac-" not in path:
            state["down"] = True
        return "forward"

    proxy.decide = outage_after_first_thumbnail
    second = _blob_run(tmp_path, uid, "--request-timeout", "8")
    assert second.returncode == 3, second.stderr
    assert "the run stopped" in _one_error_line(second)
    report = _report(tmp_path)
    status = {r["input"]: r["status"] for r in report["rows"]}
    assert status["a_20240101.tif"] == "unchanged"
    assert sorted(status[n] for n in ("b_20240102.tif", "c_20240103.tif")) == ["not_done"] * 2
    assert report["error"] and report["counts"]["not_done"] == 2
    # Read back from Azurite itself: the catalog is the one of the first run.
    assert catalog.read_text("faults/collection.json") == collection_before
    assert published(catalog, target, "faults", tmp_path).keys() == before.keys()

    proxy.decide = None
    third = _blob_run(tmp_path, uid, "--request-timeout", "8")
    assert third.returncode == 0, third.stderr
    after = published(catalog, target, "faults", tmp_path)  # checksums of every COG checked
    sources = sorted(i["properties"]["byod:source"] for i in after.values())
    assert sources == ["a_20240101.tif", "b_20240102.tif", "c_20240103.tif"]


def test_throttling_and_server_errors_during_a_run_are_retried_and_nothing_is_lost(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy
) -> None:
    uid = via_proxy
    _rasters(tmp_path / "src", "a_20240101.tif", "b_20240102.tif")
    # The first attempt of every upload fails, each kind of fault in turn.
    kinds = [Fault(429, retry_after="1"), Fault(503, retry_after="1"), Fault(500),
             Fault(429), Fault(503), Fault("reset")]  # fmt: skip
    seen: dict[str, int] = {}

    def first_attempt_fails(method: str, path: str) -> str | Fault:
        if method != "PUT" or path in seen:
            return "forward"
        seen[path] = len(seen)
        return kinds[seen[path] % len(kinds)]

    proxy.decide = first_attempt_fails
    result = _blob_run(tmp_path, uid)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    catalog, target = _direct_stores(azurite, uid, proxy)
    items = published(catalog, target, "faults", tmp_path)
    assert sorted(i["properties"]["byod:source"] for i in items.values()) == [
        "a_20240101.tif", "b_20240102.tif"]  # fmt: skip
    # Every faulted upload was retried and then went through.
    forwarded = {p for m, p, a in proxy.log if a == "forward"}
    assert len(seen) >= 6 and set(seen) <= forwarded


def test_a_stalled_server_ends_the_run_within_the_request_bound(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy
) -> None:
    _rasters(tmp_path / "src", "a_20240101.tif")
    proxy.faults.append(Fault("stall", count=1000, match=".tif"))  # COG uploads never answer
    result = _blob_run(tmp_path, via_proxy, "--request-timeout", "4")
    assert result.returncode == 2, result.stderr  # nothing was stored
    assert "Timeout" in _one_error_line(result)
    assert _report(tmp_path)["rows"][0]["status"] == "not_done"
    assert not any(k.endswith(".tif") for k in _blobs(azurite, f"cogs-{via_proxy}"))
    assert "faults/collection.json" not in _blobs(azurite, f"stac-{via_proxy}")


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted for this test (root and mount needed; skipped, saying so, where
    the machine does not allow it)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (mount: {mount.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    """Write zeros until the file system is full; returns the filler (delete it to free)."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _local_run(tmp_path: Path, catalog: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return _byod(tmp_path, str(tmp_path / "src"), "--collection", "faults", "--workers", "1",
                 "--target", str(target), "--catalog", str(catalog),
                 "--report", str(tmp_path / "report.json"), "--quiet")  # fmt: skip


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, but the filler and the markers of runs (bookkeeping a failed run
    leaves for the next one to clean up, see `orphans` after it)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler.bin" and "_runs" not in p.parts}  # fmt: skip


@pytest.mark.parametrize("full", ["catalog", "target"])
def test_a_full_disk_ends_the_run_with_exit_2_a_report_and_the_old_catalog(
    tmp_path: Path, small_disk: Path, full: str
) -> None:
    catalog = small_disk / "catalog" if full == "catalog" else tmp_path / "catalog"
    target = small_disk / "data" if full == "target" else tmp_path / "data"
    _rasters(tmp_path / "src", "a_20240101.tif")
    assert _local_run(tmp_path, catalog, target).returncode == 0
    catalog_before, target_before = _tree(catalog), _tree(target)

    _rasters(tmp_path / "src", "b_20240102.tif")
    filler = _fill(small_disk)
    result = _local_run(tmp_path, catalog, target)
    assert result.returncode == 2, result.stderr  # nothing of this run was written
    assert "No space left on device" in _one_error_line(result)
    report = _report(tmp_path)
    assert "No space left" in report["error"]
    status = {r["input"]: r["status"] for r in report["rows"]}
    assert status.get("b_20240102.tif", "not_done") == "not_done"
    assert _tree(catalog) == catalog_before and _tree(target) == target_before

    filler.unlink()
    assert _local_run(tmp_path, catalog, target).returncode == 0
    items = published(Store(catalog), Store(target), "faults", tmp_path)
    assert sorted(i["properties"]["byod:source"] for i in items.values()) == [
        "a_20240101.tif", "b_20240102.tif"]  # fmt: skip
    assert orphans(Store(catalog), Store(target), "faults") == []


def test_a_disk_full_while_publishing_fails_the_run_with_exit_3_and_keeps_the_old_catalog(
    tmp_path: Path, small_disk: Path
) -> None:
    catalog, target = small_disk / "catalog", tmp_path / "data"
    _rasters(tmp_path / "src", "a_20240101.tif")
    settings = IngestSettings(source=str(tmp_path / "src"), collection="faults",
                              catalog=str(catalog), target=str(target), workers=1)  # fmt: skip
    ingest(settings)
    before = _tree(catalog)

    class FillOnceStored(Progress):
        """The disk fills up after the new input's COG is stored, before publishing."""

        def finished(self, row: Row) -> None:
            if row.status is Status.INGESTED:
                _fill(small_disk)

    _rasters(tmp_path / "src", "b_20240102.tif")
    with pytest.raises(RunFailed) as failed:
        ingest(settings, FillOnceStored())
    report = failed.value.report
    assert report is not None and exit_code(report, failed.value) == 3
    assert "No space left" in str(failed.value) and "\n" not in str(failed.value)
    assert {r.input: r.status for r in report.rows} == {
        "a_20240101.tif": Status.UNCHANGED, "b_20240102.tif": Status.NOT_DONE}  # fmt: skip
    assert _tree(catalog) == before  # not half-written: the old catalog, byte for byte

    (small_disk / "filler.bin").unlink()
    ingest(settings)
    items = published(Store(catalog), Store(target), "faults", tmp_path)
    assert len(items) == 2
    assert orphans(Store(catalog), Store(target), "faults") == []


@pytest.mark.parametrize("command", ["search", "validate"])
def test_reading_commands_end_with_exit_2_and_one_line_when_the_storage_refuses(
    tmp_path: Path, via_proxy: str, proxy: FaultProxy, command: str
) -> None:
    proxy.faults.append(Fault(403, count=1000))  # every request refused
    result = subprocess.run([str(BYOD), command, f"az://stac-{via_proxy}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "HTTP 403" in _one_error_line(result)


def test_a_source_that_cannot_be_downloaded_stops_the_run_instead_of_rejecting_inputs(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy
) -> None:
    """An outage is not the input's fault: no `unreadable` rows, exit 2, nothing stored."""
    uid = via_proxy
    direct = BlobServiceClient.from_connection_string(azurite)
    direct.create_container(f"uploads-{uid}")
    _rasters(tmp_path / "local", "a_20240101.tif", "b_20240102.tif")
    for path in sorted((tmp_path / "local").iterdir()):
        direct.get_blob_client(f"uploads-{uid}", f"in/{path.name}").upload_blob(path.read_bytes())
    downloads = f"GET /devstoreaccount1/uploads-{uid}/in/"
    proxy.faults.append(Fault("reset", count=1000, match=downloads))
    result = _byod(tmp_path, f"az://uploads-{uid}/in", "--collection", "faults", "--workers", "1",
                   "--target", f"az://cogs-{uid}", "--catalog", f"az://stac-{uid}",
                   "--report", str(tmp_path / "report.json"), "--quiet",
                   "--request-timeout", "6")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "reading the source" in _one_error_line(result)
    rows = _report(tmp_path)["rows"]
    assert {r["status"] for r in rows} == {"not_done"} and len(rows) == 2
    assert not any(k.endswith(".tif") for k in _blobs(azurite, f"cogs-{uid}"))


# --- folders byod may not write, reports it cannot write, catalogs that are not there -----

_NO_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                "--bounding-set=-dac_override,-dac_read_search"]  # fmt: skip


@pytest.mark.parametrize(("refused", "where"), [
    ("catalog", "root"), ("target", "root"),
    ("target", "parent"),  # the folder does not exist yet; its parent is refused
    ("catalog", "collection"),  # the collection's folder in a writable catalog is refused
])  # fmt: skip
def test_a_folder_the_run_may_not_write_is_refused_before_anything_is_converted(
    tmp_path: Path, refused: str, where: str
) -> None:
    """Permission denied (EACCES) on the catalog or target folder: exit 2 with one line
    naming the folder, before any input is converted; nothing written anywhere. Root
    without CAP_DAC_OVERRIDE (setpriv) on a folder of `nobody`, mode 0755, as a user meets
    a folder of a colleague."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    _rasters(tmp_path / "src", "a_20240101.tif", "b_20240102.tif")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, pwd.getpwnam("nobody").pw_uid, -1)
    place = {"catalog": tmp_path / "catalog", "target": tmp_path / "data"}
    place[refused] = theirs / "data" if where == "parent" else theirs
    shown = place[refused]
    if where == "collection":
        place[refused] = tmp_path / "shared"
        place[refused].mkdir()
        theirs.rename(place[refused] / "faults")
        theirs = shown = place[refused] / "faults"
    result = subprocess.run(
        [*_NO_OVERRIDE, str(BYOD), "ingest", str(tmp_path / "src"), "--collection", "faults",
         "--workers", "1", "--catalog", str(place["catalog"]), "--target", str(place["target"]),
         "--report", str(tmp_path / "report.json"), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert "Permission denied" in line and str(shown) in line
    assert {r["status"] for r in _report(tmp_path)["rows"]} <= {"not_done"}
    written = [p for p in (*tmp_path.glob("catalog/**/*"), *tmp_path.glob("data/**/*"),
                           *tmp_path.glob("shared/*/*"), *theirs.rglob("*"))]  # fmt: skip
    assert written == []


def test_an_input_the_run_may_not_read_is_rejected_alone(tmp_path: Path) -> None:
    """EACCES on reading one input is that input's fault: rejected `unreadable` (exit 1),
    the others published; not a storage failure of the run."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    _rasters(tmp_path / "src", "a_20240101.tif", "b_20240102.tif")
    secret = tmp_path / "src" / "a_20240101.tif"
    os.chown(secret, pwd.getpwnam("nobody").pw_uid, -1)
    secret.chmod(0o600)
    result = subprocess.run(
        [*_NO_OVERRIDE, str(BYOD), "ingest", str(tmp_path / "src"), "--collection", "faults",
         "--workers", "1", "--catalog", str(tmp_path / "catalog"), "--target",
         str(tmp_path / "data"), "--report", str(tmp_path / "report.json"), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = {r["input"]: (r["status"], r.get("reason")) for r in _report(tmp_path)["rows"]}
    assert rows == {"a_20240101.tif": ("rejected", "unreadable"),
                    "b_20240102.tif": ("ingested", None)}  # fmt: skip
    items = published(Store(tmp_path / "catalog"), Store(tmp_path / "data"), "faults", tmp_path)
    assert [i["properties"]["byod:source"] for i in items.values()] == ["b_20240102.tif"]


def test_a_report_that_cannot_be_written_is_exit_3(tmp_path: Path, small_disk: Path) -> None:
    """The run itself succeeded, but its record is lost (a full disk): exit 3, one line."""
    _rasters(tmp_path / "src", "a_20240101.tif")
    (small_disk / "reports").mkdir()
    _fill(small_disk)
    result = _byod(tmp_path, str(tmp_path / "src"), "--collection", "faults", "--workers", "1",
                   "--target", str(tmp_path / "data"), "--catalog", str(tmp_path / "catalog"),
                   "--report", str(small_disk / "reports" / "report.json"), "--quiet")  # fmt: skip
    assert result.returncode == 3, result.stderr
    line = _one_error_line(result)
    assert "report not written" in line and "No space left" in line
    items = published(Store(tmp_path / "catalog"), Store(tmp_path / "data"), "faults", tmp_path)
    assert [i["properties"]["byod:source"] for i in items.values()] == ["a_20240101.tif"]


def test_search_of_a_catalog_or_collection_that_is_not_there_is_exit_2(tmp_path: Path) -> None:
    _rasters(tmp_path / "src", "a_20240101.tif")
    catalog = tmp_path / "catalog"
    assert _local_run(tmp_path, catalog, tmp_path / "data").returncode == 0
    for args in ([str(tmp_path / "nowhere")], [str(catalog), "--collection", "nope"]):
        result = subprocess.run([str(BYOD), "search", *args], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120, check=False)  # fmt: skip
        assert result.returncode == 2, result.stderr
        line = _one_error_line(result)
        assert ("no catalog there" in line) if len(args) == 1 else ("nope" in line), line
