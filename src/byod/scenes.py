"""Band-per-file products grouped into scenes: Landsat Collection 2, Sentinel-2, or any
layout a `--group-pattern` with named groups `scene` and `band` describes. Pure.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from byod.products import is_product_metadata
from byod.records import Candidate

# Landsat Collection 2 file names, LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX_<band>.TIF (USGS,
# "Landsat 8-9 Collection 2 Level 2 Science Product Guide", LSDS-1619, its file naming
# convention; the same for Landsat 4-7, LSDS-1618).
LANDSAT_PRODUCT_ID = r"L[COTEM]0\d_L[12][A-Z]{2}_\d{6}_\d{8}_\d{8}_\d{2}_[A-Z0-9]{2}"
# The product's rasters, each a band of the scene: Level-2 SR_B1.._B7, ST_B10 (ST_B6 for
# Landsat 4-7), the QA bands (QA_PIXEL, QA_RADSAT, SR_QA_AEROSOL; SR_CLOUD_QA and
# SR_ATMOS_OPACITY of Landsat 4-7), the surface temperature's intermediate bands (ST_TRAD,
# _URAD, _DRAD, _ATRAN, _EMIS, _EMSD, _CDIST, ST_QA); Level-1 B1..B11 (Landsat 7's
# B6_VCID_1/_2) and its solar/sensor angle bands (SAA, SZA, VAA, VZA).
LANDSAT = re.compile(
    rf"(?i)^(?P<scene>{LANDSAT_PRODUCT_ID})"
    r"_(?P<band>(?:SR|ST)_B\d{1,2}|B\d{1,2}(?:_VCID_[12])?|QA_PIXEL|QA_RADSAT|SR_QA_AEROSOL"
    r"|SR_CLOUD_QA|SR_ATMOS_OPACITY|ST_QA|ST_[A-Z]+|[SV][AZ]A)"
    r"\.(?:tif|tiff)$"
)
# Sentinel-2 Level-2A band files inside a SAFE's IMG_DATA/R10m|R20m|R60m folders,
# T<tile>_<sensing time>_<band>_<res>m.jp2 (ESA, "Sentinel-2 Products Specification
# Document", S2-PDGS-TAS-DI-PSD, the L2A granule naming; `L2A_T..._B02_10m.jp2` in the
# products of 2017-2018), Level-1C's T<tile>_<sensing time>_<band>.jp2, and the same names
# as GeoTIFFs.
SENTINEL2 = re.compile(
    r"(?i)^(?:L2A_)?(?P<scene>T\d{2}[A-Z]{3}_\d{8}T\d{6})_(?P<band>B\d[\dA]|SCL|AOT|WVP|TCI)"
    r"(?:_(?P<resolution>\d{2})m)?\.(?:jp2|tif|tiff)$"
)
_RESOLUTION_DIR = re.compile(r"(^|/)R\d{2}m$")
# Bands that are cloud masks, and the rule each is read with.
MASK_BANDS = {"QA_PIXEL": "landsat-qa", "SCL": "s2-scl"}

# The files of a recognised product that are no band of its scene and no metadata byod
# reads: the producer's browse images, previews, quality masks and reports, HTML pages and
# auxiliary data. They are neither items nor rejections (a browse JPEG has no
# georeferencing): discovery lists them as ignored (`auxiliary_of`).
# Landsat Collection 2 (USGS LSDS-1619/LSDS-1618, "Product Contents"): the browse images
# `_thumb_small.jpeg`/`_thumb_large.jpeg` (any JPEG or PNG named after the product), the
# angle coefficients `_ANG.txt`, Level-1's `_GCP.txt`/`_VER.txt`, `_MTL.json` and the
# STAC items USGS serves beside the bands (`_SR_stac.json`, `_ST_stac.json`).
LANDSAT_AUXILIARY = re.compile(
    rf"(?i)^(?P<product>{LANDSAT_PRODUCT_ID})_(?:[A-Z0-9_]+\.(?:jpe?g|png)|(?:ANG|GCP|VER)\.txt"
    r"|MTL\.json|(?:SR_|ST_)?stac\.json)$"
)
# A Sentinel-2 SAFE folder (ESA S2-PDGS-TAS-DI-PSD): `S2A_MSIL2A_<...>.SAFE` (and the
# `S2A_OPER_PRD_MSIL1C_...` names before 2016-12), and a granule folder of its GRANULE/
# (`L2A_T33UXP_A041000_20230605T101500`, `S2A_OPER_MSI_L1C_TL_...`). Only
# GRANULE/<granule>/IMG_DATA holds bands, and MTD_* files are metadata; ESA's other entries
# are the product's own: manifest.safe, INSPIRE.xml, HTML/, rep_info/, DATASTRIP/,
# AUX_DATA/, a granule's QI_DATA/ (masks, quality reports, the T*_PVI.jp2 preview) and
# AUX_DATA/ (ECMWF and CAMS GRIB), and a `*_PVI.jp2` preview wherever it is. Anything else
# in the folder (a user's own raster) is an input as before.
SENTINEL2_SAFE = re.compile(
    r"(?i)^(?:S2[A-D]_MSIL(?:1C|2A)_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}"
    r"(?:\.SAFE)?|S2[A-D]_OPER_PRD_MSIL(?:1C|2A)_\w+\.SAFE)$"
)
SENTINEL2_GRANULE = re.compile(
    r"(?i)^(?:L(?:1C|2A)_T\d{2}[A-Z]{3}_A\d{6}_\d{8}T\d{6}|S2[A-D]_OPER_MSI_L(?:1C|2A)_TL_\w+)$"
)
_SAFE_AUXILIARY = frozenset({"MANIFEST.SAFE", "INSPIRE.XML", "HTML", "REP_INFO", "DATASTRIP",
                             "AUX_DATA"})  # fmt: skip
_GRANULE_AUXILIARY = frozenset({"QI_DATA", "AUX_DATA"})
_PREVIEW = re.compile(r"(?i)_PVI\.jp2$")


@dataclass(frozen=True)
class Auxiliary:
    """A file that belongs to a recognised product without being a band of its scene."""

    family: str  # "Landsat Collection 2" or "Sentinel-2 SAFE"
    product: str  # the product's id or folder name (`LC08_L2SP_...`, `S2A_MSIL2A_....SAFE`)


def auxiliary_of(relpath: str) -> Auxiliary | None:
    """The product a file (path relative to the source, `/`-separated) is an auxiliary part
    of, or None: a Landsat Collection 2 browse image, angle or JSON file named after its
    product id, or a file of a Sentinel-2 SAFE (or of a granule folder) outside its
    granules' IMG_DATA. Product metadata byod reads (`products.is_product_metadata`: MTL,
    MTD_*) is never auxiliary, nor is another raster named after a Landsat product (a
    user's `<product id>_NDVI.tif`). Pure: names only."""
    parts = relpath.split("/")
    name = parts[-1]
    if is_product_metadata(name):
        return None
    landsat = LANDSAT_AUXILIARY.match(name)
    if landsat is not None:
        return Auxiliary("Landsat Collection 2", landsat.group("product"))
    for i, part in enumerate(parts[:-1]):
        inside = [p.upper() for p in parts[i + 1 :]]
        if SENTINEL2_SAFE.match(part):
            in_granule = inside[0] == "GRANULE" and len(inside) > 3
            own = inside[0] in _SAFE_AUXILIARY or (in_granule and inside[2] in _GRANULE_AUXILIARY)
        elif i > 0 and parts[i - 1].upper() == "GRANULE" and SENTINEL2_GRANULE.match(part):
            own = len(inside) > 1 and inside[0] in _GRANULE_AUXILIARY
        else:
            continue
        return Auxiliary("Sentinel-2 SAFE", part) if own or _PREVIEW.search(name) else None
    return None


@dataclass(frozen=True)
class GroupRule:
    """A layout of band files: a regular expression with named groups `scene` and `band`
    (built-ins match the file name; a custom one is searched in the relative path)."""

    name: str  # "landsat", "sentinel2" or "custom"
    pattern: re.Pattern[str]


BUILT_IN = (GroupRule("landsat", LANDSAT), GroupRule("sentinel2", SENTINEL2))


@cache
def known_bands() -> dict[str, dict[str, dict[str, object]]]:
    """eo band facts per product, kept as data (byod/data/bands.json), not code."""
    text = (resources.files("byod") / "data" / "bands.json").read_text("utf-8")
    return dict(json.loads(text))


def group(
    candidates: list[Candidate], custom: str | None = None
) -> tuple[list[Candidate], list[str]]:
    """Merge band files into one scene candidate each; others pass unchanged.

    Landsat Collection 2 (`<scene>_SR_B4.TIF`, `_QA_PIXEL`, ...) and Sentinel-2 L2A/L1C
    (`T33UXP_20240101T100000_B04_10m.jp2`, `_SCL_20m`, ...) band names are recognised;
    `custom` is a `--group-pattern` regular expression with named groups `scene` and `band`,
    tried first. A scene's candidate is its first band's, with the other bands' files as
    sidecars, `bands` listing (band, path) and `cloud_mask` its QA_PIXEL or SCL band.

    Returns the candidates and notes on band files left out (a band given at a coarser
    resolution as well as a finer one keeps the finest, as in Sentinel-2 L2A's R10m/R20m).
    """
    rules = ([GroupRule("custom", re.compile(custom))] if custom else []) + list(BUILT_IN)
    scenes: dict[tuple[str, str], list[tuple[str, int, Candidate]]] = {}
    product: dict[tuple[str, str], str] = {}
    singles: list[Candidate] = []
    for candidate in candidates:
        name = posixpath.basename(candidate.relpath)
        for rule in rules:
            match = rule.pattern.match(name) if rule.name != "custom" else rule.pattern.search(
                candidate.relpath)  # fmt: skip
            if match:
                key = (rule.name, match.group("scene"))
                resolution = int(match.groupdict().get("resolution") or 0)
                band = match.group("band").upper() if rule.name != "custom" else match.group("band")
                scenes.setdefault(key, []).append((band, resolution, candidate))
                product[key] = _product(rule.name, key[1])
                break
        else:
            singles.append(candidate)
    notes: list[str] = []
    grouped = [_merge(key[1], members, product[key], notes) for key, members in scenes.items()]
    return sorted(singles + grouped, key=lambda c: c.relpath), notes


def _product(rule: str, scene: str) -> str:
    """Whose band facts (`known_bands`) a scene's bands take: Landsat's band numbers name
    other wavelengths on TM (Landsat 4-5, `LT04`/`LT05`) and ETM+ (Landsat 7, `LE07`) than
    on OLI/TIRS (Landsat 8-9: `landsat`); MSS (`LM0x`) has none in bands.json."""
    if rule != "landsat":
        return rule
    sensor, satellite = scene[1].upper(), scene[2:4]
    if sensor == "M":
        return "landsat-mss"
    if satellite in ("04", "05"):
        return "landsat-tm"
    return "landsat-etm" if satellite == "07" else "landsat"


def _merge(
    scene: str, members: list[tuple[str, int, Candidate]], product: str, notes: list[str]
) -> Candidate:
    best: dict[str, tuple[int, Candidate]] = {}
    for band, resolution, candidate in sorted(members, key=lambda m: (m[0], m[1])):
        if band in best:
            notes.append(f"{candidate.relpath}: band {band} of {scene} is also given at a finer "
                         f"resolution; left out")  # fmt: skip
            continue
        best[band] = (resolution, candidate)
    bands = sorted(best.items())
    # The scene's place is its bands' folder, with Sentinel-2's resolution folders (R10m,
    # R20m, R60m) left out, so a scene whose bands arrive over several runs keeps its id.
    folders = [_RESOLUTION_DIR.sub("", posixpath.dirname(c.relpath)) for _, (_, c) in bands]
    folder = posixpath.commonpath(folders)
    first = bands[0][1][1]
    extras: list[str] = []
    version_of: dict[str, str] = {}
    metadata: list[str] = []
    for _, (_, c) in bands:
        extras += [c.path, *c.sidecars]
        if c.versions:
            version_of.update(zip((c.path, *c.sidecars), c.versions, strict=True))
        metadata += list(c.metadata_files)
    mask = next((c.path for band, (_, c) in bands if band.upper() in MASK_BANDS), None)
    extras = [p for p in dict.fromkeys(extras) if p != first.path]
    versions = [version_of[p] for p in (first.path, *extras)] if version_of else []
    return replace(
        first,
        relpath=posixpath.join(folder, scene) if folder else scene,
        sidecars=tuple(extras),
        versions=tuple(versions),
        metadata_files=tuple(dict.fromkeys(metadata)),
        cloud_mask=mask,
        bands=tuple((band, c.path) for band, (_, c) in bands),
        product=product,
    )
