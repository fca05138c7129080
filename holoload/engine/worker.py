"""A worker's engine: its share of every phase's load, recorded for the coordinator.

A `WorkerEngine` holds no gates, chaos, samplers or checker: the coordinator (`load.LoadEngine`)
keeps those and sees merged numbers. The same class runs in a local worker process
(`worker_main`), as a Ray actor (`adapters.ray_workers`) and, for a run in one process, in the
coordinator's own process (`InProcessWorker`), recording straight into the coordinator's
aggregator and ledgers (nothing to flush). Its methods are the whole protocol.
"""

from __future__ import annotations

import gc
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from holoload.adapters.pg.pool import Writer, close_writers, open_writers
from holoload.core.ledger.acklog import AckLog
from holoload.core.ledger.journal import JournalLedger
from holoload.core.model.scenario import Scenario
from holoload.core.outcome import ErrorRules
from holoload.core.stats.window import Aggregator
from holoload.core.stats.wire import WireStats, WorkerWindow
from holoload.engine.client_probe import LoopProbe
from holoload.engine.executors import run_closed_loop, run_open_loop
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.operations import warm_writers
from holoload.engine.phase_end import LoadEnded
from holoload.engine.phase_runs import RunBuilder
from holoload.engine.txn_loop import TxnBook
from holoload.engine.workload_run import WorkloadRun


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


@dataclass(frozen=True)
class Recording:
    """Where an in-process worker records: the coordinator's own aggregator, ledgers and clock.

    Args:
        aggregator: the coordinator's aggregator (its windows and gates see every op at once).
        book: the coordinator's ledgers.
        pulses: recovery pulses by endpoint.
        acks: who acknowledged which ids, and when (chaos runs).
        perf_ns: the coordinator's monotonic clock.
    """

    aggregator: Aggregator
    book: LedgerBook
    pulses: Sequence[Pulse] = ()
    acks: AckLog | None = None
    perf_ns: Callable[[], int] = field(default=time.perf_counter_ns)


def freeze_startup_heap() -> None:
    """Once per process, before its first phase: collect, then exempt what is alive from later collections.

    Imports, the scenario, connections: a full (generation 2) collection during a phase walks
    them all, 27-40 ms measured, a stall of the loop that dispatches open-loop arrivals. The
    frozen objects stay alive for the process's life (they mostly would anyway).
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


class WorkerEngine:
    """Runs phases when told; records into its own recorders and hands them over on `flush`,
    or, given a `Recording`, straight into the coordinator's (`direct`: never flushed)."""

    def __init__(self, spec: WorkerSpec, recording: Recording | None = None) -> None:
        self.spec = spec
        self.direct = recording is not None
        if recording is None:  # a worker process: its own recorders, journals and loop probe
            aggregator = Aggregator(time.perf_counter_ns(), window_s=1.0, ring_s=0.0, success_logs=True)
            recording = Recording(aggregator, LedgerBook(shared=spec.shared, factory=JournalLedger))
        self.aggregator = recording.aggregator
        self.book = recording.book
        self.perf_ns = recording.perf_ns
        self.builder = RunBuilder(
            spec.names,
            spec.dsns,
            spec.scenario.run,
            spec.rules,
            self.aggregator,
            self.book,
            recording.pulses,
            share=(spec.index, spec.count),
            seq_part=(spec.seq_index, spec.seq_parts),
            perf_ns=recording.perf_ns,
            acks=recording.acks,
            txns=TxnBook(shared=spec.shared, endpoints=len(spec.names), part=(spec.seq_index, spec.seq_parts)),
        )
        self._runs: list[WorkloadRun] = []
        self._writers: list[Writer] = []
        self._every_run: list[WorkloadRun] = []
        self._sent: dict[str, int] = {}
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._ended: LoadEnded | None = None
        # in the coordinator's process its own probe measures the loop that drives the load
        self.probe = None if self.direct else LoopProbe(self.late_drops)

    def late_drops(self) -> int:
        """Open-loop arrivals dropped behind schedule so far, over every phase (a total)."""
        return sum(r.late_drops for r in self._every_run)

    def completed(self, workload: str) -> int:
        """Operations of a workload started so far, over every phase."""
        return sum(r.completed for r in self._every_run if r.plan.workload.name == workload)

    async def hello(self) -> dict[str, object]:
        """Who and where the worker is, and its monotonic clock now (for the clock offset).

        `direct`: it records straight into the coordinator's aggregator, on its clock.
        """
        return {"pid": os.getpid(), "host": socket.gethostname(), "now_ns": self.perf_ns(), "direct": self.direct}

    async def prepare(self, phase_name: str) -> None:
        """Build this worker's share of a phase and connect its writers.

        Raises:
            SetupError: a writer could not connect.
            KeyError: no phase of that name.
        """
        phase = next(p for p in self.spec.scenario.phases if p.name == phase_name)
        self._ended = None
        self._runs, self._writers = self.builder.build(phase, stopping=self._stopping)
        self._every_run += self._runs
        await open_writers(self._writers)
        for run in self._runs:  # statements prepared now: no first operation waits for its prepare
            if run.plan.workload.is_txn:
                continue  # a transaction's statements are its own executor's (engine/txn_loop.py)
            writers = [w for endpoint in run.plan.writers for w in endpoint]
            await warm_writers(writers, run.plan.workload.ops, self.spec.scenario.run.connect_timeout)
        freeze_startup_heap()

    async def run(self, start_ns: int, end_ns: int | None, resume_ns: int | None = None) -> LoadEnded:
        """Run the prepared phase from `start_ns` (this worker's clock) until `end_ns` or a stop.

        Args:
            start_ns: the phase's start: schedules and ramps count from it.
            end_ns: when its duration runs out (None: when its workloads finish).
            resume_ns: a restarted worker: open-loop arrivals intended before this are skipped.

        Returns:
            When its load ended (this worker's clock), before its connections were closed,
            and what its drain cut short.
        """
        runs = self._runs
        for run in runs:
            run.start_at_ns = start_ns
            run.phase_end_ns = end_ns
            run.skip_before_ns = resume_ns
        self._ended = None
        ended: int | None = None
        try:
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as probing:
                    if self.probe is not None:
                        probing.start_soon(self.probe.run)  # its loop lag, while it has load to drive
                    async with anyio.create_task_group() as tg:
                        for run in runs:
                            tg.start_soon(run_open_loop if run.plan.workload.open_loop else run_closed_loop, run)
                    probing.cancel_scope.cancel()
            ended = self.perf_ns()
            return LoadEnded.of(runs, ended)
        finally:
            self._scope = None
            self._ended = LoadEnded.of(runs, self.perf_ns() if ended is None else ended)
            await self._close_writers()

    async def _close_writers(self) -> None:
        writers, self._writers = self._writers, []
        await close_writers(writers)

    def request_stop(self) -> None:
        """Graceful stop, at once (no await): no new operations; in-flight ones finish."""
        self._stopping = True
        for run in self._runs:
            run.stop_requested = True

    async def stop(self) -> None:
        """Graceful stop: no new operations; the running phase ends once in-flight ones finish."""
        self.request_stop()

    async def cancel(self) -> LoadEnded | None:
        """Abandon the running phase at once (the coordinator aborted the run).

        Returns:
            How the phase's load ended when it has already (None: it is still winding down).
        """
        self.request_stop()
        if self._scope is not None:
            self._scope.cancel()
        else:  # prepared but never run: its writers are still connected
            await self._close_writers()
        return self._ended

    async def txn_records(self) -> dict[str, dict[str, Any]]:
        """Transactional workloads' histories and counts so far (gathered by the coordinator after the load)."""
        return {} if self.builder.txns is None else self.builder.txns.records()

    async def flush(self) -> WorkerWindow:
        """Everything recorded since the last flush, encoded (a worker with its own recorders)."""
        if self.probe is None:
            raise RuntimeError("an in-process worker records into the coordinator's aggregator: nothing to flush")
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
            name = run.plan.workload.name
            completed[name] = completed.get(name, 0) + run.completed
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


class InProcessWorker:
    """A worker handle for a run in one process: calls go straight to a `WorkerEngine` in this
    process (no subprocess, no pickling), which records into the coordinator's aggregator."""

    def __init__(self, slot: int, engine: WorkerEngine) -> None:
        self.slot = slot
        self.engine = engine

    async def start(self) -> None:
        pass

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        """Run one of the engine's methods here; its exceptions (SetupError...) propagate as they are."""
        return await getattr(self.engine, method)(*args)

    def kill(self) -> None:
        pass

    async def close(self, timeout_s: float = 10.0) -> None:
        pass
