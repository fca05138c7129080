"""Where a load run is: the phase running, the phases started and ended, a stop asked, an abort; the stop's report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from holoload.core.events import EventSink, RunProblem
from holoload.core.stats.window import NS_PER_S
from holoload.engine.phase_end import LoadStop


@dataclass
class RunState:
    """Shared by the coordinator's parts (phase runner, window ticker, gate board).

    Args:
        current_phase: the phase running (or the last one), "" before the first.
        started: phases started, in order.
        ended: phases whose load has ended (their final verdicts come at the end).
        aborted_by: what aborted the run (a gate's name, or "workers"); None while it runs on.
        stopping: a graceful stop was asked: no new phase starts.
        stop: when the running phase's load stops (its time runs out, or the stop request).
        load_started_ns: when the first phase's load started (None: no load yet).
        stop_cut_short: operations in flight that the drain cancelled after the stop request.
        stop_drain_s: the drain they were given (the longest of the phase's workloads).
    """

    current_phase: str = ""
    started: list[str] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    aborted_by: str | None = None
    stopping: bool = False
    stop: LoadStop = field(default_factory=LoadStop)
    load_started_ns: int | None = None
    stop_cut_short: int = 0
    stop_drain_s: float = 0.0

    def stopped_at_s(self) -> float | None:
        """How far into the load the stop was asked (None: no stop asked, or before the load)."""
        if self.stop.stop_ns is None or self.load_started_ns is None:
            return None
        return max(0.0, (self.stop.stop_ns - self.load_started_ns) / NS_PER_S)

    def abort(self, by: str, why: str, sink: EventSink, clock: Callable[[], float]) -> None:
        """Abort the run (the first abort counts): the window ticker then cancels the load."""
        if self.aborted_by is None:
            self.aborted_by = by
            sink.emit(RunProblem(clock(), "aborted", why))


def stop_report(by: str, *, at_s: float | None, cut_short: int | None, drain_s: float, at_once: str | None) -> str:
    """One line for `run.problems` saying how a run was stopped and what the stop cut.

    Args:
        by: who stopped it ("interrupted by SIGINT", "stopped by the caller").
        at_s: seconds into the load when the stop was asked (None: before the load started).
        cut_short: operations in flight the stop cancelled (None: not known, e.g. a canary).
        drain_s: how long operations in flight were given to finish.
        at_once: why it stopped at once ("a second SIGINT", "the 30s stop grace ran out"); None: it drained.

    Returns:
        e.g. "interrupted by SIGINT at 12.3s into the load; 4 operations in flight were
        cancelled after the 10s drain (counted as timeouts, their writes in doubt)".
    """
    when = "before the load started" if at_s is None else f"at {at_s:.1f}s into the load"
    parts = [f"{by} {when}"]
    if at_once:
        parts.append(f"stopped at once: {at_once}")
    if cut_short:
        after = "" if at_once else f" after the {drain_s:g}s drain"
        noun = "operation" if cut_short == 1 else "operations"
        verb = "was" if cut_short == 1 else "were"
        what = f"{cut_short} {noun} in flight {verb} cancelled{after}"
        parts.append(f"{what} (counted as timeouts, their writes in doubt)")
    elif cut_short == 0 and at_s is not None:
        parts.append("every operation in flight finished")
    return "; ".join(parts)
