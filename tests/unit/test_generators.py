"""Tests for holoload.core.pacing.generators: unique ids, distributions, choices, text and spec building."""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from holoload.core.model.workload import Param
from holoload.core.pacing.generators import (
    SeqAllocator,
    build,
    choice,
    const,
    now,
    seq,
    text,
    uniform,
    uniform_float,
    zipf,
)

PROPERTY = settings(max_examples=50, deadline=None)
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


class FakeClock:
    """A wall clock that moves one second per reading."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return EPOCH + timedelta(seconds=self.readings)


def chi_square(observed: Counter[Any], expected: dict[Any, float]) -> float:
    """Pearson's statistic of observed counts against expected counts."""
    return sum((observed[key] - count) ** 2 / count for key, count in expected.items())


def chi_square_limit(degrees: int) -> float:
    """The 99.99th percentile of chi-square with ``degrees`` degrees (Wilson-Hilferty).

    Seeds are fixed, so a test either always passes or always fails; the wide limit
    keeps a correct sampler passing if the seed or the stdlib's stream ever changes.
    """
    z = 3.719  # standard normal 99.99th percentile
    ratio = 2 / (9 * degrees)
    return degrees * (1 - ratio + z * math.sqrt(ratio)) ** 3


def zipf_probabilities(n: int, s: float) -> list[float]:
    """Exact P(k) for k = 1..n under the Zipf law with exponent s."""
    weights = [k**-s for k in range(1, n + 1)]
    total = math.fsum(weights)
    return [w / total for w in weights]


# Sequential ids


def test_seq_ids_are_unique_across_interleaved_writers() -> None:
    """Many writers sharing one allocator, drawing in random interleaving, never repeat an id."""
    allocator = SeqAllocator(start=1, block=7)
    writers = [seq(allocator) for _ in range(40)]
    order = random.Random(3)
    drawn: dict[int, list[int]] = {i: [] for i in range(len(writers))}
    for _ in range(50_000):
        index = order.randrange(len(writers))
        drawn[index].append(writers[index]())
    every = [value for values in drawn.values() for value in values]
    assert len(set(every)) == len(every)
    assert all(values == sorted(values) for values in drawn.values())
    assert min(every) >= 1
    assert max(every) < allocator.next_id


def test_seq_takes_blocks_lazily_and_fills_them_in_order() -> None:
    """A writer takes its first block on its first draw and the next only when that runs out."""
    allocator = SeqAllocator(start=100, block=3)
    first = seq(allocator)
    assert allocator.blocks_taken == 0
    assert allocator.next_id == 100
    assert [first() for _ in range(3)] == [100, 101, 102]
    second = seq(allocator)
    assert second() == 103
    assert first() == 106
    assert allocator.blocks_taken == 3
    assert allocator.next_id == 109


def test_partitioned_allocators_never_collide() -> None:
    """N worker processes with their own partition hand out disjoint ids, densely interleaved."""
    parts = 4
    seen: list[int] = []
    for index in range(parts):
        allocator = SeqAllocator.partition(start=1, parts=parts, index=index, block=10)
        writers = [seq(allocator) for _ in range(3)]
        for round_ in range(1500):  # 500 per writer: whole blocks
            seen.append(writers[round_ % 3]())
    assert len(set(seen)) == len(seen)
    assert set(seen) == set(range(1, len(seen) + 1))  # all progressed evenly: no gaps


@PROPERTY
@given(
    start=st.integers(-(10**9), 10**9),
    parts=st.integers(1, 8),
    block=st.integers(1, 50),
    takes=st.lists(st.integers(0, 7), min_size=1, max_size=60),
)
def test_partition_blocks_are_disjoint(start: int, parts: int, block: int, takes: list[int]) -> None:
    """Whatever order partitions take blocks in, no id is handed out twice."""
    allocators = [SeqAllocator.partition(start, parts, index, block) for index in range(parts)]
    ids: list[int] = []
    for take in takes:
        allocator = allocators[take % parts]
        ids.extend(allocator.take_block())
    assert len(set(ids)) == len(ids)
    assert all(value >= start for value in ids)
    assert max(ids) < max(allocator.next_id for allocator in allocators)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block": 0}, "block"),
        ({"parts": 0}, "parts"),
        ({"parts": 2, "index": 2}, "index"),
        ({"parts": 2, "index": -1}, "index"),
    ],
)
def test_seq_allocator_rejects_bad_layouts(kwargs: dict[str, int], match: str) -> None:
    """Empty blocks, no partitions and out-of-range partition numbers are refused."""
    with pytest.raises(ValueError, match=match):
        SeqAllocator(**kwargs)


# Uniform


def test_uniform_includes_both_bounds() -> None:
    """uniform(1, 3) returns 1, 2 and 3, nothing else."""
    draw = uniform(random.Random(1), 1, 3)
    assert {draw() for _ in range(3000)} == {1, 2, 3}


@pytest.mark.parametrize(("low", "high"), [(5, 5), (-10, -3), (0, 7), (0, 2**64), (-(2**70), 2**70)])
def test_uniform_stays_in_range(low: int, high: int) -> None:
    """Degenerate, negative, power-of-two and huge spans all stay within [low, high]."""
    draw = uniform(random.Random(2), low, high)
    values = [draw() for _ in range(2000)]
    assert all(low <= value <= high for value in values)
    assert all(isinstance(value, int) for value in values)


def test_uniform_is_flat() -> None:
    """Counts over ten values pass a chi-square test for a fixed seed."""
    draw = uniform(random.Random(5), 10, 19)
    counts = Counter(draw() for _ in range(50_000))
    assert chi_square(counts, {value: 5000.0 for value in range(10, 20)}) < chi_square_limit(9)


def test_uniform_replays_with_the_same_seed() -> None:
    """Two writers seeded alike draw the same values."""
    first, second = uniform(random.Random(9), 0, 10**6), uniform(random.Random(9), 0, 10**6)
    assert [first() for _ in range(100)] == [second() for _ in range(100)]


def test_uniform_float_stays_in_range() -> None:
    """uniform_float values lie between its bounds."""
    draw = uniform_float(random.Random(1), -2.5, 7.5)
    values = [draw() for _ in range(2000)]
    assert all(-2.5 <= value <= 7.5 for value in values)
    assert min(values) < -2.0
    assert max(values) > 7.0


def test_uniform_errors() -> None:
    """Reversed or non-finite bounds are refused."""
    with pytest.raises(ValueError, match="min <= max"):
        uniform(random.Random(), 3, 2)
    with pytest.raises(ValueError, match="min <= max"):
        uniform_float(random.Random(), 3.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        uniform_float(random.Random(), 0.0, math.inf)


# Zipf


@pytest.mark.parametrize("s", [0.3, 0.8, 1.0, 1.1, 2.0, 3.5])
def test_zipf_frequencies_follow_the_law(s: float) -> None:
    """Over 60 values and a fixed seed, counts pass a chi-square test against 1/k^s."""
    n, draws = 60, 120_000
    draw = zipf(random.Random(20240601), n, s)
    counts: Counter[object] = Counter(draw() for _ in range(draws))
    expected: dict[object, float] = {k: p * draws for k, p in enumerate(zipf_probabilities(n, s), start=1)}
    # Pool the sparse tail so every bin expects at least 5.
    sparse = [k for k, count in expected.items() if count < 5]
    if sparse:
        expected["tail"] = math.fsum(expected.pop(k) for k in sparse)
        counts["tail"] = sum(counts.pop(k, 0) for k in sparse)
    assert chi_square(counts, expected) < chi_square_limit(len(expected) - 1)


def test_zipf_head_and_tail_of_a_large_key_space() -> None:
    """With a million keys, the hottest ranks and the tail mass match the law."""
    n, s, draws = 1_000_000, 1.1, 200_000
    draw = zipf(random.Random(77), n, s)
    values = [draw() for _ in range(draws)]
    assert 1 <= min(values)
    assert max(values) <= n
    probabilities = zipf_probabilities(n, s)
    expected: dict[object, float] = {k: probabilities[k - 1] * draws for k in range(1, 21)}
    expected["tail"] = (1 - math.fsum(probabilities[:20])) * draws
    counts: Counter[object] = Counter(value if value <= 20 else "tail" for value in values)
    assert chi_square(counts, expected) < chi_square_limit(len(expected) - 1)


@pytest.mark.parametrize(("n", "s"), [(1, 1.0), (2, 0.01), (10**12, 1.0), (10**9, 1.5), (1000, 40.0)])
def test_zipf_stays_in_range(n: int, s: float) -> None:
    """Draws lie in 1..n for tiny and huge key spaces and extreme exponents."""
    draw = zipf(random.Random(4), n, s)
    values = [draw() for _ in range(5000)]
    assert all(1 <= value <= n for value in values)
    assert all(isinstance(value, int) for value in values)


def test_zipf_with_steep_exponent_is_almost_always_one() -> None:
    """At s = 40 the law puts all but 1e-12 of the mass on key 1."""
    draw = zipf(random.Random(8), 1000, 40.0)
    assert {draw() for _ in range(2000)} == {1}


def test_zipf_errors() -> None:
    """An empty key space or a non-positive exponent is refused."""
    with pytest.raises(ValueError, match="n >= 1"):
        zipf(random.Random(), 0, 1.0)
    with pytest.raises(ValueError, match="exponent"):
        zipf(random.Random(), 10, 0.0)
    with pytest.raises(ValueError, match="exponent"):
        zipf(random.Random(), 10, math.nan)


# Choice, const, now, text


def test_choice_respects_weights() -> None:
    """Weights 3:1 give about three times as many of the first value, for a fixed seed."""
    draw = choice(random.Random(11), ["paid", "shipped"], [3, 1])
    counts = Counter(draw() for _ in range(40_000))
    assert chi_square(counts, {"paid": 30_000.0, "shipped": 10_000.0}) < chi_square_limit(1)


def test_choice_never_returns_zero_weight_values() -> None:
    """A value with weight 0 is never chosen, wherever it sits."""
    draw = choice(random.Random(12), ["a", "b", "c", "d"], [0, 1, 0, 1])
    assert {draw() for _ in range(5000)} == {"b", "d"}


def test_choice_without_weights_is_uniform() -> None:
    """Without weights every value is equally likely."""
    values = ["x", "y", "z", 4, None]
    draw = choice(random.Random(13), values)
    counts = Counter(draw() for _ in range(25_000))
    assert chi_square(counts, {value: 5000.0 for value in values}) < chi_square_limit(4)
    assert choice(random.Random(), ["only"])() == "only"


@pytest.mark.parametrize(
    ("values", "weights", "match"),
    [
        ([], None, "at least one value"),
        (["a", "b"], [1], "one weight per value"),
        (["a", "b"], [1, -1], "weights"),
        (["a", "b"], [1, math.nan], "weights"),
        (["a", "b"], [0, 0], "positive weight"),
    ],
)
def test_choice_errors(values: Sequence[Any], weights: Sequence[float] | None, match: str) -> None:
    """Empty values, mismatched, negative, NaN or all-zero weights are refused."""
    with pytest.raises(ValueError, match=match):
        choice(random.Random(), values, weights)


def test_const_returns_its_value() -> None:
    """const returns the same value on every call."""
    draw = const(5)
    assert [draw() for _ in range(3)] == [5, 5, 5]


def test_now_reads_the_injected_clock() -> None:
    """now() asks the injected clock on every call, never the system clock."""
    clock = FakeClock()
    draw = now(clock)
    assert draw() == EPOCH + timedelta(seconds=1)
    assert draw() == EPOCH + timedelta(seconds=2)
    assert clock.readings == 2


@pytest.mark.parametrize("length", [0, 1, 7, 32, 1000])
def test_text_has_the_length_and_only_letters(length: int) -> None:
    """text values have exactly the requested length and only ASCII letters."""
    draw = text(random.Random(14), length)
    for _ in range(200):
        value = draw()
        assert len(value) == length
        assert set(value) <= set(string.ascii_letters)


def test_text_letters_are_uniform_and_seeded() -> None:
    """All 52 letters are equally likely, and a seed replays the same text."""
    draw = text(random.Random(15), 64)
    counts = Counter("".join(draw() for _ in range(2000)))
    expected = 2000 * 64 / 52
    assert chi_square(counts, {letter: expected for letter in string.ascii_letters}) < chi_square_limit(51)
    assert text(random.Random(1), 16)() == text(random.Random(1), 16)()


def test_text_rejects_negative_length() -> None:
    """A negative length is refused."""
    with pytest.raises(ValueError, match="length"):
        text(random.Random(), -1)


# build(): from the scenario model's params

PARAM: TypeAdapter[Param] = TypeAdapter(Param)


def built(spec: dict[str, Any], allocator: SeqAllocator | None = None) -> Callable[[], Any]:
    """Validate ``spec`` as the scenario model does, then build it with a seeded rng and a fake clock."""
    return build(
        PARAM.validate_python(spec),
        rng=random.Random(21),
        seq_allocator=allocator or SeqAllocator(),
        clock=FakeClock(),
    )


def test_build_makes_each_kind_of_generator() -> None:
    """Every documented param builds a generator of the right kind."""
    allocator = SeqAllocator(start=1, block=5)
    assert [built({"gen": "seq"}, allocator)() for _ in range(2)] == [1, 6]
    assert built({"gen": "seq", "start": 1}, allocator)() == 11
    assert 1 <= built({"gen": "uniform", "min": 1, "max": 100_000})() <= 100_000
    assert 0.0 <= built({"gen": "uniform_float", "min": 0.0, "max": 1})() <= 1.0
    assert 1 <= built({"gen": "zipf", "n": 100_000, "s": 1.1})() <= 100_000
    assert 1 <= built({"gen": "zipf", "n": 10})() <= 10
    assert built({"gen": "choice", "values": ["paid", "shipped"], "weights": [3, 1]})() in {"paid", "shipped"}
    assert built({"gen": "choice", "values": ["paid"], "weights": None})() == "paid"
    assert built({"gen": "const", "value": 5})() == 5
    assert built({"gen": "const", "value": None})() is None
    assert built({"gen": "now"})() == EPOCH + timedelta(seconds=1)
    assert len(built({"gen": "text", "length": 32})()) == 32


def test_build_uses_the_params_values_and_defaults() -> None:
    """The built generator draws what the param says: its bounds, zipf's default exponent, choice's weights."""
    assert {built({"gen": "uniform", "min": 7, "max": 7})() for _ in range(5)} == {7}
    floats = built({"gen": "uniform_float", "min": -2.5, "max": -2.5 + 1e-9})
    assert all(-2.5 <= floats() <= -2.5 + 1e-9 for _ in range(20))
    only_b = built({"gen": "choice", "values": ["a", "b"], "weights": [0, 1]})
    assert {only_b() for _ in range(50)} == {"b"}
    default_s, explicit_s = built({"gen": "zipf", "n": 1000}), built({"gen": "zipf", "n": 1000, "s": 1.1})
    assert [default_s() for _ in range(50)] == [explicit_s() for _ in range(50)]


def test_build_replays_with_the_same_seed() -> None:
    """Two builds of a param with equally seeded rngs draw the same sequence."""
    spec = {"gen": "zipf", "n": 1000, "s": 0.9}
    first, second = built(spec), built(spec)
    assert [first() for _ in range(50)] == [second() for _ in range(50)]


def test_build_refuses_a_seq_start_other_than_the_allocators() -> None:
    """The one check left to build: the process's allocator decides where ids start."""
    with pytest.raises(ValueError, match="seq start 50 differs from the allocator's start 1"):
        built({"gen": "seq", "start": 50})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({}, "Unable to extract tag using discriminator 'gen'"),
        ({"gen": "gaussian"}, "does not match any of the expected tags"),
        ({"gen": "uniform", "min": 1}, "max\n  Field required"),
        ({"gen": "uniform", "min": 1, "max": 2, "step": 1}, "step\n  Extra inputs are not permitted"),
        ({"gen": "uniform", "min": 5, "max": 1}, "min \\(5\\) must not exceed max \\(1\\)"),
        ({"gen": "uniform", "min": 1.5, "max": 3}, "min\n  Input should be a valid integer"),
        ({"gen": "uniform", "min": None, "max": 3}, "min\n  Input should be a valid integer"),
        ({"gen": "uniform_float", "min": 3.0, "max": 2.0}, "min \\(3.0\\) must not exceed max \\(2.0\\)"),
        ({"gen": "uniform_float", "min": 0, "max": math.inf}, "max\n  Input should be a finite number"),
        ({"gen": "zipf", "n": 0}, "n\n  Input should be greater than or equal to 1"),
        ({"gen": "zipf", "n": 10, "s": -1}, "s\n  Input should be greater than 0"),
        ({"gen": "zipf", "n": 10, "s": math.inf}, "s\n  Input should be a finite number"),
        ({"gen": "choice", "values": []}, "values\n  List should have at least 1 item"),
        ({"gen": "choice", "values": ["a"], "weights": [1, 2]}, "weights has 2 items, values has 1"),
        ({"gen": "choice", "values": ["a"], "weights": ["x"]}, "weights.0\n  Input should be a valid number"),
        (
            {"gen": "choice", "values": ["a"], "weights": [-1]},
            "weights.0\n  Input should be greater than or equal to 0",
        ),
        ({"gen": "choice", "values": ["a", "b"], "weights": [0, 0]}, "at least one must be positive"),
        ({"gen": "const"}, "value\n  Field required"),
        ({"gen": "now", "tz": "UTC"}, "tz\n  Extra inputs are not permitted"),
        ({"gen": "text", "length": -1}, "length\n  Input should be greater than or equal to 0"),
    ],
)
def test_the_model_refuses_bad_params(spec: dict[str, Any], match: str) -> None:
    """Bad params are refused by the scenario model, naming the key; build never sees them."""
    with pytest.raises(ValidationError, match=match):
        PARAM.validate_python(spec)
