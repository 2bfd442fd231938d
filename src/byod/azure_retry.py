"""The retry policy of byod's blob clients: the Azure SDK's storage policy, plus 429,
`Retry-After`, and a time bound on each request.

Why not the SDK's policy as it is: `azure.storage.blob.ExponentialRetry` retries 408, 5xx
(not 501/505) and connection errors, but not 429 Too Many Requests, and it ignores
`Retry-After` (PITFALLS; `is_retry` in azure-storage-blob's `_shared/policies.py`). Its
retries also have no time bound: with the SDK's 60 s read time-out, a server that accepts
connections and never answers held one request for 263 s. Why not azure-core's generic
`RetryPolicy` (which knows 429 and Retry-After): the storage pipeline reads the storage
policy's `location_mode` from every response.

Imported only when a blob client is built (the CLI starts without the Azure SDK).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.storage.blob import ExponentialRetry
from azure.storage.blob._shared.policies import is_checksum_retry, is_retry, retry_hook

log = logging.getLogger(__name__)

# RFC 6585 section 4: 429 may carry Retry-After; Azure Storage sends 503 Server Busy with it.
THROTTLED = 429
# A connection that cannot be made within this is not coming (the SDK's own default is 20 s).
CONNECT_TIMEOUT_S = 20.0
# azure-core parses Retry-After (seconds or an HTTP date) and its -ms variants.
_RETRY_AFTER = RetryPolicy()


class BoundedStorageRetry(ExponentialRetry):
    """Exponential back-off with jitter (`initial_backoff` + `increment_base` ** n seconds),
    429 retried like 503, a server's `Retry-After` obeyed, and every request, its retries
    included, bounded by `request_timeout_s` of wall time.

    An attempt may wait for the server (connect, each read) half of that bound, so a stalled
    connection is retried at least once on a fresh one, and never longer than what is left
    of it, so a stalled server fails the request within the bound; a retry whose wait would
    end after the bound is not made. The last response (an HTTP error) or the last exception
    (azure-core's `ServiceRequestError`/`ServiceResponseError`) then reaches the caller.
    """

    def __init__(self, request_timeout_s: float, retry_total: int, **kwargs: Any) -> None:
        super().__init__(retry_total=retry_total, **kwargs)
        self.request_timeout_s = request_timeout_s

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        # The loop of StorageRetryPolicy.send, with the deadline and 429 added.
        settings = self.configure_retries(request)
        deadline = time.monotonic() + self.request_timeout_s
        options = request.context.options
        attempt = self.request_timeout_s / 2
        connect = min(options.get("connection_timeout") or CONNECT_TIMEOUT_S, attempt)
        read = min(options.get("read_timeout") or attempt, attempt)
        while True:
            left = deadline - time.monotonic()
            options["connection_timeout"] = max(0.001, min(connect, left))
            options["read_timeout"] = max(0.001, min(read, left))
            try:
                response = self.next.send(request)
            except ClientAuthenticationError:
                raise  # a refused credential does not get better by asking again
            except AzureError as err:
                if not self._again(settings, request, deadline, error=err):
                    raise
                continue
            status = response.http_response.status_code
            retryable = status == THROTTLED or is_retry(response, settings["mode"])
            if (retryable or is_checksum_retry(response)) and self._again(
                settings, request, deadline, response=response
            ):
                continue
            break
        if settings["history"]:
            response.context["history"] = settings["history"]
        response.http_response.location_mode = settings["mode"]
        return response

    @staticmethod
    def sleep_for(seconds: float, request: PipelineRequest[Any]) -> None:
        transport = request.context.transport
        (transport.sleep if transport is not None else time.sleep)(seconds)

    def _again(
        self,
        settings: dict[str, Any],
        request: PipelineRequest[Any],
        deadline: float,
        response: PipelineResponse[Any, Any] | None = None,
        error: AzureError | None = None,
    ) -> bool:
        """Count the failure; wait and say True when another attempt fits in the bound."""
        http_response = response.http_response if response is not None else None
        if not self.increment(settings, request.http_request, http_response, error):
            return False
        wait = _RETRY_AFTER.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = self.get_backoff_time(settings)
        if time.monotonic() + wait >= deadline:
            log.info("storage request given up: its %g s bound would pass", self.request_timeout_s)
            return False
        what = f"HTTP {http_response.status_code}" if http_response is not None else (
            type(error).__name__)  # fmt: skip
        log.info("storage request failed (%s): retry %d in %.1f s", what, settings["count"], wait)
        retry_hook(settings, request=request.http_request, response=http_response, error=error)
        if wait > 0:
            self.sleep_for(wait, request)
        return True
