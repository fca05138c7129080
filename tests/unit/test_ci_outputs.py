"""Tests for holoload.shell.ci_outputs: JUnit XML and the Markdown job summary of a summary.json."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from holoload.shell.ci_outputs import junit_xml, summary_markdown, write_ci_outputs


def gate(name: str, expression: str, passed: bool, observed: str, threshold: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "expression": expression,
        "passed": passed,
        "observed": None,
        "threshold": None,
        "observed_text": observed,
        "threshold_text": threshold,
        "reason": reason,
    }


def op(ok: int, ops_per_s: float, p95: float, errors: dict[str, int] | None = None) -> dict[str, Any]:
    errors = errors or {}
    return {
        "ok": ok,
        "rows": ok,
        "errors": errors,
        "error_count": sum(errors.values()),
        "dropped": 0,
        "retries": 0,
        "ops_per_s": ops_per_s,
        "latency_ms": {
            "min": 0.05,
            "mean": p95 / 3,
            "max": p95 * 10,
            "p50": p95 / 4,
            "p90": p95 * 0.8,
            "p95": p95,
            "p99": p95 * 2,
            "p99.9": p95 * 4,
        },
        "service_p99_ms": p95 * 2,
        "early_starts": 0,
        "schedule_lag_p99_ms": None,
        "clamped": 0,
    }


def load_summary(status: str = "FAIL") -> dict[str, Any]:
    """A trimmed summary.json of a real `scenarios/chaos_split_kill.toml` run (one gate failing)."""
    return {
        "holoload_version": "0.1.0",
        "run": {
            "run_id": "chaos_split_kill-20261122T023343Z-d1484c",
            "started_at": "2026-11-22T02:33:43.986690+00:00",
            "results_dir": "/tmp/ex/chaos_split_kill_20261122T023343Z",
            "status": status,
            "exit_code": 1,
            "ended_at": "2026-11-22T02:34:54.958522+00:00",
            "duration_s": 70.971832,
            "problems": [],
        },
        "verdict": status,
        "exit_code": 1,
        "aborted_by": None,
        "chaos": [
            {
                "name": "split_churn",
                "action": "split",
                "fired": 5,
                "ok": 2,
                "failed": 3,
                "healed": 0,
                "heal_failed": 0,
                "skipped": 0,
                "recovery_s": [],
            },
            {
                "name": "kill_node2",
                "action": "kill",
                "fired": 1,
                "ok": 1,
                "failed": 0,
                "healed": 1,
                "heal_failed": 0,
                "skipped": 0,
                "recovery_s": [3.706],
            },
        ],
        "check": {
            "ledger": {"acknowledged": 897741, "failed": 8629, "in_doubt": 62, "recovered": 10},
            "complete": True,
            "counts": {"lost": 0.0, "duplicated": 0.0, "recovered": 20.0},
            "ok": True,
        },
        "scenario": {"name": "chaos_split_kill"},
        "target": {"name": "local"},
        "phases": {
            "warmup": {"measured": False, "seconds": 2.0, "ops": {"ingest.insert": op(2653, 1308.6, 8.447)}},
            "chaos": {
                "measured": True,
                "seconds": 61.1,
                "ops": {
                    "ingest.insert": op(85414, 1398.03, 7.279, {"connection": 52, "other": 808}),
                    "ingest.single": op(17081, 279.58, 7.087),
                },
            },
        },
        "gates": [
            gate("lost", "lost == 0", True, "0", "0", "lost = 0 == 0"),
            gate("splits", "chaos(split).ok >= 3", False, "2", "3", "FAIL: chaos(split).ok = 2 < 3"),
            gate(
                "recovery", "recovery(kill_node2) <= 30s", True, "3.66s", "30s", "recovery(kill_node2) = 3.66s <= 30s"
            ),
        ],
    }


def canary_summary() -> dict[str, Any]:
    """A trimmed summary.json of a real `scenarios/sales_facts.toml` run."""
    return {
        "holoload_version": "0.1.0",
        "run": {
            "run_id": "sales_facts-20261122T023300Z-7d77fa",
            "started_at": "2026-11-22T02:33:00.053037+00:00",
            "results_dir": "/tmp/ex/sales_facts_20261122T023300Z",
            "status": "PASS",
            "exit_code": 0,
            "duration_s": 5.491068,
            "problems": [],
        },
        "verdict": "PASS",
        "exit_code": 0,
        "scenario": {"name": "sales_facts"},
        "counts": {
            "baseline": 0,
            "final": 210000,
            "expected_final": 210000,
            "failed_batches": 0,
            "failed_batch_indexes": [],
        },
        "ops": {
            "batch_20k": {
                "runs": 3,
                "rows": 60000,
                "ok": 3,
                "errors": 0,
                "delta_mismatches": 0,
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
                "errors": 1,
                "delta_mismatches": 0,
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
        "gates": [
            gate("p95_20k", "p95(batch_20k) <= 8s", True, "155ms", "8s", "p95(batch_20k) = 155ms <= 8s"),
            gate(
                "final_count",
                "final_count == expected_final_count",
                True,
                "210000",
                "210000",
                "final_count = 210000 == expected_final_count = 210000",
            ),
        ],
        "batches": [],
    }


def error_summary() -> dict[str, Any]:
    """A trimmed summary.json of a real run whose target was unreachable (exit 3, no gates)."""
    return {
        "holoload_version": "0.1.0",
        "run": {
            "run_id": "oltp-20261122T023440Z-b69314",
            "started_at": "2026-11-22T02:34:40.645153+00:00",
            "results_dir": "/tmp/exerr/oltp_20261122T023440Z",
            "status": "ERROR",
            "exit_code": 3,
            "duration_s": 0.049297,
            "problems": ["events.jsonl: No space left on device"],
        },
        "verdict": "ERROR",
        "exit_code": 3,
        "aborted_by": None,
        "chaos": [],
        "check": {},
        "scenario": {"name": "oltp"},
        "target": {"name": "postgres"},
        "phases": {},
        "gates": [],
    }


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def table(markdown: str, first_header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header starts with `first_header`, split on unescaped pipes."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# ---------------------------------------------------------------- JUnit


def test_junit_has_one_testcase_per_gate_and_counts_failures() -> None:
    """Every gate is a test case in one suite; the suite counts tests and failures; properties say the verdict."""
    root = ET.fromstring(junit_xml(load_summary()))
    assert root.tag == "testsuite"
    assert root.get("name") == "holoload.chaos_split_kill"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    assert root.get("time") == "70.972"
    assert root.get("timestamp") == "2026-11-22T02:33:43"
    assert list(cases(root)) == ["lost", "splits", "recovery"]
    assert all(
        c.get("classname") == "holoload.chaos_split_kill.gates" and c.get("time") == "0" for c in root.iter("testcase")
    )
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["verdict"] == "FAIL"
    assert props["run_id"] == "chaos_split_kill-20261122T023343Z-d1484c"
    assert props["results_dir"] == "/tmp/ex/chaos_split_kill_20261122T023343Z"


def test_junit_failure_carries_reason_observed_and_threshold() -> None:
    """Only the failing gate has a <failure>, with the reason as message and expression/observed/threshold as text."""
    by_name = cases(ET.fromstring(junit_xml(load_summary())))
    assert by_name["lost"].find("failure") is None
    assert by_name["recovery"].find("failure") is None
    failure = by_name["splits"].find("failure")
    assert failure is not None
    assert failure.get("type") == "gate"
    assert failure.get("message") == "FAIL: chaos(split).ok = 2 < 3"
    assert failure.text == "expression: chaos(split).ok >= 3\nobserved: 2\nthreshold: 3"


def test_junit_starts_with_a_utf8_declaration() -> None:
    """The document declares UTF-8 and is parseable as bytes the way a CI reader reads the file."""
    text = junit_xml(canary_summary())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.get("name") == "holoload.sales_facts"
    assert (root.get("tests"), root.get("failures")) == ("2", "0")


def test_junit_special_characters_survive() -> None:
    """<, &, quotes, newlines and non-ASCII round-trip through attributes and text; control characters cannot break the XML."""
    summary = load_summary()
    name = "a<b & \"c\" 'd' é"
    reason = 'FAIL: p95(x) = 2 > 1 & <b> "quoted"\nsecond line'
    summary["gates"] = [gate(name, "p95(x) <= 1ms & 'y' < \"z\"", False, "2ms <x>", "1ms & more", reason)]
    summary["run"]["problems"] = ["ctrl \x1b[31m red \x00"]
    summary["verdict"] = summary["run"]["status"] = "INTERRUPTED"
    root = ET.fromstring(junit_xml(summary))
    case = cases(root)[name]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == reason
    assert failure.text is not None
    assert "p95(x) <= 1ms & 'y' < \"z\"" in failure.text
    assert "observed: 2ms <x>" in failure.text and "threshold: 1ms & more" in failure.text
    run_failure = cases(root)["run"].find("failure")
    assert run_failure is not None and run_failure.text is not None
    assert "ctrl \ufffd[31m red \ufffd" in run_failure.text


def test_junit_error_run_gets_an_error_testcase() -> None:
    """A run that ended ERROR (no gates) has one "run" test case with <error> naming the status, exit code and problems."""
    root = ET.fromstring(junit_xml(error_summary()))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "1")
    run = cases(root)["run"]
    assert run.get("classname") == "holoload.oltp"
    error = run.find("error")
    assert error is not None
    assert error.get("type") == "ERROR"
    assert error.get("message") == "run ended ERROR (exit 3)"
    assert error.text is not None and "events.jsonl: No space left on device" in error.text
    assert run.find("failure") is None


def test_junit_interrupted_run_adds_a_failure_next_to_its_gates() -> None:
    """An INTERRUPTED run keeps its gate cases and adds a failing "run" case (a failure, not an error)."""
    summary = load_summary("INTERRUPTED")
    summary["exit_code"] = 130
    root = ET.fromstring(junit_xml(summary))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "0")
    run_failure = cases(root)["run"].find("failure")
    assert run_failure is not None
    assert run_failure.get("type") == "INTERRUPTED"
    assert run_failure.get("message") == "run ended INTERRUPTED (exit 130)"


def test_junit_pass_run_has_no_run_testcase() -> None:
    """A PASS run is just its gates: no extra "run" case."""
    summary = load_summary("PASS")
    summary["gates"] = [g for g in summary["gates"] if g["passed"]]
    root = ET.fromstring(junit_xml(summary))
    assert "run" not in cases(root)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "0")


# ---------------------------------------------------------------- Markdown


def test_markdown_heading_and_gate_table() -> None:
    """First line names scenario and status; the gate table has one row per gate with result, observed, threshold, expression."""
    md = summary_markdown(load_summary())
    assert md.splitlines()[0] == "## holoload chaos_split_kill: FAIL"
    rows = table(md, "gate")
    assert rows[0] == ["gate", "result", "observed", "threshold", "expression"]
    assert rows[2] == ["lost", "PASS", "0", "0", "`lost == 0`"]
    assert rows[3] == ["splits", "FAIL", "2", "3", "`chaos(split).ok >= 3`"]
    assert len(rows) == 2 + 3


def test_markdown_ops_table_per_phase_and_op() -> None:
    """The ops table lists each phase's ops with ok, errors by class, ops/s and p50/p95/p99; unmeasured phases say so."""
    rows = table(summary_markdown(load_summary()), "phase")
    assert rows[0] == ["phase", "op", "ok", "errors", "dropped", "ops/s", "p50 ms", "p95 ms", "p99 ms"]
    assert rows[2] == ["warmup (not measured)", "ingest.insert", "2653", "0", "0", "1309", "2.11", "8.45", "16.9"]
    assert rows[3] == [
        "chaos",
        "ingest.insert",
        "85414",
        "860 (connection 52, other 808)",
        "0",
        "1398",
        "1.82",
        "7.28",
        "14.6",
    ]
    assert rows[4][:2] == ["chaos", "ingest.single"]


def test_markdown_canary_ops_have_batch_latencies_and_no_throughput() -> None:
    """A canary's batch ops appear with their latency percentiles; ops/s is shown as absent."""
    md = summary_markdown(canary_summary())
    assert md.splitlines()[0] == "## holoload sales_facts: PASS"
    rows = table(md, "phase")
    assert rows[2] == ["batches", "batch_20k", "3", "0", "-", "-", "110", "155", "155"]
    assert rows[3] == ["batches", "batch_50k", "3", "1", "-", "-", "273", "296", "296"]
    assert "### Chaos" not in md and "### Check" not in md and "### Problems" not in md


def test_markdown_dropped_column_is_bold_where_drops_failed_a_gate() -> None:
    """Each op row has its dropped count; the ops a failed `dropped` gate counted read bold with FAIL."""
    summary = load_summary()
    summary["phases"]["chaos"]["ops"]["ingest.insert"]["dropped"] = 7
    summary["phases"]["chaos"]["ops"]["ingest.single"]["dropped"] = 2
    summary["gates"].append(gate("no_drops", "dropped(insert) == 0", False, "7", "0", "dropped(insert) = 7"))
    rows = {tuple(r[:2]): r[4] for r in table(summary_markdown(summary), "phase")[2:]}
    assert rows[("chaos", "ingest.insert")] == "**7 FAIL**"
    assert rows[("chaos", "ingest.single")] == "2"  # drops, but no failed gate counted them
    assert rows[("warmup (not measured)", "ingest.insert")] == "0"
    summary["gates"][-1]["passed"] = True
    assert "FAIL**" not in summary_markdown(summary)


def test_markdown_chaos_check_and_problems_sections() -> None:
    """Chaos faults (fired/ok/healed), the check's counts and the run's problems get their own sections."""
    summary = load_summary()
    summary["run"]["problems"] = ["timeseries.csv: No space left on device"]
    md = summary_markdown(summary)
    chaos = table(md, "fault")
    assert chaos[0][:6] == ["fault", "action", "fired", "ok", "failed", "healed"]
    assert chaos[2][:6] == ["split_churn", "split", "5", "2", "3", "0"]
    assert chaos[3][:6] == ["kill_node2", "kill", "1", "1", "0", "1"]
    assert "ledger check complete, ok" in md
    counts = table(md, "count")
    assert ["lost", "0"] in counts and ["recovered", "20"] in counts
    assert md.rstrip().endswith("### Problems\n\n- timeseries.csv: No space left on device")


def test_markdown_escapes_pipes_in_values() -> None:
    """Pipes in names, texts and expressions are escaped, so every table row keeps the header's column count."""
    summary = load_summary()
    summary["gates"] = [gate("a|b", "x || y <= 1", False, "1|2", "3", "r")]
    summary["phases"]["chaos"]["ops"] = {"w|1.op": op(1, 1.0, 1.0)}
    md = summary_markdown(summary)
    gates = table(md, "gate")
    assert all(len(row) == 5 for row in gates)
    assert gates[2] == ["a\\|b", "FAIL", "1\\|2", "3", "`x \\|\\| y <= 1`"]
    ops = table(md, "phase")
    assert all(len(row) == 9 for row in ops)
    assert ["chaos", "w\\|1.op"] == ops[3][:2]


def test_markdown_error_run() -> None:
    """An ERROR run says so, has no gate verdicts and lists its problems."""
    md = summary_markdown(error_summary())
    assert md.splitlines()[0] == "## holoload oltp: ERROR"
    assert "no gate verdicts" in md
    assert "exit 3" in md
    assert "- events.jsonl: No space left on device" in md
    assert "### Ops" not in md


# ---------------------------------------------------------------- files


def test_write_ci_outputs_writes_both_files(tmp_path: Path) -> None:
    """junit.xml and summary.md land in the directory, as UTF-8, with nothing to report."""
    summary = load_summary()
    summary["gates"][0]["name"] = "lost é"
    assert write_ci_outputs(tmp_path, summary) == []
    assert (tmp_path / "junit.xml").read_text(encoding="utf-8") == junit_xml(summary)
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == summary_markdown(summary)
    assert ET.parse(tmp_path / "junit.xml").getroot().get("tests") == "3"


def test_write_ci_outputs_reports_instead_of_raising(tmp_path: Path) -> None:
    """An unwritable destination gives one problem string per file, never an OSError."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    problems = write_ci_outputs(blocker, load_summary())
    assert len(problems) == 2
    assert problems[0].startswith(str(blocker / "junit.xml"))
    assert problems[1].startswith(str(blocker / "summary.md"))


def test_renderers_do_not_modify_the_summary() -> None:
    """Rendering reads the summary only."""
    summary = load_summary()
    before = copy.deepcopy(summary)
    junit_xml(summary)
    summary_markdown(summary)
    assert summary == before
