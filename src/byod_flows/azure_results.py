"""Task results and cache records in the blob storage of an az:// target through Prefect's
own Azure integration (prefect-azure, in the `flows` extra): an `AzureBlobStorageContainer` block
whose credentials are resolved on each worker, so that every Dask worker, on any machine,
and a retried flow find them without a shared folder.

Prefect 3.8 takes a storage block as a task's `result_storage` only once saved in its API
(`Task.__init__` raises TypeError for an unsaved one), and a saved block's fields are in the
API's database. So the saved block holds no secret: the container, a folder in it and the
account's URL. Its credentials (`WorkerAzureCredentials`) are resolved where they are used,
as byod resolves them (`byod.azure.resolve_access`: the run's own `settings.azure`, kept out
of the saved document, then the process's environment, then DefaultAzureCredential).
"""

from __future__ import annotations

import hashlib
from typing import Any

from prefect_azure.blob_storage import AzureBlobStorageContainer
from prefect_azure.credentials import AzureBlobStorageCredentials
from pydantic import PrivateAttr

from byod.azure import AzureAccess, AzureConfigError, AzureOptions, resolve_access


class WorkerAzureCredentials(AzureBlobStorageCredentials):
    """prefect-azure's credentials for the storage account at `account_url`, holding no
    secret: each client is made from the credentials byod resolves in the process that uses
    it (`resolve_access`: the options given at construction, which a saved block document
    leaves out, else AZURE_STORAGE_CONNECTION_STRING, an account key or SAS token from the
    environment, else DefaultAzureCredential). Raises AzureConfigError when none is found
    or they are for another account than `account_url`."""

    _block_type_name = "byod Azure Storage Credentials"
    _block_type_slug = "byod-azure-storage-credentials"
    _options: AzureOptions | None = PrivateAttr(default=None)

    def __init__(self, *, options: AzureOptions | None = None, **data: Any) -> None:
        super().__init__(**data)
        self._options = options

    def _access(self) -> AzureAccess:
        access = resolve_access(self._options)
        if access.account_url != (self.account_url or "").rstrip("/"):
            raise AzureConfigError(
                f"the Azure credentials here ({access.how}) are for {access.account_url}, "
                f"not {self.account_url}, where this run keeps its task results"
            )
        return access

    def _client(self, kind: str, *names: str) -> _OwnCredential:
        """An async client of azure.storage.blob.aio (`kind`: BlobServiceClient,
        ContainerClient, BlobClient; `names`: its container and blob) with byod's time
        bounds, which closes a credential made for it with itself: one client per read or
        write, so concurrent tasks sharing this block never share (or close) a credential."""
        from azure.storage.blob import aio

        access = self._access()
        cls = getattr(aio, kind)
        timeout = access.request_timeout_s
        options: dict[str, Any] = {"connection_timeout": min(20.0, timeout / 2),
                                   "read_timeout": timeout / 2}  # fmt: skip
        if access.connection_string:
            client = cls.from_connection_string(access.connection_string, *names, **options)
            return _OwnCredential(client, None)
        made = None
        if access.account_key:
            credential: Any = {"account_name": access.account_name,
                               "account_key": access.account_key}  # fmt: skip
        elif access.sas_token:
            credential = access.sas_token
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = made = DefaultAzureCredential()
        return _OwnCredential(cls(access.account_url, *names, credential=credential, **options),
                              made)  # fmt: skip

    def get_client(self) -> Any:
        """An async BlobServiceClient of the account, to use with `async with`."""
        return self._client("BlobServiceClient")

    def get_blob_client(self, container: str, blob: str) -> Any:
        """An async BlobClient of `blob` in `container`, to use with `async with`."""
        return self._client("BlobClient", container, blob)

    def get_container_client(self, container: str) -> Any:
        """An async ContainerClient of `container`, to use with `async with`."""
        return self._client("ContainerClient", container)


class _OwnCredential:
    """An async storage client as a context manager that also closes the credential made
    for it (a DefaultAzureCredential, which holds its own HTTP session)."""

    def __init__(self, client: Any, credential: Any) -> None:
        self.client, self.credential = client, credential

    async def __aenter__(self) -> Any:
        return await self.client.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.client.__aexit__(*exc)
        finally:
            if self.credential is not None:
                await self.credential.close()


def _blob_location(url: str) -> tuple[str, str]:
    """(container, folder) of az://container/prefix."""
    container, _, prefix = url.split("://", 1)[1].partition("/")
    if not container:
        raise AzureConfigError(f"{url}: no container")
    return container, prefix.strip("/")


def blob_results(url: str, options: AzureOptions | None) -> AzureBlobStorageContainer:
    """The storage block for results under az://container/prefix, saved in the Prefect API
    (under a name derived from the account, container and folder; overwritten each run),
    without any secret. Raises AzureConfigError when no Azure credentials are found here."""
    container, folder = _blob_location(url)
    access = resolve_access(options)
    credentials = WorkerAzureCredentials(account_url=access.account_url, options=options)
    block = AzureBlobStorageContainer(container_name=container, credentials=credentials,
                                      base_folder=folder or None)  # fmt: skip
    place = f"{access.account_url}/{container}/{folder}"
    name = "byod-results-" + hashlib.sha256(place.encode()).hexdigest()[:16]
    WorkerAzureCredentials.register_type_and_schema()  # nested: not registered by its parent
    block.save(name, overwrite=True)
    return block
