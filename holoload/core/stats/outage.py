"""Outage per fault episode: for each op, the longest stretch without a success across the episode.

An *episode* is one firing of a chaos action: from the start of its fire step to the end of its
heal step (faults that heal) or of its fire step (instant actions such as `failover`). For each
op, the episode's *outage* is the longest gap between two consecutive successes that overlaps the
episode: from the last success before the op stopped succeeding to the first success after it
came back. An op that never succeeded again is counted up to "now" (still open). The episode's
outage is its worst op's; `outage(NAME).min|p50|max` reads them over the episodes of the fault
named NAME (or of every fault of that action kind).

Each episode also notes, per op, the p99 of the last window closed before it began (the pre-fault
level) and the first window that starts after the episode ended with a p99 within
P99_TOLERANCE of that level: `p99_back_s` is from the episode's end to that window's end.

Pure: time is passed in (monotonic ns); the engine feeds success times and episode bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from holoload.core.gates.model import FIELD, GateFunction, Kind

NS_PER_S = 1_000_000_000
OUTAGE_FIELDS = frozenset({"min", "p50", "max"})
#: A window's p99 counts as back to the pre-fault level when at most this factor above it.
P99_TOLERANCE = 1.1


@dataclass
class Gap:
    """One op's worst gap in one episode: last success before, first success after (None: still open)."""

    from_ns: int
    to_ns: int | None

    def seconds(self, now_ns: int) -> float:
        return ((self.to_ns if self.to_ns is not None else now_ns) - self.from_ns) / NS_PER_S


@dataclass
class Episode:
    """One firing of a fault and the worst gap of each op across it."""

    fault: str
    kind: str
    index: int
    start_ns: int
    end_ns: int | None = None
    gaps: dict[str, Gap] = field(default_factory=dict)
    pre_p99_ms: dict[str, float] = field(default_factory=dict)  # per op: the last window's p99 before
    p99_back_ns: dict[str, int] = field(default_factory=dict)  # per op: end of the first window back at that level

    def outage_s(self, now_ns: int) -> float | None:
        """The worst op's outage, or None when no op was running."""
        return max((g.seconds(now_ns) for g in self.gaps.values()), default=None)


class OutageClock:
    """One op's success times, checked against the episodes still open for it (hot path: one test)."""

    __slots__ = ("op", "last_ok_ns", "pending")

    def __init__(self, op: str, start_ns: int, pending: list[Episode]) -> None:
        self.op = op
        self.last_ok_ns = start_ns
        self.pending = pending

    def success(self, done_ns: int) -> None:
        if self.pending:
            self._observe(self.last_ok_ns, done_ns)
        if done_ns > self.last_ok_ns:
            self.last_ok_ns = done_ns

    def _observe(self, prev_ns: int, done_ns: int) -> None:
        keep: list[Episode] = []
        for ep in self.pending:
            if done_ns >= ep.start_ns and (ep.end_ns is None or prev_ns <= ep.end_ns):
                gap = ep.gaps.get(self.op)
                if gap is None or gap.to_ns is None or done_ns - prev_ns > gap.to_ns - gap.from_ns:
                    ep.gaps[self.op] = Gap(prev_ns, done_ns)
            if ep.end_ns is None or done_ns <= ep.end_ns:
                keep.append(ep)  # a success after the episode ended closes it for this op
        self.pending[:] = keep

    def open_gap(self, ep: Episode) -> None:
        """At the start of an episode: until a success, the op is out from its last success."""
        ep.gaps.setdefault(self.op, Gap(min(self.last_ok_ns, ep.start_ns), None))


class OutageBook:
    """Episodes of every fault and one clock per op (`workload.op`)."""

    def __init__(self, origin_ns: int = 0, wall_origin_s: float = 0.0) -> None:
        self.origin_ns = origin_ns  # the run's time zero, for the seconds in `summary`
        self.wall_origin_s = wall_origin_s  # wall-clock time (epoch s) at origin_ns
        self.episodes: list[Episode] = []
        self._clocks: dict[str, OutageClock] = {}
        self._last_p99_ms: dict[str, float] = {}

    def window(self, op: str, start_ns: int, end_ns: int, p99_ms: float | None) -> None:
        """A closed window's p99 of one op (all endpoints), for the pre-fault level and its return."""
        if p99_ms is None:
            return
        self._last_p99_ms[op] = p99_ms
        for ep in self.episodes:
            if ep.end_ns is None or start_ns < ep.end_ns or op in ep.p99_back_ns:
                continue
            level = ep.pre_p99_ms.get(op)
            if level is not None and p99_ms <= level * P99_TOLERANCE:
                ep.p99_back_ns[op] = end_ns

    def clock(self, op: str, now_ns: int) -> OutageClock:
        """The op's clock, created on first use (it joins the episodes still running)."""
        found = self._clocks.get(op)
        if found is None:
            live = [ep for ep in self.episodes if ep.end_ns is None]
            found = self._clocks[op] = OutageClock(op, now_ns, live)
        return found

    def started(self, fault: str, kind: str, now_ns: int) -> Episode:
        """An episode of `fault` begins now."""
        index = 1 + sum(1 for ep in self.episodes if ep.fault == fault)
        ep = Episode(fault, kind, index, now_ns, pre_p99_ms=dict(self._last_p99_ms))
        self.episodes.append(ep)
        for clock in self._clocks.values():
            clock.pending.append(ep)
            clock.open_gap(ep)
        return ep

    @staticmethod
    def ended(ep: Episode, now_ns: int) -> None:
        ep.end_ns = now_ns

    def matching(self, name: str) -> list[Episode]:
        return [ep for ep in self.episodes if name in (ep.fault, ep.kind)]

    def stat_s(self, name: str, which: str, now_ns: int) -> float | None:
        """min, p50 or max of the episodes' outages of fault (or kind) `name`; None without any."""
        values = [v for ep in self.matching(name) if (v := ep.outage_s(now_ns)) is not None]
        if not values:
            return None
        if which == "min":
            return min(values)
        if which == "max":
            return max(values)
        return float(median(values))

    def summary(self, now_ns: int, name: str | None = None) -> list[dict[str, Any]]:
        """Per episode (of fault `name`, or all): when (s from the origin), its outage and every op's gap."""
        origin_ns = self.origin_ns
        out = []
        for ep in self.episodes if name is None else self.matching(name):
            worst = ep.outage_s(now_ns)
            gap = max(ep.gaps.values(), key=lambda g: g.seconds(now_ns), default=None)
            out.append(
                {
                    "fault": ep.fault,
                    "action": ep.kind,
                    "episode": ep.index,
                    "start_s": round((ep.start_ns - origin_ns) / NS_PER_S, 3),
                    "end_s": None if ep.end_ns is None else round((ep.end_ns - origin_ns) / NS_PER_S, 3),
                    "outage_s": None if worst is None else round(worst, 3),
                    # the worst op's gap on the wall clock (epoch s; to: None while still open)
                    "from_at": None if gap is None else self._wall(gap.from_ns),
                    "to_at": None if gap is None or gap.to_ns is None else self._wall(gap.to_ns),
                    "ops": {
                        op: {
                            "outage_s": round(g.seconds(now_ns), 3),
                            "from_s": round((g.from_ns - origin_ns) / NS_PER_S, 3),
                            "to_s": None if g.to_ns is None else round((g.to_ns - origin_ns) / NS_PER_S, 3),
                            "pre_p99_ms": ep.pre_p99_ms.get(op),
                            "p99_back_s": _back_s(ep, op),
                        }
                        for op, g in sorted(ep.gaps.items())
                    },
                }
            )
        return out

    def _wall(self, t_ns: int) -> float:
        return round(self.wall_origin_s + (t_ns - self.origin_ns) / NS_PER_S, 3)


def _back_s(ep: Episode, op: str) -> float | None:
    """Seconds from the episode's end until the op's p99 was back at its pre-fault level (None: not yet)."""
    back = ep.p99_back_ns.get(op)
    return None if back is None or ep.end_ns is None else round(max(0, back - ep.end_ns) / NS_PER_S, 3)


def _outage(ctx: object, name: str, keywords: Mapping[str, str]) -> float | None:
    chaos = getattr(ctx, "chaos", None)
    measure = getattr(chaos, "outage_s", None)
    return None if measure is None else measure(name, keywords[FIELD])


OUTAGE = GateFunction(
    "outage",
    Kind.DURATION,
    _outage,
    missing_reason="no episode of chaos fault '{op}' with an op running across it",
    fields=OUTAGE_FIELDS,
    names_fault=True,
    hint="outage(fault).min|p50|max",
)
