"""Tests for holoload.core.compare.regression (pure rules) and holoload.shell.compare_cmd (files, table, exit code)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from holoload.core.compare.regression import Budget, Comparison, Delta, budget_from, compare, op_figures
from holoload.core.errors import ExitCode, InputError
from holoload.shell.compare_cmd import budget_from_env, load_summary, render, run_compare


def op(ops_per_s: float, p95: float, p99: float) -> dict[str, Any]:
    return {
        "ok": int(ops_per_s * 3),
        "rows": int(ops_per_s * 3),
        "errors": {},
        "error_count": 0,
        "dropped": 0,
        "retries": 0,
        "ops_per_s": ops_per_s,
        "latency_ms": {
            "min": 0.04,
            "mean": p95 / 3,
            "max": p99 * 5,
            "p50": p95 / 4,
            "p90": p95 * 0.8,
            "p95": p95,
            "p99": p99,
            "p99.9": p99 * 3,
        },
        "service_p99_ms": p99,
        "early_starts": 0,
        "schedule_lag_p99_ms": None,
        "clamped": 0,
    }


def load_run() -> dict[str, Any]:
    """Trimmed from a real `scenarios/oltp.toml` run (phases shortened to 1 s / 3 s)."""
    return {
        "holoload_version": "0.1.0",
        "run": {"run_id": "oltp-20261122T023308Z-299b3a", "status": "PASS", "exit_code": 0, "problems": []},
        "verdict": "PASS",
        "exit_code": 0,
        "scenario": {"name": "oltp"},
        "phases": {
            "warmup": {"measured": False, "seconds": 1.196, "ops": {"warm.point_read": op(5938.61, 2.165, 5.311)}},
            "read_heavy": {
                "measured": True,
                "seconds": 3.003,
                "ops": {"read_heavy.point_read": op(13859.16, 2.153, 4.975)},
            },
            "mixed": {
                "measured": True,
                "seconds": 3.047,
                "ops": {
                    "mixed.point_read": op(1137.97, 11.191, 21.295),
                    "mixed.update": op(407.33, 20.047, 55.487),
                },
            },
        },
        "gates": [],
    }


def canary_run() -> dict[str, Any]:
    """Trimmed from a real `scenarios/sales_facts.toml` run."""
    return {
        "run": {"status": "PASS"},
        "verdict": "PASS",
        "scenario": {"name": "sales_facts"},
        "ops": {
            "batch_20k": {
                "runs": 3,
                "rows": 60000,
                "ok": 3,
                "errors": 0,
                "count": 3,
                "latency_ms": {
                    "min": 83.174,
                    "mean": 116.05,
                    "max": 155.333,
                    "p50": 109.695,
                    "p90": 155.391,
                    "p95": 155.391,
                    "p99": 155.391,
                },
            },
            "batch_50k": {
                "runs": 3,
                "rows": 150000,
                "ok": 3,
                "errors": 0,
                "count": 3,
                "latency_ms": {
                    "min": 211.913,
                    "mean": 260.16,
                    "max": 295.731,
                    "p50": 272.895,
                    "p90": 295.935,
                    "p95": 295.935,
                    "p99": 295.935,
                },
            },
        },
        "gates": [],
    }


def scaled(summary: dict[str, Any], path: str, metric: str, factor: float) -> dict[str, Any]:
    """A copy with one figure of one op ("phase.workload.op", or a canary op) multiplied by factor."""
    out = copy.deepcopy(summary)
    if "phases" in out:
        phase, name = path.split(".", 1)
        fig = out["phases"][phase]["ops"][name]
    else:
        fig = out["ops"][path]
    if metric == "ops_per_s":
        fig["ops_per_s"] *= factor
    else:
        fig["latency_ms"][metric] *= factor
    return out


def everything_scaled(summary: dict[str, Any], latency: float, throughput: float) -> dict[str, Any]:
    out = copy.deepcopy(summary)
    for phase in out["phases"].values():
        for fig in phase["ops"].values():
            fig["ops_per_s"] *= throughput
            for key in fig["latency_ms"]:
                fig["latency_ms"][key] *= latency
    return out


# ---------------------------------------------------------------- compare rules


def test_identical_runs_compare_ok() -> None:
    """A run compared with itself: every measured op and metric present, all ok, change 0."""
    result = compare(load_run(), load_run())
    assert result.ok and result.regressions == ()
    ops = {d.op for d in result.deltas}
    assert ops == {"read_heavy.read_heavy.point_read", "mixed.mixed.point_read", "mixed.mixed.update"}
    assert len(result.deltas) == 3 * 3
    assert all(d.change == 0 and d.verdict == "ok" and d.note == "" for d in result.deltas)
    (note,) = result.notes  # summaries alone: one figure per side, so no interval
    assert note.startswith("9 figure(s) compared without a noise estimate")


def test_p95_regression_of_20_percent_is_the_only_regression() -> None:
    """p95 of one op x1.2 against a 10 % budget: exactly that delta regresses."""
    current = scaled(load_run(), "mixed.mixed.update", "p95", 1.2)
    result = compare(load_run(), current)
    assert not result.ok
    (delta,) = result.regressions
    assert (delta.op, delta.metric, delta.verdict) == ("mixed.mixed.update", "p95_ms", "REGRESSION")
    assert delta.baseline == pytest.approx(20.047)
    assert delta.current == pytest.approx(20.047 * 1.2)
    assert delta.change == pytest.approx(0.2)


def test_p99_regression_is_detected_too() -> None:
    """p99 follows the same latency rule as p95."""
    current = scaled(load_run(), "read_heavy.read_heavy.point_read", "p99", 1.25)
    (delta,) = compare(load_run(), current).regressions
    assert (delta.op, delta.metric) == ("read_heavy.read_heavy.point_read", "p99_ms")


def test_throughput_drop_of_20_percent_regresses() -> None:
    """ops/s x0.8 against a 10 % budget regresses; the change is negative."""
    current = scaled(load_run(), "mixed.mixed.point_read", "ops_per_s", 0.8)
    (delta,) = compare(load_run(), current).regressions
    assert (delta.op, delta.metric) == ("mixed.mixed.point_read", "ops_per_s")
    assert delta.change == pytest.approx(-0.2)


def test_changes_within_budget_are_ok() -> None:
    """Every latency 5 % worse and every throughput 5 % lower stays within a 10 % budget."""
    result = compare(load_run(), everything_scaled(load_run(), latency=1.05, throughput=0.95))
    assert result.ok
    assert all(d.change is not None and abs(d.change) == pytest.approx(0.05) for d in result.deltas)


def test_tighter_budget_turns_the_same_change_into_regressions() -> None:
    """The same 5 % changes regress every metric with a 2 % budget (and no minimum change)."""
    budget = Budget(latency=0.02, throughput=0.02, latency_min_ms=0, throughput_min_ops=0)
    result = compare(load_run(), everything_scaled(load_run(), 1.05, 0.95), budget)
    assert len(result.regressions) == len(result.deltas) == 9
    # with the default minimum change, the 0.1 ms rise of a 2 ms p95 is no regression; 55 -> 58 ms is
    default_min = compare(load_run(), everything_scaled(load_run(), 1.05, 0.95), Budget(latency=0.02, throughput=0.02))
    assert ("read_heavy.read_heavy.point_read", "p95_ms") not in {(d.op, d.metric) for d in default_min.regressions}
    assert ("mixed.mixed.update", "p99_ms") in {(d.op, d.metric) for d in default_min.regressions}


def test_improvements_are_never_regressions() -> None:
    """Faster and higher throughput is ok, whatever the size of the change."""
    result = compare(load_run(), everything_scaled(load_run(), latency=0.3, throughput=3.0))
    assert result.ok


def test_budget_boundary_is_inclusive() -> None:
    """Exactly at the budget is ok; just past it regresses (latency and throughput)."""
    base = {"phases": {"p": {"measured": True, "ops": {"w.o": op(100.0, 100.0, 100.0)}}}}
    at = {"phases": {"p": {"measured": True, "ops": {"w.o": op(90.0, 110.0, 110.0)}}}}
    past = {"phases": {"p": {"measured": True, "ops": {"w.o": op(89.0, 111.0, 111.0)}}}}
    assert compare(base, at).ok
    assert {d.metric for d in compare(base, past).regressions} == {"p95_ms", "p99_ms", "ops_per_s"}


def test_unmeasured_phases_are_not_compared() -> None:
    """A warm-up phase 3x slower changes nothing."""
    current = scaled(load_run(), "warmup.warm.point_read", "p95", 3.0)
    result = compare(load_run(), current)
    assert result.ok
    assert not any(d.op.startswith("warmup.") for d in result.deltas)


def test_missing_op_is_a_regression_and_new_op_is_not() -> None:
    """An op gone from the current run regresses (per metric, verdict "missing"); an added op is only reported."""
    current = load_run()
    del current["phases"]["mixed"]["ops"]["mixed.update"]
    current["phases"]["mixed"]["ops"]["mixed.delete"] = op(50.0, 3.0, 6.0)
    result = compare(load_run(), current)
    assert not result.ok
    assert {(d.op, d.metric, d.verdict, d.note) for d in result.regressions} == {
        ("mixed.mixed.update", m, "missing", "missing in current") for m in ("p95_ms", "p99_ms", "ops_per_s")
    }
    assert all(d.current is None and d.baseline is not None for d in result.regressions)
    new = [d for d in result.deltas if d.op == "mixed.mixed.delete"]
    assert len(new) == 3 and all(d.verdict == "new" and not d.regression and d.baseline is None for d in new)
    assert result.deltas[-1].op == "mixed.mixed.delete"  # baseline ops first, then new ones


def test_missing_phase_makes_its_ops_missing() -> None:
    """A whole measured phase missing (e.g. an interrupted run) regresses each of its ops."""
    current = load_run()
    del current["phases"]["mixed"]
    current["verdict"] = "INTERRUPTED"
    result = compare(load_run(), current)
    assert {d.op for d in result.regressions} == {"mixed.mixed.point_read", "mixed.mixed.update"}
    assert "current run ended INTERRUPTED" in result.notes


def test_op_without_latency_in_current_regresses() -> None:
    """An op that recorded nothing (latency_ms null, 0 ops/s) regresses: no data and a 100 % drop."""
    current = load_run()
    fig = current["phases"]["mixed"]["ops"]["mixed.update"]
    fig["latency_ms"] = None
    fig["ops_per_s"] = 0.0
    result = compare(load_run(), current)
    by_metric = {d.metric: d for d in result.regressions}
    assert set(by_metric) == {"p95_ms", "p99_ms", "ops_per_s"}
    assert by_metric["p95_ms"].note == "no data in current"
    assert by_metric["p95_ms"].verdict == "REGRESSION"
    assert by_metric["ops_per_s"].change == pytest.approx(-1.0)


def test_zero_baseline_does_not_divide() -> None:
    """Baseline 0: change is None; throughput from 0 never regresses, latency above the minimum change does."""
    base = {"phases": {"p": {"measured": True, "ops": {"w.o": op(0.0, 0.0, 0.0)}}}}
    cur = {"phases": {"p": {"measured": True, "ops": {"w.o": op(5.0, 5.0, 0.4)}}}}
    result = compare(base, cur)
    by_metric = {d.metric: d for d in result.deltas}
    assert all(d.change is None for d in result.deltas)
    assert by_metric["ops_per_s"].regression is False
    assert by_metric["p95_ms"].regression is True
    assert by_metric["p99_ms"].regression is False  # 0 -> 0.4 ms: under the 0.5 ms minimum change
    assert by_metric["p99_ms"].why_ok == "under minimum change"


def test_canary_compares_batch_latencies_only() -> None:
    """Canary runs compare p95/p99 per batch op; throughput is absent, so not compared."""
    same = compare(canary_run(), canary_run())
    assert same.ok
    assert {(d.op, d.metric) for d in same.deltas} == {
        (o, m) for o in ("batch_20k", "batch_50k") for m in ("p95_ms", "p99_ms")
    }
    (delta,) = compare(canary_run(), scaled(canary_run(), "batch_50k", "p95", 1.2)).regressions
    assert (delta.op, delta.metric) == ("batch_50k", "p95_ms")


def test_notes_flag_different_scenarios_and_empty_baselines() -> None:
    """Comparing a canary with a load run says so; a baseline without ops says nothing could be compared."""
    result = compare(canary_run(), load_run())
    assert "different scenarios: baseline 'sales_facts', current 'oltp'" in result.notes
    assert len(result.regressions) == 4  # both batch ops missing (p95, p99)
    empty = compare({"verdict": "ERROR", "scenario": {"name": "oltp"}, "phases": {}}, load_run())
    assert empty.ok
    assert "baseline run ended ERROR" in empty.notes
    assert any("no measured ops" in n for n in empty.notes)


def test_op_figures_reads_both_shapes() -> None:
    """op_figures: measured phase ops as phase.workload.op, canary batch ops as is, absent throughput as None."""
    figures = op_figures(load_run())
    assert figures["mixed.mixed.update"] == {"p95_ms": 20.047, "p99_ms": 55.487, "ops_per_s": 407.33}
    assert "warmup.warm.point_read" not in figures
    assert op_figures(canary_run())["batch_20k"] == {"p95_ms": 155.391, "p99_ms": 155.391, "ops_per_s": None}
    assert op_figures({}) == {}


def test_comparison_properties() -> None:
    """regressions filters the deltas; ok is their absence."""
    good = Delta("a", "p95_ms", 1.0, 1.0, 0.0, False)
    bad = Delta("a", "p99_ms", 1.0, 2.0, 1.0, True)
    assert Comparison((good, bad)).regressions == (bad,)
    assert not Comparison((good, bad)).ok
    assert Comparison((good,)).ok and Comparison(()).ok


# ---------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, Budget(0.10, 0.10)),
        ({"latency": "15%"}, Budget(0.15, 0.10)),
        ({"latency": "+15%", "throughput": "-5%"}, Budget(0.15, 0.05)),
        ({"throughput": "0.05"}, Budget(0.10, 0.05)),
        ({"latency": " 250 % "}, Budget(2.5, 0.10)),
        ({"latency": "0", "throughput": "100%"}, Budget(0.0, 1.0)),
    ],
)
def test_budget_from_parses_percentages_and_fractions(values: dict[str, str], expected: Budget) -> None:
    """Percentages, fractions below 1 and signs pointing the bad way are accepted; unset keys keep 10 %."""
    assert budget_from(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"latency": "abc"}, "latency='abc': expected a percentage"),
        ({"latency": ""}, "latency='': expected a percentage"),
        ({"throughput": "%"}, "throughput='%': expected a percentage"),
        ({"latency": "nan"}, "expected a percentage"),
        ({"latency": "-5%"}, "latency budget is how far it may grow (+)"),
        ({"throughput": "+5%"}, "throughput budget is how far it may fall (-)"),
        ({"latency": "15"}, "ambiguous; write 15% or a fraction below 1"),
        ({"throughput": "150%"}, "cannot fall by more than 100%"),
        ({"latency": "--5%"}, "expected a percentage"),
        ({"p95": "5%"}, "unknown key(s) p95"),
    ],
)
def test_budget_from_rejects_bad_values_clearly(values: dict[str, str], message: str) -> None:
    """Bad budget text raises ValueError naming the key, the value and what was expected."""
    with pytest.raises(ValueError) as info:
        budget_from(values)
    assert message in str(info.value)


def test_budget_rejects_impossible_values_directly() -> None:
    """Budget itself refuses a negative latency budget or a throughput budget outside 0..1."""
    with pytest.raises(ValueError):
        Budget(latency=-0.1)
    with pytest.raises(ValueError):
        Budget(throughput=1.5)


def test_budget_from_env_then_overrides_win() -> None:
    """Environment variables set the budget; explicit overrides win over them; empty variables count as unset."""
    env = {"HOLOLOAD_COMPARE_LATENCY": "20%", "HOLOLOAD_COMPARE_THROUGHPUT": "0.3"}
    assert budget_from_env(env, {}) == Budget(0.20, 0.30)
    assert budget_from_env(env, {"latency": "5%"}) == Budget(0.05, 0.30)
    assert budget_from_env(env, {"latency": "5%", "throughput": "1%"}) == Budget(0.05, 0.01)
    assert budget_from_env({"HOLOLOAD_COMPARE_LATENCY": ""}, {}) == Budget()
    assert budget_from_env({}, {}) == Budget()


def test_budget_from_env_names_the_bad_source() -> None:
    """A bad environment value is an InputError (exit 2) naming the variable, even when an override would replace it."""
    with pytest.raises(InputError) as info:
        budget_from_env({"HOLOLOAD_COMPARE_THROUGHPUT": "lots"}, {"throughput": "5%"})
    assert str(info.value).startswith("HOLOLOAD_COMPARE_THROUGHPUT: ")
    assert info.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(InputError, match="latency='x'"):
        budget_from_env({}, {"latency": "x"})


# ---------------------------------------------------------------- command


def write_run(root: Path, summary: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return root


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_run_compare_exit_codes(tmp_path: Path) -> None:
    """0 against an identical run, 1 against a 20 % p95 regression; the table shows which delta."""
    base = write_run(tmp_path / "base", load_run())
    same = write_run(tmp_path / "same", load_run())
    worse = write_run(tmp_path / "worse", scaled(load_run(), "mixed.mixed.update", "p95", 1.2))

    con, out = console()
    assert run_compare(base, same, Budget(), con) == 0
    assert (
        out.getvalue()
        .rstrip()
        .endswith(
            "compare: 0 regressions (budget latency +10%, throughput -10%; minimum change 0.5 ms, 5 ops/s; 95% interval)"
        )
    )

    con, out = console()
    assert run_compare(base, worse, Budget(), con) == 1
    text = out.getvalue()
    (line,) = [ln for ln in text.splitlines() if "REGRESSION" in ln]
    assert line.split() == [
        "mixed.mixed.update",
        "p95_ms",
        "20.0",
        "24.1",
        "+20.0%",
        "-",
        "no",
        "interval",
        "REGRESSION",
    ]
    assert "compare: 1 regression (budget latency +10%, throughput -10%;" in text

    con, out = console()
    assert run_compare(base, worse, Budget(latency=0.25), con) == 0


def test_run_compare_missing_directory_is_input_error(tmp_path: Path) -> None:
    """A results directory without summary.json is an InputError naming the path."""
    base = write_run(tmp_path / "base", load_run())
    con, _ = console()
    with pytest.raises(InputError) as info:
        run_compare(base, tmp_path / "nowhere", Budget(), con)
    assert str(tmp_path / "nowhere" / "summary.json") in str(info.value)
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_load_summary_rejects_invalid_files(tmp_path: Path) -> None:
    """Invalid JSON or a non-object is an InputError naming the file; a direct path to summary.json works."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_summary(bad)
    (bad / "summary.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_summary(bad)
    good = write_run(tmp_path / "good", load_run())
    assert load_summary(good) == load_summary(good / "summary.json")
    assert load_summary(good).to_json() == json.loads(json.dumps(load_run()))


def test_render_table_and_budget_line() -> None:
    """One row per delta with op, metric, baseline, current, change % and verdict; then notes and the count line."""
    current = load_run()
    del current["phases"]["read_heavy"]
    current = scaled(current, "mixed.mixed.point_read", "ops_per_s", 0.5)
    budget = Budget(latency=0.15, throughput=0.05)
    text = render(compare(load_run(), current, budget), budget=budget)
    lines = text.splitlines()
    assert lines[0].split() == ["op", "metric", "baseline", "current", "change", "interval", "samples", "verdict"]
    rows = {tuple(ln.split()[:2]): ln.split()[2:] for ln in lines[1:] if ln.split()[0].count(".") == 2}
    assert rows[("read_heavy.read_heavy.point_read", "p95_ms")] == ["2.153", "-", "-", "-", "-", "missing"]
    assert rows[("mixed.mixed.point_read", "ops_per_s")] == [
        "1138",
        "569.0",
        "-50.0%",
        "-",
        "no",
        "interval",
        "REGRESSION",
    ]
    assert rows[("mixed.mixed.update", "p99_ms")] == ["55.5", "55.5", "+0.0%", "-", "no", "interval", "ok"]
    assert lines[-1] == (
        "compare: 4 regressions (budget latency +15%, throughput -5%; minimum change 0.5 ms, 5 ops/s; 95% interval)"
    )
