"""Faults review RS found in the structure refactor (issue 12): locations parsed once at every
edge, one reading of a catalog location, stores that never make a caller ask their kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_manners import invoke, one_error_line

# --- RS 2: Azure container names refused before anything is opened ----------------------------

# Azure's "Naming and Referencing Containers, Blobs, and Metadata": 3-63 characters,
# lower-case letters, digits, single hyphens, starting and ending with a letter or digit.
BAD_CONTAINERS = ["ab", "Bad_Name", "a--b", "-abc", "abc-", "x" * 64, "UPPER"]


@pytest.mark.parametrize("name", BAD_CONTAINERS)
@pytest.mark.parametrize("where", ["SOURCE", "--target", "--catalog"])
def test_a_container_name_azure_refuses_is_a_usage_error(
    azure_env: str, tmp_path: Path, name: str, where: str
) -> None:
    places = {"SOURCE": str(tmp_path), "--target": f"az://{azure_env}t/cogs",
              "--catalog": f"az://{azure_env}c/stac"}  # fmt: skip
    places[where] = f"az://{name}/x"
    result = invoke("ingest", places["SOURCE"], "--target", places["--target"], "--catalog",
                    places["--catalog"], "--quiet")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"'{where}'" in line and repr(name) in line and "3-63" in line, line


@pytest.mark.parametrize("command", ["search", "validate", "browse", "export"])
@pytest.mark.parametrize(
    "url",
    ["az://ab/stac", "https://acct.blob.core.windows.net/Bad_Name/stac/catalog.json",
     "http://127.0.0.1:10000/devstoreaccount1/a--b/stac"],
)  # fmt: skip
def test_a_catalog_in_a_container_azure_refuses_is_a_usage_error(
    azure_env: str, tmp_path: Path, command: str, url: str
) -> None:
    extra = ["--format", "ndjson", "--out", str(tmp_path / "o")] if command == "export" else []
    result = invoke(command, url, *extra)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "'CATALOG'" in line and "3-63" in line, line
    assert not (tmp_path / "o").exists()


def test_the_container_names_azure_allows_pass() -> None:
    from byod.locations import parse_location

    for name in ("abc", "a-b-c", "0ab", "x" * 63, "$root", "$web"):
        assert parse_location(f"az://{name}/p").container == name
    assert parse_location("https://acct.blob.core.windows.net/stac/c.json").container == "stac"
    assert parse_location("http://example.org/A_B/c.json").container is None


# --- RS 3: one reading of a catalog location -----------------------------------------------------


@pytest.fixture
def blob_catalog(azure_env: str, azurite: str, tmp_path: Path) -> str:
    """An az:// catalog of one item, ingested into Azurite; returns its https URL."""
    from tests.conftest import ramp, write_geotiff

    write_geotiff(tmp_path / "src" / "a_20240101.tif", ramp(16, 16), crs="EPSG:32633",
                  transform=(10, 0, 500000, 0, -10, 5000000))  # fmt: skip
    done = invoke("ingest", str(tmp_path / "src"), "--target", f"az://{azure_env}d/cogs",
                  "--catalog", f"az://{azure_env}c/stac", "--quiet")  # fmt: skip
    assert done.exit_code == 0, done.output
    endpoint = azurite.split("BlobEndpoint=", 1)[1].split(";", 1)[0]
    return f"{endpoint}/{azure_env}c/stac"


def test_validate_reads_a_catalog_as_search_does(blob_catalog: str) -> None:
    import json

    for url in (blob_catalog, f"{blob_catalog}/catalog.json"):
        found = invoke("search", url, "--json")
        assert found.exit_code == 0, found.output
        assert len(json.loads(found.output)["features"]) == 1
        checked = invoke("validate", url, "--json")
        assert checked.exit_code == 0, checked.output
        # root, collection, month sub-catalog, item: counted independently of byod
        assert json.loads(checked.output) == {"checked": 4, "invalid": []}


@pytest.mark.parametrize("kind", ["local", "blob"])
def test_validate_where_there_is_no_catalog_is_a_usage_error(
    azure_env: str, tmp_path: Path, kind: str
) -> None:
    from byod.errors import ConfigurationError
    from byod.validate import validate_catalog

    where = str(tmp_path / "nothing") if kind == "local" else f"az://{azure_env}none/stac"
    result = invoke("validate", where)
    assert result.exit_code == 2, result.output
    assert "no catalog there" in one_error_line(result)
    with pytest.raises(ConfigurationError, match="no catalog there"):
        validate_catalog(where)
