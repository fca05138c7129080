"""The end of a phase's load: when it stopped, the bounded drain of what is still in flight, what it cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from holoload.core.events import RunProblem
from holoload.core.stats.window import NS_PER_S

if TYPE_CHECKING:
    from holoload.engine.workload_run import WorkloadRun

#: How often the drain guard looks for a stop request.
DRAIN_POLL_S = 0.1


@dataclass
class LoadStop:
    """When the running phase's load stops: its time runs out (`phase_end_ns`) or a stop was asked.

    After that point no operation starts, in-flight ones drain, and live gates judge no window
    that begins later (an empty drain window is not evidence about the load).
    """

    phase_end_ns: int | None = None
    stop_ns: int | None = None

    def request(self, now_ns: int) -> None:
        """A stop was asked now (the first request counts)."""
        if self.stop_ns is None:
            self.stop_ns = now_ns

    def point(self) -> int | None:
        """When the load stops or stopped (None: it runs on)."""
        ends = [t for t in (self.phase_end_ns, self.stop_ns) if t is not None]
        return min(ends) if ends else None

    def clamp(self, now_ns: int) -> int:
        """`now_ns`, or the stop point if that came earlier: where the phase's time ends."""
        stop = self.point()
        return now_ns if stop is None else min(now_ns, stop)

    def judged(self, window_start_ns: int) -> bool:
        """Whether a window that began at `window_start_ns` belongs to the load (live gates judge it)."""
        stop = self.point()
        return stop is None or window_start_ns < stop


@dataclass(frozen=True)
class LoadEnded:
    """How one worker's load of a phase ended.

    Args:
        ended_ns: when its load ended (the worker's clock until the fleet maps it onto ours),
            before its connections were closed.
        cut_short: operations the drain cancelled (counted as timeouts, writes in doubt).
        drain_s: the longest drain of its workloads.
    """

    ended_ns: int
    cut_short: int = 0
    drain_s: float = 0.0

    @classmethod
    def of(cls, runs: Sequence[WorkloadRun], ended_ns: int) -> LoadEnded:
        drain_s = max((run.plan.drain_s for run in runs), default=0.0)
        return cls(ended_ns, sum(run.cut_short for run in runs), drain_s)


async def drain_guard(run: WorkloadRun, scope: anyio.CancelScope) -> None:
    """Cancel `scope` `drain_s` after the phase's time is up or a stop was asked."""
    stop_seen: int | None = None
    drain_ns = int(run.plan.drain_s * NS_PER_S)
    perf_ns = run.plan.perf_ns
    while True:
        now = perf_ns()
        if stop_seen is None and run.stop_requested:
            stop_seen = now
        ends = [t for t in (run.phase_end_ns, stop_seen) if t is not None]
        if ends and now >= min(ends) + drain_ns:
            scope.cancel()
            return
        wait_s = DRAIN_POLL_S if not ends else (min(ends) + drain_ns - now) / NS_PER_S
        await anyio.sleep(min(DRAIN_POLL_S, max(0.0, wait_s)))


def cut_short_problem(phase: str, ends: Sequence[LoadEnded], ts: float) -> RunProblem | None:
    """A problem for the record when the drain cancelled operations of the phase (None: it cut none).

    Args:
        ends: how each worker's load of the phase ended.
    """
    cut = sum(end.cut_short for end in ends)
    if not cut:
        return None
    drain = max(end.drain_s for end in ends)
    return RunProblem(
        ts,
        "drain",
        f"phase {phase}: {cut} operations still running {drain:g}s after its load stopped were "
        "cancelled (counted as timeouts; their writes in doubt)",
    )
