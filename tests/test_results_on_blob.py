"""Where the flows keep task results and cache records (byod_flows.results). The results
of a real Dask run in Azurite are tested in test_dask_cluster.py, on its cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from prefect.testing.utilities import prefect_test_harness

from byod.azure import AzureConfigError, AzureOptions
from byod.config import IngestSettings
from byod.errors import ConfigurationError
from byod_flows import result_folder
from byod_flows.azure_results import WorkerAzureCredentials
from byod_flows.results import result_storage
from tests.conftest import AZURITE_KEY


def test_where_results_go(tmp_path: Path) -> None:
    """A local catalog keeps its folder beside it; an az:// catalog puts them under the az://
    target (or under itself when the target is local); `results` overrides both."""
    local = IngestSettings(source=str(tmp_path), catalog=str(tmp_path / "cat"),
                           target="az://cogs/x")  # fmt: skip
    assert result_folder(local, None) == str(tmp_path / ".byod-prefect-results")
    blob = IngestSettings(source=str(tmp_path), catalog="az://stac/c", target="az://cogs/x/")
    assert result_folder(blob, None) == "az://cogs/x/_prefect-results"
    mixed = IngestSettings(source=str(tmp_path), catalog="az://stac/c",
                           target=str(tmp_path / "data"))  # fmt: skip
    assert result_folder(mixed, None) == "az://stac/c/_prefect-results"
    assert result_folder(blob, str(tmp_path / "r")) == str(tmp_path / "r")
    assert result_storage(str(tmp_path / "r"), None) == tmp_path / "r"
    with pytest.raises(ConfigurationError, match="a local folder or an az:// URL"):
        result_storage("s3://bucket/results", None)


# prefect-azure's read_path uses the SDK's deprecated download_to_stream.
@pytest.mark.filterwarnings("ignore:download_to_stream is deprecated:DeprecationWarning")
def test_the_saved_results_block_holds_no_secret(
    azure_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials given as options reach the block of this process only: the document saved
    in the Prefect API has the container, folder and account URL, and a block loaded from
    it resolves credentials where it is used (none there: refused, naming what to set; the
    environment's: it reads what the first one wrote to Azurite)."""
    from prefect.blocks.core import Block
    from prefect.client.orchestration import get_client

    connection = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    container = f"res-{azure_env}"
    with BlobServiceClient.from_connection_string(connection) as service:
        service.create_container(container)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    with prefect_test_harness(server_startup_timeout=60):
        block = result_storage(f"az://{container}/p/_prefect-results",
                               AzureOptions(connection_string=connection))  # fmt: skip
        block.write_path("k", b"written with the options")  # type: ignore[union-attr]
        document_id = block._block_document_id  # type: ignore[union-attr]
        with get_client(sync_client=True) as client:
            document = client.read_block_document(document_id, include_secrets=True)
        saved = json.dumps(document.model_dump(mode="json"))
        assert container in saved and "p/_prefect-results" in saved
        assert AZURITE_KEY not in saved and "AccountKey" not in saved
        # As Prefect loads a result's storage by the id a result record holds.
        loaded = Block._from_block_document(document)
        assert isinstance(loaded.credentials, WorkerAzureCredentials)
        with pytest.raises(AzureConfigError, match="no Azure credentials"):
            loaded.read_path("k")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        assert loaded.read_path("k") == b"written with the options"
    with BlobServiceClient.from_connection_string(connection) as service:
        blob = service.get_blob_client(container, "p/_prefect-results/k")
        assert blob.download_blob().readall() == b"written with the options"


def test_credentials_of_another_account_are_refused(azure_env: str) -> None:
    """The worker's credentials name another account than the block's: refused, naming
    both, not a write to the wrong account."""
    credentials = WorkerAzureCredentials(account_url="https://other.blob.core.windows.net")
    with pytest.raises(AzureConfigError, match=r"not https://other\.blob\.core\.windows\.net"):
        credentials.get_blob_client("c", "k")
