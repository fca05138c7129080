"""What a worker process sends its coordinator each window: encoded histograms and counters.

A worker never ships raw samples. Each histogram goes as its HDR bucket counts (hdrh's
bucket layout, see `recorder`), packed as little-endian int64 pairs and zlib-compressed, so
the coordinator's merge is a sum of counts and its percentiles equal those of one histogram
fed every worker's values. Success times for the no-success gap and recovery clocks go as
sorted, distinct milliseconds, which keeps a window's payload bounded by its length, not by
its rate.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass, field

from holoload.core.ledger.journal import Record
from holoload.core.outcome import ErrorClass
from holoload.core.stats.client_health import ProcessHealth
from holoload.core.stats.error_log import ErrorSample, MoreErrors
from holoload.core.stats.recorder import SparseHistogram
from holoload.core.stats.window import OpKey, OpStats

_HEADER = struct.Struct("<qqqqq")  # count, total_us, min_us, max_us, clamped
_EMPTY = b""


def encode_histogram(hist: SparseHistogram) -> bytes:
    """A histogram's bucket counts and summary, compressed (b"" when empty)."""
    if hist.count == 0:
        return _EMPTY
    pairs = array("q")
    for index, n in hist.counts.items():
        pairs.append(index)
        pairs.append(n)
    if pairs.itemsize != 8:  # pragma: no cover - array('q') is 8 bytes on every supported platform
        raise RuntimeError("array('q') is not 64-bit here")
    header = _HEADER.pack(hist.count, hist.total_us, hist.min_us, hist.max_us, hist.clamped)
    return zlib.compress(header + pairs.tobytes(), 1)


def decode_histogram(data: bytes) -> SparseHistogram:
    """The histogram `encode_histogram` packed.

    Raises:
        ValueError: the bytes are not an encoded histogram.
    """
    hist = SparseHistogram()
    if not data:
        return hist
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise ValueError(f"not an encoded histogram: {exc}") from exc
    if len(raw) < _HEADER.size or (len(raw) - _HEADER.size) % 16:
        raise ValueError(f"not an encoded histogram: {len(raw)} bytes")
    hist.count, hist.total_us, hist.min_us, hist.max_us, hist.clamped = _HEADER.unpack_from(raw)
    pairs = array("q")
    pairs.frombytes(raw[_HEADER.size :])
    hist.counts = dict(zip(pairs[0::2], pairs[1::2], strict=True))
    if sum(hist.counts.values()) != hist.count:
        raise ValueError("not an encoded histogram: bucket counts do not add up to its count")
    return hist


@dataclass(frozen=True, slots=True)
class WireStats:
    """One key's outcomes over one window of one worker, ready to pickle."""

    key: tuple[str, str, str, str]
    latency: bytes
    service: bytes
    lag: bytes
    counters: tuple[int, int, int, int, int]  # ok, rows, dropped, retries, early
    errors: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, key: OpKey, stats: OpStats) -> WireStats:
        return cls(
            (key.phase, key.workload, key.op, key.endpoint),
            encode_histogram(stats.latency),
            encode_histogram(stats.service),
            encode_histogram(stats.lag),
            (stats.ok, stats.rows, stats.dropped, stats.retries, stats.early),
            tuple((str(cls_), n) for cls_, n in stats.errors.items()),
        )

    def op_key(self) -> OpKey:
        return OpKey(*self.key)

    def stats(self) -> OpStats:
        """The decoded stats.

        Raises:
            ValueError: a histogram or error class does not decode.
        """
        ok, rows, dropped, retries, early = self.counters
        return OpStats(
            latency=decode_histogram(self.latency),
            service=decode_histogram(self.service),
            lag=decode_histogram(self.lag),
            ok=ok,
            rows=rows,
            errors={ErrorClass(name): n for name, n in self.errors},
            dropped=dropped,
            retries=retries,
            early=early,
        )

    @property
    def empty(self) -> bool:
        return not any(self.counters) and not self.errors and not self.latency and not self.lag


@dataclass(slots=True)
class WorkerWindow:
    """Everything one worker measured since its previous flush.

    Times are the worker's monotonic clock; the coordinator adds the offset it measured when
    the worker started (zero on one machine, where CLOCK_MONOTONIC is shared).

    Attributes:
        worker: the worker's slot (0-based).
        stats: per-key outcomes, keys with nothing recorded left out.
        successes: per (phase, name) gap clock, the sorted distinct milliseconds with a success.
        endpoint_successes: per endpoint name, the same (for recovery clocks).
        completed: operations started, per workload name (for `after_iterations` triggers).
        journal: ledger records per (table, id column, endpoint or None), see `journal`.
        errors / more_errors: error messages noted since the previous flush (`error_log`).
        health: the worker's loop lag, CPU time and late drops since its previous flush.
    """

    worker: int
    stats: list[WireStats] = field(default_factory=list)
    successes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    endpoint_successes: dict[str, list[int]] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    journal: dict[tuple[str, str, int | None], list[Record]] = field(default_factory=dict)
    errors: list[ErrorSample] = field(default_factory=list)
    more_errors: list[MoreErrors] = field(default_factory=list)
    health: ProcessHealth | None = None
