"""byod's error family: what can end a run, and how a run that ends says why.

- `ConfigurationError` (usage and configuration; exit 2): the run cannot start as asked
  (bad option, missing source folder, no credentials, refused region). Nothing is written.
- `StorageUnavailable` (exit 2): a store could not be used at all: unreachable, still failing
  after its retries (resets, time-outs, 429/5xx), or out of space. Raised as itself only
  while nothing has been written; after that it is the cause of a `RunFailed`.
- `RunFailed` (exit 3): the run stopped midway; its report says what was done and what not.
- `RunInterrupted` (exit 128 + the signal: 130 for SIGINT, 143 for SIGTERM): the run was
  asked to stop; what was stored is published, the rest is `not_done` in its report.
- `RejectedInput`: one input is rejected; the pipeline turns it into a report row, it never
  ends a run (exit 1 when any input was rejected).

The CLI maps the family to exit codes and one-line messages in one place (`byod.cli`); the
Prefect flows use the same split to choose what to retry (storage) and what fails fast.
This module imports nothing heavy: the CLI loads it before anything else.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from byod.reasons import Reason
    from byod.report import Report

# errno values that mean the storage itself is unusable, not one file: a full disk, a quota,
# a read-only file system, a folder byod may not write (errno(3); byod writes only below the
# catalog and target roots it creates or is given, so a refusal there is the store's).
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class ByodError(Exception):
    """Base of every error byod raises on purpose. `report` is the run's report so far, when
    the run got far enough to have one (the CLI writes it even for a failed run)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.report: Report | None = None

    def __str__(self) -> str:
        return self.message


class ConfigurationError(ByodError, ValueError):
    """The run cannot start as configured (usage or configuration); nothing has been written."""


class StorageUnavailable(ByodError):
    """A store (a local folder or a blob container) could not be used: unreachable, failing
    after every retry, or full. `where` names the store or step, never a secret."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class RunFailed(ByodError):
    """The run stopped after it had written something: the report lists what was done and
    what was not (rows with status `not_done`). `cause` is the error that stopped it."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class Interrupted(BaseException):
    """Raised in the main thread by byod's SIGINT/SIGTERM handler (`pipeline.ingest`).

    A BaseException, like KeyboardInterrupt, so no `except Exception` of a step swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class RunInterrupted(ByodError):
    """The run stopped on a signal (`signum`): what was stored before it was published, the
    rest is `not_done`. Exit status 128 + `signum` (the shell's convention: 130, 143)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class RejectedInput(ByodError):
    """Raised inside one input's work to reject it; the pipeline turns it into a report row."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[RejectedInput], tuple[Reason, str]]:
        # Pickled across worker processes and Prefect task states with both arguments.
        return (type(self), (self.reason, self.message))


def storage_failure(exc: BaseException, where: str) -> StorageUnavailable | None:
    """`exc` as a `StorageUnavailable` when it says the store itself is unusable, else None.

    Unusable means: Azure could not be reached or kept failing after the retries of
    `byod.azure` (connection errors, resets, time-outs, and HTTP 408/429/500/502/503/504, as
    the Azure SDK and RFC 9110 class them), authentication was refused (401/403), or a
    local write failed for lack of space or permission to write the file system or folder
    (ENOSPC, EDQUOT, EROFS, EACCES, EPERM). Any other error (a missing blob, a bad file) is
    not the store's fault; callers that read an input classify its errors themselves (an
    input byod may not read is that input's rejection, `planning._plan`).
    The message is one line and carries no URL query (a SAS) and no key.
    """
    if isinstance(exc, StorageUnavailable):
        return exc
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        name = f" ({exc.filename})" if exc.filename else ""
        return StorageUnavailable(f"{where}: {exc.strerror or exc}{name}", where)
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StorageUnavailable(f"{where}: storage unreachable ({_kind(exc)})", where)
    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in {401, 403}
    ):
        return StorageUnavailable(f"{where}: access refused (HTTP {exc.status_code})", where)
    if isinstance(exc, HttpResponseError) and exc.status_code in {408, 429, 500, 502, 503, 504}:
        reason = exc.reason or ""
        return StorageUnavailable(
            f"{where}: storage failing after retries (HTTP {exc.status_code} {reason})".rstrip(),
            where,
        )
    return None


@contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """Let an error through as `StorageUnavailable` when `storage_failure` says the store
    itself failed; byod's own errors and any other error pass unchanged."""
    try:
        yield
    except ByodError:
        raise
    except Exception as exc:
        failure = storage_failure(exc, where)
        if failure is None:
            raise
        raise failure from exc


def _kind(exc: BaseException) -> str:
    """The root cause's class, e.g. `ConnectionResetError` or `ReadTimeoutError`: enough to
    tell an outage from a stall without the SDK's multi-line message (which holds URLs)."""
    inner: BaseException = exc
    seen = set()
    while True:
        nxt = getattr(inner, "inner_exception", None) or inner.__cause__ or inner.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        inner = nxt
    return type(inner).__name__ if inner is not exc else type(exc).__name__
