"""Change points of run-history series: noise is never flagged, a clear step always is."""

from __future__ import annotations

import numpy as np
import pytest

from holoload.core.history.changepoint import detect


def _flat(seed: int) -> list[float]:
    """A flat series of latency-like figures: normal, skewed or heavy noise, 8 to 80 runs."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 81))
    shape = seed % 4
    if shape == 0:
        values = 10 + rng.normal(0, 1.0, n)  # 10 % noise
    elif shape == 1:
        values = 10 * rng.lognormal(0, 0.25, n)  # skewed, like a p99
    elif shape == 2:
        values = 2000 + rng.normal(0, 300, n)  # throughput with 15 % noise
    else:
        values = 5 + rng.standard_t(3, n) * 0.4  # heavy tails: the odd outlier run
    return [float(v) for v in values]


def test_a_flat_noisy_series_is_never_flagged_across_many_seeds() -> None:
    """200 flat series of four noise shapes: not one change point (zero false positives)."""
    flagged = {seed: detect(_flat(seed)) for seed in range(200)}
    assert {seed: cps for seed, cps in flagged.items() if cps} == {}


def test_a_significant_but_small_shift_is_not_reported() -> None:
    """A 3 % shift with almost no noise is real but below min_change (10 %): no marker; with
    min_change 0 it is found."""
    rng = np.random.default_rng(7)
    values = [float(v) for v in np.concatenate([100 + rng.normal(0, 0.2, 20), 103 + rng.normal(0, 0.2, 20)])]
    assert detect(values) == []
    [cp] = detect(values, min_change=0.0)
    assert cp.index == 20


@pytest.mark.parametrize("seed", range(30))
def test_a_clear_step_is_flagged_where_it_happened(seed: int) -> None:
    """A 30 % step (noise 5 %) after 8 to 30 runs, 8 to 30 runs on: one change point at the step, right sizes.

    (With 8 % noise, 2 seeds of 100 place it 2 runs off or add a borderline +10 % point where the
    noise happened to form a plateau; with fewer than 8 runs either side a noisy step is not
    significant at alpha 0.005.)"""
    rng = np.random.default_rng(1000 + seed)
    before, after = int(rng.integers(8, 30)), int(rng.integers(8, 30))
    values = [float(v) for v in np.concatenate([10 + rng.normal(0, 0.5, before), 13 + rng.normal(0, 0.5, after)])]
    [cp] = detect(values)
    assert abs(cp.index - before) <= 1
    assert cp.before == pytest.approx(10, abs=0.5) and cp.after == pytest.approx(13, abs=0.5)
    assert cp.change == pytest.approx((cp.after - cp.before) / cp.before) and cp.change > 0.15
    assert cp.p_value < 0.005


def test_two_steps_are_both_found_and_a_throughput_drop_is_negative() -> None:
    """Up then down: two change points in order; the drop's change is negative."""
    rng = np.random.default_rng(3)
    values = np.concatenate([1000 + rng.normal(0, 40, 15), 1400 + rng.normal(0, 40, 15), 900 + rng.normal(0, 40, 15)])
    cps = detect([float(v) for v in values])
    assert [cp.index for cp in cps] == [15, 30]
    assert cps[0].change is not None and cps[0].change > 0.3
    assert cps[1].change is not None and cps[1].change < -0.3


def test_same_series_same_answer_and_short_or_constant_series_have_none() -> None:
    """Seeded shuffles: repeatable. Too short (fewer than 2 x min_size) or constant: nothing."""
    rng = np.random.default_rng(11)
    values = [float(v) for v in np.concatenate([5 + rng.normal(0, 0.3, 12), 8 + rng.normal(0, 0.3, 12)])]
    assert detect(values) == detect(values)
    assert detect([1.0, 1.0, 5.0, 5.0, 5.0]) == []
    assert detect([4.0] * 30) == []


def test_only_the_newest_points_are_searched_and_indexes_stay_in_the_series() -> None:
    """With max_points, an old step is out of view; a recent one is reported at its index in the whole series."""
    rng = np.random.default_rng(5)
    values = [float(v) for v in np.concatenate([5 + rng.normal(0, 0.2, 20), 9 + rng.normal(0, 0.2, 100)])]
    values += [float(v) for v in 14 + rng.normal(0, 0.2, 20)]
    [cp] = detect(values, max_points=60)
    assert cp.index == 120


def test_bad_parameters_and_values_are_refused() -> None:
    with pytest.raises(ValueError):
        detect([1.0, 2.0], alpha=0)
    with pytest.raises(ValueError):
        detect([1.0, float("nan")] * 5)
