"""Product metadata in the real Landsat and Sentinel-2 layouts (tests/fixtures/)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from byod.products import is_product_metadata, parse

FIXTURES = Path(__file__).parent / "fixtures"


def _parse(name: str):  # type: ignore[no-untyped-def]
    return parse(name, (FIXTURES / name).read_text())


def test_landsat_mtl_text() -> None:
    meta = _parse("LC09_L2SP_190026_20240131_20240201_02_T1_MTL.txt")
    assert meta.cloud_cover == 37.52
    assert meta.datetime == datetime(2024, 1, 31, 9, 41, 27, 123456, tzinfo=UTC)


def test_landsat_mtl_xml() -> None:
    meta = _parse("LC08_L2SP_190026_20230715_20230725_02_T1_MTL.xml")
    assert meta.cloud_cover == 4.21
    assert meta.datetime == datetime(2023, 7, 15, 9, 47, 12, 557000, tzinfo=UTC)


def test_sentinel2_product_and_tile() -> None:
    product = _parse("MTD_MSIL2A.xml")
    assert product.cloud_cover == 62.81
    assert product.datetime == datetime(2024, 1, 31, 10, 13, 1, 24000, tzinfo=UTC)
    tile = _parse("MTD_TL.xml")
    assert tile.cloud_cover == 58.12
    assert tile.datetime == datetime(2024, 1, 31, 10, 19, 3, 456000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "yes"),
    [("X_MTL.txt", True), ("x_mtl.xml", True), ("MTD_MSIL1C.xml", True), ("MTD_TL.xml", True),
     ("notes.txt", False), ("MTD_DS.xml", False)],
)  # fmt: skip
def test_recognised_names(name: str, yes: bool) -> None:
    assert is_product_metadata(name) is yes


def test_a_bomb_is_refused() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>'
    with pytest.raises(ValueError):
        parse("MTD_TL.xml", bomb)
