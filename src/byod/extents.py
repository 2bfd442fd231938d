"""Collection extents from item bboxes and datetimes; antimeridian-aware. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime


def union_bbox(bboxes: Iterable[Sequence[float]]) -> list[float]:
    """The smallest [west, south, east, north] covering all boxes, on the circle of longitudes.

    A box with west > east crosses the antimeridian; so may the result, when the smallest
    covering interval of longitudes does.
    """
    boxes = [list(map(float, b)) for b in bboxes]
    if not boxes:
        raise ValueError("no bbox to union")
    south = min(b[1] for b in boxes)
    north = max(b[3] for b in boxes)
    # Longitude intervals on [-180, 180], crossing ones split in two.
    intervals: list[tuple[float, float]] = []
    for west, _, east, _ in boxes:
        if west <= east:
            intervals.append((west, east))
        else:
            intervals += [(west, 180.0), (-180.0, east)]
    intervals.sort()
    merged: list[list[float]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    # The result is the circle minus its largest uncovered gap.
    gaps = [(merged[i + 1][0] - merged[i][1], merged[i + 1][0], merged[i][1])
            for i in range(len(merged) - 1)]  # fmt: skip
    wrap_gap = (merged[0][0] + 180.0) + (180.0 - merged[-1][1])
    best = max(gaps, default=None)
    if best is None or wrap_gap >= best[0]:
        return [merged[0][0], south, merged[-1][1], north]
    _, east_of_gap, west_of_gap = best
    return [east_of_gap, south, west_of_gap, north]


def union_interval(
    intervals: Iterable[tuple[datetime, datetime]],
) -> tuple[datetime, datetime]:
    """(earliest start, latest end) of the intervals; ValueError when there is none."""
    spans = list(intervals)
    if not spans:
        raise ValueError("no interval to union")
    return min(s for s, _ in spans), max(e for _, e in spans)
