"""Tests for holoload.core.pacing.schedule: arrival times, concurrency targets, integer splits, round-robin."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.pacing.schedule import (
    ArrivalSchedule,
    ConcurrencySchedule,
    Stage,
    WeightedCycle,
    split_evenly,
    split_weighted,
)

PROPERTY = settings(max_examples=80, deadline=None)

stages_strategy = st.lists(
    st.builds(
        Stage,
        duration_s=st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=5.0)),
        target=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=200.0)),
    ),
    min_size=1,
    max_size=5,
)
start_rates = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=200.0))


def simpson(schedule: ArrivalSchedule, low_s: float, high_s: float, steps: int = 2000) -> float:
    """Numeric integral of the schedule's rate over a stretch where it is smooth."""
    width = (high_s - low_s) / steps
    total = schedule.rate_at(low_s) + schedule.rate_at(high_s - 1e-12)
    for i in range(1, steps):
        total += (4 if i % 2 else 2) * schedule.rate_at(low_s + i * width)
    return total * width / 3


def all_times(schedule: ArrivalSchedule) -> list[float]:
    """Every arrival time of a bounded schedule, via time_of."""
    times = []
    n = 0
    while (t := schedule.time_of(n)) is not None:
        times.append(t)
        n += 1
    return times


# Arrival schedules


def test_constant_rate_puts_arrival_n_at_n_over_rate_exactly() -> None:
    """At a constant rate R, arrival n is due at exactly n / R seconds."""
    rate = 333.0
    schedule = ArrivalSchedule.constant(rate, 10.0)
    for n in range(3330):
        assert schedule.time_of(n) == n / rate


def test_constant_rate_stage_holds_rate_times_duration_arrivals() -> None:
    """The end of the schedule is exclusive: 10/s for 2s is 20 arrivals, the 21st is None."""
    schedule = ArrivalSchedule.constant(10.0, 2.0)
    assert schedule.time_of(19) == pytest.approx(1.9)
    assert schedule.time_of(20) is None
    assert len(list(schedule.intended_times())) == 20
    assert schedule.expected_count() == 20.0
    assert schedule.duration_s == 2.0


def test_unbounded_constant_schedule_never_ends() -> None:
    """duration None means no end: far arrivals exist and the expected count is infinite."""
    schedule = ArrivalSchedule.constant(1000.0, None)
    assert schedule.duration_s is None
    assert schedule.time_of(10**12) == 10**12 / 1000.0
    assert schedule.expected_count() == math.inf
    assert schedule.expected_count(3.0) == 3000.0
    assert schedule.rate_at(1e9) == 1000.0


def test_zero_rate_schedule_has_no_arrivals() -> None:
    """A zero rate yields nothing, bounded or not, and counts zero rather than NaN."""
    for duration in (5.0, None):
        schedule = ArrivalSchedule.constant(0.0, duration)
        assert schedule.time_of(0) is None
        assert list(schedule.intended_times()) == []
        assert schedule.expected_count() == 0.0


def test_ramp_from_zero_matches_analytic_times() -> None:
    """Ramping 0 -> R over T puts arrival n at sqrt(2 n T / R)."""
    rate, ramp_s = 1000.0, 30.0
    schedule = ArrivalSchedule.ramping([Stage(ramp_s, rate)])
    for n in [0, 1, 2, 3, 10, 100, 1234, 9999, 14_999]:
        assert schedule.time_of(n) == pytest.approx(math.sqrt(2 * n * ramp_s / rate), rel=1e-12, abs=0)
    assert schedule.expected_count() == pytest.approx(rate * ramp_s / 2)
    assert schedule.time_of(15_000) is None


def test_ramp_down_to_zero_matches_analytic_times() -> None:
    """Ramping R -> 0 over T puts arrival n at T (1 - sqrt(1 - 2n / (R T))), stably."""
    rate, ramp_s = 400.0, 10.0
    schedule = ArrivalSchedule.ramping([Stage(ramp_s, 0.0)], start_rate=rate)
    for n in [0, 1, 5, 100, 1000, 1999]:
        expected = ramp_s * (1 - math.sqrt(1 - 2 * n / (rate * ramp_s)))
        assert schedule.time_of(n) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert schedule.time_of(2000) is None


def test_gentle_ramp_loses_no_precision() -> None:
    """A ramp with a tiny slope gives the constant-rate answer, not cancellation noise."""
    schedule = ArrivalSchedule.ramping([Stage(100.0, 1000.0 + 1e-9)], start_rate=1000.0)
    for n in [1, 7, 50_000, 99_999]:
        assert schedule.time_of(n) == pytest.approx(n / 1000.0, rel=1e-12)


def test_ramp_expected_count_matches_numeric_integral() -> None:
    """expected_count is the integral of rate_at over each linear stretch."""
    stages = [Stage(4.0, 50.0), Stage(3.0, 50.0), Stage(0.0, 120.0), Stage(5.0, 10.0)]
    schedule = ArrivalSchedule.ramping(stages, start_rate=5.0)
    edges = [0.0, 4.0, 7.0, 12.0]
    running = 0.0
    for low, high in zip(edges, edges[1:], strict=False):
        midpoint = (low + high) / 2
        assert schedule.expected_count(midpoint) == pytest.approx(running + simpson(schedule, low, midpoint), rel=1e-9)
        running += simpson(schedule, low, high)
        assert schedule.expected_count(high) == pytest.approx(running, rel=1e-9)
    assert schedule.expected_count() == pytest.approx(running, rel=1e-9)
    assert schedule.expected_count(-1.0) == 0.0
    assert schedule.expected_count(99.0) == schedule.expected_count()


def test_step_stage_changes_rate_instantly() -> None:
    """A zero-duration stage is a step: the next stage runs at the new rate from its start."""
    schedule = ArrivalSchedule.ramping([Stage(2.0, 10.0), Stage(0.0, 100.0), Stage(1.0, 100.0)], 10.0)
    times = all_times(schedule)
    assert len(times) == 120
    assert times[:20] == [n / 10.0 for n in range(20)]
    assert times[20:] == pytest.approx([2.0 + m / 100.0 for m in range(100)], rel=1e-12)
    assert schedule.rate_at(1.999) == 10.0
    assert schedule.rate_at(2.0) == 100.0


def test_leading_zero_rate_stage_delays_the_first_arrival() -> None:
    """Nothing arrives while the rate is zero: arrival 0 waits until the rate turns positive."""
    schedule = ArrivalSchedule.ramping([Stage(5.0, 0.0), Stage(0.0, 10.0), Stage(1.0, 10.0)])
    assert schedule.time_of(0) == 5.0
    assert schedule.time_of(9) == pytest.approx(5.9)
    assert schedule.time_of(10) is None


def test_middle_zero_rate_stage_pauses_arrivals() -> None:
    """After a ramp down to zero, a pause, and a ramp up, arrivals resume when the rate does."""
    stages = [Stage(1.0, 10.0), Stage(2.0, 0.0), Stage(3.0, 0.0), Stage(1.0, 5.0)]
    schedule = ArrivalSchedule.ramping(stages, start_rate=10.0)
    times = all_times(schedule)
    assert schedule.expected_count() == 22.5
    assert len(times) == 23
    assert times[20] == 6.0  # the count reached 20 at 3.0s, but nothing arrives in the pause
    assert times[21] == pytest.approx(6.0 + math.sqrt(2 / 5))
    assert all(not 3.0 < t < 6.0 for t in times)


def test_rate_at_is_linear_inside_stages_and_zero_outside() -> None:
    """rate_at interpolates each stage and is 0 before the start and from the end on."""
    schedule = ArrivalSchedule.ramping([Stage(10.0, 100.0), Stage(10.0, 0.0)], start_rate=20.0)
    assert schedule.rate_at(0.0) == 20.0
    assert schedule.rate_at(5.0) == pytest.approx(60.0)
    assert schedule.rate_at(15.0) == pytest.approx(50.0)
    assert schedule.rate_at(-0.1) == 0.0
    assert schedule.rate_at(20.0) == 0.0


@PROPERTY
@given(stages=stages_strategy, start_rate=start_rates)
def test_intended_times_agree_with_time_of(stages: list[Stage], start_rate: float) -> None:
    """The incremental iterator yields exactly time_of(n) for every n, then stops."""
    schedule = ArrivalSchedule.ramping(stages, start_rate)
    times = list(schedule.intended_times())
    assert times == [schedule.time_of(n) for n in range(len(times))]
    assert schedule.time_of(len(times)) is None
    assert len(times) == math.ceil(schedule.expected_count())


@PROPERTY
@given(stages=stages_strategy, start_rate=start_rates)
def test_arrival_times_are_ordered_and_invert_expected_count(stages: list[Stage], start_rate: float) -> None:
    """Times never go backwards, stay inside the schedule, and the count at t_n is n."""
    schedule = ArrivalSchedule.ramping(stages, start_rate)
    times = all_times(schedule)
    assert times == sorted(times)
    duration = schedule.duration_s
    assert duration is not None
    for n, t in enumerate(times):
        assert 0.0 <= t <= duration  # < mathematically; rounding may land on the end
        assert schedule.expected_count(t) == pytest.approx(n, rel=1e-9, abs=1e-6)


def test_intended_times_are_offset_by_start() -> None:
    """With a start on the caller's clock, every yielded time is that start plus the offset."""
    schedule = ArrivalSchedule.ramping([Stage(2.0, 50.0), Stage(1.0, 50.0)])
    origin = 12_345.678
    deadlines = list(schedule.intended_times(start_s=origin))
    assert deadlines == [origin + t for t in all_times(schedule)]


def test_intended_times_do_not_drift_at_constant_rate() -> None:
    """The millionth arrival is still exactly n / R: times are computed, not accumulated."""
    rate = 7919.0
    times = ArrivalSchedule.constant(rate, None).intended_times()
    millionth = next(islice(times, 1_000_000, None))
    assert millionth == 1_000_000 / rate


@pytest.mark.parametrize(
    "build",
    [
        lambda: ArrivalSchedule.constant(-1.0, 10.0),
        lambda: ArrivalSchedule.constant(10.0, -1.0),
        lambda: ArrivalSchedule.constant(math.nan, 10.0),
        lambda: ArrivalSchedule.constant(math.inf, 10.0),
        lambda: ArrivalSchedule.constant(10.0, math.inf),
        lambda: ArrivalSchedule.ramping([]),
        lambda: ArrivalSchedule.ramping([Stage(1.0, 1.0)], start_rate=-1.0),
        lambda: Stage(-1.0, 10.0),
        lambda: Stage(1.0, -10.0),
        lambda: Stage(math.nan, 10.0),
        lambda: ArrivalSchedule.constant(1.0, 1.0).time_of(-1),
    ],
)
def test_invalid_schedules_raise_value_error(build: object) -> None:
    """Negative, NaN or infinite rates and durations, no stages and negative n are refused."""
    assert callable(build)
    with pytest.raises(ValueError, match="expected"):
        build()


# Concurrency schedules


def test_constant_concurrency_holds_then_stops() -> None:
    """A constant schedule wants n workers for its duration, and none outside it."""
    schedule = ConcurrencySchedule.constant(8, 60.0)
    assert schedule.duration_s == 60.0
    assert schedule.target_at(0.0) == 8
    assert schedule.target_at(59.99) == 8
    assert schedule.target_at(60.0) == 0
    assert schedule.target_at(-1.0) == 0
    assert ConcurrencySchedule.constant(3, None).target_at(1e9) == 3
    assert ConcurrencySchedule.constant(3, None).duration_s is None


def test_ramping_concurrency_rounds_half_up() -> None:
    """Between stage targets the worker count follows the line, rounded to the nearest int."""
    schedule = ConcurrencySchedule.ramping([Stage(10.0, 10.0), Stage(0.0, 2.0), Stage(5.0, 2.0)])
    assert schedule.duration_s == 15.0
    assert schedule.target_at(0.0) == 0
    assert schedule.target_at(0.49) == 0
    assert schedule.target_at(0.5) == 1
    assert schedule.target_at(2.5) == 3
    assert schedule.target_at(9.99) == 10
    assert schedule.target_at(10.0) == 2
    assert schedule.target_at(15.0) == 0


@PROPERTY
@given(stages=stages_strategy, start=start_rates, t=st.floats(min_value=-10, max_value=40))
def test_concurrency_target_stays_between_stage_values(stages: list[Stage], start: float, t: float) -> None:
    """The target is never negative and never above the largest value the stages name."""
    schedule = ConcurrencySchedule.ramping(stages, start)
    highest = max([start, *(stage.target for stage in stages)])
    assert 0 <= schedule.target_at(t) <= math.floor(highest + 0.5)


# Integer splits


@PROPERTY
@given(total=st.integers(min_value=0, max_value=10**6), parts=st.integers(min_value=1, max_value=64))
def test_split_evenly_is_exact_and_balanced(total: int, parts: int) -> None:
    """The parts sum to the total and differ by at most one."""
    split = split_evenly(total, parts)
    assert len(split) == parts
    assert sum(split) == total
    assert max(split) - min(split) <= 1


@PROPERTY
@given(
    total=st.integers(min_value=0, max_value=10**6),
    weights=st.lists(
        st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e3), st.integers(0, 100)),
        min_size=1,
        max_size=16,
    ).filter(lambda ws: sum(ws) > 0),
)
def test_split_weighted_is_exact_and_each_part_is_floor_or_ceiling(total: int, weights: list[float]) -> None:
    """Parts sum to the total, each within one of its exact quota, zero weights get zero."""
    split = split_weighted(total, weights)
    assert sum(split) == total
    weight_sum = sum(Fraction(w) for w in weights)
    for part, weight in zip(split, weights, strict=True):
        quota = total * Fraction(weight) / weight_sum
        assert math.floor(quota) <= part <= math.ceil(quota)
        if weight == 0:
            assert part == 0


def test_split_weighted_gives_leftovers_to_largest_remainders() -> None:
    """Hamilton's method: leftover units go to the largest remainders, ties to the earliest."""
    assert split_weighted(10, [1, 1, 1]) == [4, 3, 3]
    assert split_weighted(7, [0.1, 0.2, 0.7]) == [1, 1, 5]
    assert split_weighted(100, [1, 2, 3, 4]) == [10, 20, 30, 40]
    assert split_weighted(5, [1, 0, 1]) == [3, 0, 2]
    assert split_weighted(0, [0, 0]) == [0, 0]


def test_split_errors_are_value_errors() -> None:
    """Negative totals, no parts, bad weights and zero weights for a positive total raise."""
    with pytest.raises(ValueError, match="total"):
        split_evenly(-1, 2)
    with pytest.raises(ValueError, match="parts"):
        split_evenly(5, 0)
    with pytest.raises(ValueError, match="weight"):
        split_weighted(5, [])
    with pytest.raises(ValueError, match="weight"):
        split_weighted(5, [1.0, -1.0])
    with pytest.raises(ValueError, match="weight"):
        split_weighted(5, [1.0, math.nan])
    with pytest.raises(ValueError, match="all zero"):
        split_weighted(5, [0, 0])


# Smooth weighted round-robin


def test_weighted_cycle_interleaves_like_nginx() -> None:
    """Weights 5, 1, 1 give the documented nginx sequence a a b a c a a."""
    cycle = WeightedCycle([5, 1, 1])
    assert [cycle.next() for _ in range(14)] == [0, 0, 1, 0, 2, 0, 0] * 2
    assert len(cycle) == 3


@PROPERTY
@given(weights=st.lists(st.integers(0, 20), min_size=1, max_size=8).filter(any))
def test_weighted_cycle_picks_each_item_weight_times_per_round(weights: list[int]) -> None:
    """With integer weights, each round of sum(weights) picks chooses item i exactly weights[i] times."""
    cycle = WeightedCycle(weights)
    for _ in range(3):
        counts = Counter(cycle.next() for _ in range(sum(weights)))
        assert [counts[i] for i in range(len(weights))] == weights


def test_weighted_cycle_follows_float_weights() -> None:
    """Float weights are followed in proportion, within one pick, and zero weights never win."""
    cycle = WeightedCycle([0.5, 0.0, 1.5, 2.0])
    counts = Counter(cycle.next() for _ in range(4000))
    assert counts[1] == 0
    assert abs(counts[0] - 500) <= 1
    assert abs(counts[2] - 1500) <= 1
    assert abs(counts[3] - 2000) <= 1


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [1, math.inf]])
def test_weighted_cycle_rejects_bad_weights(weights: list[float]) -> None:
    """No weights, all-zero, negative or infinite weights are refused."""
    with pytest.raises(ValueError, match="weight"):
        WeightedCycle(weights)
