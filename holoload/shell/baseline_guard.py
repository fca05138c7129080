"""`--baseline`: compare a finished run with baseline run(s); a regression turns PASS into FAIL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from holoload.core.compare import Budget, RunFigures, compare_runs, measured_phases
from holoload.core.errors import ExitCode
from holoload.shell.compare_cmd import comparison_record, render
from holoload.shell.results_files import read_window_series
from holoload.shell.summary import RunRecord

__all__ = ["guard_run"]


def guard_run(
    baseline: list[RunFigures],
    budget: Budget,
    data: dict[str, Any],
    keys: list[tuple[str, Any]],
    record: RunRecord,
    say: Callable[[str], None],
) -> list[tuple[str, Any]]:
    """Compare the run summarised in ``data`` (its per-window figures read from its results directory).

    Adds ``data["baseline"]``, prints the table, and on a regression turns a PASS into FAIL
    (exit 1 when enforced) in ``data`` and ``record``.

    Returns:
        The summary.txt keys, with ``slo_status`` FAIL when the comparison failed a PASS.
    """
    root = Path(record.results_dir)
    current = RunFigures(data, read_window_series(root, measured_phases(data)), str(root))
    comparison = compare_runs(baseline, [current], budget)
    data["baseline"] = comparison_record(comparison, baseline)
    say(render(comparison))
    if comparison.ok or record.status != "PASS":
        return keys
    record.status = data["verdict"] = "FAIL"
    if record.enforce:
        record.exit_code = data["exit_code"] = int(ExitCode.FAIL)
    data["run"] = record.__dict__
    return [(k, "FAIL" if k == "slo_status" else v) for k, v in keys]
