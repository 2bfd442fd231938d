"""For notebooks: open a catalog, search it through its index, load items into xarray.

catalog = byod.open_catalog("https://<account>.blob.core.windows.net/stac/catalog.json")
items = byod.search(catalog_url, bbox=[16.2, 48.1, 16.6, 48.3],
                    datetime="2024-01-01/2024-03-31", max_cloud=20)
ds = byod.load(items, bands=["red", "nir"], resolution=20, chunks={"x": 1024, "y": 1024})
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pystac

from byod.azure import AzureAccess, AzureOptions, resolve_access
from byod.errors import ConfigurationError
from byod.index import Query
from byod.keys import ROOT_KEY
from byod.searching import search_store
from byod.signing import SignedStacIO, sign
from byod.storage import catalog_store, is_blob_url

if TYPE_CHECKING:
    import xarray


def open_catalog(url: str, access: AzureAccess | None = None) -> pystac.Catalog:
    """Open a local or blob catalog's root (`catalog.json`) with pystac; private blob
    containers are read with signed URLs (`SignedStacIO`, an hour each), never stored.

    `url` is a folder, az://container/prefix, or an https blob URL of the account, or any of
    them ending in `/catalog.json` (`storage.catalog_store`). Raises `ConfigurationError`
    for another STAC file, a URL outside the account, or no usable Azure credentials
    (`AzureConfigError`), and for a folder or container with no catalog (checked first);
    other reading errors are pystac's."""
    store, access = catalog_store(url, access)
    if not store.exists(ROOT_KEY):
        raise ConfigurationError(f"{store.href(ROOT_KEY)}: no catalog there")
    href = store.href(ROOT_KEY)
    if access is None:
        return pystac.Catalog.from_file(href)
    return pystac.Catalog.from_file(href, stac_io=SignedStacIO(access))


def search(
    catalog_url: str,
    *,
    collections: Sequence[str] | None = None,
    bbox: Sequence[float] | str | None = None,
    datetime: str | None = None,
    max_cloud: float | None = None,
    filter: str | None = None,
    limit: int | None = None,
    access: AzureAccess | None = None,
) -> pystac.ItemCollection:
    """Items matching every criterion, from the collections' geoparquet indexes (a
    collection published without one is walked as JSON), in collection order.

    `bbox` is [west, south, east, north] in EPSG:4326 degrees, or that as "W,S,E,N" text
    (west > east crosses 180°, RFC 7946 section 5.2; 0..360 longitudes accepted); it matches
    items whose bbox intersects it. `datetime` is an RFC 3339 instant, a day, or
    `start/end` with `..` for an open end (STAC API item search), in UTC when no offset is
    given; a period matches items whose time or period overlaps it. `max_cloud` keeps items
    whose eo:cloud_cover (percent, 0-100) is at most that (items without one are left out);
    `filter` is a CQL2 text or JSON expression (OGC CQL2) on item properties; `collections`
    limits the search to those ids; `limit` stops after that many items.

    The items are returned as published (no pystac migration: `proj:epsg` kept), asset
    hrefs absolute. Raises `SearchError` (a ValueError) for a malformed bbox, datetime or
    filter, or a catalog or collection that does not exist; `ConfigurationError` as
    `open_catalog` does for the location.
    """
    store, _ = catalog_store(catalog_url, access)
    query = Query.parse(bbox, datetime, max_cloud, filter)
    found = search_store(store, query, collections, limit)
    # migrate=False: pystac's migration to projection v2.0 drops proj:epsg, which stackstac
    # 0.5 reads (items.py); the items are returned as published.
    return pystac.ItemCollection([pystac.Item.from_dict(d, migrate=False) for d in found])


class UnrectifiedItems(ConfigurationError):
    """Items whose rasters are placed by GCPs or RPCs only, which byod.load cannot load."""


class MixedCrs(ConfigurationError):
    """Items in more than one CRS given to byod.load without `crs`: odc-stac would take the
    first item's CRS and read `resolution` in its units (30 in EPSG:4326 is 30 degrees)."""


class MixedAssets(ConfigurationError):
    """Items whose data assets differ (one `data` COG in some, one asset per band in others:
    a product's files whose bands differ in nodata) given to byod.load: odc-stac fills the
    bands an item lacks with nodata, silently."""


def _data_keys(item: pystac.Item) -> tuple[str, ...]:
    return tuple(k for k, a in item.assets.items() if "data" in (a.roles or []))


def _check_layouts(items: Sequence[pystac.Item], bands: Sequence[str] | None) -> None:
    """Raise MixedAssets when `bands` (or, without it, every data asset) are not the
    same assets in every item."""
    by_layout: dict[tuple[str, ...], list[str]] = {}
    for item in items:
        keys = _data_keys(item)
        layout = keys if bands is None else tuple(b for b in bands if b not in item.assets)
        by_layout.setdefault(layout, []).append(item.id)
    if len(by_layout) < 2 and (bands is None or () in by_layout):
        return

    if bands is None:
        found = "; ".join(f"{', '.join(keys) or 'none'}: {_some(names)}"
                          for keys, names in sorted(by_layout.items()))  # fmt: skip
        raise MixedAssets(
            f"byod.load: the items have {len(by_layout)} layouts of data assets ({found}); "
            "a file whose bands differ in nodata is stored one asset per band. Load one "
            "layout at a time: bands= naming its assets, with the items that have them"
        )
    missing = "; ".join(f"no {', '.join(keys)}: {_some(names)}"
                        for keys, names in sorted(by_layout.items()) if keys)  # fmt: skip
    raise MixedAssets(
        f"byod.load: some items lack the bands asked for ({missing}); odc-stac would load "
        "nodata for them. Choose bands= that every item has, or load those items apart "
        "(a file whose bands differ in nodata is stored one asset per band)"
    )


def _some(ids: list[str]) -> str:
    """The first three ids, and `...` when there are more."""
    return f"{', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}"


def _crs_of(item: pystac.Item) -> str | None:
    props = item.properties
    if props.get("proj:code"):
        return str(props["proj:code"])
    if props.get("proj:epsg"):
        return f"EPSG:{props['proj:epsg']}"
    return None


def _unrectified(item: pystac.Item, bands: Sequence[str] | None) -> bool:
    """Whether an asset odc-stac would read declares a grid (`proj:shape`, byod's
    `byod:georeferencing`) but has no `proj:transform`, on itself or on the item."""
    props = item.properties
    keys = (
        bands
        if bands is not None
        else [k for k, a in item.assets.items() if "data" in (a.roles or [])]
    )
    for key in keys:
        asset = item.assets.get(key)
        fields = {**props, **(asset.extra_fields if asset is not None else {})}
        gridded = "proj:shape" in fields or "byod:georeferencing" in fields
        if gridded and fields.get("proj:transform") is None:
            return True
    return False


def load(
    items: pystac.ItemCollection | Sequence[pystac.Item],
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    crs: str | None = None,
    chunks: dict[str, int] | None = None,
    access: AzureAccess | None = None,
    expiry: timedelta = timedelta(hours=2),
    **odc_kwargs: Any,
) -> xarray.Dataset:
    """A lazy, dask-backed xarray Dataset of the items (`odc.stac.load`), read from the
    COGs over HTTP(S) with signed URLs (valid for `expiry`) where they are in private
    containers: one variable per band, dims (time, y, x), or (time, latitude, longitude) in a
    geographic CRS, in `crs` (default: the items' own, from `proj:code`/`proj:epsg`) with
    `resolution` in that CRS's units (metres for UTM, degrees for EPSG:4326). `chunks` are
    dask chunk sizes in pixels (None: the COGs' own blocks); `odc_kwargs` go to
    `odc.stac.load` as they are.

    Raises ImportError when odc-stac is not installed (byod[analysis]), and
    `AzureConfigError` (a ConfigurationError) when assets need signing and no credentials
    are usable.

    Raises MixedAssets (a ValueError) when the items' data assets differ (without
    `bands`), or some items lack one of `bands`: odc-stac would load nodata for them.
    Raises MixedCrs (a ValueError) when the items are in several CRSs and `crs` is not
    given (odc-stac would take the first item's and read `resolution` in its units).
    Raises UnrectifiedItems (a ValueError) naming the items placed by GCPs or RPCs only:
    their pixel grid has no CRS and no `proj:transform`, which odc-stac needs to place
    pixels ("Failed to auto-guess CRS/resolution", or a bare AssertionError with `crs` and
    `resolution` given).
    """
    try:
        import odc.stac
    except ImportError:
        raise ImportError("byod.load needs odc-stac: install byod[analysis]") from None
    listed = list(items)
    unrectified = [i.id for i in listed if _unrectified(i, bands)]
    if unrectified:
        raise UnrectifiedItems(
            f"byod.load: {len(unrectified)} item(s) are unrectified (placed by GCPs or RPCs, "
            f"no proj:transform): {', '.join(unrectified)}; odc-stac cannot place their "
            "pixels. Leave them out, or warp their COGs onto a grid first (gdalwarp; "
            "rioxarray.open_rasterio(href).rio.reproject(crs) uses the GCPs or RPCs)"
        )
    _check_layouts(listed, bands)
    if crs is None:
        by_crs: dict[str, list[str]] = {}
        for item in listed:
            by_crs.setdefault(_crs_of(item) or "no proj:code", []).append(item.id)
        if len(by_crs) > 1:
            found = "; ".join(f"{code}: {_some(ids)}" for code, ids in sorted(by_crs.items()))
            raise MixedCrs(
                f"byod.load: the items are in {len(by_crs)} CRSs ({found}); give crs= (and "
                'resolution= in its units), or search one CRS (filter="proj:code = '
                "'EPSG:32633'\")"
            )
    needs_signing = any(is_blob_url(a.href) or a.href.startswith("http")
                        for i in listed for a in i.assets.values())  # fmt: skip
    if needs_signing:
        access = access or resolve_access(AzureOptions())
        listed = [sign(i, expiry, access) for i in listed]
    lazy: dict[str, Any] = dict(chunks) if chunks is not None else {}  # {} : dask, native chunks
    return odc.stac.load(listed, bands=bands, resolution=resolution, crs=crs, chunks=lazy,
                         **odc_kwargs)  # fmt: skip
