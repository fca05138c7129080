"""Rebuild a run's summary from what it appended to disk (after a SIGKILL, or to re-render reports).

A killed holoload leaves events.jsonl, timeseries.csv and latency.hlog, each complete up to
the last closed window. From them this rebuilds summary.json / summary.txt with the run's
identity, per-phase figures (counts from timeseries.csv, latency percentiles from the merged
interval histograms), chaos steps, checker reports and the last live state of every gate. The
verdict is `KILLED`: gates are not re-judged, since what would judge them died with the run.
A torn last line (the write the kill interrupted) is skipped, never fatal.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from holoload import __version__
from holoload.core.result import RunSummary
from holoload.core.stats import hlog
from holoload.core.stats.histogram import LatencyHistogram
from holoload.engine.result import latency_ms
from holoload.shell.client_report import client_from_csv
from holoload.shell.results_files import read_csv, read_jsonl

PERCENTILES = (50, 90, 95, 99, 99.9)


def read_events(root: Path) -> list[dict[str, Any]]:
    """events.jsonl as dicts in time order; damaged lines (a torn last write) are skipped."""
    path = root / "events.jsonl"
    return read_jsonl(path, []) if path.exists() else []


def read_timeseries(root: Path) -> list[dict[str, str]]:
    """timeseries.csv rows; a torn last row (too few fields) is skipped."""
    path = root / "timeseries.csv"
    return list(read_csv(path, None)) if path.exists() else []


def read_hlog(root: Path) -> dict[str, LatencyHistogram]:
    """latency.hlog merged per tag (every window of one op on one endpoint in one phase)."""
    merged: dict[str, LatencyHistogram] = {}
    path = root / "latency.hlog"
    if not path.exists():
        return merged
    for line in path.read_text(errors="replace").splitlines():
        interval = hlog.parse_line(line)
        if interval is None:
            continue
        try:
            histogram = LatencyHistogram.decode(interval.payload.encode())
        except ValueError:
            continue  # torn payload
        if interval.tag in merged:
            merged[interval.tag].merge(histogram)
        else:
            merged[interval.tag] = histogram
    return merged


def rebuild_summary(root: Path) -> tuple[RunSummary, list[tuple[str, Any]]]:
    """The summary (verdict KILLED) and summary.txt keys rebuilt from the files under `root`.

    Raises:
        FileNotFoundError: `root` holds none of the files a run appends.
    """
    events = read_events(root)
    windows = read_timeseries(root)
    histograms = read_hlog(root)
    if not events and not windows:
        raise FileNotFoundError(f"{root}: no events.jsonl or timeseries.csv to rebuild from")
    started = next((e for e in events if e.get("kind") == "run_started"), {})
    scenario = _scenario(root)
    phases = _phases(windows, histograms, scenario)
    problems = [f"{e.get('what')}: {e.get('detail')}" for e in events if e.get("kind") == "problem"]
    problems.append("summary rebuilt from disk by `holoload report`: the run did not finish (killed?)")
    data: dict[str, Any] = {
        "holoload_version": __version__,
        "rebuilt_from_disk": True,
        "run": {
            "run_id": started.get("run_id"),
            "started_at": started.get("ts"),
            "results_dir": str(root),
            "status": "KILLED",
            "exit_code": None,
            "last_event_ts": events[-1].get("ts") if events else None,
            "problems": problems,
        },
        "verdict": "KILLED",
        "exit_code": None,
        "scenario": scenario or {"name": started.get("scenario")},
        "target": {"name": started.get("target"), "nodes": started.get("nodes")},
        "phases": phases,
        "gates": _last_gate_states(events),
        "chaos": _chaos(events),
        "check": _checks(events),
        "client": client_from_csv(root, scenario),
    }
    keys: list[tuple[str, Any]] = [("run_id", started.get("run_id")), ("phases", len(phases))]
    for phase, figures in phases.items():
        for op, fig in figures["ops"].items():
            lat = fig["latency_ms"] or {}
            keys += [
                (f"{phase}.{op}.ok", fig["ok"]),
                (f"{phase}.{op}.errors", fig["error_count"]),
                (f"{phase}.{op}.ops_per_s", fig["ops_per_s"]),
                (f"{phase}.{op}.p95_ms", lat.get("p95")),
                (f"{phase}.{op}.p99_ms", lat.get("p99")),
            ]
    keys.append(("slo_status", "KILLED"))
    return RunSummary.from_json(data), keys


def _scenario(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "scenario.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _phases(
    windows: list[dict[str, str]], histograms: dict[str, LatencyHistogram], scenario: dict[str, Any]
) -> dict[str, Any]:
    measured = {p.get("name"): p.get("measured", True) for p in scenario.get("phases", []) if isinstance(p, dict)}
    totals: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    spans: dict[str, list[float]] = {}
    previous_end = 0.0
    seen_windows: set[tuple[str, str]] = set()
    for row in windows:
        phase, elapsed = row["phase"], float(row["elapsed_s"] or 0)
        if (phase, row["window"]) not in seen_windows:
            seen_windows.add((phase, row["window"]))
            start, _end = spans.get(phase, [previous_end, elapsed])
            spans[phase] = [start, elapsed]
            previous_end = elapsed
        if row["endpoint"] != "*":
            continue
        fig = totals[phase][f"{row['workload']}.{row['op']}"]
        for name in ("ok", "errors", "dropped", "retries", "rows"):
            fig[name] += float(row[name] or 0)
    phases: dict[str, Any] = {}
    for phase, ops in totals.items():
        start, end = spans[phase]
        seconds = max(end - start, 0.0)
        out: dict[str, Any] = {}
        for op, fig in ops.items():
            latency = _merged(histograms, phase, op)
            out[op] = {
                "ok": int(fig["ok"]),
                "rows": int(fig["rows"]),
                "error_count": int(fig["errors"]),
                "dropped": int(fig["dropped"]),
                "retries": int(fig["retries"]),
                "ops_per_s": fig["ok"] / seconds if seconds > 0 else None,
                "latency_ms": _latency(latency),
            }
        phases[phase] = {"measured": measured.get(phase, True), "seconds": seconds, "ops": out}
    return phases


def _merged(histograms: dict[str, LatencyHistogram], phase: str, op: str) -> LatencyHistogram:
    prefix = hlog.tag(phase, *op.split(".", 1), "")
    merged = LatencyHistogram()
    for tag, histogram in histograms.items():
        if tag.startswith(prefix):
            merged.merge(histogram)
    return merged


def _latency(h: LatencyHistogram) -> dict[str, float] | None:
    if h.count == 0:
        return None
    pcts = {p: h.percentile_us(p) for p in PERCENTILES}
    return latency_ms(h.count, h.min_us or 0, h.mean_us or 0.0, h.max_us or 0, pcts)


def _last_gate_states(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("kind") == "gate":
            last[str(e.get("name"))] = e
    return [
        {
            "name": name,
            "passed": e.get("state") == "pass",
            "state": e.get("state"),
            "reason": f"last live state before the run ended: {e.get('reason')}",
        }
        for name, e in last.items()
    ]


def _chaos(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    faults: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("kind") != "chaos_finished":
            continue
        fault = faults.setdefault(
            str(e.get("name")), {"name": e.get("name"), "action": e.get("action"), "fired": 0, "ok": 0, "healed": 0}
        )
        if e.get("step", "fire") == "fire":
            fault["fired"] += 1
            fault["ok"] += bool(e.get("ok"))
        else:
            fault["healed"] += bool(e.get("ok"))
    return list(faults.values())


def _checks(events: list[dict[str, Any]]) -> dict[str, Any]:
    checks = [e for e in events if e.get("kind") == "check"]
    if not checks:
        return {}
    return {"complete": False, "reports": checks}
