"""Change points in a series of run figures: E-divisive means, binary segmentation, permutation test.

A series (one figure of one op, run after run) is split where the distribution shifts: the
split point maximises the energy statistic of Matteson & James (2014, "A nonparametric
approach for multiple change point analysis"), its significance is a permutation test
(the values shuffled, the best split of each shuffle scored the same way), and each accepted
segment is searched again. A split is kept only when it is significant (p < `alpha`) *and*
the segment medians differ by at least `min_change` (relative): a performance history must not
flag noise, and a statistically real 1 % wobble is not worth a marker.

Deterministic: the permutations come from a generator seeded by `seed`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ChangePoint", "detect"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A shift at `index`: values[index] is the first of the new level.

    `before` / `after` are the medians of the segments either side (as finally segmented),
    `change` is (after - before) / |before| (None when before is 0), `p_value` the
    permutation test's.
    """

    index: int
    before: float
    after: float
    change: float | None
    p_value: float


def _energy(values: Floats, min_size: int) -> tuple[int, float]:
    """The best split of `values` and its E-divisive statistic (alpha = 1)."""
    n = len(values)
    dist = np.abs(values[:, None] - values[None, :])
    upper = np.triu(dist, 1)
    col_above = upper.sum(axis=0)  # sum over i < t of d(i, t)
    row_right = upper.sum(axis=1)  # sum over j > i of d(i, j)
    total = float(upper.sum())
    within_left = np.concatenate(([0.0], np.cumsum(col_above)))  # [tau]: pairs inside [0, tau)
    within_right = np.concatenate((np.cumsum(row_right[::-1])[::-1], [0.0]))  # [tau]: pairs inside [tau, n)
    taus = np.arange(min_size, n - min_size + 1)
    m = taus.astype(np.float64)
    k = n - m
    between = total - within_left[taus] - within_right[taus]
    stat = (m * k / n) * (
        2.0 * between / (m * k) - within_left[taus] / (m * (m - 1) / 2.0) - within_right[taus] / (k * (k - 1) / 2.0)
    )
    best = int(np.argmax(stat))
    return int(taus[best]), float(stat[best])


def _significance(
    values: Floats, observed: float, min_size: int, permutations: int, alpha: float, rng: np.random.Generator
) -> float:
    """Permutation p-value of `observed`; stops early once it can no longer fall below `alpha`."""
    allowed = math.ceil(alpha * (permutations + 1)) - 1  # p = (1 + exceed) / (N + 1) < alpha
    exceed = 0
    done = 0
    for done in range(1, permutations + 1):  # noqa: B007 - `done` is read after the loop
        _, stat = _energy(rng.permutation(values), min_size)
        if stat >= observed:
            exceed += 1
            if exceed >= allowed:
                break
    return (1 + exceed) / (done + 1)


def detect(
    series: Sequence[float],
    *,
    alpha: float = 0.005,
    min_change: float = 0.1,
    min_size: int = 3,
    permutations: int = 499,
    seed: int = 0,
    max_points: int = 400,
) -> list[ChangePoint]:
    """Change points of `series`, in index order.

    Args:
        series: the figures in run order; NaN and infinite values are not allowed (leave them out).
        alpha: the permutation test's significance level for the first split; each level of
            segmentation below it halves it.
        min_change: the least relative difference of the segment medians worth reporting.
        min_size: the fewest points on either side of a split (3: a shift is seen after 3 runs).
        permutations: shuffles per test (at most; a clearly insignificant split stops early).
        seed: seeds the shuffles, so the same series always gives the same answer.
        max_points: only the last `max_points` values are searched (the cost grows as n^2 per shuffle).

    Returns:
        The accepted change points; indexes refer to `series`.

    Raises:
        ValueError: a parameter is out of range or a value is not finite.
    """
    if not 0 < alpha < 1 or min_change < 0 or min_size < 2 or permutations < 1:
        raise ValueError("expected 0 < alpha < 1, min_change >= 0, min_size >= 2, permutations >= 1")
    offset = max(0, len(series) - max_points)
    values = np.asarray(series[offset:], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("expected finite values")
    rng = np.random.default_rng(seed)
    found: dict[int, float] = {}
    pending = [(0, len(values), 0)]
    while pending:
        lo, hi, depth = pending.pop()
        segment = values[lo:hi]
        if len(segment) < 2 * min_size or float(np.ptp(segment)) == 0.0:
            continue
        tau, stat = _energy(segment, min_size)
        if stat <= 0:
            continue
        before, after = float(np.median(segment[:tau])), float(np.median(segment[tau:]))
        if not _big_enough(before, after, min_change):
            continue
        # a split found inside a segment that was itself chosen as the best split was tested once
        # more: each level halves alpha (Bonferroni over the two halves), with enough shuffles to reach it
        level_alpha = alpha / 2**depth
        shuffles = max(permutations, math.ceil(2 / level_alpha))
        p_value = _significance(segment, stat, min_size, shuffles, level_alpha, rng)
        if p_value >= level_alpha:
            continue
        found[lo + tau] = p_value
        pending += [(lo, lo + tau, depth + 1), (lo + tau, hi, depth + 1)]
    return _described(values, found, offset, min_change)


def _big_enough(before: float, after: float, min_change: float) -> bool:
    if before == 0:
        return after != 0
    return abs(after - before) / abs(before) >= min_change


def _described(values: Floats, found: dict[int, float], offset: int, min_change: float) -> list[ChangePoint]:
    """Each split with the medians of its final neighbouring segments; splits that shrank below
    `min_change` once their neighbours were split too are dropped."""
    cuts = sorted(found)
    bounds = [0, *cuts, len(values)]
    out = []
    for i, cut in enumerate(cuts):
        before = float(np.median(values[bounds[i] : cut]))
        after = float(np.median(values[cut : bounds[i + 2]]))
        if not _big_enough(before, after, min_change):
            continue
        change = (after - before) / abs(before) if before != 0 else None
        out.append(ChangePoint(offset + cut, before, after, change, found[cut]))
    return out
