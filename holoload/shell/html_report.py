"""report.html: one self-contained page (inline SVG, no scripts) that shows a finished run at a glance."""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from holoload.core.config.units import format_duration
from holoload.core.result import OpFigures, RunSummary
from holoload.core.server.metrics import HOLOFUSION_GAUGE_MARKERS
from holoload.shell import error_messages
from holoload.shell import report_charts as charts
from holoload.shell import svg_charts as svg
from holoload.shell.client_report import client_banner, client_section
from holoload.shell.isolation_html import isolation_section
from holoload.shell.regression_views import html_sections
from holoload.shell.results_files import finite, read_csv, read_jsonl
from holoload.shell.svg_charts import Marker, Point, Series, Span

REPORT_NAME = "report.html"
MAX_METRIC_CHARTS = 6
MAX_STEP_ROWS = 200
_NAMED_METRIC = re.compile(r"conflict|admission|reject|timeout", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_FAULT_ACTIONS = {"kill", "stop", "pause", "net"}
_BAD_FINDINGS = {"lost", "duplicated", "partial", "unexpected"}
_READY = {True: ("ready", "#2ca02c"), False: ("not ready", "#d62728"), None: ("unknown", "#bbbbbb")}
_CSS = """
body{font-family:sans-serif;margin:16px 24px;color:#1b1f24;max-width:1840px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#ffebe9} tr.fail td.result{color:#cf222e;font-weight:bold}
tr.pass td.result{color:#1a7f37;font-weight:bold} tr.nodata td.result{color:#9a6700;font-weight:bold}
td.drop-fail{color:#cf222e;font-weight:bold}
.verdict{padding:14px 18px;border-radius:6px;color:#fff} .verdict h1{margin:0 0 6px;font-size:26px}
.verdict.PASS{background:#1a7f37} .verdict.FAIL{background:#cf222e} .verdict.INTERRUPTED{background:#bf8700}
.verdict.ERROR,.verdict.UNKNOWN{background:#57606a} .verdict p{margin:2px 0;font-size:14px}
.notes{background:#fff8c5;border:1px solid #d4a72c;padding:6px 12px 6px 28px;font-size:13px}
.pair{display:flex;flex-wrap:wrap;gap:0 20px} .pair svg.chart{max-width:calc(50% - 10px)}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 14px}
svg .chart-title{font-size:14px;font-weight:bold} svg text{font-size:12px;fill:#1b1f24}
svg .grid{stroke:#eaeef2} svg .axis{stroke:#57606a} svg .phase-mark{stroke:#8c959f;stroke-dasharray:3 3}
svg .mark-label{fill:#57606a;font-size:11px} svg .axis-label{fill:#57606a} svg line{stroke-width:1.5}
svg .limit-note{fill:#cf222e;font-size:12px} svg .group-label{font-weight:bold}
"""


@dataclass
class _Run:
    """What the results directory holds, parsed; `notes` say what is missing or damaged."""

    root: Path
    summary: RunSummary
    notes: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # each with a numeric "ts", sorted
    rows: list[dict[str, Any]] = field(default_factory=list)  # timeseries.csv, endpoint "*", with "t" and "key"
    node_rows: list[dict[str, Any]] = field(default_factory=list)  # timeseries.csv, one endpoint each, with "t"
    t0: float = 0.0  # wall clock of "seconds since run start" = 0
    x_range: tuple[float, float] = (0.0, 1.0)

    def t(self, record: dict[str, Any]) -> float:
        return float(record["ts"]) - self.t0

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]

    def chart(self, attrs: dict[str, str], series: Sequence[Series], title: str, y_label: str, **kw: Any) -> str:
        kw.setdefault("width", svg.WIDE)
        return svg.line_chart(series, title=title, x_range=self.x_range, y_label=y_label, attrs=attrs, **kw)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _load(root: Path) -> _Run:
    run = _Run(root, RunSummary())
    try:
        run.summary = RunSummary.from_json(root / "summary.json")
    except (OSError, ValueError) as exc:
        run.notes.append(f"summary.json is missing or unreadable ({exc}): verdict and gates unknown")
    canary = "batches" in run.summary.keys or (root / "batch_stats.csv").exists()
    wanted = {
        "events.jsonl": "no phases, chaos spans, node health or checker events",
        "metrics.csv": "no server metrics (none sampled, or the run stopped first)",
        "topology.jsonl": "no shard counts (no topology source, or the run stopped first)",
        "batch_stats.csv": "batches come from the event log only",
        "timeseries.csv": "no latency or throughput over time",
    }
    for name, loss in wanted.items():
        if not (root / name).exists() and name != ("timeseries.csv" if canary else "batch_stats.csv"):
            run.notes.append(f"{name} is missing: {loss}")
    if (root / "events.jsonl").exists():
        run.events = read_jsonl(root / "events.jsonl", run.notes)
    for r in read_csv(root / "timeseries.csv", run.notes) if (root / "timeseries.csv").exists() else ():
        if (ts := finite(r.get("ts"))) is not None:
            which = run.rows if r.get("endpoint") == "*" else run.node_rows
            which.append({**r, "ts": ts, "key": f"{r.get('workload')}.{r.get('op')}"})
    origins = [float(e["ts"]) for e in run.of("run_started")]
    origins += [r["ts"] - (finite(r.get("elapsed_s")) or 0.0) for r in run.rows[:1]]
    try:
        origins.append(datetime.fromisoformat(str(run.summary.run.started_at)).timestamp())
    except ValueError:
        pass
    times = [float(e["ts"]) for e in run.events] + [r["ts"] for r in run.rows]
    run.t0 = (origins or [min(times, default=0.0)])[0]
    run.x_range = (0.0, max([t - run.t0 for t in times] + [1.0]))
    for row in run.rows + run.node_rows:
        row["t"] = row["ts"] - run.t0
    return run


def _timeline(run: _Run, spans: list[Span], marks: list[Marker]) -> charts.Timeline:
    starts = {str(e.get("phase")): run.t(e) for e in run.of("phase")}
    return charts.Timeline(run.rows, run.node_rows, run.x_range, starts, spans, marks)


def _e(value: Any) -> str:
    return escape(str(value))


class _Html(str):
    """A table cell already rendered (not escaped again)."""


def _cell(value: Any) -> str:
    if isinstance(value, _Html):
        return value
    if value is None or value == "":
        return "<td>–</td>"
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return f'<td class="num">{_e(value)}</td>'
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"<td>{_e(value)}</td>"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f'<td class="num">{text}</td>'


def _table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None, tid: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    marks = [f' class="{_e(c)}"' for c in classes] if classes else [""] * len(rows)
    body = "".join(f"<tr{m}>" + "".join(_cell(v) for v in row) + "</tr>" for m, row in zip(marks, rows, strict=True))
    return f'<table id="{_e(tid)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _section(sid: str, title: str, body: list[str]) -> str:
    return f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>\n' + "\n".join(body) + "\n</section>"


def _duration(value: Any) -> str:
    seconds = finite(value)
    return "?" if seconds is None else format_duration(seconds)


def _banner(run: _Run) -> str:
    s, info = run.summary, run.summary.run
    verdict = s.verdict.value
    facts = [
        f"scenario <b>{_e(s.scenario.get('name', '?'))}</b> · run {_e(info.get('run_id', '?'))}",
        f"started {_e(info.get('started_at', '?'))} · {_e(_duration(info.duration_s))}"
        f" · exit code {_e(s.get('exit_code', '?'))}",
    ]
    facts += [f"aborted by gate {_e(s.aborted_by)}"] if s.aborted_by else []
    facts += client_banner(s)
    facts += [f"problem: {_e(p)}" for p in info.problems]
    cls = verdict if verdict in ("PASS", "FAIL", "INTERRUPTED", "ERROR") else "UNKNOWN"
    out = f'<header id="verdict" class="verdict {cls}"><h1>{_e(verdict)}</h1>'
    out += "".join(f"<p>{f}</p>" for f in facts) + "</header>"
    if run.notes:
        out += '<ul id="notes" class="notes">' + "".join(f'<li class="note">{_e(n)}</li>' for n in run.notes) + "</ul>"
    return out


def _gates(run: _Run) -> str:
    gates = run.summary.gates
    if not gates:
        return _section("gates", "Gates", ["<p>No gate verdicts (the run never reached its gates).</p>"])
    results = [g.state.value for g in gates]
    rows = [
        [g.get("name"), _Html(f'<td class="result">{r.upper()}</td>')]
        + [g.get(k) for k in ("observed_text", "threshold_text", "expression", "reason")]
        for g, r in zip(gates, results, strict=True)
    ]
    classes = [r.replace(" ", "") for r in results]  # "no data" rows get class "nodata"
    table = _table(["gate", "result", "observed", "threshold", "expression", "reason"], rows, classes, tid="gate-table")
    failed, no_data = results.count("fail"), results.count("no data")
    title = f"Gates: {results.count('pass')} passed, {failed} failed" + (f", {no_data} no data" if no_data else "")
    return _section("gates", title, [table])


def _spans(run: _Run) -> list[Span]:
    """Chaos faults from fire to heal, instant actions (splits) from start to finish, per name."""
    faults = {e.get("name") for e in run.events if e.get("step") == "heal" or e.get("action") in _FAULT_ACTIONS}
    colors: dict[str, str] = {}
    opened: dict[str, float] = {}
    out: list[Span] = []
    for e in run.events:
        kind, name, step, split = e.get("kind"), str(e.get("name")), e.get("step", "fire"), e.get("action") == "split"
        if kind not in ("chaos_started", "chaos_finished"):
            continue
        colors.setdefault(name, svg.SPLIT_COLOR if split else svg.FAULT_PALETTE[len(colors) % 7])
        if kind == "chaos_started" and step == "fire":
            opened[name] = run.t(e)
        elif kind == "chaos_finished" and (step == "heal" or name not in faults) and name in opened:
            start, css = opened.pop(name), "split-span" if split else "fault-span" if name in faults else "chaos-span"
            failed = "" if e.get("ok") else " failed"
            title = f"{name} ({e.get('action')} {e.get('node') or ''}) {start:.1f}s -> {run.t(e):.1f}s{failed}"
            out.append(Span(start, run.t(e), name, colors[name], css + failed, title))
    for name, start in opened.items():  # fired and never healed (or finished) by the end
        out.append(Span(start, run.x_range[1], name, colors[name], "fault-span open", f"{name}: not healed"))
    return out


def _outage_spans(run: _Run) -> list[Span]:
    """Each chaos episode's outage (its worst op's gap in successes) as a band."""
    out: list[Span] = []
    for c in run.summary.chaos:
        for ep in c.outages:
            start, end = finite(ep.get("from_at")), finite(ep.get("to_at"))
            if start is None:
                continue
            stop = run.x_range[1] if end is None else end - run.t0
            title = f"outage of {c.get('name')} #{ep.get('episode')}: {finite(ep.get('outage_s')) or 0:.3f}s"
            out.append(Span(start - run.t0, stop, f"outage {c.get('name')}", "#cf222e", "outage-span", title))
    return out


def _latency(run: _Run, timeline: charts.Timeline) -> str:
    body = charts.latency_charts(timeline)
    batches = list(run.summary.batches) or run.of("batch_finished")
    body += [chart] if (chart := charts.batch_chart(batches, run.summary.gates)) else []
    rows: list[list[Any]] = []
    failed = run.summary.drops_that_failed()
    for phase, op, f in run.summary.op_figures():
        lat = f.latency_ms or {}
        rows.append([phase, op, *(f.get(k) for k in ("ok", "error_count")), _dropped(f, (phase, op) in failed)])
        rows[-1] += [f.get("ops_per_s")] + [lat.get(k) for k in ("p50", "p95", "p99", "max")]
    heads = ["phase", "op", "ok", "errors", "dropped", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    body[:0] = [_table(heads, rows, tid="phase-ops")] if rows else []
    ops = list((run.summary.ops or {}).items())
    rows = [[op, *(f.get(k) for k in ("runs", "rows", "ok", "errors", "delta_mismatches"))] for op, f in ops]
    rows = [
        row + [(f.latency_ms or {}).get(k) for k in ("p50", "p95", "max")]
        for row, (_, f) in zip(rows, ops, strict=True)
    ]
    heads = ["op", "runs", "rows", "ok", "errors", "delta mismatches", "p50 ms", "p95 ms", "max ms"]
    body[:0] = [_table(heads, rows, tid="batch-ops")] if rows else []
    return _section("latency", "Latency over time", body or ["<p>No latency data.</p>"])


def _dropped(figures: OpFigures, failed: bool) -> Any:
    """An op's dropped count; bold red (class drop-fail) when a failed gate counted these drops."""
    if not failed:
        return figures.get("dropped")
    title = "a failed gate counted these drops"
    return _Html(f'<td class="num drop-fail" title="{title}">{figures.dropped:,}</td>')


def _throughput(run: _Run, timeline: charts.Timeline) -> str:
    body = charts.throughput_charts(timeline, run.summary.scenario)
    return _section("throughput", "Throughput over time", body) if body else ""


def _errors(run: _Run) -> str:
    rows: list[list[Any]] = []
    for phase, op, f in run.summary.op_figures():
        rows += [[phase, op, cls, n] for cls, n in _dict(f.errors).items()]
    batches = list(run.summary.batches) or run.of("batch_finished")
    counted = Counter(
        (b.get("op"), b.get("error_class") or b.get("status")) for b in batches if b.get("status") != "ok"
    )
    rows += [["batches", op, cls, n] for (op, cls), n in counted.items()]
    body = [_table(["phase", "op", "error class", "count"], rows, tid="error-table")] if rows else ["<p>No errors.</p>"]
    seen = [error_messages.cells(m) for m in error_messages.messages(run.summary)]
    if seen:  # what the server said, per op and endpoint (first distinct messages)
        body.append(_table(list(error_messages.HEADER), [list(c) for c in seen], tid="error-messages"))
    body += [f"<p>{_e(m)}</p>" for m in error_messages.more_lines(run.summary)]
    return _section("errors", "Errors by class", body)


def _metric_series(run: _Run) -> list[tuple[str, dict[str, list[Point]]]]:
    """Per-second rates of a few counters: the named ones that moved, then the largest total deltas."""
    path = run.root / "metrics.csv"
    last: dict[tuple[str, str, str], float] = {}
    delta: defaultdict[tuple[str, str], float] = defaultdict(float)
    drops: Counter[tuple[str, str]] = Counter()
    for r in read_csv(path, run.notes) if path.exists() else ():
        value, key = finite(r.get("value")), (r.get("name", ""), r.get("labels", ""))
        if value is None or any(m in key[0] for m in HOLOFUSION_GAUGE_MARKERS):
            continue
        prev, last[(*key, r.get("node", ""))] = last.get((*key, r.get("node", ""))), value
        if prev is not None:
            drops[key] += int(value < prev)  # a restarted node resets its counters; a gauge drops often
            delta[key] += value - prev if value >= prev else value
    nodes = len({k[2] for k in last}) or 1
    counters = [k for k, d in delta.items() if d > 0 and drops[k] <= nodes]
    named = [k for k in counters if _NAMED_METRIC.search(k[0])]
    chosen = (named + sorted((k for k in counters if k not in named), key=lambda k: -delta[k]))[:MAX_METRIC_CHARTS]
    points: dict[tuple[str, str], dict[str, list[Point]]] = {k: defaultdict(list) for k in chosen}
    before: dict[tuple[str, str, str], tuple[float, float]] = {}
    for r in read_csv(path, None) if chosen else ():  # second pass: only the chosen series are kept
        key, value, ts = (r.get("name", ""), r.get("labels", "")), finite(r.get("value")), finite(r.get("ts"))
        if key not in points or value is None or ts is None:
            continue
        node = r.get("node", "")
        earlier, before[(*key, node)] = before.get((*key, node)), (ts, value)
        if earlier and ts > earlier[0]:
            rate = (value - earlier[1]) / (ts - earlier[0]) if value >= earlier[1] else None
            points[key][node].append((ts - run.t0, rate))
    return [(f"{name}{{{labels}}}" if labels else name, dict(points[(name, labels)])) for name, labels in chosen]


def _metrics(run: _Run, spans: list[Span]) -> str:
    body = []
    for title, per_node in _metric_series(run):
        lines = [Series(n, pts, svg.PALETTE[i % 9]) for i, (n, pts) in enumerate(sorted(per_node.items()))]
        attrs = {"class": "metric", "data-metric": title}
        small = {"width": svg.WIDE // 2 - 10, "plot_height": 120, "log_y": False, "spans": spans}
        body.append(run.chart(attrs, lines, f"{title} per second", "/s", **small))
    return (
        _section("metrics", "Server metrics (counter rates)", ['<div class="pair">', *body, "</div>"]) if body else ""
    )


def _topology(run: _Run, spans: list[Span]) -> str:
    path = run.root / "topology.jsonl"
    records = read_jsonl(path, run.notes) if path.exists() else run.of("topology")
    shards = {run.t(r): finite(_dict(r.get("summary")).get("shards")) for r in records}
    body = []
    if any(v is not None for v in shards.values()):
        line = Series("shards", sorted(shards.items()) + [(run.x_range[1], shards[max(shards)])], "#9467bd", step=True)
        body.append(run.chart({"class": "shards"}, [line], "Shard count", "shards", spans=spans, log_y=False))
    health: dict[str, list[tuple[float, Any, str]]] = defaultdict(list)
    for e in run.of("health"):
        health[str(e.get("node"))].append((run.t(e), e.get("ready"), str(e.get("detail", ""))))
    lanes = []
    for node, changes in sorted(health.items()):
        ends = [t for t, _, _ in changes[1:]] + [run.x_range[1]]
        lane = []
        for (t, ready, detail), end in zip(changes, ends, strict=True):
            label, color = _READY[ready if isinstance(ready, bool) else None]
            lane.append(Span(t, end, label, color, f"health-span {label.replace(' ', '-')}", f"{node}: {detail}"))
        lanes.append((node, lane))
    if lanes:
        legend = list(_READY.values())
        body.append(
            svg.lane_chart(
                lanes,
                title="Node readiness",
                x_range=run.x_range,
                legend=legend,
                attrs={"class": "health"},
                width=svg.WIDE,
            )
        )
    return _section("topology", "Topology and node health", body) if body else ""


def _check(run: _Run) -> str:
    check, events = run.summary.check, run.of("check")
    body = []
    if check.keys:
        state = "complete" if check.complete else "INCOMPLETE: the gates on its findings have no value"
        counts = list(_dict(check.counts).items())
        classes = ["fail" if k in _BAD_FINDINGS and v else "pass" for k, v in counts]
        body.append(f'<p class="check-state">Check {_e(state)}.</p>')
        body.append(_table(["finding", "ids"], [list(c) for c in counts], classes, tid="check-counts"))
        body.append(_table(["ledger", "ids"], [[k, v] for k, v in _dict(check.ledger).items()], tid="ledger"))
    rows = [[e.get(k) for k in ("table", "node", "ok", "queries", "elapsed_s", "error")] for e in events]
    body += [_table(["table", "node", "ok", "queries", "seconds", "error"], rows, tid="check-events")] if rows else []
    lost = check.lost_ranges
    rows = [
        [f"{_dict(r).get('ids')}", r.get("count"), r.get("node"), r.get("acknowledged_by"), _acked(run, r)]
        for r in lost
    ]
    heads = ["lost ids [from, to)", "count", "acknowledged by", "address", "acknowledged at s"]
    body += [_table(heads, rows, ["fail"] * len(rows), tid="lost-ranges")] if rows else []
    return _section("check", "Acknowledged-write check", body) if body else ""


def _acked(run: _Run, row: Mapping[str, Any]) -> str:
    at = _list(row.get("acked_at"))
    return f"{at[0] - run.t0:.2f} - {at[1] - run.t0:.2f}" if len(at) == 2 and None not in at else ""


def _recovery(value: Any) -> str:
    seconds = finite(value)
    return "none" if seconds is None else f"{seconds:.2f}"  # none: no success after that heal


def _chaos(run: _Run) -> str:
    chaos, steps = run.summary.chaos, run.of("chaos_finished")
    keys = ["name", "action", "trigger", "fired", "ok", "failed", "healed", "heal_failed", "skipped"]
    rows = [[c.get(k) for k in keys] + [" ".join(_recovery(v) for v in c.recovery_s)] for c in chaos]
    classes = ["fail" if c.get("failed") or c.get("heal_failed") else "pass" for c in chaos]
    body = [_table([*keys, "recovery s"], rows, classes, tid="chaos-table")] if rows else []
    shown = steps[:MAX_STEP_ROWS]
    rows = [
        [
            f"{run.t(e):.1f}",
            *(e.get(k) for k in ("name", "step", "node")),
            "ok" if e.get("ok") else "FAILED",  # a step's outcome in words, not Python's True/False
            str(e.get("detail", ""))[:300],
        ]
        for e in shown
    ]
    classes = ["pass" if e.get("ok") else "fail" for e in shown]
    body += [_table(["t s", "name", "step", "node", "ok", "detail"], rows, classes, tid="chaos-steps")] if rows else []
    body += [f"<p>{len(steps) - len(shown)} more steps in events.jsonl.</p>"] if len(steps) > len(shown) else []
    rows = [
        [c.get("name"), e.get("episode"), e.get("start_s"), e.get("end_s"), e.get("outage_s")]
        + [", ".join(f"{op} {finite(_dict(g).get('outage_s')) or 0:.3f}" for op, g in _dict(e.get("ops")).items())]
        for c in chaos
        for e in c.outages
    ]
    heads = ["fault", "episode", "start s", "end s", "outage s", "per op (s)"]
    body += [_table(heads, rows, tid="outages")] if rows else []
    return _section("chaos", "Chaos", body) if body else ""


def _batches(run: _Run) -> str:
    path = run.root / "batch_stats.csv"
    known = {str(b.get("index")): b for b in [*run.summary.batches, *run.of("batch_finished")]}
    keys = ("index", "label", "rows", "elapsed_ms", "row_delta", "status")
    rows: list[list[Any]]
    if path.exists():
        rows = [[r.get(k) for k in keys] for r in read_csv(path, run.notes)]
    else:
        rows = [
            [b.get(k) if k != "elapsed_ms" else (finite(b.get("elapsed_s")) or 0) * 1000 for k in keys]
            for b in known.values()
        ]
    rows = [row + [_dict(known.get(str(row[0]))).get(k) for k in ("node", "error_class", "error")] for row in rows]
    heads = ["index", "label", "rows", "elapsed ms", "row delta", "status", "node", "error class", "error"]
    counts = ", ".join(f"{k} {v}" for k, v in _dict(run.summary.counts).items() if not isinstance(v, list))
    body = [
        f"<p>{_e(counts)}</p>",
        _table(heads, rows, ["pass" if r[5] == "ok" else "fail" for r in rows], tid="batch-table"),
    ]
    return _section("batches", "Batches", body) if rows else ""


def render_report(results_dir: Path) -> str:
    """The report of one results directory as a self-contained HTML page.

    Args:
        results_dir: a run's results directory; any file but summary.json may be missing or cut short.

    Returns:
        The HTML text (inline CSS and SVG; no scripts, fonts or network).
    """
    run = _load(Path(results_dir))
    spans, marks = _spans(run) + _outage_spans(run), [Marker(run.t(e), str(e.get("phase"))) for e in run.of("phase")]
    timeline = _timeline(run, spans, marks)
    parts = [_gates(run), _latency(run, timeline), _throughput(run, timeline), _errors(run)]
    parts.insert(1, html_sections(run.summary))  # a baseline comparison right after the gates
    parts += [_metrics(run, spans), _topology(run, spans), _check(run), _chaos(run), _batches(run)]
    parts.append(isolation_section(run.summary.extra.get("isolation")))
    parts.append(client_section(run.root, run.summary, run.t0, run.x_range, run.notes))
    banner = _banner(run)  # last: reading the files above may have added notes
    title = f"holoload {run.summary.get('verdict', '')} {run.summary.scenario.get('name', '')}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n{banner}\n" + "\n".join(p for p in parts if p) + "\n</body></html>\n"
    )


def write_report(results_dir: Path) -> list[str]:
    """Write `results_dir/report.html` (atomically); returns write errors instead of raising OSError."""
    path = Path(results_dir) / REPORT_NAME
    tmp = path.with_name(REPORT_NAME + ".tmp")
    try:
        tmp.write_text(render_report(Path(results_dir)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return [f"{REPORT_NAME}: {exc}"]
    return []
