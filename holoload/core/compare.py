"""Compares two runs' summary.json figures per op: latency and throughput against a regression budget.

An op is ``<phase>.<workload>.<op>`` (measured phases of a sustained-load run) or the canary's
batch op (``batch_<label>``). Per op the metrics are ``p95_ms``, ``p99_ms`` (from ``latency_ms``)
and ``ops_per_s`` (absent from canary runs, so not compared there).

The rules, all relative to the baseline:

- latency regresses when ``current > baseline * (1 + budget.latency)``;
- throughput regresses when ``current < baseline * (1 - budget.throughput)``;
- an op (or a metric of an op) the baseline has but the current run lacks is a regression;
- an op or metric only the current run has is reported as new, never a regression.

``Delta.change`` is ``current / baseline - 1`` whatever the metric (``+0.2`` = 20 % larger), so
a positive change is worse for latency and a negative one is worse for throughput; it is None
when either value is missing or the baseline is 0 (the rules above multiply, never divide, so a
baseline of 0 still compares: any latency above 0 regresses, throughput never does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LATENCY_METRICS",
    "METRICS",
    "Budget",
    "Comparison",
    "Delta",
    "budget_from",
    "compare",
    "op_figures",
]

#: Latency metrics (milliseconds): larger is worse.
LATENCY_METRICS = ("p95_ms", "p99_ms")
#: Every compared metric, in report order.
METRICS = (*LATENCY_METRICS, "ops_per_s")

NOTE_MISSING = "missing in current"
NOTE_NO_DATA = "no data in current"
NOTE_NEW = "new in current"
NOTE_NO_BASELINE = "no data in baseline"


@dataclass(frozen=True, slots=True)
class Budget:
    """Allowed relative regressions: ``latency=0.10`` lets p95/p99 grow by 10 %, ``throughput=0.10``
    lets ops/s fall by 10 %."""

    latency: float = 0.10
    throughput: float = 0.10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency) and self.latency >= 0):
            raise ValueError(f"latency budget must be a finite fraction >= 0, got {self.latency!r}")
        if not 0 <= self.throughput <= 1:
            raise ValueError(f"throughput budget must be a fraction from 0 to 1, got {self.throughput!r}")


@dataclass(frozen=True, slots=True)
class Delta:
    """One metric of one op in both runs.

    ``change`` is ``current / baseline - 1`` (None when a value is missing or the baseline is 0);
    ``regression`` says whether the budget was exceeded in the metric's bad direction (or the
    value went missing); ``note`` says why a value is absent (``"missing in current"``, ...).
    """

    op: str
    metric: str
    baseline: float | None
    current: float | None
    change: float | None
    regression: bool
    note: str = ""

    @property
    def verdict(self) -> str:
        """``REGRESSION``, ``missing`` (also a regression), ``new`` or ``ok``."""
        if self.note == NOTE_MISSING:
            return "missing"
        if self.regression:
            return "REGRESSION"
        if self.note in (NOTE_NEW, NOTE_NO_BASELINE):
            return "new"
        return "ok"


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every delta, baseline ops first (in the baseline's order), then the current run's new ops.

    ``notes`` are facts worth a look that are not regressions (different scenarios, a baseline
    without ops, a run that did not end PASS).
    """

    deltas: tuple[Delta, ...]
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> tuple[Delta, ...]:
        """The deltas over budget or missing in the current run."""
        return tuple(d for d in self.deltas if d.regression)

    @property
    def ok(self) -> bool:
        """True when nothing regressed."""
        return not self.regressions


def _number(value: Any) -> float | None:
    """A finite float from a JSON value, or None (bools, strings, null, NaN are no figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _metrics(op: Mapping[str, Any]) -> dict[str, float | None]:
    latency = op.get("latency_ms")
    latency = latency if isinstance(latency, Mapping) else {}
    return {
        "p95_ms": _number(latency.get("p95")),
        "p99_ms": _number(latency.get("p99")),
        "ops_per_s": _number(op.get("ops_per_s")),
    }


def op_figures(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """The compared figures of a summary.json, per op.

    Args:
        summary: a parsed summary.json of a sustained-load run (``phases``) or a canary (``ops``).

    Returns:
        ``{op: {"p95_ms": x, "p99_ms": y, "ops_per_s": z}}`` with None for absent values; load
        runs give ``<phase>.<workload>.<op>`` of measured phases only, canaries their batch ops.
    """
    out: dict[str, dict[str, float | None]] = {}
    phases = summary.get("phases")
    if isinstance(phases, Mapping) and phases:
        for phase_name, phase in phases.items():
            if not isinstance(phase, Mapping) or phase.get("measured") is False:
                continue
            ops = phase.get("ops")
            for op_name, op in (ops if isinstance(ops, Mapping) else {}).items():
                if isinstance(op, Mapping):
                    out[f"{phase_name}.{op_name}"] = _metrics(op)
        return out
    ops = summary.get("ops")
    for op_name, op in (ops if isinstance(ops, Mapping) else {}).items():
        if isinstance(op, Mapping):
            out[str(op_name)] = _metrics(op)
    return out


def _regressed(metric: str, baseline: float, current: float, budget: Budget) -> bool:
    if metric in LATENCY_METRICS:
        return current > baseline * (1 + budget.latency)
    return current < baseline * (1 - budget.throughput)


def _delta(op: str, metric: str, baseline: float | None, current: float | None, budget: Budget) -> Delta:
    if baseline is None:
        return Delta(op, metric, None, current, None, False, NOTE_NO_BASELINE)
    if current is None:
        return Delta(op, metric, baseline, None, None, True, NOTE_NO_DATA)
    change = current / baseline - 1 if baseline != 0 else None
    return Delta(op, metric, baseline, current, change, _regressed(metric, baseline, current, budget))


def _scenario_name(summary: Mapping[str, Any]) -> str | None:
    scenario = summary.get("scenario")
    name = scenario.get("name") if isinstance(scenario, Mapping) else None
    return name if isinstance(name, str) else None


def _status(summary: Mapping[str, Any]) -> str | None:
    verdict = summary.get("verdict")
    if isinstance(verdict, str):
        return verdict
    run = summary.get("run")
    status = run.get("status") if isinstance(run, Mapping) else None
    return status if isinstance(status, str) else None


def _notes(baseline: Mapping[str, Any], current: Mapping[str, Any], base_ops: int) -> tuple[str, ...]:
    notes: list[str] = []
    base_name, cur_name = _scenario_name(baseline), _scenario_name(current)
    if base_name != cur_name:
        notes.append(f"different scenarios: baseline {base_name!r}, current {cur_name!r}")
    for which, summary in (("baseline", baseline), ("current", current)):
        status = _status(summary)
        if status is not None and status != "PASS":
            notes.append(f"{which} run ended {status}")
    if base_ops == 0:
        notes.append("the baseline has no measured ops: nothing to compare against")
    return tuple(notes)


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any], budget: Budget = Budget()) -> Comparison:
    """Compare the per-op figures of two summary.json documents.

    Args:
        baseline: the reference run's summary.json, parsed.
        current: the run under test's summary.json, parsed.
        budget: allowed relative regressions.

    Returns:
        One delta per op and metric present in either run (metrics absent from both are
        skipped); an op the baseline has and the current run lacks gives one ``missing``
        regression per metric the baseline had.
    """
    base_ops, cur_ops = op_figures(baseline), op_figures(current)
    deltas: list[Delta] = []
    for op, base in base_ops.items():
        cur = cur_ops.get(op)
        for metric in METRICS:
            if cur is None:
                if base[metric] is not None:
                    deltas.append(Delta(op, metric, base[metric], None, None, True, NOTE_MISSING))
            elif base[metric] is not None or cur[metric] is not None:
                deltas.append(_delta(op, metric, base[metric], cur[metric], budget))
    for op, cur in cur_ops.items():
        if op not in base_ops:
            deltas.extend(
                Delta(op, metric, None, cur[metric], None, False, NOTE_NEW)
                for metric in METRICS
                if cur[metric] is not None
            )
    return Comparison(tuple(deltas), _notes(baseline, current, len(base_ops)))


def _fraction(key: str, text: str) -> float:
    """``"15%"``, ``"+15%"``, ``"0.15"`` -> 0.15; a sign must point the metric's bad way."""
    raw = str(text).strip()
    sign = raw[:1] if raw[:1] in "+-" else ""
    body = raw[1:].strip() if sign else raw
    percent = body.endswith("%")
    number_text = body[:-1].strip() if percent else body
    expected = f"compare budget {key}={text!r}: expected a percentage like 10% or a fraction like 0.1"
    try:
        number = float(number_text)
    except ValueError:
        raise ValueError(expected) from None
    if not math.isfinite(number) or number < 0 or number_text.startswith(("+", "-")):
        raise ValueError(expected)
    wrong = "-" if key == "latency" else "+"
    if sign == wrong:
        way = "grow (+)" if key == "latency" else "fall (-)"
        raise ValueError(f"compare budget {key}={text!r}: the {key} budget is how far it may {way}")
    if not percent and number >= 1:
        raise ValueError(
            f"compare budget {key}={text!r}: ambiguous; write {number:g}% or a fraction below 1 (0.1 = 10%)"
        )
    value = number / 100 if percent else number
    if key == "throughput" and value > 1:
        raise ValueError(f"compare budget {key}={text!r}: throughput cannot fall by more than 100%")
    return value


def budget_from(values: Mapping[str, str]) -> Budget:
    """A budget from text settings; keys left out keep the default (10 %).

    Args:
        values: ``{"latency": "15%", "throughput": "0.05"}``; each value a percentage (``15%``,
            ``+15%`` for latency, ``-5%`` for throughput) or a fraction below 1 (``0.15``).

    Returns:
        The budget.

    Raises:
        ValueError: an unknown key or a value that is not a non-negative percentage/fraction
            (a message naming the key and value).
    """
    unknown = sorted(set(values) - {"latency", "throughput"})
    if unknown:
        raise ValueError(f"compare budget: unknown key(s) {', '.join(unknown)} (expected latency, throughput)")
    default = Budget()
    latency = _fraction("latency", values["latency"]) if "latency" in values else default.latency
    throughput = _fraction("throughput", values["throughput"]) if "throughput" in values else default.throughput
    return Budget(latency=latency, throughput=throughput)
