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
from datetime import UTC, datetime, timedelta

# GDAL's IMAGERY-domain acquisition tags: an acquisition time written by the producer.
ACQUISITION_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATETIME")
# TIFF 6.0, tag 306: "Date and time of image creation", i.e. when the file was written.
WRITTEN_TAG = "TIFFTAG_DATETIME"
DATETIME_TAGS = (*ACQUISITION_TAGS, WRITTEN_TAG)

MIN_YEAR, MAX_YEAR = 1900, 2100
DEFAULT_ORDER = ("option", "user", "sidecar", "tag", "name", "written")

# A time-less input: STAC requires start/end when datetime is null, and forbids null bounds
# (stac-spec #1161), so the open start is the earliest instant RFC 3339 can write.
UNKNOWN_SOURCE = "unknown"
UNKNOWN_START = datetime(1, 1, 1, tzinfo=UTC)
UNKNOWN_NOTE = (
    "no acquisition time found: ingested with datetime null and the period 'acquired up to "
    "{until}'; give one with --datetime, `datetime:` in byod.yaml, a byod-metadata.csv row, "
    "or a date in the file name"
)
WRITTEN_NOTE = (
    "time taken from TIFFTAG_DATETIME, the time the file was written (TIFF 6.0), as nothing "
    "else gave one; give the acquisition time with --datetime, byod-metadata.csv or the name"
)

_MICROSECOND = timedelta(microseconds=1)
Instant = datetime  # the field `Acquisition.datetime` shadows the type inside the class


@dataclass(frozen=True)
class Acquisition:
    """When the data was acquired, and which source said so.

    A period (a year, a month, two dates, a CF time axis) has `start` and `end` (inclusive,
    UTC); `datetime` is then the period's start. A time-less input has `datetime` None and
    the period [UNKNOWN_START, when it was first ingested]. `note` says why a source or a
    date was chosen when that was a choice (for the report).
    """

    datetime: Instant | None
    source: str  # "option", "user:...", "sidecar:<file>", "tag:<NAME>", "cf:<var>", "name:..."
    start: Instant | None = None
    end: Instant | None = None
    note: str | None = None

    @classmethod
    def unknown(cls, until: Instant) -> Acquisition:
        """No time anywhere: acquired at some time up to `until` (whole seconds, UTC)."""
        end = as_utc(until).replace(microsecond=0)
        note = UNKNOWN_NOTE.format(until=end.isoformat().replace("+00:00", "Z"))
        return cls(None, UNKNOWN_SOURCE, UNKNOWN_START, end, note)

    @property
    def is_unknown(self) -> bool:
        return self.source == UNKNOWN_SOURCE


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


# --- dates in names ----------------------------------------------------------------------
#
# Each form is a regex with named groups; a date must not run on into more digits (a tile
# number is no date), and the coarse forms (year+doy, month, year) must stand apart from
# letters too (`2000m`, `v2020a`). Where forms overlap, the longest match wins.

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
    # 2024-01-31, 20240131, CHIRPS 2020.01.01
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?!\d)",
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})(?!\d)",
    _NOT_DIGIT_BEFORE + r"(?P<year>\d{4})\.(?P<month>\d{2})\.(?P<day>\d{2})(?!\d)",
    # unpadded or underscored parts with one separator: _2022_9_9, 2022-9-9, 2022_09_09
    _APART_BEFORE + r"(?P<year>\d{4})(?P<dsep>[_\-])(?P<month>\d{1,2})(?P=dsep)(?P<day>\d{1,2})"
    r"(?!\d)",
    # year + day of year: MODIS/VIIRS A2011009, MODIS .2011.009., Landsat-style 2017101
    _APART_BEFORE + r"[Aa](?P<year>\d{4})(?P<doy>\d{3})(?!\d)",
    _APART_BEFORE + r"(?P<year>\d{4})\.(?P<doy>\d{3})(?![\dA-Za-z])",
    _APART_BEFORE + r"(?P<year>\d{4})(?P<doy>\d{3})(?![\dA-Za-z])",
    # a month: 2020-07, CHIRPS monthly 2020.01 (and its dekads 2020.01.1, a part of it)
    _APART_BEFORE + r"(?P<year>\d{4})[\-.](?P<month>\d{2})(?![\dA-Za-z\-]|\.\d\d)",
    # a lone year: _2020., -2020_
    _APART_BEFORE + r"(?P<year>\d{4})(?![\dA-Za-z\-])",
)
_PATTERNS = tuple(re.compile(p) for p in _FORMS)

# A stamp right after these is when the file was made, not when the data was acquired:
# `_c20190103154220` (NOAA/GOES creation), `_processed_20200715`, `created-2021-01-01`.
_MADE_MARKER = re.compile(
    r"(?i)(?:(?:^|[_\-.])c|(?:processed|processing|proc|created|creation|production|"
    r"generated|prod)[_\-.]?)$"
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


@dataclass(frozen=True)
class _Date:
    """A date written in a name: where, its text, the span it covers, and how fine it is."""

    at: int
    stop: int
    text: str
    start: datetime
    end: datetime
    fine: bool  # a day or finer (not a month or a year)


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
        keys = ("year", "month", "day", "hour", "minute", "second")
        return datetime(tzinfo=UTC, **{k: parts[k] for k in keys if k in parts})
    except (ValueError, TypeError):  # 20241345 is no date
        return None


def _span(parts: Mapping[str, int]) -> tuple[datetime, datetime, bool] | None:
    """The span a date covers, inclusive: an instant, a day, a month or a year."""
    if "day" not in parts and "doy" not in parts:
        start = _instant({"year": parts.get("year", 0), "month": parts.get("month", 1), "day": 1})
        if start is None:
            return None
        if "month" in parts:
            after = start.replace(year=start.year + (start.month == 12),
                                  month=start.month % 12 + 1)  # fmt: skip
        else:
            after = start.replace(year=start.year + 1)
        return start, after - _MICROSECOND, False
    start = _instant(parts)
    if start is None:
        return None
    if "hour" in parts:
        return start, start, True
    return start, start + timedelta(days=1) - _MICROSECOND, True


def _ints(match: re.Match[str]) -> dict[str, int]:
    return {k: int(v) for k, v in match.groupdict().items() if v and v.isdigit()}


def _dates(name: str) -> list[_Date]:
    """Every date written in a name, left to right, the longest where forms overlap."""
    found = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(name):
            span = _span(_ints(match))
            if span is not None:
                found.append(_Date(match.start(), match.end(), match.group(0), *span))
    found.sort(key=lambda d: (d.at, d.at - d.stop))
    kept: list[_Date] = []
    for date in found:
        if not kept or date.at >= kept[-1].stop:
            kept.append(date)
    return kept


def _is_made_stamp(name: str, date: _Date) -> bool:
    return _MADE_MARKER.search(name[: date.at]) is not None


def _several(dates: Sequence[_Date], chosen: str, why: str) -> str | None:
    """The report's note when a name holds more than one date (day or finer)."""
    texts = [d.text for d in dates if d.fine]
    if len(texts) < 2:
        return None
    return f"the name holds several dates ({', '.join(texts)}): {chosen} taken ({why})"


def _from_layout(name: str) -> Acquisition | None:
    """Dates of products whose names byod knows: the acquisition date by its place."""
    dates = _dates(name)
    if (landsat := _LANDSAT_ID.search(name)) is not None:
        day = landsat.group("acquired")
        span = _span({"year": int(day[:4]), "month": int(day[4:6]), "day": int(day[6:])})
        if span is not None:
            why = "Landsat product id: acquisition date, then processing date"
            return Acquisition(span[0], f"name:{day}", note=_several(dates, day, why))
    if (scene := _LANDSAT_SCENE.search(name)) is not None:
        when = _instant(_ints(scene))
        if when is not None:
            return Acquisition(when, f"name:{scene.group('year')}{scene.group('doy')}")
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
    return None


def acquisition_from_name(name: str, pattern: re.Pattern[str] | None = None) -> Acquisition | None:
    """An instant or a period written in a name.

    In order: the user's pattern; the layout of a known product (Landsat, Sentinel-2,
    GOES-R); an explicit period (two dates joined by `_`, `-`, `--` or `_to_`, the first
    not after the second); the first date of a day or finer; a month; a year. Creation and
    processing stamps (`_c20190103154220`, `_processed_20200715`) are never taken.
    """
    if pattern is not None and (match := pattern.search(name)) is not None:
        span = _span(_ints(match))
        if span is not None:
            start, end, is_day = span
            text = f"name:{match.group(0)}"
            # A day or finer is an instant (as the built-in forms); a month or year a period.
            return Acquisition(start, text) if is_day else Acquisition(start, text, start, end)
    if (known := _from_layout(name)) is not None:
        return known
    dates = _dates(name)
    usable = [d for d in dates if not _is_made_stamp(name, d)]
    made = [name[max(0, d.at - 1) : d.stop].lstrip("_-.") for d in dates if d not in usable]
    why_made = f"; {', '.join(made)} is when the file was made" if made else ""
    for first, second in itertools.pairwise(usable):
        joined = _PERIOD_JOIN.match(name[first.stop : second.at]) is not None
        if joined and first.fine == second.fine and first.start <= second.start:
            text = name[first.at : second.stop]
            end = max(second.end, first.end)
            # Both dates are used: a note only when the name held more than the period.
            note = _several(dates, text, "a period" + why_made) if len(dates) > 2 else None
            return Acquisition(first.start, f"name:{text}", first.start, end, note)
    fine = [d for d in usable if d.fine]
    if fine:
        date = fine[0]
        note = _several(dates, date.text, "the first" + why_made)
        return Acquisition(date.start, f"name:{date.text}", note=note)
    if usable:  # a month or a year
        date = usable[0]
        return Acquisition(date.start, f"name:{date.text}", date.start, date.end)
    return None


def datetime_from_name(name: str) -> tuple[datetime, str] | None:
    """The instant (day or finer) a name gives, and the text it was read from."""
    found = acquisition_from_name(name)
    if found is None or found.datetime is None or found.start is not None:
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
    `embedded`, e.g. a CF time coordinate, then the IMAGERY acquisition tags), `name` (the
    file name, then its folders from the nearest outwards) and `written` (TIFFTAG_DATETIME).
    """
    sources: dict[str, Callable[[], Acquisition | None]] = {
        "option": lambda: None if override is None else Acquisition(as_utc(override), "option"),
        "user": lambda: user,
        "sidecar": lambda: sidecar,
        "tag": lambda: embedded or _from_tags(tags, ACQUISITION_TAGS),
        "name": lambda: _from_path(relpath, pattern),
        "written": lambda: _from_tags(tags, (WRITTEN_TAG,), WRITTEN_NOTE),
    }
    for kind in order:
        found = sources[kind]() if kind in sources else None
        if found is not None:
            return found
    return None


def _from_path(relpath: str, pattern: re.Pattern[str] | None) -> Acquisition | None:
    for part in reversed(relpath.split("/")):
        if (found := acquisition_from_name(part, pattern)) is not None:
            return found
    return None


def _from_tags(
    tags: Mapping[str, str], keys: tuple[str, ...], note: str | None = None
) -> Acquisition | None:
    for key in keys:
        value = tags.get(key)
        if value and (parsed := parse_tag_datetime(value)) is not None:
            return Acquisition(parsed, f"tag:{key}", note=note)
    return None
