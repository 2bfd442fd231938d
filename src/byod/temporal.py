"""Acquisition time of an input, from the first source that has one.

Pure functions over plain values. Sources, in the default order: the `--datetime` option,
the folder's byod-metadata.csv (user), product metadata sidecars, acquisition metadata inside
the file (GDAL's IMAGERY `ACQUISITIONDATETIME`, a CF NetCDF variable's time coordinate), the
file and folder names, and last `TIFFTAG_DATETIME`, which the TIFF 6.0 spec defines as the
time the image was created (written), not acquired. An input with none of them is time-less:
`Acquisition.unknown` says "acquired at some time up to now", never a made-up instant.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

# GDAL's IMAGERY-domain acquisition tags: an acquisition time written by the producer.
ACQUISITION_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATETIME")
# TIFF 6.0, tag 306: "Date and time of image creation", i.e. when the file was written.
WRITTEN_TAG = "TIFFTAG_DATETIME"

MIN_YEAR, MAX_YEAR = 1900, 2100
DEFAULT_ORDER = ("option", "user", "sidecar", "tag", "name", "written")

# A time-less input: STAC requires start/end when datetime is null, and forbids null bounds
# (stac-spec #1161), so the open start is the earliest instant RFC 3339 can write.
UNKNOWN_SOURCE = "unknown"
UNKNOWN_START = datetime(1, 1, 1, tzinfo=UTC)
UNKNOWN_NOTE = (
    "no acquisition time found: ingested with datetime null and the period 'acquired up to "
    "{until}'; {advice}"
)
# How a user gives a time through each source they control, in the order's terms; the
# others (sidecar, tag, written) are the inputs' own.
_GIVEN_BY = {
    "option": ("--datetime", "`time: {datetime: ...}` in byod.yaml"),
    "user": ("a byod-metadata.csv row",), "name": ("a date in the file name",),
}  # fmt: skip
WRITTEN_NOTE = (
    "time taken from TIFFTAG_DATETIME, the time the file was written (TIFF 6.0), as nothing "
    "else gave one; {advice}"
)

_MICROSECOND = timedelta(microseconds=1)
_DAY = timedelta(days=1)
Instant = datetime  # the field `Acquisition.datetime` shadows the type inside the class


@dataclass(frozen=True)
class Acquisition:
    """When the data was acquired, and which source said so.

    A period (a day named without a time, a week, a month, a year, two dates, a CF time
    axis) has `start` and `end` (inclusive, UTC: the end is the period's last microsecond);
    `datetime` is then the period's start. An instant has neither. A time-less input has
    `datetime` None and the period [UNKNOWN_START, when it was first ingested]. `note` says
    why a source or a date was chosen when that was a choice (for the report).

    The fields become the item's `datetime`, `start_datetime` and `end_datetime` (STAC
    Item spec and common metadata, RFC 3339 UTC); STAC requires the two bounds when
    `datetime` is null, which `unknown` provides.
    """

    datetime: Instant | None
    source: str  # "option", "user:...", "sidecar:<file>", "tag:<NAME>", "cf:<var>", "name:..."
    start: Instant | None = None
    end: Instant | None = None
    note: str | None = None

    @classmethod
    def unknown(cls, until: Instant, order: Sequence[str] = DEFAULT_ORDER) -> Acquisition:
        """No time anywhere: acquired at some time up to `until` (whole seconds, UTC). The
        note's advice names only the ways to give a time that the run's `order` reads."""
        end = as_utc(until).replace(microsecond=0)
        note = UNKNOWN_NOTE.format(until=end.isoformat().replace("+00:00", "Z"),
                                   advice=time_advice(order))  # fmt: skip
        return cls(None, UNKNOWN_SOURCE, UNKNOWN_START, end, note)

    @property
    def is_unknown(self) -> bool:
        """Whether no source gave a time (`unknown`): `datetime` is None."""
        return self.source == UNKNOWN_SOURCE


# What each kind of source is, in the user's words (for the messages naming the order).
SOURCE_WORDS = {
    "option": "--datetime", "user": "byod-metadata.csv", "sidecar": "product metadata",
    "tag": "the file's tags or time coordinate",
    "name": "the name (e.g. 20240131, 2024-01-31, 20240131T101500, 2024-07, 2024)",
    "written": "TIFFTAG_DATETIME",
}  # fmt: skip


def time_advice(order: Sequence[str]) -> str:
    """How to give an input a time, naming only what `order` (the run's time order) reads:
    `--datetime`, a byod-metadata.csv row, a date in the file name; with none of them in
    it, which to add."""
    ways = [way for kind in order for way in _GIVEN_BY.get(kind, ())]
    if len(ways) > 2:
        return "give one with " + ", ".join(ways[:-1]) + ", or " + ways[-1]
    if ways:
        return "give one with " + " or ".join(ways)
    return (f"the time order ({', '.join(order)}) reads none you give: add option "
            "(--datetime), user (a byod-metadata.csv row) or name (a date in the file name) "
            "to it")  # fmt: skip


def no_time_message(label: str, order: Sequence[str]) -> str:
    """The `no_datetime` rejection's message: the sources the run's order looked in (only
    those), and the two ways the run may have been told to require a time."""
    looked = [SOURCE_WORDS[k] for k in order if k in SOURCE_WORDS]
    listed = ", ".join(looked[:-1]) + (" or " if len(looked) > 1 else "") + looked[-1] if looked \
        else "no source (the order is empty)"  # fmt: skip
    return (f"{label}: no acquisition time in {listed}, and the run requires one "
            "(--require-datetime, or `time: {require: true}` in byod.yaml)")  # fmt: skip


def shown_time(properties: Mapping[str, Any]) -> str:
    """An item's time as people read it (the search table, browse cards): its instant, its
    period as START/END (dates alone for whole days, `2023-01-01/2023-12-31`; one whole
    day as its date), or
    "unknown" for a time-less item (its 0001-01-01 start is STAC's placeholder, not a time).
    A period's `datetime` is its start, so it is never shown alone as if an instant."""
    if properties.get("byod:datetime_source") == UNKNOWN_SOURCE:
        return "unknown"
    start, end = properties.get("start_datetime"), properties.get("end_datetime")
    if start and end:
        first, last = parse_tag_datetime(str(start)), parse_tag_datetime(str(end))
        whole_days = (first is not None and last is not None and first.time() == time()
                      and (last + _MICROSECOND).time() == time())  # fmt: skip
        if whole_days and first is not None and last is not None:
            same = first.date() == last.date()  # one whole day (CHIRPS daily): the day
            return str(first.date()) if same else f"{first.date()}/{last.date()}"
        return f"{start}/{end}"
    return str(properties.get("datetime") or "unknown")


def as_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_tag_datetime(text: str) -> datetime | None:
    """Parse a TIFF `YYYY:MM:DD HH:MM:SS` (TIFF 6.0 DateTime, NULs stripped) or an ISO
    8601 time, as timezone-aware UTC (a naive time is taken to be UTC); None when it is
    neither."""
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


# --- dates in names ----------------------------------------------------------------------
#
# Each form is a regex with named groups; a date must not run on into more digits (a tile
# number is no date), and the coarse forms (year+doy, week, month, year) must stand apart
# from letters too (`2000m`, `v2020a`). Where forms overlap, the longest match wins.

_NOT_DIGIT_BEFORE = r"(?<!\d)"
_APART_BEFORE = r"(?<![\dA-Za-z])"
_CLOCK = r"(?P<hour>\d{2})(?P<sep>[:\-]?)(?P<minute>\d{2})(?P=sep)(?P<second>\d{2})"
_FORMS = (
    # 20240131T101500, 20240131_101500, AVIRIS-NG ang20200712t181214
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})[Tt_]?"
    r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})(?:\.\d+)?(?![\d])",
    # 2024-01-31T10:15:00, 2019-01-15t103359, 2024-01-31_10-15-00
    _NOT_DIGIT_BEFORE
    + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt_ ]"
    + _CLOCK
    + r"(?:\.\d+)?(?![\d\-:])",
    # hour and minute stamps of NWP and reanalysis runs and geostationary slots:
    # ERA5_2019011512, gfs_2023061500 (YYYYMMDDHH), seviri_202301151215 (YYYYMMDDHHMM),
    # 20230115T1215Z
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})[Tt]?(?P<hour>\d{2})"
    r"(?P<minute>\d{2})?(?!\d)",
    # NASA HLS: year, day of year, time (HLS.S30.T32TQM.2023166T103629.v2.0)
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})(?P<doy>\d{3})[Tt](?P<hour>\d{2})(?P<minute>\d{2})"
    r"(?P<second>\d{2})(?!\d)",
    # 2024-01-31, 20240131, CHIRPS 2020.01.01
    # (not before a unit: dem_2000-10-30m is 30 m; T starts a time, Z a zone)
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\d|[A-SU-Ya-su-y])",
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?!\d)",
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})\.(?P<month>\d{2})\.(?P<day>\d{2})(?!\d|[A-SU-Ya-su-y])",
    # unpadded or underscored parts with any one separator: _2022_9_9, 2022-9-9, 2022_09_09,
    # 2022.9.9, `photo 2022 09 09` (year first: never ambiguous)
    # (a unit after the day makes it a quantity: dem_2000_10_30m is 30 m, not the 30th; a
    # time may follow: 2022_09_09T10...)
    _APART_BEFORE + r"(?P<year>\d{4})(?P<dsep>[_\-. ])(?P<month>\d{1,2})(?P=dsep)"
    r"(?P<day>\d{1,2})(?!\d|[A-SU-Za-su-z])",
    # year + day of year: MODIS/VIIRS A2011009, MODIS .2011.009., Landsat-style 2017101
    _APART_BEFORE + r"[Aa](?P<year>\d{4})(?P<doy>\d{3})(?!\d)",
    _APART_BEFORE + r"(?P<year>\d{4})\.(?P<doy>\d{3})(?![\dA-Za-z])",
    _APART_BEFORE + r"(?P<year>\d{4})(?P<doy>\d{3})(?![\dA-Za-z])",
    # an ISO 8601 week (2020-W05, 2020W05) or week date (2020-W05-3)
    _APART_BEFORE + r"(?P<year>\d{4})-?W(?P<week>\d{2})(?:-?(?P<weekday>[1-7]))?(?![\dA-Za-z])",
    # a month: 2020-07, era5_t2m_2019_01, CHIRPS monthly 2020.01
    _APART_BEFORE + r"(?P<year>\d{4})[\-._](?P<month>\d{2})(?![\dA-Za-z]|[-_]\d|\.\d\d)",
    # a lone year: _2020., -2020_, ESA CCI -2015-v2.0.7
    _APART_BEFORE + r"(?P<year>\d{4})(?![\dA-Za-z]|-\d)",
)
_PATTERNS = tuple(re.compile(p) for p in _FORMS)
# A period as two stamps of the same precision joined by `-` or `_` (CMIP DRS time ranges
# 2015-2100, 201501-210012, 20150101-20151231, down to YYYYMMDDhhmmss; ESA CCI 1992_2015).
_RANGE = re.compile(
    _APART_BEFORE + r"(?P<first>\d{4}(?:\d\d){0,5})[-_](?P<last>\d{4}(?:\d\d){0,5})(?!\d)"
)
# An ISO 8601 duration right before a date gives the period's length (ESA CCI `P1Y-2015`).
_DURATION = re.compile(r"(?<![\dA-Za-z])P(?P<count>\d{1,3})(?P<unit>[YMWD])[_\-.]$")
_STAMP_KEYS = ("year", "month", "day", "hour", "minute", "second")

# A stamp right after these is when the file was made, not when the data was acquired:
# `_c20190103154220` (NOAA/GOES creation), `_processed_20200715`, `created-2021-01-01`.
_MADE_MARKER = re.compile(
    r"(?i)(?:(?:^|[_\-.])c|(?:processed|processing|proc|created|creation|production|"
    r"generated|prod)[_\-.]?)$"
)
# Day and month before a year (01.06.2023, 06-01-2023, 1_6_2023, `15 07 2023`): day-month-year
# or month-day-year by region, which the name does not say, so never read as a day.
_DAY_MONTH_BEFORE = re.compile(r"(?<![\dA-Za-z.])\d{1,2}(?P<sep>[_\-. ])\d{1,2}(?P=sep)$")
_DAY_MONTH_NOTE = (
    "the name's {whole!r} may be day-month-year or month-day-year, which it does not say: "
    "only the year {year} taken, {ignored!r} not read; give the day with --datetime, a "
    "byod-metadata.csv row or --datetime-pattern (e.g. '(?P<day>\\d{{2}})\\.(?P<month>\\d{{2}})"
    "\\.(?P<year>\\d{{4}})')"
)
# Two dates joined like this are a period: 20200101_20200131, 2020-01-01_to_2020-03-31.
_PERIOD_JOIN = re.compile(r"(?i)^(?:[_\-]{1,2}|[_\-]to[_\-])$")

# Product layouts whose dates are known (the acquisition one is not always the first).
# Landsat Collection 1/2 product id: acquisition date, then processing date.
_LANDSAT_ID = re.compile(r"(?i)L[COTEM]0\d_L[12][A-Z]{2}_\d{6}_(?P<acquired>\d{8})_\d{8}_")
# Landsat scene id (pre-collection): LXSPPPRRRYYYYDDDGSIVV.
_LANDSAT_SCENE = re.compile(
    r"(?<![A-Za-z0-9])L[COTEM]\d{7}(?P<year>\d{4})(?P<doy>\d{3})[A-Z]{3}\d{2}(?![A-Za-z0-9])"
)
# Sentinel-2 product: datatake sensing start, ..., then the product discriminator.
_SENTINEL2 = re.compile(
    r"S2[A-D]_MSI(?:L1C|L2A)_(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})T(?P<hour>\d{2})"
    r"(?P<minute>\d{2})(?P<second>\d{2})_N\d{4}_R\d{3}_T\w{5}_\d{8}T\d{6}"
)
# GOES-R ABI: s(tart) and e(nd) of the scan as YYYYDDDHHMMSS + tenths, c(reated) after.
_GOES_STAMP = r"(?P<{0}year>\d{{4}})(?P<{0}doy>\d{{3}})(?P<{0}hour>\d{{2}})" \
    r"(?P<{0}minute>\d{{2}})(?P<{0}second>\d{{2}})(?P<{0}tenth>\d)"  # fmt: skip
_GOES = re.compile(r"_s" + _GOES_STAMP.format("s") + r"_e" + _GOES_STAMP.format("e") + r"_c\d{14}")
# GPM PPS file naming convention (IMERG, GPROF, ...): YYYYMMDD-SHHMMSS-EHHMMSS, the first
# and the last second of the granule (an orbit's end may be past midnight); an IMERG
# monthly (3B-MO) file carries its month's first day.
_GPM = re.compile(
    r"(?<!\d)(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})-S(?P<start>\d{6})-E(?P<end>\d{6})(?!\d)"
)
_GPM_MONTHLY = re.compile(r"(?i)(?<![A-Za-z0-9])3B-MO\.")
# CHIRPS dekads (YYYY.MM.1-3: days 1-10, 11-20, 21-end) and pentads (YYYY.MM.1-6: days 1-5,
# ..., 26-end) share one name form; a pentad lies in a folder named so (global_pentad).
_CHIRPS = re.compile(
    r"(?i)chirps?\b.*?(?<!\d)(?P<year>\d{4})\.(?P<month>\d{2})\.(?P<part>[1-6])(?![\dA-Za-z])"
)
_DEKAD_FIRST_DAYS = (1, 11, 21)
_PENTAD_FIRST_DAYS = (1, 6, 11, 16, 21, 26)
# Dates split over folders, innermost last: YYYY/MM/DD, YYYY/DDD (LAADS), YYYY/MM.
_FOLDER_CHAINS = tuple(
    tuple(re.compile(part) for part in chain)
    for chain in (
        (r"(?P<year>\d{4})", r"(?P<month>\d{1,2})", r"(?P<day>\d{1,2})"),
        (r"(?P<year>\d{4})", r"(?P<doy>\d{3})"),
        (r"(?P<year>\d{4})", r"(?P<month>\d{1,2})"),
    )
)


@dataclass(frozen=True)
class _Date:
    """A date written in a name: where, its text, the span it covers, and how fine it is."""

    at: int
    stop: int
    text: str
    start: datetime
    end: datetime
    fine: bool  # a day or finer (not a week, a month or a year)
    period: bool = False  # an explicit period: a range or a date with its duration


def _instant(parts: Mapping[str, int]) -> datetime | None:
    """The UTC instant of year/month/day(/hour/minute/second) or year/doy; None if invalid."""
    if not MIN_YEAR <= parts.get("year", 0) <= MAX_YEAR:
        return None
    try:
        if "doy" in parts:
            first = datetime(parts["year"], 1, 1, tzinfo=UTC)
            when = first + timedelta(days=parts["doy"] - 1)
            if parts["doy"] < 1 or when.year != first.year:  # day 366 of a common year
                return None
            return when.replace(hour=parts.get("hour", 0), minute=parts.get("minute", 0),
                                second=parts.get("second", 0))  # fmt: skip
        if "week" in parts:  # ISO 8601 week date; week 53 exists only in long years
            day = datetime.fromisocalendar(parts["year"], parts["week"], parts.get("weekday", 1))
            return day.replace(tzinfo=UTC)
        keys = ("year", "month", "day", "hour", "minute", "second")
        return datetime(tzinfo=UTC, **{k: parts[k] for k in keys if k in parts})
    except (ValueError, TypeError):  # 20241345 is no date
        return None


def _plus(start: datetime, count: int, unit: str) -> datetime | None:
    """`start` plus an ISO 8601 duration of `count` years (Y), months (M), weeks (W) or days
    (D); None when the result does not exist (29 February plus a year)."""
    if unit in "WD":
        return start + timedelta(days=count * (7 if unit == "W" else 1))
    months = start.month - 1 + count * (12 if unit == "Y" else 1)
    try:
        return start.replace(year=start.year + months // 12, month=months % 12 + 1)
    except ValueError:
        return None


def _span(parts: Mapping[str, int]) -> tuple[datetime, datetime, bool] | None:
    """The span a date covers, inclusive: an instant, a day, a week, a month or a year."""
    if "week" in parts and "weekday" not in parts:
        start = _instant(parts)
        return None if start is None else (start, start + timedelta(days=7) - _MICROSECOND, False)
    if not {"day", "doy", "week"} & parts.keys():
        start = _instant({"year": parts.get("year", 0), "month": parts.get("month", 1), "day": 1})
        after = None if start is None else _plus(start, 1, "M" if "month" in parts else "Y")
        return None if start is None or after is None else (start, after - _MICROSECOND, False)
    start = _instant(parts)
    if start is None:
        return None
    if "hour" in parts:
        return start, start, True
    return start, start + timedelta(days=1) - _MICROSECOND, True


def _ints(match: re.Match[str]) -> dict[str, int]:
    return {k: int(v) for k, v in match.groupdict().items() if v and v.isdigit()}


def _stamp(text: str) -> dict[str, int]:
    """The parts of a compact stamp YYYY[MM[DD[hh[mm[ss]]]]]."""
    starts = (0, 4, 6, 8, 10, 12)
    return {key: int(text[i : i + (4 if i == 0 else 2)])
            for key, i in zip(_STAMP_KEYS, starts, strict=True) if i < len(text)}  # fmt: skip


def _dates(name: str) -> list[_Date]:
    """Every date written in a name, left to right, the longest where forms overlap."""
    found = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(name):
            span = _span(_ints(match))
            if span is not None:
                found.append(_Date(match.start(), match.end(), match.group(0), *span))
    for match in _RANGE.finditer(name):
        first, last = match.group("first"), match.group("last")
        spans = (_span(_stamp(first)), _span(_stamp(last))) if len(first) == len(last) else ()
        if spans and spans[0] and spans[1] and spans[0][0] <= spans[1][0]:
            found.append(_Date(match.start(), match.end(), match.group(0), spans[0][0],
                               spans[1][1], spans[0][2], period=True))  # fmt: skip
    found.sort(key=lambda d: (d.at, d.at - d.stop))
    kept: list[_Date] = []
    for date in found:
        if not kept or date.at >= kept[-1].stop:
            kept.append(date)
    return [_with_duration(name, date) for date in kept]


def _with_duration(name: str, date: _Date) -> _Date:
    """A date right after an ISO 8601 duration (`P1Y-2015`) is a period of that length."""
    duration = _DURATION.search(name[: date.at])
    if duration is None or date.period:
        return date
    after = _plus(date.start, int(duration.group("count")), duration.group("unit"))
    if after is None or after <= date.start:
        return date
    at = duration.start()
    return _Date(at, date.stop, name[at : date.stop], date.start, after - _MICROSECOND,
                 date.fine, period=True)  # fmt: skip


def _is_made_stamp(name: str, date: _Date) -> bool:
    return _MADE_MARKER.search(name[: date.at]) is not None


def _several(dates: Sequence[_Date], chosen: str, why: str) -> str | None:
    """The report's note when a name holds more than one date (day or finer)."""
    texts = [d.text for d in dates if d.fine]
    if len(texts) < 2:
        return None
    return f"the name holds several dates ({', '.join(texts)}): {chosen} taken ({why})"


def _acquisition(start: datetime, end: datetime, text: str, note: str | None = None) -> Acquisition:
    """An instant when the span is one, else the period with `datetime` at its start."""
    if start == end:
        return Acquisition(start, f"name:{text}", note=note)
    return Acquisition(start, f"name:{text}", start, end, note)


def _from_layout(name: str, pentads: bool) -> Acquisition | None:
    """Dates of products whose names byod knows: the acquisition date by its place."""
    dates = _dates(name)
    if (landsat := _LANDSAT_ID.search(name)) is not None:
        day = landsat.group("acquired")
        span = _span(_stamp(day))
        if span is not None:
            why = "Landsat product id: acquisition date, then processing date"
            return _acquisition(span[0], span[1], day, _several(dates, day, why))
    if (scene := _LANDSAT_SCENE.search(name)) is not None:
        span = _span(_ints(scene))
        if span is not None:
            return _acquisition(span[0], span[1], f"{scene.group('year')}{scene.group('doy')}")
    if (s2 := _SENTINEL2.search(name)) is not None:
        when = _instant(_ints(s2))
        if when is not None:
            text = s2.group(0)[11:26]
            why = "Sentinel-2 product name: sensing time, then the product discriminator"
            return Acquisition(when, f"name:{text}", note=_several(dates, text, why))
    if (goes := _GOES.search(name)) is not None:
        stamps = []
        for side in "se":
            parts = {k[1:]: int(v) for k, v in goes.groupdict().items() if k[0] == side}
            when = _instant(parts)
            stamps.append(None if when is None else when + timedelta(seconds=parts["tenth"] / 10))
        start, end = stamps
        if start is not None and end is not None and start <= end:
            note = "GOES-R name: scan start (s) to end (e); the c-stamp is the file's creation"
            return Acquisition(start, f"name:{goes.group(0)[1:]}", start, end, note)
    if (gpm := _GPM.search(name)) is not None and (found := _gpm(gpm, name)) is not None:
        return found
    if (chirps := _CHIRPS.search(name)) is not None:
        return _chirps(chirps, pentads)
    return None


def _gpm(match: re.Match[str], name: str) -> Acquisition | None:
    day = match.group(0)[:8]
    if _GPM_MONTHLY.search(name) is not None:
        span = _span(_stamp(day[:6]))
        return None if span is None else _acquisition(span[0], span[1], match.group(0))
    start, end = (_instant(_stamp(day + match.group(side))) for side in ("start", "end"))
    if start is None or end is None:
        return None
    # E is the granule's last second (PPS: StopGranuleDateTime ...:59.999); past midnight
    # when it is earlier than S.
    end += timedelta(days=end < start, seconds=1) - _MICROSECOND
    return _acquisition(start, end, match.group(0))


def _chirps(match: re.Match[str], pentads: bool) -> Acquisition | None:
    part = int(match.group("part"))
    parts = _ints(match)
    month = _span({"year": parts["year"], "month": parts["month"]})
    if month is None:
        return None
    pentad = pentads or part > len(_DEKAD_FIRST_DAYS)
    firsts = _PENTAD_FIRST_DAYS if pentad else _DEKAD_FIRST_DAYS
    if part > len(firsts):
        return None
    start = month[0].replace(day=firsts[part - 1])
    end = month[1] if part == len(firsts) else month[0].replace(day=firsts[part]) - _MICROSECOND
    kind = "pentad" if pentad else "dekad"
    text = match.group(0)[match.start("year") - match.start() :]
    note = f"CHIRPS {kind} {part}: days {start.day}-{end.day}" + (
        "" if pentad else " (a pentad file lies in a folder whose name says 'pentad')"
    )
    return _acquisition(start, end, text, note)


def acquisition_from_name(
    name: str, pattern: re.Pattern[str] | None = None, *, pentads: bool = False
) -> Acquisition | None:
    """An instant or a period written in a name (times UTC, period ends inclusive).

    In order: the user's pattern; the layout of a known product (Landsat, Sentinel-2,
    GOES-R, GPM PPS `-S...-E...`, CHIRPS dekads, or pentads when `pentads`); an explicit
    period (a range `201501-210012`, a date after an ISO 8601 duration `P1Y-2015`, or two
    dates joined by `_`, `-`, `--` or `_to_`, the first not after the second); the first
    date of a day or finer; a week, month or year. A date-time is an instant; a date
    without a time is its whole day (start to its last microsecond). Creation and
    processing stamps (`_c20190103154220`, `_processed_20200715`) are never taken.
    """
    if pattern is not None and (match := pattern.search(name)) is not None:
        span = _span(_ints(match))
        if span is not None:
            return _acquisition(span[0], span[1], match.group(0))
    if (known := _from_layout(name, pentads)) is not None:
        return known
    dates = _dates(name)
    usable = [d for d in dates if not _is_made_stamp(name, d)]
    made = [name[max(0, d.at - 1) : d.stop].lstrip("_-.") for d in dates if d not in usable]
    why_made = f"; {', '.join(made)} is when the file was made" if made else ""
    periods = [(d.at, d.text, d.start, d.end, 1) for d in usable if d.period]
    for first, second in itertools.pairwise(usable):
        joined = _PERIOD_JOIN.match(name[first.stop : second.at]) is not None
        if joined and first.fine == second.fine and first.start <= second.start:
            periods.append((first.at, name[first.at : second.stop], first.start,
                            max(second.end, first.end), 2))  # fmt: skip
    if periods:
        _, text, start, end, inside = min(periods)
        # A note only when the name held more than the period.
        note = _several(dates, text, "a period" + why_made) if len(dates) > inside else None
        return _acquisition(start, end, text, note)
    fine = [d for d in usable if d.fine]
    if fine:
        date = fine[0]
        return _acquisition(date.start, date.end, date.text,
                            _several(dates, date.text, "the first" + why_made))  # fmt: skip
    if usable:  # a week, a month or a year
        date = usable[0]
        return _acquisition(date.start, date.end, date.text, _day_month_note(name, date))
    return None


def _day_month_note(name: str, date: _Date) -> str | None:
    """The note for a year written after a day and a month in an order the name does not
    say (`01.06.2023`); None for any other date."""
    before = _DAY_MONTH_BEFORE.search(name[: date.at])
    if before is None or len(date.text) != 4:
        return None
    ignored = before.group(0)[:-1]
    return _DAY_MONTH_NOTE.format(whole=name[before.start() : date.stop], year=date.text,
                                  ignored=ignored)  # fmt: skip


def datetime_from_name(name: str) -> tuple[datetime, str] | None:
    """The instant or the day (its start) a name gives, and the text it was read from."""
    found = acquisition_from_name(name)
    if found is None or found.datetime is None:
        return None
    if found.start is not None and found.end is not None and found.end - found.start >= _DAY:
        return None
    return found.datetime, found.source.removeprefix("name:")


# --- CF time coordinates -----------------------------------------------------------------


def cf_acquisition(
    values: Sequence[float],
    units: str,
    calendar: str | None,
    bounds: Sequence[tuple[float, float]] | None,
    source: str,
) -> Acquisition:
    """The time of a CF variable from its time coordinate (CF 1.11, section 4.4, 7.1).

    One step without bounds is an instant. Several steps, or any step with bounds
    (`time_bnds`), are the period from the first step (or its lower bound) to the last step
    (or its upper bound, exclusive in CF, so the last microsecond before it). Decoded with
    cftime (units "<unit> since <epoch>", any CF calendar). Raises ValueError when the time
    cannot be decoded or a date does not exist in the real calendar (360_day's 30 February).
    """
    numbers = [float(v) for v in values]
    if not numbers:
        raise ValueError("the time coordinate is empty")
    low = min(numbers) if bounds is None else min(min(b) for b in bounds)
    high = max(numbers) if bounds is None else max(max(b) for b in bounds)
    start, end = _cf_dates([low, high], units, calendar)
    if len(numbers) == 1 and bounds is None:
        return Acquisition(start, source)
    if bounds is not None and end > start:
        end -= _MICROSECOND  # CF bounds are [lower, upper)
    return Acquisition(start, source, start, end)


def _cf_dates(numbers: list[float], units: str, calendar: str | None) -> list[datetime]:
    """Decode with cftime in the variable's calendar, then keep the date as labelled
    (a noleap model's 1 March is 1 March); a label no real calendar has is an error."""
    import cftime  # only NetCDF inputs need it

    calendar = calendar or "standard"
    try:
        dates = cftime.num2date(numbers, units, calendar, only_use_cftime_datetimes=True)
        return [datetime(d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond,
                         tzinfo=UTC) for d in dates]  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ValueError(f"time units {units!r}, calendar {calendar}: {exc}") from None


# --- choosing ------------------------------------------------------------------------------


def find_acquisition(
    *,
    override: datetime | None,
    tags: Mapping[str, str],
    relpath: str,
    sidecar: Acquisition | None = None,
    user: Acquisition | None = None,
    embedded: Acquisition | None = None,
    pattern: re.Pattern[str] | None = None,
    order: tuple[str, ...] = DEFAULT_ORDER,
) -> Acquisition | None:
    """The acquisition time from the first source in `order` that has one; None if none.

    Kinds: `option`, `user`, `sidecar`, `tag` (the file's own acquisition metadata:
    `embedded`, e.g. a CF time coordinate, then GDAL's IMAGERY ACQUISITIONDATETIME), `name`
    (the file name, then its folders from the nearest outwards; `relpath` is the input's
    POSIX path below the source folder) and `written` (TIFFTAG_DATETIME: when the file was
    written, TIFF 6.0 tag 306, so last and with a note). `tags` are the file's GDAL metadata
    (default and IMAGERY domains); `override` a naive time is taken as UTC. Kinds not in
    `order` are never looked at; unknown kinds are skipped. Raises nothing: unreadable
    values are no answer.
    """
    written_note = WRITTEN_NOTE.format(advice=time_advice(order))
    sources: dict[str, Callable[[], Acquisition | None]] = {
        "option": lambda: None if override is None else Acquisition(as_utc(override), "option"),
        "user": lambda: user,
        "sidecar": lambda: sidecar,
        "tag": lambda: embedded or _from_tags(tags, ACQUISITION_TAGS),
        "name": lambda: _from_path(relpath, pattern),
        "written": lambda: _from_tags(tags, (WRITTEN_TAG,), written_note),
    }
    for kind in order:
        found = sources[kind]() if kind in sources else None
        if found is not None:
            return found
    return None


def _from_path(relpath: str, pattern: re.Pattern[str] | None) -> Acquisition | None:
    """The file name, then its folders from the nearest outwards; at each folder, a date
    split over it and the folders above (`2023/07/15/`, `2021/001/`, `2023/07/`) first."""
    *folders, name = relpath.split("/")
    pentads = any("pentad" in folder.lower() for folder in folders)
    if (found := acquisition_from_name(name, pattern, pentads=pentads)) is not None:
        return found
    for inner in range(len(folders), 0, -1):
        if (found := _from_folders(folders[:inner])) is not None:
            return found
        if found := acquisition_from_name(folders[inner - 1], pattern, pentads=pentads):
            return found
    return None


def _from_folders(folders: Sequence[str]) -> Acquisition | None:
    """A date whose parts are the innermost folders, one part per folder."""
    for chain in _FOLDER_CHAINS:
        names = folders[len(folders) - len(chain) :] if len(folders) >= len(chain) else []
        matches = [p.fullmatch(n) for p, n in zip(chain, names, strict=False)]
        if names and all(matches):
            parts = {k: int(v) for m in matches if m for k, v in m.groupdict().items()}
            if (span := _span(parts)) is not None:
                return _acquisition(span[0], span[1], "/".join(names))
    return None


def _from_tags(
    tags: Mapping[str, str], keys: tuple[str, ...], note: str | None = None
) -> Acquisition | None:
    for key in keys:
        value = tags.get(key)
        if value and (parsed := parse_tag_datetime(value)) is not None:
            return Acquisition(parsed, f"tag:{key}", note=note)
    return None
