"""Compares runs per op and metric: a regression must be significant, over budget and over a minimum change.

An op is ``<phase>.<workload>.<op>`` (measured phases of a sustained-load run) or the canary's
batch op (``batch_<label>``). Per op the metrics are ``p95_ms``, ``p99_ms`` and ``ops_per_s``
(absent from canary runs, so not compared there).

Each side (baseline, current) is one or more runs (``RunFigures``: a summary.json and the
run's per-window figures from timeseries.csv). What is compared, per op and metric:

- ``windows``: when both sides have per-window figures, the median of each side's windows
  (pooled over its runs), with a two-level block-bootstrap interval of the relative change
  (``core/compare/stats.py``);
- ``runs``: otherwise each run's summary figure is one sample (several runs per side give an
  interval when there are at least ``MIN_WINDOWS`` of them);
- ``point``: with too few samples for an interval, the runs' median figures alone.

A figure regresses when all of these hold, in the metric's bad direction (latency up,
throughput down): the relative change is beyond the budget (``latency``/``throughput``), the
absolute change is beyond the minimum (``latency_min_ms``/``throughput_min_ops``), and the
interval lies wholly on the bad side of zero (a ``point`` figure has no interval: the first
two decide, and a note says so). The intervals share ``budget.confidence`` (Bonferroni over the
compared figures), since a comparison asks whether *any* figure regressed. An op (or a metric
of an op) the baseline has but the current run lacks is a regression; an op or metric only the
current run has is reported as new.

``Delta.change`` is ``current / baseline - 1`` (``+0.2`` = 20 % larger); None when the
baseline is 0, in which case any latency above the minimum change regresses and throughput
never does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from holoload.core.compare.budget import BUDGET_KEYS, Budget, budget_from
from holoload.core.compare.stats import MIN_WINDOWS, Shift, seed_for, shift
from holoload.core.result import RunSummary

__all__ = [
    "BUDGET_KEYS",
    "LATENCY_METRICS",
    "METRICS",
    "Budget",
    "Comparison",
    "Delta",
    "RunFigures",
    "budget_from",
    "compare",
    "compare_runs",
    "op_figures",
    "window_series",
]

#: Latency metrics (milliseconds): larger is worse.
LATENCY_METRICS = ("p95_ms", "p99_ms")
#: Every compared metric, in report order.
METRICS = (*LATENCY_METRICS, "ops_per_s")
#: timeseries.csv column of each metric.
_COLUMNS = {"p95_ms": "p95_ms", "p99_ms": "p99_ms", "ops_per_s": "ops_per_s"}

#: The default budget (module level: a default argument is evaluated once anyway).
DEFAULT_BUDGET = Budget()

NOTE_MISSING = "missing in current"
NOTE_NO_DATA = "no data in current"
NOTE_NEW = "new in current"
NOTE_NO_BASELINE = "no data in baseline"

#: Series of one run: ``{op: {metric: [per-window value, ...]}}`` in time order.
WindowSeries = Mapping[str, Mapping[str, Sequence[float]]]


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One run as a comparison reads it: its summary.json and its per-window figures.

    ``windows`` is ``window_series(...)`` of the run's timeseries.csv (empty for canaries, or a
    run whose timeseries is gone); ``label`` names the run in notes (its results directory).
    """

    summary: RunSummary  # a parsed summary.json is read into one
    windows: WindowSeries = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", RunSummary.from_json(self.summary))


@dataclass(frozen=True, slots=True)
class Delta:
    """One metric of one op on both sides.

    ``baseline``/``current`` are the compared figures (medians of the windows, or of the runs'
    figures; see ``basis``), ``change`` their relative change and ``low``/``high`` its interval
    (None without one). ``baseline_run``/``current_run`` are the runs' own summary figures
    (median over the side's runs). ``regression`` says whether all conditions held (or the
    value went missing); ``note`` says why a value is absent (``"missing in current"``, ...).
    """

    op: str
    metric: str
    baseline: float | None
    current: float | None
    change: float | None
    regression: bool
    note: str = ""
    low: float | None = None
    high: float | None = None
    basis: str = "point"  # "windows", "runs" or "point"
    samples: tuple[int, int] = (0, 0)  # windows (or runs) per side behind the figures
    baseline_run: float | None = None
    current_run: float | None = None
    over_budget: bool = False
    over_minimum: bool = False
    significant: bool | None = None  # None: no interval

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

    @property
    def why_ok(self) -> str:
        """For a worse-but-ok figure, the condition it missed: ``within noise``, ``under budget``..."""
        if self.regression or self.note or self.baseline is None or self.current is None:
            return ""
        worse = self.current > self.baseline if self.metric in LATENCY_METRICS else self.current < self.baseline
        if not worse:
            return ""
        if not self.over_budget:
            return "under budget"
        if not self.over_minimum:
            return "under minimum change"
        return "within noise" if self.significant is False else ""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every delta, baseline ops first (in the baseline's order), then the current run's new ops.

    ``figure_confidence`` is the level of each delta's interval: ``budget.confidence`` split over
    the compared figures (Bonferroni), so that a whole A/A comparison flags with at most
    ``1 - budget.confidence`` probability from noise the intervals see.

    ``notes`` are facts worth a look that are not regressions (different scenarios, a baseline
    without ops, a run that did not end PASS, figures compared without a noise estimate).
    """

    deltas: tuple[Delta, ...]
    notes: tuple[str, ...] = ()
    budget: Budget = field(default_factory=Budget)
    runs: tuple[int, int] = (1, 1)
    figure_confidence: float = 0.95  # each interval's level: budget.confidence shared by the figures

    @property
    def regressions(self) -> tuple[Delta, ...]:
        """The deltas that regressed or went missing in the current run."""
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


def _csv_number(text: str | None) -> float | None:
    """A finite float from a CSV cell, or None (empty, text, NaN)."""
    try:
        number = float(text) if text else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _metrics(latency_ms: Mapping[str, Any] | None, ops_per_s: float | None) -> dict[str, float | None]:
    latency = latency_ms or {}
    return {
        "p95_ms": _number(latency.get("p95")),
        "p99_ms": _number(latency.get("p99")),
        "ops_per_s": _number(ops_per_s),
    }


def measured_phases(summary: RunSummary | Mapping[str, Any]) -> list[str]:
    """Names of the measured phases of a sustained-load summary (empty for a canary)."""
    return list(RunSummary.from_json(summary).measured_phases())


def op_figures(summary: RunSummary | Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """The compared figures of a summary.json, per op.

    Args:
        summary: a sustained-load run's summary (``phases``) or a canary's (``ops``), or its parsed JSON.

    Returns:
        ``{op: {"p95_ms": x, "p99_ms": y, "ops_per_s": z}}`` with None for absent values; load
        runs give ``<phase>.<workload>.<op>`` of measured phases only, canaries their batch ops.
    """
    result = RunSummary.from_json(summary)
    if result.phases:
        measured = set(result.measured_phases())
        return {
            f"{phase}.{op}": _metrics(figures.latency_ms, figures.ops_per_s)
            for phase, op, figures in result.op_figures()
            if phase in measured
        }
    return {op: _metrics(figures.latency_ms, None) for op, figures in (result.ops or {}).items()}


def window_series(rows: Iterable[Mapping[str, str]], phases: Iterable[str]) -> dict[str, dict[str, list[float]]]:
    """Per-window figures of the measured phases, from timeseries.csv rows.

    Args:
        rows: timeseries.csv rows as read (strings); only merged rows (endpoint ``*``) count.
        phases: the measured phases (``measured_phases(summary)``); other phases are skipped.

    Returns:
        ``{"<phase>.<workload>.<op>": {"p95_ms": [...], "p99_ms": [...], "ops_per_s": [...]}}``
        in window order; a window without a value (no successful op: no latency) is left out
        of that metric.
    """
    wanted = set(phases)
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row.get("endpoint") != "*" or row.get("phase") not in wanted:
            continue
        series = out.setdefault(f"{row.get('phase')}.{row.get('workload')}.{row.get('op')}", {m: [] for m in METRICS})
        for metric, column in _COLUMNS.items():
            value = _csv_number(row.get(column))
            if value is not None:
                series[metric].append(value)
    return out


def _bad_way(metric: str, base: float, cur: float, budget: Budget) -> tuple[bool, bool]:
    """(over the relative budget, over the minimum absolute change), in the metric's bad direction.

    The budget multiplies, never divides: a baseline of 0 still compares (any latency above it
    is over budget; throughput from 0 never is), and a change of exactly the budget is within it.
    """
    if metric in LATENCY_METRICS:
        return cur > base * (1 + budget.latency), cur - base > budget.latency_min_ms
    return cur < base * (1 - budget.throughput), base - cur > budget.throughput_min_ops


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


Figures = list[dict[str, dict[str, float | None]]]  # op_figures of each run of a side


def _compared(
    op: str, metric: str, sides: tuple[Sequence[RunFigures], Sequence[RunFigures]], figures: tuple[Figures, Figures],
    budget: Budget,
    confidence: float,
) -> Delta:  # fmt: skip
    """One op and metric both sides have: choose the basis, measure, apply the three conditions."""
    base_runs, cur_runs = ([v for f in side if (v := f.get(op, {}).get(metric)) is not None] for side in figures)
    base_windows, cur_windows = ([list(r.windows.get(op, {}).get(metric, ())) for r in side] for side in sides)
    measured: Shift | None = None
    basis = "point"
    seed = seed_for(op, metric)
    if any(base_windows) and any(cur_windows):
        measured = shift(base_windows, cur_windows, confidence=confidence, seed=seed)
        basis = "windows"
    if measured is None and base_runs and cur_runs:
        measured = shift([[v] for v in base_runs], [[v] for v in cur_runs], confidence=confidence, seed=seed)
        basis = "runs" if measured is not None else "point"
    base_run, cur_run = _median(base_runs), _median(cur_runs)
    if measured is not None:
        b, c, change, low, high = measured.baseline, measured.current, measured.change, measured.low, measured.high
        samples = measured.windows
    elif base_run is None:
        return Delta(op, metric, None, cur_run, None, False, NOTE_NO_BASELINE, current_run=cur_run)
    elif cur_run is None:
        return Delta(op, metric, base_run, None, None, True, NOTE_NO_DATA, baseline_run=base_run)
    else:
        b, c, low, high = base_run, cur_run, None, None
        change = c / b - 1 if b != 0 else None
        samples = (len(base_runs), len(cur_runs))
    over_budget, over_minimum = _bad_way(metric, b, c, budget)
    significant = None
    if low is not None and high is not None:
        significant = low > 0 if metric in LATENCY_METRICS else high < 0
    regression = over_budget and over_minimum and significant is not False
    return Delta(
        op, metric, b, c, change, regression, "", low, high, basis, samples,
        base_run, cur_run, over_budget, over_minimum, significant,
    )  # fmt: skip


def _scenario_name(summary: RunSummary) -> str | None:
    name = summary.scenario.get("name")
    return name if isinstance(name, str) else None


def _status(summary: RunSummary) -> str | None:
    status = summary.status
    return None if status == "UNKNOWN" and summary.run.status is None else status


def _notes(base: Sequence[RunFigures], cur: Sequence[RunFigures], base_ops: int, deltas: list[Delta]) -> list[str]:
    notes: list[str] = []
    base_names = sorted({str(_scenario_name(r.summary)) for r in base})
    cur_names = sorted({str(_scenario_name(r.summary)) for r in cur})
    if base_names != cur_names:
        quoted = [", ".join(repr(n) if n != "None" else "None" for n in names) for names in (base_names, cur_names)]
        notes.append(f"different scenarios: baseline {quoted[0]}, current {quoted[1]}")
    for which, side in (("baseline", base), ("current", cur)):
        for run in side:
            status = _status(run.summary)
            if status is not None and status != "PASS":
                label = f" ({run.label})" if run.label and len(side) > 1 else ""
                notes.append(f"{which} run{label} ended {status}")
    if base_ops == 0:
        notes.append("the baseline has no measured ops: nothing to compare against")
    point = [d for d in deltas if d.basis == "point" and not d.note]
    if point:
        notes.append(
            f"{len(point)} figure(s) compared without a noise estimate (fewer than {MIN_WINDOWS} windows or runs "
            "per side): relative budget and minimum change only"
        )
    return notes


def compare_runs(
    baseline: Sequence[RunFigures], current: Sequence[RunFigures], budget: Budget = DEFAULT_BUDGET
) -> Comparison:
    """Compare one or more baseline runs with one or more current runs, per op and metric.

    Args:
        baseline: the reference run(s), each a summary and its per-window figures.
        current: the run(s) under test.
        budget: relative budgets, minimum changes and the interval's confidence.

    Returns:
        One delta per op and metric present on either side (metrics absent from both are
        skipped); an op the baseline has and the current side lacks gives one ``missing``
        regression per metric the baseline had. Ops are the union over a side's runs.

    Raises:
        ValueError: either side is empty.
    """
    if not baseline or not current:
        raise ValueError("compare_runs needs at least one run on each side")
    figures = ([op_figures(r.summary) for r in baseline], [op_figures(r.summary) for r in current])
    base_ops: dict[str, set[str]] = {}
    cur_ops: dict[str, set[str]] = {}
    for side, ops in zip(figures, (base_ops, cur_ops), strict=True):
        for run in side:
            for op, values in run.items():
                ops.setdefault(op, set()).update(m for m, v in values.items() if v is not None)
    # One interval per figure both sides have; "did anything regress" is asked of all of them at
    # once, so each interval is at the Bonferroni level that keeps the family at budget.confidence.
    family = sum(len(base_metrics & cur_ops.get(op, set())) for op, base_metrics in base_ops.items())
    confidence = 1 - (1 - budget.confidence) / max(family, 1)
    deltas: list[Delta] = []
    for op, base_metrics in base_ops.items():
        cur_metrics = cur_ops.get(op)
        for metric in METRICS:
            if cur_metrics is None:
                if metric in base_metrics:
                    value = _median([v for f in figures[0] if (v := f.get(op, {}).get(metric)) is not None])
                    deltas.append(Delta(op, metric, value, None, None, True, NOTE_MISSING, baseline_run=value))
            elif metric in base_metrics or metric in cur_metrics:
                deltas.append(_compared(op, metric, (baseline, current), figures, budget, confidence))
    for op, cur_metrics in cur_ops.items():
        if op not in base_ops:
            for metric in (m for m in METRICS if m in cur_metrics):
                value = _median([v for f in figures[1] if (v := f.get(op, {}).get(metric)) is not None])
                deltas.append(Delta(op, metric, None, value, None, False, NOTE_NEW, current_run=value))
    notes = _notes(baseline, current, len(base_ops), deltas)
    return Comparison(tuple(deltas), tuple(notes), budget, (len(baseline), len(current)), confidence)


def compare(
    baseline: RunSummary | Mapping[str, Any], current: RunSummary | Mapping[str, Any], budget: Budget = DEFAULT_BUDGET
) -> Comparison:
    """Compare two summary.json documents without per-window figures (the ``point`` rule per figure).

    Args:
        baseline: the reference run's summary (or its parsed summary.json).
        current: the run under test's summary (or its parsed summary.json).
        budget: relative budgets and minimum changes.

    Returns:
        As ``compare_runs`` with one run per side and no windows.
    """
    return compare_runs(
        [RunFigures(RunSummary.from_json(baseline))], [RunFigures(RunSummary.from_json(current))], budget
    )
