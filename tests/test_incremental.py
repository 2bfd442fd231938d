"""Re-runs: unchanged inputs cost nothing, a changed input replaces its item, a new one is added."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from byod.cli import exit_code
from byod.config import build_settings
from byod.errors import ConfigurationError
from byod.pipeline import ingest
from byod.report import Report, Status
from byod.validate import validate_catalog
from tests.conftest import WriteRaster, ramp
from tests.readback import asset_path, item_files, sha256_multihash


def _mtimes(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file's (mtime_ns, size) and every folder (None) below `folder`."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file()
        else None for p in folder.rglob("*")
    }  # fmt: skip


def _item_links(catalog: Path) -> list[str]:
    return sorted(str(p) for p in item_files(catalog, "test").values())


def test_rerun_is_a_no_op(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.tif", ramp(dtype="int16"))
    first = run_ingest()
    assert [r.status for r in first.rows] == [Status.INGESTED, Status.INGESTED]
    data_before = _mtimes(tmp_path / "data")
    catalog_before = _mtimes(tmp_path / "catalog")

    second = run_ingest()
    assert [r.status for r in second.rows] == [Status.UNCHANGED, Status.UNCHANGED]
    assert all(r.seconds is None for r in second.rows)  # no worker ran
    assert _mtimes(tmp_path / "data") == data_before
    assert _mtimes(tmp_path / "catalog") == catalog_before  # not a file written
    assert exit_code(second) == 0


def test_changed_input_replaces_only_its_item(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    a = write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.tif", ramp())
    run_ingest()
    before = item_files(tmp_path / "catalog", "test")
    b_item = before["b_20240102"]
    b_before = b_item.stat().st_mtime_ns
    old = json.loads(before["a_20240101"].read_text())
    old_cog = asset_path(before["a_20240101"], old["assets"]["data"]["href"])

    write_raster(a.name, ramp() * 2)  # same name, new content
    report = run_ingest()
    statuses = {r.input: r.status for r in report.rows}
    assert statuses == {"a_20240101.tif": Status.REPLACED, "b_20240102.tif": Status.UNCHANGED}
    after = item_files(tmp_path / "catalog", "test")
    new = json.loads(after["a_20240101"].read_text())
    assert new["properties"]["byod:fingerprint"] != old["properties"]["byod:fingerprint"]
    checksum = new["assets"]["data"]["file:checksum"]
    assert checksum != old["assets"]["data"]["file:checksum"]
    # The new COG went to a new key; the old one and the old item file were deleted after.
    new_cog = asset_path(after["a_20240101"], new["assets"]["data"]["href"])
    assert new_cog != old_cog and not old_cog.exists() and not before["a_20240101"].exists()
    assert sha256_multihash(new_cog.read_bytes()) == checksum
    assert after["b_20240102"] == b_item and b_item.stat().st_mtime_ns == b_before
    assert sorted(after) == ["a_20240101", "b_20240102"]


def test_new_input_is_added_without_rewriting_others(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    a_item = item_files(tmp_path / "catalog", "test")["a_20240101"]
    before = a_item.stat().st_mtime_ns
    write_raster("sub/c_20240103.tif", ramp())
    report = run_ingest()
    assert {r.input: r.status for r in report.rows} == {
        "a_20240101.tif": Status.UNCHANGED, "sub/c_20240103.tif": Status.INGESTED,
    }  # fmt: skip
    assert a_item.stat().st_mtime_ns == before
    assert len(_item_links(tmp_path / "catalog")) == 2
    assert validate_catalog(str(tmp_path / "catalog" / "catalog.json"))[1] == []


def test_changed_options_redo_the_work(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    report = run_ingest(time={"datetime": "2020-05-05T10:00:00Z"})
    assert report.rows[0].status is Status.REPLACED
    item = json.loads(item_files(tmp_path / "catalog", "test")["a_20240101"].read_text())
    assert item["properties"]["datetime"] == "2020-05-05T10:00:00Z"


def test_deleted_cog_is_rebuilt(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    item_file = item_files(tmp_path / "catalog", "test")["a_20240101"]
    cog = asset_path(item_file, json.loads(item_file.read_text())["assets"]["data"]["href"])
    cog.unlink()
    assert run_ingest().rows[0].status is Status.REPLACED
    item_file = item_files(tmp_path / "catalog", "test")["a_20240101"]
    item = json.loads(item_file.read_text())
    rebuilt = asset_path(item_file, item["assets"]["data"]["href"])
    assert sha256_multihash(rebuilt.read_bytes()) == item["assets"]["data"]["file:checksum"]


def test_colliding_slugs_get_distinct_stable_ids(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a b_20240101.tif", ramp())
    write_raster("a-b_20240101.tif", ramp())
    first = run_ingest()
    ids = sorted(i for r in first.rows for i in r.item_ids)
    assert len(set(ids)) == 2
    second = run_ingest()
    assert sorted(i for r in second.rows for i in r.item_ids) == ids
    assert len(_item_links(tmp_path / "catalog")) == 2


def test_two_collections_share_the_root(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    run_ingest()
    run_ingest(collection="other")
    root = json.loads((tmp_path / "catalog" / "catalog.json").read_text())
    children = sorted(link["href"] for link in root["links"] if link["rel"] == "child")
    assert children == ["./other/collection.json", "./test/collection.json"]


def test_outputs_inside_the_source_are_not_read_as_inputs(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    # `byod ingest .` with the default data/ and catalogs/ puts both inside the source.
    write_raster("scene_20240101.tif", ramp())
    src = tmp_path / "src"
    first = run_ingest(target=str(src / "data"), catalog=str(src / "catalogs"))
    again = run_ingest(target=str(src / "data"), catalog=str(src / "catalogs"))
    assert [(r.input, r.status) for r in first.rows] == [("scene_20240101.tif", Status.INGESTED)]
    assert [(r.input, r.status) for r in again.rows] == [("scene_20240101.tif", Status.UNCHANGED)]
    assert set(item_files(src / "catalogs", "test")) == {"scene_20240101"}


def test_outputs_of_an_earlier_run_inside_the_source_are_not_read_either(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    # `cd src && byod ingest .`, then `byod ingest src` from the parent (other outputs):
    # src/data and src/catalogs are byod's, found by their marker and the root catalog.
    write_raster("scene_20240101.tif", ramp())
    src = tmp_path / "src"
    run_ingest(target=str(src / "data"), catalog=str(src / "catalogs"))
    assert (src / "data" / ".byod-output").is_file()
    assert (src / "catalogs" / ".byod-output").is_file()
    (src / "notes").mkdir()
    (src / "notes" / "byod.yaml").write_text("title: not read here\n")
    report = run_ingest()
    assert [(r.input, r.status) for r in report.rows] == [("scene_20240101.tif",
                                                           Status.INGESTED)]  # fmt: skip
    skipped = [n for n in report.notes if "byod's output" in n]
    assert sorted(n.split(":")[0] for n in skipped) == ["catalogs", "data"]
    assert "notes/byod.yaml" in report.ignored
    assert any(n.startswith("notes/byod.yaml: not read") for n in report.notes)
    # A catalog written before the marker is still known by its root catalog.json.
    (src / "catalogs" / ".byod-output").unlink()
    again = run_ingest()
    assert [(r.input, r.status) for r in again.rows] == [("scene_20240101.tif",
                                                          Status.UNCHANGED)]  # fmt: skip


def test_a_moved_source_folder_says_its_paths_have_items_of_the_old_one(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    write_raster("a_20240101.tif", ramp())
    write_raster("b_20240102.tif", ramp())
    first = run_ingest()
    assert not any("another source" in n for n in first.notes)
    moved = tmp_path / "moved"
    (tmp_path / "src").rename(moved)
    report = run_ingest(source=str(moved))
    assert {r.status for r in report.rows} == {Status.INGESTED}  # another source: new items
    notes = [n for n in report.notes if "another source" in n]
    assert notes == [f"2 new input(s) have the paths of items of another source, "
                     f"{(tmp_path / 'src').resolve()} (e.g. a_20240101.tif): a moved or renamed "
                     "folder is another source; its items stay, and this run adds items "
                     "beside them"]  # fmt: skip
    # Said once: a re-run of the moved folder adds nothing and says nothing of it.
    assert not any("another source" in n for n in run_ingest(source=str(moved)).notes)


def test_collection_fields_edited_without_an_item_change_are_published(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """A title or keywords edited in byod.yaml (or given on the command line) reach the
    collection on the next run even when every input is unchanged; a run that changes
    nothing still writes nothing (newcomer N4: the edit waited for a raster to change)."""
    write_raster("a_20240101.tif", ramp())
    src, catalog = tmp_path / "src", tmp_path / "catalog"

    def run(**options: Any) -> Report:  # as the CLI and the flow build the settings
        options = {"collection": "test", "target": str(tmp_path / "data"),
                   "catalog": str(catalog), **options}  # fmt: skip
        return ingest(build_settings(str(src), options))

    config = src / "byod.yaml"
    # A provider as users write one (an empty url): collection.json has it as pystac writes
    # it (no url); compared as such, the same byod.yaml is no change.
    providers = "providers: [{name: TU Wien, url: null, roles: [producer]}]\n"
    config.write_text("title: First\n" + providers)
    run()
    collection = catalog / "test" / "collection.json"
    before = json.loads(collection.read_text())
    assert before["title"] == "First"
    config.write_text("title: Second\nkeywords: [ndvi, field]\n" + providers)
    report = run()
    assert {r.status for r in report.rows} == {Status.UNCHANGED}
    assert "collection test: title, keywords changed; published" in report.notes
    after = json.loads(collection.read_text())
    assert (after["title"], after["keywords"]) == ("Second", ["ndvi", "field"])

    # Nothing else of the collection changed: its extent, pages and links are as they were.
    def rest(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in ("title", "keywords")}

    assert rest(after) == rest(before)
    assert validate_catalog(str(catalog))[1] == []
    # Again: nothing to change, nothing written, no note; a license given now is published.
    mtimes = _mtimes(catalog)
    again = run()
    assert _mtimes(catalog) == mtimes
    assert not any("changed; published" in n for n in again.notes)
    licensed = run(license="MIT")
    assert "collection test: license changed; published" in licensed.notes
    assert json.loads(collection.read_text())["license"] == "MIT"


def test_provider_fields_are_compared_as_collection_json_has_them() -> None:
    """A provider given with an empty field (`url: None`, as a flow may pass it) is no change
    against the collection that pystac wrote without it; another name is."""
    from byod.catalog import CollectionInfo, changed_fields

    info = CollectionInfo("c", "d", "MIT", providers=({"name": "X", "url": None},))
    published = {"license": "MIT", "providers": [{"name": "X"}]}
    assert changed_fields(info, published, {"providers", "license"}) == []
    assert changed_fields(info, {**published, "providers": [{"name": "Y"}]},
                          {"providers"}) == ["providers"]  # fmt: skip
    assert changed_fields(info, published, {"title"}) == []  # not given: not compared


def test_collection_fields_given_once_stay_when_a_later_run_adds_an_item(
    tmp_path: Path, write_raster: WriteRaster
) -> None:
    """A title, license and description given once (`--title ... --license ...`) stay when a
    later run that was not given them adds an item (newcomer N5: it reset them to byod's
    defaults, silently); a field given again replaces its value."""
    write_raster("a_20240101.tif", ramp())
    src, catalog = tmp_path / "src", tmp_path / "catalog"

    def run(**options: Any) -> Report:
        options = {"collection": "test", "target": str(tmp_path / "data"),
                   "catalog": str(catalog), **options}  # fmt: skip
        return ingest(build_settings(str(src), options))

    run(title="My data", license="CC-BY-4.0", description="Lab data", keywords=["ndvi"])
    collection = catalog / "test" / "collection.json"
    write_raster("b_20240102.tif", ramp())
    assert {r.status for r in run().rows} == {Status.UNCHANGED, Status.INGESTED}
    data = json.loads(collection.read_text())
    assert (data["title"], data["license"], data["description"], data["keywords"]) == (
        "My data", "CC-BY-4.0", "Lab data", ["ndvi"])  # fmt: skip
    root = json.loads((catalog / "catalog.json").read_text())
    assert [link.get("title") for link in root["links"] if link["rel"] == "child"] == ["My data"]
    write_raster("c_20240103.tif", ramp())
    run(title="Renamed")
    data = json.loads(collection.read_text())
    assert (data["title"], data["license"]) == ("Renamed", "CC-BY-4.0")


def test_byods_marker_is_never_put_on_a_users_folder_and_never_costs_an_item(
    tmp_path: Path, write_raster: WriteRaster, run_ingest: Callable[..., Report]
) -> None:
    """A --target given by mistake as a folder of the user's rasters gets no marker (byod
    marks only a folder it makes or finds empty); a folder skipped as byod's output loses no
    item to --prune (what lies below was not listed); byod's own output given as the source
    is a usage error (newcomer N5)."""
    write_raster("a_20240101.tif", ramp())
    mine = write_raster("b_20240102.tif", ramp(), folder=tmp_path / "src" / "fieldwork")
    elsewhere = tmp_path / "other"
    write_raster("c_20240103.tif", ramp(), folder=elsewhere)
    run_ingest(source=str(elsewhere), target=str(mine.parent), catalog=str(tmp_path / "c2"))
    assert not (mine.parent / ".byod-output").exists()  # not empty: the user's
    for path in mine.parent.rglob("*"):  # (that mistaken run's files, out of the way)
        if path.is_file() and path != mine:
            path.unlink()
    first = run_ingest()
    assert {r.input: r.status for r in first.rows} == {
        "a_20240101.tif": Status.INGESTED, "fieldwork/b_20240102.tif": Status.INGESTED}  # fmt: skip
    # A folder that carries the marker (byod's own) is skipped; --prune keeps its items.
    (mine.parent / ".byod-output").write_text("")
    pruned = run_ingest(prune=True)
    assert {r.input: r.status for r in pruned.rows} == {"a_20240101.tif": Status.UNCHANGED}
    assert any(n.startswith("fieldwork: byod's output") for n in pruned.notes)
    assert len(item_files(tmp_path / "catalog", "test")) == 2
    with pytest.raises(ConfigurationError, match="a folder byod wrote"):
        run_ingest(source=str(tmp_path / "data"), target=str(tmp_path / "d3"),
                   catalog=str(tmp_path / "c3"))  # fmt: skip
