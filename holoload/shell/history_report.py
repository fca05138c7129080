"""`holoload history report`: reports/index.html (every scenario's runs over time) and reports/badge.svg.

One self-contained page: inline CSS and SVG charts (svg_charts.py), no fonts or network; a few
lines of inline script only for the environment filter (`index.html#env=ci` opens filtered;
without scripts every environment shows).
Per scenario, environment and target: the latest verdict, each op's p95/p99 and ops/s over the
runs with each run's verdict as a coloured dot, change points as labelled vertical lines, and a
table of runs linking to each run's report.html.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from holoload.core.history.changepoint import ChangePoint, detect
from holoload.core.history.model import RunEntry, latest_verdicts, op_keys, series
from holoload.shell import svg_charts as svg
from holoload.shell.svg_charts import Marker, Series

__all__ = ["render_badge", "render_index", "write_history_report"]

VERDICT_COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INTERRUPTED": "#bf8700", "KILLED": "#8250df"}
OTHER_COLOR = "#57606a"
CHART_HEIGHT = 160

_CSS = """
body{font-family:sans-serif;margin:16px 24px;color:#1b1f24;max-width:1140px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:30px 0 8px;border-bottom:1px solid #d0d7de}
h3{font-size:15px;margin:16px 0 4px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.v{font-weight:bold;color:#fff;padding:1px 6px;border-radius:3px}
.filter{background:#f6f8fa;border:1px solid #d0d7de;padding:6px 10px;margin:10px 0;font-size:14px}
.muted{color:#57606a;font-size:13px}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0 10px}
svg .chart-title{font-size:14px;font-weight:bold} svg text{font-size:12px;fill:#1b1f24}
svg .grid{stroke:#eaeef2} svg .axis{stroke:#57606a} svg .change-mark{stroke:#cf222e;stroke-dasharray:4 3}
svg .mark-label{fill:#cf222e;font-size:11px} svg .axis-label{fill:#57606a} svg line{stroke-width:1.5}
"""

_FILTER_JS = """
(function () {
  var select = document.getElementById('env');
  function show(env) {
    document.querySelectorAll('[data-env]').forEach(function (el) {
      el.style.display = (env === '' || el.getAttribute('data-env') === env) ? '' : 'none';
    });
  }
  select.addEventListener('change', function () {
    show(select.value);
    history.replaceState(null, '', '#env=' + encodeURIComponent(select.value));
  });
  var m = /^#env=(.*)$/.exec(location.hash);  /* index.html#env=ci opens filtered */
  if (m) { select.value = decodeURIComponent(m[1]); show(select.value); }
})();
"""

Group = tuple[str, str, str]  # scenario, environment, target


def _e(value: object) -> str:
    return escape(str(value))


def _color(verdict: str) -> str:
    return VERDICT_COLORS.get(verdict, OTHER_COLOR)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _time_axis(runs: Sequence[RunEntry]) -> tuple[float, float, str]:
    """(t0, seconds per unit, label) for a chart whose x is time since the group's first run."""
    t0 = min(r.started_ts for r in runs)
    span = max(r.started_ts for r in runs) - t0
    unit, name = (60.0, "minutes") if span < 7200 else (3600.0, "hours") if span < 3 * 86400 else (86400.0, "days")
    return t0, unit, f"{name} since {_when(t0)} UTC"


def _link(run: RunEntry, out_dir: Path) -> str:
    if not run.results_dir:
        return "-"
    report = Path(run.results_dir) / "report.html"
    try:
        href = os.path.relpath(report, out_dir.resolve())
    except ValueError:  # another drive (Windows)
        href = report.as_uri()
    missing = "" if report.exists() else ' <span class="muted">(not on this machine)</span>'
    return f'<a class="run-link" href="{_e(quote(href))}">report.html</a>{missing}'


def _changes(points: Sequence[tuple[RunEntry, float]]) -> list[ChangePoint]:
    return detect([v for _, v in points]) if len(points) >= 6 else []


def _op_charts(group: Group, runs: Sequence[RunEntry], phase: str, op: str) -> tuple[str, list[str]]:
    """The latency and throughput charts of one op, and a table row per change point found."""
    t0, unit, x_label = _time_axis(runs)
    span = (max(r.started_ts for r in runs) - t0) / unit
    x_range = (-0.03 * max(span, 1e-9), span * 1.03 if span > 0 else 1.0)
    charts, rows = [], []
    for kind, metrics, y_label in (
        ("latency", ("p95_ms", "p99_ms"), "ms"),
        ("throughput", ("ops_per_s",), "ops/s"),
    ):
        lines, markers = [], []
        dotted: list[tuple[str, float, float]] = []
        for i, metric in enumerate(metrics):
            points = series(runs, phase, op, metric)
            if not points:
                continue
            xy = [((r.started_ts - t0) / unit, v) for r, v in points]
            lines.append(Series(metric.removesuffix("_ms"), xy, svg.PALETTE[i], css=f"trend {metric}"))
            for c in _changes(points):
                run = points[c.index][0]
                change = "" if c.change is None else f" {c.change * 100:+.0f}%"
                markers.append(Marker(xy[c.index][0], f"{metric.removesuffix('_ms')}{change}", "change-mark"))
                rows.append(
                    f"<tr><td>{_e(phase)}/{_e(op)}</td><td>{_e(metric)}</td><td>{_e(_when(run.started_ts))} "
                    f"({_e(run.run_id)})</td><td class=num>{c.before:.4g}</td><td class=num>{c.after:.4g}</td>"
                    f"<td class=num>{change.strip() or '-'}</td><td class=num>{c.p_value:.3f}</td></tr>"
                )
            if i == 0:  # each run's verdict as a dot on the first line
                dotted = [(r.verdict, x, y) for (r, _), (x, y) in zip(points, xy, strict=True)]
        for verdict in sorted({v for v, _, _ in dotted}):
            dots: list[svg.Point] = [p for v, x, y in dotted if v == verdict for p in ((x, y), (x, None))]
            lines.append(Series(verdict, dots, _color(verdict), css=f"verdict-dots {verdict}", dots=True))
        if lines:
            attrs = {"class": f"trend-chart {kind}", "data-op": f"{phase}/{op}", "data-scenario": group[0]}
            title = f"{phase}/{op} · {'p95 / p99 latency' if kind == 'latency' else 'throughput'}"
            charts.append(
                svg.line_chart(
                    lines,
                    title=title,
                    x_range=x_range,
                    y_label=y_label,
                    x_label=x_label,
                    markers=markers,
                    attrs=attrs,
                    plot_height=CHART_HEIGHT,
                )
            )
    return "\n".join(charts), rows


def _runs_table(runs: Sequence[RunEntry], out_dir: Path) -> str:
    rows = []
    for run in sorted(runs, key=lambda r: r.started_ts, reverse=True):
        failed = ", ".join(g.name for g in run.gates if g.passed is False) or "-"
        rows.append(
            f"<tr><td>{_e(_when(run.started_ts))}</td>"
            f'<td><span class="v" style="background:{_color(run.verdict)}">{_e(run.verdict)}</span></td>'
            f"<td>{_e(run.run_id)}</td><td>{_e((run.git_commit or '-')[:10])}</td><td>{_e(run.git_branch or '-')}</td>"
            f"<td>{_e(failed)}</td><td>{_link(run, out_dir)}</td></tr>"
        )
    head = "<tr><th>started (UTC)</th><th>verdict</th><th>run</th><th>commit</th><th>branch</th>"
    return f"<table class=runs>{head}<th>failed gates</th><th>report</th></tr>{''.join(rows)}</table>"


def _group_section(group: Group, runs: Sequence[RunEntry], out_dir: Path) -> str:
    scenario, environment, target = group
    latest = max(runs, key=lambda r: r.started_ts)
    passed = sum(r.verdict == "PASS" for r in runs)
    parts = [
        f'<section class="group" data-env="{_e(environment)}" data-scenario="{_e(scenario)}">',
        f"<h2>{_e(scenario)} · {_e(environment)} · {_e(target)}</h2>",
        f'<p>latest <span class="v" style="background:{_color(latest.verdict)}">{_e(latest.verdict)}</span> '
        f"{_e(_when(latest.started_ts))} UTC · {len(runs)} runs, {passed} passed · topology {_e(latest.topology)}"
        f" · scenario hash {_e(latest.scenario_hash)}</p>",
    ]
    change_rows: list[str] = []
    for phase, op in op_keys(runs):
        charts, rows = _op_charts(group, runs, phase, op)
        parts.append(charts)
        change_rows += rows
    if change_rows:
        head = "<tr><th>op</th><th>figure</th><th>first run of the new level</th><th>before</th><th>after</th>"
        parts.append(
            f"<h3>Change points</h3><table class=changes>{head}<th>change</th><th>p</th></tr>"
            + "".join(change_rows)
            + "</table>"
        )
    else:
        parts.append('<p class="muted">no change points: no figure shifted (or fewer than 6 runs)</p>')
    parts += ["<h3>Runs</h3>", _runs_table(runs, out_dir), "</section>"]
    return "\n".join(parts)


def _groups(runs: Sequence[RunEntry]) -> dict[Group, list[RunEntry]]:
    groups: dict[Group, list[RunEntry]] = {}
    for run in sorted(runs, key=lambda r: (r.scenario, r.environment, r.target, r.started_ts)):
        groups.setdefault((run.scenario, run.environment, run.target), []).append(run)
    return groups


def render_index(runs: Sequence[RunEntry], out_dir: Path, *, now: datetime | None = None) -> str:
    """The history page's HTML text; links to each run's report.html are relative to `out_dir`."""
    now = now or datetime.now(UTC)
    groups = _groups(runs)
    environments = sorted({r.environment for r in runs})
    options = "".join(f'<option value="{_e(e)}">{_e(e)}</option>' for e in environments)
    summary = ["<table class=latest><tr><th>scenario</th><th>environment</th><th>target</th><th>latest</th>"]
    summary.append("<th>when (UTC)</th><th>runs</th></tr>")
    for (scenario, environment, target), group in groups.items():
        latest = group[-1]
        summary.append(
            f'<tr data-env="{_e(environment)}"><td>{_e(scenario)}</td><td>{_e(environment)}</td><td>{_e(target)}</td>'
            f'<td><span class="v" style="background:{_color(latest.verdict)}">{_e(latest.verdict)}</span></td>'
            f"<td>{_e(_when(latest.started_ts))}</td><td class=num>{len(group)}</td></tr>"
        )
    summary.append("</table>")
    body = [
        "<h1>holoload run history</h1>",
        f'<p class="muted">{len(runs)} runs of {len({r.scenario for r in runs})} scenarios · generated '
        f"{_e(now.strftime('%Y-%m-%d %H:%M'))} UTC</p>",
        f'<div class="filter"><label for="env">environment </label><select id="env"><option value="">all</option>'
        f"{options}</select></div>",
        "".join(summary),
        *(_group_section(g, group, out_dir) for g, group in groups.items()),
    ]
    if not runs:
        body.append("<p>No runs recorded yet.</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/><title>holoload run history</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + f"\n<script>{_FILTER_JS}</script>\n</body></html>\n"
    )


def render_badge(runs: Sequence[RunEntry]) -> str:
    """An SVG badge with one row per scenario and environment: its latest verdict."""
    latest = latest_verdicts(runs)
    rows: list[tuple[tuple[str, str], RunEntry | None]] = [*sorted(latest.items(), key=lambda kv: kv[0])]
    rows = rows or [(("holoload", "history"), None)]
    labels = [f"{s} · {e}" for (s, e), _ in rows]
    left = max(int(len(label) * 6.5) + 14 for label in labels)
    right = max(int(len(run.verdict if run else "no runs") * 7.5) + 14 for _, run in rows)
    height = 20
    verdicts = [run.verdict if run else "no runs" for _, run in rows]
    title = "; ".join(f"{label} {verdict}" for label, verdict in zip(labels, verdicts, strict=True))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + right}" height="{height * len(rows)}" role="img">',
        f"<title>holoload: {_e(title)}</title>",
    ]
    for i, (label, verdict) in enumerate(zip(labels, verdicts, strict=True)):
        y = i * height
        out += [
            f'<rect x="0" y="{y}" width="{left}" height="{height}" fill="#555"/>',
            f'<rect x="{left}" y="{y}" width="{right}" height="{height}" fill="{_color(verdict)}"/>',
            f'<text x="{left / 2:.0f}" y="{y + 14}" fill="#fff" font-family="Verdana,sans-serif" font-size="11" '
            f'text-anchor="middle">{_e(label)}</text>',
            f'<text x="{left + right / 2:.0f}" y="{y + 14}" fill="#fff" font-family="Verdana,sans-serif" '
            f'font-size="11" font-weight="bold" text-anchor="middle">{_e(verdict)}</text>',
        ]
    return "\n".join([*out, "</svg>"]) + "\n"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_history_report(runs: Sequence[RunEntry], out_dir: Path) -> tuple[Path, Path]:
    """Write `out_dir/index.html` and `out_dir/badge.svg`; returns their paths.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    index, badge = out_dir / "index.html", out_dir / "badge.svg"
    _atomic(index, render_index(runs, out_dir))
    _atomic(badge, render_badge(runs))
    return index, badge
