"""When planning lists a blob target instead of asking per COG (planning._listed): only when
the listing takes no more round trips than the HEADs. At 100,000 items, 21 inputs to check
listed 200,000 blobs (41 requests one after the other; 152 s on Azurite)."""

from __future__ import annotations

import math

import pytest
from azure.storage.blob import BlobServiceClient

from byod.azure import AzureOptions, resolve_access
from byod.planning import LIST_PAGE, _listed
from byod.storage import REQUESTS_AT_ONCE, open_store

# (inputs to check, items in the collection, listed?): 100,000 items are 40 pages of 5,000
# blobs; 21 checks are 3 rounds of 8 HEADs, 500 are 63 rounds.
CASES = [(21, 100, True), (21, 1000, True), (21, 100_000, False), (500, 100_000, True),
         (300, 100_000, False), (5, 10, False)]  # fmt: skip


@pytest.mark.parametrize(("checks", "items", "lists"), CASES)
def test_listing_only_when_it_is_fewer_round_trips(
    azure_env: str, azurite: str, checks: int, items: int, lists: bool
) -> None:
    client = BlobServiceClient.from_connection_string(azurite)
    container = client.create_container(f"t{azure_env}")
    container.upload_blob("c/x/v/x.tif", b"cog", metadata={"byod_fingerprint": "f"})
    store = open_store(f"az://t{azure_env}", resolve_access(AzureOptions()))
    listed = _listed(store, "c", checks, items)
    assert listed == ({"c/x/v/x.tif": {"byod_fingerprint": "f"}} if lists else None)
    pages, rounds = math.ceil(2 * items / LIST_PAGE), math.ceil(checks / REQUESTS_AT_ONCE)
    assert lists == (checks > 20 and pages <= rounds)  # the cases mean what they say
