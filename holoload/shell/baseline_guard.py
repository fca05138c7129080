"""`--baseline`: compare a finished run with baseline run(s); a regression is one input of the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from holoload.core.compare.regression import Budget, RunFigures, compare_runs
from holoload.core.result import RunSummary
from holoload.shell.compare_cmd import comparison_record, render
from holoload.shell.results_files import read_window_series

__all__ = ["BaselineCheck", "guard_run"]


@dataclass(frozen=True, slots=True)
class BaselineCheck:
    """The comparison of a run with its baseline: for summary.json, for the terminal, for the verdict."""

    record: dict[str, Any]  # summary.json `baseline`
    text: str  # the table for people
    regressed: bool  # some figure regressed beyond the budget, the minimum change and the noise


def guard_run(baseline: list[RunFigures], budget: Budget, result: RunSummary, root: Path) -> BaselineCheck:
    """Compare the run summarised in ``result`` (its per-window figures read from ``root``) with ``baseline``.

    The verdict is not changed here: `core.result.decide_verdict` turns a regression into FAIL.
    """
    current = RunFigures(result, read_window_series(root, result.measured_phases()), str(root))
    comparison = compare_runs(baseline, [current], budget)
    return BaselineCheck(comparison_record(comparison, baseline), render(comparison), not comparison.ok)
