"""Cloud fractions from masks (exact counts), presets, rule parsing, choosing between sources."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from byod.clouds import (
    PRESETS,
    CloudCounts,
    CloudEstimate,
    CloudRuleError,
    choose,
    count,
    imagery_cloud_cover,
    parse_rule,
)
from byod.report import Report, Status
from tests.conftest import ramp, write_geotiff

FIXTURES = Path(__file__).parent / "fixtures"


def test_s2_scl_counts_exclude_nodata() -> None:
    scl = np.array([[0, 0, 4, 4], [8, 9, 10, 3], [11, 5, 6, 7]])
    counts = count(scl, PRESETS["s2-scl"])
    assert counts == CloudCounts(valid=10, cloud=3, shadow=1, snow=1)
    assert counts.percent("cloud") == 30.0


def test_landsat_qa_bits() -> None:
    fill = 1 << 0
    dilated, cirrus, cloud, shadow, snow = (1 << b for b in (1, 2, 3, 4, 5))
    clear = 1 << 6
    qa = np.array([fill, clear, cloud | dilated, cirrus, shadow, snow, dilated, clear], np.uint16)
    counts = count(qa, PRESETS["landsat-qa"])
    # USGS: the cloud bit only; dilated cloud and the cirrus bit alone are not cloud.
    assert counts == CloudCounts(valid=7, cloud=1, shadow=1, snow=1)


def _qa_pixel(fill: bool = False, dilated: bool = False, cirrus: bool = False,
              cloud: bool = False, shadow: bool = False, snow: bool = False,
              water: bool = False) -> int:  # fmt: skip
    """A QA_PIXEL value as USGS composes it (LSDS-1619 table 6-3): the flag bits, bit 6
    "clear" when neither cloud nor dilated cloud is set, and the confidence pairs (8-9 cloud,
    10-11 shadow, 12-13 snow/ice, 14-15 cirrus: 1 low, 3 high) that go with the flags."""
    if fill:
        return 1
    value = (dilated << 1) | (cirrus << 2) | (cloud << 3) | (shadow << 4) | (snow << 5)
    value |= (not (cloud or dilated)) << 6 | (water << 7)
    value |= (3 if cloud else 1) << 8
    value |= (3 if shadow else 1) << 10
    value |= (3 if snow else 1) << 12
    value |= (3 if cirrus else 1) << 14
    return value


def test_landsat_scene_cloud_cover_is_usgs_cloud_cover() -> None:
    """A scene-like QA_PIXEL: fill border, clear land and water, clouds ringed by dilated
    cloud, cirrus over clear land and under cloud, shadows, snow. The expected value is
    USGS's definition worked out on the bits with numpy's unpackbits: cloud-bit pixels over
    non-fill pixels."""
    rng = np.random.default_rng(7)
    kinds = [
        _qa_pixel(fill=True), _qa_pixel(), _qa_pixel(water=True), _qa_pixel(cloud=True),
        _qa_pixel(cloud=True, dilated=True), _qa_pixel(dilated=True),
        _qa_pixel(dilated=True, water=True), _qa_pixel(cirrus=True),
        _qa_pixel(cirrus=True, cloud=True), _qa_pixel(shadow=True), _qa_pixel(snow=True),
    ]  # fmt: skip
    qa = np.array(kinds, np.uint16)[rng.integers(0, len(kinds), size=(300, 400))]
    qa[:, :25] = 1  # the fill wedge of a WRS-2 scene
    bits = np.unpackbits(qa.astype(">u2").view(np.uint8).reshape(*qa.shape, 2), axis=-1,
                         bitorder="big")[..., ::-1]  # bits[..., k] is bit k  # fmt: skip
    not_fill = bits[..., 0] == 0
    expected = 100 * np.count_nonzero(bits[..., 3] & not_fill) / np.count_nonzero(not_fill)
    counted = sum((count(qa[r : r + 64], PRESETS["landsat-qa"]) for r in range(0, 300, 64)),
                  CloudCounts())  # fmt: skip
    assert counted.percent("cloud") == round(expected, 2)
    # Counting dilated cloud or cirrus as cloud would be far off USGS's figure.
    with_dilated = np.count_nonzero((bits[..., 1] | bits[..., 2] | bits[..., 3]) & not_fill)
    assert 100 * with_dilated / np.count_nonzero(not_fill) > expected + 10


def test_fmask_fill_and_the_masks_own_nodata() -> None:
    fmask = np.array([0, 1, 2, 3, 4, 4, 255, 255, 7], np.uint8)
    assert count(fmask, PRESETS["fmask"], nodata=7) == CloudCounts(6, 2, 1, 1)


def test_blocks_add_up_to_the_whole() -> None:
    rng = np.random.default_rng(1)
    scl = rng.integers(0, 12, size=(100, 100))
    whole = count(scl, PRESETS["s2-scl"])
    parts = sum((count(scl[r : r + 32, c : c + 32], PRESETS["s2-scl"])
                 for r in range(0, 100, 32) for c in range(0, 100, 32)), CloudCounts())  # fmt: skip
    assert parts == whole
    expected = np.isin(scl, [8, 9, 10]).sum() / (scl != 0).sum() * 100
    assert whole.percent("cloud") == round(expected, 2)


def test_float_mask_nan_is_nodata() -> None:
    mask = np.array([1.0, 0.0, np.nan, 1.0])
    assert count(mask, PRESETS["binary"]) == CloudCounts(3, 2)


@pytest.mark.parametrize(
    ("text", "kind", "cloud"),
    [("values:8, 9,10", "values", {8, 9, 10}), ("bits:3", "bits", {3}), ("fmask", "values", {4})],
)
def test_parse_rule(text: str, kind: str, cloud: set[int]) -> None:
    rule = parse_rule(text)
    assert (rule.kind, set(rule.cloud)) == (kind, cloud)


@pytest.mark.parametrize(
    ("text", "says"),
    [("clouds", "s2-scl, landsat-qa"), ("values:", "s2-scl"), ("values:a", "s2-scl"),
     ("bits:99", "no usable")],
)  # fmt: skip
def test_bad_rules_say_why(text: str, says: str) -> None:
    with pytest.raises(CloudRuleError, match=says):
        parse_rule(text)


def test_no_valid_pixel_gives_no_fraction() -> None:
    assert count(np.zeros((3, 3)), PRESETS["s2-scl"]).percent("cloud") is None


def test_imagery_999_is_unknown() -> None:
    assert imagery_cloud_cover({"CLOUDCOVER": "999"}) is None
    assert imagery_cloud_cover({"CLOUDCOVER": "12.5"}) == 12.5
    assert imagery_cloud_cover({"CLOUDCOVER": "n/a"}) is None
    assert imagery_cloud_cover({}) is None


def test_choose_by_order_and_keep_disagreement() -> None:
    mask = CloudEstimate("mask:x_SCL.tif (s2-scl)", 30.0)
    sidecar = CloudEstimate("sidecar:MTD_MSIL2A.xml", 62.81)
    decision = choose([sidecar, mask])
    assert decision.chosen == mask
    assert decision.note is not None and "62.81" in decision.note and "30.0" in decision.note
    reordered = choose([sidecar, mask], ("sidecar", "mask"))
    assert reordered.chosen == sidecar
    agree = choose([mask, CloudEstimate("imagery:CLOUDCOVER", 30.5)])
    assert agree.note is None
    nothing = choose([])
    assert nothing.chosen is None and nothing.note and "left out" in nothing.note


def test_landsat_scene_matches_its_mtl_cloud_cover(
    tmp_path: Path, run_ingest: Callable[..., Report]
) -> None:
    """A Landsat C2 L2 scene whose MTL CLOUD_COVER is USGS's figure for its QA_PIXEL: the
    mask and the MTL agree (no disagreement note), though a third of its pixels carry the
    dilated-cloud or cirrus bits."""
    scene = "LC09_L2SP_190026_20240131_20240201_02_T1"
    folder = tmp_path / "src" / scene
    rng = np.random.default_rng(3)
    kinds = [_qa_pixel(), _qa_pixel(cloud=True), _qa_pixel(dilated=True),
             _qa_pixel(cirrus=True), _qa_pixel(cloud=True, dilated=True)]  # fmt: skip
    qa = np.array(kinds, np.uint16)[rng.integers(0, len(kinds), size=(60, 60))]
    qa[:, :6] = 1  # fill
    grid = {"crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 30, 30)}
    write_geotiff(folder / f"{scene}_QA_PIXEL.TIF", qa, **grid)
    for band in ("SR_B2", "SR_B3", "SR_B4"):
        write_geotiff(folder / f"{scene}_{band}.TIF", ramp(60, 60), nodata=0, **grid)
    not_fill = (qa & 1) == 0
    usgs = round(100 * np.count_nonzero(((qa >> 3) & 1).astype(bool) & not_fill)
                 / np.count_nonzero(not_fill), 2)  # fmt: skip
    mtl = (FIXTURES / f"{scene}_MTL.txt").read_text()
    mtl = re.sub(r"CLOUD_COVER = [\d.]+", f"CLOUD_COVER = {usgs:.2f}", mtl, count=1)
    (folder / f"{scene}_MTL.txt").write_text(mtl)
    (row,) = run_ingest().rows
    assert row.status is Status.INGESTED, row.message
    item_path = next((tmp_path / "catalog").rglob(f"{row.item_ids[0]}.json"))
    props = json.loads(item_path.read_text())["properties"]
    assert props["eo:cloud_cover"] == usgs
    assert not [n for n in row.notes if "disagree" in n]
