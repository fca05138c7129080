"""One run end to end, without a terminal or signals: results directory, target, engine, result, artifacts.

The composition root shared by the Python API (`holoload.run`) and the CLI (`shell/runner.py`,
which adds signal handling, the live display and the event loop policy around it). A session:

    session = RunSession(options)       # nothing started yet
    with session:                       # results directory, run.log, sinks (InputError if it cannot)
        session.start_target()          # blocking: the embedded cluster when there is no target
        await session.drive(control)    # the engine, in the caller's event loop
        result = session.finish()       # verdict, summary.json, reports, history, notifications

Every outcome, even a crash of the target, leaves artifacts: `failed`, `interrupted` and
`crashed` record why the run stopped, and `finish` still writes the summary.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, TextIO

import aiohttp
import anyio
import anyio.abc
import structlog
from rich.console import Console

from holoload.adapters.holofusion.samplers import wait_ready
from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.local.cluster import DEFAULT_BASE_PORT, LocalCluster
from holoload.adapters.local.node_control import CommandNodeControl, LocalNodeControl
from holoload.adapters.pg.connect import redact
from holoload.core.compare.regression import Budget, RunFigures
from holoload.core.config.profiles import AppliedBudget
from holoload.core.config.secrets import Secrets
from holoload.core.errors import ExitCode, HololoadError, InputError, label_of, reason_of
from holoload.core.events import Event, EventSink, RunProblem, RunStarted, WindowClosed
from holoload.core.gates.verdicts import Verdict
from holoload.core.model.scenario import Scenario, dump
from holoload.core.model.target import Target, local_target
from holoload.core.result import RunInfo, RunSummary, RunVerdict, decide_verdict
from holoload.engine.result import RunRecord
from holoload.shell.artifacts import ArtifactWriter, results_dir_for
from holoload.shell.baseline_guard import guard_run
from holoload.shell.history_record import capture_context, history_location, record_run
from holoload.shell.jobs import Job, LoadJob, make_job
from holoload.shell.notify import notify_run
from holoload.shell.outputs import write_reports
from holoload.shell.prom_exporter import MetricsExporter
from holoload.shell.replicated_run import start_replicated

__all__ = ["Fanout", "RunControl", "RunOptions", "RunSession", "check_base_port", "secrets_of"]


@dataclass
class RunOptions:
    """What the caller decided, already validated."""

    scenario: Scenario
    target: Target | None
    target_label: str = "local"
    local_nodes: int = 3
    base_port: int | None = None  # the local cluster's first port to try (None: LocalCluster's default)
    results_base: str | None = None
    enforce: bool = True
    quiet: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    scenario_file: str = "scenario"
    baseline: list[RunFigures] | None = None  # baseline run(s) (--baseline)
    budget: Budget = field(default_factory=Budget)
    serve_metrics: tuple[str, int] | None = None  # --serve-metrics HOST:PORT
    ray_address: str | None = None  # --ray ADDRESS: worker engines as Ray actors
    applied: AppliedBudget = field(default_factory=AppliedBudget)  # --env profile, HOLOLOAD_GATE_*, --set
    notify: list[str] = field(default_factory=list)  # --notify URLs (or HOLOLOAD_NOTIFY)
    history: str | None = None  # --history PATH|URL|none (default: $HOLOLOAD_HISTORY, then beside the results)
    sinks: list[EventSink] = field(default_factory=list)  # the caller's live consumers of events


class Fanout:
    """Delivers each event to every sink in order, and logs it to run.log.

    A sink that fails (a closed terminal, a full disk) is dropped and the failure recorded;
    the run and the other sinks go on.
    """

    def __init__(self, sinks: list[EventSink], log: Any, secrets: Secrets | None = None) -> None:
        self.sinks = sinks
        self.log = log
        self.failures: list[str] = []
        self.secrets = secrets or Secrets()

    def emit(self, event: Event) -> None:
        if self.secrets and not isinstance(event, _NUMERIC_EVENTS):
            event = _scrubbed(event, self.secrets)
        for sink in list(self.sinks):
            try:
                sink.emit(event)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - rich raises SystemExit on a closed stdout
                self.sinks.remove(sink)
                self.failures.append(f"{type(sink).__name__} stopped: {type(exc).__name__}: {exc}")
        if isinstance(event, WindowClosed) or self.log is None:
            return  # per-window figures live in timeseries.csv
        try:
            self.log.info(event.kind, **{k: v for k, v in event.to_dict().items() if k not in ("kind", "text")})
        except OSError as exc:
            self.log = None
            self.failures.append(f"run.log stopped: {exc}")


_NUMERIC_EVENTS = (WindowClosed,)  # names and figures only: not worth scrubbing per window


def _scrubbed(event: Event, secrets: Secrets) -> Event:
    """The event with every secret in its text fields hidden."""
    changes = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str | Mapping | tuple):
            clean = secrets.scrub_obj(value)
            if clean != value:
                changes[f.name] = clean
    return replace(event, **changes) if changes else event


def check_base_port(base_port: int | None, *, target_given: bool, name: str = "base_port") -> None:
    """A local cluster's first port: 1024..65535, and only without a target (it names its own ports).

    Raises:
        InputError: (exit 2) named `name` (`--base-port` on the command line).
    """
    if base_port is None:
        return
    if isinstance(base_port, bool) or not isinstance(base_port, int) or not 1024 <= base_port <= 65535:
        raise InputError(f"{name}: expected a port in 1024..65535, got {base_port!r}")
    if target_given:
        raise InputError(f"{name} applies to the local cluster only; a target's nodes name their own ports")


def secrets_of(options: RunOptions) -> Secrets:
    """Every secret this run was given: target DSNs and URLs, the environment, chaos `env` values."""
    urls: list[str] = list(options.notify)
    if options.target is not None:
        for node in options.target.nodes:
            urls += [u for u in (node.dsn, node.metrics_url, node.health_url) if u]
    env = dict(options.env)
    for i, action in enumerate(options.scenario.chaos):
        env.update({f"chaos{i}_{k}": v for k, v in action.env.items()})
    return Secrets.collect(urls=urls, env=env)


class RunControl:
    """Stops a running session from the outside (a signal handler, a caller's code).

    The first `request_stop` stops gracefully: no new work, in-flight operations drain for up to
    `run.stop_grace`, faults heal and the checker runs. A second one (or the grace running out)
    stops at once; what was measured is kept either way and the verdict is INTERRUPTED. Call it
    from the event loop the run is in.
    """

    def __init__(self) -> None:
        self.stop_signal: str | None = None  # the signal behind the first stop request (None: asked by code)
        self.at_once: str | None = None  # why the engine was cancelled ("a second SIGINT", "the 30s grace ran out")
        self._requested = False
        self._session: RunSession | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._running = False

    @property
    def requested(self) -> bool:
        return self._requested

    def request_stop(self, why: str = "stop requested", *, signal_name: str | None = None) -> None:
        """Stop gracefully (at once when a stop was requested before, or the load has not started)."""
        first = not self._requested
        self._requested = True
        if first:
            self.stop_signal = signal_name
        session, group = self._session, self._group
        if session is None or group is None:
            return  # not driving yet: drive() returns at once
        if not first or not self._running:
            cause = f"a second {signal_name or 'stop request'}" if not first else "the load had not started"
            self.stop_now(f"{why}: stopping at once, keeping what was measured", cause=cause)
            return
        grace = session.options.scenario.run.stop_grace
        session.sink.emit(
            RunProblem(
                time.time(),
                "interrupted",
                f"{why}: no new work; in-flight operations drain (up to {grace:g}s), faults heal "
                "and the checker runs; send it again to stop at once",
            )
        )
        session.job.request_stop()
        group.start_soon(self._grace_deadline, grace)

    def stop_now(self, why: str, *, cause: str = "stop_now() was called") -> None:
        """Cancel the engine at once; what was measured is kept.

        Args:
            why: the problem event's text.
            cause: why at once, for `run.problems` ("a second SIGINT", "the 30s stop grace ran out").
        """
        self._requested = True
        if self._session is not None:
            self._session.sink.emit(RunProblem(time.time(), "interrupted", why))
        if self._scope is not None:
            self.at_once = self.at_once or cause
            self._scope.cancel()

    async def _grace_deadline(self, grace: float) -> None:
        await anyio.sleep(grace)
        self.stop_now(
            f"still running {grace:g}s after the stop request: stopping at once, keeping what was measured",
            cause=f"the {grace:g}s stop grace ran out",
        )


class RunSession:
    """One run's state from its results directory to its result; see the module docstring."""

    def __init__(
        self,
        options: RunOptions,
        *,
        console: Console | None = None,
        say: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        options: the run's settings.
        console: where the live display goes (None: no display).
        say: prints one line for people (None: nothing is printed).
        warn: prints one line about a problem that is not the run's (None: nothing is printed).
        """
        self.options = options
        self.console = console
        self._say_line = say
        self._warn_line = warn
        self.secrets = secrets_of(options)
        self.stack = ExitStack()
        self.target: Target | None = options.target
        self.stopped_by: list[str] = []
        self.result: RunSummary | None = None
        self.verdicts: list[Verdict] = []

    # ------------------------------------------------------------ set-up

    def open(self) -> RunSession:
        """Create the results directory, run.log and the sinks (`close` undoes it all).

        Raises:
            InputError: the results directory cannot be created, or --serve-metrics cannot listen.
        """
        options, scenario = self.options, self.options.scenario
        started = datetime.now(UTC)
        base = options.results_base or scenario.run.results_dir
        try:
            root = results_dir_for(base, scenario.name, started)
            self.writer = ArtifactWriter(root).open()
            self.writer.write_json("scenario.json", self.secrets.scrub_obj(dump(scenario)))  # the disk takes writes
            log_file = (root / "run.log").open("a")
        except OSError as exc:
            raise InputError(f"cannot create a results directory under {base}: {exc}") from exc
        self.root = root
        self.stack.callback(self.writer.close)
        self.stack.callback(log_file.close)
        try:
            capture_context(root, options.scenario_file, options.env)  # git, host, load: for the run history
            self.job: Job = make_job(scenario, self.console, root, quiet=options.quiet)
            if isinstance(self.job, LoadJob):
                self.job.ray_address = options.ray_address
            self.job.file = options.scenario_file
            self.record = RunRecord(
                run_id=f"{scenario.name}-{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
                started_at=started.isoformat(),
                results_dir=str(root),
                pg_url="",
                topology_target="",
                enforce=options.enforce,
            )
            exporter = None if options.serve_metrics is None else MetricsExporter(*options.serve_metrics)
            self.sink = Fanout(
                [*self.job.sinks, self.writer, *([exporter] if exporter else []), *options.sinks],
                _run_logger(log_file, self.secrets),
                self.secrets,
            )
            self.stack.callback(self.job.close)
            if exporter is not None:
                self.stack.callback(exporter.close)
        except BaseException:
            self.stack.close()
            raise
        self.log("budget", **options.applied.to_summary())
        return self

    def close(self) -> None:
        """Stop what the run started (the embedded cluster first) and close its files; blocking."""
        self.stack.close()

    def __enter__(self) -> RunSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def say(self, text: str) -> None:
        _best_effort(self._say_line, text)

    def warn(self, text: str) -> None:
        _best_effort(self._warn_line, text)

    def log(self, event: str, **fields: Any) -> None:
        """Write to run.log unless it has failed (a full disk is recorded once, not raised again)."""
        if self.sink.log is None:
            return
        try:
            self.sink.log.info(event, **fields)
        except OSError as exc:
            self.sink.log = None
            self.sink.failures.append(f"run.log stopped: {exc}")

    def start_target(self) -> Target:
        """The target: the embedded cluster started (stopped when the session closes) when none was given.

        Blocking (seconds for a cluster): the API calls it in a worker thread.
        """
        options, job = self.options, self.job
        target = self.target
        if target is None:
            if options.scenario.cluster.replication != "none":
                target = start_replicated(
                    options.scenario,
                    options.local_nodes,
                    self.stack,
                    job,
                    say=self.say,
                    log=self.log,
                    on_stop=self._stop_cluster,
                    base_port=options.base_port,
                )
            else:
                cluster = LocalCluster(
                    options.local_nodes,
                    base_port=options.base_port or DEFAULT_BASE_PORT,
                    log=lambda line: self.log("cluster", detail=line),
                )
                self.stack.callback(self._stop_cluster, cluster)
                server = cluster.binaries.describe()
                self.log("cluster_binaries", server=server)
                self.say(
                    f"starting embedded PostgreSQL cluster ({options.local_nodes} nodes on 127.0.0.1, {server})..."
                )
                nodes = cluster.start()
                self.log("cluster_started", nodes=[n.dsn for n in nodes])
                target = local_target([n.dsn for n in nodes])
                job.node_control = LocalNodeControl(cluster, target.node_names())
        elif target.control:
            commands = {str(action): argv for action, argv in target.control.items()}
            job.node_control = CommandNodeControl(commands, target.node_names(), options.env)
        self.target = target
        self.record.pg_url = ",".join(redact(n.dsn) for n in target.nodes)
        self.record.topology_target = _topology_label(target)
        return target

    def _stop_cluster(self, cluster: LocalCluster) -> None:
        cluster.stop()
        self.log("cluster_stopped")
        self.say("embedded cluster stopped and removed")

    # ------------------------------------------------------------ the load

    async def drive(self, control: RunControl | None = None) -> None:
        """Run the engine in the current event loop (after `start_target`).

        A stop requested through `control` ends the run INTERRUPTED with what was measured.

        Raises:
            HololoadError: the run could not go on (the caller records it with `failed`).
        """
        assert self.target is not None, "start_target() first"
        control = control or RunControl()
        scenario, target, sink = self.options.scenario, self.target, self.sink
        failure: HololoadError | None = None
        control._session = self
        if control.requested:  # stopped before the load began
            self.interrupted(control.stop_signal, at_once=control.at_once)
            return
        try:
            async with anyio.create_task_group() as tg:
                control._group = tg
                sink.emit(
                    RunStarted(time.time(), self.record.run_id, scenario.name, target.name, tuple(target.node_names()))
                )
                with anyio.CancelScope() as engine_scope:
                    control._scope = engine_scope
                    try:
                        await _wait_ready(target)
                        async with TargetSurfaces(
                            target,
                            connect_timeout_s=scenario.run.connect_timeout,
                            statement_timeout_s=scenario.run.statement_timeout,
                            control_timeout_s=scenario.run.control_timeout,
                            env=self.options.env,
                        ) as surfaces:
                            control._running = True
                            await self.job.run(surfaces, sink)
                    except HololoadError as exc:  # raised out of the task group, it would come wrapped
                        failure = exc
                    except BaseExceptionGroup as group:  # an engine's own task group wraps what it raises
                        ours, rest = group.split(HololoadError)
                        if rest is not None or ours is None:
                            raise
                        failure = _first_leaf(ours)
                tg.cancel_scope.cancel()
        finally:
            control._group = control._scope = None
            control._running = False
        if failure is not None:
            raise failure
        if control.requested:
            self.interrupted(control.stop_signal, at_once=control.at_once)

    # ------------------------------------------------------------ why it stopped

    def failed(self, exc: HololoadError) -> None:
        """The run could not go on (exit code of the error; summary.md, junit.xml and report.html list it)."""
        self.sink.emit(RunProblem(time.time(), label_of(exc), str(exc)))
        self.record.status, self.record.exit_code = RunVerdict.ERROR.value, int(exc.exit_code)
        self.stopped_by = [reason_of(exc)]

    def interrupted(
        self,
        signal_name: str | None,
        *,
        before_load: bool = False,
        at_once: str | None = None,
        cancelled: bool = False,
    ) -> None:
        """A stop was requested (SIGINT/SIGTERM, or the caller's `RunControl`), or the caller cancelled the run.

        `run.problems` gets one line saying so: by what, when, and what it cancelled (`stop_report`).
        """
        if before_load:
            self.sink.emit(RunProblem(time.time(), "interrupted", "stopped before the load ran to its end"))
        self.record.stop_signal = signal_name
        self.record.status = RunVerdict.INTERRUPTED.value
        if signal_name is not None:
            by = f"interrupted by {signal_name}"
        else:
            by = "cancelled by the caller" if cancelled else "stopped by the caller (RunControl.request_stop)"
        if cancelled:
            at_once = at_once or "the caller cancelled the run's task"
        self.stopped_by = [self.job.stop_report(by, at_once=at_once)]

    def crashed(self, exc: BaseException) -> None:
        """A bug: keep what was measured, say where the traceback is."""
        if self.sink.log is not None:
            self.sink.log.exception("internal_error")
        self.sink.emit(RunProblem(time.time(), "internal error", f"{type(exc).__name__}: {exc} (see run.log)"))
        self.record.status, self.record.exit_code = RunVerdict.ERROR.value, int(ExitCode.FAIL)

    # ------------------------------------------------------------ the result

    def finish(self, *, notify: bool = True) -> RunSummary:
        """Decide the verdict, write summary.json/.txt, the reports, the history entry; post notifications.

        Nothing here raises for a write that fails: it is listed under `run.problems`.

        Args:
            notify: post to the webhooks now (False: the caller calls `notify` after showing the verdict).
        """
        record, options, writer = self.record, self.options, self.writer
        if self.job.display is not None:
            self.job.display.close()
        stopped = RunVerdict.parse(record.status) if record.status in ("ERROR", "INTERRUPTED") else None
        self.verdicts = [] if stopped is RunVerdict.ERROR else self.job.verdicts()
        result, keys = self.job.summaries(record, self.target, writer, self.verdicts)
        result = replace(
            result,
            keys=result.with_keys("env", "overrides"),
            env=options.applied.env,
            overrides=tuple(options.applied.to_summary()["overrides"]),
        )
        keys.append(("env", options.applied.env))
        baseline, regressed = self._compare_with_baseline(result)
        verdict, code = decide_verdict(
            stopped=stopped,
            error_exit_code=record.exit_code,
            stop_signal=record.stop_signal,
            gates_failed=any(v.fails_run for v in self.verdicts),
            regressed=regressed,
            enforce=options.enforce,
        )
        record.status, record.exit_code = verdict.value, code
        record.ended_at = datetime.now(UTC).isoformat()
        record.duration_s = (
            datetime.fromisoformat(record.ended_at) - datetime.fromisoformat(record.started_at)
        ).total_seconds()
        record.problems = (
            self.stopped_by + writer.write_errors + self.sink.failures + getattr(self.job, "write_errors", [])
        )
        result = replace(result, run=RunInfo.from_json(record.__dict__), verdict=verdict, exit_code=code)
        if baseline is not None:
            result = replace(result, keys=result.with_keys("baseline"), baseline=baseline)
        keys = [(k, verdict.value if k == "slo_status" else v) for k, v in keys]
        result = RunSummary.from_json(self.secrets.scrub_obj(result.to_json()))
        keys = [(k, self.secrets.scrub(v) if isinstance(v, str) else v) for k, v in keys]
        location = history_location(options.history, options.env, writer.root.parent)
        problems = record_run(writer.root, result, location, source="run", env=options.env)  # never a verdict
        if problems:
            result = replace(result, run=replace(result.run, problems=result.run.problems + tuple(problems)))
        for problem in problems:
            self.warn(f"holoload: {problem}")
        try:
            writer.write_summary(result.to_json(), keys)
        except OSError as exc:
            self.warn(f"holoload: could not write summaries to {writer.root}: {exc}")
        for problem in write_reports(writer.root, result):
            self.warn(f"holoload: {problem}")
        self.result = result
        return self.notify() if notify else result

    def notify(self) -> RunSummary:
        """Post the written summary to --notify webhooks; the outcomes join the result (never its verdict)."""
        assert self.result is not None, "finish() first"
        result = self.result
        outcomes = notify_run(self.options.notify, self.writer, self.secrets, say=self.say, log=self.log)
        if outcomes:
            result = replace(result, keys=result.with_keys("notify"), notify=tuple(r.to_dict() for r in outcomes))
        self.log("run_finished", status=result.verdict.value, exit_code=result.exit_code)
        self.result = result
        return result

    def _compare_with_baseline(self, result: RunSummary) -> tuple[dict[str, Any] | None, bool]:
        """With --baseline: (the comparison for summary.json, whether it found a regression)."""
        if self.options.baseline is None:
            return None, False
        check = guard_run(self.options.baseline, self.options.budget, result, self.root)
        self.say(check.text)
        return check.record, check.regressed


def _best_effort(line: Callable[[str], None] | None, text: str) -> None:
    if line is not None:
        try:
            line(text)
        except (Exception, SystemExit):  # noqa: BLE001 - output is best effort
            pass


def _first_leaf(group: BaseExceptionGroup[HololoadError]) -> HololoadError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _wait_ready(target: Target) -> None:
    """Before any load: every node with a health_url must answer /ready (bounded; exit 3 if not)."""
    nodes = [(name, n.health_url) for name, n in zip(target.node_names(), target.nodes, strict=True) if n.health_url]
    if nodes:
        async with aiohttp.ClientSession() as session:
            await wait_ready(nodes, timeout_s=target.ready_timeout, session=session)


def _topology_label(target: Target) -> str:
    if target.topology.source == "holoctl":
        return target.topology.holoctl_target
    return target.topology.source


def _run_logger(fh: TextIO, secrets: Secrets) -> Any:
    def scrub(logger: Any, method: str, event_dict: Any) -> Any:
        return secrets.scrub_obj(event_dict)

    return structlog.wrap_logger(
        structlog.WriteLogger(fh),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub,  # tracebacks too: a secret in an exception message stays hidden
            structlog.processors.JSONRenderer(),
        ],
    )
