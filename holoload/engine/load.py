"""Runs a sustained-load scenario: setup, phases of concurrent workloads, windows, live gates."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import anyio

from holoload.adapters.pg import describe_error
from holoload.adapters.pool import Writer, close_writers, open_writers
from holoload.adapters.surfaces import DB_ERRORS, TargetSurfaces
from holoload.core.errors import SetupError
from holoload.core.events import EventSink, GateChanged, PhaseChanged, RunProblem, WindowClosed
from holoload.core.gates import Verdict, parse_gate
from holoload.core.generators import SeqAllocator
from holoload.core.load_gates import GateMonitor, LoadGateContext
from holoload.core.pacing import split_weighted
from holoload.core.scenario import Scenario
from holoload.core.window import NS, Aggregator
from holoload.core.workload import Phase, Workload, gate_spec
from holoload.engine.executors import WorkloadRun, run_closed_loop, run_open_loop
from holoload.engine.watch import ClusterWatch
from holoload.engine.window_rows import window_rows


@dataclass
class LoadEngine:
    """Drives phases in order; closes a window every `scenario.window` seconds.

    Args:
        scenario: a scenario with [[phases]].
        surfaces: an opened TargetSurfaces (used for setup and node names).
        sink: where events go.
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
    _seq: dict[int, SeqAllocator] = field(init=False, default_factory=dict)
    _started_phases: list[str] = field(init=False, default_factory=list)
    _ended_phases: set[str] = field(init=False, default_factory=set)
    watch: ClusterWatch | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.aggregator = Aggregator(self.perf_ns(), window_s=self.scenario.window)
        measured = [p.name for p in self.scenario.phases if p.measured]
        for name, value in self.scenario.gates.items():
            spec = gate_spec(value)
            if spec.expr.strip():
                self.monitors.append(GateMonitor(name, parse_gate(spec.expr), measured, spec.abort_on_fail, spec.grace))
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
                        )
                    )

    async def run(self) -> None:
        """Setup, then every phase; an abort_on_fail gate cancels the rest (verdict FAIL)."""
        self.sink.emit(PhaseChanged(self.clock(), "setup", f"{len(self.scenario.setup.sql)} statements"))
        for i in self.surfaces.data_nodes():
            for sql in self.scenario.setup.sql:
                try:
                    with anyio.fail_after(self.scenario.run.statement_timeout + 5):
                        await self.surfaces.conns[i].execute(sql)
                except DB_ERRORS as exc:
                    raise SetupError(
                        f"setup statement failed on {self.surfaces.names[i]}: "
                        f"{describe_error(exc)}\n  {sql.strip()[:200]}"
                    ) from exc
        self.watch = ClusterWatch(self.surfaces, self.sink, self.scenario.table.name, self.clock)
        target = self.surfaces.target
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._ticker, tg.cancel_scope)
            tg.start_soon(
                partial(
                    self.watch.run,
                    metrics_interval_s=target.metrics_interval,
                    topology_interval_s=target.topology.interval,
                )
            )
            for phase in self.scenario.phases:
                await self._phase(phase)
            tg.cancel_scope.cancel()

    async def _phase(self, phase: Phase) -> None:
        self.current_phase = phase.name
        self._started_phases.append(phase.name)
        detail = f"{len(phase.workloads)} workloads" + (f", {phase.duration:g}s" if phase.duration else "")
        self.sink.emit(PhaseChanged(self.clock(), phase.name, detail))
        runs, writers = self._build(phase)
        try:
            await open_writers(writers)
            start = self.perf_ns()
            self.aggregator.close_window(start)  # connection set-up stays out of the phase's windows
            self.aggregator.phase_started(phase.name, start)
            end = start + int(phase.duration * NS) if phase.duration else None
            for run in runs:
                run.phase_end_ns = end
            async with anyio.create_task_group() as tg:
                for run in runs:
                    tg.start_soon(run_open_loop if run.workload.open_loop else run_closed_loop, run)
        finally:
            self.aggregator.phase_ended(phase.name, self.perf_ns())
            self._close_window()  # the phase's last operations belong to its own last window
            self._ended_phases.add(phase.name)
            await close_writers(writers)

    def _build(self, phase: Phase) -> tuple[list[WorkloadRun], list[Writer]]:
        runs: list[WorkloadRun] = []
        every: list[Writer] = []
        for workload in phase.workloads:
            per_endpoint = self._writers_for(workload)
            every += [w for ws in per_endpoint for w in ws]
            runs.append(
                WorkloadRun(
                    phase.name,
                    workload,
                    per_endpoint,
                    self.aggregator,
                    self._seq,
                    perf_ns=self.perf_ns,
                    rules=self.surfaces.target.rules(),
                    op_timeout_s=self.scenario.run.statement_timeout + 5,
                )
            )
        return runs, every

    def _writers_for(self, workload: Workload) -> list[list[Writer]]:
        names = self.surfaces.names
        weights = [1.0 if not workload.endpoints else workload.endpoints.get(n, 0.0) for n in names]
        if workload.open_loop:
            counts = split_weighted(workload.max_inflight, weights)
        elif workload.executor == "iterations":
            counts = split_weighted(workload.concurrency or 1, weights)
        else:
            top = workload.concurrency or int(max([workload.start] + [s.target for s in workload.stages]))
            active = sum(1 for w in weights if w > 0)
            counts = split_weighted(top * active, weights)
        run = self.scenario.run
        rng = random.Random(workload.seed)
        return [
            [
                Writer(
                    i,
                    names[i],
                    self.surfaces.target.nodes[i].dsn,
                    connect_timeout_s=run.connect_timeout,
                    statement_timeout_s=run.statement_timeout,
                    rng=random.Random(rng.random()),
                )
                for _ in range(count)
            ]
            for i, count in enumerate(counts)
        ]

    async def _ticker(self, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.scenario.window)
            self._close_window()
            if self.aborted_by is not None:
                scope.cancel()
                return

    def _close_window(self) -> None:
        now = self.perf_ns()
        window = self.aggregator.close_window(now)
        elapsed = (now - self.aggregator.start_ns) / NS
        rows = window_rows(window, self.aggregator, self.current_phase)
        signals = {} if self.watch is None else self.watch.signals()
        self.sink.emit(
            WindowClosed(self.clock(), self.current_phase, window.index, elapsed, window.seconds, rows, signals)
        )
        self._watch_gates(now)

    def _watch_gates(self, now_ns: int) -> None:
        scalars = self._scalars()
        for monitor in self.monitors:
            if monitor.phases and not set(monitor.phases) & set(self._started_phases):
                continue
            if monitor.phases and all(p in self._ended_phases for p in monitor.phases):
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
        return {
            "phases": float(len(self._started_phases)),
            "dropped": float(sum(s.dropped for s in totals)),
            "errors_total": float(sum(s.error_count for s in totals)),
        }

    def _context(self, monitor: GateMonitor, now_ns: int, scalars: dict[str, float]) -> LoadGateContext:
        server = None if self.watch is None else self.watch.view
        return LoadGateContext(self.aggregator, monitor.phases, now_ns, scalars, server)

    def verdicts(self) -> list[Verdict]:
        """Final verdicts of every gate (call after run())."""
        now = self.perf_ns()
        scalars = self._scalars()
        return [m.final(self._context(m, now, scalars)) for m in self.monitors]
