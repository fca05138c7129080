"""One worker process's engine: its share of every phase's load, flushed to the coordinator.

A `WorkerEngine` holds no gates, chaos, samplers or checker: the coordinator (`load.LoadEngine`)
keeps those and sees merged numbers. The same class runs in a local worker process
(`worker_main`) and as a Ray actor (`adapters.ray_workers`); its methods are the whole protocol.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import anyio

from holoload.adapters.pool import Writer, close_writers, open_writers
from holoload.core.journal import JournalLedger
from holoload.core.outcome import ErrorRules
from holoload.core.scenario import Scenario
from holoload.core.window import Aggregator
from holoload.core.wire import WireStats, WorkerWindow
from holoload.engine.client_probe import LoopProbe
from holoload.engine.executors import WorkloadRun, run_closed_loop, run_open_loop
from holoload.engine.ledgers import LedgerBook
from holoload.engine.phase_runs import RunBuilder


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to run its share.

    Args:
        scenario: the validated scenario.
        names: endpoint names by index.
        dsns: where writers connect, by endpoint (fault proxies included).
        rules: the target's error-classification rules.
        shared: every endpoint sees the same data (ledger layout, see `LedgerBook`).
        index: the worker's slot, 0 <= index < count; writer slot s is worker s % count's.
        count: how many worker slots split the load.
        seq_index / seq_parts: this worker's partition of the seq id space (a restarted
            worker gets a partition of its own, never one a dead worker used).
    """

    scenario: Scenario
    names: tuple[str, ...]
    dsns: tuple[str, ...]
    rules: ErrorRules | None
    shared: bool
    index: int
    count: int
    seq_index: int
    seq_parts: int


class WorkerEngine:
    """Runs phases when told, records into its own recorders, hands them over on `flush`."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.aggregator = Aggregator(time.perf_counter_ns(), window_s=1.0, ring_s=0.0, success_logs=True)
        self.book = LedgerBook(shared=spec.shared, factory=JournalLedger)
        self.builder = RunBuilder(
            spec.names,
            spec.dsns,
            spec.scenario.run,
            spec.rules,
            self.aggregator,
            self.book,
            share=(spec.index, spec.count),
            seq_part=(spec.seq_index, spec.seq_parts),
        )
        self._runs: list[WorkloadRun] = []
        self._writers: list[Writer] = []
        self._every_run: list[WorkloadRun] = []
        self._sent: dict[str, int] = {}
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self.probe = LoopProbe(lambda: sum(r.late_drops for r in self._every_run))

    async def hello(self) -> dict[str, object]:
        """Who and where the worker is, and its monotonic clock now (for the clock offset)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "now_ns": time.perf_counter_ns()}

    async def prepare(self, phase_name: str) -> None:
        """Build this worker's share of a phase and connect its writers.

        Raises:
            SetupError: a writer could not connect.
            KeyError: no phase of that name.
        """
        phase = next(p for p in self.spec.scenario.phases if p.name == phase_name)
        self._runs, self._writers = self.builder.build(phase, stopping=self._stopping)
        self._every_run += self._runs
        await open_writers(self._writers)

    async def run(self, start_ns: int, end_ns: int | None, resume_ns: int | None = None) -> int:
        """Run the prepared phase from `start_ns` (this worker's clock) until `end_ns` or a stop.

        Args:
            start_ns: the phase's start: schedules and ramps count from it.
            end_ns: when its duration runs out (None: when its workloads finish).
            resume_ns: a restarted worker: open-loop arrivals intended before this are skipped.

        Returns:
            When its load ended (this worker's clock), before its connections were closed.
        """
        runs = self._runs
        for run in runs:
            run.start_at_ns = start_ns
            run.phase_end_ns = end_ns
            run.skip_before_ns = resume_ns
        try:
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as probing:
                    probing.start_soon(self.probe.run)  # its loop lag, while it has load to drive
                    async with anyio.create_task_group() as tg:
                        for run in runs:
                            tg.start_soon(run_open_loop if run.workload.open_loop else run_closed_loop, run)
                    probing.cancel_scope.cancel()
            return time.perf_counter_ns()
        finally:
            self._scope = None
            await close_writers(self._writers)

    async def stop(self) -> None:
        """Graceful stop: no new operations; the running phase ends once in-flight ones finish."""
        self._stopping = True
        for run in self._runs:
            run.stop_requested = True

    async def cancel(self) -> None:
        """Abandon the running phase at once (the coordinator aborted the run)."""
        await self.stop()
        if self._scope is not None:
            self._scope.cancel()

    async def flush(self) -> WorkerWindow:
        """Everything recorded since the last flush, encoded."""
        window = WorkerWindow(self.spec.index, health=self.probe.take())
        for rec in self.aggregator.iter_recorders():
            stats = rec.swap()
            wire = WireStats.of(rec.key, stats)
            if not wire.empty:
                window.stats.append(wire)
        for key, log in self.aggregator.success_logs():
            ms = log.drain()
            if ms:
                window.successes[key] = ms
        for name, log in (self.aggregator.endpoint_logs or {}).items():
            ms = log.drain()
            if ms:
                window.endpoint_successes[name] = ms
        completed: dict[str, int] = {}
        for run in self._every_run:
            completed[run.workload.name] = completed.get(run.workload.name, 0) + run.completed
        for name, total in completed.items():
            delta = total - self._sent.get(name, 0)
            if delta:
                window.completed[name] = delta
                self._sent[name] = total
        window.errors, window.more_errors = self.aggregator.errors.drain()
        for entry in self.book.entries():
            if isinstance(entry.ledger, JournalLedger):
                records = entry.ledger.drain()
                if records:
                    window.journal[(entry.table, entry.id_column, entry.endpoint)] = records
        return window
