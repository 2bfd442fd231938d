"""Acquisition time of an input, from the first source that has one.

Pure functions over plain values. Order: explicit option, metadata tags, the file name.
When none has a time the input is rejected; "now" is never invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
# Periods: two dates, a month, a year. Tried after the instants above.
_RANGE = re.compile(
    r"(?<!\d)(?P<y1>\d{4})-?(?P<m1>\d{2})-?(?P<d1>\d{2})[_\-](?:to[_\-])?"
    r"(?P<y2>\d{4})-?(?P<m2>\d{2})-?(?P<d2>\d{2})(?!\d)"
)
# A lone year or month must stand apart (`_2020.`, `-2020-07_`): `2000m` or `v2020a` are not.
_MONTH = re.compile(r"(?<![\dA-Za-z])(?P<year>\d{4})-(?P<month>\d{2})(?![\dA-Za-z-])")
_YEAR = re.compile(r"(?<![\dA-Za-z])(?P<year>\d{4})(?![\dA-Za-z-])")
# Landsat product ids carry the acquisition date, then the processing date: not a period.
_LANDSAT_ID = re.compile(r"(?i)L[COTEM]0\d_L[12][A-Z]{2}_\d{6}_(?P<acquired>\d{8})_\d{8}_")
DEFAULT_ORDER = ("option", "user", "sidecar", "tag", "name")


@dataclass(frozen=True)
class Acquisition:
    """When the data was acquired, and which source said so.

    A period (a year, a month, two dates) has `start` and `end`; `datetime` is then the
    period's start, which STAC allows alongside start_datetime/end_datetime.
    """

    datetime: datetime
    source: str  # "option", "sidecar:<file>", "tag:<NAME>", "name:<what matched>"
    start: datetime | None = None
    end: datetime | None = None


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
            found = _instant({k: int(v) for k, v in match.groupdict().items()})
            if found is not None:
                return found, match.group(0)
    return None


def _instant(parts: dict[str, int]) -> datetime | None:
    if not MIN_YEAR <= parts.get("year", 0) <= MAX_YEAR:
        return None
    try:
        return datetime(tzinfo=UTC, **parts)
    except (ValueError, TypeError):  # 20241345 is no date
        return None


def acquisition_from_name(name: str, pattern: re.Pattern[str] | None = None) -> Acquisition | None:
    """An instant or a period written in a name: the user's pattern first, then two dates
    (`20200101_20200131`), a date or date-time, a month (`2020-07`), a year (`2020`)."""
    if pattern is not None and (match := pattern.search(name)) is not None:
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        found = _period(parts, match.group(0))
        if found is not None:
            return found
    if (landsat := _LANDSAT_ID.search(name)) is not None:
        day = landsat.group("acquired")
        acquired = _instant({"year": int(day[:4]), "month": int(day[4:6]), "day": int(day[6:])})
        if acquired is not None:
            return Acquisition(acquired, f"name:{day}")
    for match in _RANGE.finditer(name):
        g = {k: int(v) for k, v in match.groupdict().items()}
        start = _instant({"year": g["y1"], "month": g["m1"], "day": g["d1"]})
        end = _instant({"year": g["y2"], "month": g["m2"], "day": g["d2"]})
        if start and end and start <= end:
            end = end + timedelta(days=1) - timedelta(microseconds=1)
            return Acquisition(start, f"name:{match.group(0)}", start, end)
    instant = datetime_from_name(name)
    if instant is not None:
        return Acquisition(instant[0], f"name:{instant[1]}")
    for regex in (_MONTH, _YEAR):
        for match in regex.finditer(name):
            found = _period({k: int(v) for k, v in match.groupdict().items()}, match.group(0))
            if found is not None:
                return found
    return None


def _period(parts: dict[str, int], text: str) -> Acquisition | None:
    """A full date-time is an instant; a year, or a year and month, is that whole period."""
    if "day" in parts:
        instant = _instant(parts)
        return Acquisition(instant, f"name:{text}") if instant else None
    start = _instant({"year": parts.get("year", 0), "month": parts.get("month", 1), "day": 1})
    if start is None:
        return None
    if "month" in parts:
        after = start.replace(year=start.year + (start.month == 12),
                              month=start.month % 12 + 1)  # fmt: skip
    else:
        after = start.replace(year=start.year + 1)
    return Acquisition(start, f"name:{text}", start, after - timedelta(microseconds=1))


def find_acquisition(
    *,
    override: datetime | None,
    tags: Mapping[str, str],
    relpath: str,
    sidecar: Acquisition | None = None,
    user: Acquisition | None = None,
    pattern: re.Pattern[str] | None = None,
    order: tuple[str, ...] = DEFAULT_ORDER,
) -> Acquisition | None:
    """The acquisition time from the first source in `order` that has one; None if none."""
    for kind in order:
        found = None
        if kind == "option" and override is not None:
            found = Acquisition(as_utc(override), "option")
        elif kind == "sidecar":
            found = sidecar
        elif kind == "user":
            found = user
        elif kind == "tag":
            found = _from_tags(tags)
        elif kind == "name":
            # The file name first, then its folders from the nearest outwards.
            for part in reversed(relpath.split("/")):
                if (found := acquisition_from_name(part, pattern)) is not None:
                    break
        if found is not None:
            return found
    return None


def _from_tags(tags: Mapping[str, str]) -> Acquisition | None:
    for key in DATETIME_TAGS:
        value = tags.get(key)
        if value and (parsed := parse_tag_datetime(value)) is not None:
            return Acquisition(parsed, f"tag:{key}")
    return None
