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

from byod.records import Candidate

# Landsat Collection 2 file names, LXSS_LLLL_PPPRRR_YYYYMMDD_yyyymmdd_CC_TX_<band>.TIF (USGS,
# "Landsat 8-9 Collection 2 Level 2 Science Product Guide", LSDS-1619, its file naming
# convention; the same for Landsat 4-7, LSDS-1618).
LANDSAT = re.compile(
    r"(?i)^(?P<scene>L[COTEM]0\d_L[12][A-Z]{2}_\d{6}_\d{8}_\d{8}_\d{2}_[A-Z0-9]{2})"
    r"_(?P<band>(?:SR|ST)_B\d{1,2}|B\d{1,2}|QA_PIXEL|QA_RADSAT|SR_QA_AEROSOL|ST_QA|ST_[A-Z]+)"
    r"\.(?:tif|tiff)$"
)
# Sentinel-2 Level-2A band files inside a SAFE's IMG_DATA/R10m|R20m|R60m folders,
# T<tile>_<sensing time>_<band>_<res>m.jp2 (ESA, "Sentinel-2 Products Specification
# Document", S2-PDGS-TAS-DI-PSD, the L2A granule naming), and the same names as GeoTIFFs.
SENTINEL2 = re.compile(
    r"(?i)^(?P<scene>T\d{2}[A-Z]{3}_\d{8}T\d{6})_(?P<band>B\d[\dA]|SCL|AOT|WVP|TCI)"
    r"(?:_(?P<resolution>\d{2})m)?\.(?:jp2|tif|tiff)$"
)
_RESOLUTION_DIR = re.compile(r"(^|/)R\d{2}m$")
# Bands that are cloud masks, and the rule each is read with.
MASK_BANDS = {"QA_PIXEL": "landsat-qa", "SCL": "s2-scl"}


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
                product[key] = rule.name
                break
        else:
            singles.append(candidate)
    notes: list[str] = []
    grouped = [_merge(key[1], members, product[key], notes) for key, members in scenes.items()]
    return sorted(singles + grouped, key=lambda c: c.relpath), notes


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
