"""Item building from hand-made records (issue 12): no raster is opened, nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyproj import CRS

from byod.clouds import CloudDecision, CloudEstimate
from byod.items import build_item
from byod.records import AssetFile, BandInfo, Footprint, RasterInfo, Scene, SceneAsset
from byod.temporal import Acquisition
from byod.validate import OfflineValidator

SHA = "ab" * 32


def _raster(transform: tuple[float, float, float, float, float, float], width: int,
            height: int) -> RasterInfo:  # fmt: skip
    band = BandInfo(index=1, data_type="uint16", nodata=0.0, color="gray", scale=1.0,
                    offset=0.0, unit="metre", description=None)  # fmt: skip
    return RasterInfo(name="x.tif", driver="GTiff", width=width, height=height,
                      crs_wkt=CRS.from_epsg(32633).to_wkt(), crs_code="EPSG:32633",
                      transform=transform, georeferencing="transform", bands=(band,))  # fmt: skip


def _scene(stored: bool, subdataset: str | None = None) -> Scene:
    def file(name: str, size: int) -> AssetFile:
        local = AssetFile(Path("/tmp/work") / name, size, SHA)
        return local.stored_at(f"/cogs/{name}") if stored else local

    # B04 at 10 m, SCL (a mask band) at 20 m: the item's grid is B04's.
    fine = _raster((10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 100, 50)
    coarse = _raster((20.0, 0.0, 500000.0, 0.0, -20.0, 5000000.0), 50, 25)
    assets = (
        SceneAsset("SCL", "T33_SCL_20m.jp2", file("scl.tif", 2000), coarse, passthrough=False),
        SceneAsset("B04", "T33_B04_10m.jp2", file("b04.tif", 3000), fine, passthrough=True),
    )
    ring = [[15.0, 45.0], [15.1, 45.0], [15.1, 45.1], [15.0, 45.1], [15.0, 45.0]]
    when = datetime(2024, 1, 31, 10, 13, 1, tzinfo=UTC)
    return Scene(
        item_id="t33-20240131", subdataset=subdataset,
        acquisition=Acquisition(when, "name:T33UUP_20240131T101301"),
        footprint=Footprint({"type": "Polygon", "coordinates": [ring]}, [15.0, 45.0, 15.1, 45.1]),
        assets=assets, thumbnail=file("t.png", 400),
        clouds=CloudDecision(CloudEstimate("mask:SCL (s2-scl)", 12.5)), product="sentinel2",
    )  # fmt: skip


def test_an_item_from_hand_made_records() -> None:
    item = build_item(_scene(stored=True, subdataset="B04"), source="S2/T33", fingerprint="f0")
    item.validate(validator=OfflineValidator())  # every schema it declares, offline
    props = item.properties
    assert (props["byod:source"], props["byod:fingerprint"]) == ("S2/T33", "f0")
    assert props["byod:subdataset"] == "B04" and props["eo:cloud_cover"] == 12.5
    assert props["byod:cog_passthrough"] is False  # one of the two COGs was converted
    assert item.datetime == datetime(2024, 1, 31, 10, 13, 1, tzinfo=UTC)
    # The finest band that is not a mask gives the item's grid: 100 x 50 pixels of 10 m.
    assert props["proj:epsg"] == 32633 and props["proj:shape"] == [50, 100]
    assert props["proj:bbox"] == [500000.0, 5000000.0 - 50 * 10, 500000.0 + 100 * 10, 5000000.0]
    scl, b04 = item.assets["SCL"].to_dict(), item.assets["B04"].to_dict()
    assert scl["proj:shape"] == [25, 50] and "proj:shape" not in b04  # SCL on its own grid
    assert scl["roles"] == ["data", "cloud"] and b04["roles"] == ["data"]
    assert [b["spatial_resolution"] for b in (*scl["raster:bands"], *b04["raster:bands"])] == [
        20.0, 10.0]  # fmt: skip
    assert (b04["href"], b04["file:size"], b04["file:checksum"]) == ("/cogs/b04.tif", 3000,
                                                                      "1220" + SHA)  # fmt: skip
    assert b04["eo:bands"][0]["common_name"] == "red"  # Sentinel-2's B04 (data/bands.json)
    assert item.assets["thumbnail"].href == "/cogs/t.png"


def test_an_item_points_at_stored_files_only() -> None:
    with pytest.raises(ValueError, match=r"scl\.tif is not stored"):
        build_item(_scene(stored=False), source="S2/T33", fingerprint="f0")
