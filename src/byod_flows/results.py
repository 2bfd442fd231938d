"""Where the flows' task results and cache records go: a folder, or an az:// prefix in the
blob target's account (`byod_flows.azure_results`, Prefect's own Azure integration), so that
every worker, on any machine, and a retried flow find them without a shared folder."""

from __future__ import annotations

from pathlib import Path

from prefect.filesystems import WritableFileSystem

from byod.azure import AzureOptions
from byod.config import IngestSettings
from byod.errors import ConfigurationError

LOCAL_FOLDER = ".byod-prefect-results"  # beside a local catalog
BLOB_FOLDER = "_prefect-results"  # beside an az:// target or catalog, under its prefix


def result_folder(settings: IngestSettings, results: str | None) -> str:
    """Where task results and cache records go, as a folder or URL: `results`, else
    `.byod-prefect-results` next to a local catalog (every process worker of the machine
    finds it), else `_prefect-results` under the az:// target (where the workers store the
    COGs, so their credentials may write there), or under the catalog when the target is
    local."""
    if results:
        return results
    if "://" not in settings.catalog:
        return str(Path(settings.catalog).resolve().parent / LOCAL_FOLDER)
    base = settings.target if settings.target.startswith("az://") else settings.catalog
    return f"{base.rstrip('/')}/{BLOB_FOLDER}"


def result_storage(location: str, options: AzureOptions | None) -> Path | WritableFileSystem:
    """The `result_storage` of the tasks for `location` (`result_folder`): a folder, or a
    saved `AzureBlobStorageContainer` for an az:// URL (`blob_results`). Raises
    ConfigurationError for another URL scheme (only local folders and az:// are supported)."""
    if location.startswith("az://"):
        try:
            from byod_flows.azure_results import blob_results
        except ImportError as exc:
            raise ConfigurationError(
                f"task results in {location} need prefect-azure ({exc}): install byod with "
                "its `flows` extra, or give `results` a folder every worker sees"
            ) from exc
        return blob_results(location, options)
    if "://" in location:
        raise ConfigurationError(
            f"results={location!r}: task results go to a local folder or an az:// URL"
        )
    return Path(location)
