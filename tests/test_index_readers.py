"""The index byod writes is standard stac-geoparquet: the tools people use read it as they are
(geopandas, rustac, DuckDB, stac-geoparquet's arrow-to-items), and byod reads back from it
the items exactly as published. The catalog is a real ingest of two products of different
shapes (a Landsat-like scene with band assets, a NaN-nodata float raster, an int16 raster with
integer nodata and no time, a uint8 RGB raster); the expected values come from the item JSON
files, found by walking the catalog with pystac, not from byod's index code. rustac.search
is not used: it needs DuckDB's spatial extension, which DuckDB downloads at run time."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import geopandas
import numpy as np
import pyarrow.parquet as pq
import pystac
import pytest
import rustac
from rasterio.transform import from_origin
from shapely.geometry import shape
from stac_geoparquet.arrow import stac_table_to_items
from typer.testing import CliRunner

import byod
from byod.catalog import current_index_keys
from byod.cli import app
from byod.config import IngestSettings
from byod.index import read_index_entries, read_index_items
from byod.pipeline import ingest
from byod.report import Status
from byod.storage import open_store
from tests.conftest import ramp, write_geotiff

COLLECTION = "mixed"
FIXTURES = Path(__file__).parent / "fixtures"
LANDSAT = "LC09_L2SP_190026_20240131_20240201_02_T1"
UTM = from_origin(500000, 5000000, 10, 10)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<root>/catalogs` and `<root>/data` of one ingest of mixed products."""
    root = tmp_path_factory.mktemp("readers")
    src = root / "src"
    scene = src / "landsat"
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 30, 30), "nodata": 0}
    for band in ("SR_B2", "SR_B3", "SR_B4"):
        write_geotiff(scene / f"{LANDSAT}_{band}.TIF", ramp(20, 20), **grid)
    qa = np.full((20, 20), 1 << 6, np.uint16)
    qa[5:8, :] = 1 << 3
    write_geotiff(scene / f"{LANDSAT}_QA_PIXEL.TIF", qa, crs="EPSG:32633",
                  transform=grid["transform"])  # fmt: skip
    shutil.copy(FIXTURES / f"{LANDSAT}_MTL.txt", scene / f"{LANDSAT}_MTL.txt")
    floats = ramp(32, 32, "float32")
    floats[:, 16:, :] = np.nan
    write_geotiff(src / "nan_20240103.tif", floats, crs="EPSG:32633", transform=UTM,
                  nodata=float("nan"))  # fmt: skip
    write_geotiff(src / "geo.tif", ramp(50, 100, "int16"), crs="EPSG:4326",
                  transform=from_origin(10.0, 50.0, 0.01, 0.01), nodata=-9999)  # fmt: skip
    write_geotiff(src / "rgb_20240102.tif", ramp(32, 32, "uint8", bands=3), crs="EPSG:32633",
                  transform=UTM, photometric="RGB")  # fmt: skip
    settings = IngestSettings(source=str(src), collection=COLLECTION, target=str(root / "data"),
                              catalog=str(root / "catalogs"), workers=2)  # fmt: skip
    report = ingest(settings)
    assert [r.status for r in report.rows] == [Status.INGESTED] * 4
    return root


def _json_items(catalog: Path) -> dict[str, dict[str, Any]]:
    """Every item the catalog links, read from its JSON file (found by a pystac walk), asset
    hrefs made absolute against the file."""
    out = {}
    walked = pystac.Catalog.from_file(str(catalog / "catalog.json"))
    for item in walked.get_items(recursive=True):
        path = Path(str(item.get_self_href()))
        data = json.loads(path.read_text())
        for asset in data["assets"].values():
            asset["href"] = os.path.normpath(path.parent / asset["href"])
        out[data["id"]] = data
    return out


def _index_files(catalog: Path) -> list[Path]:
    files = [catalog / k for k in current_index_keys(open_store(catalog), COLLECTION)]
    assert files and all(f.is_file() for f in files)
    return files


@pytest.fixture(scope="module")
def published(root: Path) -> dict[str, dict[str, Any]]:
    items = _json_items(root / "catalogs")
    assert len(items) == 4
    kinds = {k for i in items.values() for k in i["assets"]}
    assert {"data", "SR_B2", "QA_PIXEL"} <= kinds  # band assets beside single-file ones
    nodata = [b.get("nodata") for i in items.values() for a in i["assets"].values()
              for b in a.get("raster:bands", [])]  # fmt: skip
    assert "nan" in nodata and 0 in nodata and -9999 in nodata  # the shapes that must unify
    return items


def _resolved(href: str, index_file: Path) -> str:
    return href if "://" in href else os.path.normpath(index_file.parent / href)


def test_byod_reads_back_the_items_exactly_as_published(
    root: Path, published: dict[str, dict[str, Any]]
) -> None:
    store = open_store(root / "catalogs")
    indexed: dict[str, dict[str, Any]] = {}
    for key in current_index_keys(store, COLLECTION):
        indexed.update(read_index_items(store, key))
    expected = {k: {f: v for f, v in i.items() if f != "links"} for k, i in published.items()}
    assert indexed == expected
    # JSON types too ("nan" a string, integer nodata an int), not only Python equality.
    for item_id, item in indexed.items():
        assert json.dumps(item, sort_keys=True) == json.dumps(expected[item_id], sort_keys=True)


def test_entries_for_planning(root: Path, published: dict[str, dict[str, Any]]) -> None:
    store = open_store(root / "catalogs")
    entries = read_index_entries(store, current_index_keys(store, COLLECTION))
    assert sorted(entries) == sorted(published)
    for item_id, entry in entries.items():
        props, assets = published[item_id]["properties"], published[item_id]["assets"]
        assert entry.source == props["byod:source"]
        assert entry.fingerprint == props["byod:fingerprint"]
        assert entry.subdataset == props.get("byod:subdataset")
        assert entry.version == props.get("byod:version")
        start = props.get("start_datetime") or props["datetime"]
        end = props.get("end_datetime") or props["datetime"]
        assert entry.start == pystac.utils.str_to_datetime(start)
        assert entry.end == pystac.utils.str_to_datetime(end)
        assert sorted(entry.hrefs) == sorted(a["href"] for a in assets.values())
        assert sorted(entry.data_hrefs) == sorted(a["href"] for a in assets.values()
                                                  if "data" in a["roles"])  # fmt: skip
        assert all(Path(h).is_file() for h in entry.hrefs)


def test_geopandas(root: Path, published: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for path in _index_files(root / "catalogs"):
        frame = geopandas.read_parquet(path)
        assert frame.crs is not None and frame.crs.to_epsg() == 4326
        for item_id, geometry in zip(frame["id"], frame.geometry, strict=True):
            assert geometry.equals_exact(shape(published[item_id]["geometry"]), 0)
            seen.add(item_id)
    assert seen == set(published)


def _as_json_tools_write_it(item: dict[str, Any]) -> dict[str, Any]:
    """The published item as a tool that turns the index into JSON gives it: the documented
    normalisation (nodata as float64; NaN has no JSON form, so rustac leaves it out), nulls
    left out (but `datetime`), no links."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    out = clean({k: v for k, v in item.items() if k != "links"})
    out["properties"]["datetime"] = item["properties"]["datetime"]
    for asset in out["assets"].values():
        for band in asset.get("raster:bands", []):
            if "nodata" in band:
                value = float(band.pop("nodata"))
                if not math.isnan(value):
                    band["nodata"] = value
    return out


def test_rustac(root: Path, published: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for path in _index_files(root / "catalogs"):
        collection = rustac.read_sync(str(path))
        for feature in json.loads(json.dumps(collection["features"])):  # tuples as lists
            feature.pop("links", None)
            for asset in feature["assets"].values():
                asset["href"] = _resolved(asset["href"], path)
            expected = _as_json_tools_write_it(published[feature["id"]])
            assert feature == expected
            seen.add(feature["id"])
    assert seen == set(published)


def test_duckdb(root: Path, published: dict[str, dict[str, Any]]) -> None:
    files = [str(p) for p in _index_files(root / "catalogs")]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({files})").fetchall() == [(4,)]
    west, south, east, north = 14.9, 45.0, 15.1, 45.2
    rows = duckdb.sql(
        f"SELECT id FROM read_parquet({files}) WHERE bbox.xmin <= {east} AND "
        f"bbox.xmax >= {west} AND bbox.ymin <= {north} AND bbox.ymax >= {south}"
    ).fetchall()
    expected = {i for i, item in published.items() if item["bbox"][0] <= east and
                item["bbox"][2] >= west and item["bbox"][1] <= north and
                item["bbox"][3] >= south}  # fmt: skip
    assert {r[0] for r in rows} == expected and 0 < len(expected) < 4


def test_stac_geoparquet_round_trip_keeps_the_assets(
    root: Path, published: dict[str, dict[str, Any]]
) -> None:
    seen = set()
    for path in _index_files(root / "catalogs"):
        for item in stac_table_to_items(pq.read_table(path)):
            assets = published[item["id"]]["assets"]
            assert set(item["assets"]) == set(assets)
            for key, asset in item["assets"].items():
                assert _resolved(asset["href"], path) == assets[key]["href"]
                assert asset["roles"] == assets[key]["roles"]
                assert asset["file:checksum"] == assets[key]["file:checksum"]
            seen.add(item["id"])
    assert seen == set(published)


def test_catalogs_and_data_moved_together_still_resolve(
    root: Path, published: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("catalogs", "data"):  # moved, not copied: nothing is left where they were
        shutil.move(root / name, moved / name)
    try:
        found = byod.search(str(moved / "catalogs"), bbox=[-180, -90, 180, 90])
        assert sorted(i.id for i in found) == sorted(published)
        hrefs = [a.href for i in found for a in i.assets.values()]
        assert hrefs and all(h.startswith(str(moved)) and Path(h).is_file() for h in hrefs)
        result = CliRunner().invoke(app, ["search", str(moved / "catalogs"), "--json"])
        assert result.exit_code == 0, result.output
        features = json.loads(result.stdout)["features"]
        hrefs = [a["href"] for f in features for a in f["assets"].values()]
        assert len(features) == 4 and all(Path(h).is_file() for h in hrefs)
    finally:  # back for the module's other tests
        for name in ("catalogs", "data"):
            shutil.move(moved / name, root / name)


def test_a_blob_index_keeps_urls_and_is_read_partition_by_partition(azure_env: str) -> None:
    """On blob storage hrefs stay absolute https URLs; the entries of several partitions
    (read concurrently) and their items agree with the items written."""
    from datetime import UTC, datetime

    from byod.azure import AzureOptions, resolve_access
    from byod.index import write_index
    from byod.storage import BlobStore

    store = open_store(f"az://index-{azure_env}", resolve_access(AzureOptions()))
    assert isinstance(store, BlobStore)
    store.ensure_container()
    written: dict[str, pystac.Item] = {}
    keys = []
    for month in range(1, 4):
        when = datetime(2024, month, 2, tzinfo=UTC)
        items = []
        for n in range(3):
            point = {"type": "Point", "coordinates": [n, month]}
            item = pystac.Item(f"m{month}-{n}", point, [n, month, n, month], when,
                               {"byod:source": f"{month}/{n}.tif"})  # fmt: skip
            url = f"https://example.blob.core.windows.net/cogs/{month}/{n}.tif"
            item.add_asset("data", pystac.Asset(url, roles=["data"]))
            item.add_asset("thumbnail", pystac.Asset(url + ".png", roles=["thumbnail"]))
            items.append(item)
            written[item.id] = item
        key = f"c/_months/2024-{month:02d}/v/items.parquet"
        write_index(store, key, items)
        keys.append(key)
    entries = read_index_entries(store, keys)
    assert sorted(entries) == sorted(written)
    for item_id, entry in entries.items():
        item = written[item_id]
        assert entry.source == item.properties["byod:source"]
        assert entry.start == entry.end == item.datetime
        assert entry.data_hrefs == (item.assets["data"].href,)
        assert sorted(entry.hrefs) == sorted(a.href for a in item.assets.values())
    back = read_index_items(store, keys[1])
    assert sorted(back) == ["m2-0", "m2-1", "m2-2"]
    assert back["m2-1"]["assets"]["data"]["href"] == written["m2-1"].assets["data"].href
    assert back["m2-1"]["collection"] == "c"


def test_every_nodata_form_and_null_round_trips(tmp_path: Path) -> None:
    """Hand-made items of different shapes in one file: nodata as NaN, ±inf, an integer of
    an integer type, a float of a float type; proj:code and datetime null; different asset
    keys (missing ones null in Arrow). byod reads each back equal, JSON types included."""
    from byod.index import write_index

    def item(item_id: str, assets: dict[str, Any], **props: Any) -> dict[str, Any]:
        when = {"datetime": "2024-05-01T10:00:00.250000Z"} if "start_datetime" not in props else {
            "datetime": None}  # fmt: skip
        return {
            "type": "Feature", "stac_version": "1.1.0", "id": item_id, "collection": "c",
            "stac_extensions": ["https://stac-extensions.github.io/projection/v1.2.0/schema.json"],
            "geometry": {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0],
                                                             [0.0, 0.0]]]},
            "bbox": [0.0, 0.0, 1.0, 1.0], "properties": {**when, **props}, "links": [],
            "assets": assets,
        }  # fmt: skip

    def band(nodata: Any, data_type: str) -> dict[str, Any]:
        return {"href": str(tmp_path / "data" / f"{data_type}.tif"), "roles": ["data"],
                "raster:bands": [{"nodata": nodata, "data_type": data_type}]}  # fmt: skip

    # Every item has proj:code, as byod's do: null and absent are one in Arrow, and byod
    # reads a null proj:code back as null where the projection extension is declared.
    no_code = {"proj:code": None, "proj:wkt2": "LOCAL_CS[]"}
    period = {"start_datetime": "0001-01-01T00:00:00Z", "end_datetime": "2024-01-01T00:00:00Z",
              "proj:code": "EPSG:4326"}  # fmt: skip
    items = [
        item("nan", {"data": band("nan", "float32")}, **{"proj:code": "EPSG:4326"}),
        item("inf", {"data": band("inf", "float64"), "B1": band("-inf", "float32")}, **no_code),
        item("int", {"B1": band(65535, "uint16"), "B2": band(-9999, "int16")}, **period),
        item("float", {"data": band(-9999.5, "float32")}, **{"proj:code": "EPSG:32633"}),
        {**item("bare", {}, **period), "stac_extensions": []},  # datetime null, no extension
    ]
    del items[-1]["properties"]["proj:code"]
    store = open_store(tmp_path / "catalog")
    write_index(store, "c/_months/2024-05/v/items.parquet",
                [pystac.Item.from_dict(i, migrate=False) for i in items])  # fmt: skip
    back = read_index_items(store, "c/_months/2024-05/v/items.parquet")
    for expected in items:
        expected = {k: v for k, v in expected.items() if k != "links"}
        assert json.dumps(back[expected["id"]], sort_keys=True) == json.dumps(
            expected, sort_keys=True)  # fmt: skip


def test_search_reads_no_partition_of_a_month_after_the_period(
    root: Path, published: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """A partition holds the items that start in its month: one whose month starts after
    the query's end is never opened (here: deleted, and the search still answers)."""
    copy = tmp_path / "catalogs"
    shutil.copytree(root / "catalogs", copy)
    keys = current_index_keys(open_store(copy), COLLECTION)
    later = [k for k in keys if "/2024-01/" in k]
    assert len(later) == 1 and len(keys) > 1  # the time-less item is in another partition
    (copy / later[0]).unlink()
    found = byod.search(str(copy), datetime="../2023-12-31")
    expected = [i for i, item in published.items()
                if (item["properties"].get("start_datetime") or item["properties"]["datetime"])
                < "2024"]  # fmt: skip
    assert sorted(i.id for i in found) == sorted(expected) == ["geo"]
    with pytest.raises(FileNotFoundError):  # a period the deleted month may hold
        byod.search(str(copy), datetime="../2024-01-31")


def test_search_and_planning_reads_do_not_import_pandas(root: Path) -> None:
    """pyarrow imports pandas for `to_numpy`, `pa.array`, `pa.scalar` and tz-aware
    timestamps (1-4 s of `byod search` on the 2-core machine); byod's index reads avoid all
    four. Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import sys, byod\n"
        "from byod.catalog import current_index_keys\n"
        "from byod.index import read_index_entries, read_index_items\n"
        "from byod.storage import open_store\n"
        f"catalog = {str(root / 'catalogs')!r}\n"
        "found = byod.search(catalog, bbox=[-180, -90, 180, 90], datetime='../2030-01-01',\n"
        "                    max_cloud=100)\n"
        "store = open_store(catalog)\n"
        f"keys = current_index_keys(store, {COLLECTION!r})\n"
        "entries = read_index_entries(store, keys)\n"
        "items = [read_index_items(store, k) for k in keys]\n"
        "print(len(found), len(entries), 'pandas' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    clouded = sum(
        "eo:cloud_cover" in i["properties"] for i in _json_items(root / "catalogs").values()
    )
    assert result.stdout.split() == [str(clouded), "4", "False"]
