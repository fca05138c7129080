"""`holoload compare`: the current run(s) against baseline run(s), as a table and an exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from holoload.core.compare.regression import (
    BUDGET_KEYS,
    LATENCY_METRICS,
    Budget,
    Comparison,
    Delta,
    RunFigures,
    budget_from,
    compare_runs,
)
from holoload.core.errors import ExitCode, InputError
from holoload.core.result import RunSummary
from holoload.shell.results_files import read_window_series

__all__ = [
    "ENV_VARS",
    "SET_FILE",
    "budget_from_env",
    "comparison_record",
    "load_runs",
    "load_summary",
    "render",
    "run_compare",
]

ENV_LATENCY = "HOLOLOAD_COMPARE_LATENCY"
ENV_THROUGHPUT = "HOLOLOAD_COMPARE_THROUGHPUT"
#: The environment variable of each budget key.
ENV_VARS = {key: f"HOLOLOAD_COMPARE_{key.upper()}" for key in BUDGET_KEYS}
#: A set of runs (`holoload run --repeat N`) lists its runs' directories in this file.
SET_FILE = "set.json"

_HEADER = ("op", "metric", "baseline", "current", "change", "interval", "samples", "verdict")


def load_summary(results_dir: Path) -> RunSummary:
    """Read ``results_dir/summary.json`` (a path to the summary.json file itself works too) as a RunSummary.

    Raises:
        InputError: (exit 2) the file is missing, unreadable or not a JSON object; the message names it.
    """
    path = results_dir if results_dir.suffix == ".json" and not results_dir.is_dir() else results_dir / "summary.json"
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: not found (expected a holoload results directory)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a holoload summary (expected a JSON object)")
    return RunSummary.from_json(data)


def load_runs(path: Path) -> list[RunFigures]:
    """The run(s) at ``path``: a results directory, its summary.json, or a set of runs.

    A set is a directory with ``set.json`` (written by ``holoload run --repeat N``) or, failing
    that, any directory whose subdirectories hold summary.json files (each one run).

    Raises:
        InputError: (exit 2) nothing readable there; the message names the path.
    """
    if path.is_dir() and not (path / "summary.json").exists():
        listed = _set_members(path)
        if listed:
            return [_run_figures(p) for p in listed]
    return [_run_figures(path)]


def _set_members(path: Path) -> list[Path]:
    set_file = path / SET_FILE
    if set_file.exists():
        try:
            data = orjson.loads(set_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise InputError(f"{set_file}: cannot read the set of runs: {exc}") from None
        runs = data.get("runs") if isinstance(data, dict) else None
        dirs = [r.get("results_dir") for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []
        members = [path / Path(str(d)).name for d in dirs if d]
        if not members:
            raise InputError(f"{set_file}: lists no runs (expected runs[].results_dir)")
        return members
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / "summary.json").exists())


def _run_figures(path: Path) -> RunFigures:
    summary = load_summary(path)
    root = path.parent if path.suffix == ".json" and not path.is_dir() else path
    return RunFigures(summary, read_window_series(root, summary.measured_phases()), str(root))


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _signed(fraction: float) -> str:
    return f"{fraction * 100:+.1f}%"


def _change(delta: Delta) -> str:
    return "-" if delta.change is None else _signed(delta.change)


def _interval(delta: Delta) -> str:
    return "-" if delta.low is None or delta.high is None else f"[{_signed(delta.low)}, {_signed(delta.high)}]"


def _samples(delta: Delta) -> str:
    if delta.note:
        return "-"
    base, cur = delta.samples
    return {"windows": f"{base}/{cur} windows", "runs": f"{base}/{cur} runs"}.get(delta.basis, "no interval")


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def verdict_text(delta: Delta) -> str:
    """``REGRESSION``, ``ok``, ``ok (within noise)``, ``missing``...: the verdict cell of a delta."""
    verdict = delta.verdict
    if delta.note and verdict not in ("missing", "new"):  # "REGRESSION (no data in current)"
        verdict += f" ({delta.note})"
    elif delta.why_ok:
        verdict += f" ({delta.why_ok})"
    return verdict


def delta_cells(delta: Delta) -> tuple[str, ...]:
    """The table cells of one delta, in ``_HEADER`` order."""
    return (
        delta.op,
        delta.metric,
        _number(delta.baseline),
        _number(delta.current),
        _change(delta),
        _interval(delta),
        _samples(delta),
        verdict_text(delta),
    )


def budget_text(budget: Budget) -> str:
    """``budget latency +10%, throughput -10%; minimum change 0.5 ms, 5 ops/s; 95% interval``."""
    return (
        f"budget latency +{_percent(budget.latency)}, throughput -{_percent(budget.throughput)}; "
        f"minimum change {budget.latency_min_ms:g} ms, {budget.throughput_min_ops:g} ops/s; "
        f"{_percent(budget.confidence)} interval"
    )


def render(comparison: Comparison, *, budget: Budget | None = None) -> str:
    """The deltas as a plain-text table, a legend, the comparison's notes, then the one-line outcome.

    Returns:
        Lines ending with ``compare: N regressions (budget latency +10%, throughput -10%; ...)``.
    """
    budget = budget or comparison.budget
    rows = [_HEADER, *(delta_cells(d) for d in comparison.deltas)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    numeric = {2, 3, 4}
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    if not comparison.deltas:
        lines.append("(no ops to compare)")
    else:
        base_runs, cur_runs = comparison.runs
        lines.append(
            f"baseline/current: medians of the per-window figures (or of the runs' figures) of {base_runs} vs "
            f"{cur_runs} run(s); interval: {_percent(comparison.figure_confidence)} bootstrap interval of the change "
            f"({_percent(budget.confidence)} shared by the figures)"
        )
    lines += [f"note: {note}" for note in comparison.notes]
    count = len(comparison.regressions)
    lines.append(f"compare: {count} regression{'' if count == 1 else 's'} ({budget_text(budget)})")
    return "\n".join(lines)


def comparison_record(comparison: Comparison, baseline: list[RunFigures]) -> dict[str, Any]:
    """The comparison as it goes into summary.json (``baseline``) and set.json."""
    return {
        "results_dir": baseline[0].label if len(baseline) == 1 else str(Path(baseline[0].label).parent),
        "runs": [r.label for r in baseline],
        "ok": comparison.ok,
        "budget": asdict(comparison.budget),
        "figure_confidence": comparison.figure_confidence,
        "regressions": len(comparison.regressions),
        "deltas": [{**asdict(d), "verdict": verdict_text(d)} for d in comparison.deltas],
        "notes": list(comparison.notes),
        "latency_metrics": list(LATENCY_METRICS),
    }


def run_compare(baseline_dir: Path, results_dir: Path, budget: Budget, console: Console) -> int:
    """Compare the run(s) at ``results_dir`` with the run(s) at ``baseline_dir`` and print the table.

    Either may be one results directory or a set of runs (``holoload run --repeat N``).

    Returns:
        0 when nothing regressed, 1 otherwise.

    Raises:
        InputError: (exit 2) a summary.json is missing or invalid.
    """
    baseline = load_runs(baseline_dir)
    current = load_runs(results_dir)
    comparison = compare_runs(baseline, current, budget)
    console.print(render(comparison), markup=False, highlight=False, soft_wrap=True)
    return int(ExitCode.PASS if comparison.ok else ExitCode.FAIL)


def budget_from_env(env: Mapping[str, str] = os.environ, overrides: Mapping[str, str] | None = None) -> Budget:
    """The budget from ``HOLOLOAD_COMPARE_<KEY>`` variables (``_LATENCY``, ``_THROUGHPUT``, ``_LATENCY_MIN``,
    ``_THROUGHPUT_MIN``, ``_CONFIDENCE``), then overrides.

    Args:
        env: the environment; empty variables count as unset.
        overrides: ``{"latency": "15%", "throughput": "5%"}`` (e.g. from the command line); these win.

    Raises:
        InputError: (exit 2) a bad value or key, naming where it came from.
    """
    values: dict[str, str] = {}
    for key, var in ENV_VARS.items():
        text = env.get(var, "").strip()
        if text:
            try:
                budget_from({key: text})
            except ValueError as exc:
                raise InputError(f"{var}: {exc}") from None
            values[key] = text
    try:
        values.update(overrides or {})
        return budget_from(values)
    except ValueError as exc:
        raise InputError(str(exc)) from None
