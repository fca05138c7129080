"""Composition root for `holoload run`: wires cluster, surfaces, engine, sinks; returns an exit code."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any

import aiohttp
import anyio
import anyio.abc
import structlog
from rich.console import Console

from holoload.adapters.cluster import LocalCluster
from holoload.adapters.node_control import CommandNodeControl, LocalNodeControl
from holoload.adapters.pg import redact
from holoload.adapters.samplers import wait_ready
from holoload.adapters.surfaces import TargetSurfaces
from holoload.core.compare import Budget, RunFigures
from holoload.core.errors import ExitCode, HololoadError, InputError
from holoload.core.events import Event, EventSink, RunProblem, RunStarted, WindowClosed
from holoload.core.profiles import AppliedBudget
from holoload.core.scenario import Scenario, dump
from holoload.core.secrets import Secrets
from holoload.core.target import Target, local_target
from holoload.core.verdicts import Verdict
from holoload.shell.artifacts import ArtifactWriter, results_dir_for
from holoload.shell.baseline_guard import guard_run
from holoload.shell.history_record import capture_context, history_location, record_run
from holoload.shell.jobs import Job, LoadJob, make_job
from holoload.shell.notify import notify_run
from holoload.shell.outputs import write_reports
from holoload.shell.prom_exporter import MetricsExporter
from holoload.shell.replicated_run import start_replicated
from holoload.shell.summary import RunRecord


@dataclass
class RunOptions:
    """What the command line decided, already validated."""

    scenario: Scenario
    target: Target | None
    target_label: str
    local_nodes: int = 3
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


def run(options: RunOptions, console: Console) -> int:
    """Run a scenario end to end; every outcome, even a crash of the target, leaves artifacts.

    Raises:
        InputError: the results directory cannot be created (nothing was started).
    """
    scenario = options.scenario
    started = datetime.now(UTC)
    base = options.results_base or scenario.run.results_dir
    secrets = secrets_of(options)
    try:
        root = results_dir_for(base, scenario.name, started)
        writer = ArtifactWriter(root).open()
        writer.write_json("scenario.json", secrets.scrub_obj(dump(scenario)))  # proves the disk takes writes
        log_file = (root / "run.log").open("a")
    except OSError as exc:
        raise InputError(f"cannot create a results directory under {base}: {exc}") from exc
    capture_context(root, options.scenario_file, options.env)  # git, host, load: for the run history
    job = make_job(scenario, console, root, quiet=options.quiet)
    if isinstance(job, LoadJob):
        job.ray_address = options.ray_address
    job.file = options.scenario_file
    record = RunRecord(
        run_id=f"{scenario.name}-{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        started_at=started.isoformat(),
        results_dir=str(root),
        pg_url="",
        topology_target="",
        enforce=options.enforce,
    )
    log = _run_logger(log_file, secrets)
    exporter = None
    if options.serve_metrics is not None:
        try:
            exporter = MetricsExporter(*options.serve_metrics)
        except InputError:
            log_file.close()
            writer.close()
            raise
    sink = Fanout([*job.sinks, writer, *([exporter] if exporter else [])], log, secrets)
    with _sigterm_interrupts() as received, ExitStack() as stack:
        stack.callback(log_file.close)
        stack.callback(writer.close)
        stack.callback(job.close)
        if exporter is not None:
            stack.callback(exporter.close)
        _say(
            console,
            f"holoload · scenario [bold]{scenario.name}[/bold] · target {options.target_label} · results {root}",
        )
        _say(console, f"budget: {secrets.scrub(options.applied.describe())}", markup=False)
        _log(sink, "budget", **options.applied.to_summary())
        target = options.target
        stopped_by: list[str] = []
        try:
            if target is None:
                target = _start_local(options, stack, console, sink, job)
            elif target.control:
                job.node_control = CommandNodeControl(target.control, target.node_names(), options.env)
            record.pg_url = ",".join(redact(n.dsn) for n in target.nodes)
            record.topology_target = _topology_label(target)
            interrupted = anyio.run(
                _drive,
                record.run_id,
                job,
                scenario,
                target,
                sink,
                options.env,
                backend="asyncio",
                backend_options=_loop_options(),
            )
            record.stop_signal = interrupted
            record.status = "INTERRUPTED" if interrupted else "RUNNING"
        except HololoadError as exc:
            sink.emit(RunProblem(time.time(), type(exc).__name__, str(exc)))
            record.status, record.exit_code = "ERROR", int(exc.exit_code)
            stopped_by = [f"{type(exc).__name__}: {exc}"]  # summary.md, junit.xml and report.html list it
        except KeyboardInterrupt:  # Ctrl-C/SIGTERM outside the engine (e.g. while the cluster starts)
            record.stop_signal = received[0] if received else "SIGINT"
            sink.emit(RunProblem(time.time(), "interrupted", "stopped before the load ran to its end"))
            record.status = "INTERRUPTED"
        except Exception as exc:  # a bug: keep what was measured, say where the traceback is
            if sink.log is not None:
                sink.log.exception("internal_error")
            sink.emit(RunProblem(time.time(), "internal error", f"{type(exc).__name__}: {exc} (see run.log)"))
            record.status, record.exit_code = "ERROR", int(ExitCode.FAIL)
        job.display.close()
        verdicts = [] if record.status == "ERROR" else job.verdicts()
        code = _finish(record, verdicts, options.enforce)
        record.problems = stopped_by + writer.write_errors + sink.failures + getattr(job, "write_errors", [])
        code = _write_summaries(job, writer, record, target, verdicts, options, console, secrets)
        try:
            job.display.verdicts(verdicts, record.status, options.enforce, code, str(root))
        except (Exception, SystemExit):  # noqa: BLE001 - the terminal is gone; the summaries hold the verdict
            pass
        notify_run(options.notify, writer, secrets, say=partial(_say, console, markup=False), log=partial(_log, sink))
        _log(sink, "run_finished", status=record.status, exit_code=code)
        return code


@contextmanager
def _sigterm_interrupts() -> Iterator[list[str]]:
    """SIGTERM outside the engine behaves like Ctrl-C, so cleanup and summaries still happen.

    Yields the names of the signals that raised KeyboardInterrupt this way (for the exit code).
    """
    received: list[str] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append("SIGTERM")
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(console: Console, text: str, *, markup: bool = True) -> None:
    try:
        console.print(text, highlight=False, markup=markup)
    except (Exception, SystemExit):  # noqa: BLE001 - output is best effort
        pass


def _log(sink: Fanout, event: str, **fields: Any) -> None:
    """Write to run.log unless it has failed (a full disk is recorded once, not raised again)."""
    if sink.log is None:
        return
    try:
        sink.log.info(event, **fields)
    except OSError as exc:
        sink.log = None
        sink.failures.append(f"run.log stopped: {exc}")


def _start_local(options: RunOptions, stack: ExitStack, console: Console, sink: Fanout, job: Job) -> Target:
    """Start the embedded cluster; it is stopped when the run ends, whatever happens."""
    if options.scenario.cluster.replication != "none":
        return start_replicated(
            options.scenario,
            options.local_nodes,
            stack,
            job,
            say=lambda text: _say(console, text),
            log=lambda event, **fields: _log(sink, event, **fields),
            on_stop=lambda cluster: _stop_cluster(cluster, console, sink),
        )
    cluster = LocalCluster(options.local_nodes, log=lambda line: _log(sink, "cluster", detail=line))
    stack.callback(_stop_cluster, cluster, console, sink)
    server = cluster.binaries.describe()
    _log(sink, "cluster_binaries", server=server)
    _say(console, f"starting embedded PostgreSQL cluster ({options.local_nodes} nodes on 127.0.0.1, {server})...")
    nodes = cluster.start()
    _log(sink, "cluster_started", nodes=[n.dsn for n in nodes])
    target = local_target([n.dsn for n in nodes])
    job.node_control = LocalNodeControl(cluster, target.node_names())
    return target


def _stop_cluster(cluster: LocalCluster, console: Console, sink: Fanout) -> None:
    cluster.stop()
    _log(sink, "cluster_stopped")
    _say(console, "embedded cluster stopped and removed")


async def _drive(
    run_id: str, job: Job, scenario: Scenario, target: Target, sink: EventSink, env: dict[str, str]
) -> str | None:
    """Run the engine under a signal watcher; returns the signal's name when SIGINT/SIGTERM stopped it.

    The first signal stops gracefully: no new work, in-flight operations drain for up to
    `run.stop_grace`, faults heal and the checker runs. A second signal (or the grace running
    out) stops at once; what was measured is kept either way.
    """
    stopped: str | None = None
    running = False
    failure: HololoadError | None = None
    grace = scenario.run.stop_grace
    async with anyio.create_task_group() as tg:
        engine_scope = anyio.CancelScope()

        def at_once(why: str) -> None:
            sink.emit(RunProblem(time.time(), "interrupted", why))
            engine_scope.cancel()

        async def grace_deadline() -> None:
            await anyio.sleep(grace)
            at_once(f"still running {grace:g}s after the stop request: stopping at once, keeping what was measured")

        async def watch_signals(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            nonlocal stopped
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if stopped is not None or not running:
                        stopped = stopped or name
                        at_once(f"{name}: stopping at once, keeping what was measured")
                        return
                    stopped = name
                    sink.emit(
                        RunProblem(
                            time.time(),
                            "interrupted",
                            f"{name}: no new work; in-flight operations drain (up to {grace:g}s), faults heal "
                            "and the checker runs; send it again to stop at once",
                        )
                    )
                    job.request_stop()
                    tg.start_soon(grace_deadline)

        await tg.start(watch_signals)
        sink.emit(RunStarted(time.time(), run_id, scenario.name, target.name, tuple(target.node_names())))
        with engine_scope:
            try:
                await _wait_ready(target)
                async with TargetSurfaces(
                    target,
                    connect_timeout_s=scenario.run.connect_timeout,
                    statement_timeout_s=scenario.run.statement_timeout,
                    control_timeout_s=scenario.run.control_timeout,
                    env=env,
                ) as surfaces:
                    running = True
                    await job.run(surfaces, sink)
            except HololoadError as exc:  # raised out of the task group, it would come wrapped
                failure = exc
            except BaseExceptionGroup as group:  # an engine's own task group wraps what it raises
                ours, rest = group.split(HololoadError)
                if rest is not None or ours is None:
                    raise
                failure = _first_leaf(ours)
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return stopped


def _first_leaf(group: BaseExceptionGroup[HololoadError]) -> HololoadError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _wait_ready(target: Target) -> None:
    """Before any load: every node with a health_url must answer /ready (bounded; exit 3 if not)."""
    nodes = [(name, n.health_url) for name, n in zip(target.node_names(), target.nodes, strict=True) if n.health_url]
    if nodes:
        async with aiohttp.ClientSession() as session:
            await wait_ready(nodes, timeout_s=target.ready_timeout, session=session)


def _loop_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return {}
    return {"use_uvloop": True}


def _finish(record: RunRecord, verdicts: list[Verdict], enforce: bool) -> int:
    """Decide the verdict and exit code (the one place they are decided)."""
    if record.status == "ERROR":
        assert record.exit_code is not None
        code = record.exit_code
    elif record.status == "INTERRUPTED":  # 128 + the signal, as shells report it
        code = int(ExitCode.TERMINATED if record.stop_signal == "SIGTERM" else ExitCode.INTERRUPTED)
    else:
        record.status = "FAIL" if any(v.fails_run for v in verdicts) else "PASS"  # "no data" never fails
        code = int(ExitCode.PASS if record.status == "PASS" or not enforce else ExitCode.FAIL)
    record.exit_code = code
    record.ended_at = datetime.now(UTC).isoformat()
    record.duration_s = (
        datetime.fromisoformat(record.ended_at) - datetime.fromisoformat(record.started_at)
    ).total_seconds()
    return code


def _write_summaries(
    job: Job,
    writer: ArtifactWriter,
    record: RunRecord,
    target: Target | None,
    verdicts: list[Verdict],
    options: RunOptions,
    console: Console,
    secrets: Secrets,
) -> int:
    """Write summary.json/.txt and the reports; a baseline regression turns PASS into FAIL.

    Returns:
        The run's exit code (changed only by the baseline guard).
    """
    assert record.exit_code is not None
    data, keys = job.summaries(record, target, writer, verdicts)
    data.update(options.applied.to_summary())  # which budget applied: "env" and "overrides"
    keys.append(("env", options.applied.env))
    if options.baseline is not None:
        keys = guard_run(options.baseline, options.budget, data, keys, record, lambda t: _say(console, t, markup=False))
    data = secrets.scrub_obj(data)
    keys = [(k, secrets.scrub(v) if isinstance(v, str) else v) for k, v in keys]
    location = history_location(options.history, options.env, writer.root.parent)
    for problem in record_run(writer.root, data, location, source="run", env=options.env):  # never a verdict
        data["run"]["problems"].append(problem)
        print(f"holoload: {problem}", file=sys.stderr)
    try:
        writer.write_summary(data, keys)
    except OSError as exc:
        print(f"holoload: could not write summaries to {writer.root}: {exc}", file=sys.stderr)
    for problem in write_reports(writer.root, data):
        print(f"holoload: {problem}", file=sys.stderr)
    return record.exit_code


def _topology_label(target: Target) -> str:
    if target.topology.source == "holoctl":
        return target.topology.holoctl_target
    return target.topology.source


def _run_logger(fh: IO[str], secrets: Secrets) -> Any:
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
