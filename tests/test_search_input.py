"""Search input as users type it: 0..360 longitudes, reversed periods, and how time-less
items show in the table. A small catalog is ingested from real GeoTIFFs (EPSG:4326) and
every answer is checked against a walk of the JSON catalog with the query written in
-180..180 by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rasterio.transform import from_origin
from typer.testing import CliRunner

from byod.cli import app
from byod.index import Query, SearchError
from byod.report import Report
from byod.searching import walk_catalog
from byod.storage import open_store
from tests.conftest import WriteRaster, ramp

# A CHIRPS daily tile in the central Pacific (west of 180°) and a time-less DEM east of it.
CHIRPS = "chirps-v2.0.2020.01.01.tif"
CHIRPS_WEST, CHIRPS_NORTH = -160.5, -8.5
DEM = "dem.tif"
DEM_WEST, DEM_NORTH = 170.0, -8.5
RES = 0.01  # degrees; 64 x 64 pixels


@pytest.fixture
def catalog(tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]) -> str:
    for name, west, north in ((CHIRPS, CHIRPS_WEST, CHIRPS_NORTH), (DEM, DEM_WEST, DEM_NORTH)):
        write_raster(name, ramp(), crs="EPSG:4326", transform=from_origin(west, north, RES, RES))
    report = run_ingest()
    assert {r.input for r in report.rows if r.item_ids} == {CHIRPS, DEM}
    return str(tmp_path / "catalog")


def _search(catalog: str, *args: str) -> list[str]:
    result = CliRunner().invoke(app, ["search", catalog, *args, "--json"])
    assert result.exit_code == 0, result.output
    return sorted(f["properties"]["byod:source"] for f in json.loads(result.stdout)["features"])


def _walked(catalog: str, query: Query) -> list[str]:
    return sorted(i["properties"]["byod:source"] for i in walk_catalog(open_store(catalog), query))


def _east(lon: float) -> float:
    """A -180..180 longitude in the 0..360 form."""
    return lon + 360 if lon < 0 else lon


def test_longitudes_in_the_0_360_form_find_what_the_same_box_in_minus_180_180_finds(
    catalog: str,
) -> None:
    box = (CHIRPS_WEST - 0.5, -10.0, CHIRPS_WEST + 1.5, -8.0)  # around the CHIRPS tile
    reference = _walked(catalog, Query(box))
    assert reference == [CHIRPS]
    as_0_360 = f"{_east(box[0])},{box[1]},{_east(box[2])},{box[3]}"  # 199.5,-10,201.5,-8
    assert _search(catalog, "--bbox", as_0_360) == reference
    # 165..200 in 0..360 crosses 180°: both tiles (west > east in -180..180).
    crossing = (165.0, -10.0, CHIRPS_WEST + 1.5, -8.0)
    assert _walked(catalog, Query(crossing)) == [CHIRPS, DEM]
    assert _search(catalog, "--bbox", f"165,-10,{_east(crossing[2])},-8") == [CHIRPS, DEM]
    # The whole circle, in either form, is every item.
    assert _search(catalog, "--bbox", "0,-90,360,90") == [CHIRPS, DEM]
    assert _search(catalog, "--bbox", "-180,-90,180,90") == [CHIRPS, DEM]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bbox", "361,-10,362,-8"], "longitude"),
        (["--bbox", "-200,-10,-190,-8"], "longitude"),
        (["--bbox", "10,-95,20,0"], "-90"),
        (["--datetime", "2021-01-01/2019-01-01"], "before"),
        # The parser's message spans lines (a caret under the column): said on one line.
        (["--filter", "platform = "], "does not parse"),
    ],
)
def test_impossible_input_is_a_one_line_usage_error(
    catalog: str, args: list[str], words: str
) -> None:
    result = CliRunner().invoke(app, ["search", catalog, *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output
    assert "\\n" not in lines[0]  # no escaped line breaks either


def test_query_parse_says_why() -> None:
    with pytest.raises(SearchError, match="before it starts"):
        Query.parse(datetime="2021-01-01/2019-01-01")
    with pytest.raises(SearchError, match="longitudes"):
        Query.parse(bbox=[400, 0, 410, 1])
    with pytest.raises(SearchError, match="four numbers"):
        Query.parse(bbox="nan,0,1,1")
    # An open end and a period of one day are fine.
    assert Query.parse(datetime="2021-01-01/2021-01-01").start is not None
    assert Query.parse(datetime="../2019-01-01").start is None


def test_a_time_search_within_a_day_finds_the_daily_file(catalog: str) -> None:
    # The CHIRPS daily file is the whole day 2020-01-01; the DEM, time-less, may hold it too.
    assert _search(catalog, "--datetime", "2020-01-01T12:00:00Z") == [CHIRPS, DEM]
    assert _search(catalog, "--datetime", "2020-01-02T00:00:00Z") == [DEM]


def test_the_table_says_unknown_for_time_less_items(catalog: str) -> None:
    result = CliRunner().invoke(app, ["search", catalog], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[2].strip(): line for line in result.output.splitlines()
            if line.count("│") >= 5}  # fmt: skip
    dem = next(line for item_id, line in rows.items() if item_id.startswith("dem"))
    chirps = next(line for item_id, line in rows.items() if item_id.startswith("chirps"))
    assert dem.split("│")[3].strip() == "unknown"
    assert "0001-01-01" not in result.output
    # A CHIRPS daily file covers one whole day (2020-01-01T00:00:00Z to 23:59:59.999999Z).
    assert chirps.split("│")[3].strip() == "2020-01-01"
