"""Azure Blob Storage, end to end against Azurite (no mocked storage): blob source, blob
target and catalog, private containers, signing, incremental re-runs, secrets."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from azure.storage.blob import BlobServiceClient
from rasterio.transform import from_origin
from rasterio.windows import Window
from typer.testing import CliRunner

import byod
from byod.azure import AzureOptions, resolve_access
from byod.cli import app
from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.report import Report, Status
from byod.storage import open_store
from tests.conftest import AZURITE_KEY, ramp, write_geotiff
from tests.readback import read_items


def _upload_rasters(conn: str, container: str, folder: Path) -> dict[str, np.ndarray]:
    """Write two real GeoTIFFs (and a world-file PNG) and upload them under projectA/."""
    data = {"projectA/a_20240101.tif": ramp(64, 64), "projectA/sub/b_20240102.tif": ramp(48, 32)}
    service = BlobServiceClient.from_connection_string(conn)
    service.create_container(container)
    for key, array in data.items():
        path = write_geotiff(folder / key, array, crs="EPSG:32633",
                             transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
        service.get_blob_client(container, key).upload_blob(path.read_bytes())
    return data


def _ingest(uid: str, **overrides: object) -> Report:
    options = {
        "source": f"az://uploads-{uid}/projectA",
        "target": f"az://cogs-{uid}",
        "catalog": f"az://stac-{uid}",
        "collection": "project-a",
        "workers": 2,
        **overrides,
    }
    return ingest(IngestSettings(**options))  # type: ignore[arg-type]


@pytest.fixture
def ingested(azure_env: str, tmp_path: Path) -> tuple[str, str, dict[str, np.ndarray], Report]:
    import os

    conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    data = _upload_rasters(conn, f"uploads-{azure_env}", tmp_path / "local")
    return azure_env, conn, data, _ingest(azure_env)


def test_blob_to_blob_ingest_publishes_a_readable_catalog(
    ingested: tuple[str, str, dict[str, np.ndarray], Report],
) -> None:
    uid, conn, data, report = ingested
    assert {r.input: r.status for r in report.rows} == {
        "a_20240101.tif": Status.INGESTED, "sub/b_20240102.tif": Status.INGESTED,
    }  # fmt: skip
    assert report.storage is not None and "emulator" in report.storage
    access = resolve_access(AzureOptions())
    endpoint = access.account_url

    # Containers are private: an anonymous read is refused.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{endpoint}/stac-{uid}/catalog.json", timeout=10)

    catalog = pystac.Catalog.from_file(
        f"{endpoint}/stac-{uid}/catalog.json", stac_io=byod.SignedStacIO(access)
    )
    items = list(catalog.get_items(recursive=True))
    assert sorted(i.id for i in items) == ["a_20240101", "sub-b_20240102"]
    for item in items:
        for asset in item.assets.values():
            assert asset.href.startswith(f"{endpoint}/cogs-{uid}/project-a/")
            assert "sig=" not in asset.href  # never a signed URL in the catalog
            with urllib.request.urlopen(byod.sign(asset.href), timeout=10) as response:
                assert response.status == 200

    # A signed COG is read directly by GDAL, window by window.
    item = next(i for i in items if i.id == "a_20240101")
    with rasterio.open(byod.sign(item.assets["data"].href)) as src:
        window = src.read(1, window=Window(8, 16, 20, 10))
    np.testing.assert_array_equal(window, data["projectA/a_20240101.tif"][0, 16:26, 8:28])

    # Uploads carry content type, cache control and the fingerprint as metadata.
    cog_key = item.assets["data"].href.removeprefix(f"{endpoint}/cogs-{uid}/")
    blob = BlobServiceClient.from_connection_string(conn).get_blob_client(
        f"cogs-{uid}", cog_key
    ).get_blob_properties()  # fmt: skip
    assert blob.content_settings.content_type == pystac.MediaType.COG
    assert blob.content_settings.cache_control == "public, max-age=3600"
    assert blob.metadata["byod_fingerprint"] == item.properties["byod:fingerprint"]


def test_rerun_uploads_nothing_and_a_changed_input_is_replaced(
    ingested: tuple[str, str, dict[str, np.ndarray], Report], tmp_path: Path
) -> None:
    uid, conn, _, _ = ingested
    cogs = BlobServiceClient.from_connection_string(conn).get_container_client(f"cogs-{uid}")
    before = {b.name: b.etag for b in cogs.list_blobs()}
    old_a, old_b = cog_keys(uid, "a_20240101"), cog_keys(uid, "sub-b_20240102")

    again = _ingest(uid)
    assert {r.status for r in again.rows} == {Status.UNCHANGED}
    assert {b.name: b.etag for b in cogs.list_blobs()} == before

    changed = write_geotiff(tmp_path / "new.tif", ramp(64, 64) * 3, crs="EPSG:32633",
                            transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
    BlobServiceClient.from_connection_string(conn).get_blob_client(
        f"uploads-{uid}", "projectA/a_20240101.tif"
    ).upload_blob(changed.read_bytes(), overwrite=True)  # fmt: skip
    third = _ingest(uid)
    assert {r.input: r.status for r in third.rows} == {
        "a_20240101.tif": Status.REPLACED, "sub/b_20240102.tif": Status.UNCHANGED,
    }  # fmt: skip
    after = {b.name: b.etag for b in cogs.list_blobs()}
    # The unchanged input's COG is untouched; the changed one went to a new key and the old
    # COG was deleted once the catalog pointed at the new one.
    assert cog_keys(uid, "sub-b_20240102") == old_b and after[old_b] == before[old_b]
    new_a = cog_keys(uid, "a_20240101")
    assert new_a != old_a and old_a not in after and new_a in after


def cog_keys(uid: str, item_id: str) -> str:
    """The blob name of an item's COG, as its published item (read back) points at it."""
    access = resolve_access(AzureOptions())
    item = read_items(open_store(f"az://stac-{uid}", access), "project-a")[item_id]
    key = open_store(f"az://cogs-{uid}", access).key_of(item["assets"]["data"]["href"])
    assert key is not None
    return key


def test_local_source_to_blob_and_secrets_never_leak(
    azure_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_geotiff(tmp_path / "src" / "c_20240103.tif", ramp(), crs="EPSG:32633",
                  transform=from_origin(500000, 5000000, 10, 10))  # fmt: skip
    caplog.set_level(logging.DEBUG)
    args = ["-vv", "ingest", str(tmp_path / "src"), "--target", f"az://cogs-{azure_env}",
            "--catalog", f"az://stac-{azure_env}", "--report", str(tmp_path / "r.json"),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    signed = CliRunner().invoke(app, ["sign", json.loads(result.stdout)["catalog"]])
    assert signed.exit_code == 0 and "sig=" in signed.stdout

    access = resolve_access(AzureOptions())
    catalog = pystac.Catalog.from_file(
        f"{access.account_url}/stac-{azure_env}/catalog.json", stac_io=byod.SignedStacIO(access)
    )
    catalog_json = "".join(
        json.dumps(o.to_dict()) for o in [catalog, *catalog.get_all_collections(),
                                          *catalog.get_items(recursive=True)]
    )  # fmt: skip
    key_part = AZURITE_KEY[:20]
    for text in (result.output, caplog.text, (tmp_path / "r.json").read_text(), catalog_json,
                 repr(access)):  # fmt: skip
        assert key_part not in text
        assert "AccountKey" not in text
    assert "sig=" not in catalog_json


def test_validate_a_blob_catalog(ingested: tuple[str, str, object, Report]) -> None:
    result = CliRunner().invoke(app, ["validate", f"az://stac-{ingested[0]}"])
    assert result.exit_code == 0, result.output
    # Every object a STAC client reaches from the root: catalogs, collections, month
    # sub-catalogs and items, walked by pystac.
    access = resolve_access(AzureOptions())
    root = pystac.Catalog.from_file(
        f"{access.account_url}/stac-{ingested[0]}/catalog.json",
        stac_io=byod.SignedStacIO(access),
    )
    walked = [catalog for catalog, _, _ in root.walk()] + [*root.get_items(recursive=True)]
    assert len(walked) > 4  # the root, the collection, a month and the items at least
    assert f"{len(walked)} STAC objects checked" in result.output


def test_sign_item_returns_a_signed_copy(ingested: tuple[str, str, object, Report]) -> None:
    uid = ingested[0]
    access = resolve_access(AzureOptions())
    item_key = read_items(open_store(f"az://stac-{uid}", access), "project-a")["a_20240101"]
    url = f"{access.account_url}/stac-{uid}/{item_key['_key']}"
    item = pystac.Item.from_file(url, stac_io=byod.SignedStacIO(access))
    signed = byod.sign(item)
    assert "sig=" in signed.assets["data"].href
    assert "sig=" not in item.assets["data"].href
    result = CliRunner().invoke(app, ["sign", url])
    assert result.exit_code == 0
    assert "sig=" in json.loads(result.stdout)["assets"]["data"]["href"]


def test_missing_source_container_is_a_usage_error(azure_env: str) -> None:
    result = CliRunner().invoke(app, ["ingest", f"az://nothing-{azure_env}",
                                      "--target", f"az://cogs-{azure_env}"])  # fmt: skip
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_search_and_load_from_a_private_container(
    ingested: tuple[str, str, dict[str, np.ndarray], Report],
) -> None:
    uid, _, data, _ = ingested
    access = resolve_access(AzureOptions())
    catalog = byod.open_catalog(f"{access.account_url}/stac-{uid}/catalog.json")
    assert [c.id for c in catalog.get_children()] == ["project-a"]
    found = byod.search(f"az://stac-{uid}", bbox=[14, 45, 16, 46], datetime="2024-01-01")
    assert [i.id for i in found] == ["a_20240101"]
    assert "sig=" not in found[0].assets["data"].href
    ds = byod.load(found, bands=["data"], chunks={})
    np.testing.assert_array_equal(ds["data"].isel(time=0).values,
                                  data["projectA/a_20240101.tif"][0])  # fmt: skip
