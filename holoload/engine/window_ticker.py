"""The coordinator's windows: on a fixed grid, merge what workers sent, close, emit, judge the gates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from holoload.core.events import EventSink, WindowClosed
from holoload.core.stats.error_log import seen_events
from holoload.core.stats.window import NS_PER_S, Aggregator
from holoload.engine.chaos import FaultRunner
from holoload.engine.client_probe import ClientWatch
from holoload.engine.fleet import WorkerFleet
from holoload.engine.gate_board import GateBoard
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.merge import absorb_windows
from holoload.engine.run_state import RunState
from holoload.engine.watch import ClusterWatch
from holoload.engine.window_rows import encoded_histograms, window_rows


@dataclass
class WindowTicker:
    """Closes a window every `window_s` seconds; phase boundaries close one too (under `lock`).

    Args:
        window_s: the scenario's window.
        fleet: the workers; those not recording into `aggregator` hand over their windows.
        board: the gates, judged after every window.
        completed: operations started per workload by workers that flush (merged here).
    """

    window_s: float
    aggregator: Aggregator
    fleet: WorkerFleet
    board: GateBoard
    state: RunState
    client: ClientWatch
    book: LedgerBook
    pulses: Sequence[Pulse]
    names: Sequence[str]
    sink: EventSink
    clock: Callable[[], float] = time.time
    perf_ns: Callable[[], int] = time.perf_counter_ns
    chaos: FaultRunner | None = None
    watch: ClusterWatch | None = None
    completed: dict[str, int] = field(default_factory=dict)
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def run(self, scope: anyio.CancelScope) -> None:
        """Close a window every `window` seconds on a fixed grid: closing work never stretches windows.

        Cancels `scope` (the load) once the run was aborted.
        """
        step_ns = int(self.window_s * NS_PER_S)
        next_ns = self.perf_ns() + step_ns
        while True:
            due_ns = next_ns
            await anyio.sleep(max(0, next_ns - self.perf_ns()) / NS_PER_S)
            next_ns += step_ns
            if next_ns <= self.perf_ns():  # fell more than a window behind: skip ahead, never burst
                next_ns = self.perf_ns() + step_ns
            async with self.lock:
                await self.collect(complete=False)
                await self.close(due_ns)
            if self.state.aborted_by is not None:
                scope.cancel()
                return

    async def collect(self, *, complete: bool = True) -> None:
        """Merge the workers' windows into the aggregator, ledgers, pulses and counts.

        Args:
            complete: wait for every worker (phase start and end); else (the ticker) wait at
                most half a window and take a late worker's window at the next tick.
        """
        windows = await self.fleet.collect(None if complete else self.window_s / 2)
        if windows:
            for window, _ in windows:
                self.client.worker(window.worker, window.health)
            absorb_windows(
                windows,
                aggregator=self.aggregator,
                book=self.book,
                pulses=self.pulses,
                names=self.names,
                completed=self.completed,
                now_ns=self.perf_ns(),
            )
        if self.fleet.failed is not None:
            self.state.abort("workers", f"a worker was lost: {self.fleet.failed}", self.sink, self.clock)

    async def close(self, due_ns: int | None = None) -> None:
        """Close the open window (`due_ns`: the ticker's grid time, None at a phase boundary).

        In four steps with a yield to the event loop between them: the load runs on this loop,
        and one synchronous close (percentiles, HDR encoding, the sink's file writes, the
        gates) held up every arrival due meanwhile; the open-loop lag p99 at 2,000/s is set by
        as few as 20 arrivals a second. The window is swapped out and everything that depends
        on the moment of closing is read in the first step; the rest works on that window.
        """
        aggregator = self.aggregator
        now = self.perf_ns()
        tags = () if self.chaos is None else self.chaos.window_tags()
        window = aggregator.close_window(now, tags=tags)
        phase = self.state.current_phase
        elapsed = (now - aggregator.start_ns) / NS_PER_S
        late_s = None if due_ns is None else max(0, now - due_ns) / NS_PER_S
        for seen in seen_events(aggregator.errors, aggregator.start_ns, self.clock()):
            self.sink.emit(seen)
        await anyio.sleep(0)
        rows = window_rows(window, aggregator, phase)
        if aggregator.outages is not None:  # per-op p99 per window: the pre-fault level and its return
            for row in rows:
                if row.endpoint == "*":
                    aggregator.outages.window(f"{row.workload}.{row.op}", window.start_ns, now, row.p99_ms)
        await anyio.sleep(0)
        histograms = []
        for histogram in encoded_histograms(window):
            histograms.append(histogram)
            await anyio.sleep(0)
        signals = {} if self.watch is None else self.watch.signals()
        health, strain = self.client.close(window.index, window.seconds, late_s)
        index, seconds = window.index, window.seconds
        event = WindowClosed(
            self.clock(), phase, index, elapsed, seconds, rows, signals, tuple(histograms), health, strain
        )
        self.sink.emit(event)
        self.board.judge(now, window.start_ns)
