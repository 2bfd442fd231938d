from __future__ import annotations

import re
from pathlib import Path

from byod.sources import (
    disambiguated_id,
    discover,
    discover_listing,
    fingerprint,
    item_id_for,
    slugify,
)


def _touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_sidecars_pair_and_never_become_inputs(tmp_path: Path) -> None:
    for name in ["a.tif", "a.tfw", "a.prj", "a.tif.aux.xml", "a.tif.msk", "a_MTL.txt", "b.png",
                 "b.pgw", "b.png.aux.xml", "notes.md", "c.dat", "c.hdr"]:  # fmt: skip
        _touch(tmp_path / name)
    found = discover(tmp_path)
    inputs = {c.relpath: sorted(Path(p).name for p in c.sidecars) for c in found.candidates}
    assert inputs == {
        "a.tif": ["a.prj", "a.tfw", "a.tif.aux.xml", "a.tif.msk", "a_MTL.txt"],
        "b.png": ["b.pgw", "b.png.aux.xml"],
        "c.dat": ["c.hdr"],
    }
    assert found.ignored == ["notes.md"]
    a = next(c for c in found.candidates if c.relpath == "a.tif")
    assert [Path(p).name for p in a.metadata_files] == ["a_MTL.txt"]


def test_cloud_masks_and_product_metadata_pair(tmp_path: Path) -> None:
    for name in [
        "S2/MTD_MSIL2A.xml",
        "S2/GRANULE/T1/scene.tif",
        "S2/GRANULE/T1/scene_SCL.tif",
        "L/LC09_X_MTL.txt",
        "L/LC09_X_SR.tif",
        "L/other.tif",
        "lone_cloudmask.tif",
    ]:
        _touch(tmp_path / name)  # fmt: skip
    found = discover(tmp_path)
    by_rel = {c.relpath: c for c in found.candidates}
    assert sorted(by_rel) == ["L/LC09_X_SR.tif", "L/other.tif", "S2/GRANULE/T1/scene.tif",
                              "lone_cloudmask.tif"]  # fmt: skip
    scene = by_rel["S2/GRANULE/T1/scene.tif"]
    assert scene.cloud_mask is not None and scene.cloud_mask.endswith("scene_SCL.tif")
    assert [Path(p).name for p in scene.metadata_files] == ["MTD_MSIL2A.xml"]
    assert [Path(p).name for p in by_rel["L/LC09_X_SR.tif"].metadata_files] == ["LC09_X_MTL.txt"]
    assert by_rel["L/other.tif"].metadata_files == ()


def test_ids_are_url_safe_and_stable() -> None:
    assert item_id_for("Sub Dir/Scène d'été 2024.TIF") == "sub-dir-scene-d-ete-2024"
    assert re.fullmatch(r"[a-z0-9._-]+", item_id_for("日本/データ.tif"))
    assert item_id_for("a/b.tif") == item_id_for("a/b.tif")
    assert disambiguated_id("a b.tif") != disambiguated_id("a-b.tif")
    assert slugify("!!!") == "item"


def test_fingerprint_covers_sidecars_and_recipe(tmp_path: Path) -> None:
    _touch(tmp_path / "a.tif", b"raster")
    world = _touch(tmp_path / "a.tfw", b"1\n0\n0\n-1\n0\n0\n")
    (candidate,) = discover(tmp_path).candidates
    first = fingerprint(candidate, "r1")
    assert fingerprint(candidate, "r1") == first
    assert fingerprint(candidate, "r2") != first
    world.write_bytes(b"2\n0\n0\n-2\n0\n0\n")
    assert fingerprint(candidate, "r1") != first


def test_listing_pairs_and_fingerprints_without_reading() -> None:
    listing = [("p/a.tif", "v1"), ("p/a.tfw", "w1"), ("p/.hidden.tif", "h"), ("p/readme.md", "r")]
    found = discover_listing(listing)
    (candidate,) = found.candidates
    assert (candidate.relpath, candidate.sidecars, candidate.versions) == (
        "p/a.tif", ("p/a.tfw",), ("v1", "w1")
    )  # fmt: skip
    assert found.ignored == ["p/readme.md"]
    changed = discover_listing([("p/a.tif", "v1"), ("p/a.tfw", "w2")]).candidates[0]
    assert fingerprint(candidate, "r") != fingerprint(changed, "r")


def test_scene_keeps_its_place_when_bands_arrive_in_resolution_folders() -> None:
    from byod.scenes import group

    scene = "T33UUP_20240131T101301"
    ten = discover_listing([(f"S2/IMG_DATA/R10m/{scene}_B04_10m.jp2", "1")]).candidates
    listing = [(f"S2/IMG_DATA/R10m/{scene}_B04_10m.jp2", "1"),
               (f"S2/IMG_DATA/R20m/{scene}_SCL_20m.jp2", "2")]  # fmt: skip
    both = discover_listing(listing).candidates
    first, _ = group(ten)
    later, _ = group(both)
    assert first[0].relpath == later[0].relpath == f"S2/IMG_DATA/{scene}"
    assert [b for b, _ in later[0].bands] == ["B04", "SCL"]


def test_only_files_named_after_a_raster_pair_with_it(tmp_path: Path) -> None:
    """A `.txt`, `.xml` or `.json` is a sidecar only when GDAL or the producer names it
    after the raster (`x_RPC.TXT`, DigitalGlobe's `x.XML`, a product's MTL); a README.txt,
    `a.txt` or `a.json` is nobody's: listed as ignored, out of the fingerprint."""
    sidecars = ["a.tif.aux.xml", "a.tif.ovr", "a.TFW", "a.prj", "a_RPC.TXT", "a.IMD", "a.XML",
                "a_MTL.txt", "b.bil.hdr"]  # fmt: skip
    strays = ["README.txt", "a.txt", "a.json", "notes.xml", "b.txt", "ab.tif.aux.xml.txt"]
    for name in ["a.tif", "b.bil", *sidecars, *strays]:
        _touch(tmp_path / name)
    found = discover(tmp_path)
    inputs = {c.relpath: sorted(Path(p).name for p in c.sidecars) for c in found.candidates}
    assert inputs == {"a.tif": sorted(sidecars[:-1]), "b.bil": ["b.bil.hdr"]}
    assert found.ignored == sorted(strays)
    a = next(c for c in found.candidates if c.relpath == "a.tif")
    first = fingerprint(a, "r")
    for stray in strays:
        (tmp_path / stray).write_text("edited")
    assert fingerprint(next(c for c in discover(tmp_path).candidates if c.relpath == "a.tif"),
                       "r") == first  # fmt: skip
