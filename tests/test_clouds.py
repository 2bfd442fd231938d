"""Cloud fractions from masks (exact counts), presets, rule parsing, choosing between sources."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_s2_scl_counts_exclude_nodata() -> None:
    scl = np.array([[0, 0, 4, 4], [8, 9, 10, 3], [11, 5, 6, 7]])
    counts = count(scl, PRESETS["s2-scl"])
    assert counts == CloudCounts(valid=10, cloud=3, shadow=1, snow=1)
    assert counts.percent("cloud") == 30.0


def test_landsat_qa_bits() -> None:
    fill = 1 << 0
    dilated, cirrus, cloud, shadow, snow = (1 << b for b in (1, 2, 3, 4, 5))
    clear = 1 << 6
    qa = np.array([fill, clear, cloud | dilated, cirrus, shadow, snow, clear, clear], np.uint16)
    counts = count(qa, PRESETS["landsat-qa"])
    assert counts == CloudCounts(valid=7, cloud=2, shadow=1, snow=1)


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
