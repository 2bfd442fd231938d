"""Short-lived read-only access to private blobs, in the manner of `planetary_computer.sign`.

Signed URLs are handed to readers (a notebook, GDAL) and never written into a catalog.
"""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from typing import overload

import pystac
from pystac.stac_io import DefaultStacIO

from byod.azure import AzureAccess, AzureOptions, resolve_access, sign_href

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
    the original is left as it was). Hrefs outside the account pass through unchanged."""
    access = access or resolve_access(AzureOptions())
    if isinstance(obj, str):
        return sign_href(access, obj, expiry)
    if isinstance(obj, pystac.ItemCollection):
        return pystac.ItemCollection([sign(i, expiry, access) for i in obj.items])
    signed = obj.clone()
    for asset in signed.assets.values():
        asset.href = sign_href(access, asset.get_absolute_href() or asset.href, expiry)
    return signed


class SignedStacIO(DefaultStacIO):
    """A pystac StacIO that reads catalog files from private containers by signing each
    href it reads (links inside the catalog stay unsigned)."""

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
