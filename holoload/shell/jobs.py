"""The two kinds of run behind one interface: the ingest canary and sustained load."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.local.node_control import NodeControl
from holoload.adapters.pg.staleness import StalenessSampler
from holoload.core.events import EventSink
from holoload.core.gates.language import parse_gate
from holoload.core.gates.verdicts import Verdict, evaluate
from holoload.core.model.replicas import route_to_writable
from holoload.core.model.scenario import Scenario
from holoload.core.model.target import Target
from holoload.core.model.workload import gate_spec
from holoload.core.result import RunSummary
from holoload.core.stats.canary import CanaryAggregator
from holoload.engine.canary import CanaryEngine
from holoload.engine.load import LoadEngine
from holoload.engine.phase_runs import writer_counts
from holoload.engine.result import RunRecord, build_result, canary_result, text_keys
from holoload.engine.run_state import stop_report
from holoload.engine.watch import ClusterWatch
from holoload.shell.artifacts import (
    ArtifactWriter,
    ClientHealthWriter,
    HlogWriter,
    TimeseriesWriter,
    write_histories,
)
from holoload.shell.live import LiveDisplay
from holoload.shell.live_load import LoadDisplay


class Job(Protocol):
    """What the runner needs from a kind of run."""

    sinks: list[EventSink]
    display: LiveDisplay | None  # None: nothing printed (the Python API)
    node_control: NodeControl | None
    file: str

    async def run(self, surfaces: TargetSurfaces, sink: EventSink) -> None: ...

    def verdicts(self) -> list[Verdict]: ...

    def request_stop(self) -> None: ...

    def stop_report(self, by: str, *, at_once: str | None) -> str: ...

    def summaries(
        self, record: RunRecord, target: Target | None, writer: ArtifactWriter, verdicts: list[Verdict]
    ) -> tuple[RunSummary, list[tuple[str, Any]]]: ...

    def close(self) -> None: ...


class CanaryJob:
    """Batches with exact row deltas, a split, snapshots (HoloFusion's ingest canary)."""

    def __init__(self, scenario: Scenario, console: Console | None, *, quiet: bool) -> None:
        self.scenario = scenario
        split_expected = sum(1 for a in scenario.enabled_chaos() if a.action == "split")
        self.agg = CanaryAggregator(scenario.ops, scenario.total_rows, split_expected)
        self.display = None if console is None else LiveDisplay(console, quiet=quiet)
        self.sinks: list[EventSink] = [self.agg, *([self.display] if self.display else [])]
        self.node_control: NodeControl | None = None  # canary chaos needs no node control
        self.engine: CanaryEngine | None = None
        self.file = "scenario"

    async def run(self, surfaces: TargetSurfaces, sink: EventSink) -> None:
        watch = ClusterWatch(surfaces, sink, self.scenario.table.name)
        self.agg.server = watch.view
        self.engine = CanaryEngine(self.scenario, surfaces, sink, watch=watch)
        await self.engine.run()

    def request_stop(self) -> None:
        if self.engine is not None:
            self.engine.request_stop()

    def stop_report(self, by: str, *, at_once: str | None) -> str:
        """`run.problems`' line about the stop (`by`: "interrupted by SIGINT", ...)."""
        return f"{by} before the run started" if self.engine is None else self.engine.stop_report(by, at_once=at_once)

    def verdicts(self) -> list[Verdict]:
        report = {name for name, value in self.scenario.gates.items() if gate_spec(value).no_data == "report"}
        return [
            evaluate(name, parse_gate(text), self.agg, report_no_data=name in report)
            for name, text in self.scenario.active_gates().items()
        ]

    def summaries(
        self, record: RunRecord, target: Target | None, writer: ArtifactWriter, verdicts: list[Verdict]
    ) -> tuple[RunSummary, list[tuple[str, Any]]]:
        writer.write_batch_stats()
        batches = [b.to_dict() for b in writer.batches]
        return (
            canary_result(record, self.scenario, target, self.agg, verdicts, batches),
            text_keys(record, self.scenario, self.agg, verdicts),
        )

    def close(self) -> None:
        if self.display is not None:
            self.display.close()


class LoadJob:
    """Phases of open- and closed-loop workloads with live gates."""

    def __init__(self, scenario: Scenario, console: Console | None, root: Path, *, quiet: bool) -> None:
        self.scenario = scenario
        self.root = root
        self.engine: LoadEngine | None = None
        self.node_control: NodeControl | None = None
        self.server_names: dict[str, str] = {}  # host:port -> node name (the embedded cluster)
        self.staleness: StalenessSampler | None = None  # a replicated embedded cluster's standbys
        self.file = "scenario"
        self.ray_address: str | None = None
        self.timeseries = TimeseriesWriter(root / "timeseries.csv")
        self.hlog = HlogWriter(root / "latency.hlog")
        self.client_health = ClientHealthWriter(root / "client_health.csv")
        self.display: LiveDisplay | None = None if console is None else LoadDisplay(console, scenario, quiet=quiet)
        self.history_errors: list[str] = []
        self.sinks: list[EventSink] = [self.timeseries, self.hlog, self.client_health]
        if self.display is not None:
            self.sinks.append(self.display)

    async def run(self, surfaces: TargetSurfaces, sink: EventSink) -> None:
        # a standby refuses writes: workloads that name no endpoints go to the writable ones
        self.scenario = route_to_writable(self.scenario, surfaces.names, surfaces.target.writable())
        workers = resolve_workers(self.scenario, surfaces.names)
        ray = None
        if self.ray_address is not None:
            from holoload.adapters.workers.ray_actors import RayCluster
            from holoload.engine.worker import WorkerEngine

            ray = RayCluster(self.ray_address, WorkerEngine)
            ray.connect()
        try:
            self.engine = LoadEngine(
                self.scenario,
                surfaces,
                sink,
                node_control=self.node_control,
                server_names=self.server_names,
                staleness=self.staleness,
                file=self.file,
                workers=workers,
                launcher=None if ray is None else ray.launcher,
            )
            await self.engine.run()
        finally:
            if ray is not None:
                ray.close()

    def verdicts(self) -> list[Verdict]:
        return [] if self.engine is None else self.engine.verdicts()

    def request_stop(self) -> None:
        if self.engine is not None:
            self.engine.request_stop()

    def stop_report(self, by: str, *, at_once: str | None) -> str:
        """`run.problems`' line about the stop: when it came and what it cancelled."""
        if self.engine is None:
            return stop_report(by, at_s=None, cut_short=None, drain_s=0.0, at_once=at_once)
        return self.engine.stop_report(by, at_once=at_once)

    def summaries(
        self, record: RunRecord, target: Target | None, writer: ArtifactWriter, verdicts: list[Verdict]
    ) -> tuple[RunSummary, list[tuple[str, Any]]]:
        if self.engine is not None:
            if self.engine.isolation is not None:
                self.history_errors = write_histories(self.root, self.engine.isolation.histories)
            return self.engine.result(record, target, verdicts)
        return build_result(record, self.scenario, target, None, verdicts)  # stopped before the engine existed

    @property
    def write_errors(self) -> list[str]:
        return (
            self.timeseries.write_errors
            + self.hlog.write_errors
            + self.client_health.write_errors
            + self.history_errors
        )

    def close(self) -> None:
        self.timeseries.close()
        self.hlog.close()
        self.client_health.close()
        if self.display is not None:
            self.display.close()


#: `--workers auto` runs in one process on machines with this many CPUs or fewer: measured on
#: 2 CPUs, worker processes lost to one process on open-loop lag and closed-loop throughput in
#: most back-to-back runs, and always cost more CPU per op (docs/performance.md).
AUTO_ONE_PROCESS_CPUS = 2


def resolve_workers(scenario: Scenario, names: Sequence[str], cpus: int | None = None) -> int:
    """`run.workers` as a count. 'auto' is one per CPU, but never more than the connections of
    the busiest phase (a worker with no connection would only cost its start-up), and one
    process on machines with `AUTO_ONE_PROCESS_CPUS` CPUs or fewer (the server shares them)."""
    setting = scenario.run.workers
    if setting != "auto":
        return int(setting)
    cpus = cpus or os.cpu_count() or 1
    if cpus <= AUTO_ONE_PROCESS_CPUS:
        return 1
    busiest = max(
        (sum(sum(writer_counts(w, names)) for w in phase.workloads) for phase in scenario.phases),
        default=1,
    )
    return max(1, min(cpus, busiest))


def make_job(scenario: Scenario, console: Console | None, root: Path, *, quiet: bool) -> CanaryJob | LoadJob:
    """The job for the scenario's kind; `console` None: no live display (nothing printed)."""
    if scenario.is_canary:
        return CanaryJob(scenario, console, quiet=quiet)
    return LoadJob(scenario, console, root, quiet=quiet)
