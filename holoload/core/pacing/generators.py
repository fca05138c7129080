"""Parameter generators for SQL operations: unique ids, uniform, Zipf, choices, text and time."""

from __future__ import annotations

import math
import random
import string
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import accumulate, chain
from typing import Any, TypeVar

from holoload.core.model.workload import (
    ChoiceParam,
    ConstParam,
    NowParam,
    Param,
    SeqParam,
    UniformFloatParam,
    UniformParam,
    ZipfParam,
)

__all__ = [
    "SeqAllocator",
    "build",
    "choice",
    "const",
    "now",
    "seq",
    "text",
    "uniform",
    "uniform_float",
    "zipf",
]

T = TypeVar("T")

# Every generator is a zero-argument callable built once per writer, so per-writer
# state lives in closures: a call costs one Python frame and no allocation beyond
# its result. Randomness always comes from the injected ``random.Random``, so a
# seeded writer replays the same parameters.


class SeqAllocator:
    """Hands out disjoint blocks of ids, so ``seq`` ids are unique across writers.

    One allocator serves every writer (and so every endpoint) of a process. It needs
    no lock: writers are tasks on one asyncio loop and ``take_block`` never awaits.
    For several worker processes, give each its own partition (``partition``): with
    ``parts`` processes, process ``index`` takes global blocks ``index``,
    ``index + parts``, ``index + 2 * parts``, ... of the same id space, so no two
    processes ever hand out the same id and ids stay dense as long as all progress.

    Args:
        start: the first id of block 0 of the shared id space.
        block: ids per block, >= 1. Larger blocks mean fewer hand-outs; a writer that
            stops leaves the unused rest of its block as a gap.
        parts: how many allocators share the id space, >= 1.
        index: which of them this is, 0 <= index < parts.

    Raises:
        ValueError: ``block`` or ``parts`` is below 1, or ``index`` is out of range.
    """

    __slots__ = ("_blocks_taken", "_next_start", "_step", "block", "index", "parts", "start")

    def __init__(self, start: int = 1, block: int = 1000, *, parts: int = 1, index: int = 0) -> None:
        if block < 1:
            raise ValueError(f"expected block >= 1, got {block}")
        if parts < 1:
            raise ValueError(f"expected parts >= 1, got {parts}")
        if not 0 <= index < parts:
            raise ValueError(f"expected index in 0..{parts - 1}, got {index}")
        self.start = start
        self.block = block
        self.parts = parts
        self.index = index
        self._next_start = start + index * block
        self._step = parts * block
        self._blocks_taken = 0

    @classmethod
    def partition(cls, start: int, parts: int, index: int, block: int = 1000) -> SeqAllocator:
        """The allocator of worker process ``index`` out of ``parts``.

        Args:
            start: the first id of the shared id space (the same in every process).
            parts: how many processes share it, >= 1.
            index: this process's number, 0 <= index < parts.
            block: ids per block, >= 1 (the same in every process).

        Returns:
            An allocator whose blocks never overlap those of the other partitions.

        Raises:
            ValueError: as for the constructor.
        """
        return cls(start, block, parts=parts, index=index)

    def take_block(self) -> range:
        """Hand out the next block of ids, never given out before.

        Returns:
            A range of ``block`` consecutive ids.
        """
        low = self._next_start
        self._next_start = low + self._step
        self._blocks_taken += 1
        return range(low, low + self.block)

    @property
    def blocks_taken(self) -> int:
        """How many blocks this allocator has handed out."""
        return self._blocks_taken

    @property
    def next_id(self) -> int:
        """High-water mark: every id handed out so far is below it (``start`` at first).

        Ids below it are not all used (writers hold partly used blocks, and other
        partitions own interleaved blocks); take the maximum over partitions for a
        bound on the whole id space.
        """
        if self._blocks_taken == 0:
            return self.start
        return self._next_start - self._step + self.block


def seq(allocator: SeqAllocator) -> Callable[[], int]:
    """Ids from ``allocator``, one block at a time.

    Args:
        allocator: the process-wide allocator shared with the other writers.

    Returns:
        A generator of increasing ids; it takes a new block only when the current one
        runs out (the first block is taken on the first call).
    """
    # iter(callable, sentinel) calls take_block lazily; take_block never returns None.
    return chain.from_iterable(iter(allocator.take_block, None)).__next__


def _below(rng: random.Random, span: int) -> Callable[[], int]:
    """Exactly uniform ints in ``[0, span)`` by rejection on random bits."""
    getrandbits = rng.getrandbits
    if span & (span - 1) == 0:  # a power of two: every bit pattern is in range
        bits = span.bit_length() - 1
        return lambda: getrandbits(bits)
    bits = span.bit_length()

    def draw() -> int:
        value = getrandbits(bits)
        while value >= span:  # accepted with probability > 1/2, so < 2 tries on average
            value = getrandbits(bits)
        return value

    return draw


def uniform(rng: random.Random, low: int, high: int) -> Callable[[], int]:
    """Uniform integers in ``[low, high]``, both ends included.

    Args:
        rng: the writer's random source.
        low: the smallest value.
        high: the largest value, >= low.

    Returns:
        The generator; exactly uniform whatever the span (no float rounding).

    Raises:
        ValueError: ``low > high``.
    """
    if low > high:
        raise ValueError(f"expected min <= max, got {low} > {high}")
    below = _below(rng, high - low + 1)
    if low == 0:
        return below
    return lambda: low + below()


def uniform_float(rng: random.Random, low: float, high: float) -> Callable[[], float]:
    """Uniform floats between ``low`` and ``high``.

    Args:
        rng: the writer's random source.
        low: the lower bound, finite.
        high: the upper bound, finite and >= low.

    Returns:
        The generator; values lie in ``[low, high)`` (``high`` only through rounding).

    Raises:
        ValueError: a bound is not finite or ``low > high``.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"expected finite bounds, got {low!r} and {high!r}")
    if low > high:
        raise ValueError(f"expected min <= max, got {low} > {high}")
    random_ = rng.random
    width = high - low
    return lambda: low + width * random_()


def zipf(rng: random.Random, n: int, s: float) -> Callable[[], int]:
    """Zipf-distributed integers in ``[1, n]``: ``P(k)`` proportional to ``1 / k**s``.

    Rejection-inversion sampling (Hörmann and Derflinger, 1996): O(1) memory and O(1)
    expected time per draw for any ``n``, about 1.02 uniform draws per value.

    Args:
        rng: the writer's random source.
        n: the number of distinct values, >= 1.
        s: the exponent, finite and > 0 (s = 1 is the classic Zipf law).

    Returns:
        The generator.

    Raises:
        ValueError: ``n < 1`` or ``s`` is not a finite positive number.
    """
    if n < 1:
        raise ValueError(f"expected n >= 1, got {n}")
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"expected a finite exponent s > 0, got {s!r}")
    if n == 1:
        return lambda: 1
    # The hat is h(x) = x**-s on [1/2, n + 1/2]; value k owns [k - 1/2, k + 1/2), whose
    # hat area is at least h(k) because h is convex. Draw x with density h by inverting
    # its integral H, round it to k, and accept if the uniform fell in the last h(k) of
    # k's area, which makes P(k) proportional to h(k). Value 1's area is cut to exactly
    # h(1) = 1 so it is always accepted. H(x) = (x**(1-s) - 1) / (1-s), i.e. log(x) at
    # s = 1; expm1/log1p keep it accurate as s approaches 1.
    q = 1.0 - s
    neg_s = -s
    x_max = n + 0.5
    exp, log, log1p = math.exp, math.log, math.log1p

    def h_integral(x: float) -> float:
        return log(x) if q == 0 else math.expm1(q * log(x)) / q

    def h_integral_inverse(u: float) -> float:
        if q == 0:
            return exp(u)
        t = q * u
        # Past the asymptote of H (only through rounding near x_max): the largest x.
        return exp(log1p(t) / q) if t > -1.0 else x_max

    u_low = h_integral(1.5) - 1.0
    u_span = h_integral(x_max) - u_low
    # k - x_k, with x_k the start of k's accepted part, grows with k (the paper's
    # squeeze), so x >= k - squeeze means accepted without evaluating H and h.
    squeeze = 2.0 - h_integral_inverse(h_integral(2.5) - 2.0**neg_s)
    random_ = rng.random

    def draw() -> int:
        while True:
            u = u_low + random_() * u_span
            x = h_integral_inverse(u)
            k = int(x + 0.5)
            if k < 1:
                k = 1
            elif k > n:
                k = n
            if k - x <= squeeze or u >= h_integral(k + 0.5) - k**neg_s:
                return k

    return draw


def choice(rng: random.Random, values: Sequence[T], weights: Sequence[float] | None = None) -> Callable[[], T]:
    """One of ``values``, uniformly or in proportion to ``weights``.

    Args:
        rng: the writer's random source.
        values: the candidates, at least one.
        weights: one finite weight >= 0 per value, at least one positive; None for
            equal weights.

    Returns:
        The generator; a zero-weight value is never returned.

    Raises:
        ValueError: no values, a weight count that differs from the value count, a
            negative or non-finite weight, or all weights zero.
    """
    items = tuple(values)
    if not items:
        raise ValueError("expected at least one value")
    if weights is None:
        if len(items) == 1:
            only = items[0]
            return lambda: only
        index = _below(rng, len(items))
        return lambda: items[index()]
    if len(weights) != len(items):
        raise ValueError(f"expected one weight per value: {len(weights)} weights, {len(items)} values")
    for weight in weights:
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"expected weights to be finite numbers >= 0, got {weight!r}")
    cumulative = list(accumulate(float(weight) for weight in weights))
    total = cumulative[-1]
    if total <= 0:
        raise ValueError("expected at least one positive weight")
    random_ = rng.random
    last = len(items) - 1
    # bisect_right skips zero-weight entries (equal cumulative sums); ``hi=last`` keeps
    # a product that rounds up to ``total`` inside the list.
    return lambda: items[bisect_right(cumulative, random_() * total, 0, last)]


def const(value: T) -> Callable[[], T]:
    """Always ``value``.

    Args:
        value: what every call returns (the same object, so keep it immutable).

    Returns:
        The generator.
    """
    return lambda: value


def now(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """The current time, as the injected clock tells it.

    Args:
        clock: returns the current time (a timezone-aware UTC clock in production, a
            fake in tests).

    Returns:
        The generator.
    """
    return clock


_LETTERS = (string.ascii_letters).encode("ascii")
# Bytes below 4 * 52 map evenly onto the letters; higher bytes are dropped and redrawn
# so every letter is exactly equally likely.
_LETTER_BYTES_END = 4 * len(_LETTERS)
_LETTER_TABLE = bytes(_LETTERS[b % len(_LETTERS)] for b in range(256))
_SURPLUS_BYTES = bytes(range(_LETTER_BYTES_END, 256))


def text(rng: random.Random, length: int) -> Callable[[], str]:
    """Random ASCII letters (a-z, A-Z) of a fixed length, for payload columns.

    Args:
        rng: the writer's random source.
        length: characters per value, >= 0.

    Returns:
        The generator.

    Raises:
        ValueError: ``length`` is negative.
    """
    if length < 0:
        raise ValueError(f"expected length >= 0, got {length}")
    if length == 0:
        return lambda: ""
    getrandbits = rng.getrandbits
    # About 19% of bytes are surplus, so one batch is nearly always enough.
    batch = length + length // 4 + 8
    batch_bits = 8 * batch

    def draw() -> str:
        letters = getrandbits(batch_bits).to_bytes(batch, "little").translate(_LETTER_TABLE, _SURPLUS_BYTES)
        while len(letters) < length:
            more = getrandbits(batch_bits).to_bytes(batch, "little")
            letters += more.translate(_LETTER_TABLE, _SURPLUS_BYTES)
        return letters[:length].decode("ascii")

    return draw


def build(
    param: Param,
    *,
    rng: random.Random,
    seq_allocator: SeqAllocator,
    clock: Callable[[], datetime],
) -> Callable[[], Any]:
    """Build one writer's generator from a parameter of the scenario model.

    The model has already checked every value (ranges, finite numbers, weights), so this only
    picks the generator: ``{ gen = "uniform", min = 1, max = 100000 }`` in a scenario file is a
    ``UniformParam`` here and ``uniform(rng, 1, 100000)`` when built.

    Args:
        param: the validated parameter (`holoload.core.model.workload.Param`).
        rng: this writer's random source.
        seq_allocator: the process-wide allocator for ``seq``; a param's ``start`` must match
            the allocator's.
        clock: the wall clock for ``now``.

    Returns:
        A zero-argument generator.

    Raises:
        ValueError: a ``seq`` param whose ``start`` differs from the allocator's.
    """
    if isinstance(param, SeqParam):
        if param.start != seq_allocator.start:
            raise ValueError(f"seq start {param.start} differs from the allocator's start {seq_allocator.start}")
        return seq(seq_allocator)
    if isinstance(param, UniformParam):
        return uniform(rng, param.min, param.max)
    if isinstance(param, UniformFloatParam):
        return uniform_float(rng, param.min, param.max)
    if isinstance(param, ZipfParam):
        return zipf(rng, param.n, param.s)
    if isinstance(param, ChoiceParam):
        return choice(rng, param.values, param.weights)
    if isinstance(param, ConstParam):
        return const(param.value)
    if isinstance(param, NowParam):
        return now(clock)
    return text(rng, param.length)
