"""`holoload history list|show|trend|import|report`: the run history on the command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from holoload.adapters.history.store import HistoryStore, open_store
from holoload.core.errors import InputError
from holoload.core.history.model import METRICS, RunEntry, op_keys, series
from holoload.shell.compare_cmd import load_summary
from holoload.shell.history_record import entry_for, history_location
from holoload.shell.rebuild import rebuild_summary

__all__ = ["add_history_parser", "history_command"]

ACTIONS = ("list", "show", "trend", "import", "report")


def add_history_option(parser: argparse.ArgumentParser) -> None:
    """`--history PATH|URL|none` for run, report and history."""
    parser.add_argument(
        "--history",
        metavar="PATH|URL",
        help="run history: an SQLite file or postgresql://... ('none': do not record); default $HOLOLOAD_HISTORY, "
        "else history.sqlite beside the results directories",
    )


def add_history_parser(sub: Any) -> None:
    """The `history` subcommand and its actions."""
    hist = sub.add_parser(
        "history",
        help="runs recorded in the history: list, show one, trend of an op's figures, import results "
        "directories, write reports/index.html and badge.svg",
    )
    actions = hist.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (
        ("list", "every recorded run, oldest first"),
        ("show", "one run: facts, gates and per-op figures"),
        ("trend", "an op's p95/p99/ops/s over runs, with the change points"),
        ("import", "record existing results directories (a run's, or a directory of runs)"),
        ("report", "write reports/index.html (trends of every scenario) and reports/badge.svg"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        add_history_option(action)
        action.add_argument(
            "--results-dir", default="results", metavar="DIR", help="where history.sqlite is by default ('results')"
        )
        if name == "show":
            action.add_argument("run_id", metavar="RUN_ID", help="a run id (a unique prefix is enough)")
        if name == "import":
            action.add_argument("dirs", nargs="+", metavar="DIR")
        if name in ("list", "trend", "report"):
            action.add_argument("--env", dest="environment", metavar="NAME", help="only this environment")
            action.add_argument("--target", metavar="NAME", help="only runs on this target")
        if name in ("list", "trend"):
            action.add_argument("--scenario", metavar="NAME", help="only this scenario")
        if name == "trend":
            action.add_argument("--op", metavar="PHASE/OP", help="one op, e.g. main/w.read (default: every op)")
            action.add_argument(
                "--metric", choices=METRICS, action="append", help="p95_ms, p99_ms or ops_per_s (default: all)"
            )
        if name == "report":
            action.add_argument("--out", default="reports", metavar="DIR", help="output directory ('reports')")


def _store(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[HistoryStore, str]:
    location = history_location(args.history, env, Path(args.results_dir))
    if location is None:
        raise InputError("--history none: there is no history to read")
    if "://" not in location and not Path(location).exists():
        raise InputError(f"{location}: no run history there yet (runs record into it; or `holoload history import`)")
    return open_store(location), location


def history_command(args: argparse.Namespace, console: Console, env: Mapping[str, str] | None = None) -> int:
    """Run one `holoload history` action; returns the exit code."""
    env = os.environ if env is None else env
    if args.action == "import":
        return _import(args, console, env)
    store, location = _store(args, env)
    with store:
        if args.action == "list":
            return _list(store, args, console)
        if args.action == "show":
            return _show(store, args.run_id, console)
        if args.action == "trend":
            return _trend(store, args, console)
        from holoload.shell.history_report import write_history_report

        runs = store.runs(environment=args.environment, target=args.target)
        try:
            index, badge = write_history_report(runs, Path(args.out))
        except OSError as exc:
            raise InputError(f"{args.out}: cannot write the history report: {exc}") from exc
        _print(console, f"{len(runs)} runs from {store.where}: {index} and {badge}")
        return 0


def _print(console: Console, text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _when(run: RunEntry) -> str:
    return datetime.fromtimestamp(run.started_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _list(store: HistoryStore, args: argparse.Namespace, console: Console) -> int:
    runs = store.runs(scenario=args.scenario, environment=args.environment, target=args.target)
    rows = [("started (UTC)", "run id", "env", "target", "verdict", "gates failed", "commit", "branch")]
    for run in runs:
        failed = [g.name for g in run.gates if g.passed is False]
        rows.append(
            (
                _when(run),
                run.run_id,
                run.environment,
                run.target,
                run.verdict,
                ",".join(failed) or "-",
                (run.git_commit or "-")[:10],
                run.git_branch or "-",
            )
        )
    _print(console, _table(rows) if runs else "(no runs recorded)")
    return 0


def _show(store: HistoryStore, run_id: str, console: Console) -> int:
    run = store.run(run_id)
    if run is None:
        raise InputError(f"history: no run {run_id!r} (holoload history list shows the ids)")
    facts = [
        ("run", run.run_id),
        ("scenario", f"{run.scenario} (hash {run.scenario_hash})"),
        ("target", f"{run.target} ({run.topology})"),
        ("environment", run.environment),
        ("verdict", f"{run.verdict} (exit {run.exit_code})"),
        ("started", f"{run.started_at}, {_num(run.duration_s)} s"),
        ("git", f"{run.git_commit or '-'} on {run.git_branch or '-'}"),
        ("host", f"{run.host_name or '-'}: {run.host_cpus or '-'} CPUs, {run.host_model or '-'}"),
        ("load", f"{_num(run.host_load1)} (1-minute load average at the start)"),
        ("holoload", f"{run.holoload_version or '-'}, recorded by {run.source}"),
        ("results", run.results_dir or "-"),
    ]
    lines = [f"{k:<12} {v}" for k, v in facts] + [f"problem      {p}" for p in run.problems]
    gates = [("gate", "result", "observed", "threshold", "expression")]
    for g in run.gates:
        result = "PASS" if g.passed else "FAIL" if g.passed is False else f"last {g.state}"
        observed = g.observed_text or _num(g.observed)
        gates.append((g.name, result, observed, g.threshold_text or "-", g.expression or "-"))
    ops = [("phase", "op", "ok", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "histogram")]
    for o in run.ops:
        errors = ", ".join(f"{k} {v}" for k, v in o.errors_by_class.items()) or str(o.errors)
        ops.append(
            (o.phase, o.op, str(o.ok), errors, _num(o.ops_per_s), _num(o.p50_ms), _num(o.p95_ms), _num(o.p99_ms))
            + (_num(o.max_ms), f"{len(o.histogram)} chars" if o.histogram else "-")
        )
    _print(console, "\n".join(lines) + "\n\n" + _table(gates) + "\n\n" + _table(ops, {2, 4, 5, 6, 7, 8}))
    return 0


def _trend(store: HistoryStore, args: argparse.Namespace, console: Console) -> int:
    from holoload.core.history.changepoint import detect  # numpy: only when trends are asked for

    runs = store.runs(scenario=args.scenario, environment=args.environment, target=args.target)
    groups: dict[tuple[str, str, str], list[RunEntry]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.environment, run.target), []).append(run)
    wanted = tuple(args.op.split("/", 1)) if args.op else None
    shown = 0
    for (scenario, environment, target), group in groups.items():
        for phase, op in op_keys(group):
            if wanted is not None and (phase, op) != wanted:
                continue
            shown += 1
            _print(console, f"{scenario} · env {environment} · target {target} · {phase}/{op}")
            for metric in args.metric or METRICS:
                points = series(group, phase, op, metric)
                changes = {c.index: c for c in detect([v for _, v in points])} if len(points) > 1 else {}
                rows = [("started (UTC)", "run id", "verdict", metric, "change point")]
                for i, (run, value) in enumerate(points):
                    c = changes.get(i)
                    mark = f"<- shift {_num(c.before)} -> {_num(c.after)} ({_pct(c.change)})" if c else ""
                    rows.append((_when(run), run.run_id, run.verdict, _num(value), mark))
                _print(console, _table(rows, {3}) + "\n")
    if not shown:
        _print(console, "(no matching runs or ops in the history)")
    return 0


def _pct(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.0f}%"


def _run_dirs(path: Path) -> list[Path]:
    """`path` itself when it is a run's directory, else the run directories right under it."""
    if not path.is_dir():
        raise InputError(f"{path}: not a directory (expected a results directory or a directory of them)")
    if _is_run(path):
        return [path]
    return sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))


def _is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in ("summary.json", "events.jsonl", "timeseries.csv"))


def _import(args: argparse.Namespace, console: Console, env: Mapping[str, str]) -> int:
    stores: dict[str, HistoryStore] = {}
    recorded = failed = 0
    try:
        for given in args.dirs:
            for root in _run_dirs(Path(given)):
                location = history_location(args.history, env, root.parent)
                if location is None:
                    raise InputError("--history none: nowhere to import into")
                try:
                    if (root / "summary.json").is_file():
                        summary = load_summary(root)
                    else:  # a killed run: read as `holoload report` would rebuild it, without writing files
                        summary, _keys = rebuild_summary(root)
                    entry = entry_for(root, summary, source="import", env=env)
                except (InputError, FileNotFoundError, ValueError) as exc:
                    _print(console, f"skipped {root}: {exc}")
                    failed += 1
                    continue
                if location not in stores:
                    stores[location] = open_store(location)
                stores[location].record(entry)
                recorded += 1
                _print(console, f"imported {root} ({entry.verdict}) into {stores[location].where}")
    finally:
        for store in stores.values():
            store.close()
    _print(console, f"{recorded} run(s) imported, {failed} skipped")
    return 1 if failed else 0
