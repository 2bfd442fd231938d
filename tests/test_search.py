"""Search from the geoparquet index equals a brute-force walk of the JSON catalog, for random
boxes, periods and cloud limits (property-based), including antimeridian boxes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pystac
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import byod
from byod.catalog import CollectionInfo, publish
from byod.cli import app
from byod.index import Query, SearchError
from byod.keys import new_version
from byod.searching import search_store, walk_catalog
from byod.storage import open_store
from tests.readback import item_files

START = datetime(2020, 1, 1, tzinfo=UTC)


def _items(n: int) -> dict[str, pystac.Item]:
    """Items spread over the globe and four years, some across 180°, some periods, some
    without cloud cover, with band assets of different shapes."""
    items = {}
    for i in range(n):
        west = -180 + (i * 37) % 360
        width = 1 + (i % 7) * 3
        east = west + width if west + width <= 180 else west + width - 360
        south = -80 + (i * 23) % 150
        item = pystac.Item(
            f"i{i:03d}", {"type": "Point", "coordinates": [west, south]},
            [west, south, east, south + 5], START + timedelta(days=(i * 13) % 1460), {},
        )  # fmt: skip
        if i % 5 == 0:
            item.common_metadata.start_datetime = item.datetime
            item.common_metadata.end_datetime = item.datetime + timedelta(days=30)
        if i % 4:
            item.properties["eo:cloud_cover"] = float((i * 17) % 101)
        item.properties["platform"] = "sentinel-2b" if i % 3 else "landsat-9"
        bands = {"raster:bands": [{"nodata": "nan" if i % 2 else 0}]}
        item.add_asset("data" if i % 2 else "B04",
                       pystac.Asset(f"/data/{i}.tif", extra_fields=bands))  # fmt: skip
        items[item.id] = item
    return items


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    store = open_store(root)
    items = _items(300)
    publish(store, CollectionInfo("many", "test items", "CC0-1.0"), items, (), new_version())
    small = {k: v for k, v in list(items.items())[:20]}
    publish(store, CollectionInfo("few", "test items", "CC0-1.0"), small, (), new_version())
    return root


lon = st.floats(-180, 180, allow_nan=False)
lat = st.floats(-90, 90, allow_nan=False)
day = st.integers(0, 1500)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    box = None
    if draw(st.booleans()):
        s, n = sorted((draw(lat), draw(lat)))
        box = (draw(lon), s, draw(lon), n)  # west > east: across 180°
    start = end = None
    if draw(st.booleans()):
        a, b = sorted((draw(day), draw(day)))
        start = START + timedelta(days=a) if draw(st.booleans()) else None
        end = START + timedelta(days=b) if draw(st.booleans()) else None
    cloud = draw(st.one_of(st.none(), st.floats(0, 100)))
    return Query(box, start, end, cloud)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries())
def test_index_equals_brute_force(catalog: Path, query: Query) -> None:
    store = open_store(catalog)
    from_index = sorted((i["collection"], i["id"]) for i in search_store(store, query))
    walked = sorted((i["collection"], i["id"]) for i in walk_catalog(store, query))
    assert from_index == walked


def test_results_are_the_items_as_published(catalog: Path) -> None:
    found = byod.search(str(catalog), collections=["many"], bbox=[-180, -90, 180, 90])
    assert len(found) == 300
    on_disk = json.loads(item_files(catalog, "many")["i001"].read_text())
    item = next(i for i in found if i.id == "i001")
    assert item.properties == on_disk["properties"]
    assert item.assets["data"].extra_fields["raster:bands"] == [{"nodata": "nan"}]


def test_cql2_filter_and_limit(catalog: Path) -> None:
    landsat = byod.search(str(catalog), collections=["many"], filter="platform = 'landsat-9'")
    assert len(landsat) == 100
    assert all(i.properties["platform"] == "landsat-9" for i in landsat)
    both = byod.search(str(catalog), filter='platform = \'landsat-9\' AND "eo:cloud_cover" < 50',
                       max_cloud=30, limit=5)  # fmt: skip
    assert 0 < len(both) <= 5
    assert all(i.properties["eo:cloud_cover"] <= 30 for i in both)


def test_limit_gives_that_many_of_the_matches(catalog: Path) -> None:
    store = open_store(catalog)
    query = Query.parse(datetime="2021-01-01/2022-12-31")
    every = {(i["collection"], i["id"]) for i in walk_catalog_with_collections(store, query)}
    for limit in (1, 7, 150, 1000):
        found = [(i["collection"], i["id"]) for i in search_store(store, query, limit=limit)]
        assert len(found) == min(limit, len(every)) and set(found) <= every
        assert len(set(found)) == len(found)


def walk_catalog_with_collections(store: Any, query: Query) -> list[dict[str, Any]]:
    """The reference walk, each item with the collection it was found in."""
    from byod.catalog import load_items
    from byod.index import matches
    from byod.searching import collection_ids

    return [{**item.to_dict(transform_hrefs=False), "collection": collection_id}
            for collection_id in collection_ids(store)
            for item in load_items(store, collection_id).values()
            if matches(item.to_dict(transform_hrefs=False), query)]  # fmt: skip


def test_cql2_filter_on_a_property_some_items_lack(catalog: Path) -> None:
    # A quarter of the items have no eo:cloud_cover: they are no match (SQL NULL semantics),
    # never an error, in the library and in the README's CLI example.
    expected = {i.id for i in _items(300).values()
                if i.properties.get("eo:cloud_cover", 100.0) < 50}  # fmt: skip
    found = byod.search(str(catalog), collections=["many"], filter='"eo:cloud_cover" < 50')
    assert {i.id for i in found} == expected
    result = CliRunner().invoke(app, ["search", str(catalog), "--collection", "many",
                                      "--filter", '"eo:cloud_cover" < 50', "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_bad_queries_say_why() -> None:
    with pytest.raises(SearchError, match="W,S,E,N"):
        Query.parse(bbox="1,2,3")
    with pytest.raises(SearchError, match="ISO 8601"):
        Query.parse(datetime="yesterday/today")
    with pytest.raises(SearchError, match="CQL2"):
        Query.parse(filter="platform ==")


def test_search_cli(catalog: Path) -> None:
    result = CliRunner().invoke(app, ["search", str(catalog), "--collection", "few",
                                      "--datetime", "2020-01-01/2020-12-31", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["type"] == "FeatureCollection"
    expected = walk_catalog(open_store(catalog), Query.parse(datetime="2020-01-01/2020-12-31"))
    assert {f["id"] for f in data["features"]} == {i["id"] for i in expected if i["id"] in
                                                   {f"i{n:03d}" for n in range(20)}}  # fmt: skip
    bad = CliRunner().invoke(app, ["search", str(catalog), "--bbox", "nonsense"])
    assert bad.exit_code == 2
