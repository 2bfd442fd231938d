"""Acquisition time of an input, from the first source that has one.

Pure functions over plain values. Order: explicit option, metadata tags, the file name.
When none has a time the input is rejected; "now" is never invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# Tags GDAL exposes: the TIFF baseline tag and the IMAGERY domain's acquisition time.
DATETIME_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATETIME", "TIFFTAG_DATETIME")

MIN_YEAR, MAX_YEAR = 1900, 2100

# Dates in names, most specific first. Digits may not continue on either side, so a tile
# number or a longer run of digits is never read as a date.
_NAME_PATTERNS = (
    re.compile(
        r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})[T_]?"
        r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})(?!\d)"
    ),
    re.compile(
        r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T_ ]"
        r"(?P<hour>\d{2})[:\-]?(?P<minute>\d{2})[:\-]?(?P<second>\d{2})(?!\d)"
    ),
    re.compile(r"(?<!\d)(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?!\d)"),
)


@dataclass(frozen=True)
class Acquisition:
    """When the data was acquired, and which source said so."""

    datetime: datetime
    source: str  # "option", "tag:<NAME>", "name:<what matched>"


def as_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_tag_datetime(text: str) -> datetime | None:
    """Parse a TIFF `YYYY:MM:DD HH:MM:SS` or an ISO 8601 time; None when it is neither."""
    text = text.strip().rstrip("\0")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y:%m:%d"):
        try:
            return as_utc(datetime.strptime(text, fmt))
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(parsed) if MIN_YEAR <= parsed.year <= MAX_YEAR else None


def datetime_from_name(name: str) -> tuple[datetime, str] | None:
    """The first valid date or date-time written in a file or folder name."""
    for pattern in _NAME_PATTERNS:
        for match in pattern.finditer(name):
            parts = {k: int(v) for k, v in match.groupdict().items()}
            if not MIN_YEAR <= parts["year"] <= MAX_YEAR:
                continue
            try:
                return datetime(tzinfo=UTC, **parts), match.group(0)
            except ValueError:  # 20241345 is no date
                continue
    return None


def find_acquisition(
    *, override: datetime | None, tags: Mapping[str, str], relpath: str
) -> Acquisition | None:
    """The acquisition time by the configured order; None when no source has one."""
    if override is not None:
        return Acquisition(as_utc(override), "option")
    for key in DATETIME_TAGS:
        value = tags.get(key)
        if value and (parsed := parse_tag_datetime(value)) is not None:
            return Acquisition(parsed, f"tag:{key}")
    # The file name first, then its folders from the nearest outwards.
    for part in reversed(relpath.split("/")):
        if (found := datetime_from_name(part)) is not None:
            return Acquisition(found[0], f"name:{found[1]}")
    return None
