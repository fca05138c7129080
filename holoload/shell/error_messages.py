"""The error messages of a finished run (summary.json's `error_messages`) as text, Markdown rows and gate notes.

summary.md, junit.xml, report.html and the terminal all show the same table: per op and endpoint,
the first distinct messages with SQLSTATE, class, count and first/last time since the run's start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from holoload.core.gates.language import GateSyntaxError, parse_gate
from holoload.core.result import GateOutcome, RunSummary

HEADER = ("op", "endpoint", "SQLSTATE", "class", "count", "first s", "last s", "message")
#: Lines of messages a failing gate's JUnit text carries at most.
MAX_GATE_LINES = 10


def messages(summary: RunSummary | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The kept messages of a summary (empty for canaries and older summaries)."""
    report = RunSummary.from_json(summary).error_messages
    items = report.get("messages") if isinstance(report, Mapping) else None
    return [m for m in items if isinstance(m, Mapping)] if isinstance(items, list) else []


def more(summary: RunSummary | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Per op and endpoint, errors whose message was not kept."""
    report = RunSummary.from_json(summary).error_messages
    items = report.get("more") if isinstance(report, Mapping) else None
    return [m for m in items if isinstance(m, Mapping)] if isinstance(items, list) else []


def _seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def cells(message: Mapping[str, Any]) -> list[str]:
    """One message as the texts of HEADER's columns."""
    return [
        f"{message.get('workload')}.{message.get('op')}",
        str(message.get("endpoint", "")),
        str(message.get("sqlstate") or "-"),
        str(message.get("class", "")),
        str(message.get("count", "")),
        _seconds(message.get("first_s")),
        _seconds(message.get("last_s")),
        str(message.get("message", "")),
    ]


def line(message: Mapping[str, Any]) -> str:
    """One message as a line: `w.op @node1 42P01 x236 (0.3s..1.5s): relation "acounts" does not exist`."""
    op, endpoint, sqlstate, _cls, count, first, last, text = cells(message)
    return f"{op} @{endpoint} {sqlstate} x{count} ({first}s..{last}s): {text}"


def more_lines(summary: RunSummary | Mapping[str, Any]) -> list[str]:
    return [
        f"{m.get('workload')}.{m.get('op')} @{m.get('endpoint')}: {m.get('count')} more errors with other messages"
        for m in more(summary)
    ]


def _reads(gate: GateOutcome | Mapping[str, Any], message: Mapping[str, Any]) -> bool:
    """Whether a gate reads the op of a message (gates reading no op, such as `errors_total`, read all)."""
    expression = gate.expression if isinstance(gate, GateOutcome) else gate.get("expression", "")
    try:
        refs = parse_gate(str(expression)).references()
    except GateSyntaxError:
        return True
    selectors = refs.ops | refs.maybe_series
    if not selectors:
        return True
    workload, op = message.get("workload"), message.get("op")
    return bool(selectors & {workload, op, f"{workload}.{op}"})


def gate_lines(summary: RunSummary | Mapping[str, Any], gate: GateOutcome | Mapping[str, Any]) -> list[str]:
    """The messages of the ops a failing gate reads, for its JUnit failure text."""
    found = [line(m) for m in messages(summary) if _reads(gate, m)]
    if len(found) > MAX_GATE_LINES:
        found = found[:MAX_GATE_LINES] + [f"... {len(found) - MAX_GATE_LINES} more in summary.json"]
    return found


def all_lines(summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """Every kept message and the uncounted rest, one line each."""
    return [line(m) for m in messages(summary)] + more_lines(summary)
