"""Streaming aggregation: workers record into per-key recorders; windows close into stats.

Workers never allocate per operation beyond a histogram bucket increment: each
(workload, op, endpoint) key has one `OpRecorder` for the open window. `Aggregator.close_window`
swaps every recorder's contents out, folds them into per-phase totals, keeps the last few
windows for windowed gates, and returns the closed window. A window closed with tags (the
chaos faults active during it) is also folded into per-tag totals. Memory is bounded by the
number of keys, tags and the ring length, never by the run's length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from holoload.core.outcome import ErrorClass
from holoload.core.stats.error_log import ErrorLog
from holoload.core.stats.outage import OutageBook
from holoload.core.stats.recorder import SparseHistogram

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class OpKey:
    """What a recorder is for: an op of a workload on one endpoint."""

    phase: str
    workload: str
    op: str
    endpoint: str

    def matches(self, selector: str) -> bool:
        """`workload`, `op` or `workload.op` select this key."""
        return selector in (self.workload, self.op, f"{self.workload}.{self.op}")


class SuccessClock(Protocol):
    """Anything fed the completion time of every success of a key (gap clocks, outage clocks)."""

    def success(self, done_ns: int) -> None: ...


class GapTracker:
    """Longest stretch without a success, for one workload.op across endpoints."""

    __slots__ = ("last_ok_ns", "max_gap_ns")

    def __init__(self, start_ns: int) -> None:
        self.last_ok_ns = start_ns
        self.max_gap_ns = 0

    def success(self, done_ns: int) -> None:
        gap = done_ns - self.last_ok_ns
        if gap > self.max_gap_ns:
            self.max_gap_ns = gap
        if done_ns > self.last_ok_ns:
            self.last_ok_ns = done_ns

    def gap_ns(self, now_ns: int) -> int:
        """The longest gap so far, counting the one still open at `now_ns`."""
        return max(self.max_gap_ns, now_ns - self.last_ok_ns)


class SuccessLog(GapTracker):
    """A worker process's stand-in for a GapTracker: it notes the milliseconds with a success.

    Gaps cannot be merged across processes from each one's longest gap, so a worker ships
    these (see `wire.WorkerWindow`) and its coordinator feeds them, merged, to real trackers.
    """

    __slots__ = ("_ms",)

    def __init__(self, start_ns: int) -> None:
        super().__init__(start_ns)
        self._ms: set[int] = set()

    def success(self, done_ns: int) -> None:
        self._ms.add(done_ns // 1_000_000)

    def drain(self) -> list[int]:
        """Sorted milliseconds with a success since the last drain."""
        out = sorted(self._ms)
        self._ms.clear()
        return out


@dataclass(slots=True)
class OpStats:
    """Outcomes of one key over some span (a window, a phase)."""

    latency: SparseHistogram = field(default_factory=SparseHistogram)
    service: SparseHistogram = field(default_factory=SparseHistogram)
    lag: SparseHistogram = field(default_factory=SparseHistogram)
    ok: int = 0
    rows: int = 0
    errors: dict[ErrorClass, int] = field(default_factory=dict)
    dropped: int = 0
    retries: int = 0
    early: int = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: OpStats) -> None:
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.lag.merge(other.lag)
        self.ok += other.ok
        self.rows += other.rows
        for cls, n in other.errors.items():
            self.errors[cls] = self.errors.get(cls, 0) + n
        self.dropped += other.dropped
        self.retries += other.retries
        self.early += other.early

    def subtract(self, other: OpStats) -> None:
        """Take away what `merge(other)` added; min/max are then set by `set_bounds`."""
        self.latency.subtract(other.latency)
        self.service.subtract(other.service)
        self.lag.subtract(other.lag)
        self.ok -= other.ok
        self.rows -= other.rows
        for cls, n in other.errors.items():
            left = self.errors.get(cls, 0) - n
            if left:
                self.errors[cls] = left
            else:
                self.errors.pop(cls, None)
        self.dropped -= other.dropped
        self.retries -= other.retries
        self.early -= other.early

    def set_bounds(self, parts: Collection[OpStats]) -> None:
        self.latency.set_bounds([p.latency for p in parts])
        self.service.set_bounds([p.service for p in parts])
        self.lag.set_bounds([p.lag for p in parts])

    def copy(self) -> OpStats:
        return OpStats(
            self.latency.copy(),
            self.service.copy(),
            self.lag.copy(),
            self.ok,
            self.rows,
            dict(self.errors),
            self.dropped,
            self.retries,
            self.early,
        )


class OpRecorder:
    """Where workers record one key's outcomes during the open window (the hot path)."""

    __slots__ = ("key", "stats", "gaps")

    def __init__(self, key: OpKey, gaps: tuple[SuccessClock, ...]) -> None:
        self.key = key
        self.stats = OpStats()
        self.gaps = gaps

    def success(self, intended_ns: int, sent_ns: int, done_ns: int, rows: int = 1, *, service: bool = True) -> None:
        """A completed operation: latency from the intended start, service time from the send.

        `service=False` (closed loop without retries) skips the second record: the service
        time then equals the latency, which readers fall back to.
        """
        stats = self.stats
        stats.latency.record((done_ns - intended_ns) // 1000)
        if service:
            stats.service.record((done_ns - sent_ns) // 1000)
        stats.ok += 1
        stats.rows += rows
        for gap in self.gaps:
            gap.success(done_ns)

    def schedule_lag(self, intended_ns: int, sent_ns: int) -> None:
        """Open loop: how late an operation started against its intended time (early: counted)."""
        if sent_ns < intended_ns:
            self.stats.early += 1
            self.stats.lag.record(0)
        else:
            self.stats.lag.record((sent_ns - intended_ns) // 1000)

    def failure(self, error_class: ErrorClass) -> None:
        errors = self.stats.errors
        errors[error_class] = errors.get(error_class, 0) + 1

    def retry(self) -> None:
        self.stats.retries += 1

    def drop(self) -> None:
        """An operation that could not start (max_inflight reached): counted, never hidden."""
        self.stats.dropped += 1

    def swap(self) -> OpStats:
        stats, self.stats = self.stats, OpStats()
        return stats


class _SlidingSum:
    """The running merge of one windowed query's picked stats, kept across calls.

    Windows enter and leave one at a time as the ring moves, so adding the new window's stats
    and subtracting the evicted one's costs one window's buckets, not the whole span's (a
    `p99(x, window=1m)` gate at 1 s windows otherwise re-merges 60 windows every second).
    """

    __slots__ = ("parts", "total")

    def __init__(self) -> None:
        self.parts: dict[int, list[OpStats]] = {}  # window index -> the stats picked from it
        self.total = OpStats()

    def update(self, picked: dict[int, list[OpStats]]) -> OpStats | None:
        gone = [i for i in self.parts if i not in picked]
        new = [i for i in picked if i not in self.parts]
        if len(gone) + len(new) > len(picked):  # cheaper (or first time): rebuild
            self.parts, self.total = {}, OpStats()
            gone, new = [], list(picked)
        for i in gone:
            for s in self.parts.pop(i):
                self.total.subtract(s)
        for i in new:
            self.parts[i] = picked[i]
            for s in picked[i]:
                self.total.merge(s)
        everything = [s for group in self.parts.values() for s in group]
        if not everything:
            return None
        self.total.set_bounds(everything)
        return self.total.copy()


@dataclass(frozen=True, slots=True)
class Window:
    """One closed window: per-key stats between `start_ns` and `end_ns` (monotonic), and its tags."""

    index: int
    start_ns: int
    end_ns: int
    stats: dict[OpKey, OpStats]
    tags: frozenset[str] = frozenset()

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


class Aggregator:
    """Owns the recorders, closes windows, keeps per-phase totals and a ring of recent windows.

    `tagged[tag][key]` is the merge of every window of `key` closed with `tag` (see `close_window`).

    Args:
        start_ns: monotonic start of the run.
        ring_s: how much recent history windowed gates may ask for.
        window_s: the window length (for sizing the ring).
        success_logs: a worker process's aggregator: gap clocks are `SuccessLog`s, and each
            endpoint gets one too (see `endpoint_logs`), for the coordinator to merge.
    """

    def __init__(
        self,
        start_ns: int,
        *,
        window_s: float = 1.0,
        ring_s: float = 300.0,
        success_logs: bool = False,
    ) -> None:
        self.start_ns = start_ns
        self._recorders: dict[OpKey, OpRecorder] = {}
        self._gaps: dict[tuple[str, str], GapTracker] = {}
        self._gap_class: type[GapTracker] = SuccessLog if success_logs else GapTracker
        self.endpoint_logs: dict[str, SuccessLog] | None = {} if success_logs else None
        self.totals: dict[OpKey, OpStats] = {}
        self.tagged: dict[str, dict[OpKey, OpStats]] = {}
        self.recent_windows: deque[Window] = deque(maxlen=max(2, int(ring_s / window_s) + 1))
        self._window_start_ns = start_ns
        self._index = 0
        self.phase_spans: dict[str, tuple[int, int | None]] = {}
        self.outages: OutageBook | None = None  # set by a chaos run before its first phase
        self.errors = ErrorLog()  # the first distinct error messages per key, for people (never gates)
        self._sliding: dict[tuple[str, float, frozenset[str] | None], _SlidingSum] = {}

    def recorder(self, key: OpKey, now_ns: int) -> OpRecorder:
        """The recorder for a key, created on first use."""
        rec = self._recorders.get(key)
        if rec is None:
            gaps: tuple[SuccessClock, ...] = (
                self._gap(key.phase, f"{key.workload}.{key.op}", now_ns),
                self._gap(key.phase, key.workload, now_ns),
            )
            if self.endpoint_logs is not None:
                log = self.endpoint_logs.setdefault(key.endpoint, SuccessLog(now_ns))
                gaps += (log,)
            if self.outages is not None:  # a chaos run: outages per fault episode
                gaps += (self.outages.clock(f"{key.workload}.{key.op}", now_ns),)
            rec = self._recorders[key] = OpRecorder(key, gaps)
            self.totals.setdefault(key, OpStats())
        return rec

    def _gap(self, phase: str, name: str, now_ns: int) -> GapTracker:
        tracker = self._gaps.get((phase, name))
        if tracker is None:
            tracker = self._gaps[(phase, name)] = self._gap_class(now_ns)
        return tracker

    def absorb(self, key: OpKey, stats: OpStats, now_ns: int) -> None:
        """Add stats measured elsewhere (a worker process) to the open window of `key`."""
        self.recorder(key, now_ns).stats.merge(stats)

    def absorb_successes(self, phase: str, name: str, times_ns: Iterable[int]) -> None:
        """Feed success times measured elsewhere, in ascending order, to a gap clock."""
        tracker = self._gaps.get((phase, name))
        if tracker is None:
            return  # the coordinator creates every clock when its phase starts
        outage = self.outages.clock(name, self.start_ns) if self.outages is not None and "." in name else None
        for t in times_ns:
            tracker.success(t)
            if outage is not None:
                outage.success(t)

    def success_logs(self) -> Iterator[tuple[tuple[str, str], SuccessLog]]:
        """A worker's gap clocks (empty unless made with success_logs)."""
        for key, tracker in self._gaps.items():
            if isinstance(tracker, SuccessLog):
                yield key, tracker

    def phase_started(self, phase: str, now_ns: int) -> None:
        self.phase_spans[phase] = (now_ns, None)

    def phase_ended(self, phase: str, now_ns: int) -> None:
        start, _ = self.phase_spans.get(phase, (now_ns, None))
        self.phase_spans[phase] = (start, now_ns)
        for (p, _name), tracker in self._gaps.items():
            if p == phase:  # freeze: the time after the phase is not a gap of it
                tracker.max_gap_ns = tracker.gap_ns(now_ns)
                tracker.last_ok_ns = now_ns

    def close_window(self, now_ns: int, tags: Collection[str] = ()) -> Window:
        """Swap every recorder out and fold the window into the totals.

        Args:
            now_ns: monotonic end of the window (the start of the next one).
            tags: labels of the window, such as the names and action kinds of the chaos faults
                active at any time during it; its stats are also folded into each tag's totals.

        Returns:
            The closed window.
        """
        stats: dict[OpKey, OpStats] = {}
        tagged = [self.tagged.setdefault(tag, {}) for tag in dict.fromkeys(tags)]
        for key, rec in self._recorders.items():
            window_stats = rec.swap()
            stats[key] = window_stats
            self.totals[key].merge(window_stats)
            for per_key in tagged:
                per_key.setdefault(key, OpStats()).merge(window_stats)
        window = Window(self._index, self._window_start_ns, now_ns, stats, frozenset(tags))
        self._index += 1
        self._window_start_ns = now_ns
        self.recent_windows.append(window)
        return window

    def keys(self, selector: str, phases: Iterable[str] | None = None) -> list[OpKey]:
        wanted = None if phases is None else set(phases)
        return [k for k in self.totals if k.matches(selector) and (wanted is None or k.phase in wanted)]

    def total(self, selector: str, phases: Iterable[str] | None = None) -> OpStats | None:
        """Merged totals of the keys a selector picks, or None when it picks none."""
        keys = self.keys(selector, phases)
        return _merge(self.totals[k] for k in keys) if keys else None

    def tagged_total(self, selector: str, tag: str, phases: Iterable[str] | None = None) -> OpStats | None:
        """Merged stats of the keys a selector picks over every window closed with `tag`.

        Args:
            selector: `workload`, `op` or `workload.op`.
            tag: a tag given to `close_window`, such as a fault name or "split".
            phases: phase names whose keys count (None: every phase).

        Returns:
            The merged stats, or None when the tag never occurred or the selector picks no key of
            the wanted phases in its windows (gates then report "no data" rather than a zero).
        """
        per_key = self.tagged.get(tag)
        if per_key is None:
            return None
        wanted = None if phases is None else set(phases)
        picked = [s for k, s in per_key.items() if k.matches(selector) and (wanted is None or k.phase in wanted)]
        return _merge(picked) if picked else None

    def recent(
        self, selector: str, seconds: float, phases: Iterable[str] | None = None
    ) -> tuple[OpStats | None, float]:
        """Merged stats of the last `seconds` of closed windows, and the seconds they cover.

        Only windows in which the wanted phases ran count as covered (not connection set-up or
        other phases); the stats are None when the selector matched nothing in them.
        """
        wanted = None if phases is None else frozenset(phases)
        picked: dict[int, list[OpStats]] = {}
        covered = 0.0
        for window in reversed(self.recent_windows):
            if covered >= seconds - 1e-9:
                break
            if wanted is not None and not any(self._ran_during(p, window) for p in wanted):
                continue  # the phase did not run in this window (set-up, other phases, after its end)
            covered += window.seconds
            hits = [s for k, s in window.stats.items() if (wanted is None or k.phase in wanted) and k.matches(selector)]
            if hits:
                picked[window.index] = hits
        sliding = self._sliding.setdefault((selector, seconds, wanted), _SlidingSum())
        return sliding.update(picked), covered

    def recent_total(self, selector: str, seconds: float, phases: Iterable[str] | None = None) -> OpStats | None:
        """Merged stats of the last `seconds` of closed windows (None: nothing matched)."""
        return self.recent(selector, seconds, phases)[0]

    def _ran_during(self, phase: str, window: Window) -> bool:
        span = self.phase_spans.get(phase)
        if span is None:  # never marked started: judge by what the window holds
            return any(k.phase == phase for k in window.stats)
        start, end = span
        return start < window.end_ns and (end is None or end > window.start_ns)

    def max_gap_ns(self, selector: str, now_ns: int, phases: Iterable[str] | None = None) -> int | None:
        wanted = None if phases is None else set(phases)
        gaps = [
            t.gap_ns(now_ns) if self.phase_spans.get(p, (0, None))[1] is None else t.max_gap_ns
            for (p, name), t in self._gaps.items()
            if (wanted is None or p in wanted) and _gap_matches(name, selector)
        ]
        return max(gaps) if gaps else None

    def elapsed_s(self, phases: Iterable[str] | None, now_ns: int) -> float:
        """Time spent in the given phases (or since the start), for rates."""
        if phases is None:
            return (now_ns - self.start_ns) / NS_PER_S
        total = 0
        for p in phases:
            start, end = self.phase_spans.get(p, (now_ns, now_ns))
            total += (end if end is not None else now_ns) - start
        return total / NS_PER_S

    def iter_recorders(self) -> Iterator[OpRecorder]:
        return iter(self._recorders.values())


def _gap_matches(name: str, selector: str) -> bool:
    return name == selector or name.endswith(f".{selector}")


def _merge(stats: Iterable[OpStats]) -> OpStats:
    out = OpStats()
    for s in stats:
        out.merge(s)
    return out
