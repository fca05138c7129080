"""Watches the cluster during a run: metrics, health and topology, on the run's timeline.

Samples go to a MetricsStore and topology series (read by server-side gates through a
ServerView) and leave as events: `MetricsSampled` (to metrics.csv), `TopologyChanged` (to
topology.jsonl and events.jsonl) and `HealthChanged`. A sampler failure is an outcome, never
an exception: the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import anyio

from holoload.adapters.holofusion.samplers import HealthObservation, HealthSampler, MetricsSampler
from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg import localpg
from holoload.core.events import EventSink, HealthChanged, MetricsSampled, RunProblem, TopologyChanged
from holoload.core.server.metrics import parse_metrics, rows
from holoload.core.server.metrics_store import MetricsStore
from holoload.core.server.view import ServerView, TopologySeries
from holoload.core.topology.diff import diff, summary
from holoload.core.topology.model import Topology

#: (label, how, series) shown live when sampled: HoloFusion names first, then PostgreSQL's.
SIGNALS = (
    ("conflicts", "delta", "tx_conflict_count"),
    ("conflicts", "delta", "pg_database_conflicts"),
    ("deadlocks", "delta", "pg_database_deadlocks"),
    ("admission rejects", "delta", "admission_reject_count"),
    ("timeouts", "delta", "statement_timeout_count"),
    ("shards", "last", "topology.shards"),
)


class ClusterWatch:
    """Owns the run's server-side observations.

    Args:
        surfaces: the opened target surfaces.
        sink: where events go.
        table: the table whose SQL metrics a plain PostgreSQL node reports.
        clock: wall clock for timestamps.
    """

    def __init__(
        self, surfaces: TargetSurfaces, sink: EventSink, table: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.surfaces = surfaces
        self.sink = sink
        self.table = table
        self.clock = clock
        self.metrics = MetricsStore()
        self.topology = TopologySeries()
        self.view = ServerView(self.metrics, self.topology, surfaces.names)
        self.last_topology: Topology | None = None
        self.health: dict[str, str] = {}

    def metrics_text(self, node: str, ts: float, text: str | None, error: str | None) -> None:
        """A metrics body (or the error fetching it) from one node."""
        if text is None:
            self.sink.emit(MetricsSampled(ts, node, False, (), error or "no body"))
            return
        try:
            samples = parse_metrics(text)
        except ValueError as exc:
            self.sink.emit(MetricsSampled(ts, node, False, (), f"unparseable metrics: {exc}"))
            return
        self.metrics.observe(node, ts, samples)
        self.sink.emit(MetricsSampled(ts, node, True, tuple(rows(node, ts, samples)), None))

    def observe_topology(self, ts: float, topology: Topology) -> None:
        self.topology.observe(ts, summary(topology))
        changes = diff(self.last_topology, topology)
        self.last_topology = topology
        if changes:
            self.sink.emit(TopologyChanged(ts, tuple(c.to_dict() for c in changes), summary(topology)))

    def health_observation(self, obs: HealthObservation) -> None:
        state = obs.describe()
        if self.health.get(obs.node) != state:
            self.health[obs.node] = state
            self.sink.emit(HealthChanged(obs.ts, obs.node, obs.ready, obs.state, state))

    def signals(self) -> dict[str, float]:
        """A few key server signals for the live view (those the cluster reports)."""
        out: dict[str, float] = {}
        for label, how, name in SIGNALS:
            value = self.view.value(how, name)
            if value is not None and label not in out:
                out[label] = value
        if self.health:
            ready = sum(1 for state in self.health.values() if "ready=True" in state)
            out["ready nodes"] = float(ready)
        return out

    async def run(self, *, metrics_interval_s: float, topology_interval_s: float) -> None:
        """Poll every source until cancelled (load runs; the canary samples around batches)."""
        target = self.surfaces.target
        async with aiohttp.ClientSession() as session, anyio.create_task_group() as tg:
            for i, node in enumerate(target.nodes):
                name = self.surfaces.names[i]
                if node.metrics_url:
                    sampler = MetricsSampler(
                        name,
                        node.metrics_url,
                        interval_s=metrics_interval_s,
                        session=session,
                        on_sample=self.metrics_text,
                        clock=self.clock,
                    )
                    tg.start_soon(sampler.run)
                elif i in self.surfaces.data_nodes():
                    tg.start_soon(self._sql_metrics, i, metrics_interval_s)
                if node.health_url:
                    health = HealthSampler(
                        name,
                        node.health_url,
                        interval_s=metrics_interval_s,
                        session=session,
                        on_observation=self.health_observation,
                        clock=self.clock,
                    )
                    tg.start_soon(health.run)
            if target.topology.source != "none":
                tg.start_soon(self._topology, topology_interval_s)

    async def _sql_metrics(self, node: int, interval_s: float) -> None:
        name = self.surfaces.names[node]
        while True:
            ts = self.clock()
            try:
                with anyio.fail_after(self.surfaces.control_timeout_s):
                    async with self.surfaces.session(node, "metrics") as conn:
                        text = await localpg.metrics_text(conn, self.table)
                self.metrics_text(name, ts, text, None)
            except (*DB_ERRORS, Exception) as exc:  # noqa: BLE001 - a sampler never ends the run
                self.metrics_text(name, ts, None, str(exc))
            await anyio.sleep(interval_s)

    async def _topology(self, interval_s: float) -> None:
        last_error = None
        while True:
            reading = await self.surfaces.topology_reading(self.table)
            if reading is not None and reading.topology is not None:
                self.observe_topology(self.clock(), reading.topology)
                last_error = None
            elif reading is not None and reading.error != last_error:  # say it once, not every poll
                last_error = reading.error
                self.sink.emit(RunProblem(self.clock(), "topology", str(reading.error)))
            await anyio.sleep(interval_s)
