from __future__ import annotations

from datetime import UTC, datetime

import pytest

from byod.extents import union_bbox, union_interval


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([[-10, 0, 10, 10], [20, -5, 30, 5]], [-10, -5, 30, 10]),
        # Two boxes either side of 180°: the short way round crosses the antimeridian.
        ([[170, 0, 179, 10], [-179, 0, -170, 5]], [170, 0, -170, 10]),
        # A crossing box and one far away: the largest gap decides.
        ([[170, 0, -170, 10], [10, 0, 20, 5]], [10, 0, -170, 10]),
        ([[-180, 80, 180, 90], [20, 0, 30, 5]], [-180, 0, 180, 90]),
    ],
)
def test_union_bbox(boxes: list[list[float]], expected: list[float]) -> None:
    assert union_bbox(boxes) == expected


def test_union_bbox_covers_every_box() -> None:
    boxes = [[170, 0, -170, 10], [-175, 0, -160, 2], [160, 1, 175, 3]]
    west, _, east, _ = union_bbox(boxes)
    assert west == 160 and east == -160


def test_union_interval() -> None:
    a = datetime(2020, 1, 1, tzinfo=UTC)
    b = datetime(2021, 1, 1, tzinfo=UTC)
    c = datetime(2022, 1, 1, tzinfo=UTC)
    assert union_interval([(b, c), (a, a)]) == (a, c)
    with pytest.raises(ValueError, match="no interval"):
        union_interval([])
