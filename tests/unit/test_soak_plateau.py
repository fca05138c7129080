"""bench/plateau.py: the soak bench judges memory growth only once the RSS slope has settled."""

from __future__ import annotations

import math
import random

import pytest

from bench.plateau import find_plateau, slope_mb_per_h


def curve(seconds: int, mb_at: object, *, noise_mb: float = 0.6, seed: int = 1) -> list[tuple[float, float]]:
    """One sample a second with allocator-like noise: jitter plus occasional half-megabyte steps that stay."""
    rng = random.Random(seed)
    step = 0.0
    out = []
    for t in range(seconds):
        if rng.random() < 0.003:
            step += rng.choice((-1.0, 1.0))
        out.append((float(t), mb_at(t) + step * 0.5 + rng.uniform(-noise_mb, noise_mb)))  # type: ignore[operator]
    return out


def fill_then_flat(t: float) -> float:
    """Issue 13's coordinator: ~80 MB at 30 s, ~148 MB at 7 min, then a slow creep to ~166 MB."""
    return 166.0 - 90.0 * math.exp(-t / 160.0)


def true_slope(f: object, start: float, end: float) -> float:
    return (f(end) - f(start)) / (end - start) * 3600.0  # type: ignore[operator]


def test_a_fill_then_plateau_is_judged_on_the_plateau_not_the_ramp() -> None:
    """20 minutes of fill-then-flat: the whole-run slope is large, the settled tail's small and true."""
    points = curve(1200, fill_then_flat)
    whole = slope_mb_per_h(points)
    assert whole > 100  # what the old bench judged
    plateau = find_plateau(points)
    assert plateau.start_s is not None and plateau.slope_mb_per_h is not None
    assert 300 <= plateau.start_s <= 900
    assert plateau.slope_mb_per_h < whole / 4
    assert plateau.slope_mb_per_h == pytest.approx(true_slope(fill_then_flat, plateau.start_s, 1199), abs=15)
    assert plateau.spans[0][2] > 500 and abs(plateau.spans[-1][2]) < 60


def test_a_steady_leak_settles_at_its_own_slope_and_is_judged_on_it() -> None:
    """A leak never flattens: its slope settles at once, and that slope is the growth judged."""
    plateau = find_plateau(curve(600, lambda t: 70.0 + 60.0 * t / 3600.0))
    assert plateau.start_s == 0.0
    assert plateau.slope_mb_per_h == pytest.approx(60.0, abs=15.0)


def test_a_run_that_ends_on_the_ramp_is_not_judged() -> None:
    """Four minutes of a slow fill: the slope is still bending, so there is no settled tail."""
    plateau = find_plateau(curve(240, lambda t: 166.0 - 90.0 * math.exp(-t / 400.0)))
    assert plateau.start_s is None and plateau.slope_mb_per_h is None
    assert plateau.last_half_mb_per_h > 100


def test_a_flat_curve_settles_at_once_near_zero() -> None:
    plateau = find_plateau(curve(400, lambda t: 120.0), not_before_s=60)
    assert plateau.start_s == 60.0
    assert plateau.slope_mb_per_h is not None and abs(plateau.slope_mb_per_h) < 20


def test_noise_alone_never_hides_the_ramp() -> None:
    """Over 20 noise seeds: no plateau inside the steep part, each slope judged is the tail's true one,
    and a settled tail is found in nearly every run (an unlucky allocator step can leave one unsettled)."""
    settled = 0
    for seed in range(20):
        plateau = find_plateau(curve(1200, fill_then_flat, seed=seed))
        if plateau.start_s is None:
            continue
        settled += 1
        assert plateau.start_s >= 300, seed
        assert plateau.slope_mb_per_h is not None
        assert plateau.slope_mb_per_h == pytest.approx(true_slope(fill_then_flat, plateau.start_s, 1199), abs=20)
    assert settled >= 18


def test_too_few_points_is_no_verdict() -> None:
    assert find_plateau([(0.0, 1.0), (1.0, 2.0)]).start_s is None
