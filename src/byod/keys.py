"""Every storage key byod writes or reads, in one place: POSIX paths below a store's root (the
catalog's, or the target's for COGs and thumbnails). Pure: no I/O and no imports of byod.

    catalog.json                                      the root catalog
    <collection>/collection.json                      the collection: THE pointer a publish
                                                      switches (byod.catalog)
    <collection>/_months/<YYYY-MM>/<v>/catalog.json   a month's (first page's) sub-catalog
    <collection>/_months/<YYYY-MM>/<v>/items.parquet  its index partition (byod.index)
    <collection>/_months/<YYYY-MM>/<v>/catalog-p<n>.json, items-p<n>.parquet
                                                      the month's page n (n >= 2)
    <collection>/<item>/<v>/<item>.json               an item version
    <collection>/<item>/<v>/<item>[_<band>].tif       its COG(s), in the target
    <collection>/<item>/<v>/<item>-thumbnail.png      its thumbnail, in the target
    <collection>/_runs/<v>.json                       the marker of a run in progress
    <collection>/_superseded/<v>.json                 what run <v>'s switches left unreferenced
    <collection>/items.parquet                        the index of byod before versioned ones

`<v>` is a run's version (`new_version`); `-<n>` is added to a month's file names for the
run's n-th rewrite of that month, so no key is ever written twice.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from datetime import UTC, datetime

ROOT_KEY = "catalog.json"
ROOT_ID = "byod"  # the root catalog's id
# In the root of every local folder byod writes (COG target, catalog): a source walked later
# that holds such a folder does not read it as input (an earlier `byod ingest .` inside the
# folder now ingested from its parent).
OUTPUT_MARKER = ".byod-output"
# The dataset configuration file, read at the top of a source only (dataset_config).
CONFIG_NAMES = ("byod.yaml", "byod.yml")
COLLECTION_FILE = "collection.json"
RUNS = "_runs"
MONTHS = "_months"
SUPERSEDED = "_superseded"
INDEX_NAME = "items.parquet"  # a month's index partition (also its local temp file's name)
LEGACY_INDEX = INDEX_NAME  # byod before versioned indexes: `<collection>/items.parquet`
# Blob metadata of a stored COG: the fingerprint of the input it was made from (planning
# compares it to skip unchanged inputs; storing writes it).
FINGERPRINT_METADATA = "byod_fingerprint"
# `20261129T203015-3fa2c1`: sortable by time, unique per run; the upper-case T keeps it apart
# from item ids (lower-case slugs).
VERSION = re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}")
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")  # a month partition's folder: YYYY-MM


def new_version() -> str:
    """A fresh version for one run's files: UTC time to the second and 24 random bits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def version_of(key: str) -> str | None:
    """The run version a key belongs to (a folder, or the name of a run marker), if any."""
    parts = key.split("/")
    parts[-1] = posixpath.splitext(parts[-1])[0]
    return next((p for p in parts if VERSION.fullmatch(p)), None)


def month_in(key: str) -> str | None:
    """The `YYYY-MM` month folder of a month partition's key (below the collection), if any."""
    return next((p for p in key.split("/")[1:-1] if MONTH.fullmatch(p)), None)


def collection_key(collection_id: str) -> str:
    """`<collection>/collection.json`: the pointer a publish switches."""
    return f"{collection_id}/{COLLECTION_FILE}"


def root_href_of(collection_id: str) -> str:
    """The root catalog's link to a collection, relative to the root."""
    return f"./{collection_key(collection_id)}"


def versioned_key(collection_id: str, item_id: str, version: str, name: str) -> str:
    """Key of a file of one item version: `<collection>/<item>/<version>/<name>`."""
    return f"{collection_id}/{item_id}/{version}/{name}"


def item_key(collection_id: str, item_id: str, version: str) -> str:
    """`<collection>/<item>/<version>/<item>.json`: one version of an item's JSON."""
    return versioned_key(collection_id, item_id, version, f"{item_id}.json")


def cog_key(collection_id: str, item_id: str, version: str, band: str | None = None) -> str:
    """`<item>.tif` for a single raster's COG, `<item>_<band>.tif` for a scene's band (`band`
    a slug), in the run's version folder: a replacement never overwrites the bytes a
    published item describes."""
    suffix = f"_{band}" if band else ""
    return versioned_key(collection_id, item_id, version, f"{item_id}{suffix}.tif")


def thumbnail_key(collection_id: str, item_id: str, version: str) -> str:
    """`<item>-thumbnail.png` in the run's version folder (in the target store)."""
    return versioned_key(collection_id, item_id, version, f"{item_id}-thumbnail.png")


def month_keys(collection_id: str, month: str, version: str, attempt: int = 0, page: int = 1
               ) -> tuple[str, str]:  # fmt: skip
    """Keys of the sub-catalog and index partition of page `page` (1-based) of a month written
    by run `version`: `<collection>/_months/<YYYY-MM>/<v>/catalog.json` and `items.parquet`
    for the first page (the only one before months had pages), `catalog-p<n>.json` and
    `items-p<n>.parquet` for page n >= 2; `-<attempt>` added for the run's n-th rewrite of
    that page (a later publish of the same run, progress kept, or a publish that lost a race
    to another run). No key is ever written twice."""
    folder = f"{collection_id}/{MONTHS}/{month}/{version}"
    suffix = (f"-p{page}" if page > 1 else "") + (f"-{attempt}" if attempt else "")
    stem = posixpath.splitext(INDEX_NAME)[0]
    return f"{folder}/catalog{suffix}.json", f"{folder}/{stem}{suffix}.parquet"


def runs_folder(collection_id: str) -> str:
    """The folder of a collection's run markers (a prefix, ending in '/')."""
    return f"{collection_id}/{RUNS}/"


def run_marker_key(collection_id: str, version: str) -> str:
    """`<collection>/_runs/<version>.json`: the marker of run `version` while it runs."""
    return f"{runs_folder(collection_id)}{version}.json"


def superseded_folder(collection_id: str) -> str:
    """The folder of a collection's superseded-files lists (a prefix, ending in '/')."""
    return f"{collection_id}/{SUPERSEDED}/"


def superseded_key(collection_id: str, version: str) -> str:
    """`<collection>/_superseded/<version>.json`: what run `version`'s switches left
    unreferenced (deleted after the grace period, `catalog.collect_superseded`)."""
    return f"{superseded_folder(collection_id)}{version}.json"


def is_superseded_list(key: str) -> bool:
    """Whether `key` is a run's superseded-files list (the collector's to act on)."""
    return f"/{SUPERSEDED}/" in key


def legacy_index_key(collection_id: str) -> str:
    """`<collection>/items.parquet`: the single index of byod before month partitions."""
    return f"{collection_id}/{LEGACY_INDEX}"
