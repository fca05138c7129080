"""Runs the ingest canary: baseline, batches with snapshots, chaos around them, final count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import asyncpg

from holoload.adapters.pg import describe_error
from holoload.adapters.surfaces import TargetSurfaces
from holoload.core.errors import HololoadError
from holoload.core.events import (
    BaselineTaken,
    BatchFinished,
    BatchStarted,
    ChaosFinished,
    ChaosStarted,
    EventSink,
    FinalCount,
    PhaseChanged,
    RunProblem,
    SnapshotTaken,
)
from holoload.core.plan import PlannedBatch, plan_batches, rows_after
from holoload.core.scenario import ChaosAction, Scenario

#: Errors a statement may raise that the canary records instead of crashing on.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass
class CanaryEngine:
    """Drives one canary run; every observation leaves as an event through `sink`.

    Args:
        scenario: what to run.
        surfaces: an opened TargetSurfaces for the target.
        sink: where events go (aggregator, display, artifacts).
        clock: wall-clock seconds for event timestamps.
        perf: monotonic seconds for latencies.
    """

    scenario: Scenario
    surfaces: TargetSurfaces
    sink: EventSink
    clock: Callable[[], float] = time.time
    perf: Callable[[], float] = time.perf_counter

    @property
    def table(self) -> str:
        return self.scenario.table.name

    async def run(self) -> None:
        """Set up, run every planned batch, take the final count. Cancellation propagates."""
        self._phase("setup", f"preparing table {self.table}")
        await self.surfaces.prepare_table(self.table)
        counts = await self.surfaces.counts(self.table)
        self.sink.emit(BaselineTaken(self.clock(), sum(counts), tuple(counts)))
        plan = plan_batches(self.scenario, len(self.surfaces.conns))
        self._phase("ingest", f"{len(plan)} batches")
        for batch in plan:
            await self._snapshot(f"{batch.snapshot_prefix}_before")
            await self._batch(batch, plan)
            await self._snapshot(f"{batch.snapshot_prefix}_after")
            for action in batch.chaos_after:
                await self._chaos(action, batch, plan, trigger=f"after batch {batch.index}")
        self._phase("verify", "final count")
        counts = await self.surfaces.counts(self.table)
        self.sink.emit(FinalCount(self.clock(), sum(counts), tuple(counts)))

    def _phase(self, phase: str, detail: str) -> None:
        self.sink.emit(PhaseChanged(self.clock(), phase, detail))

    async def _batch(self, batch: PlannedBatch, plan: list[PlannedBatch]) -> None:
        group, node = batch.group, batch.node
        name = self.surfaces.names[node]
        total = len(plan)

        def finished(
            elapsed_s: float, delta: int | None, status: str, exc: BaseException | None = None
        ) -> None:
            err = describe_error(exc) if exc is not None else None
            self.sink.emit(
                BatchFinished(
                    self.clock(),
                    batch.index,
                    total,
                    group.op,
                    group.label,
                    group.rows,
                    name,
                    elapsed_s,
                    delta,
                    status,
                    str(err) if err else None,
                    err.error_class.value if err else None,
                )
            )

        try:
            await self.surfaces.ensure_connected(node)
            before = await self.surfaces.count_on(node, self.table)
        except (*DB_ERRORS, HololoadError) as exc:
            finished(0.0, None, "error", exc)
            return
        self.sink.emit(BatchStarted(self.clock(), batch.index, total, group.op, group.rows, name, before))
        outcome: list[tuple[float, BaseException | None]] = []
        async with anyio.create_task_group() as tg:
            for action in batch.chaos_during:
                tg.start_soon(self._chaos, action, batch, plan, f"during batch {batch.index}")
            outcome.append(await self._execute(node, group.statement(self.table)))
        elapsed_s, error = outcome[0]
        if error is not None:
            finished(elapsed_s, None, "error", error)
            return
        try:
            after = await self.surfaces.count_on(node, self.table)
        except DB_ERRORS as exc:
            finished(elapsed_s, None, "error", exc)
            return
        delta = after - before
        finished(elapsed_s, delta, "ok" if delta == group.rows else "delta_mismatch")

    async def _execute(self, node: int, statement: str) -> tuple[float, BaseException | None]:
        """Run one batch statement; returns (elapsed seconds, the error if it failed)."""
        started = self.perf()
        try:
            with anyio.fail_after(self.scenario.run.statement_timeout + 30):
                await self.surfaces.conns[node].execute(statement)
        except DB_ERRORS as exc:
            return self.perf() - started, exc
        return self.perf() - started, None

    async def _chaos(
        self, action: ChaosAction, batch: PlannedBatch, plan: list[PlannedBatch], trigger: str
    ) -> None:
        self.sink.emit(ChaosStarted(self.clock(), action.name, action.action, trigger))
        started = self.perf()
        try:
            with anyio.fail_after(action.timeout):
                ok, detail, output = await self._act(action, batch, plan)
        except TimeoutError:
            ok, detail, output = False, f"timed out after {action.timeout:g}s", ""
        except DB_ERRORS as exc:
            ok, detail, output = False, str(describe_error(exc)), ""
        except HololoadError as exc:
            ok, detail, output = False, str(exc), ""
        self.sink.emit(
            ChaosFinished(self.clock(), action.name, action.action, ok, self.perf() - started, detail, output)
        )
        if action.action == "split":
            await self._snapshot(f"{batch.snapshot_prefix}_after_{action.name}")

    async def _act(
        self, action: ChaosAction, batch: PlannedBatch, plan: list[PlannedBatch]
    ) -> tuple[bool, str, str]:
        if action.action == "split":
            next_rows = rows_after(plan, batch.index) if action.after_batch else batch.group.rows
            outcome = await self.surfaces.split(self.table, action.key, action.table_id, next_rows)
            return outcome.ok, outcome.detail, outcome.output
        assert action.sql is not None
        status = await self.surfaces.run_sql(batch.node, action.sql.format(table=self.table))
        return True, f"{self.surfaces.names[batch.node]}: {status}", status

    async def _snapshot(self, prefix: str) -> None:
        if not self.scenario.snapshots.enabled:
            return
        try:
            with anyio.fail_after(self.scenario.snapshots.timeout):
                topo = await self.surfaces.topology_snapshot(self.table)
                metrics = await self.surfaces.metrics_snapshots(self.table)
        except TimeoutError:
            self.sink.emit(RunProblem(self.clock(), "snapshot", f"{prefix}: timed out"))
            return
        if topo is not None:
            ok, text = topo
            self.sink.emit(SnapshotTaken(self.clock(), f"{prefix}_topology.txt", "topology", ok, text))
        for i, (_, ok, text) in enumerate(metrics, start=1):
            self.sink.emit(SnapshotTaken(self.clock(), f"{prefix}_metrics_node{i}.txt", "metrics", ok, text))
