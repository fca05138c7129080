"""`holoload compare`: the current run's summary.json against a baseline's, as a table and an exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from holoload.core.compare import Budget, Comparison, Delta, budget_from, compare
from holoload.core.errors import ExitCode, InputError

__all__ = ["ENV_LATENCY", "ENV_THROUGHPUT", "budget_from_env", "load_summary", "render", "run_compare"]

ENV_LATENCY = "HOLOLOAD_COMPARE_LATENCY"
ENV_THROUGHPUT = "HOLOLOAD_COMPARE_THROUGHPUT"

_HEADER = ("op", "metric", "baseline", "current", "change", "verdict")


def load_summary(results_dir: Path) -> dict[str, Any]:
    """Read ``results_dir/summary.json`` (a path to the summary.json file itself works too).

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
    return data


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _change(delta: Delta) -> str:
    return "-" if delta.change is None else f"{delta.change * 100:+.1f}%"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _row(delta: Delta) -> tuple[str, ...]:
    verdict = delta.verdict
    if delta.note and verdict not in ("missing", "new"):  # "REGRESSION (no data in current)"
        verdict += f" ({delta.note})"
    return (delta.op, delta.metric, _number(delta.baseline), _number(delta.current), _change(delta), verdict)


def render(comparison: Comparison, *, budget: Budget) -> str:
    """The deltas as a plain-text table, the comparison's notes, then the one-line outcome.

    Returns:
        Lines ending with ``compare: N regressions (budget latency +10%, throughput -10%)``.
    """
    rows = [_HEADER, *(_row(d) for d in comparison.deltas)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    numeric = {2, 3, 4}
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    if not comparison.deltas:
        lines.append("(no ops to compare)")
    lines += [f"note: {note}" for note in comparison.notes]
    count = len(comparison.regressions)
    lines.append(
        f"compare: {count} regression{'' if count == 1 else 's'} "
        f"(budget latency +{_percent(budget.latency)}, throughput -{_percent(budget.throughput)})"
    )
    return "\n".join(lines)


def run_compare(baseline_dir: Path, results_dir: Path, budget: Budget, console: Console) -> int:
    """Compare ``results_dir`` against ``baseline_dir`` and print the table.

    Returns:
        0 when nothing regressed, 1 otherwise.

    Raises:
        InputError: (exit 2) either summary.json is missing or invalid.
    """
    baseline = load_summary(baseline_dir)
    current = load_summary(results_dir)
    comparison = compare(baseline, current, budget)
    console.print(render(comparison, budget=budget), markup=False, highlight=False, soft_wrap=True)
    return int(ExitCode.PASS if comparison.ok else ExitCode.FAIL)


def budget_from_env(env: Mapping[str, str] = os.environ, overrides: Mapping[str, str] | None = None) -> Budget:
    """The budget from ``HOLOLOAD_COMPARE_LATENCY`` / ``HOLOLOAD_COMPARE_THROUGHPUT``, then overrides.

    Args:
        env: the environment; empty variables count as unset.
        overrides: ``{"latency": "15%", "throughput": "5%"}`` (e.g. from the command line); these win.

    Raises:
        InputError: (exit 2) a bad value or key, naming where it came from.
    """
    values: dict[str, str] = {}
    for key, var in (("latency", ENV_LATENCY), ("throughput", ENV_THROUGHPUT)):
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
