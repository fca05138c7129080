"""`holoload report RESULTS_DIR`: (re)write a run's summaries and reports from its results directory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from holoload.core.errors import InputError
from holoload.core.result import RunSummary
from holoload.shell.artifacts import ArtifactWriter
from holoload.shell.history_record import record_results_dir
from holoload.shell.outputs import write_reports
from holoload.shell.rebuild import rebuild_summary


def report_command(
    results_dir: str,
    *,
    rebuild: bool,
    console: Console,
    history: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Rebuild the summary when it is missing (a killed run) or asked to, write every report, and
    record the run in the history (`history`: --history, default beside the results directory).

    Returns:
        0 when everything was written, 1 when some file could not be.

    Raises:
        InputError: not a results directory, or nothing in it to rebuild from (exit 2).
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (expected a results directory such as results/<scenario>_<time>)")
    summary_path = root / "summary.json"
    if rebuild or not summary_path.exists():
        try:
            data, keys = rebuild_summary(root)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from exc
        ArtifactWriter(root).write_summary(data.to_json(), keys)
        console.print(f"rebuilt {summary_path.name} and summary.txt from what the run appended", highlight=False)
    else:
        data = _load(summary_path)
    env = os.environ if env is None else env
    source = "report" if data.rebuilt_from_disk else "run"
    problems = record_results_dir(root, data, history, source=source, env=env) + write_reports(root, data)
    for problem in problems:
        console.print(f"[yellow]problem[/yellow] {problem}", highlight=False)
    console.print(f"{data.get('verdict')}: reports in {root}", highlight=False, markup=False)
    return 1 if problems else 0


def _load(path: Path) -> RunSummary:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot read it ({exc}); run with --rebuild to rebuild it from the run's files"
        ) from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return RunSummary.from_json(data)
