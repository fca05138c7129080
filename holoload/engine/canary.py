"""Runs the ingest canary: baseline, batches with snapshots, chaos around them, final count."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg.connect import DISCARD_TIMEOUT_S, describe_error, quote_ident
from holoload.core.errors import HololoadError, SetupError
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
from holoload.core.model.plan import PlannedBatch, plan_batches, rows_after
from holoload.core.model.scenario import ChaosAction, Scenario, fill_template
from holoload.engine.watch import ClusterWatch


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
    watch: ClusterWatch | None = None
    stopping: bool = False
    batches_planned: int | None = None  # None: the batches have not started
    batches_run: int = 0
    _ingest_started: float | None = None
    _stop_at: float | None = None

    @property
    def table(self) -> str:
        return self.scenario.table.name

    async def run(self) -> None:
        """Set up, run every planned batch, take the final count. Cancellation propagates."""
        self._phase("setup", f"preparing table {self.table}")
        await self.surfaces.prepare_table(self.table)
        try:
            counts = await self.surfaces.counts(self.table)
        except DB_ERRORS as exc:
            raise SetupError(f"cannot take the baseline row count: {describe_error(exc)}") from exc
        self.sink.emit(BaselineTaken(self.clock(), sum(counts), tuple(counts)))
        plan = plan_batches(self.scenario, len(self.surfaces.conns))
        self._phase("ingest", f"{len(plan)} batches")
        self.batches_planned, self._ingest_started = len(plan), self.perf()
        for batch in plan:
            if self.stopping:
                break  # asked to stop: no new batch; the final count still runs
            await self._snapshot(f"{batch.snapshot_prefix}_before")
            await self._batch(batch, plan)
            self.batches_run += 1
            await self._snapshot(f"{batch.snapshot_prefix}_after")
            for action in batch.chaos_after:
                await self._chaos(action, batch, plan, trigger=f"after batch {batch.index}")
        self._phase("verify", "final count")
        try:
            counts = await self.surfaces.counts(self.table)
        except (*DB_ERRORS, HololoadError) as exc:  # the final_count gate then fails: "no value"
            self.sink.emit(RunProblem(self.clock(), "final count", str(describe_error(exc))))
            return
        self.sink.emit(FinalCount(self.clock(), sum(counts), tuple(counts)))

    def request_stop(self) -> None:
        """Graceful stop: finish the batch under way, start no other batch or chaos action; the final count runs."""
        self.stopping = True
        if self._stop_at is None:
            self._stop_at = self.perf()

    def stop_report(self, by: str, *, at_once: str | None) -> str:
        """How the stop went, for `run.problems`: when it came and how many batches ran."""
        if self.batches_planned is None or self._ingest_started is None:
            return f"{by} before the batches started"
        at_s = (self.perf() if self._stop_at is None else self._stop_at) - self._ingest_started
        how = f"stopped at once: {at_once}" if at_once else "the batch under way finished"
        return f"{by} at {at_s:.1f}s into the batches; {self.batches_run} of {self.batches_planned} batches ran ({how})"

    def _phase(self, phase: str, detail: str) -> None:
        self.sink.emit(PhaseChanged(self.clock(), phase, detail))

    async def _batch(self, batch: PlannedBatch, plan: list[PlannedBatch]) -> None:
        group, node = batch.group, batch.node
        name = self.surfaces.names[node]
        total = len(plan)

        def finished(elapsed_s: float, delta: int | None, status: str, exc: BaseException | None = None) -> None:
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
            before = await self.surfaces.count_on(node, self.table)  # reconnects a lost work connection
        except (*DB_ERRORS, HololoadError) as exc:
            finished(0.0, None, "error", exc)
            return
        self.sink.emit(BatchStarted(self.clock(), batch.index, total, group.op, group.rows, name, before))
        outcome: list[tuple[float, BaseException | None]] = []
        async with anyio.create_task_group() as tg:
            for action in batch.chaos_during:
                tg.start_soon(self._chaos, action, batch, plan, f"during batch {batch.index}")
            outcome.append(await self._execute(node, group.statement(quote_ident(self.table))))
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
                async with self.surfaces.work(node) as conn:  # cut short: cancelled, rolled back, reopened
                    await conn.execute(statement)
        except DB_ERRORS as exc:
            return self.perf() - started, exc
        return self.perf() - started, None

    async def _chaos(self, action: ChaosAction, batch: PlannedBatch, plan: list[PlannedBatch], trigger: str) -> None:
        if self.stopping:
            return  # a stop said "no new work": no chaos action starts after it
        self.sink.emit(ChaosStarted(self.clock(), action.name, action.action, trigger))
        started = self.perf()
        try:
            # the split or SQL bounds itself by the action's timeout and cleans up; this is a backstop
            with anyio.fail_after(action.timeout + DISCARD_TIMEOUT_S + 5):
                ok, detail, output = await self._act(action, batch, plan)
        except TimeoutError:
            ok, detail, output = False, f"timed out after {action.timeout:g}s", ""
        except DB_ERRORS as exc:
            ok, detail, output = False, str(describe_error(exc)), ""
        except (HololoadError, ValueError) as exc:
            ok, detail, output = False, str(exc), ""
        self.sink.emit(
            ChaosFinished(self.clock(), action.name, action.action, ok, self.perf() - started, detail, output)
        )
        if action.action == "split":
            await self._snapshot(f"{batch.snapshot_prefix}_after_{action.name}")

    async def _act(self, action: ChaosAction, batch: PlannedBatch, plan: list[PlannedBatch]) -> tuple[bool, str, str]:
        if action.action == "split":
            next_rows = rows_after(plan, batch.index) if action.after_batch else batch.group.rows
            outcome = await self.surfaces.split(
                self.table, action.key, action.table_id, next_rows, timeout_s=action.timeout
            )
            return outcome.ok, outcome.detail, outcome.output
        assert action.sql is not None
        sql = fill_template(action.sql, table=quote_ident(self.table))
        status = await self.surfaces.run_sql(batch.node, sql, timeout_s=action.timeout)
        return True, f"{self.surfaces.names[batch.node]}: {status}", status

    async def _snapshot(self, prefix: str) -> None:
        """Topology, then every node's metrics (nodes concurrently); each source fails on its own."""
        if not self.scenario.snapshots.enabled:
            return
        results: dict[str, tuple[bool, str, str | None]] = {}  # file part -> (ok, text, node of metrics)
        with anyio.move_on_after(self.scenario.snapshots.timeout) as scope:
            reading = await self.surfaces.topology_reading(self.table)
            if reading is not None:
                ok = reading.ok
                results["topology"] = (ok, reading.raw if ok else f"ERROR: {reading.error}\n", None)
                if reading.topology is not None and self.watch is not None:
                    self.watch.observe_topology(self.clock(), reading.topology)
            for i, (name, ok, text) in enumerate(await self.surfaces.metrics_snapshots(self.table), start=1):
                results[f"metrics_node{i}"] = (ok, text, name)
        if scope.cancelled_caught:
            self.sink.emit(
                RunProblem(
                    self.clock(),
                    "snapshot",
                    f"{prefix}: not complete after {self.scenario.snapshots.timeout:g}s; kept what arrived",
                )
            )
        for part, (ok, text, node) in results.items():
            ts = self.clock()
            self.sink.emit(SnapshotTaken(ts, f"{prefix}_{part}.txt", "metrics" if node else "topology", ok, text))
            if ok and node is not None and self.watch is not None:  # snapshots are the canary's samples
                self.watch.metrics_text(node, ts, text, None)
            if not ok:
                self.sink.emit(RunProblem(self.clock(), "snapshot", f"{prefix}_{part}: {text.strip()}"))
