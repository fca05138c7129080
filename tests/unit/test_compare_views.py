"""Comparisons on disk: results directories with timeseries.csv, sets of runs, and the regression sections
of summary.md, junit.xml and report.html."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from holoload.core.compare.regression import Budget, compare_runs
from holoload.core.errors import InputError
from holoload.shell.artifacts import TIMESERIES_COLUMNS
from holoload.shell.ci_outputs import junit_xml, summary_markdown
from holoload.shell.cli import dispatch
from holoload.shell.compare_cmd import budget_from_env, comparison_record, load_runs, run_compare
from holoload.shell.html_report import render_report
from holoload.shell.repeat import set_gates


def write_run(root: Path, p95_ms: float, seed: int, *, windows: int = 15, noise: float = 0.05) -> Path:
    """A results directory: summary.json and timeseries.csv of op main.w.o (plus an endpoint row and a warm-up)."""
    rng = np.random.default_rng(seed)
    p95s = p95_ms * np.exp(rng.normal(0, noise, windows))
    rates = 200 / p95s
    root.mkdir(parents=True)
    with (root / "timeseries.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(TIMESERIES_COLUMNS)
        row = dict.fromkeys(TIMESERIES_COLUMNS, "0")
        out.writerow({**row, "phase": "warm", "workload": "w", "op": "o", "endpoint": "*", "p95_ms": "99"}.values())
        for i, (p95, rate) in enumerate(zip(p95s, rates, strict=True)):
            base = {**row, "phase": "main", "window": str(i), "workload": "w", "op": "o"}
            out.writerow({**base, "endpoint": "node1", "p95_ms": "1000", "p99_ms": "1000"}.values())
            merged = {"endpoint": "*", "p95_ms": f"{p95:.3f}", "p99_ms": f"{2 * p95:.3f}", "ops_per_s": f"{rate:.1f}"}
            out.writerow({**base, **merged}.values())
    fig = {"ops_per_s": float(np.mean(rates)), "latency_ms": {"p95": float(np.median(p95s)), "p99": 2 * p95_ms}}
    summary = {
        "scenario": {"name": "s"},
        "verdict": "PASS",
        "exit_code": 0,
        "run": {"run_id": root.name, "results_dir": str(root), "status": "PASS"},
        "phases": {"warm": {"measured": False, "ops": {}}, "main": {"measured": True, "ops": {"w.o": fig}}},
        "gates": [{"name": "g", "passed": True, "expression": "p95(o) <= 1s", "observed_text": "5ms"}],
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=220, color_system=None), out


def test_load_runs_reads_windows_of_measured_phases(tmp_path: Path) -> None:
    """A results directory gives one run with its merged per-window series; summary.json paths work too."""
    root = write_run(tmp_path / "r", 5.0, 1)
    (run,) = load_runs(root)
    assert set(run.windows) == {"main.w.o"}
    assert len(run.windows["main.w.o"]["p95_ms"]) == 15 and max(run.windows["main.w.o"]["p95_ms"]) < 100
    assert load_runs(root / "summary.json")[0].windows == run.windows
    assert run.label == str(root)


def test_load_runs_reads_a_set_by_set_json_or_by_subdirectories(tmp_path: Path) -> None:
    """A set directory: set.json lists its runs; without it, every subdirectory with a summary.json is a run."""
    plain = tmp_path / "plain"
    for i in range(3):
        write_run(plain / f"s_{i}", 5.0, i)
    assert [Path(r.label).name for r in load_runs(plain)] == ["s_0", "s_1", "s_2"]
    (plain / "set.json").write_text(json.dumps({"runs": [{"results_dir": "/elsewhere/s_2"}, {"results_dir": "s_0"}]}))
    assert [Path(r.label).name for r in load_runs(plain)] == ["s_2", "s_0"]
    (plain / "set.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(InputError, match="lists no runs"):
        load_runs(plain)
    with pytest.raises(InputError, match="summary.json: not found"):
        load_runs(tmp_path / "empty-nowhere")


def test_compare_command_passes_noise_and_fails_a_real_slowdown(tmp_path: Path) -> None:
    """Two unchanged runs compare ok; a run 30 % slower in every window regresses, with its interval printed."""
    base = write_run(tmp_path / "base", 5.0, 1)
    same = write_run(tmp_path / "same", 5.0, 2)
    slow = write_run(tmp_path / "slow", 6.5, 3)
    con, out = console()
    assert run_compare(base, same, Budget(), con) == 0
    con, out = console()
    assert run_compare(base, slow, Budget(), con) == 1
    (line,) = [ln for ln in out.getvalue().splitlines() if ln.startswith("main.w.o") and "p95_ms" in ln]
    cells = line.split()
    assert cells[-1] == "REGRESSION" and cells[7:9] == ["15/15", "windows"]
    assert cells[5].startswith("[+") and cells[6].endswith("%]") and cells[4].startswith("+")
    assert dispatch(["compare", str(base), str(slow)]) == 1
    assert dispatch(["compare", str(base), str(same)]) == 0


def test_compare_sets_of_runs(tmp_path: Path) -> None:
    """A set against a set: every run's windows count (3 x 15 a side)."""
    for i in range(3):
        write_run(tmp_path / "a" / f"r{i}", 5.0, 10 + i)
        write_run(tmp_path / "b" / f"r{i}", 6.5, 20 + i)
    comparison = compare_runs(load_runs(tmp_path / "a"), load_runs(tmp_path / "b"))
    p95 = next(d for d in comparison.deltas if d.metric == "p95_ms")
    assert p95.regression and p95.samples == (45, 45) and comparison.runs == (3, 3)
    assert dispatch(["compare", str(tmp_path / "a"), str(tmp_path / "a" / "r0")]) == 0


def test_budget_keys_from_env_and_flags() -> None:
    """The new keys come from HOLOLOAD_COMPARE_* and --budget like the old ones; bad values name their source."""
    env = {"HOLOLOAD_COMPARE_LATENCY_MIN": "2ms", "HOLOLOAD_COMPARE_CONFIDENCE": "99%"}
    budget = budget_from_env(env, {"throughput_min": "20/s"})
    assert (budget.latency_min_ms, budget.confidence, budget.throughput_min_ops) == (2.0, 0.99, 20.0)
    with pytest.raises(InputError, match="HOLOLOAD_COMPARE_CONFIDENCE"):
        budget_from_env({"HOLOLOAD_COMPARE_CONFIDENCE": "120%"}, {})
    with pytest.raises(InputError, match="latency_min='-1'"):
        budget_from_env({}, {"latency_min": "-1"})


def regressed_summary(tmp_path: Path) -> dict[str, Any]:
    base = load_runs(write_run(tmp_path / "base", 5.0, 1))
    cur = load_runs(write_run(tmp_path / "cur", 6.5, 2))
    summary = json.loads((tmp_path / "cur" / "summary.json").read_text())
    summary["baseline"] = comparison_record(compare_runs(base, cur), base)
    summary["verdict"] = summary["run"]["status"] = "FAIL"
    summary["exit_code"] = 1
    return summary


def test_junit_has_a_test_case_per_compared_figure(tmp_path: Path) -> None:
    """Each compared figure is a test case; a regression is a failure naming the numbers and the interval."""
    suite = ET.fromstring(junit_xml(regressed_summary(tmp_path)))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"g", "main.w.o p95_ms", "main.w.o p99_ms", "main.w.o ops_per_s"}  # no bare "run" case
    assert cases["main.w.o p95_ms"].get("classname") == "holoload.s.baseline"
    failure = cases["main.w.o p95_ms"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("main.w.o p95_ms: 5.") and "-> 6." in message and "interval [+" in message
    assert "budget latency +10%" in message
    assert suite.get("tests") == "4" and suite.get("failures") == str(len(suite.findall(".//failure")))


def test_summary_md_and_report_html_show_the_regression_with_numbers(tmp_path: Path) -> None:
    """summary.md gets a Baseline comparison section (headline FAIL, table); report.html a section after the gates."""
    summary = regressed_summary(tmp_path)
    md = summary_markdown(summary)
    assert "### Baseline comparison: FAIL, 3 regressions" in md
    (row,) = [ln for ln in md.splitlines() if ln.startswith("| main.w.o | p95_ms |")]
    assert "**REGRESSION**" in row and "15/15 windows" in row and "[+" in row
    assert md.index("### Gates") < md.index("### Baseline comparison")
    (tmp_path / "cur" / "summary.json").write_text(json.dumps(summary))
    html = render_report(tmp_path / "cur")
    assert '<section id="baseline"><h2>Baseline comparison: FAIL, 3 regressions</h2>' in html
    assert html.index('id="gates"') < html.index('id="baseline"')
    assert '<tr class="fail"><td>main.w.o</td><td>p95_ms</td>' in html


def test_an_ok_comparison_renders_as_ok(tmp_path: Path) -> None:
    base = load_runs(write_run(tmp_path / "base", 5.0, 1))
    cur = load_runs(write_run(tmp_path / "cur", 5.0, 2))
    summary = {
        "scenario": {"name": "s"},
        "verdict": "PASS",
        "baseline": comparison_record(compare_runs(base, cur), base),
    }
    assert "### Baseline comparison: ok" in summary_markdown(summary)
    assert ET.fromstring(junit_xml(summary)).get("failures") == "0"


def test_set_gates_pass_only_when_every_run_passed() -> None:
    """A gate over a set: passed in all runs passes; failed (or absent) in one fails, naming the run."""
    runs = [
        {"gates": [{"name": "p95", "passed": True, "observed_text": "4ms"}, {"name": "err", "passed": True}]},
        {"gates": [{"name": "p95", "passed": False, "observed_text": "12ms"}]},
        {"gates": [{"name": "p95", "passed": True, "observed_text": "5ms"}, {"name": "err", "passed": True}]},
    ]
    gates = {g["name"]: g for g in set_gates(runs)}
    assert gates["p95"]["passed"] is False and gates["p95"]["passed_runs"] == 2
    assert gates["p95"]["observed_text"] == "passed in 2 of 3 runs (4ms; 12ms; 5ms)"
    assert gates["p95"]["reason"] == "FAIL in run(s) 2 of 3"
    assert gates["err"]["passed"] is False and gates["err"]["reason"] == "FAIL in run(s) 2 of 3"
    assert all(g["passed"] for g in set_gates([runs[0], runs[2]]))
