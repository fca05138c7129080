"""Synthetic per-window series through the noise-aware comparison (core/compare/stats.py, core/compare/regression.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from holoload.core.compare.regression import Budget, RunFigures, compare_runs, window_series
from holoload.core.compare.stats import MIN_WINDOWS, block_length, expanded_tail, shift


def ar1(rng: np.random.Generator, n: int, level: float, cv: float, phi: float = 0.5) -> list[float]:
    """n windows around `level` with coefficient of variation ~cv and lag-1 autocorrelation phi (log scale)."""
    noise = np.empty(n)
    noise[0] = rng.normal()
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + np.sqrt(1 - phi**2) * rng.normal()
    return list(level * np.exp(cv * noise))


def summary(p95: float, p99: float, ops: float) -> dict[str, Any]:
    fig = {"ops_per_s": ops, "latency_ms": {"p95": p95, "p99": p99}}
    return {"scenario": {"name": "s"}, "verdict": "PASS", "phases": {"main": {"measured": True, "ops": {"w.o": fig}}}}


def run(rng: np.random.Generator, n: int, p95: float, cv: float, *, ops: float = 500.0, phi: float = 0.5) -> RunFigures:
    """One run of op main.w.o with per-window p95, p99 (2x p95) and ops/s series."""
    p95s = ar1(rng, n, p95, cv, phi)
    p99s = [2 * v for v in ar1(rng, n, p95, cv, phi)]
    rate = ar1(rng, n, ops, cv / 2, phi)
    figures = {"main.w.o": {"p95_ms": p95s, "p99_ms": p99s, "ops_per_s": rate}}
    return RunFigures(summary(float(np.median(p95s)), float(np.median(p99s)), float(np.mean(rate))), figures)


def test_identical_distributions_are_never_flagged_over_many_seeds() -> None:
    """A/A like the measured windows (15 % noise, lag-1 autocorrelation 0.4), 30 a side: 100 seeds, no regression."""
    flagged = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        result = compare_runs([run(rng, 30, 5.0, 0.15, phi=0.4)], [run(rng, 30, 5.0, 0.15, phi=0.4)])
        flagged += [(seed, d.metric) for d in result.regressions]
    assert flagged == []


def test_block_bootstrap_interval_keeps_its_level_on_autocorrelated_windows() -> None:
    """A/A, lag-1 autocorrelation 0.6: the 95 % interval misses 0 on the bad side in at most ~6 % of seeds."""
    misses = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        measured = shift([ar1(rng, 30, 5.0, 0.15, 0.6)], [ar1(rng, 30, 5.0, 0.15, 0.6)], resamples=500, seed=seed)
        assert measured is not None and measured.low is not None
        misses += measured.low > 0
    assert misses / seeds <= 0.06  # nominal 2.5 % one-sided; measured 3.5 %; i.i.d. resampling misses 10 %


def test_shifted_distributions_are_flagged() -> None:
    """+40 % latency and -30 % throughput over 10 % noise (autocorrelation 0.4), 30 windows a side: always flagged."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        base = run(rng, 30, 5.0, 0.10, ops=500.0, phi=0.4)
        worse = run(rng, 30, 7.0, 0.10, ops=350.0, phi=0.4)
        regressed = {d.metric for d in compare_runs([base], [worse]).regressions}
        assert regressed == {"p95_ms", "p99_ms", "ops_per_s"}, seed
        (p95,) = [d for d in compare_runs([base], [worse]).deltas if d.metric == "p95_ms"]
        assert p95.basis == "windows" and p95.samples == (30, 30)
        assert p95.low is not None and p95.high is not None and 0 < p95.low < p95.change < p95.high  # type: ignore[operator]


def test_improvements_are_never_regressions() -> None:
    """Latency 30 % down and throughput 30 % up: significant, but the good way."""
    rng = np.random.default_rng(7)
    result = compare_runs([run(rng, 20, 5.0, 0.1, ops=300.0)], [run(rng, 20, 3.5, 0.1, ops=400.0)])
    assert result.ok
    assert all(d.significant is False for d in result.deltas)


def test_minimum_absolute_change_suppresses_sub_noise_flags() -> None:
    """0.30 -> 0.40 ms (+33 %, significant, over budget) is under the 0.5 ms minimum; without it, it regresses."""
    rng = np.random.default_rng(3)
    base, cur = run(rng, 20, 0.30, 0.05), run(rng, 20, 0.40, 0.05)
    p95 = next(d for d in compare_runs([base], [cur]).deltas if d.metric == "p95_ms")
    assert p95.significant and p95.over_budget and not p95.over_minimum and not p95.regression
    assert p95.why_ok == "under minimum change"
    strict = Budget(latency_min_ms=0.0)
    assert next(d for d in compare_runs([base], [cur], strict).deltas if d.metric == "p95_ms").regression


def test_over_budget_but_within_noise_is_ok() -> None:
    """+20 % between medians of very noisy windows (cv 60 %): the interval spans 0, so no regression."""
    rng = np.random.default_rng(11)
    base = RunFigures(summary(5, 10, 100), {"main.w.o": {"p95_ms": ar1(rng, 12, 5.0, 0.6, 0.7)}})
    cur = RunFigures(summary(6, 12, 100), {"main.w.o": {"p95_ms": ar1(rng, 12, 6.0, 0.6, 0.7)}})
    p95 = next(d for d in compare_runs([base], [cur]).deltas if d.metric == "p95_ms")
    assert p95.low is not None and p95.low <= 0 < p95.high  # type: ignore[operator]
    if p95.over_budget:
        assert p95.why_ok == "within noise" and not p95.regression


def test_between_run_drift_needs_repeats_to_be_told_from_a_regression() -> None:
    """Each run's level drifts +-12 % (the machine's minute-to-minute load): with 5 runs a side, A/A stays clean."""
    flagged = 0
    for seed in range(12):
        rng = np.random.default_rng(500 + seed)
        sides = [[run(rng, 15, 5.0 * float(np.exp(rng.normal(0, 0.12))), 0.1) for _ in range(5)] for _ in range(2)]
        flagged += len(compare_runs(sides[0], sides[1]).regressions)
    assert flagged == 0
    rng = np.random.default_rng(99)
    base = [run(rng, 15, 5.0 * float(np.exp(rng.normal(0, 0.12))), 0.1) for _ in range(5)]
    worse = [run(rng, 15, 7.0 * float(np.exp(rng.normal(0, 0.12))), 0.1) for _ in range(5)]
    p95 = next(d for d in compare_runs(base, worse).deltas if d.metric == "p95_ms")
    assert p95.regression and p95.samples == (75, 75)


def test_too_few_windows_fall_back_to_the_runs_then_the_point_rule() -> None:
    """Under MIN_WINDOWS windows a side: the runs' figures are the samples; under MIN_WINDOWS runs, the point rule."""
    rng = np.random.default_rng(5)
    short = [run(rng, MIN_WINDOWS - 1, 5.0, 0.1) for _ in range(5)]
    one = next(d for d in compare_runs(short[:1], short[1:2]).deltas if d.metric == "p95_ms")
    assert one.basis == "point" and one.low is None and one.significant is None
    pooled = next(d for d in compare_runs(short[:2], short[2:4]).deltas if d.metric == "p95_ms")
    assert pooled.basis == "windows" and pooled.samples == (2 * (MIN_WINDOWS - 1), 2 * (MIN_WINDOWS - 1))
    no_windows = [RunFigures(r.summary) for r in short]
    by_runs = next(d for d in compare_runs(no_windows, no_windows).deltas if d.metric == "p95_ms")
    assert by_runs.basis == "runs" and by_runs.samples == (5, 5) and by_runs.low is not None
    notes = compare_runs(no_windows[:1], no_windows[1:2]).notes
    assert any("without a noise estimate" in n for n in notes)


def test_a_side_without_windows_compares_run_figures() -> None:
    """A planted summary-only baseline against a run with windows: no window interval, the point rule decides."""
    rng = np.random.default_rng(9)
    current = run(rng, 20, 5.0, 0.1)
    planted = RunFigures(summary(0.5, 1.0, 500.0))  # ten times as fast
    p95 = next(d for d in compare_runs([planted], [current]).deltas if d.metric == "p95_ms")
    assert p95.basis == "point" and p95.regression


def test_same_inputs_give_the_same_interval() -> None:
    """The bootstrap is seeded by op and metric: a comparison is reproducible."""
    rng = np.random.default_rng(1)
    a, b = run(rng, 20, 5.0, 0.2), run(rng, 20, 5.5, 0.2)
    assert compare_runs([a], [b]) == compare_runs([a], [b])


@pytest.mark.parametrize(
    ("n", "lag1", "length"),
    [(1, 0.0, 1), (5, 0.9, 1), (8, 0.0, 2), (15, 0.0, 2), (27, 0.0, 3), (64, 0.0, 4), (3600, 0.0, 15),
     (15, 0.5, 3), (30, 0.6, 4), (30, 0.99, 9), (600, 0.99, 9), (30, -0.4, 3)],
)  # fmt: skip
def test_block_length_covers_the_cube_root_and_the_autocorrelation_time(n: int, lag1: float, length: int) -> None:
    """n^(1/3), or the AR(1) autocorrelation time (1+r)/(1-r) when longer (r clipped to 0..0.8), at most n // 3."""
    assert block_length(n, lag1) == length


def test_expanded_tail_widens_intervals_over_few_blocks() -> None:
    """Few blocks: a much smaller percentile tail than (1 - confidence) / 2; many blocks: close to it."""
    assert expanded_tail(0.95, 8) == pytest.approx(0.0057, abs=0.0003)
    assert expanded_tail(0.95, 50) == pytest.approx(0.0212, abs=0.0005)
    assert 0.024 < expanded_tail(0.95, 5000) < 0.025
    assert expanded_tail(0.95, 1) == 0.0


def test_window_series_reads_merged_rows_of_measured_phases() -> None:
    """Only endpoint "*" rows of the given phases count; a window without latency keeps its throughput."""
    rows = [
        {"phase": "warm", "workload": "w", "op": "o", "endpoint": "*", "p95_ms": "9", "p99_ms": "9", "ops_per_s": "1"},
        {
            "phase": "main",
            "workload": "w",
            "op": "o",
            "endpoint": "node1",
            "p95_ms": "7",
            "p99_ms": "8",
            "ops_per_s": "5",
        },
        {
            "phase": "main",
            "workload": "w",
            "op": "o",
            "endpoint": "*",
            "p95_ms": "1.5",
            "p99_ms": "2",
            "ops_per_s": "10",
        },
        {"phase": "main", "workload": "w", "op": "o", "endpoint": "*", "p95_ms": "", "p99_ms": "", "ops_per_s": "0.0"},
        {
            "phase": "main",
            "workload": "w",
            "op": "o",
            "endpoint": "*",
            "p95_ms": "nan",
            "p99_ms": "3",
            "ops_per_s": "12",
        },
    ]
    assert window_series(rows, ["main"]) == {
        "main.w.o": {"p95_ms": [1.5], "p99_ms": [2.0, 3.0], "ops_per_s": [10.0, 0.0, 12.0]}
    }
    assert window_series(rows, []) == {}
