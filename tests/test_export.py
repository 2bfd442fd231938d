"""`byod export`: the files load into a real pgstac (PostgreSQL + PostGIS started here on
127.0.0.1, `pypgstac migrate` and `pypgstac load`) and a pgstac search gives back the
catalog's items; the parquet export reads in geopandas; the CLI's manners (exit 2, no
overwrite without --overwrite). Expected values come from the catalog's JSON files, read
here by following its links, never from byod's own reading of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pystac.validation
import pytest
from rasterio.transform import from_origin
from typer.testing import CliRunner

from byod.cli import app
from byod.export import export_collection, export_item
from byod.validate import OfflineValidator
from tests.conftest import _free_port, ramp, write_geotiff
from tests.test_scenes import _landsat

STATIC_RELS = {"root", "parent", "self", "child", "item", "collection"}
ODD_NAME = "back\\slash.tif"  # a backslash: pypgstac's reader mangles `\\` in a line
PLAIN_BOX = [9.9, 49.5, 11.0, 50.1]  # the two geographic rasters of `plain`, not the rest
VENV_BIN = Path(sys.executable).parent


# --- the catalog, and what its JSON files say --------------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two collections ingested with the CLI: `landsat` (a band-per-file scene, its time from
    the MTL) and `plain` (float32 with NaN nodata in UTM, uint16 with nodata 0 in EPSG:4326
    twice, one of them named with a backslash; all time-less: datetime null, a period from
    0001-01-01)."""
    root = tmp_path_factory.mktemp("export")
    _landsat(root / "src1" / "landsat")
    floats = ramp(32, 32, "float32")
    floats[:, 16:, :] = np.nan
    write_geotiff(root / "src2" / "nan.tif", floats, crs="EPSG:32633",
                  transform=from_origin(500000, 5000000, 10, 10), nodata=float("nan"))  # fmt: skip
    for name, west in (("geo.tif", 10.0), (ODD_NAME, 10.5)):
        write_geotiff(root / "src2" / name, ramp(32, 32), crs="EPSG:4326",
                      transform=from_origin(west, 50.0, 0.01, 0.01), nodata=0)  # fmt: skip
    for src, collection in (("src1", "landsat"), ("src2", "plain")):
        args = ["ingest", str(root / src), "--collection", collection, "--target",
                str(root / "data"), "--catalog", str(root / "catalog"), "--quiet"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    return root / "catalog"


def json_items(catalog: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Item id -> (collection id, the item's JSON with asset hrefs made absolute paths), by
    following the catalog's child and item links from catalog.json."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}

    def walk(path: Path, collection: str | None) -> None:
        data = json.loads(path.read_text("utf-8"))
        if data["type"] == "Feature":
            for asset in data["assets"].values():
                asset["href"] = os.path.normpath(path.parent / asset["href"])
            assert collection is not None
            out[data["id"]] = (collection, data)
            return
        if data["type"] == "Collection":
            collection = data["id"]
        for link in data["links"]:
            if link["rel"] in ("child", "item"):
                walk(path.parent / link["href"], collection)

    walk(catalog / "catalog.json", None)
    return out


def exported_form(item: dict[str, Any], collection: str, catalog: Path) -> dict[str, Any]:
    """What the export must hold for a JSON item: its collection field and an absolute
    `collection` link (STAC 1.1 requires the link with the field), no other static links."""
    href = str(catalog / collection / "collection.json")
    links = [{"rel": "collection", "href": href, "type": "application/json"}]
    links += [link for link in item["links"] if link["rel"] not in STATIC_RELS]
    return {**item, "links": links, "collection": collection}


def export(catalog: Path | str, out: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["export", str(catalog), "--out", str(out), *args])


@pytest.fixture(scope="module")
def ndjson(catalog: Path) -> Path:
    out = catalog.parent / "export-ndjson"
    result = export(catalog, out, "--format", "ndjson")
    assert result.exit_code == 0, result.output
    return out


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_ndjson_holds_every_item_as_published(catalog: Path, ndjson: Path) -> None:
    assert sorted(p.name for p in ndjson.iterdir()) == ["collections.ndjson", "items.ndjson"]
    expected = json_items(catalog)
    assert {c for c, _ in expected.values()} == {"landsat", "plain"} and len(expected) == 4
    items = read_lines(ndjson / "items.ndjson")
    assert sorted(i["id"] for i in items) == sorted(expected)
    for item in items:
        collection, published = expected[item["id"]]
        assert item == exported_form(published, collection, catalog)
        pystac.validation.validate_dict(item, validator=OfflineValidator())  # valid STAC
        for asset in item["assets"].values():
            assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()
    odd = next(i for i in items if i["properties"]["byod:source"] == ODD_NAME)
    assert odd["collection"] == "plain"


def test_collections_have_no_static_links_and_no_index(catalog: Path, ndjson: Path) -> None:
    collections = {c["id"]: c for c in read_lines(ndjson / "collections.ndjson")}
    assert sorted(collections) == ["landsat", "plain"]
    for collection_id, exported in collections.items():
        published = json.loads((catalog / collection_id / "collection.json").read_text())
        assert all(link["rel"] not in STATIC_RELS for link in exported["links"])
        for asset in exported.get("assets", {}).values():
            assert "collection-mirror" not in asset.get("roles", [])
        for field in ("extent", "license", "description", "stac_version"):
            assert exported[field] == published[field]


# --- a real pgstac -------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries (Debian's layout) with PostGIS beside them."""
    found = Path("/usr/lib/postgresql").glob("*/bin")
    for bindir in sorted(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
                         reverse=True):  # fmt: skip
        extensions = Path("/usr/share/postgresql") / bindir.parent.name / "extension"
        if (bindir / "initdb").is_file() and (extensions / "postgis.control").is_file():
            return bindir
    return None


@pytest.fixture(scope="module")
def pgstac_dsn() -> Iterator[str]:
    """A PostgreSQL server with PostGIS, started on a free 127.0.0.1 port for this module
    (as the `postgres` user when run as root: the server refuses root), pgstac migrated."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL + PostGIS not installed (scripts/bootstrap-postgres.sh "
                    "installs them with apt, as root); the pgstac load is not tested")  # fmt: skip
    # Under /tmp, not pytest's tmp_path (mode 0700, root's): the server's user must enter it.
    folder = Path(tempfile.mkdtemp(prefix="byod-test-pgstac-"))
    as_server: list[str] = []
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
        as_server = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run([*as_server, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)  # fmt: skip
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
               "-c full_page_writes=off -c synchronous_commit=off")  # fmt: skip
    pg_ctl = [*as_server, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-l", str(folder / "log"), "-w", "-t", "60", "-o", options,
                    "start"], check=True, capture_output=True)  # fmt: skip
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        pypgstac("migrate", "--dsn", dsn)
        yield dsn
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def pypgstac(*args: str) -> str:
    """Run the pypgstac command line, as a user of the export would."""
    done = subprocess.run([str(VENV_BIN / "pypgstac"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pgstac_search(dsn: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO pgstac, public")
        row = conn.execute("SELECT search(%s::jsonb)", (json.dumps(query),)).fetchone()
    assert row is not None
    return list(row[0]["features"])


def test_export_loads_into_pgstac_and_searches(
    catalog: Path, ndjson: Path, pgstac_dsn: str
) -> None:
    pypgstac("load", "collections", str(ndjson / "collections.ndjson"), "--dsn", pgstac_dsn,
             "--method", "insert")  # fmt: skip
    pypgstac("load", "items", str(ndjson / "items.ndjson"), "--dsn", pgstac_dsn,
             "--method", "insert")  # fmt: skip
    expected = json_items(catalog)

    def check(found: list[dict[str, Any]], ids: set[str]) -> None:
        assert {f["id"] for f in found} == ids
        for feature in found:
            collection, published = expected[feature["id"]]
            assert feature["collection"] == collection
            hrefs = {k: a["href"] for k, a in feature["assets"].items()}
            assert hrefs == {k: a["href"] for k, a in published["assets"].items()}
            # Every property intact, the backslash of ODD_NAME's byod:source included; pgstac
            # gives items back without null fields (a time-less item's "datetime": null).
            assert feature["properties"] == {
                k: v for k, v in published["properties"].items() if v is not None
            }

    for collection in ("landsat", "plain"):
        found = pgstac_search(pgstac_dsn, {"collections": [collection], "limit": 100})
        check(found, {i for i, (c, _) in expected.items() if c == collection})
    # By bbox: the items whose published bbox meets the box, computed from the JSON.
    w, s, e, n = PLAIN_BOX
    inside = {i for i, (_, item) in expected.items()
              if item["bbox"][0] <= e and w <= item["bbox"][2]
              and item["bbox"][1] <= n and s <= item["bbox"][3]}  # fmt: skip
    assert len(inside) == 2
    check(pgstac_search(pgstac_dsn, {"bbox": PLAIN_BOX, "limit": 100}), inside)


# --- parquet -------------------------------------------------------------------------------


def test_parquet_reads_in_geopandas(catalog: Path, tmp_path: Path) -> None:
    import geopandas
    import shapely.geometry

    out = tmp_path / "parquet"
    result = export(catalog, out, "--format", "parquet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "collections.ndjson", "landsat.parquet", "plain.parquet"]  # fmt: skip
    expected = json_items(catalog)
    for collection in ("landsat", "plain"):
        frame = geopandas.read_parquet(out / f"{collection}.parquet")
        assert frame.crs is not None and frame.crs.to_epsg() == 4326
        assert sorted(frame["id"]) == sorted(i for i, (c, _) in expected.items() if c == collection)
        for _, row in frame.iterrows():
            published = expected[row["id"]][1]
            assert row.geometry.equals(shapely.geometry.shape(published["geometry"]))
            assets = {k: a for k, a in row["assets"].items() if a is not None}
            assert sorted(assets) == sorted(published["assets"])
            for key, asset in assets.items():
                assert asset["href"] == published["assets"][key]["href"]
                assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()


# --- the command line ----------------------------------------------------------------------


def test_one_collection(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "one"
    assert export(catalog, out, "--format", "ndjson", "--collection", "plain").exit_code == 0
    assert [c["id"] for c in read_lines(out / "collections.ndjson")] == ["plain"]
    assert {i["collection"] for i in read_lines(out / "items.ndjson")} == {"plain"}


def test_errors_exit_2_in_one_line(catalog: Path, tmp_path: Path) -> None:
    missing = export(tmp_path / "nothing", tmp_path / "a", "--format", "ndjson")
    assert missing.exit_code == 2
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("error: ") and "no catalog there" in line
    unknown = export(catalog, tmp_path / "b", "--format", "ndjson", "--collection", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_out_is_never_overwritten_without_overwrite(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    refused = export(catalog, out, "--format", "ndjson")
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    # --overwrite replaces only an earlier export, never a folder holding other files.
    kept = export(catalog, out, "--format", "ndjson", "--overwrite")
    assert kept.exit_code == 2 and [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()
    assert export(catalog, out, "--format", "parquet").exit_code == 0
    replaced = export(catalog, out, "--format", "ndjson", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in out.iterdir()) == ["collections.ndjson", "items.ndjson"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(catalog, empty, "--format", "ndjson").exit_code == 0  # an empty folder: fine


def test_links_and_hrefs_of_exported_objects() -> None:
    """Static-catalog links go; other links stay, relative hrefs made absolute against where
    the object was read (a path or a blob URL); byod's index asset goes."""
    links = [{"rel": r, "href": "../x.json"} for r in sorted(STATIC_RELS)]
    links += [{"rel": "license", "href": "../LICENSE"},
              {"rel": "via", "href": "https://example.org/a"}]  # fmt: skip
    item = export_item({"id": "a", "links": links, "assets": {}}, "c", "/d/cat/c/collection.json")
    assert item["collection"] == "c"
    assert (
        item["links"]
        == [  # search_store's hrefs are absolute already
            {"rel": "collection", "href": "/d/cat/c/collection.json", "type": "application/json"},
            *links[-2:],
        ]
    )
    base = "https://acct.blob.core.windows.net/cat/c/collection.json"
    assets = {"index": {"href": "./_index/1/items.parquet", "roles": ["collection-mirror"]},
              "logo": {"href": "./logo.png", "roles": ["overview"]}}  # fmt: skip
    collection = export_collection({"id": "c", "links": links, "assets": assets}, base)
    assert collection["links"] == [
        {"rel": "license", "href": "https://acct.blob.core.windows.net/cat/LICENSE"},
        {"rel": "via", "href": "https://example.org/a"},
    ]
    assert collection["assets"] == {
        "logo": {"href": "https://acct.blob.core.windows.net/cat/c/logo.png", "roles": ["overview"]}
    }
    local = export_collection(
        {"id": "c", "links": links, "assets": assets}, "/d/cat/c/collection.json"
    )
    assert local["links"][0]["href"] == "/d/cat/LICENSE"
    assert local["assets"]["logo"]["href"] == "/d/cat/c/logo.png"


def test_a_blob_catalog_exports_its_https_hrefs(tmp_path: Path, azure_env: str) -> None:
    """CATALOG on blob storage (Azurite): the export's hrefs are the blobs' URLs, as the
    item JSON in the container says, and each names a blob that is there."""
    from byod.azure import AzureOptions, resolve_access
    from byod.storage import open_store
    from tests.readback import read_items

    write_geotiff(tmp_path / "src" / "geo.tif", ramp(16, 16), crs="EPSG:4326",
                  transform=from_origin(10.0, 50.0, 0.01, 0.01), nodata=0)  # fmt: skip
    catalog, target = f"az://stac-{azure_env}", f"az://cogs-{azure_env}"
    ingest = ["ingest", str(tmp_path / "src"), "--collection", "blob", "--target", target,
              "--catalog", catalog, "--quiet"]  # fmt: skip
    assert CliRunner().invoke(app, ingest).exit_code == 0
    result = export(catalog, tmp_path / "out", "--format", "ndjson")
    assert result.exit_code == 0, result.output
    access = resolve_access(AzureOptions())
    published = read_items(open_store(catalog, access), "blob")
    cogs = open_store(target, access)
    (item,) = read_lines(tmp_path / "out" / "items.ndjson")
    expected = published[item["id"]]
    assert item["collection"] == "blob"
    for key, asset in item["assets"].items():
        assert asset["href"] == expected["assets"][key]["href"]
        assert asset["href"].startswith("http://127.0.0.1:")
        blob = cogs.key_of(asset["href"])
        assert blob is not None and cogs.exists(blob)


def test_never_replaces_the_catalog_or_its_files(catalog: Path) -> None:
    """--overwrite on the catalog's folder, a folder above or inside it, or the COGs' folder:
    refused (exit 2) before anything is replaced."""
    inside = (catalog / "plain", catalog / "new-folder")  # --overwrite would replace a collection
    for out in (catalog, catalog.parent, catalog.parent / "data", *inside):
        result = export(catalog, out, "--format", "ndjson", "--overwrite")
        assert result.exit_code == 2 and "export elsewhere" in result.stderr, result.output
    assert (catalog / "catalog.json").is_file()
    assert len(json_items(catalog)) == 4
    for _, item in json_items(catalog).values():
        assert all(Path(a["href"]).is_file() for a in item["assets"].values())


def test_temp_folders_of_killed_exports_are_removed(catalog: Path, tmp_path: Path) -> None:
    """A killed export leaves its hidden temp folder beside OUT; the next export to that OUT
    removes it, and leaves a live process's alone."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f".out.byod-export-{gone.pid}-x1y2"
    live = tmp_path / f".out.byod-export-{os.getpid()}-x1y2"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "items.ndjson").write_text("{}\n")
    assert export(catalog, tmp_path / "out", "--format", "ndjson").exit_code == 0
    assert not dead.exists() and live.exists()
