"""Gather what an input's metadata says of its time and clouds, inside its worker.

Reads the product metadata files and the cloud mask (block by block, at full resolution),
then leaves the choosing to the pure functions in `temporal` and `clouds`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import rasterio

from byod import products
from byod.clouds import (
    CloudCounts,
    CloudDecision,
    CloudEstimate,
    CloudRule,
    choose,
    count,
    imagery_cloud_cover,
    parse_rule,
)
from byod.temporal import Acquisition, find_acquisition

log = logging.getLogger(__name__)

# Mask rasters recognised by name, and the rule each is read with.
RULE_BY_SUFFIX = {"_scl": "s2-scl", "_qa_pixel": "landsat-qa", "_fmask": "fmask"}


@dataclass(frozen=True)
class MetadataRules:
    """The time and cloud options of a run, as a worker needs them."""

    datetime: datetime | None = None
    datetime_pattern: str | None = None
    datetime_order: tuple[str, ...] = ("option", "sidecar", "tag", "name")
    cloud_cover: float | None = None
    cloud_rule: str | None = None
    cloud_band: int | None = None
    cloud_order: tuple[str, ...] = ("option", "mask", "sidecar", "imagery")


def read_products(paths: tuple[Path, ...]) -> tuple[list[products.ProductMetadata], list[str]]:
    """Parse each product metadata file; a bad one is noted, not fatal."""
    out, notes = [], []
    for path in paths:
        try:
            out.append(products.parse(path.name, path.read_text("utf-8", errors="replace")))
        except (ValueError, SyntaxError) as exc:  # defusedxml and ElementTree parse errors
            notes.append(f"{path.name}: unreadable product metadata ({exc})")
    return out, notes


def acquisition(
    rules: MetadataRules,
    tags: dict[str, str],
    relpath: str,
    found: list[products.ProductMetadata],
) -> Acquisition | None:
    sidecar = next(
        (Acquisition(p.datetime, f"sidecar:{p.source}", p.start_datetime, p.end_datetime)
         for p in found if p.datetime is not None),
        None,
    )  # fmt: skip
    pattern = re.compile(rules.datetime_pattern) if rules.datetime_pattern else None
    return find_acquisition(override=rules.datetime, tags=tags, relpath=relpath,
                            sidecar=sidecar, pattern=pattern,
                            order=rules.datetime_order)  # fmt: skip


def clouds(
    rules: MetadataRules,
    tags: dict[str, str],
    found: list[products.ProductMetadata],
    source: str,
    mask: Path | None,
) -> CloudDecision:
    """Every cloud estimate there is for the input, and the one the order picks."""
    estimates: list[CloudEstimate | None] = []
    if rules.cloud_cover is not None:
        estimates.append(CloudEstimate("option", rules.cloud_cover))
    if mask is not None:
        rule = parse_rule(rules.cloud_rule or _rule_by_name(mask.name))
        estimates.append(_from_mask(mask, 1, rule, f"mask:{mask.name} ({rule.name})"))
        if rules.cloud_band is not None:
            log.warning("%s: both a mask file and --cloud-band; the mask file is used", source)
    elif rules.cloud_band is not None and rules.cloud_rule is not None:
        rule = parse_rule(rules.cloud_rule)
        label = f"mask:band {rules.cloud_band} ({rule.name})"
        estimates.append(_from_mask(Path(source), rules.cloud_band, rule, label))
    for product in found:
        if product.cloud_cover is not None:
            estimates.append(CloudEstimate(f"sidecar:{product.source}", product.cloud_cover))
            break
    if (imagery := imagery_cloud_cover(tags)) is not None:
        estimates.append(CloudEstimate("imagery:CLOUDCOVER", imagery))
    return choose([e for e in estimates if e is not None], rules.cloud_order)


def _rule_by_name(name: str) -> str:
    """The preset a mask's name calls for (`x_SCL.tif`, `T33UUP_..._SCL_20m.jp2`, ...)."""
    stem = Path(name).stem.lower()
    for suffix, rule in RULE_BY_SUFFIX.items():
        if re.search(rf"{suffix}(_\d+m)?$", stem):
            return rule
    return "binary"


def _from_mask(path: Path, band: int, rule: CloudRule, label: str) -> CloudEstimate | None:
    """Exact counts at full resolution, one block at a time; None with no valid pixel."""
    total = CloudCounts()
    with rasterio.open(path) as src:
        for _, window in src.block_windows(band):
            total = total + count(src.read(band, window=window), rule, src.nodata)
    cloud = total.percent("cloud")
    if cloud is None:
        return None
    return CloudEstimate(label, cloud, total.percent("shadow"), total.percent("snow"))
