"""Open- and closed-loop pacing: intended start times, concurrency targets, exact integer splits."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ArrivalSchedule",
    "ConcurrencySchedule",
    "Stage",
    "WeightedCycle",
    "release_wait_ns",
    "split_evenly",
    "split_weighted",
]


def _require_non_negative(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected {name} to be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Stage:
    """One ramp stage: the value moves linearly to ``target`` over ``duration_s``.

    The ramp starts from the previous stage's target (or the schedule's start value);
    a stage whose target equals that value holds it, and ``duration_s == 0`` is a step.

    Args:
        duration_s: how long the ramp takes, finite and >= 0.
        target: the value reached at the end of the stage, finite and >= 0.

    Raises:
        ValueError: either field is negative, NaN or infinite.
    """

    duration_s: float
    target: float

    def __post_init__(self) -> None:
        _require_non_negative("a stage duration_s", self.duration_s)
        _require_non_negative("a stage target", self.target)


@dataclass(frozen=True, slots=True)
class _Segment:
    """A stretch of positive duration over which the value is linear in time."""

    start_s: float
    duration_s: float  # math.inf for an unbounded constant schedule
    value0: float
    slope: float  # value per second
    count_start: float  # integral of the value from 0 to start_s
    count: float  # integral of the value over this segment


class _Profile:
    """A piecewise-linear, non-negative value over ``[0, duration_s)``, zero outside."""

    __slots__ = ("_starts_s", "duration_s", "segments", "total")

    def __init__(self, segments: list[_Segment], duration_s: float) -> None:
        self.segments = segments
        self.duration_s = duration_s
        self.total = sum(segment.count for segment in segments)
        self._starts_s = [segment.start_s for segment in segments]

    @classmethod
    def constant(cls, value: float, duration_s: float | None, what: str) -> _Profile:
        """A flat profile; ``duration_s=None`` never ends."""
        _require_non_negative(what, value)
        if duration_s is None:
            length = math.inf
        else:
            _require_non_negative("duration_s", duration_s)
            length = float(duration_s)
        if length == 0:
            return cls([], 0.0)
        # 0 * inf is NaN, so a zero value gets a zero count explicitly.
        count = value * length if value else 0.0
        return cls([_Segment(0.0, length, float(value), 0.0, 0.0, count)], length)

    @classmethod
    def ramping(cls, stages: Sequence[Stage], start: float, what: str) -> _Profile:
        """Linear ramps between stage targets, starting from ``start``."""
        _require_non_negative(what, start)
        if not stages:
            raise ValueError("expected at least one stage")
        segments: list[_Segment] = []
        t_s = 0.0
        value = float(start)
        count = 0.0
        for stage in stages:
            target = float(stage.target)
            if stage.duration_s == 0:
                value = target  # a step: no time passes, nothing arrives
                continue
            duration = float(stage.duration_s)
            area = (value + target) * 0.5 * duration
            slope = 0.0 if target == value else (target - value) / duration
            segments.append(_Segment(t_s, duration, value, slope, count, area))
            t_s += duration
            count += area
            value = target
        return cls(segments, t_s)

    def value_at(self, t_s: float) -> float:
        """The value at ``t_s`` (right-continuous at steps), 0 outside ``[0, duration_s)``."""
        if not 0 <= t_s < self.duration_s:
            return 0.0
        segment = self.segments[bisect_right(self._starts_s, t_s) - 1]
        return segment.value0 + segment.slope * (t_s - segment.start_s)

    def integral_to(self, t_s: float) -> float:
        """The integral of the value from 0 to ``t_s``."""
        if t_s <= 0:
            return 0.0
        if t_s >= self.duration_s:
            return self.total
        segment = self.segments[bisect_right(self._starts_s, t_s) - 1]
        tau = t_s - segment.start_s
        return segment.count_start + tau * (segment.value0 + 0.5 * segment.slope * tau)


def _offset_in(segment: _Segment, m: float) -> float:
    """Time into ``segment`` at which its integral reaches ``m`` (0 <= m < segment.count)."""
    slope = segment.slope
    if slope == 0.0:
        return m / segment.value0
    if m == 0:
        return 0.0
    # Root of slope/2 tau^2 + v0 tau - m = 0 in the form that avoids cancellation when
    # slope is small or negative; for v0 == 0 it reduces to sqrt(2m / slope).
    # ``intended_times`` inlines this arithmetic: keep the two in step, operation for
    # operation, so both give the same floats.
    r0 = segment.value0
    discriminant = r0 * r0 + 2.0 * slope * m
    tau = 2.0 * m / (r0 + math.sqrt(discriminant if discriminant > 0.0 else 0.0))
    return tau if tau < segment.duration_s else segment.duration_s


class ArrivalSchedule:
    """Intended start times of an open-loop workload whose rate is piecewise linear.

    Arrival ``n`` (0-based) is due at the latest time the integral of the rate equals
    ``n``: at a constant rate R that is ``n / R``, and a leading or middle zero-rate
    stage delays the next arrival to where the rate turns positive. Each stage is
    half-open, so a stage of ``T`` seconds at rate ``R`` holds ``R * T`` arrivals.
    Latency is then measured from these times, not from when a connection was free
    (coordinated omission correction). Build it with ``constant`` or ``ramping``.
    """

    __slots__ = ("_count_starts", "_profile", "_segments")

    def __init__(self, profile: _Profile) -> None:
        self._profile = profile
        # Only segments with arrivals: their count ranges tile [0, total) in order.
        self._segments = [segment for segment in profile.segments if segment.count > 0]
        self._count_starts = [segment.count_start for segment in self._segments]

    @classmethod
    def constant(cls, rate_per_s: float, duration_s: float | None) -> ArrivalSchedule:
        """A schedule at a fixed rate.

        Args:
            rate_per_s: arrivals per second, finite and >= 0.
            duration_s: how long it lasts, or None for a schedule that never ends.

        Returns:
            The schedule.

        Raises:
            ValueError: the rate or duration is negative, NaN or infinite.
        """
        return cls(_Profile.constant(rate_per_s, duration_s, "rate_per_s"))

    @classmethod
    def ramping(cls, stages: Sequence[Stage], start_rate: float = 0.0) -> ArrivalSchedule:
        """A schedule whose rate ramps linearly through ``stages``.

        Args:
            stages: the ramp stages, at least one; rates are per second.
            start_rate: the rate at time 0, before the first stage moves it.

        Returns:
            The schedule; it ends after the last stage.

        Raises:
            ValueError: no stages, or ``start_rate`` is negative, NaN or infinite.
        """
        return cls(_Profile.ramping(stages, start_rate, "start_rate"))

    @property
    def duration_s(self) -> float | None:
        """How long the schedule lasts in seconds, or None when it never ends."""
        duration = self._profile.duration_s
        return None if math.isinf(duration) else duration

    def rate_at(self, t_s: float) -> float:
        """The rate in arrivals per second at offset ``t_s``.

        Args:
            t_s: seconds from the phase start.

        Returns:
            The rate; right-continuous at steps, and 0 before 0 or from the end on.
        """
        return self._profile.value_at(t_s)

    def expected_count(self, until_s: float | None = None) -> float:
        """The integral of the rate from the phase start.

        Args:
            until_s: the offset to integrate up to, or None for the whole schedule.

        Returns:
            The expected number of arrivals (``math.inf`` for an unbounded schedule
            with a positive rate and ``until_s=None``). Arrival ``n`` is due before
            ``until_s`` exactly when ``n < expected_count(until_s)``.
        """
        if until_s is None:
            return self._profile.total
        return self._profile.integral_to(until_s)

    def time_of(self, n: int) -> float | None:
        """The offset of arrival ``n`` from the phase start, solved exactly per stage.

        Args:
            n: the 0-based arrival number.

        Returns:
            Seconds from the phase start, or None when the schedule ends first.

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"expected an arrival number >= 0, got {n}")
        index = bisect_right(self._count_starts, n) - 1
        if index < 0:
            return None  # no segment has arrivals
        segment = self._segments[index]
        m = n - segment.count_start
        if m >= segment.count:
            return None
        return segment.start_s + _offset_in(segment, m)

    def intended_times(self, start_s: float = 0.0) -> Iterator[float]:
        """Yield the due time of every arrival in order, at O(1) cost each.

        Args:
            start_s: the phase start on the caller's clock (a monotonic reading, say);
                each value is ``start_s + time_of(n)`` for n = 0, 1, 2, ... The default
                0 yields plain offsets.

        Yields:
            Due times in order; the iterator ends with the schedule (never, if it is
            unbounded).
        """
        n = 0
        for segment in self._segments:
            t0 = segment.start_s
            c0 = segment.count_start
            end = c0 + segment.count
            if segment.slope == 0.0:
                rate = segment.value0
                # Each time is computed afresh as m / rate (the same float as time_of),
                # never accumulated, so there is no drift over millions of arrivals.
                while n < end:
                    yield start_s + (t0 + (n - c0) / rate)
                    n += 1
            else:
                # _offset_in inlined (a call per arrival would double the cost).
                r0 = segment.value0
                r0_squared = r0 * r0
                two_slope = 2.0 * segment.slope
                length_s = segment.duration_s
                sqrt = math.sqrt
                while n < end:
                    m = n - c0
                    if m == 0:
                        tau = 0.0
                    else:
                        discriminant = r0_squared + two_slope * m
                        tau = 2.0 * m / (r0 + sqrt(discriminant if discriminant > 0.0 else 0.0))
                        if tau > length_s:
                            tau = length_s
                    yield start_s + (t0 + tau)
                    n += 1


def release_wait_ns(due_ns: int, now_ns: int, tick_ns: int) -> int:
    """How long an open-loop dispatcher waits before it releases the arrival due at ``due_ns``.

    Timers fire on a grid of ``tick_ns`` (libuv's: whole milliseconds), so one sleep per
    arrival below that costs a wake-up each and buys no precision. Instead an arrival due
    within half a tick is released now (at most half a tick early), together with every
    other one due by then, and a later one is waited for, at least a whole tick. The process
    then wakes at most once per tick, and each wake-up releases a batch.

    Args:
        due_ns: the arrival's intended start.
        now_ns: the clock now (same clock).
        tick_ns: the timer's granularity, > 0.

    Returns:
        0 to release it now, else the nanoseconds to sleep first (>= ``tick_ns``).

    Raises:
        ValueError: ``tick_ns`` is not positive.
    """
    if tick_ns <= 0:
        raise ValueError(f"expected tick_ns > 0, got {tick_ns}")
    wait = due_ns - now_ns
    if wait <= tick_ns // 2:
        return 0
    return wait if wait > tick_ns else tick_ns


class ConcurrencySchedule:
    """The number of workers a ramping closed-loop workload should have at each moment.

    Build it with ``constant`` or ``ramping``; the value between stage targets moves
    linearly and is rounded half up to whole workers.
    """

    __slots__ = ("_profile",)

    def __init__(self, profile: _Profile) -> None:
        self._profile = profile

    @classmethod
    def constant(cls, n: int, duration_s: float | None) -> ConcurrencySchedule:
        """A fixed number of workers.

        Args:
            n: the number of workers, >= 0.
            duration_s: how long it lasts, or None for a schedule that never ends.

        Returns:
            The schedule.

        Raises:
            ValueError: ``n`` or the duration is negative, NaN or infinite.
        """
        return cls(_Profile.constant(n, duration_s, "n"))

    @classmethod
    def ramping(cls, stages: Sequence[Stage], start: float = 0) -> ConcurrencySchedule:
        """Workers ramping linearly through ``stages``.

        Args:
            stages: the ramp stages, at least one; targets are worker counts.
            start: the worker count at time 0, before the first stage moves it.

        Returns:
            The schedule; it ends after the last stage.

        Raises:
            ValueError: no stages, or ``start`` is negative, NaN or infinite.
        """
        return cls(_Profile.ramping(stages, start, "start"))

    @property
    def duration_s(self) -> float | None:
        """How long the schedule lasts in seconds, or None when it never ends."""
        duration = self._profile.duration_s
        return None if math.isinf(duration) else duration

    def target_at(self, t_s: float) -> int:
        """The number of workers wanted at offset ``t_s``.

        Args:
            t_s: seconds from the phase start.

        Returns:
            The ramp value rounded half up, never negative; 0 before 0 and from the
            end of the schedule on.
        """
        return max(0, math.floor(self._profile.value_at(t_s) + 0.5))


def split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integers that differ by at most one.

    Args:
        total: the amount to split, >= 0.
        parts: how many parts, >= 1.

    Returns:
        The parts, larger ones first; they sum to exactly ``total``.

    Raises:
        ValueError: ``total`` is negative or ``parts`` is below 1.
    """
    if total < 0:
        raise ValueError(f"expected a total >= 0, got {total}")
    if parts < 1:
        raise ValueError(f"expected parts >= 1, got {parts}")
    quotient, remainder = divmod(total, parts)
    return [quotient + 1] * remainder + [quotient] * (parts - remainder)


def split_weighted(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` by the largest remainder method.

    Quotas are computed in exact rational arithmetic, so every part is the floor or
    the ceiling of its exact share and the parts sum to exactly ``total``. Ties for
    the leftover units go to the earlier weight, so the split is deterministic.

    Args:
        total: the amount to split, >= 0.
        weights: one finite weight >= 0 per part; at least one must be positive
            unless ``total`` is 0.

    Returns:
        One integer per weight, summing to ``total``; zero-weight parts get 0.

    Raises:
        ValueError: no weights, a negative or non-finite weight, a negative total,
            or a positive total with all weights zero.
    """
    if total < 0:
        raise ValueError(f"expected a total >= 0, got {total}")
    if not weights:
        raise ValueError("expected at least one weight")
    for weight in weights:
        _require_non_negative("every weight", weight)
    exact = [Fraction(weight) for weight in weights]
    weight_sum = sum(exact, Fraction(0))
    if weight_sum == 0:
        if total:
            raise ValueError(f"cannot split {total} by weights that are all zero")
        return [0] * len(weights)
    quotas = [total * weight / weight_sum for weight in exact]
    parts = [math.floor(quota) for quota in quotas]
    leftover = total - sum(parts)
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts


class WeightedCycle:
    """Smooth weighted round-robin over item indices (the nginx upstream algorithm).

    Picks are interleaved rather than bunched: weights 5, 1, 1 give a, a, b, a, c, a,
    a. With integer weights, every ``sum(weights)`` consecutive picks from the start
    choose each item exactly its weight times. Zero-weight items are never chosen.

    Args:
        weights: one finite weight >= 0 per item, at least one positive.

    Raises:
        ValueError: no weights, a negative or non-finite weight, or all zero.
    """

    __slots__ = ("_current", "_total", "_weights")

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights:
            raise ValueError("expected at least one weight")
        for weight in weights:
            _require_non_negative("every weight", weight)
        self._weights = list(weights)
        self._total = sum(self._weights)
        if self._total <= 0:
            raise ValueError("expected at least one positive weight")
        # Integer weights stay ints, so the running scores are exact.
        self._current: list[float] = [0] * len(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def next(self) -> int:
        """Pick the next item.

        Returns:
            The index of the chosen item.
        """
        current = self._current
        best = 0
        best_score = -math.inf
        for index, weight in enumerate(self._weights):
            score = current[index] + weight
            current[index] = score
            if score > best_score:  # strict: the first of equal scores wins, so ties are stable
                best = index
                best_score = score
        current[best] = best_score - self._total
        return best
