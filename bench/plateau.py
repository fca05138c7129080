"""Where a memory curve settles: the earliest point after which its slope no longer changes.

A process's RSS climbs while its bounded structures fill (rings of recent windows, caches,
allocator arenas) and then flattens; a leak keeps climbing at a steady slope. Judging the slope
over the whole run mixes the two: a short run reports the fill as growth. `find_plateau` tries
start points every `step_s` and takes the first one from which the rest of the curve no longer
flattens: the slope of its first half exceeds that of its second half by at most `tolerance`.
From there the slope has settled, and the slope of that tail is the growth to judge, whether it is
near zero (a plateau) or not (a steady leak; a growing one settles too, and is judged on its tail).
When no start point leaves a settled tail of at least `min_tail_s`, the curve was still bending
when the run ended: its growth cannot be judged (run longer).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]  # (seconds, MB)


def slope_mb_per_h(points: Sequence[Point]) -> float:
    """Least-squares slope of MB over time, per hour (0 for fewer than two distinct times)."""
    times = [t for t, _ in points]
    if len(points) < 2 or min(times) == max(times):
        return 0.0
    return statistics.linear_regression(times, [mb for _, mb in points]).slope * 3600.0


@dataclass(frozen=True, slots=True)
class Plateau:
    """The verdict material of one curve.

    Attributes:
        start_s: where the settled tail starts (None: the slope never settled).
        slope_mb_per_h: the tail's slope (None when not settled): the growth to judge.
        halves: slopes of the tail's first and second halves (None when not settled).
        mb_at_start: the tail's first value.
        spans: (start_s, end_s, slope) of successive spans of `span_s`, for the record.
        last_half_mb_per_h: the slope of the curve's last half, settled or not.
    """

    start_s: float | None
    slope_mb_per_h: float | None
    halves: tuple[float, float] | None
    mb_at_start: float | None
    spans: tuple[tuple[float, float, float], ...]
    last_half_mb_per_h: float


def _split(points: Sequence[Point]) -> tuple[list[Point], list[Point]]:
    middle = (points[0][0] + points[-1][0]) / 2
    return [p for p in points if p[0] <= middle], [p for p in points if p[0] > middle]


def find_plateau(
    points: Sequence[Point],
    *,
    not_before_s: float = 0.0,
    step_s: float = 30.0,
    min_tail_s: float | None = None,
    tolerance_mb_per_h: float = 20.0,
    span_s: float = 60.0,
) -> Plateau:
    """The earliest start, at or after `not_before_s`, from which the slope has settled.

    Args:
        points: (seconds, MB) in time order.
        not_before_s: no plateau before this (e.g. until a bounded ring has filled).
        step_s: start points are tried this far apart.
        min_tail_s: the settled tail must last at least this long (default: the larger of 3
            minutes and a third of the curve).
        tolerance_mb_per_h: the tail has settled when its first half's slope exceeds its second
            half's by at most this. An absolute bound, not a ratio: a fill that decays
            exponentially flattens by the same ratio in every span, a leak by none. 20 MB/h is
            about the noise of a two-minute half's slope (RSS moves in allocator steps).
        span_s: length of the successive spans reported in `spans`.

    Returns:
        The plateau (or the reason there is none: `start_s` None).
    """
    pts = sorted(points)
    if len(pts) < 4:
        return Plateau(None, None, None, None, (), 0.0)
    first, last = pts[0][0], pts[-1][0]
    if min_tail_s is None:
        min_tail_s = max(180.0, (last - first) / 3)
    spans = []
    t = first
    while t < last:
        span = [p for p in pts if t <= p[0] < t + span_s]
        if len(span) >= 2:
            spans.append((t - first, min(t + span_s, last) - first, slope_mb_per_h(span)))
        t += span_s
    last_half = slope_mb_per_h(_split(pts)[1])
    start = first + max(0.0, not_before_s)
    while last - start >= min_tail_s:
        tail = [p for p in pts if p[0] >= start]
        early, late = _split(tail)
        if len(early) >= 2 and len(late) >= 2:
            a, b = slope_mb_per_h(early), slope_mb_per_h(late)
            if a - b <= tolerance_mb_per_h:  # no longer flattening
                return Plateau(start - first, slope_mb_per_h(tail), (a, b), tail[0][1], tuple(spans), last_half)
        start += step_s
    return Plateau(None, None, None, None, tuple(spans), last_half)
