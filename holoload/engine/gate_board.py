"""The run's live gates: built from the scenario, judged after every window, final verdicts at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from holoload.adapters.pg.staleness import StalenessSampler
from holoload.core.events import EventSink, GateChanged
from holoload.core.gates.isolation import isolation_verdict
from holoload.core.gates.language import parse_gate
from holoload.core.gates.load import GateMonitor, LoadGateContext
from holoload.core.gates.verdicts import Verdict
from holoload.core.model.scenario import Scenario
from holoload.core.model.workload import gate_spec
from holoload.core.stats.window import Aggregator
from holoload.engine.chaos import FaultRunner
from holoload.engine.client_probe import ClientWatch
from holoload.engine.ledgers import LedgerBook
from holoload.engine.run_state import RunState
from holoload.engine.verification import Verification
from holoload.engine.watch import ClusterWatch


def gate_monitors(scenario: Scenario) -> list[GateMonitor]:
    """A monitor per gate: the scenario's (over its measured phases), then each phase's own."""
    measured = [p.name for p in scenario.phases if p.measured]
    scoped = [(name, value, measured) for name, value in scenario.gates.items()]
    for phase in scenario.phases:
        scoped += [(f"{phase.name}.{name}", value, [phase.name]) for name, value in phase.gates.items()]
    monitors: list[GateMonitor] = []
    for name, value, phases in scoped:
        spec = gate_spec(value)
        if spec.expr.strip():
            monitors.append(
                GateMonitor(
                    name,
                    parse_gate(spec.expr),
                    phases,
                    spec.abort_on_fail,
                    spec.grace,
                    report_no_data=spec.no_data == "report",
                )
            )
    return monitors


@dataclass
class GateBoard:
    """The monitors and everything they read: windows and totals, ledgers, the client's health,
    server signals (`watch`, set when the load starts), chaos, staleness and the check.

    Args:
        monitors: the run's gates.
        state: where the run is (which phases are judged; an abort_on_fail gate aborts it).
        aggregator, book, client: what the gates read.
        sink: where GateChanged and the abort go.
        clock: wall clock for event timestamps.
    """

    monitors: list[GateMonitor]
    state: RunState
    aggregator: Aggregator
    book: LedgerBook
    client: ClientWatch
    sink: EventSink
    clock: Callable[[], float] = time.time
    chaos: FaultRunner | None = None
    staleness: StalenessSampler | None = None
    watch: ClusterWatch | None = None
    verification: Verification | None = None
    isolation: dict[str, dict[str, Any]] | None = None  # transactional workloads' reports, once checked

    def judge(self, now_ns: int, window_start_ns: int | None = None) -> None:
        """Judge every gate whose phases run (after a window closed at `now_ns`); abort_on_fail aborts."""
        state = self.state
        scalars = self.scalars()
        over = set(state.ended)
        if state.current_phase and window_start_ns is not None and not state.stop.judged(window_start_ns):
            over.add(state.current_phase)  # a window begun after its load stopped (a drain) is not judged
        started = set(state.started)
        for monitor in self.monitors:
            if monitor.phases and not set(monitor.phases) & started:
                continue
            if monitor.phases and all(p in over for p in monitor.phases):
                continue  # judged while it ran; its final verdict comes at the end
            before = monitor.state
            verdict = monitor.observe(self.context(monitor, now_ns, scalars))
            if monitor.state != before:
                self.sink.emit(GateChanged(self.clock(), monitor.name, monitor.state, verdict.reason))
            if state.aborted_by is None and monitor.should_abort(now_ns):
                why = f"gate {monitor.name} failed for {monitor.grace_s:g}s (abort_on_fail): {verdict.reason}"
                state.abort(monitor.name, why, self.sink, self.clock)

    def scalars(self) -> dict[str, float]:
        """Run-wide numbers the gates read: phases, drops, errors, ledger ids, the check, the client."""
        totals = self.aggregator.totals.values()
        scalars = {
            "phases": float(len(self.state.started)),
            "dropped": float(sum(s.dropped for s in totals)),
            "errors_total": float(sum(s.error_count for s in totals)),
        }
        ledger = self.book.totals()
        if ledger:
            scalars.update({f"{k}_ids": float(ledger[k]) for k in ("acknowledged", "failed", "in_doubt", "recovered")})
        if self.verification is not None:
            scalars.update(self.verification.scalars())
        return scalars | self.client.scalars()

    def context(self, monitor: GateMonitor, now_ns: int, scalars: dict[str, float]) -> LoadGateContext:
        server = None if self.watch is None else self.watch.view
        ctx = LoadGateContext(self.aggregator, monitor.phases, now_ns, scalars, server, chaos=self.chaos)
        ctx.staleness = None if self.staleness is None else self.staleness.samples  # type: ignore[attr-defined]
        ctx.isolation = self.isolation  # type: ignore[attr-defined]
        return ctx

    def isolation_verdicts(self, workloads: Iterable[str]) -> list[Verdict]:
        """The built-in gate `isolation.<workload>` of each transactional workload (no report: no evidence)."""
        reports = self.isolation or {}
        return [isolation_verdict(name, reports.get(name)) for name in workloads]

    def finals(self, now_ns: int) -> list[Verdict]:
        """Every gate's final verdict (after the run)."""
        scalars = self.scalars()
        return [m.final(self.context(m, now_ns, scalars)) for m in self.monitors]
