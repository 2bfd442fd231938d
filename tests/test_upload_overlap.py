"""Storing overlapped with converting (issue 14): on a blob target each converted input is
uploaded by the parent on a thread while the next worker converts; a local target gets the
worker's COG renamed into place instead of copied.

Checked against Azurite itself (read directly, not through the fault proxy): every published
COG hashes (hashlib) to its `file:checksum` and holds the input's pixels (rasterio); one input
whose upload is refused fails alone. A store outage during the overlapped uploads is covered
by tests/test_faults.py (it ends the run as before).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from azure.storage.blob import BlobServiceClient
from rasterio.transform import from_origin

from byod.azure import AzureOptions, resolve_access
from byod.config import IngestSettings
from byod.pipeline import Progress, ingest
from byod.report import Row, Status
from byod.storage import BlobStore, Store, UploadStopped
from tests.conftest import ramp, write_geotiff
from tests.faultproxy import FaultProxy
from tests.readback import published

# The fault proxy in front of Azurite, as the storage fault tests set it up.
from tests.test_faults import _direct_stores, proxy, via_proxy  # noqa: F401

NAMES = ("a_20240101.tif", "b_20240102.tif", "c_20240103.tif")


def _inputs(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for n, name in enumerate(NAMES):
        data = ramp(200, 300, bands=2) + 100 * n
        write_geotiff(folder / name, data, crs="EPSG:32633",
                      transform=from_origin(500000 + 4000 * n, 5000000, 10, 10))  # fmt: skip
        out[name] = data
    return out


class Recorder(Progress):
    """The order in which workers started ("queued") and inputs were finished."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def stage(self, input: str, stage: str) -> None:
        if stage == "queued":
            with self.lock:
                self.events.append(("queued", input))

    def finished(self, row: Row) -> None:
        with self.lock:
            self.events.append(("finished", row.input))


def _settings(tmp_path: Path, uid: str) -> IngestSettings:
    return IngestSettings(source=str(tmp_path / "src"), collection="overlap",
                          target=f"az://cogs-{uid}", catalog=f"az://stac-{uid}", workers=1,
                          timeout_s=120)  # fmt: skip


def _check_pixels(items: dict[str, dict[str, object]], target: Store, inputs: dict[str, np.ndarray],
                  scratch: Path) -> None:  # fmt: skip
    """Each item's COG, downloaded, holds its input's pixels."""
    for item in items.values():
        props = item["properties"]
        assets = item["assets"]
        assert isinstance(props, dict) and isinstance(assets, dict)
        key = target.key_of(assets["data"]["href"])
        assert key is not None
        local = scratch / f"{item['id']}.tif"
        target.get_file(key, local)
        with rasterio.open(local) as cog:
            np.testing.assert_array_equal(cog.read(), inputs[props["byod:source"]])


def test_uploads_overlap_the_next_conversion_and_every_cog_is_published_whole(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy  # noqa: F811
) -> None:  # fmt: skip
    inputs = _inputs(tmp_path / "src")

    def slow_cog_uploads(method: str, path: str) -> str:
        if method == "PUT" and ".tif" in path and "cogs-" in path:
            time.sleep(0.3)  # an upload that takes a while: the next worker starts meanwhile
        return "forward"

    proxy.decide = slow_cog_uploads
    recorder = Recorder()
    report = ingest(_settings(tmp_path, via_proxy), recorder)
    assert sorted(r.input for r in report.rows if r.status is Status.INGESTED) == list(NAMES)
    # One worker at a time: each next input's worker started before the input before it was
    # finished (stored), so its upload ran while the next one converted.
    order = recorder.events
    finished = [name for kind, name in order if kind == "finished"]
    queued = [name for kind, name in order if kind == "queued"]
    assert sorted(finished) == sorted(queued) == list(NAMES)
    first = finished[0]
    later = [name for name in queued if name != first]
    assert order.index(("queued", later[0])) < order.index(("finished", first)), order

    catalog, target = _direct_stores(azurite, via_proxy, proxy)
    items = published(catalog, target, "overlap", tmp_path)  # hashlib of every blob
    assert sorted(i["properties"]["byod:source"] for i in items.values()) == list(NAMES)
    _check_pixels(items, target, inputs, tmp_path)


def test_an_upload_refused_for_one_input_fails_that_input_alone(
    tmp_path: Path, via_proxy: str, azurite: str, proxy: FaultProxy  # noqa: F811
) -> None:  # fmt: skip
    inputs = _inputs(tmp_path / "src")

    def refuse_b(method: str, path: str) -> str | int:
        if method == "PUT" and "b_20240102" in path and "cogs-" in path:
            return 400  # not the store's fault (errors.storage_failure): this input only
        return "forward"

    proxy.decide = refuse_b
    report = ingest(_settings(tmp_path, via_proxy), Progress())
    rows = {r.input: r for r in report.rows}
    assert rows["b_20240102.tif"].status is Status.REJECTED
    assert rows["b_20240102.tif"].reason is not None
    assert rows["b_20240102.tif"].reason.value == "storage_failed"
    assert {rows[n].status for n in ("a_20240101.tif", "c_20240103.tif")} == {Status.INGESTED}

    catalog, target = _direct_stores(azurite, via_proxy, proxy)
    items = published(catalog, target, "overlap", tmp_path)
    sources = sorted(i["properties"]["byod:source"] for i in items.values())
    assert sources == ["a_20240101.tif", "c_20240103.tif"]
    _check_pixels(items, target, inputs, tmp_path)
    # Nothing of the refused input is left in the target.
    assert not [i.key for i in target.list_files() if "b_20240102" in i.key]


# --- the local target: the worker's file renamed into place --------------------------------


def test_a_local_put_file_with_move_renames_the_file_into_place(tmp_path: Path) -> None:
    source = tmp_path / "work" / "cog.tif"
    source.parent.mkdir()
    payload = os.urandom(100_000)
    source.write_bytes(payload)
    inode = source.stat().st_ino
    store = Store(tmp_path / "target")
    href = store.put_file(source, "c/v/cog.tif", move=True)
    stored = Path(href)
    assert stored.read_bytes() == payload
    assert stored.stat().st_ino == inode  # the same file, not a copy
    assert not source.exists()
    assert [p.name for p in stored.parent.iterdir()] == ["cog.tif"]  # no temp file left

    # Without `move` the caller's file stays and the stored one is a copy.
    source.write_bytes(payload)
    copied = Path(store.put_file(source, "c/v/copy.tif"))
    assert source.exists() and copied.read_bytes() == payload
    assert copied.stat().st_ino != source.stat().st_ino


def test_a_move_across_file_systems_copies(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to move across")
    payload = os.urandom(50_000)
    source = shm / f"byod-test-{os.getpid()}.tif"
    source.write_bytes(payload)
    try:
        href = Store(tmp_path / "target").put_file(source, "cog.tif", move=True)
        assert Path(href).read_bytes() == payload
        assert Path(href).stat().st_dev == tmp_path.stat().st_dev
    finally:
        source.unlink(missing_ok=True)


def test_an_upload_told_to_stop_raises_and_commits_nothing(azure_env: str, tmp_path: Path) -> None:
    store = BlobStore(f"az://stop-{azure_env}", resolve_access(AzureOptions()))
    store.ensure_container()
    local = tmp_path / "cog.tif"
    local.write_bytes(os.urandom(300_000))
    stop = threading.Event()
    stop.set()
    with pytest.raises(UploadStopped):
        store.put_file(local, "v/cog.tif", {"byod_sha256": "x"}, stop=stop)
    direct = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    assert list(direct.get_container_client(f"stop-{azure_env}").list_blobs()) == []
    # Not told to stop: stored whole, with its MD5 checked by the service (validate_content).
    store.put_file(local, "v/cog.tif", {"byod_sha256": "x"}, stop=threading.Event())
    blob = direct.get_blob_client(f"stop-{azure_env}", "v/cog.tif").download_blob().readall()
    assert blob == local.read_bytes()
