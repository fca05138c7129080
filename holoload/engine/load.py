"""Runs a sustained-load scenario: the coordinator of setup, workers, phases, windows and gates.

A run is always a fleet: of one in-process worker recording straight into this coordinator's
aggregator (`--workers 1`), or of worker processes / Ray actors whose windows are merged here.
The parts, each in its own module: `load_setup` (fault proxies, setup SQL), `fleet` (the
workers), `phase_runner` (one phase on them), `window_ticker` (windows on a fixed grid),
`gate_board` (live gates and final verdicts) and `run_state` (where the run is).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from holoload.adapters.faults.netproxy import FaultProxy
from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.local.node_control import NodeControl
from holoload.adapters.pg.staleness import StalenessSampler
from holoload.adapters.workers.local import ProcessWorker
from holoload.core.events import EventSink, PhaseChanged
from holoload.core.gates.load import GateMonitor, longest_window_s
from holoload.core.gates.verdicts import Verdict
from holoload.core.ledger.acklog import AckLog
from holoload.core.model.scenario import Scenario
from holoload.core.stats.error_log import messages_event
from holoload.core.stats.outage import OutageBook
from holoload.core.stats.window import NS_PER_S, Aggregator
from holoload.engine.chaos import FaultRunner, check_problems
from holoload.engine.client_probe import ClientWatch, client_watch
from holoload.engine.fleet import Launcher, WorkerFleet, worker_specs
from holoload.engine.gate_board import GateBoard, gate_monitors
from holoload.engine.isolation_run import IsolationRun, check_txn_workloads, setup_txn_tables, txn_workloads
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.load_setup import run_setup_sql, start_fault_proxies, work_dsns
from holoload.engine.phase_runner import PhaseRunner
from holoload.engine.preflight import prepare_statements
from holoload.engine.run_state import RunState, stop_report

if TYPE_CHECKING:
    from holoload.core.model.target import Target
    from holoload.core.result import RunSummary
    from holoload.engine.result import RunRecord
from holoload.engine.verification import Verification, verify_after_load
from holoload.engine.watch import ClusterWatch
from holoload.engine.window_ticker import WindowTicker
from holoload.engine.worker import InProcessWorker, Recording, WorkerEngine, WorkerSpec


@dataclass
class LoadEngine:
    """Drives phases in order; closes a window every `scenario.window` seconds.

    Args:
        scenario: a scenario with [[phases]].
        surfaces: an opened TargetSurfaces (used for setup and node names).
        sink: where events go.
        workers: worker processes to split the load across (1: one worker in this process).
        launcher: makes a worker slot's handle (default: a local `ProcessWorker`; `--ray`
            gives Ray actors). Gates, chaos, samplers and the checker stay here and see the
            workers' merged windows.
    """

    scenario: Scenario
    surfaces: TargetSurfaces
    sink: EventSink
    clock: Callable[[], float] = time.time
    perf_ns: Callable[[], int] = time.perf_counter_ns
    node_control: NodeControl | None = None
    file: str = "scenario"
    seed: int | None = None
    workers: int = 1
    launcher: Launcher | None = None
    server_names: dict[str, str] = field(default_factory=dict)  # host:port -> node name, for lost ranges
    staleness: StalenessSampler | None = None  # a replicated cluster: standby staleness samples
    recording: Recording = field(init=False)  # the aggregator, ledgers, pulses and acks the load records into
    chaos: FaultRunner | None = field(init=False, default=None)
    client: ClientWatch = field(init=False)
    fleet: WorkerFleet | None = field(init=False, default=None)
    state: RunState = field(init=False, default_factory=RunState)
    board: GateBoard = field(init=False)
    isolation: IsolationRun | None = field(init=False, default=None)  # transactional workloads' checks
    _txn_records: list[tuple[dict[str, Any], int]] | None = field(init=False, default=None)
    _local: WorkerEngine | None = field(init=False, default=None)
    _ticker: WindowTicker | None = field(init=False, default=None)
    _proxies: dict[int, FaultProxy] = field(init=False, default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        book = LedgerBook(shared=self.surfaces.shared)
        pulses = [Pulse() for _ in self.surfaces.names]
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        actions = self.scenario.enabled_chaos()
        outages = OutageBook() if actions else None
        if actions:
            self.chaos = FaultRunner(
                actions,
                surfaces=self.surfaces,
                sink=self.sink,
                book=book,
                pulses=pulses,
                node_control=self.node_control,
                proxies=self._proxies,
                table=self.scenario.table.name,
                seed=self.seed,
                clock=self.clock,
                perf_ns=self.perf_ns,
                outages=outages,
            )
        monitors = gate_monitors(self.scenario)
        # Keep only as much recent history as the windowed gates read (plus two windows): at high
        # rates a window's histograms take about a megabyte, so a fixed 5 minutes held 300 MB.
        ring_s = (longest_window_s(m.gate for m in monitors) or 0.0) + 2 * self.scenario.window
        aggregator = Aggregator(self.perf_ns(), window_s=self.scenario.window, ring_s=ring_s)
        acks = None
        if outages is not None:  # chaos: every op's successes also time the outage of each fault episode
            wall_origin_s = self.clock() - (self.perf_ns() - aggregator.start_ns) / NS_PER_S
            outages.origin_ns, outages.wall_origin_s = aggregator.start_ns, wall_origin_s
            aggregator.outages = outages
            acks = AckLog(aggregator.start_ns, wall_origin_s=wall_origin_s)
        self.recording = Recording(aggregator, book, pulses, acks, self.perf_ns)
        self.client = client_watch(self.scenario, self._late_drops, self.perf_ns)
        self.board = GateBoard(
            monitors,
            self.state,
            self.aggregator,
            self.book,
            self.client,
            self.sink,
            clock=self.clock,
            chaos=self.chaos,
            staleness=self.staleness,
        )

    # What the shell reads of a finished (or running) engine.
    @property
    def aggregator(self) -> Aggregator:
        return self.recording.aggregator

    @property
    def book(self) -> LedgerBook:
        return self.recording.book

    @property
    def acks(self) -> AckLog | None:
        return self.recording.acks

    @property
    def aborted_by(self) -> str | None:
        return self.state.aborted_by

    @property
    def current_phase(self) -> str:
        return self.state.current_phase

    @property
    def stopping(self) -> bool:
        return self.state.stopping

    @property
    def monitors(self) -> list[GateMonitor]:
        return self.board.monitors

    @property
    def verification(self) -> Verification | None:
        return self.board.verification

    @property
    def watch(self) -> ClusterWatch | None:
        return self.board.watch

    async def run(self) -> None:
        """Setup, then every phase; an abort_on_fail gate cancels the rest (verdict FAIL).

        With chaos: the actions are checked against the target first (exit 2), every fault is
        healed when the load ends (also on Ctrl-C), then the ledgers are read back: also after a
        stop at once (this task cancelled), bounded by `run.stop_grace`, whenever the servers
        answer (the checker needs no writers).
        """
        if self.chaos is not None:
            check_problems(self.chaos, self.file)
        try:
            await self._run_and_verify()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._verify(at_once=True)
            raise

    async def _run_and_verify(self) -> None:
        try:
            await start_fault_proxies(self.chaos, self.surfaces, self.seed, self._proxies)
            await setup_txn_tables(self.scenario, self.surfaces, self.sink, self.clock)  # [setup] may add to them
            await run_setup_sql(self.scenario, self.surfaces, self.sink, self.clock)
            await prepare_statements(self.scenario, self.surfaces, self.sink, self.file, self.clock)
            await self._start_fleet()
            await self._load()
            if self.fleet is not None and txn_workloads(self.scenario):
                self._txn_records = await self.fleet.txn_records()  # before the workers go
        finally:
            with anyio.CancelScope(shield=True):
                if self.fleet is not None:
                    await self.fleet.close()
                if self.chaos is not None:
                    await self.chaos.heal_all()
                for proxy in self._proxies.values():
                    await proxy.aclose()
            if self.aggregator.errors or self.aggregator.errors.more():
                self.sink.emit(messages_event(self.aggregator.errors, self.aggregator.start_ns, self.clock()))
        await self._verify(at_once=False)
        await self._check_isolation()

    async def _check_isolation(self) -> None:
        """After the heal: every transactional workload's history checked (its gates read the reports)."""
        if not txn_workloads(self.scenario):
            return
        lost = 0 if self.fleet is None else len(self.fleet.losses)
        self.isolation = await check_txn_workloads(
            self.scenario, self.surfaces, self._txn_records, self.sink, lost_workers=lost, clock=self.clock
        )
        self.board.isolation = self.isolation.reports

    async def _verify(self, *, at_once: bool) -> None:
        found = await verify_after_load(
            self.surfaces,
            self.book,
            self.sink,
            self.scenario.run,
            at_once=at_once,
            clock=self.clock,
            acks=self.acks,
            server_names=self.server_names,
        )
        self.board.verification = found or self.board.verification

    async def _start_fleet(self) -> None:
        """The workers that will run the load: one in this process, or worker processes (Ray actors)."""
        names, dsns, rules = self.surfaces.names, work_dsns(self.surfaces, self._proxies), self.surfaces.target.rules()
        run = self.scenario.run
        flush_timeout_s = max(30.0, 5 * self.scenario.window)
        if self.workers <= 1 and self.launcher is None:
            spec = WorkerSpec(self.scenario, tuple(names), tuple(dsns), rules, self.surfaces.shared, 0, 1, 0, 1)
            local = self._local = WorkerEngine(spec, self.recording)
            if self.state.stopping:
                local.request_stop()
            self.fleet = WorkerFleet(
                [spec], lambda slot, _: InProcessWorker(slot, local), self.sink, clock=self.clock, perf_ns=self.perf_ns
            )
            await self.fleet.start()
            return
        specs = worker_specs(self.scenario, names, dsns, rules, shared=self.surfaces.shared, count=max(1, self.workers))
        self.fleet = WorkerFleet(
            specs,
            self.launcher or ProcessWorker,
            self.sink,
            on_loss=run.on_worker_loss,
            max_restarts=run.worker_restarts,
            flush_timeout_s=flush_timeout_s,
            clock=self.clock,
            perf_ns=self.perf_ns,
        )
        self.sink.emit(PhaseChanged(self.clock(), "workers", f"starting {len(specs)} workers"))
        self.client.probe.drives_load = False  # the workers run the writers; this loop merges and judges
        await self.fleet.start()

    async def _load(self) -> None:
        assert self.fleet is not None
        watch = self.board.watch = ClusterWatch(self.surfaces, self.sink, self.scenario.table.name, self.clock)
        ticker = self._ticker = WindowTicker(
            self.scenario.window,
            self.aggregator,
            self.fleet,
            self.board,
            self.state,
            self.client,
            self.book,
            self.recording.pulses,
            self.surfaces.names,
            self.sink,
            clock=self.clock,
            perf_ns=self.perf_ns,
            chaos=self.chaos,
            watch=watch,
        )
        runner = PhaseRunner(
            self.fleet,
            ticker,
            self.state,
            self.aggregator,
            self.surfaces.names,
            self.sink,
            clock=self.clock,
            perf_ns=self.perf_ns,
            chaos=self.chaos,
        )
        target = self.surfaces.target
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run, tg.cancel_scope)
            tg.start_soon(self.client.probe.run)
            tg.start_soon(
                partial(
                    watch.run,
                    metrics_interval_s=target.metrics_interval,
                    topology_interval_s=target.topology.interval,
                )
            )
            if self.staleness is not None:
                tg.start_soon(self.staleness.run)
            if self.chaos is not None:
                tg.start_soon(self.chaos.run_frame, None, self._horizon_s())
                tg.start_soon(self.chaos.watch_iterations, self._completed)
            for phase in self.scenario.phases:
                if self.state.stopping:
                    break
                await runner.run(phase)
            tg.cancel_scope.cancel()

    def request_stop(self) -> None:
        """Graceful stop: no new operations, phases or chaos actions; in-flight ones finish, faults heal, checker runs.

        With worker processes, call it from the event loop's thread: it schedules their stop.
        """
        self.state.stopping = True
        self.state.stop.request(self.perf_ns())
        if self.chaos is not None:
            self.chaos.stop()  # no action fires after "no new work"; heals still run
        if self._local is not None:
            self._local.request_stop()  # at once, as the in-process load reads it
        elif self.fleet is not None:
            task = asyncio.get_running_loop().create_task(self.fleet.stop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def stop_report(self, by: str, *, at_once: str | None) -> str:
        """How the stop went, for `run.problems`: when it came and what its drain cancelled."""
        state = self.state
        at_s = state.stopped_at_s()
        if at_s is None and state.load_started_ns is not None:  # cancelled without a graceful stop first
            at_s = (self.perf_ns() - state.load_started_ns) / NS_PER_S
        return stop_report(by, at_s=at_s, cut_short=state.stop_cut_short, drain_s=state.stop_drain_s, at_once=at_once)

    def _horizon_s(self) -> float | None:
        durations = [p.duration for p in self.scenario.phases]
        return None if any(d is None for d in durations) else sum(d or 0.0 for d in durations)

    def _late_drops(self) -> int:
        """Late drops of the load this process drives (none when worker processes drive it)."""
        return 0 if self._local is None else self._local.late_drops()

    def _completed(self, workload: str) -> int:
        local = 0 if self._local is None else self._local.completed(workload)
        remote = 0 if self._ticker is None else self._ticker.completed.get(workload, 0)
        return local + remote

    def verdicts(self) -> list[Verdict]:
        """Final verdicts of every gate (call after run())."""
        verdicts = self.board.finals(self.perf_ns()) + self.board.isolation_verdicts(txn_workloads(self.scenario))
        lost = None if self.fleet is None else self.fleet.verdict()
        client = [self.client.book.verdict()] if self.client.book.enabled else []
        return verdicts + ([lost] if lost is not None else []) + client

    def result(
        self, record: RunRecord, target: Target | None, verdicts: list[Verdict]
    ) -> tuple[RunSummary, list[tuple[str, Any]]]:
        """The finished run as a frozen RunSummary (summary.json's model) and summary.txt's keys.

        Built from this engine's own parts (ledgers, checker, aggregator, chaos, fleet, client
        health); the caller decides the verdict from the gates' outcomes and sets it.
        """
        from holoload.engine.result import build_result  # it reads LoadEngine's parts: imported late

        return build_result(record, self.scenario, target, self, verdicts)

    def workers_summary(self) -> dict[str, object]:
        """How the load was spread: in this process, or over worker processes / Ray actors, and losses."""
        if self.fleet is None or self._local is not None:
            return {"count": 1, "mode": "in-process", "lost": [], "restarts": 0}
        return self.fleet.summary("processes" if self.launcher is None else "ray")
