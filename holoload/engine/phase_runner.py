"""One phase on the workers: its windows, its chaos frame, where its time ends, what its drain cut."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio

from holoload.core.events import EventSink, PhaseChanged
from holoload.core.model.workload import Phase
from holoload.core.stats.window import NS_PER_S, Aggregator, OpKey
from holoload.engine.chaos import FaultRunner
from holoload.engine.fleet import WorkerFleet
from holoload.engine.phase_end import LoadEnded, cut_short_problem
from holoload.engine.phase_runs import writer_counts
from holoload.engine.run_state import RunState
from holoload.engine.window_ticker import WindowTicker


@dataclass
class PhaseRunner:
    """Runs phases on the fleet: a fleet of one in-process worker, or worker processes / Ray actors.

    Args:
        fleet: the started workers.
        ticker: the window ticker (phase boundaries close a window under its lock).
        names: endpoint names by index.
    """

    fleet: WorkerFleet
    ticker: WindowTicker
    state: RunState
    aggregator: Aggregator
    names: Sequence[str]
    sink: EventSink
    clock: Callable[[], float] = time.time
    perf_ns: Callable[[], int] = time.perf_counter_ns
    chaos: FaultRunner | None = None

    async def run(self, phase: Phase) -> None:
        """The phase's workers connect; its windows start; the load runs until its time is up or a stop.

        Its time ends where its load stopped (live gates judge no window after that), not when
        the workers' connections closed; its last operations belong to its own last window.
        """
        state, aggregator, fleet = self.state, self.aggregator, self.fleet
        state.current_phase = phase.name
        state.started.append(phase.name)
        detail = f"{len(phase.workloads)} workloads" + (f", {phase.duration:g}s" if phase.duration else "")
        self.sink.emit(PhaseChanged(self.clock(), phase.name, detail))
        ends: list[LoadEnded] = []
        finished = False
        try:
            await fleet.prepare(phase.name)
            async with self.ticker.lock:
                await self.ticker.collect()
                start = self.perf_ns()
                aggregator.close_window(start)  # connection set-up stays out of the phase's windows
            aggregator.phase_started(phase.name, start)
            if state.load_started_ns is None:
                state.load_started_ns = start
            for workload in phase.workloads:  # every key's gap clocks start with the phase
                for i, total in enumerate(writer_counts(workload, self.names)):
                    for op in workload.ops if total else ():
                        aggregator.recorder(OpKey(phase.name, workload.name, op.name, self.names[i]), start)
            end = state.stop.phase_end_ns = start + int(phase.duration * NS_PER_S) if phase.duration else None
            async with anyio.create_task_group() as frame:
                if self.chaos is not None:
                    frame.start_soon(self.chaos.run_frame, phase.name, phase.duration)
                ends = await fleet.run(start, end)
                frame.cancel_scope.cancel()
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                if not finished:
                    ends = await fleet.cancel()
                if self.chaos is not None:
                    await self.chaos.heal_frame(phase.name)
                async with self.ticker.lock:
                    await self.ticker.collect()
                    now = self.perf_ns()
                    ended = max((e.ended_ns for e in ends), default=now)
                    aggregator.phase_ended(phase.name, state.stop.clamp(min(ended, now)))
                    await self.ticker.close()  # the phase's last operations belong to its own last window
                state.ended.add(phase.name)
                state.stop.phase_end_ns = None
                if state.stopping or not finished:  # what the stop (its drain, or a stop at once) cut
                    state.stop_cut_short += sum(e.cut_short for e in ends)
                    state.stop_drain_s = max((e.drain_s for e in ends), default=state.stop_drain_s)
                problem = cut_short_problem(phase.name, ends, self.clock())
                if problem is not None:
                    self.sink.emit(problem)
