"""Azure Blob Storage access: credentials (read here and nowhere else), the region guard,
and short-lived read-only SAS signing.

Secrets live in `AzureAccess` only; its repr hides them, and nothing here logs them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from byod.errors import ConfigurationError

log = logging.getLogger(__name__)

REQUIRED_REGION = "westeurope"
# One storage request, retries included, fails after this many seconds (a stalled server).
REQUEST_TIMEOUT_S = 60.0
# Attempts after the first, for resets, time-outs and 408/429/5xx (within the time bound).
RETRY_TOTAL = 5


class AzureOptions(BaseModel):
    """What the configuration says about the storage account. Secrets are SecretStr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_string: SecretStr | None = None
    account_name: str | None = Field(
        default=None,
        description="Storage account name (credentials from the environment or a managed "
        "identity, unless given here).",
    )
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    region: str | None = Field(
        default=None,
        description="Region of the storage account, as declared; byod writes only to "
        f"{REQUIRED_REGION}.",
    )
    allow_any_region: bool = Field(  # the loud override of the region guard
        default=False,
        description=f"DANGER: write outside {REQUIRED_REGION} anyway (recorded in the report).",
    )
    request_timeout_s: float = Field(
        default=REQUEST_TIMEOUT_S,
        gt=0,
        description="Seconds one blob storage request may take, retries included, before "
        "the storage counts as unavailable.",
    )


class AzureConfigError(ConfigurationError):
    """Azure cannot be used as configured (no credentials, refused region, ...): exit 2."""


@dataclass(frozen=True)
class AzureAccess:
    """Resolved access to one storage account."""

    account_name: str
    account_url: str  # blob endpoint, no trailing slash, e.g. https://acct.blob.core.windows.net
    how: str  # which source the credentials came from (no secret in it)
    connection_string: str | None = field(default=None, repr=False)
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)
    token_credential: Any = field(default=None, repr=False)
    request_timeout_s: float = REQUEST_TIMEOUT_S

    @property
    def is_emulator(self) -> bool:
        return is_emulator_url(self.account_url)

    def blob_service(self) -> Any:
        """A BlobServiceClient whose requests back off in seconds, not minutes (about 2, 4, 8,
        16 s, or what the server's Retry-After says), retry 429 as well as resets,
        time-outs and 408/5xx, and fail within `request_timeout_s` each, retries included
        (`byod.azure_retry`)."""
        from azure.storage.blob import BlobServiceClient

        from byod.azure_retry import CONNECT_TIMEOUT_S, BoundedStorageRetry

        timeout = self.request_timeout_s
        options: dict[str, Any] = {
            "retry_policy": BoundedStorageRetry(
                timeout, RETRY_TOTAL, initial_backoff=0, increment_base=2, random_jitter_range=0.5
            ),
            "connection_timeout": min(CONNECT_TIMEOUT_S, timeout / 2),
            "read_timeout": timeout / 2,
        }
        if self.connection_string:
            return BlobServiceClient.from_connection_string(self.connection_string, **options)
        credential: Any = self.account_key and {
            "account_name": self.account_name, "account_key": self.account_key
        }  # fmt: skip
        credential = credential or self.sas_token or self.token_credential
        return BlobServiceClient(self.account_url, credential=credential, **options)


def is_emulator_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _parse_connection_string(text: str) -> dict[str, str]:
    parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    if "AccountName" not in parts and "BlobEndpoint" not in parts:
        raise AzureConfigError("the connection string names neither AccountName nor BlobEndpoint")
    return parts


def resolve_access(
    options: AzureOptions | None, environ: Mapping[str, str] | None = None
) -> AzureAccess:
    """The one place credentials are read, in this order: explicit options, then
    AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_KEY (or
    AZURE_STORAGE_ACCOUNT_KEY), AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_SAS_TOKEN, and last
    DefaultAzureCredential (managed identity, workload identity, az login) for the account.
    Raises AzureConfigError (a ConfigurationError) when none is usable."""
    options = options or AzureOptions()
    access = _resolve(options, os.environ if environ is None else environ)
    return replace(access, request_timeout_s=options.request_timeout_s)


def _resolve(options: AzureOptions, env: Mapping[str, str]) -> AzureAccess:
    secret = _reveal
    conn = secret(options.connection_string) or env.get("AZURE_STORAGE_CONNECTION_STRING")
    explicit_conn = bool(options.connection_string)
    if options.account_name and not explicit_conn:
        conn = None  # an explicit account beats a connection string from the environment
    if conn:
        parts = _parse_connection_string(conn)
        name = parts.get("AccountName") or _account_from_endpoint(parts["BlobEndpoint"])
        if not name:
            raise AzureConfigError("the connection string's BlobEndpoint names no account")
        protocol = parts.get("DefaultEndpointsProtocol", "https")
        suffix = parts.get("EndpointSuffix", "core.windows.net")
        url = parts.get("BlobEndpoint") or f"{protocol}://{name}.blob.{suffix}"
        how = "option:connection_string" if explicit_conn else "env:AZURE_STORAGE_CONNECTION_STRING"
        return AzureAccess(name, url.rstrip("/"), how, connection_string=conn)
    account = options.account_name or env.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise AzureConfigError(
            "no Azure credentials: give a connection string, or an account name with a key, "
            "a SAS token or a managed identity (AZURE_STORAGE_CONNECTION_STRING or "
            "AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN)"
        )
    url = f"https://{account}.blob.core.windows.net"
    key = secret(options.account_key) or env.get("AZURE_STORAGE_KEY") or env.get(
        "AZURE_STORAGE_ACCOUNT_KEY")  # fmt: skip
    if key:
        return AzureAccess(account, url, "account_key", account_key=key)
    sas = secret(options.sas_token) or env.get("AZURE_STORAGE_SAS_TOKEN")
    if sas:
        return AzureAccess(account, url, "sas_token", sas_token=sas.lstrip("?"))
    from azure.identity import DefaultAzureCredential

    credential = _AccountCredential(account, DefaultAzureCredential())
    return AzureAccess(account, url, "DefaultAzureCredential", token_credential=credential)


class _AccountCredential:
    """DefaultAzureCredential for one account, whose failure to find any credential (a chain
    of 'unavailable' lines, raised as ClientAuthenticationError at the first request) is one
    line naming the account and what to set: `AzureConfigError`, exit 2, not "access
    refused". The chain's own text goes to the debug log (`byod -vv`)."""

    def __init__(self, account: str, inner: Any) -> None:
        self.account, self.inner = account, inner

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._asked(lambda: self.inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return self._asked(lambda: self.inner.get_token_info(*scopes, options=options))

    def close(self) -> None:
        self.inner.close()

    def _asked(self, call: Callable[[], Any]) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return call()
        except ClientAuthenticationError as exc:
            log.debug("DefaultAzureCredential found no credential: %s", exc.message)
            raise AzureConfigError(
                f"no Azure credential found for storage account {self.account!r} (set "
                "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN "
                "with the account, or sign in: az login, a managed identity)"
            ) from None


def _account_from_endpoint(endpoint: str) -> str:
    """`https://acct.blob.core.windows.net/` -> acct; the emulator's `http://127.0.0.1:10000/
    devstoreaccount1` carries the account in its path."""
    url = urlsplit(endpoint)
    if is_emulator_url(endpoint):
        return url.path.strip("/").split("/")[0]
    return (url.hostname or "").split(".")[0]


def _reveal(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# --- region guard ----------------------------------------------------------------------

LocationLookup = Callable[[str], str | None]


@dataclass(frozen=True)
class RegionDecision:
    allowed: bool
    message: str
    overridden: bool = False


def check_region(
    access: AzureAccess, options: AzureOptions, lookup: LocationLookup | None = None
) -> RegionDecision:
    """Decide whether data may be written to the account: westeurope only.

    The emulator on loopback is always allowed. Otherwise the declared region must be
    westeurope and, when `lookup` can ask Azure Resource Manager, so must the real one.
    `allow_any_region` turns a refusal into a loud, recorded override.
    """
    if access.is_emulator:
        return RegionDecision(True, f"local emulator at {access.account_url}")
    declared = (options.region or "").replace(" ", "").lower()
    problem = None
    if not declared:
        problem = (f"the region of storage account {access.account_name!r} is not declared "
                   f"(--azure-region {REQUIRED_REGION})")  # fmt: skip
    elif declared != REQUIRED_REGION:
        problem = (f"storage account {access.account_name!r} is declared in {declared!r}; "
                   f"data must stay in {REQUIRED_REGION}")  # fmt: skip
    elif lookup is not None:
        actual = lookup(access.account_name)
        if actual is not None and actual.replace(" ", "").lower() != REQUIRED_REGION:
            problem = (f"storage account {access.account_name!r} is declared in {REQUIRED_REGION}"
                       f" but Azure says it is in {actual!r}")  # fmt: skip
    if problem is None:
        return RegionDecision(True, f"storage account {access.account_name!r} in {declared}")
    if options.allow_any_region:
        log.warning("REGION GUARD OVERRIDDEN: %s", problem)
        return RegionDecision(True, f"OVERRIDDEN: {problem}", overridden=True)
    return RegionDecision(False, problem)


def arm_location_lookup(environ: Mapping[str, str] | None = None) -> LocationLookup | None:
    """Ask Azure Resource Manager for an account's location, when management credentials are
    there (AZURE_SUBSCRIPTION_ID and an identity DefaultAzureCredential can use)."""
    env = os.environ if environ is None else environ
    subscription = env.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        return None

    def lookup(account_name: str) -> str | None:
        from azure.identity import DefaultAzureCredential
        from azure.mgmt.storage import StorageManagementClient

        client = StorageManagementClient(DefaultAzureCredential(), subscription)
        for account in client.storage_accounts.list():
            if account.name == account_name:
                return str(account.location)
        return None

    return lookup


# --- signing -------------------------------------------------------------------------


def blob_parts(access: AzureAccess, href: str) -> tuple[str, str] | None:
    """(container, blob) of an href in this account: https URL, az://container/blob or
    abfs(s)://container/blob (abfs(s)://container@ACCOUNT.dfs.core.windows.net/blob too)."""
    if href.startswith(("az://", "abfs://", "abfss://")):
        container, _, blob = href.split("://", 1)[1].partition("/")
        container, at, host = container.partition("@")
        if at and host.split(".", 1)[0] != access.account_name:
            return None  # another account's
        return container, blob
    prefix = access.account_url + "/"
    if href.split("?", 1)[0].startswith(prefix):
        container, _, blob = href.split("?", 1)[0][len(prefix) :].partition("/")
        return container, blob
    return None


def sign_href(access: AzureAccess, href: str, expiry: timedelta = timedelta(hours=1)) -> str:
    """A read-only SAS URL for one blob, valid for `expiry`. Hrefs of other hosts pass as is."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    parts = blob_parts(access, href)
    if parts is None:
        return href
    container, blob = parts
    start = datetime.now(UTC) - timedelta(minutes=5)  # tolerate clock skew
    until = datetime.now(UTC) + expiry
    permission = BlobSasPermissions(read=True)
    if access.account_key or access.connection_string:
        key = access.account_key or _parse_connection_string(access.connection_string or "").get(
            "AccountKey")  # fmt: skip
        if not key:
            raise AzureConfigError("signing needs an account key or an identity, not a SAS token")
        token = generate_blob_sas(access.account_name, container, blob, account_key=key,
                                  permission=permission, expiry=until, start=start)  # fmt: skip
    elif access.token_credential is not None:
        service = access.blob_service()
        delegation = service.get_user_delegation_key(start, until)
        token = generate_blob_sas(access.account_name, container, blob,
                                  user_delegation_key=delegation, permission=permission,
                                  expiry=until, start=start)  # fmt: skip
    else:
        raise AzureConfigError("signing needs an account key or an identity, not a SAS token")
    return f"{access.account_url}/{container}/{blob}?{token}"
