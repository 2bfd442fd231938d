"""Where bytes go and come from: a local folder or an Azure blob container, behind one small
interface (`Store`), so the same pipeline runs on either.

Every write is all-or-nothing: on a local folder a temporary file is renamed into place; a
blob upload is committed by Azure only when all its blocks are in. A reader (or a killed run)
never sees half a file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import mimetypes
import os
import posixpath
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from byod.azure import AzureAccess, AzureOptions, blob_parts, resolve_access
from byod.errors import ConfigurationError, StorageUnavailable, storage_failure
from byod.keys import OUTPUT_MARKER, ROOT_KEY
from byod.locations import check_container, is_blob_url

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobLeaseClient

log = logging.getLogger(__name__)

# PITFALLS: 4 connections moved a 520 MB COG ~1.4x faster than one on loopback. Blocks of the
# SDK's default 4 MiB, read from the file as they are sent: at most 4 x 4 MiB in memory per
# upload (larger blocks changed nothing measurable, benchmarks/README.md).
UPLOAD_CONCURRENCY = 4
CACHE_CONTROL = {
    ".json": "no-cache",  # the catalog must be fresh: it is rewritten on every publish
    ".tif": "public, max-age=3600",
    ".png": "public, max-age=3600",
}
# Optimistic updates of a shared file: bounded attempts, jittered backoff (0.05 s doubling to 2 s).
UPDATE_ATTEMPTS = 40
# Requests a blob store keeps in flight at once for independent reads and writes (`Store.each`).
REQUESTS_AT_ONCE = 8
# A run's liveness lease on Azure: the shortest Azure allows (15-60 s), renewed every third.
LEASE_SECONDS = 15
CONTENT_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".json": "application/json",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StoredInfo:
    """What a listing says of a file: enough to fingerprint it without reading it."""

    key: str  # path below the store's root, POSIX
    size: int
    version: str  # content MD5 or ETag for blobs, mtime for local files


class ConflictError(RuntimeError):
    """A conditional update lost to other writers `UPDATE_ATTEMPTS` times in a row."""


class UploadStopped(RuntimeError):
    """An upload was told to stop (`put_file`'s `stop`): the run is ending."""


class _StoppableFile(io.FileIO):
    """A file read for an upload, raising `UploadStopped` once `stop` is set: the SDK reads
    it a block at a time, so an upload stops within a block of being told."""

    def __init__(self, path: Path, stop: threading.Event) -> None:
        super().__init__(path, "rb")
        self.stop = stop

    def read(self, size: int | None = -1) -> bytes:
        if self.stop.is_set():
            raise UploadStopped(f"{self.name}: upload stopped")
        return super().read(size) or b""


Change = Callable[[str | None], str | None]
T = TypeVar("T")


def open_store(url: str | Path, access: AzureAccess | None = None) -> Store:
    """A Store for a local folder or an az:// URL (which needs `access`).

    Raises `ConfigurationError` (a ValueError) for another scheme (s3://, ...), a container
    name Azure refuses, a blob URL without `access`, or a local path that is, or lies under,
    a file (a store is a folder)."""
    text = str(url)
    if is_blob_url(text):
        check_container(text)
        if access is None:
            raise ConfigurationError(f"{text}: a blob URL needs Azure credentials")
        return BlobStore(text, access)
    if "://" in text and not text.startswith("file://"):
        raise ConfigurationError(f"{text}: only local folders and az:// URLs are supported")
    root = Path(text.removeprefix("file://"))
    # The nearest existing part decides: a file there can never hold the store's folders.
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == root else f" ({existing} is a file)"
        raise ConfigurationError(f"{text}: a file, not a folder{where}")
    return Store(root)


def catalog_store(url: str, access: AzureAccess | None = None) -> tuple[Store, AzureAccess | None]:
    """The Store whose root holds a catalog's root (`keys.ROOT_KEY`), and the Azure access
    used to open it (None for a local folder). The one reading of a catalog location for
    every command and the Python API (validate, search, browse, export, open_catalog).

    `url` is a folder, az://container/prefix, or an https blob URL of the account (resolved
    from `access`, else the environment), or any of them ending in `/catalog.json`.
    Raises `ConfigurationError` for another STAC file (not the root), a URL outside the
    account, an unsupported scheme, or missing credentials. Nothing is read: whether a
    catalog is there is the caller's question (`Store.exists(ROOT_KEY)`)."""
    base = url.rstrip("/")
    if posixpath.basename(base) == ROOT_KEY:
        base = base[: -len(ROOT_KEY)]
    elif base.endswith(".json"):
        raise ConfigurationError(f"{url}: not a root catalog; give its folder or {ROOT_KEY}")
    base = base.rstrip("/") or "."
    if is_blob_url(base):
        access = access or resolve_access(AzureOptions())
        return open_store(base, access), access
    if base.startswith(("http://", "https://")):
        access = access or resolve_access(AzureOptions())
        parts = blob_parts(access, base + "/x")
        if parts is None:
            raise ConfigurationError(f"{url}: not in storage account {access.account_name!r}")
        container, prefix = parts[0], parts[1].removesuffix("x").strip("/")
        return open_store(f"az://{container}/{prefix}".rstrip("/"), access), access
    return open_store(base), None


class Store:
    """A local root folder and the files below it, addressed by POSIX keys."""

    is_local = True
    # `put_file(move=True)` is a rename (same file system) or one local copy: nothing for an
    # upload thread to overlap (pipeline.process_all stores such inputs at once).
    puts_at_once = True

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root).resolve())
        # Marked (`_mark_output`) only if new or empty when opened, before this run wrote
        # anything: a --target given by mistake as a folder of the user's rasters is not
        # hidden from later runs (newcomer N5).
        self._marked = not _new_or_empty(self.root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"

    def _mark_output(self) -> None:
        """Write `keys.OUTPUT_MARKER` in the root before the first file (once per store), when
        the root was new or empty when opened: a later run whose source holds this folder
        skips it (`sources._walk`)."""
        if self._marked:
            return
        self._marked = True
        marker = Path(self.root, OUTPUT_MARKER)
        _atomic_local(marker, lambda tmp: tmp.write_text(OUTPUT_MARKER_TEXT, "utf-8"))

    def href(self, key: str) -> str:
        """The absolute path (local) or URL of a key."""
        return str(Path(self.root, key))

    def exists(self, key: str) -> bool:
        """Whether a file is stored at `key`."""
        return os.path.isfile(os.path.join(self.root, key))

    def root_exists(self) -> bool:
        """Whether the store's root is there: the folder (local) or the container (blob)."""
        return Path(self.root).is_dir()

    def ensure_container(self) -> None:
        """Create the blob container if missing; a local folder is made by its first write."""

    def check_writable(self, folder: str = "") -> None:
        """Raise `StorageUnavailable` when files cannot be created in the folder `folder`
        below the root (a folder of another user, a read-only or full file system:
        errors._STORAGE_ERRNOS), leaving nothing behind: an unnamed temp file (`_probe`) is
        created in the root and in `folder`, or in their nearest existing parents while they
        do not exist yet (created on first write)."""
        for wanted in dict.fromkeys([Path(self.root), Path(self.root, folder)]):
            there = next((p for p in (wanted, *wanted.parents) if p.is_dir()), wanted)
            try:
                _probe(there)
            except OSError as exc:
                if storage_failure(exc, str(there)) is None:
                    raise
                place = "" if there == wanted else f" in {there}"
                raise StorageUnavailable(f"{wanted}: cannot write there ({exc.strerror}{place}); "
                                         "nothing was written", str(wanted)) from None  # fmt: skip

    def read_text(self, key: str) -> str:
        """The file at `key` as UTF-8 text; FileNotFoundError when it is missing (on every
        kind of store)."""
        return Path(self.root, key).read_text("utf-8")

    def write_text(self, key: str, text: str) -> None:
        """Write `key` whole as UTF-8, replacing it: a reader sees the old or the new text
        (a temp file renamed locally; one upload on blob)."""
        self._mark_output()
        _atomic_local(Path(self.root, key), lambda tmp: tmp.write_text(text, "utf-8"))

    def put_file(self, local: Path, key: str, metadata: dict[str, str] | None = None, *,
                 move: bool = False, stop: threading.Event | None = None) -> str:  # fmt: skip
        """Store a local file under `key`; returns its href. Local files keep no metadata.

        `move=True`: `local` is the caller's to give away (a worker's output, deleted after):
        on the same file system it is renamed into place instead of copied (no second write
        of the bytes), else copied. Either way it appears under `key` by one rename of a
        temporary name, as every local write does. `stop`: see `BlobStore.put_file` (a local
        store is done too soon to need it)."""
        self._mark_output()
        _atomic_local(Path(self.root, key), lambda tmp: _move_or_copy(local, tmp, move))
        return self.href(key)

    def metadata(self, key: str) -> dict[str, str] | None:
        """User metadata stored with the file; None where the store keeps none."""
        return None

    def list_metadata(self, prefix: str = "") -> dict[str, dict[str, str]] | None:
        """Key -> user metadata of every file below `prefix`, from one listing; None where
        the store keeps no metadata (a local folder)."""
        return None

    def read_href(self, href: str) -> bytes:
        """The bytes of an href this store can reach (a local file here; a blob of the same
        storage account, in any container, for a blob store); b"" for one it cannot reach or
        a missing local file (a missing blob raises the SDK's `ResourceNotFoundError`)."""
        path = Path(href)
        return path.read_bytes() if "://" not in href and path.is_file() else b""

    def remove(self, key: str) -> None:
        """Delete the file at `key`; a missing one is no error."""
        Path(self.root, key).unlink(missing_ok=True)

    def list_files(self, prefix: str = "") -> list[StoredInfo]:
        """Files below the root (or below the folder `prefix`, a key ending in '/')."""
        out = []
        for dirpath, _, names in os.walk(Path(self.root, prefix)):
            for name in names:
                path = Path(dirpath, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # removed since the walk saw it (another run's temp file)
                key = path.relative_to(self.root).as_posix()
                out.append(StoredInfo(key, stat.st_size, str(stat.st_mtime_ns)))
        return sorted(out, key=lambda i: i.key)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly below the folder `prefix` (a key ending in '/')."""
        try:
            entries = list(os.scandir(Path(self.root, prefix)))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))

    def get_file(self, key: str, local: Path) -> None:
        """Copy the file at `key` to the local path `local`; FileNotFoundError when missing."""
        shutil.copyfile(Path(self.root, key), local)

    def key_of(self, href: str) -> str | None:
        """The key of an href in this store (the inverse of `href`); None if it is elsewhere."""
        if "://" in href:
            return None
        path = os.path.normpath(href)
        if not path.startswith(self.root + os.sep):
            return None
        return path[len(self.root) + 1 :].replace(os.sep, "/")  # normalised: no `..`, no `//`

    def local_path(self, key: str) -> Path | None:
        """The file of `key` on this machine, for a library that needs a real path (pyarrow
        opening an index in place); None on a blob store."""
        return Path(self.root, key)

    def relative_href(self, href: str, key: str) -> str:
        """`href` as the file at `key` should name it: relative to that file's folder when
        both are files of this machine (a local catalog moves with its data), else as given."""
        here = self.local_path(key)
        if here is None or "://" in href or not os.path.isabs(href):
            return href
        return os.path.relpath(href, here.parent)

    def remove_empty_folders(self, *folders: str) -> None:
        """Remove the folders (keys, innermost first) that are empty, stopping at the first
        that is not (another file or run is there); a missing one is skipped. Local disks
        keep empty folders; blob prefixes vanish with their last blob (a no-op there)."""
        for folder in folders:
            try:
                os.rmdir(Path(self.root, folder))
            except FileNotFoundError:
                continue
            except OSError:
                return

    def each(self, function: Callable[[str], T], keys: Iterable[str]) -> Iterator[T]:
        """`function(key)` for each key, in order: one after the other on a local disk,
        `REQUESTS_AT_ONCE` at a time on a blob store (overlapping the requests' latency)."""
        return map(function, keys)

    # --- shared files: one writer at a time, and proof that a run is alive -------------

    def update_text(self, key: str, change: Change) -> str | None:
        """Read-modify-write `key` as one step against other processes: `change` gets the
        current text (None if missing) and returns the new text (None: leave it).

        Locally an OS lock (`fcntl.flock`, released by the kernel when a holder dies) on
        `.<name>.lock` beside the file serialises the whole step; the write is an atomic
        rename. Temp files of writers killed mid-write are removed while the lock is held.
        Returns what the file holds afterwards."""
        path = Path(self.root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flocked(path.with_name(f".{path.name}.lock")):
            for stale in path.parent.glob(f".{path.name}.*.partial"):
                stale.unlink(missing_ok=True)  # its writer held this lock and died
            current = path.read_text("utf-8") if path.is_file() else None
            new = change(current)
            if new is None or new == current:
                return current
            self.write_text(key, new)
            return new

    def hold(self, key: str, note: dict[str, Any]) -> Hold:
        """Create the marker `key` and hold it for as long as this process lives (or until
        `Hold.release`): an exclusive `flock` on it, taken before the file appears under
        its name, so `held` never sees it unlocked while its holder lives."""
        path = Path(self.root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps(note).encode())
            os.replace(tmp, path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return _LocalHold(path, fd)

    def held(self, key: str) -> bool:
        """Whether the marker `key` exists and its holder is alive."""
        try:
            fd = os.open(Path(self.root, key), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we took
        return False

    def drop_hold(self, key: str) -> None:
        """Remove a marker another process may hold (it then counts as finished)."""
        self.remove(key)


class BlobStore(Store):
    """A container (and optional prefix) in an Azure storage account."""

    is_local = False
    puts_at_once = False

    def __init__(self, url: str, access: AzureAccess) -> None:
        rest = url.split("://", 1)[1].strip("/")
        self.container, _, prefix = rest.partition("/")
        if not self.container:
            raise ValueError(f"{url}: no container named")
        self.prefix = prefix.strip("/")
        self.root = url.rstrip("/")
        self.access = access
        self.service = access.blob_service()
        self.container_client = self.service.get_container_client(self.container)

    # Uploads go through azure-storage-blob (the SDK adlfs wraps) rather than adlfs itself:
    # adlfs's put_file fixes the blob metadata to {"is_directory": "false"}, and byod stores
    # the input fingerprint and checksum there.
    def _blob(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def href(self, key: str) -> str:
        return f"{self.access.account_url}/{self.container}/{self._blob(key)}"

    def check_writable(self, folder: str = "") -> None:
        """Blob containers: `ensure_container` and the first write tell (a refused write is a
        403, `errors.storage_failure`)."""

    def ensure_container(self) -> None:
        """Create the container if missing, private (no anonymous access)."""
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self.container_client.create_container()

    def exists(self, key: str) -> bool:
        return bool(self.container_client.get_blob_client(self._blob(key)).exists())

    def root_exists(self) -> bool:
        return bool(self.container_client.exists())

    def read_href(self, href: str) -> bytes:
        parts = blob_parts(self.access, href)
        if parts is None:
            return b""
        return bytes(self.service.get_blob_client(*parts).download_blob().readall())

    def read_text(self, key: str) -> str:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data = self.container_client.download_blob(self._blob(key)).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(self.href(key)) from None
        return bytes(data).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self._upload(key, text.encode("utf-8"), None)

    def put_file(self, local: Path, key: str, metadata: dict[str, str] | None = None, *,
                 move: bool = False, stop: threading.Event | None = None) -> str:  # fmt: skip
        """Upload a local file in blocks, each sent with its MD5 (`validate_content`): the
        service checks every block as it arrives (a block damaged in transit is refused and
        sent again by the retry policy). Azurite, given no MD5, computes a CRC64 of each block
        in JavaScript: 3x its CPU for the same upload (benchmarks/README.md). `move` changes
        nothing here (the caller deletes its file).

        `stop`: once set, the upload raises `UploadStopped` before its next block is read
        (the blob is not committed; its uncommitted blocks Azure drops after a week)."""
        with _StoppableFile(local, stop or threading.Event()) as data:
            self._upload(key, data, metadata, validate=True)
        return self.href(key)

    def _upload(
        self,
        key: str,
        data: bytes | BinaryIO,
        metadata: dict[str, str] | None,
        validate: bool = False,
        **conditions: Any,
    ) -> None:
        from azure.storage.blob import ContentSettings

        ext = posixpath.splitext(key)[1].lower()
        settings = ContentSettings(
            content_type=CONTENT_TYPES.get(ext) or mimetypes.guess_type(key)[0]
            or "application/octet-stream",
            cache_control=CACHE_CONTROL.get(ext),
        )  # fmt: skip
        conditions.setdefault("overwrite", True)
        self.container_client.upload_blob(
            self._blob(key), data, content_settings=settings,
            metadata=metadata, max_concurrency=UPLOAD_CONCURRENCY, validate_content=validate,
            **conditions,
        )  # fmt: skip

    def metadata(self, key: str) -> dict[str, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self.container_client.get_blob_client(self._blob(key)).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return dict(props.metadata or {})

    def remove(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.container_client.delete_blob(self._blob(key))

    def list_files(self, prefix: str = "") -> list[StoredInfo]:
        start = (f"{self.prefix}/" if self.prefix else "") + prefix or None
        out = []
        for blob in self.container_client.list_blobs(name_starts_with=start):
            md5 = blob.content_settings.content_md5 if blob.content_settings else None
            version = bytes(md5).hex() if md5 else str(blob.etag)
            key = blob.name[len(self.prefix) + 1 :] if self.prefix else blob.name
            out.append(StoredInfo(key, int(blob.size), version))
        return sorted(out, key=lambda i: i.key)

    def list_metadata(self, prefix: str = "") -> dict[str, dict[str, str]] | None:
        """Key -> user metadata of every blob below `prefix`, from one listing (5,000 blobs a
        request) instead of a HEAD per blob."""
        start = (f"{self.prefix}/" if self.prefix else "") + prefix or None
        out = {}
        for blob in self.container_client.list_blobs(name_starts_with=start, include=["metadata"]):
            key = blob.name[len(self.prefix) + 1 :] if self.prefix else blob.name
            out[key] = dict(blob.metadata or {})
        return out

    def list_folders(self, prefix: str = "") -> list[str]:
        """Virtual folders directly below `prefix`: one delimited listing (`walk_blobs`)."""
        start = (f"{self.prefix}/" if self.prefix else "") + prefix
        names = []
        for entry in self.container_client.walk_blobs(name_starts_with=start or None,
                                                      delimiter="/"):  # fmt: skip
            name = str(entry.name)
            if name.endswith("/"):  # a BlobPrefix: a folder
                names.append(name[len(start) :].rstrip("/"))
        return sorted(names)

    def get_file(self, key: str, local: Path) -> None:
        """Stream a blob to a local file in chunks: memory stays bounded by the chunk size."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = self.container_client.download_blob(self._blob(key), max_concurrency=2)
        except ResourceNotFoundError:
            raise FileNotFoundError(self.href(key)) from None  # as a local store says it
        with local.open("wb") as out:
            for chunk in downloader.chunks():
                out.write(chunk)

    def key_of(self, href: str) -> str | None:
        base = self.href("")
        if not href.startswith(base) or "?" in href:
            return None
        return href[len(base) :]

    def local_path(self, key: str) -> Path | None:
        return None

    def remove_empty_folders(self, *folders: str) -> None:
        """Nothing to do: a blob prefix is gone with its last blob."""

    def each(self, function: Callable[[str], T], keys: Iterable[str]) -> Iterator[T]:
        keys = list(keys)
        if len(keys) < 2:
            yield from map(function, keys)
            return
        with ThreadPoolExecutor(min(REQUESTS_AT_ONCE, len(keys))) as pool:
            yield from pool.map(function, keys)

    def update_text(self, key: str, change: Change) -> str | None:
        """Optimistic concurrency: read the blob and its ETag, write the change only if the
        blob is unchanged (`If-Match`, or `If-None-Match: *` when it did not exist), else
        re-read and call `change` again; at most `UPDATE_ATTEMPTS` times, then
        `ConflictError`. `change` must be safe to call again (it is a merge)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        blob = self.container_client.get_blob_client(self._blob(key))
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                download = blob.download_blob()
                current: str | None = bytes(download.readall()).decode("utf-8")
                etag = download.properties.etag
            except ResourceNotFoundError:
                current, etag = None, None
            new = change(current)
            if new is None or new == current:
                return current
            conditions: dict[str, Any] = (
                {"etag": etag, "match_condition": MatchConditions.IfNotModified}
                if etag else {"overwrite": False}
            )  # fmt: skip
            try:
                self._upload(key, new.encode("utf-8"), None, **conditions)
                return new
            except (ResourceModifiedError, ResourceExistsError):
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        raise ConflictError(f"{self.href(key)}: still changing after {UPDATE_ATTEMPTS} tries")

    def hold(self, key: str, note: dict[str, Any]) -> Hold:
        """Create the marker blob and keep a lease on it (`LEASE_SECONDS`, renewed by a
        daemon thread): a killed holder's lease runs out, and `held` says so."""
        blob = self.container_client.get_blob_client(self._blob(key))
        blob.upload_blob(json.dumps(note).encode(), overwrite=False)
        lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
        return _LeaseHold(blob, lease)

    def held(self, key: str) -> bool:
        """Leased, or too new to have been leased yet (the lease follows the upload)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self.container_client.get_blob_client(self._blob(key)).get_blob_properties()
        except ResourceNotFoundError:
            return False
        if props.lease.state == "leased":
            return True
        age = (datetime.now(UTC) - props.last_modified).total_seconds()
        return age < LEASE_SECONDS

    def drop_hold(self, key: str) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.storage.blob import BlobLeaseClient

        blob = self.container_client.get_blob_client(self._blob(key))
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
            BlobLeaseClient(blob).break_lease(lease_break_period=0)
        self.remove(key)


class Hold:
    """A held marker (see `Store.hold`)."""

    def confirm(self) -> bool:
        """Whether the marker is still held (a lease is renewed now): False when it was lost,
        and other runs may have taken this run for dead."""
        return True

    def release(self) -> None:
        """The run finished: remove the marker."""

    def abandon(self) -> None:
        """The run failed: stop holding but keep the marker, so that the next run sees a
        dead run and removes what it left."""


class _LocalHold(Hold):
    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def confirm(self) -> bool:
        return self.fd >= 0 and self.path.exists()

    def release(self) -> None:
        self.path.unlink(missing_ok=True)  # before unlocking: never seen unlocked
        self.abandon()

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _LeaseHold(Hold):
    def __init__(self, blob: BlobClient, lease: BlobLeaseClient) -> None:
        self.blob, self.lease = blob, lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew, name="byod-lease", daemon=True)
        self.thread.start()

    def _renew(self) -> None:
        while not self.stop.wait(LEASE_SECONDS / 3):
            try:
                self.lease.renew()
            except Exception as exc:  # noqa: BLE001 - released elsewhere, or storage down
                log.warning("run marker %s: lease not renewed (%s)", self.blob.blob_name, exc)
                return

    def confirm(self) -> bool:
        try:
            self.lease.renew()  # fails once the lease expired and the marker was removed
        except Exception:  # noqa: BLE001 - lost, or storage down: either way not proven held
            return False
        return not self.stop.is_set()

    def release(self) -> None:
        from azure.core.exceptions import HttpResponseError

        self.stop.set()
        with contextlib.suppress(HttpResponseError):
            self.blob.delete_blob(lease=self.lease)

    def abandon(self) -> None:
        from azure.core.exceptions import HttpResponseError

        self.stop.set()
        with contextlib.suppress(HttpResponseError):
            self.lease.release()


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """An exclusive OS lock on `path` (created if missing) for the block; waits for it.

    Opened read-only (flock(2) needs no write access) and created 0o666 less the umask: in
    a catalog shared by a group (umask 002), any member can lock a lock file another member
    created; a lock file left by any account never stands in the way."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _probe(folder: Path) -> None:
    """Create a file in `folder` and drop it: raises the OSError a write there meets. An
    unnamed file (O_TMPFILE, open(2)) where the file system supports it: never seen by a
    listing, gone even if the process is killed; else a named temp file removed at once."""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600))
        return
    except OSError as exc:
        if exc.errno not in {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}:
            raise
    fd, name = tempfile.mkstemp(prefix=".byod-probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def _move_or_copy(src: Path, dst: Path, move: bool) -> None:
    """Rename `src` to `dst` when `move` and both are on one file system, else copy it."""
    if move:
        try:
            os.rename(src, dst)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another device: copied below
                raise
    shutil.copyfile(src, dst)


def _new_or_empty(folder: str) -> bool:
    try:
        with os.scandir(folder) as entries:
            return not any(entries)
    except FileNotFoundError:
        return True
    except OSError:  # not a folder, not readable: never marked here (the run says why)
        return False


OUTPUT_MARKER_TEXT = (
    "Written by byod (Cloud Optimized GeoTIFFs or a STAC catalog). byod does not read this "
    "folder as input when a source it ingests holds it.\n"
)


def _atomic_local(dst: Path, write: Callable[[Path], object]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        write(tmp)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
