"""Gather what an input's metadata says of its time and clouds, inside its worker.

Reads the product metadata files, a NetCDF variable's CF time coordinate (through GDAL's
netCDF driver) and the cloud mask (block by block, at full resolution), then leaves the
choosing to the pure functions in `temporal` and `clouds`.
"""

from __future__ import annotations

import csv
import logging
import posixpath
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from byod import products
from byod.cf import variable_name
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
from byod.errors import RejectedInput
from byod.options import CloudOptions, TimeOptions
from byod.reasons import Reason
from byod.sources import read_user_metadata
from byod.temporal import (
    Acquisition,
    cf_acquisition,
    find_acquisition,
    parse_tag_datetime,
)

log = logging.getLogger(__name__)

USER_METADATA_LABEL = "byod-metadata.csv"
# Mask rasters recognised by name, and the rule each is read with.
RULE_BY_SUFFIX = {"_scl": "s2-scl", "_qa_pixel": "landsat-qa", "_fmask": "fmask"}


@dataclass(frozen=True)
class MetadataRules:
    """The time and cloud options of a run, as a worker needs them: the settings' own
    sections (IngestSettings.time and .clouds), shipped to the worker with its job."""

    time: TimeOptions = field(default_factory=TimeOptions)
    clouds: CloudOptions = field(default_factory=CloudOptions)


def read_products(paths: tuple[Path, ...]) -> tuple[list[products.ProductMetadata], list[str]]:
    """Parse each product metadata file; a bad one is noted, not fatal."""
    out, notes = [], []
    for path in paths:
        try:
            out.append(products.parse(path.name, path.read_text("utf-8", errors="replace")))
        except (ValueError, SyntaxError) as exc:  # defusedxml and ElementTree parse errors
            notes.append(f"{path.name}: unreadable product metadata ({exc})")
    return out, notes


def user_row(
    path: Path | None, relpath: str, table_notes: bool = True
) -> tuple[dict[str, str], list[str]]:
    """The row of a folder's byod-metadata.csv for this input (by file name, with or without
    its extension, or scene name); {} when there is none. Notes name a second row for the
    same input (the first is used) and, with `table_notes`, what is said of the table as a
    whole (`UserTable.notes`: not used and why, its encoding, unknown columns); a local
    source's discovery puts those in the run notes once instead (`sources.discover`).

    Raises `RejectedInput` (`bad_metadata`) when a cell of the row cannot be used: a time
    that is no ISO 8601 time, a cloud cover that is no number from 0 to 100, a start after
    the end, a start without an end or an end without a start. The message names the csv,
    the row's first line and each bad column; a bad row rejects its own input only."""
    if path is None or not path.is_file():
        return {}, []
    label = posixpath.join(posixpath.dirname(relpath), USER_METADATA_LABEL)
    try:
        table = read_user_metadata(path)
    except (OSError, csv.Error) as exc:
        return {}, [f"{label}: unreadable ({exc}); the table is not used"] if table_notes else []
    notes = table.notes(label) if table_notes else []
    rows = table.rows_for(relpath) if table.problem is None else []
    if not rows:
        return {}, notes
    line, row = rows[0]
    if len(rows) > 1:
        others = ", ".join(str(n) for n, _ in rows[1:])
        notes.append(f"{label}: rows {line} and {others} name the same input; row {line} is used")
    problems = _bad_cells(row)
    if problems:
        raise RejectedInput(Reason.BAD_METADATA, f"{label} row {line}: " + "; ".join(problems))
    return row, notes


def _percent(text: str) -> float | None:
    """A cloud cover cell as a number: `12.5`, or `12,5` as a decimal comma (spreadsheets
    in German or French); None for anything else."""
    if re.fullmatch(r"[+-]?\d+,\d+", text):
        text = text.replace(",", ".")
    try:
        return float(text) + 0.0  # `-0` is 0
    except ValueError:
        return None


def _bad_cells(row: dict[str, str]) -> list[str]:
    """`column X: why` for each cell of a byod-metadata.csv row that cannot be used."""
    problems = []
    times = {}
    for column in ("datetime", "start_datetime", "end_datetime"):
        if text := row.get(column):
            times[column] = parse_tag_datetime(text)
            if times[column] is None:
                problems.append(f"column {column}: {text!r} is not an ISO 8601 time "
                                "(e.g. 2024-01-31T10:15:00Z)")  # fmt: skip
    start, end = times.get("start_datetime"), times.get("end_datetime")
    if start is not None and end is not None and start > end:
        problems.append(f"column end_datetime: {row['end_datetime']!r} is before "
                        f"start_datetime {row['start_datetime']!r}")  # fmt: skip
    for given, missing in (("start_datetime", "end_datetime"), ("end_datetime", "start_datetime")):
        if row.get(given) and not row.get(missing):
            problems.append(f"column {missing}: empty while {given} is "
                            f"{row[given]!r}; give both or neither")  # fmt: skip
    if text := row.get("cloud_cover"):
        value = _percent(text)
        if value is None or not 0 <= value <= 100:
            problems.append(f"column cloud_cover: {text!r} is not a percentage from 0 to 100")
    return problems


def user_acquisition(row: dict[str, str], source: str) -> Acquisition | None:
    """The time a byod-metadata.csv `row` gives: the period `start_datetime`/`end_datetime`
    (when both parse and start is not after end; `datetime`, else the start, as its
    instant), or the instant `datetime`; None when it gives none. Times are ISO 8601 or
    TIFF-style, naive ones UTC (`parse_tag_datetime`). `source` names the row."""
    start, end = parse_tag_datetime(row.get("start_datetime", "")), parse_tag_datetime(
        row.get("end_datetime", ""))  # fmt: skip
    instant = parse_tag_datetime(row.get("datetime", ""))
    if start and end and start <= end:
        return Acquisition(instant or start, source, start, end)
    return Acquisition(instant, source) if instant else None


def user_cloud(row: dict[str, str], source: str) -> CloudEstimate | None:
    """The row's `cloud_cover` in percent (0-100), else None (absent or out of range)."""
    value = _percent(row["cloud_cover"]) if row.get("cloud_cover") else None
    return CloudEstimate(source, value) if value is not None and 0 <= value <= 100 else None


def acquisition(
    rules: MetadataRules,
    tags: dict[str, str],
    relpath: str,
    found: list[products.ProductMetadata],
    user: Acquisition | None = None,
    embedded: Acquisition | None = None,
) -> Acquisition | None:
    """The time the run's order picks among every source; None when there is none."""
    sidecar = next(
        (Acquisition(p.datetime, f"sidecar:{p.source}", p.start_datetime, p.end_datetime)
         for p in found if p.datetime is not None),
        None,
    )  # fmt: skip
    pattern = re.compile(rules.time.pattern) if rules.time.pattern else None
    return find_acquisition(override=rules.time.datetime, tags=tags, relpath=relpath,
                            sidecar=sidecar, user=user, embedded=embedded, pattern=pattern,
                            order=rules.time.order)  # fmt: skip


# --- CF NetCDF: time coordinates and variables that are not rasters -------------------------


def cf_time(name: str, tags: Mapping[str, str], label: str) -> tuple[Acquisition | None, list[str]]:
    """The time of a NetCDF variable (GDAL dataset `name`) from its CF time coordinate.

    GDAL's netCDF driver lists the variable's non-spatial dimensions in `NETCDF_DIM_EXTRA`,
    their values in `NETCDF_DIM_<dim>_VALUES` and their attributes as `<dim>#units` etc.; the
    time dimension is the one with `axis = T`, `standard_name = time` or units "... since ..."
    (CF 1.11, section 4.4). Its `bounds` variable (`time_bnds`) is read through GDAL too.
    Returns (None, []) for a raster without a time axis, (None, [note]) when the axis cannot
    be decoded (the other sources then decide).
    """
    extra = tags.get("NETCDF_DIM_EXTRA", "").strip("{}")
    for dim in (d.strip() for d in extra.split(",") if d.strip()):
        units = tags.get(f"{dim}#units", "")
        if not (tags.get(f"{dim}#axis", "").upper() == "T" or " since " in units
                or tags.get(f"{dim}#standard_name") == "time"):  # fmt: skip
            continue
        values = _numbers(tags.get(f"NETCDF_DIM_{dim}_VALUES", ""))
        bounds_var = tags.get(f"{dim}#bounds", "").strip()
        bounds = _bounds(name, bounds_var) if bounds_var else None
        source = f"cf:{bounds_var}" if bounds is not None else f"cf:{dim}"
        try:
            return cf_acquisition(values, units, tags.get(f"{dim}#calendar"), bounds, source), []
        except ValueError as exc:
            return None, [f"{label}: its {dim} coordinate gives no time ({exc})"]
    return None, []


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.strip("{}").split(",") if v.strip()]
    except ValueError:
        return []


def _bounds(name: str, variable: str) -> list[tuple[float, float]] | None:
    """The (lower, upper) pairs of a CF bounds variable beside the variable GDAL opened as
    `name` (`NETCDF:"file":var`, or the file itself); None when they cannot be read."""
    try:
        with warnings.catch_warnings():  # a bounds table has no geotransform, as expected
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(variable_name(name, variable)) as src:
                rows = src.read(1)
    except RasterioError:
        return None
    if rows.ndim != 2 or rows.shape[1] != 2:
        return None
    return [(float(low), float(high)) for low, high in rows]


def auxiliary_variables(tags_by_variable: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The variables of a NetCDF file that are not rasters of their own, with the reason.

    By CF (1.11, sections 5, 5.6, 7.1): a variable named by another's `bounds`,
    `coordinates` or `grid_mapping` attribute describes that variable (cell bounds such as
    `time_bnds`, 2-D latitude/longitude, the CRS); GDAL lists them as subdatasets all the same.
    A name ending in `_bnds` or `_bounds` is taken as bounds too, as producers write them.
    """
    roles: dict[str, str] = {}
    for tags in tags_by_variable.values():
        for key, value in tags.items():
            owner, _, attribute = key.partition("#")
            if owner == "NC_GLOBAL" or not attribute:
                continue
            if attribute == "bounds":
                roles.setdefault(value.strip(), f"cell bounds of {owner}")
            elif attribute == "coordinates":
                for name in value.split():
                    roles.setdefault(name, f"a coordinate of {owner}")
            elif attribute == "grid_mapping":
                roles.setdefault(value.split(":")[0].strip(), f"the grid mapping of {owner}")
    out = {}
    for variable in tags_by_variable:
        if variable in roles:
            out[variable] = roles[variable]
        elif re.search(r"_(bnds|bounds)$", variable):
            out[variable] = "cell bounds"
    return out


def clouds(
    rules: MetadataRules,
    tags: dict[str, str],
    found: list[products.ProductMetadata],
    source: str,
    mask: Path | None,
    user: CloudEstimate | None = None,
) -> CloudDecision:
    """Every cloud estimate there is for the input, and the one the order picks.

    A cloud band (`--cloud-band`, byod.yaml `clouds.band`) the input does not have is a
    note of the decision, not an error: a run's option applies to every input, and a folder
    may mix multi-band products with ordinary single-band rasters (README "Cloud cover")."""
    estimates: list[CloudEstimate | None] = [user]
    band_note = None
    if rules.clouds.cover is not None:
        estimates.append(CloudEstimate("option", rules.clouds.cover))
    if mask is not None:
        rule = parse_rule(rules.clouds.rule or _rule_by_name(mask.name))
        estimates.append(_from_mask(mask, 1, rule, f"mask:{mask.name} ({rule.name})"))
        if rules.clouds.band is not None:
            log.warning("%s: both a mask file and --cloud-band; the mask file is used", source)
    elif rules.clouds.band is not None and rules.clouds.rule is not None:
        rule = parse_rule(rules.clouds.rule)
        bands = _band_count(Path(source))
        if rules.clouds.band <= bands:
            label = f"mask:band {rules.clouds.band} ({rule.name})"
            estimates.append(_from_mask(Path(source), rules.clouds.band, rule, label))
        else:
            band_note = (f"cloud band {rules.clouds.band}: the file has {bands} "
                         f"band{'s' if bands != 1 else ''}")  # fmt: skip
    elif rules.clouds.band is not None:  # a band alone does not say what its values mean
        band_note = (f"cloud band {rules.clouds.band} without a cloud rule (--cloud-rule, "
                     "clouds.rule): the band is not read")  # fmt: skip
    for product in found:
        if product.cloud_cover is not None:
            estimates.append(CloudEstimate(f"sidecar:{product.source}", product.cloud_cover))
            break
    if (imagery := imagery_cloud_cover(tags)) is not None:
        estimates.append(CloudEstimate("imagery:CLOUDCOVER", imagery))
    decision = choose([e for e in estimates if e is not None], rules.clouds.order)
    if band_note is None:
        return decision
    if decision.chosen is None:  # the decision's note says no source applied
        return CloudDecision(None, f"{band_note}; {decision.note}")
    others = f"; {decision.note}" if decision.note else ""
    return CloudDecision(
        decision.chosen, f"{band_note}; eo:cloud_cover from the other sources{others}"
    )


def _rule_by_name(name: str) -> str:
    """The preset a mask's name calls for (`x_SCL.tif`, `T33UUP_..._SCL_20m.jp2`, ...)."""
    stem = Path(name).stem.lower()
    for suffix, rule in RULE_BY_SUFFIX.items():
        if re.search(rf"{suffix}(_\d+m)?$", stem):
            return rule
    return "binary"


def _band_count(path: Path) -> int:
    with rasterio.open(path) as src:
        return int(src.count)


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
