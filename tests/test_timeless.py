"""Rasters with no acquisition time anywhere (issue 10): DEMs, land cover, masks.

They are ingested by default with `datetime: null` and the period "acquired at some time up
to when first ingested", `byod:datetime_source: "unknown"` and a report note saying how to
give a time; a re-run keeps the item byte for byte; a time search overlapping the period
finds it; `--require-datetime` / `time: {require: true}` restores the rejection. NetCDF
files: a variable without a time axis is such a raster, and CF bounds variables beside it
are ignored, not rejected; a variable's CF time coordinate gives its time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pystac
import pytest
from typer.testing import CliRunner

from byod.cli import app
from byod.index import Query
from byod.reasons import Reason
from byod.report import Report, Status
from byod.searching import walk_catalog
from byod.storage import open_store
from byod.validate import validate_catalog
from tests.conftest import WriteRaster, ramp, write_cf_grid

RunIngest = Callable[..., Report]
# STAC forbids null bounds in items: the open start is the earliest instant RFC 3339 writes.
OPEN_START = "0001-01-01T00:00:00Z"


def _items(catalog: Path) -> dict[str, pystac.Item]:
    """Every item of the catalog, found through its links as any STAC client does."""
    root = pystac.Catalog.from_file(str(catalog / "catalog.json"))
    return {item.id: item for item in root.get_items(recursive=True)}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> datetime:
    return datetime.now(UTC)


# --- plain rasters -----------------------------------------------------------------------


def test_timeless_raster_is_ingested_with_an_open_period(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("srtm_dem.tif", ramp(dtype="int16"))
    write_raster("esa_worldcover_map.tif", ramp(dtype="uint8"))
    before = _now().replace(microsecond=0)
    report = run_ingest()
    after = _now()

    assert report.rejected == []
    assert [r.status for r in report.rows] == [Status.INGESTED, Status.INGESTED]
    items = _items(tmp_path / "catalog")
    for row in report.rows:
        props = items[row.item_ids[0]].properties
        assert props["datetime"] is None
        assert props["byod:datetime_source"] == "unknown"
        assert props["start_datetime"] == OPEN_START
        # "acquired at some time up to when it was first ingested": this run's time
        assert before <= _parse(props["end_datetime"]) <= after
        note = next(n for n in row.notes if n.startswith("no acquisition time"))
        for way in ("--datetime", "byod.yaml", "byod-metadata.csv", "name"):
            assert way in note
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []


def test_rerun_keeps_the_timeless_item_byte_for_byte(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("hillshade.tif", ramp(dtype="uint8"))
    run_ingest()
    (item,) = _items(tmp_path / "catalog").values()
    path = Path(item.get_self_href() or "")
    text, mtime = path.read_bytes(), path.stat().st_mtime_ns

    again = run_ingest()
    assert [r.status for r in again.rows] == [Status.UNCHANGED]
    (same,) = _items(tmp_path / "catalog").values()
    assert Path(same.get_self_href() or "") == path
    assert path.read_bytes() == text and path.stat().st_mtime_ns == mtime  # not rewritten


def test_time_search_overlapping_the_period_finds_the_item(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("landcover.tif", ramp(dtype="uint8"))
    write_raster("scene_20240131.tif", ramp())
    run_ingest()
    catalog = str(tmp_path / "catalog")
    end = _parse(_items(tmp_path / "catalog")["landcover"].properties["end_datetime"])

    def found(period: str) -> list[str]:
        result = CliRunner().invoke(app, ["search", catalog, "--datetime", period, "--json"])
        assert result.exit_code == 0, result.output
        ids = sorted(f["id"] for f in json.loads(result.stdout)["features"])
        # The index answers as a walk of the JSON items does (the reference semantics).
        walked = walk_catalog(open_store(catalog), Query.parse(datetime=period))
        assert ids == sorted(i["id"] for i in walked)
        return ids

    # Any period up to the first ingest may hold the acquisition: the item is never hidden.
    assert found("1990-01-01/1990-12-31") == ["landcover"]
    assert found("2024-01-31") == ["landcover", "scene_20240131"]
    assert found(f"../{(end - timedelta(days=1)).date()}") == ["landcover", "scene_20240131"]
    # After it was first ingested it cannot have been acquired.
    assert found(f"{(end + timedelta(days=1)).date()}/..") == []


def test_require_datetime_rejects_as_before(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("dem.tif", ramp())
    write_raster("dem_20240101.tif", ramp())
    report = run_ingest(time={"require": True})
    rows = {r.input: r for r in report.rows}
    assert rows["dem_20240101.tif"].status is Status.INGESTED
    assert rows["dem.tif"].status is Status.REJECTED
    assert rows["dem.tif"].reason is Reason.NO_DATETIME
    assert "dem.tif" in (rows["dem.tif"].message or "")
    assert len(report.rejected) == 1
    assert set(_items(tmp_path / "catalog")) == {"dem_20240101"}


def test_require_datetime_in_byod_yaml(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    write_raster("dem.tif", ramp())
    (tmp_path / "src" / "byod.yaml").write_text("time: {require: true}\n")
    args = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "catalog"), "--workers", "1", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert row["reason"] == "no_datetime"


def test_cli_table_notes_each_timeless_file_and_exits_0(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    write_raster("dem.tif", ramp())
    write_raster("slope.tif", ramp())
    base = ["ingest", str(tmp_path / "src"), "--target", str(tmp_path / "data"),
            "--catalog", str(tmp_path / "catalog"), "--workers", "1"]  # fmt: skip
    shown = CliRunner().invoke(app, base, env={"COLUMNS": "400"})  # one line per note
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("no acquisition time found") == 2
    assert "--datetime" in shown.output
    refused = CliRunner().invoke(app, [*base, "--require-datetime", "--catalog",
                                       str(tmp_path / "other")])  # fmt: skip
    assert refused.exit_code == 1


def test_write_time_is_used_last_and_says_so(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: RunIngest
) -> None:
    # GPM IMERG daily: the day is in the name; the TIFF tag holds when the file was written.
    tags = {"TIFFTAG_DATETIME": "2024:06:18 14:14:24"}
    write_raster("3B-DAY.MS.MRG.3IMERG.20240617-S000000-E235959.V07B.tif", ramp(), tags=tags)
    write_raster("scan.tif", ramp(), tags=tags)
    report = run_ingest()
    items = _items(tmp_path / "catalog")
    by_source = {i.properties["byod:source"]: i.properties for i in items.values()}
    imerg = by_source["3B-DAY.MS.MRG.3IMERG.20240617-S000000-E235959.V07B.tif"]
    assert imerg["datetime"] == "2024-06-17T00:00:00Z"
    assert by_source["scan.tif"]["datetime"] == "2024-06-18T14:14:24Z"
    assert by_source["scan.tif"]["byod:datetime_source"] == "tag:TIFFTAG_DATETIME"
    scan_row = next(r for r in report.rows if r.input == "scan.tif")
    assert any("written" in n for n in scan_row.notes)


# --- CF NetCDF -----------------------------------------------------------------------------


def _cf_file(path: Path, variable: str, dims: tuple[str, ...], times: list[float] | None,
             units: str = "days since 1980-01-01 00:00:00", calendar: str = "standard",
             bounds: list[list[float]] | None = None) -> Path:  # fmt: skip
    """A CF NetCDF file: `variable` on a 20 x 30 UTM 33N grid (tests.conftest.write_cf_grid),
    with a time coordinate (and `time_bnds`) when `times` are given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        write_cf_grid(ds)
        if times is not None:
            ds.createDimension("time", len(times))
            t = ds.createVariable("time", "f8", ("time",))
            t.units, t.calendar, t.standard_name, t.axis = units, calendar, "time", "T"
            t[:] = times
            if bounds is not None:
                ds.createDimension("nv", 2)
                t.bounds = "time_bnds"
                ds.createVariable("time_bnds", "f8", ("time", "nv"))[:] = bounds
        var = ds.createVariable(variable, "f4", dims)
        var[:] = np.ones([len(ds.dimensions[d]) for d in dims], "f4")
        var.grid_mapping = "crs"
    return path


def _cf_dates(path: Path, name: str) -> list[datetime]:
    """A time variable's (or its bounds') values decoded by netCDF4 + cftime with the time
    coordinate's units and calendar (the reference, not byod's path through GDAL)."""
    with netCDF4.Dataset(path) as ds:
        time = ds.variables["time"]
        dates = cftime.num2date(ds.variables[name][:].ravel(), time.units, time.calendar,
                                only_use_cftime_datetimes=True)  # fmt: skip
    return [datetime(d.year, d.month, d.day, d.hour, d.minute, d.second, tzinfo=UTC)
            for d in dates]  # fmt: skip


def test_netcdf_variable_without_time_beside_time_bnds(
    tmp_path: Path, run_ingest: RunIngest
) -> None:
    # lsm has no time axis; the file still has a time coordinate and its bounds.
    _cf_file(tmp_path / "src" / "land_sea_mask.nc", "lsm", ("y", "x"), [14975.0],
             bounds=[[14975, 15006]])  # fmt: skip
    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.INGESTED and report.rejected == []
    assert row.item_ids == ["land_sea_mask-lsm"]
    assert any("time_bnds ignored" in n for n in row.notes)  # listed, not rejected
    props = _items(tmp_path / "catalog")["land_sea_mask-lsm"].properties
    assert props["datetime"] is None and props["byod:datetime_source"] == "unknown"


def test_netcdf_time_steps_with_bounds_give_the_period(
    tmp_path: Path, run_ingest: RunIngest
) -> None:
    # NOAA OISST-like monthly means: two steps, each with its month as bounds.
    path = _cf_file(tmp_path / "src" / "sst.mon.mean.nc", "sst", ("time", "y", "x"),
                    [14990.0, 15020.0], bounds=[[14975, 15006], [15006, 15034]])  # fmt: skip
    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.INGESTED and row.item_ids == ["sst.mon.mean-sst"]
    bounds = _cf_dates(path, "time_bnds")
    props = _items(tmp_path / "catalog")["sst.mon.mean-sst"].properties
    assert props["byod:datetime_source"] == "cf:time_bnds"
    assert _parse(props["start_datetime"]) == bounds[0]
    # CF bounds are [lower, upper): the period ends just before the last upper bound.
    assert _parse(props["end_datetime"]) == bounds[-1] - timedelta(microseconds=1)


@pytest.mark.parametrize("calendar", ["standard", "noleap"])
def test_netcdf_time_coordinate_beats_the_name(
    tmp_path: Path, run_ingest: RunIngest, calendar: str
) -> None:
    # One step; the file name says only the year. Day 59 is 29 Feb or 1 Mar by calendar.
    path = _cf_file(tmp_path / "src" / "era5_t2m_2000.nc", "t2m", ("time", "y", "x"),
                    [59 * 24 + 12.0], "hours since 2000-01-01 00:00:00", calendar)  # fmt: skip
    run_ingest()
    (item,) = _items(tmp_path / "catalog").values()
    (expected,) = _cf_dates(path, "time")
    assert item.properties["byod:datetime_source"] == "cf:time"
    assert _parse(item.properties["datetime"]) == expected
    assert "start_datetime" not in item.properties


def test_netcdf_several_steps_without_bounds_span_first_to_last(
    tmp_path: Path, run_ingest: RunIngest
) -> None:
    # CHIRPS daily, a year per file: precip(time, y, x), time in days since 1980-01-01.
    path = _cf_file(tmp_path / "src" / "chirps-v2.0.2020.days_p25.nc", "precip",
                    ("time", "y", "x"), [14610.0, 14611.0, 14612.0],
                    "days since 1980-1-1 0:0:0", "gregorian")  # fmt: skip
    run_ingest()
    (item,) = _items(tmp_path / "catalog").values()
    steps = _cf_dates(path, "time")
    assert _parse(item.properties["start_datetime"]) == steps[0]
    assert _parse(item.properties["end_datetime"]) == steps[-1]


def test_netcdf_2d_coordinates_and_bounds_are_listed_as_ignored(
    tmp_path: Path, run_ingest: RunIngest
) -> None:
    # A regional model's output (CORDEX-like): tas on the projected grid, with 2-D latitude
    # and longitude named by its `coordinates` attribute; no time axis at all.
    path = tmp_path / "src" / "orog_EUR-11_ICHEC-EC-EARTH_fx.nc"
    path.parent.mkdir(parents=True)
    with netCDF4.Dataset(path, "w") as ds:
        write_cf_grid(ds)
        for name, values in (("lat", 45.0), ("lon", 15.0)):
            coordinate = ds.createVariable(name, "f8", ("y", "x"))
            coordinate[:] = np.full((20, 30), values)
        orog = ds.createVariable("orog", "f4", ("y", "x"))
        orog[:] = np.ones((20, 30), "f4")
        orog.grid_mapping, orog.coordinates = "crs", "lat lon"
    report = run_ingest()
    (row,) = report.rows
    assert row.status is Status.INGESTED and row.item_ids == ["orog_eur-11_ichec-ec-earth_fx-orog"]
    ignored = sorted(n.split()[1] for n in row.notes if " ignored: " in n)
    assert ignored == ["lat", "lon"]
    assert _items(tmp_path / "catalog")[row.item_ids[0]].properties["datetime"] is None
