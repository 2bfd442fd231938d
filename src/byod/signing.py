"""Short-lived read-only access to private blobs, in the manner of `planetary_computer.sign`.

Signed URLs are handed to readers (a notebook, GDAL) and never written into a catalog.
"""

from __future__ import annotations

import copy
import urllib.request
from datetime import timedelta
from typing import Any, overload

import pystac
from pystac.stac_io import DefaultStacIO
from pystac.utils import make_absolute_href

from byod.azure import AzureAccess, AzureOptions, resolve_access, sign_href
from byod.errors import ConfigurationError

DEFAULT_EXPIRY = timedelta(hours=1)


@overload
def sign(obj: str, expiry: timedelta = ..., access: AzureAccess | None = ...) -> str: ...
@overload
def sign(
    obj: pystac.Item, expiry: timedelta = ..., access: AzureAccess | None = ...
) -> pystac.Item: ...
@overload
def sign(
    obj: pystac.ItemCollection, expiry: timedelta = ..., access: AzureAccess | None = ...
) -> pystac.ItemCollection: ...
def sign(
    obj: str | pystac.Item | pystac.ItemCollection,
    expiry: timedelta = DEFAULT_EXPIRY,
    access: AzureAccess | None = None,
) -> str | pystac.Item | pystac.ItemCollection:
    """Sign an href, or every asset of an Item / ItemCollection (a signed copy is returned;
    the original is left as it was), as `planetary_computer.sign` does: each blob of the
    storage account gets a read-only SAS valid for `expiry` (from 5 minutes before now, for
    clock skew). Hrefs outside the account (another host, a local path) pass through
    unchanged. `access` defaults to the credentials of the environment (`resolve_access`).

    Raises `AzureConfigError` (a ConfigurationError) when no credentials are usable, or
    when a blob is to be signed with a SAS token only (signing needs an account key or an
    identity's user delegation key)."""
    access = access or resolve_access(AzureOptions())
    if isinstance(obj, str):
        return sign_href(access, obj, expiry)
    if isinstance(obj, pystac.ItemCollection):
        return pystac.ItemCollection([sign(i, expiry, access) for i in obj.items])
    signed = obj.clone()
    for asset in signed.assets.values():
        asset.href = sign_href(access, asset.get_absolute_href() or asset.href, expiry)
    return signed


class NothingToSign(ConfigurationError):
    """An item none of whose assets is a blob of the storage account (`sign_item_json`):
    a local catalog's item, or another account's."""


def asset_hrefs(item: dict[str, Any], item_href: str) -> list[str]:
    """The hrefs of an item's JSON (`item`, as read) assets, in order, absolute (relative
    ones resolved against `item_href`, pystac's `make_absolute_href`)."""
    return [make_absolute_href(a["href"], item_href) for a in item.get("assets", {}).values()]


def sign_item_json(
    item: dict[str, Any],
    item_href: str,
    expiry: timedelta = DEFAULT_EXPIRY,
    access: AzureAccess | None = None,
) -> dict[str, Any]:
    """A copy of an item's JSON, as written, with its assets' hrefs signed (others made
    absolute against `item_href`). Nothing else changes: reading it through pystac would
    migrate it (the projection extension to v2.0.0, dropping `proj:epsg`, which stackstac
    reads). Raises `NothingToSign` when none of the assets is a blob of the account (a
    local catalog's item), and the errors of `sign_href` (no credentials, a SAS token)."""
    access = access or resolve_access(AzureOptions())
    out = copy.deepcopy(item)
    signed = 0
    for asset, href in zip(out.get("assets", {}).values(), asset_hrefs(item, item_href),
                           strict=True):  # fmt: skip
        asset["href"] = sign_href(access, href, expiry)
        signed += asset["href"] != href
    if not signed:
        raise NothingToSign(
            f"{item_href}: none of its assets is a blob of storage account "
            f"{access.account_name!r}; only Azure blob URLs can be signed"
        )
    return out


class SignedStacIO(DefaultStacIO):
    """A pystac StacIO that reads catalog files from private containers by signing each
    href it reads (links inside the catalog stay unsigned); other hrefs are read as
    pystac's DefaultStacIO reads them. Blob reads time out after 60 s and raise urllib's
    HTTPError/URLError; signing raises as `sign` does."""

    def __init__(self, access: AzureAccess | None = None, expiry: timedelta = DEFAULT_EXPIRY):
        super().__init__()
        self.access = access or resolve_access(AzureOptions())
        self.expiry = expiry

    def read_text_from_href(self, href: str) -> str:
        url = sign_href(self.access, href, self.expiry)
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=60) as response:
                return str(response.read().decode("utf-8"))
        return super().read_text_from_href(href)
