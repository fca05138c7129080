"""Where a load run is: the phase running, the phases started and ended, a stop asked, an abort."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from holoload.core.events import EventSink, RunProblem
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
    """

    current_phase: str = ""
    started: list[str] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    aborted_by: str | None = None
    stopping: bool = False
    stop: LoadStop = field(default_factory=LoadStop)

    def abort(self, by: str, why: str, sink: EventSink, clock: Callable[[], float]) -> None:
        """Abort the run (the first abort counts): the window ticker then cancels the load."""
        if self.aborted_by is None:
            self.aborted_by = by
            sink.emit(RunProblem(clock(), "aborted", why))
