"""Runs a sustained-load scenario: setup, phases of concurrent workloads, windows, live gates."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

import anyio

from holoload.adapters.netproxy import FaultProxy
from holoload.adapters.node_control import NodeControl
from holoload.adapters.pg import describe_error
from holoload.adapters.pool import close_writers, open_writers
from holoload.adapters.staleness import StalenessSampler
from holoload.adapters.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.worker_process import ProcessWorker
from holoload.core.acklog import AckLog
from holoload.core.error_log import messages_event, seen_events
from holoload.core.errors import SetupError
from holoload.core.events import EventSink, GateChanged, PhaseChanged, RunProblem, WindowClosed
from holoload.core.gates import parse_gate
from holoload.core.load_gates import GateMonitor, LoadGateContext, longest_window_s
from holoload.core.outage import OutageBook
from holoload.core.scenario import Scenario
from holoload.core.verdicts import Verdict
from holoload.core.window import NS, Aggregator, OpKey
from holoload.core.workload import Phase, gate_spec
from holoload.engine.chaos import FaultRunner, check_problems
from holoload.engine.client_probe import ClientWatch, client_watch
from holoload.engine.executors import WorkloadRun, run_closed_loop, run_open_loop
from holoload.engine.fleet import Launcher, WorkerFleet, worker_specs
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.merge import absorb_windows
from holoload.engine.phase_end import LoadStop, cut_short_problem
from holoload.engine.phase_runs import RunBuilder, writer_counts
from holoload.engine.preflight import prepare_statements
from holoload.engine.verification import Verification, verify_after_load
from holoload.engine.watch import ClusterWatch
from holoload.engine.window_rows import encoded_histograms, window_rows


@dataclass
class LoadEngine:
    """Drives phases in order; closes a window every `scenario.window` seconds.

    Args:
        scenario: a scenario with [[phases]].
        surfaces: an opened TargetSurfaces (used for setup and node names).
        sink: where events go.
        workers: worker processes to split the load across (1: the load runs in this process).
        launcher: makes a worker slot's handle (default: a local `ProcessWorker`; `--ray`
            gives Ray actors). With workers, this engine is the coordinator: gates, chaos,
            samplers and the checker stay here and see the workers' merged windows.
    """

    scenario: Scenario
    surfaces: TargetSurfaces
    sink: EventSink
    clock: Callable[[], float] = time.time
    perf_ns: Callable[[], int] = time.perf_counter_ns
    aggregator: Aggregator = field(init=False)
    monitors: list[GateMonitor] = field(init=False, default_factory=list)
    aborted_by: str | None = None
    current_phase: str = ""
    _started_phases: list[str] = field(init=False, default_factory=list)
    _ended_phases: set[str] = field(init=False, default_factory=set)
    watch: ClusterWatch | None = field(init=False, default=None)
    node_control: NodeControl | None = None
    file: str = "scenario"
    seed: int | None = None
    book: LedgerBook = field(init=False)
    pulses: list[Pulse] = field(init=False)
    chaos: FaultRunner | None = field(init=False, default=None)
    verification: Verification | None = field(init=False, default=None)
    _proxies: dict[int, FaultProxy] = field(init=False, default_factory=dict)
    _runs: list[WorkloadRun] = field(init=False, default_factory=list)
    stopping: bool = False
    workers: int = 1
    launcher: Launcher | None = None
    fleet: WorkerFleet | None = field(init=False, default=None)
    _builder: RunBuilder | None = field(init=False, default=None)
    _remote_completed: dict[str, int] = field(init=False, default_factory=dict)
    _window_lock: anyio.Lock = field(init=False, default_factory=anyio.Lock)
    _tasks: set[asyncio.Task[None]] = field(init=False, default_factory=set)
    acks: AckLog | None = field(init=False, default=None)
    server_names: dict[str, str] = field(default_factory=dict)  # host:port -> node name, for lost ranges
    staleness: StalenessSampler | None = None  # a replicated cluster: standby staleness samples
    _stop: LoadStop = field(init=False, default_factory=LoadStop)
    client: ClientWatch = field(init=False)

    def __post_init__(self) -> None:
        self.book = LedgerBook(shared=self.surfaces.shared)
        self.pulses = [Pulse() for _ in self.surfaces.names]
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        actions = self.scenario.enabled_chaos()
        outages = OutageBook() if actions else None
        if actions:
            self.chaos = FaultRunner(
                actions,
                surfaces=self.surfaces,
                sink=self.sink,
                book=self.book,
                pulses=self.pulses,
                node_control=self.node_control,
                proxies=self._proxies,
                table=self.scenario.table.name,
                seed=self.seed,
                clock=self.clock,
                perf_ns=self.perf_ns,
                outages=outages,
            )
        measured = [p.name for p in self.scenario.phases if p.measured]
        for name, value in self.scenario.gates.items():
            spec = gate_spec(value)
            if spec.expr.strip():
                self.monitors.append(
                    GateMonitor(
                        name,
                        parse_gate(spec.expr),
                        measured,
                        spec.abort_on_fail,
                        spec.grace,
                        report_no_data=spec.no_data == "report",
                    )
                )
        for phase in self.scenario.phases:
            for name, value in phase.gates.items():
                spec = gate_spec(value)
                if spec.expr.strip():
                    self.monitors.append(
                        GateMonitor(
                            f"{phase.name}.{name}",
                            parse_gate(spec.expr),
                            [phase.name],
                            spec.abort_on_fail,
                            spec.grace,
                            report_no_data=spec.no_data == "report",
                        )
                    )
        # Keep only as much recent history as the windowed gates read (plus two windows): at high
        # rates a window's histograms take about a megabyte, so a fixed 5 minutes held 300 MB.
        longest = longest_window_s(m.gate for m in self.monitors) or 0.0
        ring_s = longest + 2 * self.scenario.window
        self.aggregator = Aggregator(self.perf_ns(), window_s=self.scenario.window, ring_s=ring_s)
        if outages is not None:  # chaos: every op's successes also time the outage of each fault episode
            wall_origin_s = self.clock() - (self.perf_ns() - self.aggregator.start_ns) / NS
            outages.origin_ns, outages.wall_origin_s = self.aggregator.start_ns, wall_origin_s
            self.aggregator.outages = outages
            self.acks = AckLog(self.aggregator.start_ns, wall_origin_s=wall_origin_s)
        self.client = client_watch(self.scenario, lambda: sum(r.late_drops for r in self._runs), self.perf_ns)

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
            await self._start_proxies()
            await self._setup()
            await prepare_statements(self.scenario, self.surfaces, self.sink, self.file, self.clock)
            self._builder = RunBuilder(
                self.surfaces.names,
                [self._work_dsn(i) for i in range(len(self.surfaces.names))],
                self.scenario.run,
                self.surfaces.target.rules(),
                self.aggregator,
                self.book,
                self.pulses,
                perf_ns=self.perf_ns,
                acks=self.acks,
            )
            if self.workers > 1 or self.launcher is not None:
                await self._start_fleet()
            await self._load()
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
        self.verification = found or self.verification

    async def _setup(self) -> None:
        self.sink.emit(PhaseChanged(self.clock(), "setup", f"{len(self.scenario.setup.sql)} statements"))
        if self.scenario.table.create:
            await self.surfaces.prepare_table(self.scenario.table.name)
        for i in self.surfaces.data_nodes():
            for sql in self.scenario.setup.sql:
                try:
                    with anyio.fail_after(self.scenario.run.statement_timeout + 5):
                        async with self.surfaces.work(i) as conn:  # cut short: cancelled, rolled back
                            await conn.execute(sql)
                except DB_ERRORS as exc:
                    raise SetupError(
                        f"setup statement failed on {self.surfaces.names[i]}: "
                        f"{describe_error(exc)}\n  {sql.strip()[:200]}"
                    ) from exc

    async def _start_proxies(self) -> None:
        """A TCP fault proxy in front of each node a `net` action targets; writers go through it."""
        if self.chaos is None:
            return
        for i in sorted(self.chaos.net_nodes()):
            parts = urlsplit(self.surfaces.target.nodes[i].dsn)
            proxy = FaultProxy(
                parts.hostname or "127.0.0.1", parts.port or 5432, seed=self.seed, name=self.surfaces.names[i]
            )
            await proxy.start()
            self._proxies[i] = proxy

    async def _start_fleet(self) -> None:
        """Start the worker processes (or Ray actors) that will run the load."""
        assert self._builder is not None
        specs = worker_specs(
            self.scenario,
            self.surfaces.names,
            self._builder.dsns,
            self.surfaces.target.rules(),
            shared=self.surfaces.shared,
            count=max(1, self.workers),
        )
        run = self.scenario.run
        self.fleet = WorkerFleet(
            specs,
            self.launcher or ProcessWorker,
            self.sink,
            on_loss=run.on_worker_loss,
            max_restarts=run.worker_restarts,
            flush_timeout_s=max(30.0, 5 * self.scenario.window),
            clock=self.clock,
            perf_ns=self.perf_ns,
        )
        self.sink.emit(PhaseChanged(self.clock(), "workers", f"starting {len(specs)} workers"))
        self.client.probe.drives_load = False  # the workers run the writers; this loop merges and judges
        await self.fleet.start()

    def _work_dsn(self, i: int) -> str:
        dsn = self.surfaces.target.nodes[i].dsn
        proxy = self._proxies.get(i)
        return dsn if proxy is None else proxy.dsn_through(dsn)

    async def _load(self) -> None:
        self.watch = ClusterWatch(self.surfaces, self.sink, self.scenario.table.name, self.clock)
        target = self.surfaces.target
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._ticker, tg.cancel_scope)
            tg.start_soon(self.client.probe.run)
            tg.start_soon(
                partial(
                    self.watch.run,
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
                if self.stopping:
                    break
                await self._phase(phase)
            tg.cancel_scope.cancel()

    def request_stop(self) -> None:
        """Graceful stop: no new operations or phases; in-flight ones finish, faults heal, the checker runs.

        With workers, call it from the event loop's thread: it schedules their stop.
        """
        self.stopping = True
        self._stop.request(self.perf_ns())
        for run in self._runs:
            run.stop_requested = True
        if self.fleet is not None:
            task = asyncio.get_running_loop().create_task(self.fleet.stop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _horizon_s(self) -> float | None:
        durations = [p.duration for p in self.scenario.phases]
        return None if any(d is None for d in durations) else sum(d or 0.0 for d in durations)

    def _completed(self, workload: str) -> int:
        local = sum(r.completed for r in self._runs if r.workload.name == workload)
        return local + self._remote_completed.get(workload, 0)

    async def _phase(self, phase: Phase) -> None:
        self.current_phase = phase.name
        self._started_phases.append(phase.name)
        detail = f"{len(phase.workloads)} workloads" + (f", {phase.duration:g}s" if phase.duration else "")
        self.sink.emit(PhaseChanged(self.clock(), phase.name, detail))
        if self.fleet is not None:
            await self._fleet_phase(phase, self.fleet)
            return
        assert self._builder is not None
        runs, writers = self._builder.build(phase, stopping=self.stopping)
        self._runs += runs
        try:
            await open_writers(writers)
            start = self.perf_ns()
            self.aggregator.close_window(start)  # connection set-up stays out of the phase's windows
            self.aggregator.phase_started(phase.name, start)
            end = self._stop.phase_end_ns = start + int(phase.duration * NS) if phase.duration else None
            for run in runs:
                run.phase_end_ns = end
            async with anyio.create_task_group() as frame:
                if self.chaos is not None:
                    frame.start_soon(self.chaos.run_frame, phase.name, phase.duration)
                async with anyio.create_task_group() as tg:
                    for run in runs:
                        tg.start_soon(run_open_loop if run.workload.open_loop else run_closed_loop, run)
                frame.cancel_scope.cancel()
        finally:
            if self.chaos is not None:
                await self.chaos.heal_frame(phase.name)
            # the phase's time ends where its load stopped, not after in-flight operations drained
            self.aggregator.phase_ended(phase.name, self._stop.clamp(self.perf_ns()))
            self._close_window()  # the phase's last operations belong to its own last window
            self._ended_phases.add(phase.name)
            self._stop.phase_end_ns = None
            problem = cut_short_problem(phase.name, runs, self.clock())
            if problem is not None:
                self.sink.emit(problem)
            await close_writers(writers)

    async def _fleet_phase(self, phase: Phase, fleet: WorkerFleet) -> None:
        """A phase run by the workers: the same windows, frames and gates as in one process."""
        finished = False
        ended: int | None = None
        try:
            await fleet.prepare(phase.name)
            async with self._window_lock:
                await self._collect()
                start = self.perf_ns()
                self.aggregator.close_window(start)  # connection set-up stays out of the phase's windows
            self.aggregator.phase_started(phase.name, start)
            names = self.surfaces.names
            for workload in phase.workloads:  # every key's gap clocks start with the phase, as in one process
                for i, total in enumerate(writer_counts(workload, names)):
                    for op in workload.ops if total else ():
                        self.aggregator.recorder(OpKey(phase.name, workload.name, op.name, names[i]), start)
            end = self._stop.phase_end_ns = start + int(phase.duration * NS) if phase.duration else None
            async with anyio.create_task_group() as frame:
                if self.chaos is not None:
                    frame.start_soon(self.chaos.run_frame, phase.name, phase.duration)
                ended = await fleet.run(start, end)
                frame.cancel_scope.cancel()
            finished = True
        finally:
            with anyio.CancelScope(shield=True):
                if not finished:
                    await fleet.cancel()
                if self.chaos is not None:
                    await self.chaos.heal_frame(phase.name)
                async with self._window_lock:
                    await self._collect()
                    # the load's end, not when the workers' connections were closed and windows handed over
                    now = self.perf_ns()
                    self.aggregator.phase_ended(phase.name, self._stop.clamp(min(ended or now, now)))
                    self._close_window()  # the phase's last operations belong to its own last window
                self._ended_phases.add(phase.name)
                self._stop.phase_end_ns = None

    async def _collect(self, *, complete: bool = True) -> None:
        """Merge the workers' windows into the aggregator, ledgers, pulses and counts.

        Args:
            complete: wait for every worker (phase start and end); else (the ticker) wait at
                most half a window and take a late worker's window at the next tick.
        """
        if self.fleet is None:
            return
        windows = await self.fleet.collect(None if complete else self.scenario.window / 2)
        for window, _ in windows:
            self.client.worker(window.worker, window.health)
        absorb_windows(
            windows,
            aggregator=self.aggregator,
            book=self.book,
            pulses=self.pulses,
            names=self.surfaces.names,
            completed=self._remote_completed,
            now_ns=self.perf_ns(),
        )
        if self.fleet.failed is not None and self.aborted_by is None:
            self.aborted_by = "workers"
            self.sink.emit(RunProblem(self.clock(), "aborted", f"a worker was lost: {self.fleet.failed}"))

    async def _ticker(self, scope: anyio.CancelScope) -> None:
        """Close a window every `window` seconds on a fixed grid: closing work never stretches windows."""
        step_ns = int(self.scenario.window * NS)
        next_ns = self.perf_ns() + step_ns
        while True:
            due_ns = next_ns
            await anyio.sleep(max(0, next_ns - self.perf_ns()) / NS)
            next_ns += step_ns
            if next_ns <= self.perf_ns():  # fell more than a window behind: skip ahead, never burst
                next_ns = self.perf_ns() + step_ns
            async with self._window_lock:
                await self._collect(complete=False)
                self._close_window(due_ns)
            if self.aborted_by is not None:
                scope.cancel()
                return

    def _close_window(self, due_ns: int | None = None) -> None:
        """Close the open window (`due_ns`: the ticker's grid time, None at a phase boundary)."""
        now = self.perf_ns()
        tags = () if self.chaos is None else self.chaos.window_tags()
        window = self.aggregator.close_window(now, tags=tags)
        for seen in seen_events(self.aggregator.errors, self.aggregator.start_ns, self.clock()):
            self.sink.emit(seen)
        elapsed = (now - self.aggregator.start_ns) / NS
        rows = window_rows(window, self.aggregator, self.current_phase)
        if self.aggregator.outages is not None:  # per-op p99 per window: the pre-fault level and its return
            for row in rows:
                if row.endpoint == "*":
                    self.aggregator.outages.window(f"{row.workload}.{row.op}", window.start_ns, now, row.p99_ms)
        signals = {} if self.watch is None else self.watch.signals()
        histograms = tuple(encoded_histograms(window))
        late_s = None if due_ns is None else max(0, now - due_ns) / NS
        health, strain = self.client.close(window.index, window.seconds, late_s)
        phase, index, seconds = self.current_phase, window.index, window.seconds
        event = WindowClosed(self.clock(), phase, index, elapsed, seconds, rows, signals, histograms, health, strain)
        self.sink.emit(event)
        self._watch_gates(now, window.start_ns)

    def _watch_gates(self, now_ns: int, window_start_ns: int | None = None) -> None:
        scalars = self._scalars()
        over = set(self._ended_phases)
        if self.current_phase and window_start_ns is not None and not self._stop.judged(window_start_ns):
            over.add(self.current_phase)  # a window begun after its load stopped (a drain) is not judged
        for monitor in self.monitors:
            if monitor.phases and not set(monitor.phases) & set(self._started_phases):
                continue
            if monitor.phases and all(p in over for p in monitor.phases):
                continue  # judged while it ran; its final verdict comes at the end
            before = monitor.state
            verdict = monitor.observe(self._context(monitor, now_ns, scalars))
            if monitor.state != before:
                self.sink.emit(GateChanged(self.clock(), monitor.name, monitor.state, verdict.reason))
            if self.aborted_by is None and monitor.should_abort(now_ns):
                self.aborted_by = monitor.name
                self.sink.emit(
                    RunProblem(
                        self.clock(),
                        "aborted",
                        f"gate {monitor.name} failed for {monitor.grace_s:g}s (abort_on_fail): {verdict.reason}",
                    )
                )

    def _scalars(self) -> dict[str, float]:
        totals = self.aggregator.totals.values()
        scalars = {
            "phases": float(len(self._started_phases)),
            "dropped": float(sum(s.dropped for s in totals)),
            "errors_total": float(sum(s.error_count for s in totals)),
        }
        ledger = self.book.totals()
        if ledger:
            scalars.update({f"{k}_ids": float(ledger[k]) for k in ("acknowledged", "failed", "in_doubt", "recovered")})
        if self.verification is not None:
            scalars.update(self.verification.scalars())
        return scalars | self.client.scalars()

    def _context(self, monitor: GateMonitor, now_ns: int, scalars: dict[str, float]) -> LoadGateContext:
        server = None if self.watch is None else self.watch.view
        ctx = LoadGateContext(self.aggregator, monitor.phases, now_ns, scalars, server, chaos=self.chaos)
        ctx.staleness = None if self.staleness is None else self.staleness.samples  # type: ignore[attr-defined]
        return ctx

    def verdicts(self) -> list[Verdict]:
        """Final verdicts of every gate (call after run())."""
        now = self.perf_ns()
        scalars = self._scalars()
        verdicts = [m.final(self._context(m, now, scalars)) for m in self.monitors]
        lost = None if self.fleet is None else self.fleet.verdict()
        client = [self.client.book.verdict()] if self.client.book.enabled else []
        return verdicts + ([lost] if lost is not None else []) + client

    def workers_summary(self) -> dict[str, object]:
        """How the load was spread: in this process, or over worker processes / Ray actors, and losses."""
        if self.fleet is None:
            return {"count": 1, "mode": "in-process", "lost": [], "restarts": 0}
        return self.fleet.summary("processes" if self.launcher is None else "ray")
