"""CI views of a finished run's summary.json: JUnit XML (one test case per gate) and a Markdown job summary."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


def _scenario(summary: Mapping[str, Any]) -> str:
    name = _map(summary.get("scenario")).get("name")
    if isinstance(name, str) and name:
        return name
    run_id = _map(summary.get("run")).get("run_id")
    return run_id.split("-", 1)[0] if isinstance(run_id, str) and run_id else "run"


def _status(summary: Mapping[str, Any]) -> str:
    status = summary.get("verdict") or _map(summary.get("run")).get("status")
    return status if isinstance(status, str) and status else "UNKNOWN"


def _gates(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [g for g in _list(summary.get("gates")) if isinstance(g, Mapping)]


def _gate_state(gate: Mapping[str, Any]) -> str:
    """pass, fail or no data (summaries written before "state" existed: from "passed")."""
    state = gate.get("state")
    if state in ("pass", "fail", "no data"):
        return str(state)
    return "pass" if gate.get("passed") is True else "fail"


def _problems(summary: Mapping[str, Any]) -> list[str]:
    return [_text(p) for p in _list(_map(summary.get("run")).get("problems"))]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _overrides(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [o for o in _list(summary.get("overrides")) if isinstance(o, Mapping)]


def _value(value: Any) -> str:
    """An override's value as written in TOML terms: strings quoted, an empty string shown as ""."""
    return f'"{value}"' if isinstance(value, str) else _text(value).lower() if isinstance(value, bool) else _text(value)


# ---------------------------------------------------------------- JUnit XML


def _budget_properties(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """`env` (the budget profile) and one `override.<key>` property per override: `<value> (<source>)`."""
    if "env" not in summary and "overrides" not in summary:
        return []
    props: list[tuple[str, Any]] = [("env", summary.get("env") or "default")]
    for o in _overrides(summary):
        props.append((f"override.{_text(o.get('key'))}", f"{_value(o.get('value'))} ({_text(o.get('source'))})"))
    return props


def _xml(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", _text(value))


def _run_case(summary: Mapping[str, Any], status: str, failing_gates: int) -> tuple[str, str] | None:
    """(element, message) of the extra "run" test case, or None when the gates tell the whole story."""
    if status == "ERROR":
        element = "error"
    elif status == "INTERRUPTED" or (status == "FAIL" and failing_gates == 0) or status not in ("PASS", "FAIL"):
        element = "failure"
    else:
        return None
    exit_code = summary.get("exit_code", _map(summary.get("run")).get("exit_code"))
    message = f"run ended {status}" + (f" (exit {exit_code})" if exit_code is not None else "")
    aborted_by = summary.get("aborted_by")
    if aborted_by:
        message += f", aborted by gate {aborted_by}"
    return element, message


def junit_xml(summary: Mapping[str, Any]) -> str:
    """The run as JUnit XML: one ``<testsuite>``, one ``<testcase>`` per gate and per figure compared with a baseline.

    A failing gate's ``<failure>`` carries the reason as its message and the expression, observed
    and threshold as its text. A run that ended ERROR adds a test case ``run`` with an ``<error>``;
    INTERRUPTED (or FAIL without a failing gate) adds one with a ``<failure>``; both list
    ``run.problems``. ``timestamp`` is the start in UTC without an offset (the JUnit schema's form).

    Args:
        summary: a parsed summary.json (sustained load or canary).

    Returns:
        The document, starting with an XML declaration, for writing as UTF-8.
    """
    scenario = _xml(_scenario(summary))
    run = _map(summary.get("run"))
    status = _status(summary)
    gates = _gates(summary)
    failing = [g for g in gates if _gate_state(g) == "fail"]
    regressed = regression_views.comparison_regressions(summary)  # a test case per compared figure
    extra = _run_case(summary, status, len(failing) + regressed)
    duration_s = _number(run.get("duration_s"))

    suite = ET.Element("testsuite")
    suite.set("name", f"holoload.{scenario}")
    compared = regression_views.junit_case_count(summary)
    suite.set("tests", str(len(gates) + compared + (extra is not None)))
    suite.set("failures", str(len(failing) + regressed + (extra is not None and extra[0] == "failure")))
    suite.set("errors", str(int(extra is not None and extra[0] == "error")))
    suite.set("skipped", str(sum(_gate_state(g) == "no data" for g in gates)))
    suite.set("time", f"{duration_s:.3f}" if duration_s is not None else "0")
    started = run.get("started_at")
    if isinstance(started, str) and started:
        suite.set("timestamp", _xml(started[:19]))

    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", status),
        ("run_id", run.get("run_id")),
        ("results_dir", run.get("results_dir")),
        ("holoload_version", summary.get("holoload_version")),
        ("aborted_by", summary.get("aborted_by")),
        *_budget_properties(summary),
        ("client_ok", _map(summary.get("client")).get("ok")),
    ):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=_xml(value))

    for gate in gates:
        case = ET.SubElement(
            suite, "testcase", classname=f"holoload.{scenario}.gates", name=_xml(gate.get("name")), time="0"
        )
        if _gate_state(gate) == "no data":  # neither passed nor failed: reported as skipped
            ET.SubElement(case, "skipped", message=_xml(gate.get("reason")))
        elif _gate_state(gate) == "fail":
            failure = ET.SubElement(case, "failure", message=_xml(gate.get("reason")), type="gate")
            seen = error_messages.gate_lines(summary, gate)
            failure.text = _xml(
                f"expression: {_text(gate.get('expression'))}\n"
                f"observed: {_text(gate.get('observed_text'))}\n"
                f"threshold: {_text(gate.get('threshold_text'))}"
                + ("\nerror messages:\n" + "\n".join(f"- {m}" for m in seen) if seen else "")
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


def _errors(op: Mapping[str, Any]) -> str:
    by_class = op.get("errors")
    if isinstance(by_class, Mapping):  # sustained load: counts by error class
        total = op.get("error_count", sum(v for v in by_class.values() if isinstance(v, int)))
        parts = ", ".join(f"{k} {v}" for k, v in by_class.items() if v)
        return _cell(f"{total} ({parts})" if parts else _figure(total))
    return _cell(_figure(by_class))  # canary: one count


def _op_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    phases = _map(summary.get("phases"))
    sources: list[tuple[str, Mapping[str, Any]]] = []
    for phase_name, phase in phases.items():
        phase_map = _map(phase)
        label = phase_name if phase_map.get("measured", True) is not False else f"{phase_name} (not measured)"
        sources.append((label, _map(phase_map.get("ops"))))
    if not phases and summary.get("ops") is not None:
        sources.append(("batches", _map(summary.get("ops"))))
    for label, ops in sources:
        for op_name, op in ops.items():
            fig = _map(op)
            lat = _map(fig.get("latency_ms"))
            rows.append(
                [
                    _cell(label),
                    _cell(op_name),
                    _cell(_figure(fig.get("ok"))),
                    _errors(fig),
                    _cell(_figure(fig.get("ops_per_s"), 4)),
                    *(_cell(_figure(lat.get(p))) for p in ("p50", "p95", "p99")),
                ]
            )
    return rows


def _error_message_lines(summary: Mapping[str, Any]) -> list[str]:
    found = error_messages.messages(summary)
    if not found:
        return []
    rows = [[_cell(c) for c in error_messages.cells(m)] for m in found]
    lines = ["", "### Error messages", "", *_table(error_messages.HEADER, rows)]
    rest = error_messages.more_lines(summary)
    return lines + ["", *(f"- {_cell(m)}" for m in rest)] if rest else lines


def _chaos_lines(summary: Mapping[str, Any]) -> list[str]:
    faults = [_map(f) for f in _list(summary.get("chaos"))]
    if not faults:
        return []
    header = ("fault", "action", "fired", "ok", "failed", "healed", "heal failed", "recovery s")
    rows = [
        [
            _cell(f.get("name")),
            _cell(f.get("action")),
            *(_cell(_figure(f.get(k))) for k in ("fired", "ok", "failed", "healed", "heal_failed")),
            _cell(", ".join("none" if r is None else _figure(r) for r in _list(f.get("recovery_s"))) or "-"),
        ]
        for f in faults
    ]
    return ["", "### Chaos", "", *_table(header, rows)]


def _budget_lines(summary: Mapping[str, Any]) -> list[str]:
    """Which budget applied: the profile (`env`) and each override with its source."""
    if "env" not in summary and "overrides" not in summary:
        return []
    env = _text(summary.get("env") or "default")
    lines = ["", "### Budget", "", f"profile {_inline_code(env)}" if env != "default" else "default budget"]
    overrides = _overrides(summary)
    if overrides:
        rows = ([_cell(o.get("key")), _code(_value(o.get("value"))), _cell(o.get("source"))] for o in overrides)
        lines += ["", *_table(("key", "value", "source"), rows)]
    else:
        lines.append("(no overrides)")
    return lines


def _check_lines(summary: Mapping[str, Any]) -> list[str]:
    check = _map(summary.get("check"))
    if not check:
        return []
    lines = ["", "### Check", ""]
    complete = check.get("complete")
    ok = check.get("ok")
    state = "complete" if complete else "incomplete"
    if ok is not None:
        state += ", ok" if ok else ", NOT ok"
    lines.append(f"ledger check {_cell(state)}")
    counts = _map(check.get("counts"))
    if counts:
        lines += ["", *_table(("count", "ids"), ([_cell(k), _cell(_figure(v))] for k, v in counts.items()))]
    ledger = _map(check.get("ledger"))
    if ledger:
        lines += ["", *_table(("ledger", "ids"), ([_cell(k), _cell(_figure(v))] for k, v in ledger.items()))]
    return lines


def _client_lines(summary: Mapping[str, Any]) -> list[str]:
    """The Client section: whether holoload kept up, per process loop lag and CPU."""
    client = _map(summary.get("client"))
    if not client:
        return []
    judged, strained = client.get("judged_windows"), client.get("strained_windows")
    state = "SATURATED: results not valid" if client.get("saturated") else "kept up"
    lines = ["", "### Client", "", f"holoload {state}: {_figure(strained)} of {_figure(judged)} windows strained"]
    if client.get("reason"):
        lines[-1] += f" ({_cell(client.get('reason'))})"
    ticks, seconds = client.get("ticks"), client.get("ticked_windows_s")
    window = client.get("window_s")
    lines += [
        "",
        f"{_figure(ticks)} windows of {_figure(window)} s took {_figure(seconds, 5)} s "
        f"({_figure(client.get('stretch'))}x; the latest closed {_figure(client.get('tick_late_max_s'))} s late); "
        f"{_figure(client.get('late_drops'))} arrivals dropped behind schedule",
    ]
    header = ("process", "lag p99 ms (median)", "lag p99 ms (worst)", "lag max ms", "cpu mean", "cpu max", "late drops")
    rows = []
    for name, figures in _map(client.get("processes")).items():
        f = _map(figures)
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


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The run as Markdown for a CI job summary (e.g. ``$GITHUB_STEP_SUMMARY``).

    First line ``## holoload <scenario>: <STATUS>``; then the run facts, a gate table, a per
    phase/op table, chaos and check sections when the run had them, and the run's problems.
    Table cells escape pipes and flatten line breaks.

    Args:
        summary: a parsed summary.json (sustained load or canary).

    Returns:
        GitHub-flavoured Markdown ending with a newline.
    """
    run = _map(summary.get("run"))
    status = _status(summary)
    lines = [f"## holoload {_cell(_scenario(summary))}: {_cell(status)}", ""]
    facts = [f"run {_inline_code(run.get('run_id'))}"] if run.get("run_id") else []
    duration_s = _number(run.get("duration_s"))
    if duration_s is not None:
        facts.append(f"{duration_s:.1f} s")
    exit_code = summary.get("exit_code", run.get("exit_code"))
    if exit_code is not None:
        facts.append(f"exit {_cell(exit_code)}")
    if run.get("results_dir"):
        facts.append(f"results {_inline_code(run.get('results_dir'))}")
    if summary.get("aborted_by"):
        facts.append(f"aborted by gate {_cell(summary.get('aborted_by'))}")
    if isinstance(summary.get("env"), str) and summary.get("env") != "default":
        facts.append(f"budget {_inline_code(summary.get('env'))}")
    if facts:
        lines.append(", ".join(facts))
    client = _map(summary.get("client"))
    if client.get("saturated"):
        lines += ["", f"**client saturated, results not valid**: {_cell(client.get('reason'))}"]

    gates = _gates(summary)
    lines += ["", "### Gates", ""]
    if gates:
        rows = [
            [
                _cell(g.get("name")),
                _gate_state(g).upper(),
                _cell(g.get("observed_text")),
                _cell(g.get("threshold_text")),
                _code(g.get("expression")),
            ]
            for g in gates
        ]
        lines += _table(("gate", "result", "observed", "threshold", "expression"), rows)
    else:
        lines.append("no gate verdicts")
    lines += regression_views.markdown_lines(summary, _cell)

    ops = _op_rows(summary)
    if ops:
        header = ("phase", "op", "ok", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms")
        lines += ["", "### Ops", "", *_table(header, ops)]
    lines += _budget_lines(summary)
    lines += _error_message_lines(summary)
    lines += _chaos_lines(summary)
    lines += _check_lines(summary)
    lines += _client_lines(summary)
    problems = _problems(summary)
    if problems:
        lines += ["", "### Problems", "", *(f"- {_cell(p)}" for p in problems)]
    return "\n".join(lines) + "\n"


def write_ci_outputs(root: Path, summary: Mapping[str, Any]) -> list[str]:
    """Write junit.xml and summary.md into ``root`` (usually the run's results directory).

    Returns:
        One ``"<path>: <why>"`` string per file that could not be written; never raises OSError.
    """
    problems: list[str] = []
    for name, render in ((JUNIT_FILE, junit_xml), (MARKDOWN_FILE, summary_markdown)):
        path = root / name
        try:
            root.mkdir(parents=True, exist_ok=True)
            path.write_text(render(summary), encoding="utf-8")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return problems
