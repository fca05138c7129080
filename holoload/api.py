"""holoload as a library: load a scenario, run it, get its typed result (docs/api.md).

    result = holoload.run("scenarios/sales_facts.toml")          # a throwaway local cluster
    result = await holoload.run_async(scenario, target, sinks=[print_windows])

A run writes the same results directory the CLI writes (summary.json, reports, timeseries...).
The library installs no signal handlers, prints nothing unless given a console, and uses the
caller's event loop (`run_async`) or a fresh loop from the current policy (`run`). Bad input
raises before anything starts (`ScenarioError`, an `InputError`, with file and key path);
what goes wrong during the run is in the result (verdict ERROR, `run.problems`), as on the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread
from rich.console import Console

from holoload.core.compare.regression import Budget
from holoload.core.config.profiles import AppliedBudget, choose_profile
from holoload.core.config.validation import validate
from holoload.core.errors import HololoadError, InputError, ScenarioError
from holoload.core.events import Event, EventSink
from holoload.core.model.scenario import Scenario, parse_scenario_data
from holoload.core.model.target import Target
from holoload.core.result import RunSummary
from holoload.shell.files import read_text
from holoload.shell.session import RunControl, RunOptions, RunSession, check_base_port

__all__ = ["ScenarioSource", "Sink", "TargetSource", "load_scenario", "load_target", "run", "run_async"]

#: A scenario: a Scenario, a TOML file's path, TOML text, or the dict TOML would give.
ScenarioSource = Scenario | str | os.PathLike[str] | Mapping[str, object]
#: A target: a Target, a TOML file's path, TOML text, or the dict TOML would give.
TargetSource = Target | str | os.PathLike[str] | Mapping[str, object]
#: Something that takes the run's events as they happen (`WindowClosed` once per window).
Sink = EventSink | Callable[[Event], None]


def load_scenario(
    source: ScenarioSource,
    *,
    overrides: Sequence[str] = (),
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Scenario:
    """A validated scenario.

    Args:
        source: a path (str ending in .toml, or a `Path`), TOML text, or a dict.
        overrides: `key.path=value` items, as `--set` (values read as TOML).
        profile: the `[profiles.NAME]` to apply (default: $HOLOLOAD_ENV, else none).
        env: where `HOLOLOAD_ENV` and `HOLOLOAD_GATE_*` are read (default: os.environ).

    Raises:
        ScenarioError: (an InputError) the file is missing, or TOML, keys, values or gates are
            wrong; the message names the file and each key path.
    """
    return _scenario_budget(source, overrides, profile, os.environ if env is None else env)[0]


def load_target(source: TargetSource) -> Target:
    """A validated target (see `load_scenario` for the forms of `source`).

    Raises:
        ScenarioError: (an InputError) as `load_scenario`.
    """
    if isinstance(source, Target):
        return source
    data, file = _document(source, "target")
    return validate(Target, data, file)


async def run_async(
    scenario: ScenarioSource,
    target: TargetSource | None = None,
    *,
    results_dir: str | os.PathLike[str] | None = None,
    workers: int | Literal["auto"] | None = None,
    nodes: int = 3,
    base_port: int | None = None,
    enforce: bool = True,
    overrides: Sequence[str] = (),
    profile: str | None = None,
    sinks: Iterable[Sink] = (),
    control: RunControl | None = None,
    baseline: str | os.PathLike[str] | None = None,
    budget: Budget | None = None,
    history: str | None = None,
    notify: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> RunSummary:
    """Run a scenario in the running event loop and return its result.

    Args:
        scenario: what to run (see `load_scenario`).
        target: the cluster to run against; None starts a throwaway local PostgreSQL cluster
            of `nodes` servers (stopped and removed afterwards).
        results_dir: where `<scenario>_<UTC time>/` goes (default: the scenario's `run.results_dir`).
        workers: sustained load over this many worker processes ('auto': one per CPU; 1: this process).
        nodes: servers of the local cluster (1..16).
        base_port: the local cluster's first port to try (1024..65535, busy ports skipped; default
            55432); only without `target`.
        enforce: False: a failed gate still gives verdict FAIL, but exit code 0.
        overrides: `--set` items applied to a scenario loaded from a file, text or dict.
        profile: the budget profile (`--env`) for a scenario loaded from a file, text or dict.
        sinks: live consumers of the run's events, called in the event loop; a sink that raises
            is dropped and listed under `run.problems`.
        control: to stop the run from outside (`control.request_stop()`); the verdict is then
            INTERRUPTED with what was measured.
        baseline: a results directory (or set) to compare with: a regression makes the run FAIL.
        budget: the regression budget for `baseline` (default 10 % latency and throughput).
        history: the run history (a path or URL; "none": none); default $HOLOLOAD_HISTORY, then
            history.sqlite beside the results.
        notify: webhook URLs to post the summary to.
        env: the environment (default: os.environ) for profiles, gate variables, target control
            commands and secrets to hide.
        console: where the live display and notes go (default: nothing is printed).

    Returns:
        The result; `result.verdict` is PASS, FAIL, INTERRUPTED or ERROR, `result.exit_code`
        what the CLI would exit with, `result.results_dir` where the artifacts are.

    Raises:
        InputError: bad scenario, target or options, or the results directory cannot be
            created; nothing was started.
    """
    session = _session(
        scenario, target, results_dir, workers, nodes, base_port, enforce, overrides, profile, sinks, baseline,
        budget, history, notify, env, console,
    )  # fmt: skip
    session.open()
    try:
        try:
            await anyio.to_thread.run_sync(session.start_target)  # a local cluster takes seconds
            await session.drive(control)
        except HololoadError as exc:
            session.failed(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: the result says ERROR, run.log has the traceback
            session.crashed(exc)
        except anyio.get_cancelled_exc_class():  # the caller cancelled: keep what was measured, then go on
            session.interrupted(None, cancelled=True)
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(session.finish)
            raise
        return await anyio.to_thread.run_sync(session.finish)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.close)


def run(
    scenario: ScenarioSource,
    target: TargetSource | None = None,
    *,
    results_dir: str | os.PathLike[str] | None = None,
    workers: int | Literal["auto"] | None = None,
    nodes: int = 3,
    base_port: int | None = None,
    enforce: bool = True,
    overrides: Sequence[str] = (),
    profile: str | None = None,
    sinks: Iterable[Sink] = (),
    control: RunControl | None = None,
    baseline: str | os.PathLike[str] | None = None,
    budget: Budget | None = None,
    history: str | None = None,
    notify: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> RunSummary:
    """`run_async` in a new event loop of the current policy (do not call it from inside a running loop).

    No signal handler is installed: Ctrl-C raises KeyboardInterrupt once what was measured is
    written (verdict INTERRUPTED) and the local cluster is stopped; use `run_async` with a
    `RunControl` for a graceful stop (in-flight operations drain, faults heal, the checker runs).
    """
    coroutine = run_async(
        scenario, target, results_dir=results_dir, workers=workers, nodes=nodes, base_port=base_port, enforce=enforce,
        overrides=overrides, profile=profile, sinks=sinks, control=control, baseline=baseline, budget=budget,
        history=history, notify=notify, env=env, console=console,
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(coroutine)
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)  # the cleanup (cluster stop) runs before the interrupt goes on
            raise
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


# ---------------------------------------------------------------- helpers


class _CallableSink:
    """A plain function as an EventSink."""

    def __init__(self, function: Callable[[Event], None]) -> None:
        self.function = function
        self.__name__ = getattr(function, "__name__", type(function).__name__)

    def emit(self, event: Event) -> None:
        self.function(event)


def _sink(sink: Sink) -> EventSink:
    emit = getattr(sink, "emit", None)
    if callable(emit):
        return sink  # type: ignore[return-value]  # has emit(event): an EventSink
    if callable(sink):
        return _CallableSink(sink)
    raise InputError(f"sinks: expected a callable or an object with emit(event), got {type(sink).__name__}")


def _session(
    scenario_source: ScenarioSource,
    target_source: TargetSource | None,
    results_dir: str | os.PathLike[str] | None,
    workers: int | Literal["auto"] | None,
    nodes: int,
    base_port: int | None,
    enforce: bool,
    overrides: Sequence[str],
    profile: str | None,
    sinks: Iterable[Sink],
    baseline: str | os.PathLike[str] | None,
    budget: Budget | None,
    history: str | None,
    notify: Sequence[str],
    env: Mapping[str, str] | None,
    console: Console | None,
) -> RunSession:
    """Validate everything before anything starts (InputError otherwise)."""
    environ = dict(os.environ if env is None else env)
    if not 1 <= nodes <= 16:
        raise InputError(f"nodes: expected 1..16, got {nodes}")
    scenario, applied = _scenario_budget(scenario_source, overrides, profile, environ)
    if workers is not None:
        if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256):
            raise InputError(f"workers: expected 'auto' or a count 1..256, got {workers!r}")
        scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"workers": workers})})
    target = None if target_source is None else load_target(target_source)
    check_base_port(base_port, target_given=target is not None)
    baseline_runs = None
    if baseline is not None:
        from holoload.shell.compare_cmd import load_runs

        baseline_runs = load_runs(Path(baseline))  # a bad baseline: InputError before load
    if target is not None:
        label = target.name
    elif scenario.cluster.replication != "none":
        label = f"local ({scenario.cluster.nodes or nodes} nodes, {scenario.cluster.replication} replication)"
    else:
        label = f"local ({nodes} nodes)"
    options = RunOptions(
        scenario=scenario,
        target=target,
        target_label=label,
        local_nodes=nodes,
        base_port=base_port,
        results_base=None if results_dir is None else os.fspath(results_dir),
        enforce=enforce,
        env=environ,
        scenario_file=_file_label(scenario_source),
        baseline=baseline_runs,
        budget=budget or Budget(),
        applied=applied,
        notify=list(notify),
        history=history,
        sinks=[_sink(s) for s in sinks],
    )
    say = None if console is None else (lambda text: console.print(text, highlight=False, markup=False))
    return RunSession(options, console=console, say=say, warn=say)


def _scenario_budget(
    source: ScenarioSource, overrides: Sequence[str], profile: str | None, env: Mapping[str, str]
) -> tuple[Scenario, AppliedBudget]:
    if isinstance(source, Scenario):
        if overrides or profile:
            raise InputError("overrides and profile apply to a scenario loaded from a file, text or dict")
        return source, AppliedBudget()
    data, file = _document(source, "scenario")
    return parse_scenario_data(
        data, file, profile=choose_profile(profile, env), environ=env, sets=[str(o) for o in overrides]
    )


def _document(source: str | os.PathLike[str] | Mapping[str, object], what: str) -> tuple[dict[str, object], str]:
    """(the parsed TOML document, the name errors give it) of a path, TOML text or dict."""
    if isinstance(source, Mapping):
        return dict(source), f"<{what} dict>"
    if isinstance(source, os.PathLike) or _looks_like_path(source):
        text, file = read_text(os.fspath(source)), os.fspath(source)
    elif isinstance(source, str):
        text, file = source, f"<{what} text>"
    else:
        raise InputError(f"{what}: expected a path, TOML text or a dict, got {type(source).__name__}")
    try:
        return tomllib.loads(text), file
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, [("", f"not valid TOML: {exc}")]) from exc


def _looks_like_path(text: str) -> bool:
    """A one-line string naming a .toml file or an existing file (TOML text has `=` or `[`)."""
    if "\n" in text:
        return False
    return text.strip().endswith(".toml") or Path(text).is_file()


def _file_label(source: ScenarioSource) -> str:
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        return os.fspath(source)
    return "scenario"
