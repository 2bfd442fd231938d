"""Product metadata sidecars: Landsat Collection 2 MTL (text or XML) and Sentinel-2
MTD_MSIL1C / MTD_MSIL2A / MTD_TL XML. Parsing is pure (text in, record out).

GDAL exposes neither as dataset tags, so byod reads them itself: the cloud cover the
producer computed and the acquisition time of the scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from byod.temporal import as_utc

_MTL_LINE = re.compile(r'^\s*([A-Z0-9_]+)\s*=\s*"?([^"]*)"?\s*$')
METADATA_NAMES = re.compile(
    r"(?i)^(.*_MTL\.(txt|xml)|MTD_MSIL1C\.xml|MTD_MSIL2A\.xml|MTD_TL\.xml)$"
)


# The field named `datetime` hides the class inside the class body (mypy valid-type).
_Instant = datetime


@dataclass(frozen=True)
class ProductMetadata:
    """What a product's metadata file says: the producer's scene cloud cover in percent
    (0-100; None when absent or out of range) and its acquisition time (UTC): an instant,
    or a sensing period when the product gives a start and a later stop."""

    source: str  # the file name it came from
    cloud_cover: float | None = None
    datetime: _Instant | None = None
    start_datetime: _Instant | None = None
    end_datetime: _Instant | None = None


def is_product_metadata(name: str) -> bool:
    """Whether the file name (any folder) is a Landsat `*_MTL.txt`/`*_MTL.xml` or a
    Sentinel-2 `MTD_MSIL1C.xml`, `MTD_MSIL2A.xml` or `MTD_TL.xml` (case-insensitive)."""
    return METADATA_NAMES.match(PurePosixPath(name).name) is not None


def parse(name: str, text: str) -> ProductMetadata:
    """Parse a metadata file by its name; unknown names give an empty record.

    Landsat Collection 2 MTL (USGS LSDS-1619/1618): `CLOUD_COVER`, and `DATE_ACQUIRED` with
    `SCENE_CENTER_TIME`. Sentinel-2 (ESA product specification): `Cloud_Coverage_Assessment`
    (the product's) or `CLOUDY_PIXEL_PERCENTAGE` (the tile's), `SENSING_TIME` or
    `DATATAKE_SENSING_START`, and `PRODUCT_START_TIME`/`PRODUCT_STOP_TIME` as the period.
    Raises xml.etree.ElementTree.ParseError for XML that does not parse, defusedxml's
    errors for XML with entities or DTDs it refuses, and ValueError for an MTL date that is
    not ISO 8601.
    """
    base = PurePosixPath(name).name
    upper = base.upper()
    if upper.endswith("_MTL.TXT"):
        return _landsat(base, _mtl_text(text))
    if upper.endswith("_MTL.XML"):
        return _landsat(base, _xml_fields(text))
    if upper.startswith("MTD_MSIL") or upper == "MTD_TL.XML":
        return _sentinel2(base, _xml_fields(text))
    return ProductMetadata(base)


def _mtl_text(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _MTL_LINE.match(line)
        if match and match.group(1) not in ("GROUP", "END_GROUP"):
            fields.setdefault(match.group(1), match.group(2).strip())
    return fields


def _xml_fields(text: str) -> dict[str, str]:
    """Leaf elements by local name (namespaces dropped); the first occurrence wins."""
    root: Element = ElementTree.fromstring(text.encode("utf-8"))
    fields: dict[str, str] = {}
    for element in root.iter():
        if len(element) == 0 and element.text and element.text.strip():
            fields.setdefault(element.tag.rsplit("}", 1)[-1], element.text.strip())
    return fields


def _landsat(source: str, fields: dict[str, str]) -> ProductMetadata:
    when = None
    if "DATE_ACQUIRED" in fields:
        clock = fields.get("SCENE_CENTER_TIME", "00:00:00Z").rstrip("Z")
        clock = re.sub(r"(\.\d{6})\d+", r"\1", clock)  # Landsat writes 7 fractional digits
        when = as_utc(datetime.fromisoformat(f"{fields['DATE_ACQUIRED']}T{clock}"))
    return ProductMetadata(source, _percent(fields.get("CLOUD_COVER")), when)


def _sentinel2(source: str, fields: dict[str, str]) -> ProductMetadata:
    cloud = _percent(fields.get("Cloud_Coverage_Assessment") or fields.get(
        "CLOUDY_PIXEL_PERCENTAGE"))  # fmt: skip
    start = _iso(fields.get("PRODUCT_START_TIME"))
    end = _iso(fields.get("PRODUCT_STOP_TIME"))
    sensing = _iso(fields.get("SENSING_TIME") or fields.get("DATATAKE_SENSING_START"))
    period = start is not None and end is not None and end > start
    return ProductMetadata(source, cloud, sensing or start, start if period else None,
                           end if period else None)  # fmt: skip


def _percent(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= 100 else None


def _iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None
