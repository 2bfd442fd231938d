"""Where the flows keep task results and cache records (byod_flows.results). The results
of a real Dask run in Azurite are tested in test_dask_cluster.py, on its cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from byod.config import IngestSettings
from byod.errors import ConfigurationError
from byod_flows import result_folder
from byod_flows.results import result_storage


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
