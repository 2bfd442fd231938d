from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from byod.temporal import (
    Acquisition,
    acquisition_from_name,
    cf_acquisition,
    datetime_from_name,
    find_acquisition,
    parse_tag_datetime,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scene_20240131.tif", datetime(2024, 1, 31, tzinfo=UTC)),
        ("scene_2024-01-31.tif", datetime(2024, 1, 31, tzinfo=UTC)),
        ("S2_20240131T101500_B04.tif", datetime(2024, 1, 31, 10, 15, 0, tzinfo=UTC)),
        ("x_2024-01-31T10:15:00.tif", datetime(2024, 1, 31, 10, 15, 0, tzinfo=UTC)),
        ("x_20240131_101500.tif", datetime(2024, 1, 31, 10, 15, 0, tzinfo=UTC)),
    ],
)
def test_dates_in_names(name: str, expected: datetime) -> None:
    found = datetime_from_name(name)
    assert found is not None and found[0] == expected


@pytest.mark.parametrize(
    "name",
    [
        "tile_123456789.tif",
        "scene_20241345.tif",
        "dem_18000101.tif",
        "x_20240230.tif",
        "plain.tif",
        "res_2000m.tif",
        "v2020a.tif",
        "zone_1234.tif",
    ],
)
def test_no_date_in_names(name: str) -> None:
    assert datetime_from_name(name) is None
    assert acquisition_from_name(name) is None


def test_tiff_tag_formats() -> None:
    assert parse_tag_datetime("2023:06:15 09:30:00") == datetime(2023, 6, 15, 9, 30, tzinfo=UTC)
    assert parse_tag_datetime("2023-06-15T09:30:00+02:00") == datetime(
        2023, 6, 15, 7, 30, tzinfo=UTC
    )
    assert parse_tag_datetime("not a date") is None


def test_order_option_then_name_then_write_time() -> None:
    when = datetime(2000, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    tags = {"TIFFTAG_DATETIME": "2023:06:15 09:30:00"}
    by_option = find_acquisition(override=when, tags=tags, relpath="a/b_20240101.tif")
    assert by_option is not None
    assert by_option.datetime == datetime(2000, 1, 1, 11, tzinfo=UTC)
    assert by_option.source == "option"
    # TIFFTAG_DATETIME is when the file was written (TIFF 6.0): a date in the name wins.
    by_name = find_acquisition(override=None, tags=tags, relpath="a/b_20240101.tif")
    assert by_name is not None and by_name.source == "name:20240101"
    assert by_name.datetime == datetime(2024, 1, 1, tzinfo=UTC)
    by_folder = find_acquisition(override=None, tags={}, relpath="2019-05-04/b.tif")
    assert by_folder is not None
    assert by_folder.datetime == datetime(2019, 5, 4, tzinfo=UTC)
    assert by_folder.source == "name:2019-05-04"
    # Only when nothing better exists, and it says so.
    by_tag = find_acquisition(override=None, tags=tags, relpath="a/b.tif")
    assert by_tag is not None and by_tag.source == "tag:TIFFTAG_DATETIME"
    assert by_tag.datetime == datetime(2023, 6, 15, 9, 30, tzinfo=UTC)
    assert by_tag.note is not None and "written" in by_tag.note
    assert (
        find_acquisition(override=None, tags={"TIFFTAG_DATETIME": "junk"}, relpath="b.tif") is None
    )


def test_imerg_daily_file_is_the_day_in_its_name_not_its_write_time() -> None:
    # A real GPM IMERG daily GeoTIFF: written 2024-06-18T14:14:24 for the day 2024-06-17.
    name = "3B-DAY.MS.MRG.3IMERG.20240617-S000000-E235959.V07B.tif"
    found = find_acquisition(override=None, tags={"TIFFTAG_DATETIME": "2024:06:18 14:14:24"},
                             relpath=f"imerg/{name}")  # fmt: skip
    assert found is not None and found.datetime == datetime(2024, 6, 17, tzinfo=UTC)


def test_acquisition_tags_and_sidecars_outrank_the_name() -> None:
    tags = {"ACQUISITIONDATETIME": "2023-06-14T08:00:00Z"}
    by_tag = find_acquisition(override=None, tags=tags, relpath="scene_20240101.tif")
    assert by_tag is not None and by_tag.datetime == datetime(2023, 6, 14, 8, tzinfo=UTC)
    sidecar = Acquisition(datetime(2022, 1, 2, tzinfo=UTC), "sidecar:X_MTL.txt")
    by_sidecar = find_acquisition(override=None, tags=tags, relpath="scene_20240101.tif",
                                  sidecar=sidecar)  # fmt: skip
    assert by_sidecar == sidecar


def test_imagery_acquisition_tag_wins_over_file_tag() -> None:
    tags = {
        "TIFFTAG_DATETIME": "2023:06:15 09:30:00",
        "ACQUISITIONDATETIME": "2023-06-14T08:00:00Z",
    }
    found = find_acquisition(override=None, tags=tags, relpath="x.tif")
    assert found is not None and found.datetime == datetime(2023, 6, 14, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("ndvi_2020.tif", datetime(2020, 1, 1, tzinfo=UTC),
         datetime(2020, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("ndvi_2020-07.tif", datetime(2020, 7, 1, tzinfo=UTC),
         datetime(2020, 7, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("mosaic_2020-12.tif", datetime(2020, 12, 1, tzinfo=UTC),
         datetime(2020, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("comp_20200101_20200131.tif", datetime(2020, 1, 1, tzinfo=UTC),
         datetime(2020, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("comp_2020-01-01_to_2020-03-31.tif", datetime(2020, 1, 1, tzinfo=UTC),
         datetime(2020, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_periods_in_names(name: str, start: datetime, end: datetime) -> None:
    found = acquisition_from_name(name)
    assert found is not None
    assert (found.start, found.end, found.datetime) == (start, end, start)


def test_reversed_range_is_not_a_period() -> None:
    found = acquisition_from_name("x_20200131_20200101.tif")
    day = datetime(2020, 1, 31, tzinfo=UTC)
    assert found is not None  # falls back to the first date: its day
    assert (found.start, found.end) == (day, day + timedelta(days=1) - timedelta(microseconds=1))


def test_user_pattern_comes_first() -> None:
    pattern = re.compile(r"doy(?P<year>\d{4})_(?P<month>\d{2})")
    found = acquisition_from_name("tile_12345678_doy2019_05.tif", pattern)
    assert found is not None and found.start == datetime(2019, 5, 1, tzinfo=UTC)
    assert found.source == "name:doy2019_05"


def test_sidecar_order() -> None:
    sidecar = Acquisition(datetime(2024, 1, 31, 9, 41, tzinfo=UTC), "sidecar:X_MTL.txt")
    tags = {"TIFFTAG_DATETIME": "2023:06:15 09:30:00"}
    found = find_acquisition(override=None, tags=tags, relpath="b_20200101.tif", sidecar=sidecar)
    assert found == sidecar
    by_name = find_acquisition(override=None, tags=tags, relpath="b_20200101.tif",
                               sidecar=sidecar, order=("name", "sidecar"))  # fmt: skip
    assert by_name is not None and by_name.source == "name:20200101"


def test_landsat_ids_are_an_acquisition_day_not_a_period() -> None:
    found = acquisition_from_name("LC09_L2SP_190026_20240131_20240205_02_T1_SR_B4.TIF")
    day = datetime(2024, 1, 31, tzinfo=UTC)
    assert found is not None and found.datetime == day
    # The acquisition day only, not through the processing date 2024-02-05.
    assert (found.start, found.end) == (day, _day_end(day))


@pytest.mark.parametrize(("name", "month"), [("ndvi-2020-07.tif", 7), ("ndvi-2020.tif", 1)])
def test_a_hyphen_before_a_month_or_year(name: str, month: int) -> None:
    found = acquisition_from_name(name)
    assert found is not None and found.start == datetime(2020, month, 1, tzinfo=UTC)


# --- dates as real products write them (issue 10) ------------------------------------------
# Expected values come from each product's naming convention, decoded with the standard
# library's own parsers (`%j` is the day of the year), never from byod.


def _utc(text: str, fmt: str) -> datetime:
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def _day_end(day: datetime) -> datetime:
    return day + timedelta(days=1) - timedelta(microseconds=1)


def _month_end(year: int, month: int) -> datetime:
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, last, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # a lower-case t between date and time keeps the time of day
        ("SSC_2019-01-15t103359_ortho.tif", _utc("2019-01-15 10:33:59", "%Y-%m-%d %H:%M:%S")),
        ("ang20200712t181214_rfl_v2z1.tif", _utc("20200712 181214", "%Y%m%d %H%M%S")),
        # Sentinel-2: sensing time first, the product discriminator last
        ("S2B_MSIL2A_20190601T102029_N0212_R065_T32TPT_20190601T135530_B04.tif",
         _utc("20190601T102029", "%Y%m%dT%H%M%S")),
        # NASA HLS v2.0: YYYYDDDTHHMMSS, the sensing time (HLS product guide, file naming)
        ("HLS.S30.T32TQM.2023166T103629.v2.0.B04.tif", _utc("2023166T103629", "%Y%jT%H%M%S")),
        ("HLS.L30.T17SLU.2020117T160901.v2.0.Fmask.tif", _utc("2020117T160901", "%Y%jT%H%M%S")),
        # hour stamps of reanalysis and NWP runs (YYYYMMDDHH), minute slots (YYYYMMDDHHMM)
        ("ERA5_2019011512.tif", _utc("2019011512", "%Y%m%d%H")),
        ("gfs_2023061500_f000.tif", _utc("2023061500", "%Y%m%d%H")),
        ("seviri_202301151215.tif", _utc("202301151215", "%Y%m%d%H%M")),
        ("icon-d2_germany_regular-lat-lon_single-level_2023011512_000_2d_t_2m.tif",
         _utc("2023011512", "%Y%m%d%H")),
        ("fci_rad_20230115T1215Z.tif", _utc("20230115T1215", "%Y%m%dT%H%M")),
    ],
)  # fmt: skip
def test_instants_as_products_write_them(name: str, expected: datetime) -> None:
    found = acquisition_from_name(name)
    assert found is not None, name
    assert (found.datetime, found.start, found.end) == (expected, None, None)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # CHIRPS v3 daily: the day
        ("chirps-v3.0.rnl.2020.01.01.tif", _utc("2020.01.01", "%Y.%m.%d")),
        # year + day of year: MODIS A-prefixed and dotted, Landsat scene ids, bare YYYYDDD
        ("MCD43A1.A2011009.h12v04.061.2021040145821.hdf", _utc("2011009", "%Y%j")),
        ("MCD43A1.2011.009.h12v04.tif", _utc("2011009", "%Y%j")),
        ("VNP09GA.A2020366.h18v04.002.2022264063713.h5", _utc("2020366", "%Y%j")),
        ("LC80440342017101LGN00_B4.TIF", _utc("2017101", "%Y%j")),
        ("ndvi_2017101.tif", _utc("2017101", "%Y%j")),
        # unpadded parts
        ("flood_extent_2022_9_9.tif", _utc("2022-09-09", "%Y-%m-%d")),
        ("flood_extent_2022_10_03.tif", _utc("2022-10-03", "%Y-%m-%d")),
        # creation / processing stamps are not acquisition times
        ("gfs_20190101_c20190103154220.tif", _utc("20190101", "%Y%m%d")),
        ("ndvi_20200601_processed_20200715.tif", _utc("20200601", "%Y%m%d")),
        ("processed_20200715_ndvi_20200601.tif", _utc("20200601", "%Y%m%d")),
        ("LC09_L2SP_190026_20240131_20240205_02_T1_SR_B4.TIF", _utc("20240131", "%Y%m%d")),
    ],
)  # fmt: skip
def test_a_date_without_a_time_is_its_whole_day(name: str, expected: datetime) -> None:
    found = acquisition_from_name(name)
    assert found is not None, name
    assert (found.datetime, found.start, found.end) == (expected, expected, _day_end(expected))


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        # CHIRPS v2 monthly: January 2020, not the year
        ("chirps-v2.0.2020.01.tif", datetime(2020, 1, 1, tzinfo=UTC), _month_end(2020, 1)),
        # CHIRPS dekad 3: day 21 to the end of the month (29 days in February 2020)
        ("chirps-v2.0.2020.02.3.tif", datetime(2020, 2, 21, tzinfo=UTC), _month_end(2020, 2)),
        # Sentinel-1 start and stop of the acquisition
        ("S1A_IW_GRDH_1SDV_20200101T053956_20200101T054021_030598_038166_2A3F.tif",
         _utc("20200101T053956", "%Y%m%dT%H%M%S"), _utc("20200101T054021", "%Y%m%dT%H%M%S")),
        # Sentinel-3: start, stop, then the creation time
        ("S3A_OL_1_EFR____20200101T100000_20200101T100300_20200101T120000_0179_053_179_2160"
         "_LN1_O_NT_002.tif",
         _utc("20200101T100000", "%Y%m%dT%H%M%S"), _utc("20200101T100300", "%Y%m%dT%H%M%S")),
        # GOES-R ABI: scan start (s) and end (e), day of year and tenths of a second
        ("OR_ABI-L2-CMIPF-M6C13_G16_s20190011200215_e20190011209523_c20190011210005.nc",
         _utc("2019001120021.5", "%Y%j%H%M%S.%f"), _utc("2019001120952.3", "%Y%j%H%M%S.%f")),
        # an explicit period beats a single date, whatever else the name holds
        ("ndvi_20200101_20200131_v20200205.tif", datetime(2020, 1, 1, tzinfo=UTC),
         datetime(2020, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_periods_as_products_write_them(name: str, start: datetime, end: datetime) -> None:
    found = acquisition_from_name(name)
    assert found is not None, name
    assert (found.start, found.end, found.datetime) == (start, end, start)


@pytest.mark.parametrize(
    ("name", "chosen", "skipped"),
    [
        ("gfs_20190101_c20190103154220.tif", "20190101", "c20190103154220"),
        ("ndvi_20200601_processed_20200715.tif", "20200601", "20200715"),
        ("LC09_L2SP_190026_20240131_20240205_02_T1_SR_B4.TIF", "20240131", "20240205"),
        ("x_20200131_20200101.tif", "20200131", "20200101"),
    ],
)
def test_the_report_says_which_of_several_dates_was_taken(
    name: str, chosen: str, skipped: str
) -> None:
    found = acquisition_from_name(name)
    assert found is not None and found.source == f"name:{chosen}"
    assert found.note is not None and chosen in found.note and skipped in found.note


@pytest.mark.parametrize(
    "name",
    [
        "tile_2017367.tif",  # no day 367
        "tile_2019366.tif",  # 2019 is no leap year
        "grid_12345678901.tif",  # digits that run on
        "MCD43A1.A2011400.h12v04.hdf",
        "x_2022_13_9.tif",
    ],
)
def test_no_date_where_the_parts_are_impossible(name: str) -> None:
    found = acquisition_from_name(name)
    assert found is None or found.start is not None  # at most a lone year, never a day


def test_cf_time_decoded_with_the_variables_calendar() -> None:
    # 59 days after 2000-01-01 is 1 March in a 365-day calendar, 29 February in the real one.
    noleap = cf_acquisition([59.0], "days since 2000-01-01", "noleap", None, "cf:time")
    assert noleap.datetime == datetime(2000, 3, 1, tzinfo=UTC)
    standard = cf_acquisition([59.0], "days since 2000-01-01", "standard", None, "cf:time")
    assert standard.datetime == datetime(2000, 2, 29, tzinfo=UTC)
    with pytest.raises(ValueError, match="360_day"):  # 30 February exists only there
        cf_acquisition([59.0], "days since 2000-01-01", "360_day", None, "cf:time")


def test_cf_bounds_give_the_period_before_the_upper_bound() -> None:
    units = "hours since 2020-01-01 00:00:00"
    found = cf_acquisition([12.0], units, None, [(0.0, 24.0)], "cf:time_bnds")
    day = datetime(2020, 1, 1, tzinfo=UTC)
    assert (found.start, found.end) == (day, day + timedelta(days=1) - timedelta(microseconds=1))


def test_unknown_time_is_an_open_period_up_to_the_first_ingest() -> None:
    until = datetime(2026, 5, 4, 3, 2, 1, 999, tzinfo=UTC)
    found = Acquisition.unknown(until)
    assert found.datetime is None and found.is_unknown
    assert found.start == datetime(1, 1, 1, tzinfo=UTC)
    assert found.end == until.replace(microsecond=0)
    assert found.note is not None
    for way in ("--datetime", "byod.yaml", "byod-metadata.csv", "name"):
        assert way in found.note


# --- more product forms, periods and folders (issue 10 review) ------------------------------


def _end_of(start: datetime, **length: int) -> datetime:
    """The inclusive end of a period of `length` (timedelta keywords) from `start`."""
    return start + timedelta(**length) - timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        # CMIP6 DRS time ranges: <start>-<end> at the table's precision, ends inclusive
        ("tas_Amon_MPI-ESM1-2-HR_ssp585_r1i1p1f1_gn_201501-210012.tif",
         datetime(2015, 1, 1, tzinfo=UTC), _month_end(2100, 12)),
        ("pr_day_MPI-ESM1-2-HR_historical_r1i1p1f1_gn_19500101-19541231.tif",
         datetime(1950, 1, 1, tzinfo=UTC), _day_end(datetime(1954, 12, 31, tzinfo=UTC))),
        ("co2mass_Ayr_CanESM5_ssp245_r1i1p1f1_gn_2015-2100.tif",
         datetime(2015, 1, 1, tzinfo=UTC), _end_of(datetime(2100, 1, 1, tzinfo=UTC), days=365)),
        # an ISO 8601 duration before the date gives the period (ESA CCI / C3S land cover)
        ("ESACCI-LC-L4-LCCS-Map-300m-P1Y-2015-v2.0.7.tif",
         datetime(2015, 1, 1, tzinfo=UTC), _end_of(datetime(2015, 1, 1, tzinfo=UTC), days=365)),
        ("C3S-LC-L4-LCCS-Map-300m-P1Y-2020-v2.1.1.tif",
         datetime(2020, 1, 1, tzinfo=UTC), _end_of(datetime(2020, 1, 1, tzinfo=UTC), days=366)),
        ("ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-P1M-2019-07-fv06.1.tif",
         datetime(2019, 7, 1, tzinfo=UTC), _month_end(2019, 7)),
        ("ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-P1D-20190715-fv06.1.tif",
         datetime(2019, 7, 15, tzinfo=UTC), _day_end(datetime(2019, 7, 15, tzinfo=UTC))),
        ("ndvi_composite_P8D_2021-01-01.tif",
         datetime(2021, 1, 1, tzinfo=UTC), _end_of(datetime(2021, 1, 1, tzinfo=UTC), days=8)),
        # a range after the duration is the whole range (the duration is its step)
        ("ESACCI-LC-L4-LCCS-Map-300m-P1Y-1992_2015-v2.0.7b.tif",
         datetime(1992, 1, 1, tzinfo=UTC), _end_of(datetime(2015, 1, 1, tzinfo=UTC), days=365)),
        # ISO 8601 weeks start on Monday (2020-W05 is 27 January to 2 February)
        ("ndvi_2020-W05.tif", datetime.fromisocalendar(2020, 5, 1).replace(tzinfo=UTC),
         _end_of(datetime.fromisocalendar(2020, 5, 1).replace(tzinfo=UTC), days=7)),
        ("lst_2020W53.tif", datetime.fromisocalendar(2020, 53, 1).replace(tzinfo=UTC),
         _end_of(datetime.fromisocalendar(2020, 53, 1).replace(tzinfo=UTC), days=7)),
        # a month written YYYY_MM (ERA5 downloads), not the whole year
        ("era5_t2m_2019_01.tif", datetime(2019, 1, 1, tzinfo=UTC), _month_end(2019, 1)),
        # GPM PPS names: S and E are the first and last second of the granule
        # (StopGranuleDateTime 23:59:59.999 in the file header)
        ("3B-HHR.MS.MRG.3IMERG.20240617-S233000-E235959.1410.V07B.tif",
         _utc("20240617233000", "%Y%m%d%H%M%S"),
         _end_of(_utc("20240617233000", "%Y%m%d%H%M%S"), minutes=30)),
        ("3B-HHR-L.MS.MRG.3IMERG.20160101-S000000-E002959.0000.V07B.tif",
         _utc("20160101", "%Y%m%d"), _end_of(_utc("20160101", "%Y%m%d"), minutes=30)),
        ("3B-DAY.MS.MRG.3IMERG.20240617-S000000-E235959.V07B.tif",
         _utc("20240617", "%Y%m%d"), _day_end(_utc("20240617", "%Y%m%d"))),
        # an IMERG monthly file carries its month's first day: the month
        ("3B-MO.MS.MRG.3IMERG.20000601-S000000-E235959.06.V06B.tif",
         datetime(2000, 6, 1, tzinfo=UTC), _month_end(2000, 6)),
        # an orbit that ends after midnight ends the next day
        ("2A.GPM.GMI.GPROF2021v1.20240617-S231500-E004747.057123.V07A.tif",
         _utc("20240617231500", "%Y%m%d%H%M%S"),
         _end_of(_utc("20240618004747", "%Y%m%d%H%M%S"), seconds=1)),
        # CHIRPS dekads: 1 = days 1-10, 2 = 11-20, 3 = 21 to the end of the month
        ("chirps-v2.0.2020.01.1.tif", datetime(2020, 1, 1, tzinfo=UTC),
         _day_end(datetime(2020, 1, 10, tzinfo=UTC))),
        ("chirps-v2.0.2020.01.2.tif", datetime(2020, 1, 11, tzinfo=UTC),
         _day_end(datetime(2020, 1, 20, tzinfo=UTC))),
        ("chirps-v2.0.2021.02.3.tif", datetime(2021, 2, 21, tzinfo=UTC), _month_end(2021, 2)),
        # parts 4-6 exist only for pentads (5 days; the 6th to the end of the month)
        ("chirps-v2.0.2020.01.5.tif", datetime(2020, 1, 21, tzinfo=UTC),
         _day_end(datetime(2020, 1, 25, tzinfo=UTC))),
        ("chirps-v2.0.2020.01.6.tif", datetime(2020, 1, 26, tzinfo=UTC), _month_end(2020, 1)),
    ],
)  # fmt: skip
def test_more_periods_as_products_write_them(name: str, start: datetime, end: datetime) -> None:
    found = acquisition_from_name(name)
    assert found is not None, name
    assert (found.start, found.end, found.datetime) == (start, end, start)


@pytest.mark.parametrize(
    ("name", "stamp"),
    [
        ("ndvi_2021-W53.tif", "W53"),  # 2021 has 52 ISO weeks
        ("x_2019011524.tif", "2019011524"),  # no hour 24
        ("x_201901151260.tif", "201901151260"),  # no minute 60
        ("x_201513-210012.tif", "201513-210012"),  # no month 13
        ("x_210012-201501.tif", "210012-201501"),  # reversed
        ("x_2015-21001.tif", "2015-21001"),  # stamps of different precision
        ("GPMCOR_KUR_1406010018_0150_001471_1BS_DUB_03B.tif", "1406010018"),  # JAXA YYMMDDhhmm
    ],
)
def test_impossible_stamps_and_ranges_are_not_read(name: str, stamp: str) -> None:
    found = acquisition_from_name(name)
    assert found is None or stamp not in found.source


def test_chirps_pentads_are_told_by_their_folder() -> None:
    # CHIRPS publishes dekads and pentads under the same name form, in global_dekad/ and
    # global_pentad/: pentad 2 is days 6-10.
    rel = "CHIRPS-2.0/global_pentad/tifs/chirps-v2.0.2020.01.2.tif"
    found = find_acquisition(override=None, tags={}, relpath=rel)
    assert found is not None
    assert (found.start, found.end) == (datetime(2020, 1, 6, tzinfo=UTC),
                                        _day_end(datetime(2020, 1, 10, tzinfo=UTC)))  # fmt: skip
    dekad = find_acquisition(override=None, tags={}, relpath=rel.replace("pentad", "dekad"))
    assert dekad is not None and dekad.start == datetime(2020, 1, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("relpath", "start", "end"),
    [
        ("era5/2023/07/15/t2m.tif", datetime(2023, 7, 15, tzinfo=UTC),
         _day_end(datetime(2023, 7, 15, tzinfo=UTC))),
        ("2023/7/5/t2m.tif", datetime(2023, 7, 5, tzinfo=UTC),
         _day_end(datetime(2023, 7, 5, tzinfo=UTC))),
        # LAADS DAAC archive layout: product/YYYY/DDD/
        ("MOD09GA/2021/001/sr.tif", _utc("2021001", "%Y%j"), _day_end(_utc("2021001", "%Y%j"))),
        ("MOD09GA/2020/366/sr.tif", _utc("2020366", "%Y%j"), _day_end(_utc("2020366", "%Y%j"))),
        ("monthly/2023/07/t2m_monthly_mean.tif", datetime(2023, 7, 1, tzinfo=UTC),
         _month_end(2023, 7)),
        # a folder that is not part of a date is read alone
        ("ndvi/2023/x.tif", datetime(2023, 1, 1, tzinfo=UTC),
         _end_of(datetime(2023, 1, 1, tzinfo=UTC), days=365)),
    ],
)  # fmt: skip
def test_dates_split_over_folders(relpath: str, start: datetime, end: datetime) -> None:
    found = find_acquisition(override=None, tags={}, relpath=relpath)
    assert found is not None, relpath
    assert (found.start, found.end, found.datetime) == (start, end, start)


def test_a_date_in_the_file_name_beats_its_folders() -> None:
    found = find_acquisition(override=None, tags={}, relpath="2023/07/15/t2m_20230716.tif")
    assert found is not None and found.datetime == datetime(2023, 7, 16, tzinfo=UTC)
    # an impossible folder date (day 31 of June) is no day: the year and month folders are read
    wrong = find_acquisition(override=None, tags={}, relpath="2023/06/31/t2m.tif")
    assert wrong is not None
    assert (wrong.start, wrong.end) == (datetime(2023, 6, 1, tzinfo=UTC), _month_end(2023, 6))


def test_a_day_is_found_by_an_instant_within_it() -> None:
    # A daily CHIRPS file is the whole day: a search for noon of that day finds it.
    from byod.index import Query, matches

    found = acquisition_from_name("chirps-v2.0.2020.01.01.tif")
    assert found is not None and found.start is not None and found.end is not None
    props = {"datetime": found.start.isoformat(), "start_datetime": found.start.isoformat(),
             "end_datetime": found.end.isoformat()}  # fmt: skip
    item = {"bbox": [0, 0, 1, 1], "properties": props}
    assert matches(item, Query.parse(datetime="2020-01-01T12:00:00Z"))
    assert matches(item, Query.parse(datetime="2020-01-01T23:59:59Z"))
    assert not matches(item, Query.parse(datetime="2020-01-02T00:00:00Z"))
    assert not matches(item, Query.parse(datetime="2019-12-31T23:59:59Z"))


# --- dates written with spaces, dots, or in day-month-year / month-day-year order ----------


@pytest.mark.parametrize(
    "name",
    [
        "field photo 2023 06 01.tif",  # spaces
        "x 2023.06.01.tif",
        "x_2023.6.1.tif",  # unpadded, dots
        "b_2023 6 1.tif",
        "2023-06-01.tif",
        "2023_06_01.tif",
        "2023-6-1.tif",
    ],
)
def test_year_month_day_with_any_one_separator_is_the_day(name: str) -> None:
    found = acquisition_from_name(name)
    assert found is not None
    day = datetime(2023, 6, 1, tzinfo=UTC)
    assert (found.start, found.end) == (day, day + timedelta(days=1, microseconds=-1))
    assert found.note is None


@pytest.mark.parametrize(
    ("name", "whole", "ignored"),
    [
        ("survey 01.06.2023.tif", "01.06.2023", "01.06"),
        ("img_06-01-2023.tif", "06-01-2023", "06-01"),
        ("x_31-12-2023.tif", "31-12-2023", "31-12"),  # 31 is no month, but the order is unsaid
        ("c_1_6_2023.tif", "1_6_2023", "1_6"),
        ("d 15 07 2023.tif", "15 07 2023", "15 07"),
    ],
)
def test_day_month_year_orders_are_not_guessed_and_say_so(
    name: str, whole: str, ignored: str
) -> None:
    """D.M.Y and M-D-Y cannot be told apart (01.06.2023 is 1 June or 6 January by region):
    the year alone is kept, and the note names the digits not read and how to give the time."""
    found = acquisition_from_name(name)
    assert found is not None
    year = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert (found.start, found.end) == (year[0], year[1] - timedelta(microseconds=1))
    assert found.note is not None
    assert f"'{whole}'" in found.note and f"'{ignored}'" in found.note
    for way in ("--datetime", "byod-metadata.csv", "--datetime-pattern"):
        assert way in found.note


@pytest.mark.parametrize("name", ["landcover_2015_100m.tif", "ESACCI-LC-L4-2015-v2.0.7.tif",
                                  "ndvi-2020.tif", "v1.2 2020.tif"])  # fmt: skip
def test_a_lone_year_beside_other_numbers_is_no_ambiguous_day(name: str) -> None:
    found = acquisition_from_name(name)
    assert found is not None and found.note is None


@pytest.mark.parametrize(
    ("name", "year"),
    [
        ("dem_2000_10_30m.tif", 2000),  # 30 m resolution, SRTM's year: not 2000-10-30
        ("srtm_2000_1_90m.tif", 2000),
        ("gebco_2023_15_arcsec.tif", 2023),  # year, then a count: not the 15th month
    ],
)
def test_a_number_with_a_unit_after_the_year_is_no_day_or_month(name: str, year: int) -> None:
    # Newcomer fault: `dem_2000_10_30m` was read as 2000-10-30; the loose Y_M_D form now
    # stands apart from a unit, and a year-month may not run on into `_<digits>` (a third
    # number), so only the year is taken, as the whole year.
    found = acquisition_from_name(name)
    assert found is not None, name
    last = datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert (found.start, found.end) == (datetime(year, 1, 1, tzinfo=UTC), last)


@pytest.mark.parametrize("name", ["dem_2000-10-30m.tif", "dem_2000.10.30m.tif"])
def test_a_date_before_a_unit_is_no_day(name: str) -> None:
    # Newcomer N3: the dashed form still read `dem_2000-10-30m` as 2000-10-30.
    found = acquisition_from_name(name)
    assert found is None or found.start != datetime(2000, 10, 30, tzinfo=UTC)
