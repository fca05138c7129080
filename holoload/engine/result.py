"""Builds a finished run's RunSummary (summary.json) and the bash canary's summary.txt keys from the engine.

The one place that reads the engine's parts (ledgers, checker, aggregator, chaos, fleet) for the
result; the verdict is decided by the caller (`core.result.decide_verdict`) and set afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from holoload import __version__
from holoload.core.gates.language import Call, Quantity, parse_gate
from holoload.core.gates.verdicts import Verdict
from holoload.core.model.scenario import Scenario, dump
from holoload.core.model.target import Target
from holoload.core.result import RunSummary
from holoload.core.stats.canary import CanaryAggregator
from holoload.core.stats.error_log import error_report
from holoload.core.stats.window import OpStats
from holoload.engine.load import LoadEngine


@dataclass
class RunRecord:
    """Facts about one run that are not measurements."""

    run_id: str
    started_at: str
    results_dir: str
    pg_url: str
    topology_target: str
    status: str = "RUNNING"
    enforce: bool = True
    exit_code: int | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    problems: list[str] = field(default_factory=list)
    stop_signal: str | None = None


def p95_threshold_ms(op: str, gates: dict[str, str]) -> float | None:
    """The SLO of a gate comparing `p95(op)` with a duration literal, in milliseconds."""
    for text in gates.values():
        gate = parse_gate(text)
        sides = (gate.left, gate.right)
        calls = [s for s in sides if isinstance(s, Call) and s.function.name == "p95" and s.op == op]
        limits = [s for s in sides if isinstance(s, Quantity)]
        if calls and limits:
            return limits[0].value * 1000
    return None


def latency_ms(
    count: int, min_us: float, mean_us: float, max_us: float, percentiles_us: dict[float, int | None]
) -> dict[str, float] | None:
    """min/mean/max and percentiles in milliseconds, or None when nothing was recorded."""
    if count == 0:
        return None
    out = {"min": min_us / 1000, "mean": mean_us / 1000, "max": max_us / 1000}
    out.update({f"p{p:g}": (v or 0) / 1000 for p, v in percentiles_us.items()})
    return out


def observed_p95_ms(agg: CanaryAggregator, op: str) -> float | None:
    hist = agg.histogram(op)
    value = hist.percentile_us(95) if hist is not None else None
    return None if value is None else value / 1000


def text_keys(
    record: RunRecord, scenario: Scenario, agg: CanaryAggregator, verdicts: list[Verdict]
) -> list[tuple[str, Any]]:
    """summary.txt lines, in the bash canary's order, one set of batch keys per batch group."""
    splits = [a for a in scenario.enabled_chaos() if a.action == "split"]
    keys: list[tuple[str, Any]] = [
        ("run_id", record.run_id),
        ("pg_url", record.pg_url),
        ("topology_target", record.topology_target),
        ("total_batches", scenario.total_batches),
        ("baseline_row_count", agg.baseline_count),
    ]
    for group in scenario.batches:
        stats = agg.ops.get(group.op)
        keys.append((f"batch_{group.label}_runs", stats.runs if stats else 0))
        keys.append((f"batch_{group.label}_rows", stats.rows if stats else 0))
    keys += [
        ("split_churn_enabled", bool(splits)),
        ("split_triggered", agg.split_ok > 0),
        ("split_after_batch_index", splits[0].batch_index if splits else ""),
    ]
    for group in scenario.batches:
        keys.append((f"slo_p95_{group.label}_ms", p95_threshold_ms(group.op, scenario.active_gates())))
    for group in scenario.batches:
        keys.append((f"observed_p95_{group.label}_ms", observed_p95_ms(agg, group.op)))
    keys += [
        ("failed_batches", agg.failed_batches),
        ("expected_final_row_count", agg.expected_final_count),
        ("observed_final_row_count", agg.final_count),
        ("slo_status", record.status),
    ]
    return keys


def summary_json(
    record: RunRecord,
    scenario: Scenario,
    target: Target | None,
    agg: CanaryAggregator,
    verdicts: list[Verdict],
    batches: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything about the run, machine-readable (documented in docs/results.md)."""
    ops = {}
    for op, stats in agg.ops.items():
        h = stats.histogram
        ops[op] = {
            "runs": stats.runs,
            "rows": stats.rows,
            "ok": stats.ok,
            "errors": stats.errors,
            "delta_mismatches": stats.mismatches,
            "count": h.count,
            "latency_ms": latency_ms(
                h.count, h.min_us, h.mean_us, h.max_us, {p: h.percentile_us(p) for p in (50, 90, 95, 99)}
            ),
        }
    return {
        "holoload_version": __version__,
        "run": record.__dict__,
        "verdict": record.status,
        "exit_code": record.exit_code,
        "scenario": dump(scenario),
        "target": None
        if target is None
        else {
            "name": target.name,
            "data": target.data,
            "nodes": target.node_names(),
            "topology": target.topology.source,
            "split": target.split.method,
        },
        "counts": {
            "baseline": agg.baseline_count,
            "final": agg.final_count,
            "expected_final": agg.expected_final_count,
            "failed_batches": agg.failed_batches,
            "failed_batch_indexes": agg.failed_batch_indexes,
        },
        "split": {
            "expected": agg.split_expected,
            "succeeded": agg.split_ok,
            "chaos_failed": agg.chaos_failed,
        },
        "ops": ops,
        "gates": [v.to_dict() for v in verdicts],
        "batches": batches,
    }


def canary_result(
    record: RunRecord,
    scenario: Scenario,
    target: Target | None,
    agg: CanaryAggregator,
    verdicts: list[Verdict],
    batches: list[dict[str, Any]],
) -> RunSummary:
    """The canary's result (its verdict as `record` has it so far)."""
    data = summary_json(record, scenario, target, agg, verdicts, batches)
    return RunSummary.from_json(data)


def _target_dict(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {
        "name": target.name,
        "data": target.data,
        "nodes": target.node_names(),
        "topology": target.topology.source,
        "split": target.split.method,
    }


def _op_figures(stats: OpStats, seconds: float) -> dict[str, Any]:
    h = stats.latency
    service = stats.service if stats.service.count else h  # closed loop: service time is the latency
    ps = (50, 90, 95, 99, 99.9)
    pcts = dict(zip(ps, h.percentiles_us(ps), strict=True))
    return {
        "ok": stats.ok,
        "rows": stats.rows,
        "errors": {c.value: n for c, n in stats.errors.items()},
        "error_count": stats.error_count,
        "dropped": stats.dropped,
        "retries": stats.retries,
        "ops_per_s": stats.ok / seconds if seconds > 0 else None,
        "latency_ms": latency_ms(h.count, h.min_us, h.mean_us, h.max_us, pcts),
        "service_p99_ms": (service.percentile_us(99) or 0) / 1000 if service.count else None,
        "early_starts": stats.early,
        "schedule_lag_p99_ms": (stats.lag.percentile_us(99) or 0) / 1000 if stats.lag.count else None,
        "clamped": h.clamped,
    }


def _check_summary(engine: LoadEngine | None) -> dict[str, Any]:
    """The ledgers and the checker's findings (empty when no op kept a ledger)."""
    if engine is None or not engine.book.entries():
        return {}
    result: dict[str, Any] = {"ledger": engine.book.totals(), "complete": False, "counts": None, "report": None}
    verification = engine.verification
    if verification is not None:
        result["complete"] = verification.complete
        if verification.report is not None:
            result["report"] = verification.report.to_dict()
            result["counts"] = verification.scalars() or None
            result["ok"] = verification.complete and verification.report.ok
        if verification.lost_acks:
            result["lost_ranges"] = list(verification.lost_acks)
    return result


def _client_keys(client: dict[str, Any]) -> list[tuple[str, Any]]:
    """summary.txt's client.* lines: the verdict, its evidence and the coordinator's loop lag."""
    coordinator = client["processes"].get("coordinator") or {}
    return [
        ("client.ok", client["ok"]),
        ("client.strained_windows", client["strained_windows"]),
        ("client.judged_windows", client["judged_windows"]),
        ("client.late_drops", client["late_drops"]),
        ("client.tick_late_max_s", client["tick_late_max_s"]),
        ("client.coordinator_lag_p99_ms", coordinator.get("lag_p99_ms_worst")),
    ]


def build_result(
    record: RunRecord,
    scenario: Scenario,
    target: Target | None,
    engine: LoadEngine | None,
    verdicts: list[Verdict],
) -> tuple[RunSummary, list[tuple[str, Any]]]:
    """The result and summary.txt keys of a sustained-load run: per phase, per workload.op figures.

    `engine` is None when the run stopped before its engine existed (an unreachable target).
    """
    phases: dict[str, Any] = {}
    keys: list[tuple[str, Any]] = [
        ("run_id", record.run_id),
        ("pg_url", record.pg_url),
        ("phases", len(scenario.phases)),
    ]
    if engine is not None:
        agg = engine.aggregator
        now = engine.perf_ns()
        for phase in scenario.phases:
            if phase.name not in agg.phase_spans:
                continue
            seconds = agg.elapsed_s([phase.name], now)
            ops: dict[str, Any] = {}
            for w in phase.workloads:
                for op in w.ops:
                    stats = agg.total(f"{w.name}.{op.name}", [phase.name])
                    if stats is not None:
                        ops[f"{w.name}.{op.name}"] = _op_figures(stats, seconds)
                        fig = ops[f"{w.name}.{op.name}"]
                        lat = fig["latency_ms"] or {}
                        prefix = f"{phase.name}.{w.name}.{op.name}"
                        keys += [
                            (f"{prefix}.ok", fig["ok"]),
                            (f"{prefix}.errors", fig["error_count"]),
                            (f"{prefix}.ops_per_s", fig["ops_per_s"]),
                            (f"{prefix}.p95_ms", lat.get("p95")),
                            (f"{prefix}.p99_ms", lat.get("p99")),
                        ]
            phases[phase.name] = {"measured": phase.measured, "seconds": seconds, "ops": ops}
    chaos = [] if engine is None or engine.chaos is None else engine.chaos.summary()
    staleness = None if engine is None or engine.staleness is None else engine.staleness.samples.summary()
    for fault in chaos:
        keys.append((f"chaos.{fault['name']}", f"fired {fault['fired']} ok {fault['ok']} healed {fault['healed']}"))
    check = _check_summary(engine)
    for name, value in (check.get("counts") or {}).items():
        keys.append((f"check.{name}", value))
    if engine is not None:
        fleet = engine.fleet
        keys += [
            ("workers", 1 if fleet is None else fleet.count),
            ("workers_lost", 0 if fleet is None else len(fleet.losses)),
        ]
        keys += _client_keys(engine.client.book.summary())
    isolation = None if engine is None or engine.isolation is None else engine.isolation.reports
    for name, report in (isolation or {}).items():
        keys.append((f"isolation.{name}", report.get("reason")))
    keys.append(("slo_status", record.status))
    data = {
        "holoload_version": __version__,
        "run": record.__dict__,
        "verdict": record.status,
        "exit_code": record.exit_code,
        "aborted_by": None if engine is None else engine.aborted_by,
        "workers": None if engine is None else engine.workers_summary(),
        "client": None if engine is None else engine.client.book.summary(),
        "chaos": chaos,
        "check": check,
        **({"isolation": isolation} if isolation else {}),
        **({"staleness": staleness} if staleness is not None else {}),
        "scenario": dump(scenario),
        "target": _target_dict(target),
        "phases": phases,
        "gates": [v.to_dict() for v in verdicts],
        # per op and endpoint: the first distinct error messages (SQLSTATE, count, first/last s)
        "error_messages": None
        if engine is None
        else error_report(engine.aggregator.errors, engine.aggregator.start_ns),
    }
    return RunSummary.from_json(data), keys
