"""History records built from summary.json: load runs, canaries, killed runs; series and latest verdicts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from holoload.core.history.model import (
    CANARY_PHASE,
    RunContext,
    canary_histograms,
    entry_from_summary,
    environment_of,
    latest_verdicts,
    op_keys,
    scenario_hash,
    series,
)
from holoload.core.stats.histogram import LatencyHistogram

LOAD = {
    "holoload_version": "0.1.0",
    "run": {
        "run_id": "oltp-1",
        "started_at": "2026-12-02T10:00:00.500000+00:00",
        "ended_at": "2026-12-02T10:01:00+00:00",
        "duration_s": 59.5,
        "results_dir": "results/oltp_1",
        "problems": ["x"],
    },
    "verdict": "FAIL",
    "exit_code": 1,
    "scenario": {"name": "oltp", "window": "1s", "phases": [{"name": "main"}]},
    "target": {"name": "session", "data": "per_node", "nodes": ["node1", "node2"], "topology": "partitions"},
    "phases": {
        "warm": {"measured": False, "seconds": 1.0, "ops": {"w.ins": {"ok": 5, "errors": {}, "error_count": 0}}},
        "main": {
            "measured": True,
            "seconds": 10.0,
            "ops": {
                "w.ins": {
                    "ok": 100,
                    "rows": 100,
                    "errors": {"conflict": 2, "timeout": 1},
                    "error_count": 3,
                    "dropped": 4,
                    "retries": 5,
                    "ops_per_s": 10.0,
                    "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 9.0},
                }
            },
        },
    },
    "gates": [
        {
            "name": "g1",
            "expression": "p95(ins) <= 1ms",
            "passed": False,
            "observed": 0.002,
            "threshold": 0.001,
            "observed_text": "2ms",
            "threshold_text": "1ms",
            "reason": "2ms > 1ms",
        },
    ],
}

CANARY = {
    "run": {"run_id": "sales-1", "started_at": "2026-12-02T09:00:00+00:00"},
    "verdict": "PASS",
    "exit_code": 0,
    "scenario": {"name": "sales_facts"},
    "target": {"name": "local", "nodes": ["node1"]},
    "ops": {
        "batch_20k": {
            "runs": 3,
            "ok": 2,
            "errors": 1,
            "latency_ms": {"p50": 300.0, "p95": 310.0, "p99": 310.0, "max": 310.0},
        },
    },
    "gates": [],
    "batches": [
        {"op": "batch_20k", "elapsed_s": 0.3, "status": "ok"},
        {"op": "batch_20k", "elapsed_s": 0.31, "status": "delta_mismatch"},
        {"op": "batch_20k", "elapsed_s": 9.0, "status": "error", "error_class": "timeout"},
    ],
}

CONTEXT = RunContext("abc", "main", None, "host", 2, "cpu", 0.5)


def test_a_load_summary_becomes_a_run_with_per_phase_ops_gates_and_context() -> None:
    entry = entry_from_summary(LOAD, context=CONTEXT, histograms={("main", "w.ins"): "HIST"}, environment_fallback="ci")
    assert (entry.run_id, entry.scenario, entry.target, entry.verdict, entry.exit_code) == (
        "oltp-1",
        "oltp",
        "session",
        "FAIL",
        1,
    )
    assert entry.started_ts == pytest.approx(1796205600.5)
    assert entry.topology == "2 nodes, per_node, partitions"
    assert (entry.environment, entry.git_commit, entry.git_branch, entry.host_cpus, entry.host_load1) == (
        "ci",
        "abc",
        "main",
        2,
        0.5,
    )
    assert entry.scenario_hash == scenario_hash(LOAD["scenario"]) and len(entry.scenario_hash) == 16
    main = entry.op("main", "w.ins")
    assert main is not None
    assert (main.ok, main.errors, dict(main.errors_by_class), main.dropped, main.retries, main.rows) == (
        100,
        3,
        {"conflict": 2, "timeout": 1},
        4,
        5,
        100,
    )
    assert (main.p50_ms, main.p95_ms, main.p99_ms, main.max_ms, main.ops_per_s, main.histogram) == (
        1.0,
        2.0,
        3.0,
        9.0,
        10.0,
        "HIST",
    )
    warm = entry.op("warm", "w.ins")
    assert warm is not None and warm.measured is False and warm.p95_ms is None
    [gate] = entry.gates
    assert (gate.passed, gate.observed, gate.threshold, gate.state) == (False, 0.002, 0.001, "fail")
    assert entry.problems == ("x",)


def test_a_canary_summary_files_batch_ops_with_error_classes_and_a_histogram_from_its_batches() -> None:
    histograms = canary_histograms(CANARY["batches"])
    entry = entry_from_summary(CANARY, context=RunContext(), histograms=histograms)
    [op] = entry.ops
    assert (op.phase, op.op, op.ok, op.errors, dict(op.errors_by_class)) == (
        CANARY_PHASE,
        "batch_20k",
        2,
        1,
        {"timeout": 1},
    )
    h = LatencyHistogram.decode(histograms[(CANARY_PHASE, "batch_20k")].encode())
    assert h.count == 2 and h.percentile_us(100) == pytest.approx(
        310_000, rel=0.001
    )  # the failed batch is not a latency
    assert entry.environment == "default"


def test_a_killed_runs_rebuilt_summary_keeps_last_live_gate_states_as_no_verdict() -> None:
    killed = {
        **LOAD,
        "verdict": "KILLED",
        "exit_code": None,
        "run": {"run_id": "oltp-k", "started_at": 1796205600.25, "status": "KILLED"},
        "gates": [
            {"name": "g1", "passed": True, "state": "pass", "reason": "last live state before the run ended: ok"}
        ],
        "phases": {"main": {"seconds": 2.0, "ops": {"w.ins": {"ok": 7, "error_count": 2, "latency_ms": None}}}},
    }
    entry = entry_from_summary(killed, context=RunContext(), histograms={})
    assert (entry.verdict, entry.exit_code, entry.started_ts) == ("KILLED", None, 1796205600.25)
    assert entry.started_at.startswith("2026-12-02T10:00:00.25")
    assert entry.gates[0].passed is None and entry.gates[0].state == "pass"
    [op] = entry.ops  # rebuilt from timeseries.csv: error_count without classes, no latency
    assert (op.ok, op.errors, dict(op.errors_by_class), op.p95_ms) == (7, 2, {}, None)


def test_environment_comes_from_the_summary_then_the_context_then_the_fallback() -> None:
    assert environment_of({"env": "staging"}, RunContext(environment="ci"), "x") == "staging"
    assert environment_of({"env": {"name": "prod", "vars": {}}}, RunContext(), None) == "prod"
    assert environment_of({"run": {"env": "pr"}}, RunContext(), None) == "pr"
    assert environment_of({}, RunContext(environment="ci"), "x") == "ci"
    assert environment_of({}, RunContext(), "x") == "x"
    assert environment_of({}, RunContext(), None) == "default"


def test_a_summary_without_a_run_id_is_refused() -> None:
    with pytest.raises(ValueError, match="run_id"):
        entry_from_summary({"run": {}}, context=RunContext(), histograms={})


def test_series_op_keys_and_latest_verdicts_follow_start_time() -> None:
    base = entry_from_summary(LOAD, context=RunContext(), histograms={})
    later = replace(base, run_id="oltp-2", started_ts=base.started_ts + 10, verdict="PASS")
    other_env = replace(base, run_id="oltp-3", started_ts=base.started_ts + 20, environment="staging")
    runs: list[Any] = [later, other_env, base]
    assert [(r.run_id, v) for r, v in series(runs, "main", "w.ins", "p95_ms")] == [
        ("oltp-1", 2.0),
        ("oltp-2", 2.0),
        ("oltp-3", 2.0),
    ]
    assert series(runs, "warm", "w.ins", "p95_ms") == []  # no figure: left out, not zero
    assert op_keys(runs) == [("main", "w.ins")]  # unmeasured phases are not trended
    latest = latest_verdicts(runs)
    assert latest[("oltp", "default")].run_id == "oltp-2" and latest[("oltp", "staging")].run_id == "oltp-3"
    with pytest.raises(ValueError):
        series(runs, "main", "w.ins", "p42")
