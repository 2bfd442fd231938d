"""The three stores of a run (source, catalog, target), opened once at the edge and passed in.

Opening them resolves the Azure credentials (`azure.resolve_access`) and, when planning, asks
whether the account's region is allowed; both are done once per run in the process that
plans it. The `RunStores` object travels with the run (`RunContext`) to threads, tasks and
Dask workers: pickled, it drops its clients and credentials (an Azure client does not pickle,
and a secret must not land in an orchestrator's result files), and a copy reopens them the
first time it is used, once per process for all the copies of one run.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast, overload

from byod.azure import (
    AzureAccess,
    AzureConfigError,
    AzureOptions,
    arm_location_lookup,
    resolve_access,
)
from byod.azure import check_region as region_decision
from byod.config import IngestSettings
from byod.errors import ConfigurationError
from byod.storage import Store, is_blob_url, open_store

# Runs whose stores this process opened, by `RunStores.token`: the copies of a run that a
# Dask worker unpickles share one set of clients. Bounded: a long-lived worker serves many runs.
_OPENED: OrderedDict[str, OpenStores] = OrderedDict()
_OPENED_MAX = 8
_LOCK = threading.RLock()
T = TypeVar("T")


@dataclass(frozen=True)
class OpenStores:
    """The opened stores of a run and the region guard's verdict."""

    source: Store | None  # None for a local source folder (walked directly)
    catalog: Store
    target: Store
    decision: str | None = None  # the region guard's verdict, for the report
    overridden: bool = False


class _Opened(Generic[T]):
    """A read-only attribute of `RunStores`: the same field of its `OpenStores`, opened on
    first use."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, stores: None, owner: type) -> _Opened[T]: ...
    @overload
    def __get__(self, stores: RunStores, owner: type | None = None) -> T: ...
    def __get__(self, stores: RunStores | None, owner: type | None = None) -> _Opened[T] | T:
        if stores is None:  # looked up on the class (help(), inspection)
            return self
        return cast(T, getattr(stores._get(), self.name))

    def __set__(self, stores: RunStores, value: object) -> None:
        raise AttributeError(f"RunStores.{self.name} is read-only")


class RunStores:
    """The stores of one run, opened at most once per process (see the module docstring).

    `RunStores.open(settings)` opens them now, with the region check (planning);
    `RunStores(settings)` opens them when first used, without it (the check was made when the
    run was planned). Either raises `ConfigurationError` for a source that is not a folder or
    a container that does not exist, missing credentials, a refused region, or an unsupported
    URL scheme; nothing is written."""

    def __init__(self, settings: IngestSettings, *, token: str | None = None) -> None:
        self.settings = settings
        self.token = token or uuid.uuid4().hex
        self._opened: OpenStores | None = None

    @classmethod
    def open(cls, settings: IngestSettings) -> RunStores:
        """The run's stores, opened now with the region check (planning); raises as
        `open_stores` does."""
        stores = cls(settings)
        stores._opened = _remember(stores.token, open_stores(settings, check_region=True))
        return stores

    def _get(self) -> OpenStores:
        if self._opened is None:
            with _LOCK:  # threads of one process (an orchestrator's tasks) open them once
                opened = _OPENED.get(self.token)
                if opened is None:
                    opened = _remember(self.token, open_stores(self.settings, check_region=False))
                self._opened = opened
        return self._opened

    source = _Opened[Store | None]()
    catalog = _Opened[Store]()
    target = _Opened[Store]()
    decision = _Opened[str | None]()
    overridden = _Opened[bool]()

    def __repr__(self) -> str:
        return f"RunStores({self.token[:8]}, opened={self._opened is not None})"

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "token": self.token}  # no client, no credential

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings, self.token = state["settings"], state["token"]
        self._opened = None


def _remember(token: str, opened: OpenStores) -> OpenStores:
    with _LOCK:
        _OPENED[token] = opened
        while len(_OPENED) > _OPENED_MAX:
            _OPENED.popitem(last=False)
    return opened


def open_stores(settings: IngestSettings, *, check_region: bool = True) -> OpenStores:
    """Check the source, credentials and region, and open the stores; writes nothing.

    `check_region=False` skips the region guard: it may ask Azure Resource Manager, which is
    slow to repeat, and a run's later steps were checked when it was planned."""
    urls = (settings.source, settings.target, settings.catalog)
    if not any(is_blob_url(u) for u in urls):
        source = Path(settings.source)
        if source.is_file():  # one raster given: its folder is what byod walks
            raise ConfigurationError(f"{source}: source is not a folder; byod ingests a folder "
                                     f"(every raster in it): give {source.parent}")  # fmt: skip
        if not source.is_dir():
            raise ConfigurationError(f"{source}: source is not a folder")
        return OpenStores(None, open_store(settings.catalog), open_store(settings.target))
    options = settings.azure or AzureOptions()
    try:
        access = resolve_access(options)
    except AzureConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    decision = None
    if check_region and (is_blob_url(settings.target) or is_blob_url(settings.catalog)):
        decision = region_decision(access, options, arm_location_lookup())
        if not decision.allowed:
            raise ConfigurationError(f"region guard: {decision.message}; nothing was written")
    return OpenStores(
        _open_source(settings.source, access),
        _open(settings.catalog, access),
        _open(settings.target, access),
        decision.message if decision else None,
        bool(decision and decision.overridden),
    )


def _open(url: str, access: AzureAccess) -> Store:
    try:
        return open_store(url, access)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _open_source(url: str, access: AzureAccess) -> Store | None:
    if not is_blob_url(url):
        if not Path(url).is_dir():
            raise ConfigurationError(f"{url}: source is not a folder")
        return None
    store = _open(url, access)
    if not store.root_exists():
        raise ConfigurationError(f"{url}: container {url.split('://', 1)[1].split('/')[0]!r} "
                                 "does not exist")  # fmt: skip
    return store
