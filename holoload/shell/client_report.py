"""report.html's "Client health" section: whether holoload kept up, and its loop lag and lateness over time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from holoload.core.result import RunSummary
from holoload.core.stats.client_health import GATE_KEY, ClientHealthBook, ProcessHealth, WindowHealth
from holoload.shell import svg_charts as svg
from holoload.shell.results_files import finite, read_csv
from holoload.shell.svg_charts import Point, Series

CLIENT_CSV = "client_health.csv"


def _text(value: Any, digits: int = 3) -> str:
    number = finite(value) if not isinstance(value, bool) else None
    if number is None:
        return "–" if value is None else escape(str(value))
    return str(int(number)) if number.is_integer() else f"{number:.{digits}g}"


def _percent(value: Any) -> str:
    number = finite(value)
    return "–" if number is None else f"{number:.0%}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], tid: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{tid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def client_from_csv(root: Path, scenario: Mapping[str, Any], notes: list[str] | None = None) -> dict[str, Any] | None:
    """summary.json's `client` section rebuilt from client_health.csv (a killed run), None without the file.

    Args:
        root: the results directory.
        scenario: scenario.json (whether client.ok was one of the run's gates).
        notes: where damaged rows are reported.
    """
    path = root / CLIENT_CSV
    if not path.exists():
        return None
    run = scenario.get("run")
    gates = scenario.get("gates")
    enabled = (run.get("client_gate", True) if isinstance(run, Mapping) else True) and GATE_KEY not in (gates or {})
    book = ClientHealthBook(enabled=bool(enabled))
    rows: dict[str, list[dict[str, str]]] = {}
    for r in read_csv(path, notes):
        rows.setdefault(r.get("window", ""), []).append(r)
    for index, window_rows in rows.items():
        first = window_rows[0]
        processes = []
        for r in window_rows:
            cpu_s, share = finite(r.get("cpu_s")) or 0.0, finite(r.get("cpu_share"))
            wall_s = cpu_s / share if share else finite(first.get("actual_s")) or 0.0
            health = ProcessHealth(
                finite(r.get("lag_p99_ms")),
                finite(r.get("lag_max_ms")),
                int(finite(r.get("probes")) or 0),
                cpu_s,
                wall_s,
                int(finite(r.get("late_drops")) or 0),
                r.get("drives_load") != "0",
            )
            processes.append((r.get("process", ""), health))
        late_ms = finite(first.get("tick_late_ms"))
        book.add(
            WindowHealth(
                int(finite(index) or 0),
                finite(first.get("window_s")) or 0.0,
                finite(first.get("actual_s")) or 0.0,
                None if late_ms is None else late_ms / 1000,
                tuple(processes),
            )
        )
    return book.summary()


def client_banner(summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """The verdict banner's line when holoload itself was the bottleneck (none otherwise)."""
    client = RunSummary.from_json(summary).client
    if client is None or not client.saturated:
        return []
    return [f"client saturated, results not valid: {escape(str(client.reason or ''))}"]


def client_section(
    root: Path, summary: RunSummary | Mapping[str, Any], t0: float, x_range: tuple[float, float], notes: list[str]
) -> str:
    """The section, or "" for a run without client figures (a canary, an older run).

    Args:
        root: the results directory (client_health.csv is read from it when present).
        summary: the run's summary.
        t0: wall clock of "seconds since run start" = 0.
        x_range: the report's time axis.
        notes: where damaged CSV rows are reported.
    """
    client = RunSummary.from_json(summary).client
    if client is None:
        return ""
    state = "SATURATED: results not valid" if client.saturated else "kept up"
    body = [
        f'<p class="client-state">holoload {state}: {_text(client.strained_windows)} of '
        f"{_text(client.judged_windows)} windows strained"
        + (f" ({escape(str(client.reason))})" if client.reason else "")
        + f"; {_text(client.ticks)} windows of {_text(client.window_s)} s took "
        f"{_text(client.ticked_windows_s, 6)} s ({_text(client.stretch)}x; the latest closed "
        f"{_text(client.tick_late_max_s)} s "
        f"late); {_text(client.late_drops)} arrivals dropped behind schedule.</p>"
    ]
    rows = []
    for name, f in client.processes.items():
        lags = [_text(f.get(k)) for k in ("lag_p99_ms_median", "lag_p99_ms_worst", "lag_max_ms")]
        shares = [_percent(f.get(k)) for k in ("cpu_share_mean", "cpu_share_max")]
        rows.append([escape(str(name)), *lags, _text(f.get("cpu_s")), *shares, _text(f.get("late_drops"))])
    heads = ["process", "lag p99 ms (median)", "lag p99 ms (worst)", "lag max ms", "cpu s", "cpu mean", "cpu max"]
    body.append(_table([*heads, "late drops"], rows, "client-table"))
    path = root / CLIENT_CSV
    if path.exists():
        lag: dict[str, list[Point]] = {}
        late: dict[float, float | None] = {}
        for r in read_csv(path, notes):
            ts = finite(r.get("ts"))
            if ts is None:
                continue
            lag.setdefault(r.get("process", ""), []).append((ts - t0, finite(r.get("lag_p99_ms"))))
            late[ts - t0] = finite(r.get("tick_late_ms"))
        lines = [Series(f"{name} loop lag p99", pts, svg.PALETTE[i % 9]) for i, (name, pts) in enumerate(lag.items())]
        lines.append(Series("window closed late by", sorted(late.items()), "#d62728", dashed=True))
        attrs = {"class": "client"}
        title = "holoload's own loop lag (p99 per window) and window lateness"
        body.append(
            svg.line_chart(
                lines, title=title, x_range=x_range, y_label="ms", attrs=attrs, plot_height=150, width=svg.WIDE
            )
        )
    return '<section id="client"><h2>Client health</h2>\n' + "\n".join(body) + "\n</section>"
