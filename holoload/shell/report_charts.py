"""report.html's charts assembled from a run's data: per op over its phase, per node, ramp targets, canary bars.

html_report.py reads the results directory; this module turns what it read (timeseries rows with
their time since the run started, the scenario as run, the gates, the batches) into SVG through
svg_charts.py. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from holoload.core.pacing.schedule import ConcurrencySchedule, Stage
from holoload.core.result import GateOutcome
from holoload.shell import svg_charts as svg
from holoload.shell.results_files import finite
from holoload.shell.svg_charts import Bar, BarGroup, Marker, Point, Series, Span

__all__ = [
    "Timeline",
    "batch_chart",
    "batch_groups",
    "latency_charts",
    "node_lines",
    "slo_ms",
    "target_lines",
    "throughput_charts",
]

_LATENCY = (("p50", "#2b8cbe"), ("p95", "#f39c12"), ("p99", "#d7301f"))
_TARGET_COLOR = "#57606a"
_FAILED_COLOR = "#cf222e"
#: `p95(batch_20k) <= 8s`, `max(batch_20k) < 10s`: a latency limit on one op (its SLO)
_LATENCY_LIMIT = re.compile(r"^\s*(p\d+(?:\.\d+)?|max|mean)\(\s*([\w.]+)\s*\)\s*<=?\s*")
_RAMP_STEPS = 2000  # samples of a ramping-concurrency schedule (its steps are whole workers)


@dataclass
class Timeline:
    """A run's windows on its time axis (seconds since the run started).

    `rows` are timeseries.csv's all-endpoint rows ("*"), `node_rows` its per-node rows; each has
    "t" (the window's close), "phase", "key" (`workload.op`) and the CSV's columns as text.
    `phase_starts` are the phase events' times.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    node_rows: list[dict[str, Any]] = field(default_factory=list)
    x_range: tuple[float, float] = (0.0, 1.0)
    phase_starts: dict[str, float] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    marks: list[Marker] = field(default_factory=list)

    def phase_spans(self) -> dict[str, tuple[float, float]]:
        """Each phase with windows: from its phase event (else its first window) to its last window's close."""
        closes: dict[str, list[float]] = defaultdict(list)
        for r in self.rows:
            closes[str(r.get("phase"))].append(r["t"])
        return {p: (min(self.phase_starts.get(p, min(ts)), min(ts)), max(ts)) for p, ts in closes.items()}

    def op_range(self, key: str) -> tuple[float, float]:
        """The time axis of one op: the phases it ran in, first start to last end (the run's when unknown)."""
        spans = self.phase_spans()
        mine = [spans[p] for p in dict.fromkeys(str(r.get("phase")) for r in self.rows if r["key"] == key)]
        if not mine:
            return self.x_range
        lo, hi = min(a for a, _ in mine), max(b for _, b in mine)
        return (lo, hi) if hi > lo else self.x_range

    def chart(self, series: Sequence[Series], title: str, y_label: str, attrs: Mapping[str, str], **kw: Any) -> str:
        kw.setdefault("x_range", self.x_range)
        kw.setdefault("spans", self.spans)
        kw.setdefault("markers", self.marks)
        return svg.line_chart(series, title=title, y_label=y_label, attrs=attrs, width=svg.WIDE, **kw)


def latency_charts(timeline: Timeline) -> list[str]:
    """One chart per op, p50/p95/p99 per window, over the phases that op ran in (not the whole run)."""
    body = []
    for key in dict.fromkeys(r["key"] for r in timeline.rows):
        windows = [r for r in timeline.rows if r["key"] == key]
        lines = [Series(p, [(r["t"], finite(r.get(f"{p}_ms"))) for r in windows], c, p) for p, c in _LATENCY]
        lo, hi = timeline.op_range(key)
        title = f"{key}: latency, all endpoints ({lo:.0f}-{hi:.0f} s)"
        body.append(timeline.chart(lines, title, "ms", {"class": "latency", "data-op": key}, x_range=(lo, hi)))
    return body


def node_lines(
    star_rows: Iterable[Mapping[str, Any]], node_rows: Iterable[Mapping[str, Any]], column: str
) -> list[Series]:
    """Per node, `column` summed over its ops in each window, zero-filled.

    Every window of the run (from the all-endpoint rows too) has a value for every node seen in
    the run: a node that answered nothing in a window (dead, or never chosen) reads 0, so its
    line drops to zero instead of skipping the window.
    """
    per_node: dict[str, defaultdict[float, float]] = {}
    windows: set[float] = {round(r["t"], 3) for r in star_rows}
    for r in node_rows:
        t = round(r["t"], 3)
        windows.add(t)
        per_node.setdefault(str(r.get("endpoint")), defaultdict(float))[t] += finite(r.get(column)) or 0.0
    times = sorted(windows)
    return [
        Series(node, [(t, sums.get(t, 0.0)) for t in times], svg.PALETTE[i % len(svg.PALETTE)], f"node {node}")
        for i, (node, sums) in enumerate(sorted(per_node.items()))
    ]


def target_lines(scenario: Mapping[str, Any], spans: Mapping[str, tuple[float, float]]) -> list[Series]:
    """The intended load of each ramping workload over its phase: rate (ops/s, left axis) or concurrency (right).

    A ramping-rate workload's target is the line through its stage targets; a ramping-concurrency
    workload's is the staircase of whole writers per endpoint of weight 1 that the engine follows.
    """
    out: list[Series] = []
    phases = scenario.get("phases")
    for phase in phases if isinstance(phases, list) else ():
        if not isinstance(phase, Mapping) or phase.get("name") not in spans:
            continue
        t0 = spans[str(phase["name"])][0]
        for w in phase.get("workloads") or ():
            executor, stages = w.get("executor"), w.get("stages") or []
            durations = [finite(s.get("duration")) or 0.0 for s in stages]
            targets = [finite(s.get("target")) or 0.0 for s in stages]
            start = finite(w.get("start")) or 0.0
            if executor == "ramping-rate" and stages:
                points: list[Point] = [(t0, start)]
                for ends, target in zip(_cumulative(durations), targets, strict=True):
                    points.append((t0 + ends, target))
                out.append(Series(f"target rate {w.get('name')}", points, _TARGET_COLOR, "target rate", dashed=True))
            elif executor == "ramping-concurrency" and stages:
                schedule = ConcurrencySchedule.ramping(
                    [Stage(d, t) for d, t in zip(durations, targets, strict=True)], start
                )
                total = sum(durations)
                steps: list[Point] = []
                for i in range(_RAMP_STEPS + 1):
                    at = total * i / _RAMP_STEPS
                    value = float(schedule.target_at(min(at, total - 1e-9)))
                    if not steps or steps[-1][1] != value:
                        steps.append((t0 + at, value))
                steps.append((t0 + total, steps[-1][1]))
                label = f"target in flight per endpoint, {w.get('name')}"
                out.append(
                    Series(label, steps, _TARGET_COLOR, "target concurrency", dashed=True, step=True, right=True)
                )
    return out


def _cumulative(values: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def throughput_charts(timeline: Timeline, scenario: Mapping[str, Any]) -> list[str]:
    """ok ops/s per op (with ramp targets), errors per op, then ok ops/s and errors per node."""
    keys = list(dict.fromkeys(r["key"] for r in timeline.rows))
    if not keys:
        return []
    color = {k: svg.PALETTE[i % len(svg.PALETTE)] for i, k in enumerate(keys)}

    def lines(column: str, dashed: bool) -> list[Series]:
        return [
            Series(k, [(r["t"], finite(r.get(column))) for r in timeline.rows if r["key"] == k], color[k], "", dashed)
            for k in keys
        ]

    targets = target_lines(scenario, timeline.phase_spans())
    right = "target in flight per endpoint" if any(s.right for s in targets) else ""
    body = [
        timeline.chart(
            lines("ops_per_s", False) + targets,
            "ok ops/s",
            "ops/s",
            {"class": "throughput"},
            log_y=False,
            right_label=right,
        )
    ]
    errors = lines("errors", True)
    if any(y for s in errors for _, y in s.points):
        body.append(timeline.chart(errors, "Errors per window", "errors", {"class": "errors"}, log_y=False))
    if timeline.node_rows:
        per_node = node_lines(timeline.rows, timeline.node_rows, "ops_per_s")
        body.append(
            timeline.chart(per_node, "ok ops/s per node (all ops)", "ops/s", {"class": "node-throughput"}, log_y=False)
        )
        errors = node_lines(timeline.rows, timeline.node_rows, "errors")
        if any(y for s in errors for _, y in s.points):
            body.append(
                timeline.chart(errors, "Errors per node per window", "errors", {"class": "node-errors"}, log_y=False)
            )
    return body


def slo_ms(gates: Iterable[GateOutcome], op: str) -> tuple[float, str] | None:
    """The tightest latency limit the gates put on `op` (`p95(op) <= 8s`), in ms, with its gate's expression."""
    found = []
    for g in gates:
        match = _LATENCY_LIMIT.match(g.expression)
        if match and match.group(2) == op and g.threshold is not None:
            found.append((g.threshold * 1000.0, f"SLO {g.expression}"))
    return min(found) if found else None


def batch_groups(batches: Iterable[Mapping[str, Any]], gates: Sequence[GateOutcome]) -> list[BarGroup]:
    """The canary's batches as bars grouped by op (in order of first run), each group with its op's SLO."""
    by_op: dict[str, list[Bar]] = {}
    for i, b in enumerate(batches):
        op, status = str(b.get("op")), str(b.get("status"))
        color = (
            svg.PALETTE[(list(by_op).index(op) if op in by_op else len(by_op)) % len(svg.PALETTE)]
            if status == "ok"
            else _FAILED_COLOR
        )
        ms = (finite(b.get("elapsed_s")) or 0.0) * 1000.0
        index = b.get("index", i + 1)
        title = f"batch {index} ({op}, {b.get('rows')} rows on {b.get('node')}): {ms:,.0f} ms, {status}"
        by_op.setdefault(op, []).append(Bar(f"#{index}", ms, color, f"batch {status}", title))
    groups = []
    for op, bars in by_op.items():
        limit = slo_ms(gates, op)
        groups.append(BarGroup(op, bars, None if limit is None else limit[0], "" if limit is None else limit[1]))
    return groups


def batch_chart(batches: Sequence[Mapping[str, Any]], gates: Sequence[GateOutcome]) -> str:
    """Batch latencies grouped by op with each op's SLO line (or a note when it is far off scale)."""
    groups = batch_groups(batches, gates)
    if not groups:
        return ""
    legend = [("failed batch", _FAILED_COLOR, "block"), ("SLO (gate threshold)", _FAILED_COLOR, "dash")]
    return svg.bar_chart(
        groups, title="Batch time by op", y_label="ms", legend=legend, attrs={"class": "batches"}, width=svg.WIDE
    )
