"""Command line: parse -> run -> one `raise SystemExit(code)`."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from holoload import __version__
from holoload.core.compare.regression import Budget
from holoload.core.config.profiles import choose_profile
from holoload.core.errors import ExitCode, HololoadError, InputError
from holoload.core.model.scenario import Scenario
from holoload.shell.check_cmd import add_check_parser
from holoload.shell.compare_cmd import budget_from_env, load_runs, run_compare
from holoload.shell.files import load_scenario_budget, load_target
from holoload.shell.history_cmd import add_history_option, add_history_parser
from holoload.shell.notify import notify_urls
from holoload.shell.prom_exporter import parse_listen

SUBCOMMANDS = ("run", "validate", "cluster", "report", "compare", "history", "check")

DESCRIPTION = """\
holoload runs load scenarios against PostgreSQL-wire clusters and ends with PASS or FAIL.

  holoload SCENARIO.toml                      run on a throwaway local 3-node PostgreSQL cluster
  holoload SCENARIO.toml --target T.toml      run against the cluster a target file describes
  holoload validate FILE.toml...              check scenario/target files without running
  holoload cluster up|status|down             keep a local cluster running between runs
  holoload report RESULTS_DIR                 rewrite a run's reports; rebuild a killed run's summary
  holoload compare BASELINE_DIR RESULTS_DIR   fail (exit 1) when p95/p99 or throughput regressed beyond noise
  holoload history list|show|trend|import|report   runs recorded across time; reports/index.html
  holoload check HISTORY [--model M]          isolation anomalies in a list-append history (docs/isolation.md)
"""

EPILOG = """\
exit codes: 0 PASS, 1 a gate failed, 2 bad input or usage, 3 target unreachable or set-up
failed, 130 interrupted by Ctrl-C, 143 by SIGTERM. The first signal stops gracefully (no new
work, in-flight operations drain, faults heal, the checker runs); a second one stops at once.
Either way what was measured is kept, with verdict INTERRUPTED.
docs: README.md, docs/scenarios.md (file format), docs/results.md (artifacts)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="holoload",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"holoload {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a scenario (the default command)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", help="scenario file (TOML), e.g. scenarios/sales_facts.toml")
    run.add_argument(
        "--target",
        "-t",
        metavar="FILE",
        help="target file describing the cluster; default: start a local cluster",
    )
    _add_set(
        run,
        "override a scenario field, e.g. --set gates.p95_20k='p95(batch_20k) <= 10s' "
        "or --set chaos.0.enabled=false (repeatable; values are read as TOML)",
    )
    _add_env(run)
    run.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="after the run, POST a short JSON summary (Slack-compatible: verdict, failed gates, p50/p95/p99 "
        "per op, the report's path) to this webhook (repeatable; default: $HOLOLOAD_NOTIFY, URLs separated "
        "by spaces). A failed post is recorded, never changes the verdict",
    )
    run.add_argument(
        "--nodes",
        type=int,
        default=3,
        metavar="N",
        help="nodes of the local cluster when no --target is given (default 3)",
    )
    run.add_argument(
        "--base-port",
        type=int,
        metavar="PORT",
        help="first port the local cluster tries (1024..65535; busy ports are skipped; default 55432); "
        "not with --target, whose nodes name their own ports",
    )
    run.add_argument(
        "--results-dir",
        metavar="DIR",
        help="where results/<scenario>_<UTC time>/ goes (default: the scenario's run.results_dir, 'results')",
    )
    run.add_argument(
        "--no-enforce",
        action="store_true",
        help="report gate failures but exit 0 (the bash canary's ENFORCE_SLO=0)",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="print only the verdict")
    run.add_argument(
        "--baseline",
        metavar="DIR|auto",
        help="results directory of a baseline run, or a set of runs (--repeat): FAIL (exit 1) when a p95/p99 or "
        "the throughput of an op regressed beyond the budget (default 10 %%), the minimum change and the noise "
        "(a bootstrap interval of the per-window figures); 'auto': the last passing run of the same scenario, "
        "target and environment in the run history",
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the scenario N times into one set directory (results/<scenario>_x<N>_<UTC time>/); the set "
        "passes when every run passes, and --baseline compares the whole set",
    )
    add_history_option(run)
    _add_budget(run)
    run.add_argument(
        "--workers",
        metavar="N",
        help="sustained load: split it across N worker processes, each with its own event loop and "
        "connections ('auto', the default: one per CPU, at most the busiest phase's connection count, "
        "one process on machines with 2 CPUs or fewer; "
        "1: all in this process); the scenario's "
        "run.workers sets the default. Gates, chaos, samplers and the checker stay in the "
        "coordinating process and see merged numbers. Canary batches always run in one process",
    )
    run.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the worker engines as Ray actors on the Ray cluster at ADDRESS ('auto', "
        "'ray://HOST:10001', or 'local' to start a Ray instance here); needs pip install 'holoload[ray]'",
    )
    run.add_argument(
        "--serve-metrics",
        metavar="HOST:PORT",
        help="serve holoload's live stats (ops, errors, latency, gate states, chaos steps) in Prometheus "
        "format at http://HOST:PORT/metrics while it runs, e.g. 127.0.0.1:9464",
    )

    val = sub.add_parser("validate", help="check scenario and target files without running anything")
    val.add_argument("files", nargs="+", metavar="FILE")
    _add_set(val, "apply overrides to scenario files before checking")
    _add_env(val)

    cluster = sub.add_parser("cluster", help="start, inspect or stop a long-lived local cluster")
    cluster.add_argument("action", choices=("up", "status", "down"))
    cluster.add_argument("--nodes", type=int, default=3, metavar="N", help="nodes for 'up' (default 3)")
    cluster.add_argument(
        "--replication",
        choices=("none", "async", "sync"),
        default="none",
        help="'up': one primary and hot standbys by streaming replication (the target file then has "
        "endpoints 'primary' and 'standby'); default none: independent servers",
    )
    cluster.add_argument(
        "--base-port",
        type=int,
        default=55432,
        metavar="PORT",
        help="first port to try for 'up' (default 55432)",
    )
    report = sub.add_parser(
        "report",
        help="write report.html, junit.xml and summary.md of a results directory "
        "(rebuilding summary.json first when a killed run left none)",
    )
    report.add_argument("results_dir", metavar="RESULTS_DIR", help="a run's directory, results/<scenario>_<time>")
    report.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild summary.json/summary.txt from events.jsonl, timeseries.csv and latency.hlog even if present",
    )
    add_history_option(report)
    cmp = sub.add_parser(
        "compare",
        help="compare a run (or a set of runs) with a baseline run (or set): exit 1 when p95/p99 or throughput "
        "regressed beyond the budget, the minimum change and the noise",
    )
    cmp.add_argument("baseline", metavar="BASELINE_DIR")
    cmp.add_argument("results", metavar="RESULTS_DIR")
    _add_budget(cmp)
    add_history_parser(sub)
    add_check_parser(sub)
    return parser


def _add_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="KIND=LIMIT",
        help="allowed regression: latency=15%% (p95/p99 up), throughput=5%% (ops/s down), default 10%% each; "
        "latency_min=0.5ms and throughput_min=5 (smallest absolute change that counts), confidence=95%% "
        "(of the bootstrap interval); HOLOLOAD_COMPARE_LATENCY, _THROUGHPUT, _LATENCY_MIN, _THROUGHPUT_MIN and "
        "_CONFIDENCE set them from the environment",
    )


def _budget(items: list[str]) -> Budget:
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--budget {item!r}: expected KIND=LIMIT such as latency=15%")
        overrides[key.strip()] = value.strip()
    return budget_from_env(os.environ, overrides)


def _add_set(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--set", "-s", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help=help_text
    )


def _add_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="budget profile: apply the scenario's [profiles.NAME] overrides (default: $HOLOLOAD_ENV, else "
        "none). Order: profile, then HOLOLOAD_GATE_<GATE>=expression variables, then --set (which wins)",
    )


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """`holoload SCENARIO ...` means `holoload run SCENARIO ...`."""
    args = list(argv)
    if any(a in ("-h", "--help", "--version") for a in args[:1]):
        return args
    first = next((a for a in args if not a.startswith("-")), None)
    if first is not None and first not in SUBCOMMANDS:
        args.insert(0, "run")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `holoload` script and `python -m holoload`."""
    raise SystemExit(dispatch(sys.argv[1:] if argv is None else argv))


def dispatch(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(normalise_argv(argv))
    console = Console(stderr=False, soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    try:
        if args.command == "validate":
            return _validate(args.files, args.overrides, choose_profile(args.env, os.environ), console)
        if args.command == "cluster":
            from holoload.shell.cluster_cmd import cluster_command

            return cluster_command(args.action, args.nodes, args.base_port, console, args.replication)
        if args.command == "report":
            from holoload.shell.report_cmd import report_command

            return report_command(args.results_dir, rebuild=args.rebuild, console=console, history=args.history)
        if args.command == "history":
            from holoload.shell.history_cmd import history_command

            return history_command(args, console)
        if args.command == "compare":
            return run_compare(Path(args.baseline), Path(args.results), _budget(args.budget), console)
        if args.command == "check":
            from holoload.shell.check_cmd import check_command

            return check_command(args, console)
        if args.command == "run":
            return _run(args, console)
        parser.print_help()
        return int(ExitCode.BAD_INPUT)
    except HololoadError as exc:
        errors.print(f"[bold red]holoload: error[/bold red] (exit {int(exc.exit_code)})", highlight=False)
        errors.print(str(exc), highlight=False, markup=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        errors.print("holoload: interrupted", highlight=False)
        return int(ExitCode.INTERRUPTED)


def _run(args: argparse.Namespace, console: Console) -> int:
    from holoload.shell.runner import RunOptions, run
    from holoload.shell.session import check_base_port

    if args.nodes < 1 or args.nodes > 16:
        raise InputError(f"--nodes: expected 1..16, got {args.nodes}")
    if not 1 <= args.repeat <= 100:
        raise InputError(f"--repeat: expected 1..100 runs, got {args.repeat}")
    check_base_port(args.base_port, target_given=bool(args.target), name="--base-port")
    overrides = list(args.overrides) + ([f"run.workers={_workers(args.workers)}"] if args.workers else [])
    profile = choose_profile(args.env, os.environ)
    scenario, applied = load_scenario_budget(args.scenario, overrides, profile, os.environ)
    notify = notify_urls(args.notify, os.environ)
    if (args.workers or args.ray) and scenario.batches:
        console.print(
            "note: --workers and --ray apply to sustained load ([[phases]]); canary batches run in one process",
            highlight=False,
            markup=False,
        )
    target = load_target(args.target) if args.target else None
    baseline_dir = _auto_baseline(args, scenario, target.name if target else "local", console)
    baseline = load_runs(baseline_dir) if baseline_dir else None  # bad baseline: exit 2 before load
    budget = _budget(args.budget)
    label = f"{target.name} ({args.target})" if target else f"local ({args.nodes} nodes)"
    if target is None and scenario.cluster.replication != "none":
        label = f"local ({scenario.cluster.nodes or args.nodes} nodes, {scenario.cluster.replication} replication)"
    options = RunOptions(
        scenario=scenario,
        target=target,
        target_label=label,
        local_nodes=args.nodes,
        base_port=args.base_port,
        results_base=args.results_dir,
        enforce=not args.no_enforce,
        quiet=args.quiet,
        env=dict(os.environ),
        scenario_file=args.scenario,
        baseline=baseline,
        budget=budget,
        serve_metrics=parse_listen(args.serve_metrics) if args.serve_metrics else None,
        ray_address=args.ray,
        applied=applied,
        notify=notify,
        history=args.history,
    )
    if args.repeat > 1:
        from holoload.shell.repeat import run_set

        return run_set(options, args.repeat, console)
    return run(options, console)


def _auto_baseline(args: argparse.Namespace, scenario: Scenario, target: str, console: Console) -> Path | None:
    """--baseline DIR as given; `auto` resolved from the run history (None, with a note, when it has none)."""
    if args.baseline != "auto":
        return Path(args.baseline) if args.baseline else None
    from holoload.shell.history_record import environment_label, history_location, resolve_auto_baseline

    location = history_location(args.history, os.environ, Path(args.results_dir or scenario.run.results_dir))
    profile = getattr(args, "env", None)  # an --env profile's name, where the run has that option
    environment = profile if isinstance(profile, str) and profile else environment_label(os.environ)
    found = resolve_auto_baseline(location, scenario.name, target, environment)
    where = f"scenario {scenario.name}, target {target}, environment {environment}"
    if found is None:
        console.print(
            f"note: --baseline auto: no passing run of {where} in {location}; this run is not compared "
            "(its gates still decide)",
            highlight=False,
            markup=False,
        )
    else:
        console.print(f"baseline (auto): {found}, the last passing run of {where}", highlight=False, markup=False)
    return found


def _workers(text: str) -> str:
    """--workers as a TOML value for run.workers."""
    if text.strip() == "auto":
        return '"auto"'
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 256:
        raise InputError(f"--workers: expected 'auto' or a count 1..256, got {text!r}")
    return str(count)


def _shape(scenario: Scenario) -> str:
    """What a scenario runs, in its own terms: a canary's batches, or phases and their workloads."""
    if scenario.phases:
        workloads = sum(len(p.workloads) for p in scenario.phases)
        return f"{len(scenario.phases)} phases, {workloads} workloads"
    return f"{scenario.total_batches} batches"


def _validate(files: list[str], overrides: list[str], profile: str, console: Console) -> int:
    worst = ExitCode.PASS
    for file in files:
        try:
            if _looks_like_target(file):
                target = load_target(file)
                console.print(f"{file}: ok (target '{target.name}', {len(target.nodes)} nodes)", highlight=False)
            else:
                scenario, applied = load_scenario_budget(file, overrides, profile, os.environ)
                console.print(
                    f"{file}: ok (scenario '{scenario.name}', {_shape(scenario)}, "
                    f"{len(scenario.active_gates())} gates, budget {applied.describe()})",
                    highlight=False,
                    markup=False,
                )
        except HololoadError as exc:
            console.print(str(exc), highlight=False, markup=False)
            worst = ExitCode(max(worst, exc.exit_code))
    return int(worst)


def _looks_like_target(file: str) -> bool:
    try:
        data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return not any(key in data for key in ("batches", "phases", "gates", "chaos"))
