"""Baseline (and trend) comparisons of a summary.json as Markdown, JUnit test cases and an HTML section.

A comparison section is a mapping under a summary key (``baseline``; a trend may follow the
same shape) written by ``compare_cmd.comparison_record``: ``ok``, ``runs``, ``budget``,
``deltas`` (one per op and metric) and ``notes``. Older summaries without intervals or
budgets still render, with ``-`` in the missing cells.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from holoload.core.result import RunSummary

__all__ = ["SECTIONS", "comparison_regressions", "html_sections", "junit_cases", "markdown_lines"]

#: Summary keys holding a comparison, with their section titles.
SECTIONS = (("baseline", "Baseline comparison"),)
_HEADER = ("op", "metric", "baseline", "current", "change", "interval", "samples", "verdict")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _deltas(section: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    deltas = section.get("deltas")
    return [d for d in deltas if isinstance(d, Mapping)] if isinstance(deltas, list) else []


def _sections(summary: RunSummary | Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    result = RunSummary.from_json(summary)
    found = {"baseline": _map(result.baseline)} | {key: _map(value) for key, value in result.extra.items()}
    return [(key, title, found[key]) for key, title in SECTIONS if _map(found.get(key)).get("deltas")]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _figure(value: Any) -> str:
    number = _num(value)
    if number is None:
        return "-"
    return f"{number:.0f}" if abs(number) >= 1000 else f"{number:.1f}" if abs(number) >= 10 else f"{number:.3f}"


def _pct(value: Any) -> str:
    number = _num(value)
    return "-" if number is None else f"{number * 100:+.1f}%"


def _interval(delta: Mapping[str, Any]) -> str:
    low, high = _num(delta.get("low")), _num(delta.get("high"))
    return "-" if low is None or high is None else f"[{_pct(low)}, {_pct(high)}]"


def _samples(delta: Mapping[str, Any]) -> str:
    samples = delta.get("samples")
    basis = delta.get("basis")
    if delta.get("note") or not isinstance(samples, list | tuple) or len(samples) != 2:
        return "-"
    return {"windows": f"{samples[0]}/{samples[1]} windows", "runs": f"{samples[0]}/{samples[1]} runs"}.get(
        str(basis), "no interval"
    )


def _verdict(delta: Mapping[str, Any]) -> str:
    text = delta.get("verdict")
    if isinstance(text, str) and text:
        return text
    return ("REGRESSION" if delta.get("regression") else "ok") + (f" ({delta['note']})" if delta.get("note") else "")


def _cells(delta: Mapping[str, Any]) -> list[str]:
    return [
        str(delta.get("op", "?")),
        str(delta.get("metric", "?")),
        _figure(delta.get("baseline")),
        _figure(delta.get("current")),
        _pct(delta.get("change")),
        _interval(delta),
        _samples(delta),
        _verdict(delta),
    ]


def _budget(section: Mapping[str, Any]) -> str:
    b = _map(section.get("budget"))
    if not b:
        return ""
    parts = [
        f"budget latency +{(_num(b.get('latency')) or 0) * 100:g}%",
        f"throughput -{(_num(b.get('throughput')) or 0) * 100:g}%",
        f"minimum change {_num(b.get('latency_min_ms')) or 0:g} ms, {_num(b.get('throughput_min_ops')) or 0:g} ops/s",
        f"{(_num(b.get('confidence')) or 0) * 100:g}% interval",
    ]
    return ", ".join(parts)


def _against(section: Mapping[str, Any]) -> str:
    runs = section.get("runs")
    where = section.get("results_dir") or "?"
    count = len(runs) if isinstance(runs, list) else 1
    return f"against {where} ({count} run{'s' if count != 1 else ''})"


def comparison_regressions(summary: RunSummary | Mapping[str, Any]) -> int:
    """How many compared figures regressed, over every comparison section of the summary."""
    return sum(1 for _, _, s in _sections(summary) for d in _deltas(s) if d.get("regression"))


def _headline(title: str, section: Mapping[str, Any]) -> str:
    bad = sum(1 for d in _deltas(section) if d.get("regression"))
    return f"{title}: " + (f"FAIL, {bad} regression{'s' if bad != 1 else ''}" if bad else "ok")


def markdown_lines(summary: RunSummary | Mapping[str, Any], cell: Callable[[Any], str]) -> list[str]:
    """``### Baseline comparison: FAIL, 2 regressions``, what it was against, and the delta table.

    Args:
        summary: a parsed summary.json.
        cell: the caller's table-cell escaper.
    """
    lines: list[str] = []
    for _, title, section in _sections(summary):
        lines += ["", f"### {_headline(title, section)}", ""]
        facts = [_against(section), _budget(section)]
        lines.append(cell("; ".join(f for f in facts if f)))
        lines += ["", "| " + " | ".join(_HEADER) + " |", "|" + " --- |" * len(_HEADER)]
        for delta in _deltas(section):
            cells = [cell(c) for c in _cells(delta)]
            if delta.get("regression"):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines += [f"- note: {cell(n)}" for n in section.get("notes") or [] if isinstance(n, str)]
    return lines


def _failure_text(delta: Mapping[str, Any], section: Mapping[str, Any]) -> str:
    unit = "ops/s" if delta.get("metric") == "ops_per_s" else "ms"
    if delta.get("note"):
        return (
            f"{delta.get('op')} {delta.get('metric')}: {delta.get('note')} (baseline {_figure(delta.get('baseline'))})"
        )
    return (
        f"{delta.get('op')} {delta.get('metric')}: {_figure(delta.get('baseline'))} -> "
        f"{_figure(delta.get('current'))} {unit} ({_pct(delta.get('change'))}, interval {_interval(delta)}); "
        + _budget(section)
    )


def junit_cases(
    suite: ET.Element, summary: RunSummary | Mapping[str, Any], scenario: str, clean: Callable[[Any], str]
) -> int:
    """Append one test case per compared figure; returns how many failed.

    Args:
        suite: the ``<testsuite>`` element.
        summary: a parsed summary.json.
        scenario: the scenario name (already cleaned for XML).
        clean: the caller's XML text cleaner.
    """
    failures = 0
    for key, _, section in _sections(summary):
        for delta in _deltas(section):
            name = f"{delta.get('op')} {delta.get('metric')}"
            case = ET.SubElement(suite, "testcase", classname=f"holoload.{scenario}.{key}", name=clean(name), time="0")
            if delta.get("regression"):
                failures += 1
                failure = ET.SubElement(case, "failure", message=clean(_failure_text(delta, section)), type=key)
                failure.text = clean("\n".join(f"{h}: {c}" for h, c in zip(_HEADER, _cells(delta), strict=True)))
    return failures


def junit_case_count(summary: RunSummary | Mapping[str, Any]) -> int:
    """How many test cases ``junit_cases`` adds."""
    return sum(len(_deltas(s)) for _, _, s in _sections(summary))


def html_sections(summary: RunSummary | Mapping[str, Any]) -> str:
    """One ``<section id="baseline">`` per comparison: headline, what it was against, the delta table."""
    out = []
    for key, title, section in _sections(summary):
        rows = []
        for delta in _deltas(section):
            cls = "fail" if delta.get("regression") else "pass"
            cells = _cells(delta)
            tds = "".join(
                f'<td class="num">{escape(c)}</td>' if 2 <= i <= 4 else f"<td>{escape(c)}</td>"
                for i, c in enumerate(cells[:-1])
            )
            rows.append(f'<tr class="{cls}">{tds}<td class="result">{escape(cells[-1])}</td></tr>')
        head = "".join(f"<th>{escape(h)}</th>" for h in _HEADER)
        notes = "".join(f"<li>{escape(n)}</li>" for n in section.get("notes") or [] if isinstance(n, str))
        facts = "; ".join(f for f in (_against(section), _budget(section)) if f)
        out.append(
            f'<section id="{escape(key)}"><h2>{escape(_headline(title, section))}</h2>\n<p>{escape(facts)}</p>\n'
            f'<table id="{escape(key)}-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + (f'\n<ul class="notes">{notes}</ul>' if notes else "")
            + "\n</section>"
        )
    return "\n".join(out)
