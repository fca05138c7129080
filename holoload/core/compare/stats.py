"""Bootstrap interval of the relative change between two sides' per-window figures (runs x windows).

Each side is one or more runs, each run a series of per-window figures in time order (the
p95 of one op in each 1 s window, say). The compared statistic is the median of a side's
windows pooled over its runs; the change is ``current / baseline - 1``.

Windows of one run are not independent (a slow minute on a shared machine spans many
windows), and runs differ from each other by more than their windows do. So the interval
comes from a two-level bootstrap: runs are drawn with replacement, then each drawn run's
windows by a circular block bootstrap with blocks of ``block_length(n)`` windows. With one
run per side only the within-run part is left; between-run drift is what the effect-size
budget, the minimum change and ``--repeat`` are for (measurements: docs/performance.md, "A/A
comparisons").

A percentile interval from few independent blocks is too narrow (on autocorrelated windows,
15 a side, a nominal 95 % interval missed on the bad side 2-3x as often as it should), so the
percentiles are widened the way Hesterberg's "expanded percentile" interval does: the tail
``(1 - confidence) / 2`` becomes ``Phi(-sqrt(n / (n - 1)) * t(n - 1, confidence))`` with n the
number of blocks on the smaller side.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_WINDOWS",
    "RESAMPLES",
    "Shift",
    "block_length",
    "expanded_tail",
    "lag1_autocorrelation",
    "seed_for",
    "shift",
]

#: Fewer windows than this on a side (over all its runs): no interval, only the point rule.
MIN_WINDOWS = 5
#: Bootstrap resamples per figure.
RESAMPLES = 2000
#: At most this many resampled values are held at once (rows of a chunk x windows).
_CHUNK_VALUES = 2_000_000

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Shift:
    """The change of one figure between two sides.

    ``baseline``/``current`` are the medians of each side's pooled windows; ``change`` is
    ``current / baseline - 1`` (None when the baseline median is 0); ``low``/``high`` bound the
    change at the requested confidence (None when some resample had a baseline median of 0);
    ``windows`` counts the windows per side and ``runs`` the runs per side.
    """

    baseline: float
    current: float
    change: float | None
    low: float | None
    high: float | None
    windows: tuple[int, int]
    runs: tuple[int, int]
    block: tuple[int, int]


def block_length(n: int, lag1: float = 0.0) -> int:
    """Block length for a series of ``n`` windows with lag-1 autocorrelation ``lag1``.

    At least ``round(n ** (1/3))`` (the order that minimises the error of a block bootstrap's
    variance estimate, Hall, Horowitz and Jing 1995) and at least the integrated
    autocorrelation time of an AR(1) series, ``(1 + r) / (1 - r)`` with r clipped to 0..0.8,
    so that a block spans what one slow spell of the machine spans; at most n // 3.
    """
    if n < 6:
        return 1
    r = min(max(lag1, 0.0), 0.8)
    return max(1, min(n // 3, max(round(math.cbrt(n)), math.ceil((1 + r) / (1 - r) - 1e-9))))


def lag1_autocorrelation(values: Floats) -> float:
    """The lag-1 autocorrelation of a series (0 for fewer than 4 values or a constant series)."""
    if len(values) < 4:
        return 0.0
    centred = values - values.mean()
    denominator = float(np.dot(centred, centred))
    return float(np.dot(centred[:-1], centred[1:])) / denominator if denominator > 0 else 0.0


def _length(values: Floats) -> int:
    return block_length(len(values), lag1_autocorrelation(values))


def expanded_tail(confidence: float, blocks: int) -> float:
    """The percentile tail of an expanded percentile interval over ``blocks`` independent blocks.

    ``(1 - confidence) / 2`` for many blocks; smaller (a wider interval) for few: 0.0057 for 8
    blocks at 95 %, 0.0212 for 50.
    """
    if blocks < 2:
        return 0.0
    # Imported here: scipy.stats costs about a second and tens of MB at start-up, and every run
    # imports this module while only a comparison needs the quantiles.
    from scipy import stats

    n = float(blocks)
    widened = math.sqrt(n / (n - 1)) * float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1))
    return float(stats.norm.cdf(-widened))


def _blocks(runs: Sequence[Floats]) -> int:
    return sum(-(-len(r) // _length(r)) for r in runs)


def seed_for(*names: str) -> int:
    """A stable seed from names (the same inputs always get the same interval)."""
    return int(zlib.crc32("\0".join(names).encode()))


def _block_resamples(values: Floats, count: int, rng: np.random.Generator) -> Floats:
    """``count`` circular block resamples of one series, as rows of a (count, n) array."""
    n = len(values)
    length = _length(values)
    blocks = -(-n // length)
    starts = rng.integers(0, n, size=(count, blocks))
    index = ((starts[:, :, None] + np.arange(length)) % n).reshape(count, blocks * length)[:, :n]
    out: Floats = values[index]
    return out


def _side_medians(runs: Sequence[Floats], count: int, rng: np.random.Generator) -> Floats:
    """``count`` bootstrap medians of one side: runs drawn with replacement, windows by blocks."""
    out = np.empty(count)
    if len(runs) == 1:
        rows = max(1, _CHUNK_VALUES // len(runs[0]))
        for start in range(0, count, rows):
            size = min(rows, count - start)
            out[start : start + size] = np.median(_block_resamples(runs[0], size, rng), axis=1)
        return out
    per_replicate = sum(len(r) for r in runs)
    rows = max(1, _CHUNK_VALUES // per_replicate)
    for start in range(0, count, rows):  # in chunks: a long run drawn 2000 times would not fit in memory
        size = min(rows, count - start)
        picks = rng.integers(0, len(runs), size=(size, len(runs)))
        drawn = [_block_resamples(run, int(np.count_nonzero(picks == r)), rng) for r, run in enumerate(runs)]
        used = [0] * len(runs)
        for i in range(size):
            parts = []
            for r in picks[i]:
                parts.append(drawn[r][used[r]])
                used[r] += 1
            out[start + i] = np.median(np.concatenate(parts))
    return out


def _series(side: Sequence[Sequence[float]]) -> list[Floats]:
    runs = [np.asarray([v for v in run if math.isfinite(v)], dtype=np.float64) for run in side]
    return [r for r in runs if len(r)]


def shift(
    baseline: Sequence[Sequence[float]],
    current: Sequence[Sequence[float]],
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Shift | None:
    """The change of the pooled median from baseline to current, with a bootstrap interval.

    Args:
        baseline: per run, its per-window figures in time order (non-finite values are dropped).
        current: the same for the run(s) under test.
        confidence: two-sided level of the interval (0.95: the 2.5th and 97.5th percentiles).
        resamples: bootstrap resamples.
        seed: seeds the generator; the same inputs and seed give the same interval.

    Returns:
        The shift, or None when either side has fewer than ``MIN_WINDOWS`` windows.
    """
    base, cur = _series(baseline), _series(current)
    n_base, n_cur = sum(len(r) for r in base), sum(len(r) for r in cur)
    if n_base < MIN_WINDOWS or n_cur < MIN_WINDOWS:
        return None
    base_median = float(np.median(np.concatenate(base)))
    cur_median = float(np.median(np.concatenate(cur)))
    change = cur_median / base_median - 1 if base_median != 0 else None
    rng = np.random.default_rng(seed)
    base_boot = _side_medians(base, resamples, rng)
    cur_boot = _side_medians(cur, resamples, rng)
    low = high = None
    if bool(np.all(base_boot > 0)):
        ratios = cur_boot / base_boot - 1
        tail = expanded_tail(confidence, min(_blocks(base), _blocks(cur)))
        low, high = (float(q) for q in np.quantile(ratios, [tail, 1 - tail]))
    return Shift(
        baseline=base_median,
        current=cur_median,
        change=change,
        low=low,
        high=high,
        windows=(n_base, n_cur),
        runs=(len(base), len(cur)),
        block=(max(_length(r) for r in base), max(_length(r) for r in cur)),
    )
