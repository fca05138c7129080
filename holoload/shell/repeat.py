"""`holoload run --repeat N`: N runs of one scenario in a set directory, gated and compared as a set.

The set directory ``<results>/<scenario>_x<N>_<UTC time>/`` holds each run's own results
directory and the set's ``set.json`` (the runs, the gates over the set, the baseline
comparison), ``summary.md``, ``junit.xml`` and ``report.html``. A gate passes on the set when it
passed in every run (a run without the gate's verdict is no evidence, so it fails); with
``--baseline`` the whole set is compared (``core/compare/regression.py``: runs drawn with replacement,
windows by blocks). A run that ends ERROR or INTERRUPTED stops the set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from holoload import __version__
from holoload.core.compare.regression import RunFigures, compare_runs
from holoload.core.errors import ExitCode, HololoadError, InputError
from holoload.core.result import GateOutcome, RunSummary
from holoload.shell.artifacts import results_dir_for
from holoload.shell.ci_outputs import write_ci_outputs
from holoload.shell.compare_cmd import SET_FILE, comparison_record, load_runs, render
from holoload.shell.regression_views import html_sections
from holoload.shell.runner import RunOptions, run

__all__ = ["run_set", "set_gates"]

_STOPS = {int(ExitCode.INTERRUPTED), int(ExitCode.TERMINATED)}


def _say(console: Console, text: str) -> None:
    try:
        console.print(text, highlight=False, markup=False)
    except (Exception, SystemExit):  # noqa: BLE001 - output is best effort
        pass


def set_gates(summaries: Sequence[RunSummary | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each gate over the set: passed only when it passed in every run.

    Args:
        summaries: the runs' summaries (or their parsed summary.json), in run order.

    Returns:
        One gate per name (first-seen order) with ``passed``, ``passed_runs``, ``runs``, the
        expression and threshold, ``observed_text`` listing each run's observed value, and a reason.
    """
    results = [RunSummary.from_json(s) for s in summaries]
    names: dict[str, GateOutcome] = {}
    for summary in results:
        for gate in summary.gates:
            if isinstance(gate.name, str) and "name" in gate.keys:
                names.setdefault(gate.name, gate)
    out = []
    for name, first in names.items():
        per_run = [next((g for g in s.gates if g.name == name), None) for s in results]
        passed = sum(1 for g in per_run if g is not None and g.passed is True)
        observed = "; ".join("-" if g is None else str(g.get("observed_text", "-")) for g in per_run)
        failed_in = [str(i + 1) for i, g in enumerate(per_run) if g is None or g.passed is not True]
        out.append(
            {
                "name": name,
                "expression": first.get("expression"),
                "passed": passed == len(summaries),
                "passed_runs": passed,
                "runs": len(summaries),
                "observed_text": f"passed in {passed} of {len(summaries)} runs ({observed})",
                "threshold_text": first.get("threshold_text"),
                "reason": "" if not failed_in else f"FAIL in run(s) {', '.join(failed_in)} of {len(summaries)}",
            }
        )
    return out


def _new_dir(set_dir: Path, before: set[Path]) -> Path | None:
    fresh = sorted(p for p in set_dir.iterdir() if p.is_dir() and p not in before)
    return fresh[-1] if fresh else None


def run_set(options: RunOptions, count: int, console: Console) -> int:
    """Run the scenario ``count`` times into one set directory; gate and compare the set.

    Returns:
        The set's exit code: 0 PASS, 1 a gate failed in some run or the set regressed against the
        baseline (0 with --no-enforce), else the code of the run that stopped the set.

    Raises:
        InputError: the set directory cannot be created.
    """
    started = datetime.now(UTC)
    base = options.results_base or options.scenario.run.results_dir
    try:
        set_dir = results_dir_for(base, f"{options.scenario.name}_x{count}", started)
    except OSError as exc:
        raise InputError(f"cannot create a results directory under {base}: {exc}") from exc
    one = replace(options, results_base=str(set_dir), baseline=None)
    runs: list[dict[str, Any]] = []
    stopped: int | None = None
    for index in range(count):
        _say(console, f"holoload --repeat: run {index + 1} of {count} (set {set_dir})")
        before = {p for p in set_dir.iterdir() if p.is_dir()}
        code = run(one, console)
        root = _new_dir(set_dir, before)
        runs.append({"results_dir": str(root) if root else None, "exit_code": code})
        if code in _STOPS or code not in (int(ExitCode.PASS), int(ExitCode.FAIL)):
            stopped = code
            break
    figures: list[RunFigures] = []
    problems: list[str] = []
    for entry in runs:
        try:
            (loaded,) = load_runs(Path(entry["results_dir"])) if entry["results_dir"] else ()
        except (HololoadError, ValueError) as exc:
            problems.append(f"run {entry['results_dir']}: no readable summary ({exc})")
            entry["verdict"] = "ERROR"
            continue
        entry["verdict"] = loaded.summary.status
        figures.append(loaded)
    summaries = [f.summary for f in figures]
    gates = set_gates(summaries) if len(summaries) == len(runs) else []
    if stopped is not None:
        verdict = "INTERRUPTED" if stopped in _STOPS else "ERROR"
    elif problems or any(r.get("verdict") != "PASS" for r in runs) or not all(g["passed"] for g in gates):
        verdict = "FAIL"
    else:
        verdict = "PASS"
    data: dict[str, Any] = {"kind": "set", "holoload_version": __version__, "scenario": {"name": options.scenario.name}}
    if options.baseline is not None and figures and stopped is None:
        comparison = compare_runs(options.baseline, figures, options.budget)
        data["baseline"] = comparison_record(comparison, options.baseline)
        _say(console, render(comparison))
        verdict = "FAIL" if not comparison.ok else verdict
    if stopped is not None:
        code = stopped
    else:
        code = int(ExitCode.PASS if verdict == "PASS" or not options.enforce else ExitCode.FAIL)
    ended = datetime.now(UTC)
    data |= {
        "run": {
            "run_id": set_dir.name,
            "started_at": started.isoformat(),
            "ended_at": ended.isoformat(),
            "duration_s": (ended - started).total_seconds(),
            "results_dir": str(set_dir),
            "status": verdict,
            "exit_code": code,
            "enforce": options.enforce,
            "problems": problems,
        },
        "verdict": verdict,
        "exit_code": code,
        "runs": runs,
        "gates": gates,
    }
    for problem in _write_set(set_dir, data):
        _say(console, f"holoload: {problem}")
    _say(console, f"holoload --repeat: set {verdict} ({len(runs)} of {count} runs, exit {code}): {set_dir}")
    return code


def _write_set(set_dir: Path, data: dict[str, Any]) -> list[str]:
    problems = []
    try:
        tmp = set_dir / (SET_FILE + ".tmp")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, set_dir / SET_FILE)
        (set_dir / "report.html").write_text(_set_report(data), encoding="utf-8")
    except OSError as exc:
        problems.append(f"{set_dir}: {exc}")
    return problems + write_ci_outputs(set_dir, data)


def _set_report(data: dict[str, Any]) -> str:
    """A small page for the set: verdict, runs (linking their reports), gates over the set, the comparison."""
    verdict = str(data.get("verdict"))
    runs = "".join(
        f"<tr><td><a href='{escape(Path(str(r.get('results_dir'))).name)}/report.html'>"
        f"{escape(Path(str(r.get('results_dir'))).name)}</a></td><td>{escape(str(r.get('verdict')))}</td>"
        f"<td class='num'>{escape(str(r.get('exit_code')))}</td></tr>"
        for r in data.get("runs", [])
    )
    gates = "".join(
        f"<tr class='{'pass' if g['passed'] else 'fail'}'><td>{escape(str(g['name']))}</td>"
        f"<td class='result'>{'PASS' if g['passed'] else 'FAIL'}</td><td>{escape(str(g['observed_text']))}</td>"
        f"<td>{escape(str(g.get('threshold_text') or ''))}</td><td>{escape(str(g.get('expression') or ''))}</td></tr>"
        for g in data.get("gates", [])
    )
    css = (
        "body{font-family:sans-serif;margin:16px 24px} table{border-collapse:collapse;font-size:13px}"
        "th,td{border:1px solid #d0d7de;padding:3px 8px} tr.fail td{background:#ffebe9} td.num{text-align:right}"
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'/><title>holoload set {escape(verdict)}"
        f"</title><style>{css}</style></head><body>\n<h1 id='verdict'>{escape(verdict)}: "
        f"{escape(str(data['scenario']['name']))} x{len(data.get('runs', []))}</h1>\n"
        f"<section id='runs'><h2>Runs</h2><table><tr><th>run</th><th>verdict</th><th>exit</th></tr>{runs}</table>"
        f"</section>\n<section id='gates'><h2>Gates over the set</h2><table><tr><th>gate</th><th>result</th>"
        f"<th>observed</th><th>threshold</th><th>expression</th></tr>{gates}</table></section>\n"
        f"{html_sections(data)}\n</body></html>\n"
    )
