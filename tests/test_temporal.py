from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from byod.temporal import (
    Acquisition,
    acquisition_from_name,
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


def test_order_option_then_tag_then_name() -> None:
    when = datetime(2000, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    tags = {"TIFFTAG_DATETIME": "2023:06:15 09:30:00"}
    by_option = find_acquisition(override=when, tags=tags, relpath="a/b_20240101.tif")
    assert by_option is not None
    assert by_option.datetime == datetime(2000, 1, 1, 11, tzinfo=UTC)
    assert by_option.source == "option"
    by_tag = find_acquisition(override=None, tags=tags, relpath="a/b_20240101.tif")
    assert by_tag is not None and by_tag.source == "tag:TIFFTAG_DATETIME"
    by_name = find_acquisition(override=None, tags={}, relpath="2019-05-04/b.tif")
    assert by_name is not None
    assert by_name.datetime == datetime(2019, 5, 4, tzinfo=UTC)
    assert by_name.source == "name:2019-05-04"
    assert (
        find_acquisition(override=None, tags={"TIFFTAG_DATETIME": "junk"}, relpath="b.tif") is None
    )


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
    assert found is not None and found.start is None  # falls back to the first date


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
    assert found is not None and found.start is None
    assert found.datetime == datetime(2024, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(("name", "month"), [("ndvi-2020-07.tif", 7), ("ndvi-2020.tif", 1)])
def test_a_hyphen_before_a_month_or_year(name: str, month: int) -> None:
    found = acquisition_from_name(name)
    assert found is not None and found.start == datetime(2020, month, 1, tzinfo=UTC)
