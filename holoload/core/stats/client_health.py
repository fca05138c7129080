"""holoload's own health per window, and the rule that says the client, not the server, was the bottleneck.

Every process of a run (the coordinator and each worker) runs a loop-lag probe: it sleeps a
fixed interval and records how much longer the sleep took (`LagSamples`). With its CPU time
that makes a `ProcessHealth` per window. The coordinator adds how late its ticker closed the
window against the fixed grid and how many open-loop arrivals were dropped while the client
was behind its own schedule (not because every connection was busy on the server): a
`WindowHealth`.

`strain` says why one window shows a saturated client; `ClientHealthBook` keeps bounded run
totals and decides the `client.ok` verdict: the client was saturated when more than
`strained_fraction` of the judged windows (and at least `min_strained` of them) were strained.
The limits are in `ClientLimits`; docs/results.md ("client") gives the measurements behind them.

Late drops are evidence, not a criterion: when the server is saturated every writer is busy, and
an arrival due during a scheduler hiccup of the client is dropped late but would have been
dropped anyway. A client too slow to dispatch on time shows in its loop lag, which is judged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from holoload.core.gates.verdicts import Verdict
from holoload.core.stats.recorder import SparseHistogram

NS_PER_MS = 1_000_000
GATE_NAME = "client.ok"
GATE_KEY = "client_ok"  # gates.client_ok = "" disables the default gate; an expression replaces it
COORDINATOR = "coordinator"
#: A loop-lag probe sleeps this long between samples (40 a second; ~0.1 % of a CPU).
PROBE_INTERVAL_S = 0.025
#: An open-loop arrival dropped while its dispatcher was more than this behind the arrival's
#: intended time was dropped for the client's reasons: a dispatcher that keeps up wakes within
#: a millisecond or two of it, whatever the server does (it never waits on the server).
LATE_DROP_MS = 20.0
#: Below this CPU share in every window, a lagging client was waiting (other processes held the CPUs,
#: or a thread held the GIL), not busy with its own work.
STARVED_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """When a window counts as strained, and how many strained windows make a saturated client.

    The defaults come from runs on a 2-CPU machine shared with the servers and other test runs
    (load average 5-10): a healthy process driving load showed per-window loop-lag p99 of 12 ms
    (median) and 73 ms (worst of 38 windows), ticks late by 0.4 ms (median) and 35 ms (worst);
    a coordinator starved of CPU closed 4 of 69 windows more than half a window late while its
    windows still averaged their length (the grid catches up); a saturated client shows lags of
    hundreds of milliseconds or windows stretched for good (docs/results.md, "client").

    Attributes:
        lag_p99_ms: the loop-lag p99 of a process driving load above this strains the window.
        tick_late_fraction: the ticker closing the window later than this fraction of a window
            after its grid time strains it.
        strained_fraction: the client was saturated when more than this share of the judged
            windows were strained...
        min_strained: ...and at least this many (one slow window never fails a run).
        stretch: ...or when the ticked windows lasted, in all, more than this times their
            intended length (the ticker fell behind its grid for good: it skips ahead).
    """

    lag_p99_ms: float = 150.0
    tick_late_fraction: float = 0.5
    strained_fraction: float = 0.10
    min_strained: int = 3
    stretch: float = 1.10


def worker_name(slot: int) -> str:
    return f"worker {slot}"


class LagSamples:
    """A loop-lag probe's oversleeps (ns) since the last `take`; a few dozen per second."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: list[int] = []

    def record(self, oversleep_ns: int) -> None:
        self._values.append(max(0, oversleep_ns))

    def take(self) -> tuple[int, float | None, float | None]:
        """(count, p99 ms, max ms) of the samples so far, then start over (None, None: no sample)."""
        values, self._values = sorted(self._values), []
        if not values:
            return 0, None, None
        rank = max(0, -(-99 * len(values) // 100) - 1)  # nearest rank
        return len(values), values[rank] / NS_PER_MS, values[-1] / NS_PER_MS


@dataclass(frozen=True, slots=True)
class ProcessHealth:
    """One process over one window (a worker: since its previous flush).

    Attributes:
        lag_p99_ms / lag_max_ms: oversleep of its loop-lag probe (None: no sample).
        probes: how many probe sleeps ended in the window.
        cpu_s: CPU time the process used (user + system).
        wall_s: the span it measured them over.
        late_drops: open-loop arrivals it dropped while behind its own schedule.
        drives_load: it runs writers (a worker, or a coordinator without workers). Only such a
            process's loop lag strains a window: a coordinator that only merges windows shows
            its lateness in `WindowHealth.tick_late_s`.
    """

    lag_p99_ms: float | None
    lag_max_ms: float | None
    probes: int
    cpu_s: float
    wall_s: float
    late_drops: int = 0
    drives_load: bool = True

    @property
    def cpu_share(self) -> float | None:
        """CPU time over wall time: 1.0 is one core's worth, the most one event loop can use."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else None

    def merged(self, other: ProcessHealth) -> ProcessHealth:
        """Two consecutive spans as one (a late worker's window arrives with the next one)."""

        def worst(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else max(a, b)

        return ProcessHealth(
            worst(self.lag_p99_ms, other.lag_p99_ms),
            worst(self.lag_max_ms, other.lag_max_ms),
            self.probes + other.probes,
            self.cpu_s + other.cpu_s,
            self.wall_s + other.wall_s,
            self.late_drops + other.late_drops,
            self.drives_load or other.drives_load,
        )


@dataclass(frozen=True, slots=True)
class WindowHealth:
    """The client's health over one closed window.

    Attributes:
        index: the window's number.
        window_s: the configured window length.
        actual_s: how long the window really lasted.
        tick_late_s: how long after its grid time the ticker closed it (None: closed at a phase
            boundary, not by the ticker).
        processes: (name, health) of the coordinator and of every worker heard from.
    """

    index: int
    window_s: float
    actual_s: float
    tick_late_s: float | None
    processes: tuple[tuple[str, ProcessHealth], ...]

    @property
    def late_drops(self) -> int:
        return sum(p.late_drops for _, p in self.processes)


def strain(window: WindowHealth, limits: ClientLimits) -> tuple[tuple[str, str], ...]:
    """Why the client was the bottleneck in this window: (kind, text) pairs, empty when it kept up.

    Kinds: "tick" (the window closed late), "lag:<process>" (the event loop of a process that
    drives load fell behind). Late drops are not a kind: see the module docstring.
    """
    out: list[tuple[str, str]] = []
    late = window.tick_late_s
    if late is not None and late > limits.tick_late_fraction * window.window_s:
        out.append(("tick", f"window closed {late:.2f}s late ({late / window.window_s:.0%} of {window.window_s:g}s)"))
    for name, health in window.processes:
        if health.drives_load and health.lag_p99_ms is not None and health.lag_p99_ms > limits.lag_p99_ms:
            share = health.cpu_share
            cpu = "" if share is None else f" at {share:.0%} CPU"
            out.append((f"lag:{name}", f"{name} loop lag p99 {health.lag_p99_ms:.0f}ms{cpu}"))
    return tuple(out)


@dataclass
class _ProcessTotals:
    """One process's figures over the run (bounded: histograms of per-window values)."""

    lag_p99_us: SparseHistogram = field(default_factory=SparseHistogram)
    lag_max_ms: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    share_max: float = 0.0
    late_drops: int = 0

    def add(self, health: ProcessHealth) -> None:
        if health.lag_p99_ms is not None:
            self.lag_p99_us.record(int(health.lag_p99_ms * 1000))
        self.lag_max_ms = max(self.lag_max_ms, health.lag_max_ms or 0.0)
        self.cpu_s += health.cpu_s
        self.wall_s += health.wall_s
        self.share_max = max(self.share_max, health.cpu_share or 0.0)
        self.late_drops += health.late_drops

    def to_dict(self) -> dict[str, float | int | None]:
        p99 = self.lag_p99_us
        return {
            "windows": p99.count,
            "lag_p99_ms_median": (p99.percentile_us(50) or 0) / 1000 if p99.count else None,
            "lag_p99_ms_worst": p99.max_us / 1000 if p99.count else None,
            "lag_max_ms": self.lag_max_ms,
            "cpu_s": round(self.cpu_s, 3),
            "cpu_share_mean": self.cpu_s / self.wall_s if self.wall_s > 0 else None,
            "cpu_share_max": self.share_max,
            "late_drops": self.late_drops,
        }


class ClientHealthBook:
    """Run totals of the per-window health records and the `client.ok` verdict.

    Args:
        limits: when a window is strained and how many make a saturated client.
        enabled: whether `client.ok` is one of the run's gates (the figures are kept either way).
    """

    def __init__(self, limits: ClientLimits | None = None, *, enabled: bool = True) -> None:
        self.limits = limits or ClientLimits()
        self.enabled = enabled
        self.windows = 0
        self.window_s: float | None = None
        self.judged = 0
        self.strained = 0
        self.kinds: Counter[str] = Counter()
        self.first_reasons: dict[str, str] = {}
        self.ticks = 0
        self.tick_late_max_s = 0.0
        self.actual_s = 0.0
        self.ticked_actual_s = 0.0
        self.processes: dict[str, _ProcessTotals] = {}

    def add(self, window: WindowHealth) -> tuple[str, ...]:
        """Fold one window in; returns its strain reasons (texts), empty when the client kept up."""
        self.windows += 1
        self.window_s = window.window_s
        self.actual_s += window.actual_s
        if window.tick_late_s is not None:
            self.ticks += 1
            self.ticked_actual_s += window.actual_s
            self.tick_late_max_s = max(self.tick_late_max_s, window.tick_late_s)
        for name, health in window.processes:
            self.processes.setdefault(name, _ProcessTotals()).add(health)
        if window.tick_late_s is None and not any(h.probes for _, h in window.processes):
            return ()  # nothing measured (a sliver of a window at a phase boundary)
        self.judged += 1
        reasons = strain(window, self.limits)
        if reasons:
            self.strained += 1
        for kind, text in reasons:
            self.kinds[kind] += 1
            self.first_reasons.setdefault(kind, text)
        return tuple(text for _, text in reasons)

    @property
    def late_drops(self) -> int:
        return sum(p.late_drops for p in self.processes.values())

    @property
    def stretch(self) -> float | None:
        """The ticked windows' real length over the window setting's (None before a ticked window).

        Late closes alone do not stretch: the ticker keeps a fixed grid, so a window that closed late
        is followed by a shorter one. Only a ticker that fell a whole window behind skips ahead and
        loses time: then every window lasts longer than set.
        """
        if not self.ticks or not self.window_s:
            return None
        return self.ticked_actual_s / (self.ticks * self.window_s)

    @property
    def stretched(self) -> bool:
        stretch = self.stretch
        return stretch is not None and self.ticks >= self.limits.min_strained and stretch > self.limits.stretch

    @property
    def saturated(self) -> bool | None:
        """True when the client was the bottleneck; None before any window was judged."""
        if self.judged == 0:
            return None
        limits = self.limits
        many = self.strained >= limits.min_strained and self.strained > limits.strained_fraction * self.judged
        return many or self.stretched

    def explanation(self) -> str:
        """What strained the windows, most frequent first, with the first example of each; late drops."""
        parts = [f"{self.first_reasons[k]} ({n} windows)" for k, n in self.kinds.most_common(4)]
        if self.stretched and self.window_s is not None:
            mean_s, total_s = self.ticked_actual_s / self.ticks, self.ticked_actual_s
            parts.insert(
                0, f"windows of {self.window_s:g}s lasted {mean_s:.2f}s on average ({self.ticks} in {total_s:.0f}s)"
            )
        if parts and self.late_drops:
            parts.append(f"{self.late_drops} arrivals dropped while the client was behind schedule")
        busiest = max((p.share_max for p in self.processes.values()), default=0.0)
        if parts and busiest < STARVED_SHARE:  # lagging with CPU to spare: it waited for a CPU
            parts.append(
                f"no holoload process used more than {busiest:.0%} of a CPU in any window: "
                "it was waiting for a CPU (or the GIL), not busy with its own work"
            )
        return "; ".join(parts)

    def verdict(self) -> Verdict:
        """`client.ok`: fails when the client was saturated (its figures are not the server's), or measured nothing."""
        limits = self.limits
        expression = (
            f"holoload kept up: at most {limits.strained_fraction:.0%} of windows (or {limits.min_strained - 1}) "
            f"strained by loop lag p99 > {limits.lag_p99_ms:g}ms, a window closed > "
            f"{limits.tick_late_fraction:.0%} late; windows at most {limits.stretch:g}x their length in all"
        )
        threshold = f"<= {limits.strained_fraction:.0%}"
        saturated = self.saturated
        if saturated is None:
            return Verdict(GATE_NAME, expression, False, None, None, "no data", threshold, "no client health measured")
        share = self.strained / self.judged
        observed = f"{self.strained} of {self.judged} windows strained ({share:.1%})"
        if self.stretch is not None:
            observed += f", windows {self.stretch:.2f}x their length"
        if saturated:
            reason = f"client saturated, results not valid: {observed}: {self.explanation()}"
        else:
            reason = f"client kept up: {observed}"
        passed = not saturated
        return Verdict(GATE_NAME, expression, passed, share, limits.strained_fraction, observed, threshold, reason)

    def summary(self) -> dict[str, object]:
        """summary.json's `client` section."""
        limits = self.limits
        return {
            "gate": self.enabled,
            "ok": None if self.saturated is None else not self.saturated,
            "saturated": self.saturated,
            "windows": self.windows,
            "judged_windows": self.judged,
            "strained_windows": self.strained,
            "strained_by": dict(self.kinds),
            "reason": self.explanation() or None,
            "ticks": self.ticks,
            "tick_late_max_s": round(self.tick_late_max_s, 4),
            "window_s": self.window_s,
            "ticked_windows_s": round(self.ticked_actual_s, 3),
            "stretch": None if self.stretch is None else round(self.stretch, 4),
            "windows_s": round(self.actual_s, 3),
            "late_drops": self.late_drops,
            "processes": {name: totals.to_dict() for name, totals in self.processes.items()},
            "limits": {
                "lag_p99_ms": limits.lag_p99_ms,
                "tick_late_fraction": limits.tick_late_fraction,
                "stretch": limits.stretch,
                "strained_fraction": limits.strained_fraction,
                "min_strained": limits.min_strained,
            },
        }
