"""CI views of a finished run's summary.json: JUnit XML (one test case per gate) and a Markdown job summary."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from holoload.core.isolation.report import isolation_lines
from holoload.core.result import BatchOpFigures, GateOutcome, OpFigures, RunSummary
from holoload.shell import error_messages, regression_views

__all__ = ["JUNIT_FILE", "MARKDOWN_FILE", "junit_xml", "summary_markdown", "write_ci_outputs"]

JUNIT_FILE = "junit.xml"
MARKDOWN_FILE = "summary.md"

# Characters XML 1.0 forbids even escaped (error messages can carry terminal control codes).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ---------------------------------------------------------------- reading the summary defensively


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _status(summary: RunSummary) -> str:
    return summary.status


def _gate_state(gate: GateOutcome) -> str:
    """pass, fail or no data (summaries written before "state" existed: from "passed")."""
    return gate.state.value


def _problems(summary: RunSummary) -> list[str]:
    return [_text(p) for p in summary.run.problems]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _overrides(summary: RunSummary) -> list[Mapping[str, Any]]:
    return list(summary.overrides)


def _value(value: Any) -> str:
    """An override's value as written in TOML terms: strings quoted, an empty string shown as ""."""
    return f'"{value}"' if isinstance(value, str) else _text(value).lower() if isinstance(value, bool) else _text(value)


# ---------------------------------------------------------------- JUnit XML


def _budget_properties(summary: RunSummary) -> list[tuple[str, Any]]:
    """`env` (the budget profile) and one `override.<key>` property per override: `<value> (<source>)`."""
    if "env" not in summary.keys and "overrides" not in summary.keys:
        return []
    props: list[tuple[str, Any]] = [("env", summary.env or "default")]
    for o in _overrides(summary):
        props.append((f"override.{_text(o.get('key'))}", f"{_value(o.get('value'))} ({_text(o.get('source'))})"))
    return props


def _xml(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", _text(value))


def _run_case(summary: RunSummary, status: str, failing_gates: int) -> tuple[str, str] | None:
    """(element, message) of the extra "run" test case, or None when the gates tell the whole story."""
    if status == "ERROR":
        element = "error"
    elif status == "INTERRUPTED" or (status == "FAIL" and failing_gates == 0) or status not in ("PASS", "FAIL"):
        element = "failure"
    else:
        return None
    exit_code = _exit_code(summary)
    message = f"run ended {status}" + (f" (exit {exit_code})" if exit_code is not None else "")
    aborted_by = summary.aborted_by
    if aborted_by:
        message += f", aborted by gate {aborted_by}"
    return element, message


def _exit_code(summary: RunSummary) -> int | None:
    return summary.exit_code if "exit_code" in summary.keys else summary.run.exit_code


def junit_xml(summary: RunSummary | Mapping[str, Any]) -> str:
    """The run as JUnit XML: one ``<testsuite>``, one ``<testcase>`` per gate and per figure compared with a baseline.

    A failing gate's ``<failure>`` carries the reason as its message and the expression, observed
    and threshold as its text. A run that ended ERROR adds a test case ``run`` with an ``<error>``;
    INTERRUPTED (or FAIL without a failing gate) adds one with a ``<failure>``; both list
    ``run.problems``. ``timestamp`` is the start in UTC without an offset (the JUnit schema's form).

    Args:
        summary: the run's summary (sustained load or canary), or its parsed summary.json.

    Returns:
        The document, starting with an XML declaration, for writing as UTF-8.
    """
    summary = RunSummary.from_json(summary)
    scenario = _xml(summary.scenario_name)
    run = summary.run
    status = _status(summary)
    gates = summary.gates
    failing = [g for g in gates if _gate_state(g) == "fail"]
    regressed = regression_views.comparison_regressions(summary)  # a test case per compared figure
    extra = _run_case(summary, status, len(failing) + regressed)
    duration_s = _number(run.duration_s)

    suite = ET.Element("testsuite")
    suite.set("name", f"holoload.{scenario}")
    compared = regression_views.junit_case_count(summary)
    suite.set("tests", str(len(gates) + compared + (extra is not None)))
    suite.set("failures", str(len(failing) + regressed + (extra is not None and extra[0] == "failure")))
    suite.set("errors", str(int(extra is not None and extra[0] == "error")))
    suite.set("skipped", str(sum(_gate_state(g) == "no data" for g in gates)))
    suite.set("time", f"{duration_s:.3f}" if duration_s is not None else "0")
    started = run.started_at
    if isinstance(started, str) and started:
        suite.set("timestamp", _xml(started[:19]))

    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", status),
        ("run_id", run.run_id),
        ("results_dir", run.results_dir),
        ("holoload_version", summary.holoload_version),
        ("aborted_by", summary.aborted_by),
        *_budget_properties(summary),
        ("client_ok", None if summary.client is None else summary.client.ok),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_xml(value))

    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=f"holoload.{scenario}.gates", name=_xml(gate.name), time="0")
        if _gate_state(gate) == "no data":  # neither passed nor failed: reported as skipped
            ET.SubElement(case, "skipped", message=_xml(gate.reason))
        elif _gate_state(gate) == "fail":
            failure = ET.SubElement(case, "failure", message=_xml(gate.reason), type="gate")
            seen = error_messages.gate_lines(summary, gate)
            failure.text = _xml(
                f"expression: {_text(gate.expression)}\n"
                f"observed: {_text(gate.observed_text)}\n"
                f"threshold: {_text(gate.threshold_text)}"
                + ("\nerror messages:\n" + "\n".join(f"- {m}" for m in seen) if seen else "")
                + _isolation_detail(summary, gate.name)
            )
    regression_views.junit_cases(suite, summary, scenario, _xml)
    if extra is not None:
        element, message = extra
        case = ET.SubElement(
            suite, "testcase", classname=f"holoload.{scenario}", name="run", time=suite.get("time", "0")
        )
        problems = _problems(summary)
        detail = ET.SubElement(case, element, message=_xml(message), type=status)
        detail.text = _xml("\n".join(["problems:", *(f"- {p}" for p in problems)]) if problems else message)

    seen = error_messages.all_lines(summary)
    if seen:  # every error message of the run, whatever the gates say
        ET.SubElement(suite, "system-err").text = _xml("error messages:\n" + "\n".join(seen))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


# ---------------------------------------------------------------- Markdown


def _cell(value: Any) -> str:
    """Table cell text: pipes escaped, line breaks flattened, HTML-looking text neutralised."""
    text = _text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = " ".join(text.splitlines())
    return text.replace("|", "\\|")


def _code(value: Any) -> str:
    """A code span for a table cell (literal text; only the pipe needs escaping in GFM tables)."""
    text = " ".join(_text(value).splitlines())
    if not text or "`" in text:
        return _cell(text)
    return f"`{text}`".replace("|", "\\|")


def _inline_code(value: Any) -> str:
    """A code span outside tables (plain text when the value holds a backtick)."""
    text = " ".join(_text(value).splitlines())
    return text if "`" in text else f"`{text}`"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _figure(value: Any, digits: int = 3) -> str:
    number = _number(value)
    if number is None:
        return "-"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.{digits}g}" if abs(number) < 10**digits else f"{number:.0f}"


def _errors(op: OpFigures | BatchOpFigures) -> str:
    if isinstance(op, OpFigures) and "errors" in op.keys:  # sustained load: counts by error class
        by_class = op.errors
        total = op.error_count if "error_count" in op.keys else sum(v for v in by_class.values() if isinstance(v, int))
        parts = ", ".join(f"{k} {v}" for k, v in by_class.items() if v)
        return _cell(f"{total} ({parts})" if parts else _figure(total))
    if isinstance(op, OpFigures):  # rebuilt from disk: no errors by class
        return _cell(_figure(None))
    return _cell(_figure(op.errors))  # canary: one count


def _dropped(fig: OpFigures | BatchOpFigures, failed: bool) -> str:
    """Dropped arrivals; bold and marked FAIL when a failed gate counted them ("-": a canary, or not recorded)."""
    if not isinstance(fig, OpFigures) or "dropped" not in fig.keys:
        return "-"
    return f"**{fig.dropped} FAIL**" if failed else _figure(fig.dropped)


def _op_rows(summary: RunSummary) -> list[list[str]]:
    rows: list[list[str]] = []
    sources: list[tuple[str, str, Mapping[str, OpFigures | BatchOpFigures]]] = []
    for phase_name, phase in summary.phases.items():
        label = phase_name if phase.measured is not False else f"{phase_name} (not measured)"
        sources.append((phase_name, label, phase.ops))
    if not summary.phases and summary.ops is not None:
        sources.append(("", "batches", summary.ops))
    failed = summary.drops_that_failed()
    for phase_name, label, ops in sources:
        for op_name, fig in ops.items():
            lat = fig.latency_ms or {}
            rows.append(
                [
                    _cell(label),
                    _cell(op_name),
                    _cell(_figure(fig.ok)),
                    _errors(fig),
                    _dropped(fig, (phase_name, op_name) in failed),
                    _cell(_figure(fig.ops_per_s if isinstance(fig, OpFigures) else None, 4)),
                    *(_cell(_figure(lat.get(p))) for p in ("p50", "p95", "p99")),
                ]
            )
    return rows


def _error_message_lines(summary: RunSummary) -> list[str]:
    found = error_messages.messages(summary)
    if not found:
        return []
    rows = [[_cell(c) for c in error_messages.cells(m)] for m in found]
    lines = ["", "### Error messages", "", *_table(error_messages.HEADER, rows)]
    rest = error_messages.more_lines(summary)
    return lines + ["", *(f"- {_cell(m)}" for m in rest)] if rest else lines


def _chaos_lines(summary: RunSummary) -> list[str]:
    faults = summary.chaos
    if not faults:
        return []
    header = ("fault", "action", "fired", "ok", "failed", "healed", "heal failed", "recovery s")
    rows = [
        [
            _cell(f.name if "name" in f.keys else None),
            _cell(f.action if "action" in f.keys else None),
            *(_cell(_figure(getattr(f, k) if k in f.keys else None)) for k in _FAULT_COUNTS),
            _cell(", ".join("none" if r is None else _figure(r) for r in f.recovery_s) or "-"),
        ]
        for f in faults
    ]
    return ["", "### Chaos", "", *_table(header, rows)]


_FAULT_COUNTS = ("fired", "ok", "failed", "healed", "heal_failed")


def _budget_lines(summary: RunSummary) -> list[str]:
    """Which budget applied: the profile (`env`) and each override with its source."""
    if "env" not in summary.keys and "overrides" not in summary.keys:
        return []
    env = _text(summary.env or "default")
    lines = ["", "### Budget", "", f"profile {_inline_code(env)}" if env != "default" else "default budget"]
    overrides = _overrides(summary)
    if overrides:
        rows = ([_cell(o.get("key")), _code(_value(o.get("value"))), _cell(o.get("source"))] for o in overrides)
        lines += ["", *_table(("key", "value", "source"), rows)]
    else:
        lines.append("(no overrides)")
    return lines


def _check_lines(summary: RunSummary) -> list[str]:
    check = summary.check
    if not check.keys:
        return []
    lines = ["", "### Check", ""]
    complete = check.complete
    ok = check.ok
    state = "complete" if complete else "incomplete"
    if ok is not None:
        state += ", ok" if ok else ", NOT ok"
    lines.append(f"ledger check {_cell(state)}")
    counts = _map(check.counts)
    if counts:
        lines += ["", *_table(("count", "ids"), ([_cell(k), _cell(_figure(v))] for k, v in counts.items()))]
    ledger = _map(check.ledger)
    if ledger:
        lines += ["", *_table(("ledger", "ids"), ([_cell(k), _cell(_figure(v))] for k, v in ledger.items()))]
    return lines


def _isolation_reports(summary: RunSummary) -> Mapping[str, Any]:
    return _map(summary.extra.get("isolation"))


def _isolation_detail(summary: RunSummary, gate: str) -> str:
    """A failing `isolation.<workload>` gate's report: counts, attempts, and the first anomaly's cycle."""
    workload = gate.removeprefix("isolation.")
    report = _map(_isolation_reports(summary).get(workload)) if gate.startswith("isolation.") else {}
    if not report:
        return ""
    lines = isolation_lines({workload: report})
    for kind, found in _map(report.get("anomalies") or report.get("violations")).items():
        first = _map(_list(found)[0]) if _list(found) else {}
        lines.append(f"first {kind}: {_text(first.get('cycle') or first.get('description'))}")
        lines += [f"  {s.get('why', '')}" for s in _list(first.get("steps")) if isinstance(s, Mapping)]
        lines += [f"  {v}" for v in _map(first.get("ops")).values()]
    return "\nisolation:\n" + "\n".join(lines)


def _isolation_lines(summary: RunSummary) -> list[str]:
    """summary.md's `### Isolation`: a row per transactional workload, then each forbidden anomaly's first cycle."""
    reports = _isolation_reports(summary)
    if not reports:
        return []
    header = ("workload", "kind", "isolation", "verdict", "acked", "failed", "in doubt", "attempts", "anomalies")
    rows = []
    for name, value in reports.items():
        r = _map(value)
        txns = _map(r.get("txns"))
        counts = {k: v for k, v in _map(r.get("anomaly_counts")).items() if v}
        rows.append(
            [
                _cell(name),
                _cell(r.get("kind")),
                _cell(r.get("isolation")) + (f" as {_cell(r['model'])}" if r.get("model") else ""),
                _cell(r.get("verdict")),
                *(_cell(_figure(txns.get(k, 0))) for k in ("acknowledged", "failed", "in_doubt")),
                _cell(", ".join(f"{k}: {v}" for k, v in _map(r.get("attempts")).items())),
                _cell(", ".join(f"{k} {v}" for k, v in counts.items()) or "none"),
            ]
        )
    lines = ["", "### Isolation", "", *_table(header, rows)]
    for name, value in reports.items():
        r = _map(value)
        if r.get("verdict") != "valid":
            lines += ["", f"{_cell(name)}: {_cell(r.get('reason'))}"]
        for kind in _list(r.get("forbidden_found")):
            found = _list(_map(r.get("anomalies") or r.get("violations")).get(kind))
            first = _map(found[0]) if found else {}
            text = first.get("cycle") or first.get("description")
            if text:
                fence = "```"
                block = [str(text), *(str(v) for v in _map(first.get("ops")).values())]
                block = [line.replace(fence, "'''") for line in block]
                lines += ["", f"first {_cell(kind)} of {_cell(name)}:", "", fence, *block, fence]
    return lines


def _client_lines(summary: RunSummary) -> list[str]:
    """The Client section: whether holoload kept up, per process loop lag and CPU."""
    client = summary.client
    if client is None or not client.keys:
        return []
    judged, strained = client.judged_windows, client.strained_windows
    state = "SATURATED: results not valid" if client.saturated else "kept up"
    lines = ["", "### Client", "", f"holoload {state}: {_figure(strained)} of {_figure(judged)} windows strained"]
    if client.reason:
        lines[-1] += f" ({_cell(client.reason)})"
    ticks, seconds = client.ticks, client.ticked_windows_s
    lines += [
        "",
        f"{_figure(ticks)} windows of {_figure(client.window_s)} s took {_figure(seconds, 5)} s "
        f"({_figure(client.stretch)}x; the latest closed {_figure(client.tick_late_max_s)} s late); "
        f"{_figure(client.late_drops)} arrivals dropped behind schedule",
    ]
    header = ("process", "lag p99 ms (median)", "lag p99 ms (worst)", "lag max ms", "cpu mean", "cpu max", "late drops")
    rows = []
    for name, f in client.processes.items():
        rows.append(
            [
                _cell(name),
                *(_cell(_figure(f.get(k))) for k in ("lag_p99_ms_median", "lag_p99_ms_worst", "lag_max_ms")),
                *(_cell(_percent(f.get(k))) for k in ("cpu_share_mean", "cpu_share_max")),
                _cell(_figure(f.get("late_drops"))),
            ]
        )
    lines += ["", *_table(header, rows)] if rows else []
    return lines


def _percent(value: Any) -> str:
    number = _number(value)
    return "-" if number is None else f"{number:.0%}"


def summary_markdown(summary: RunSummary | Mapping[str, Any]) -> str:
    """The run as Markdown for a CI job summary (e.g. ``$GITHUB_STEP_SUMMARY``).

    First line ``## holoload <scenario>: <STATUS>``; then the run facts, a gate table, a per
    phase/op table, chaos and check sections when the run had them, and the run's problems.
    Table cells escape pipes and flatten line breaks.

    Args:
        summary: the run's summary (sustained load or canary), or its parsed summary.json.

    Returns:
        GitHub-flavoured Markdown ending with a newline.
    """
    summary = RunSummary.from_json(summary)
    run = summary.run
    status = _status(summary)
    lines = [f"## holoload {_cell(summary.scenario_name)}: {_cell(status)}", ""]
    facts = [f"run {_inline_code(run.run_id)}"] if run.run_id else []
    duration_s = _number(run.duration_s)
    if duration_s is not None:
        facts.append(f"{duration_s:.1f} s")
    exit_code = _exit_code(summary)
    if exit_code is not None:
        facts.append(f"exit {_cell(exit_code)}")
    if run.results_dir:
        facts.append(f"results {_inline_code(run.results_dir)}")
    if summary.aborted_by:
        facts.append(f"aborted by gate {_cell(summary.aborted_by)}")
    if isinstance(summary.env, str) and summary.env != "default":
        facts.append(f"budget {_inline_code(summary.env)}")
    if facts:
        lines.append(", ".join(facts))
    if summary.client is not None and summary.client.saturated:
        lines += ["", f"**client saturated, results not valid**: {_cell(summary.client.reason)}"]

    gates = summary.gates
    lines += ["", "### Gates", ""]
    if gates:
        rows = [
            [
                _cell(g.name),
                _gate_state(g).upper(),
                _cell(g.observed_text),
                _cell(g.threshold_text),
                _code(g.expression),
            ]
            for g in gates
        ]
        lines += _table(("gate", "result", "observed", "threshold", "expression"), rows)
    else:
        lines.append("no gate verdicts")
    lines += regression_views.markdown_lines(summary, _cell)

    ops = _op_rows(summary)
    if ops:
        header = ("phase", "op", "ok", "errors", "dropped", "ops/s", "p50 ms", "p95 ms", "p99 ms")
        lines += ["", "### Ops", "", *_table(header, ops)]
    lines += _budget_lines(summary)
    lines += _error_message_lines(summary)
    lines += _chaos_lines(summary)
    lines += _check_lines(summary)
    lines += _isolation_lines(summary)
    lines += _client_lines(summary)
    problems = _problems(summary)
    if problems:
        lines += ["", "### Problems", "", *(f"- {_cell(p)}" for p in problems)]
    return "\n".join(lines) + "\n"


def write_ci_outputs(root: Path, summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """Write junit.xml and summary.md into ``root`` (usually the run's results directory).

    Returns:
        One ``"<path>: <why>"`` string per file that could not be written; never raises OSError.
    """
    problems: list[str] = []
    summary = RunSummary.from_json(summary)
    for name, render in ((JUNIT_FILE, junit_xml), (MARKDOWN_FILE, summary_markdown)):
        path = root / name
        try:
            root.mkdir(parents=True, exist_ok=True)
            path.write_text(render(summary), encoding="utf-8")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return problems
