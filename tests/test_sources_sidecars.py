"""Sidecars paired by what GDAL itself reads (rasterio's `src.files`): world files in every
form GDAL derives from a raster's extension, EHdr's `.clr`/`.stx`/`.blw`, and no file sharing
an EHdr raster's stem taken for a raster of its own (review RB 1, 3, 10)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from azure.storage.blob import BlobServiceClient
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from byod.config import IngestSettings
from byod.pipeline import ingest
from byod.sources import discover, discover_listing, fingerprint

# A world file placing the raster's upper-left pixel centre at (500005, 4999995), 10 m pixels.
WORLD = "10\n0\n0\n-10\n500005\n4999995\n"
MOVED = "10\n0\n0\n-10\n501005\n4999995\n"  # 1 km east


def _plain(path: Path, driver: str, **profile: object) -> None:
    """A 32 x 32 one-band raster of `driver`, georeferenced only if `profile` says so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver=driver, width=32, height=32, count=1,
                           dtype="uint8", **profile) as dst:  # fmt: skip
            dst.write(np.arange(32 * 32, dtype="uint8").reshape(1, 32, 32) % 200 + 1)


def _gdal_files(path: Path) -> set[str]:
    """The other files GDAL reads when it opens `path` (names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return {os.path.basename(f) for f in src.files} - {path.name}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    _plain(root / "g.gif", "GIF")
    (root / "g.gfw").write_text(WORLD)
    _plain(root / "h.gif", "GIF")
    (root / "h.gifw").write_text(WORLD)
    _plain(root / "q.jp2", "JP2OpenJPEG")
    (root / "q.jp2w").write_text(WORLD)
    # EHdr: GDAL writes v.bil, v.hdr, v.prj (and v.stx, v.clr when asked); the producer's
    # colour table, statistics and world file share the stem.
    _plain(root / "v.bil", "EHdr", crs="EPSG:32633", transform=from_origin(500000, 5000000, 10, 10))
    (root / "v.clr").write_text("1 255 0 0\n")
    (root / "v.stx").write_text("1 0 255\n")
    (root / "v.blw").write_text(WORLD)
    # s.tfw is a world file of s.tif only: GDAL's HFA driver does not read it for s.img.
    _plain(root / "s.tif", "GTiff")
    _plain(root / "s.img", "HFA")
    (root / "s.tfw").write_text(WORLD)
    return root


def test_only_gdals_rasters_are_inputs_and_pair_what_gdal_reads(folder: Path) -> None:
    found = discover(folder)
    inputs = {c.relpath: {Path(p).name for p in c.sidecars} for c in found.candidates}
    assert sorted(inputs) == ["g.gif", "h.gif", "q.jp2", "s.img", "s.tif", "v.bil"]
    for name, sidecars in inputs.items():
        read = _gdal_files(folder / name)
        assert read <= sidecars, (name, read - sidecars)
    assert {"v.clr", "v.stx", "v.hdr", "v.prj"} <= _gdal_files(folder / "v.bil")
    assert "v.blw" in inputs["v.bil"]
    assert "s.tfw" in _gdal_files(folder / "s.tif") and "s.tfw" in inputs["s.tif"]
    assert "s.tfw" not in _gdal_files(folder / "s.img") and "s.tfw" not in inputs["s.img"]
    assert found.ignored == []


def test_a_listing_pairs_the_same_way(folder: Path) -> None:
    listing = [(f"p/{p.name}", "v") for p in sorted(folder.iterdir())]
    found = discover_listing(listing)
    inputs = {c.relpath: {Path(p).name for p in c.sidecars} for c in found.candidates}
    assert sorted(inputs) == ["p/g.gif", "p/h.gif", "p/q.jp2", "p/s.img", "p/s.tif", "p/v.bil"]
    assert inputs["p/v.bil"] == {"v.hdr", "v.prj", "v.clr", "v.stx", "v.blw"}
    assert inputs["p/g.gif"] == {"g.gfw"} and inputs["p/q.jp2"] == {"q.jp2w"}


@pytest.mark.parametrize(("raster", "world"), [("g.gif", "g.gfw"), ("h.gif", "h.gifw"),
                                               ("q.jp2", "q.jp2w")])  # fmt: skip
def test_moving_a_world_file_changes_the_fingerprint(folder: Path, raster: str, world: str) -> None:
    def print_of() -> str:
        return next(fingerprint(c, "r") for c in discover(folder).candidates if c.relpath == raster)

    before = print_of()
    (folder / world).write_text(MOVED)
    with rasterio.open(folder / raster) as src:  # GDAL reads the moved world file
        assert src.transform.c == 501000
    assert print_of() != before


def test_a_gif_and_its_world_file_are_fetched_from_blob_storage(
    azure_env: str, tmp_path: Path
) -> None:
    """From a container, the `.gfw` and `.prj` come with the GIF: it is placed where its
    world file says, not rejected as not georeferenced."""
    local = tmp_path / "up"
    local.mkdir()
    _plain(local / "g.gif", "GIF")
    (local / "g.gfw").write_text(WORLD)
    (local / "g.prj").write_text(rasterio.crs.CRS.from_epsg(32633).to_wkt())
    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    container = service.create_container(f"gif-{azure_env}")
    for path in local.iterdir():
        container.upload_blob(f"in/{path.name}", path.read_bytes())
    report = ingest(IngestSettings(source=f"az://gif-{azure_env}/in", collection="gif",
                                   target=str(tmp_path / "data"),
                                   catalog=str(tmp_path / "cat"), workers=1))  # fmt: skip
    (row,) = report.rows
    assert row.status == "ingested", (row.reason, row.message)
    # Independently: GDAL's bounds of the GIF beside its world file and .prj.
    with rasterio.open(local / "g.gif") as src:
        expected = src.bounds
    (item,) = (tmp_path / "cat").rglob("g*.json")
    bbox = json.loads(item.read_text())["bbox"]
    to_wgs = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    west, south = to_wgs.transform(expected.left, expected.bottom)
    assert bbox[0] == pytest.approx(west, abs=1e-3) and bbox[1] == pytest.approx(south, abs=1e-3)
