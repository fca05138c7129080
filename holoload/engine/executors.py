"""Executors: drive one workload's writers closed-loop (concurrency) or open-loop (rate).

When a phase's time is up (or a stop is asked) no new operation or retry starts; those in
flight get `drain_s` to finish, then are cancelled: each is counted as a timeout, its ids are
recorded in doubt, and its writer's connection is discarded (statement cancelled, backend gone).
Arrivals still queued then are counted as drops.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

import anyio

from holoload.adapters.holofusion.surfaces import DB_ERRORS
from holoload.adapters.pg.connect import StatementError, describe_error
from holoload.adapters.pg.pool import Writer
from holoload.core.ledger.book import WriteOutcome, outcome_of
from holoload.core.model.workload import Workload
from holoload.core.outcome import ErrorClass
from holoload.core.pacing.generators import SeqAllocator
from holoload.core.pacing.schedule import (
    ArrivalSchedule,
    ConcurrencySchedule,
    Stage,
    WeightedCycle,
    release_wait_ns,
    split_weighted,
)
from holoload.core.stats.client_health import LATE_DROP_MS
from holoload.core.stats.window import OpKey, OpRecorder
from holoload.engine.handoff import Handoff
from holoload.engine.operations import CompiledOp
from holoload.engine.phase_end import drain_guard
from holoload.engine.workload_run import WorkloadPlan, WorkloadRun

UNIQUE_VIOLATION = "23505"

NS_PER_S = 1_000_000_000
LATE_DROP_NS = int(LATE_DROP_MS * 1_000_000)
TICK_NS = 1_000_000  # the event loop's timer granularity (libuv: whole milliseconds)
NO_IDS: list[tuple[int, int]] = []  # an op without a ledger: never written to


class WriterLoop:
    """One writer's compiled ops, op mix and recorders; runs attempts with retries."""

    def __init__(self, run: WorkloadRun, writer: Writer, seed: int) -> None:
        plan = self.plan = run.plan
        self.run = run
        self.writer = writer
        self.perf_ns = plan.perf_ns
        self.policy = plan.workload.retry
        rng = random.Random(seed)
        ops = plan.workload.ops
        self.ops = [
            CompiledOp(
                op,
                rng,
                _allocator(plan, op.params),
                plan.op_timeout_s,
                None if plan.ledgers is None or op.ledger is None else plan.ledgers.ledger(op.ledger, writer.endpoint),
            )
            for op in ops
        ]
        self.pulse = plan.pulses[writer.endpoint] if writer.endpoint < len(plan.pulses) else None
        self.mix = WeightedCycle([op.weight for op in ops])
        self.single = len(ops) == 1
        now = self.perf_ns()
        self.recorders: list[OpRecorder] = [
            plan.aggregator.recorder(OpKey(plan.phase, plan.workload.name, op.name, writer.name), now) for op in ops
        ]
        self.rng = rng

    async def execute(self, intended_ns: int | None = None, *, open_loop: bool = False) -> None:
        """One operation, retried per the workload's policy.

        Latency counts from `intended_ns` (open loop), else from the first attempt's send.
        Open loop: the schedule lag (start - intended) is recorded; an operation that starts
        early (timer granularity) counts from its actual start, so latency is never understated.
        Service time (from the last attempt's send) is recorded where it can differ from the
        latency: open loop, or when retries are on.

        A ledger op's ids are recorded acknowledged, failed or in doubt, and a retry reuses
        them. An in-doubt write is retried only when the id column is unique; a 23505 on such
        a retry proves the earlier attempt applied (recovered).
        """
        i = 0 if self.single else self.mix.next()
        op, rec = self.ops[i], self.recorders[i]
        perf_ns = self.perf_ns
        if open_loop and intended_ns is not None:
            started = perf_ns()
            rec.schedule_lag(intended_ns, started)
            intended_ns = min(intended_ns, started)  # an early start counts from when it really began
        run = self.run
        run.completed += 1
        run.budget.operations += 1
        service = open_loop or self.policy.max_attempts > 1
        ledger = op.ledger
        ids = op.draw() if ledger is not None else NO_IDS
        send = op.run if ledger is None else op.replay
        attempt, doubted = 1, False
        while True:
            writer = self.writer
            if writer.broken() and not await writer.ensure(time.monotonic() + 1.0):
                self._unconnected(rec, writer)
                if ledger is not None:
                    ledger.record_write(outcome_of(None, sent=False), ids)  # never sent: nothing applied
                return
            sent_ns = perf_ns()
            if intended_ns is None:
                intended_ns = sent_ns
            try:
                rows = await send(writer)
            except anyio.get_cancelled_exc_class():
                if ledger is not None:
                    ledger.record_write(WriteOutcome.IN_DOUBT, ids)  # sent, never answered
                await self._cut_short(rec, writer)
                raise
            except DB_ERRORS as exc:
                error = describe_error(exc, self.plan.rules)
                retry_ok = True
                if ledger is not None:
                    if doubted and error.sqlstate == UNIQUE_VIOLATION:
                        for start, end in ids:  # the earlier, in-doubt attempt had applied
                            ledger.duplicate_proof(start, end)
                        self._succeeded(rec, intended_ns, sent_ns, op.rows, service)
                        return
                    outcome = outcome_of(error.sqlstate, sent=True)
                    ledger.record_write(outcome, ids)
                    doubted = doubted or outcome is WriteOutcome.IN_DOUBT
                    retry_ok = outcome is WriteOutcome.FAILED or op.unique_ids  # never blindly re-run a write in doubt
                if not await self._failed(rec, writer, error, attempt, retry_ok=retry_ok):
                    return
                attempt += 1
                continue
            if ledger is not None:
                ledger.record_write(WriteOutcome.ACKNOWLEDGED, ids)
                if self.plan.acks is not None:
                    self.plan.acks.note(ids, writer.server, perf_ns())
            self._succeeded(rec, intended_ns, sent_ns, rows, service)
            return

    def _note(self, rec: OpRecorder, error: StatementError) -> None:
        """Count a failed attempt by class, and keep its message (the first few distinct ones) for people."""
        rec.failure(error.error_class)
        key = rec.key
        self.plan.aggregator.errors.note(
            (key.workload, key.op, key.endpoint),
            error.sqlstate,
            error.error_class.value,
            error.message,
            self.perf_ns(),
        )

    def _unconnected(self, rec: OpRecorder, writer: Writer) -> None:
        """An operation that found no connection and could not get one back within a second."""
        last = writer.last_error
        why = "did not finish within 1s" if last is None else f"failed: {last.message}"
        sqlstate = None if last is None else last.sqlstate
        self._note(rec, StatementError(ErrorClass.CONNECTION, sqlstate, f"reconnect to {writer.name} {why}"))

    async def _failed(
        self, rec: OpRecorder, writer: Writer, error: StatementError, attempt: int, *, retry_ok: bool = True
    ) -> bool:
        """Count a failed attempt; True after the backoff when the policy allows another one."""
        self._note(rec, error)
        error_class = error.error_class
        if error_class is ErrorClass.CONNECTION and writer.conn is not None:
            writer.conn.terminate()
        policy = self.policy
        if (
            not retry_ok
            or attempt >= policy.max_attempts
            or error_class not in policy.on
            or self.run.over(self.perf_ns(), None)  # the phase's time is up: no new attempt
            or not self.run.budget.allow()
        ):
            return False
        rec.retry()
        pause = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
        await anyio.sleep(pause * self.rng.uniform(0.5, 1.5))
        return True

    async def _cut_short(self, rec: OpRecorder, writer: Writer) -> None:
        """An operation in flight was cancelled (the drain ran out, or the run stopped at once)."""
        rec.failure(ErrorClass.TIMEOUT)
        self.run.cut_short += 1
        await writer.discard()  # shielded and bounded: its statement must not outlive it

    def _succeeded(self, rec: OpRecorder, intended_ns: int, sent_ns: int, rows: int, service: bool) -> None:
        done_ns = self.perf_ns()
        rec.success(intended_ns, sent_ns, done_ns, rows, service=service)
        if self.pulse is not None and self.pulse.armed:
            self.pulse.hit(done_ns)


def make_loop(run: WorkloadRun, writer: Writer, seed: int) -> WriterLoop:
    """The loop a writer runs: statements (`WriterLoop`), or a transactional workload's `TxnLoop`."""
    book = run.plan.txns
    if run.plan.workload.is_txn and book is not None:
        from holoload.engine.txn_loop import TxnLoop  # it builds on this module's plan types

        return TxnLoop(run, writer, seed, book)  # type: ignore[return-value]  # the same interface
    return WriterLoop(run, writer, seed)


def _allocator(plan: WorkloadPlan, params: Sequence[object]) -> SeqAllocator:
    starts = [getattr(p, "start", None) for p in params if getattr(p, "gen", "") == "seq"]
    return plan.seq_allocator(int(starts[0]) if starts and starts[0] is not None else 1)


async def run_closed_loop(run: WorkloadRun) -> None:
    """Closed loop: each writer runs operations back to back (iterations and *-concurrency)."""
    plan = run.plan
    w = plan.workload
    schedule = None
    if w.executor == "ramping-concurrency":
        stages = [Stage(s.duration, s.target) for s in w.stages]
        schedule = ConcurrencySchedule.ramping(stages, w.start)
    run.begin()
    end_ns = None
    if schedule is not None and schedule.duration_s is not None:
        end_ns = run.start_ns + int(schedule.duration_s * NS_PER_S)
    top = max([w.start] + [s.target for s in w.stages]) or 1
    async with anyio.create_task_group() as guarded:
        guarded.start_soon(drain_guard, run, guarded.cancel_scope)
        async with anyio.create_task_group() as tg:
            for endpoint, endpoint_writers in enumerate(plan.writers):
                # ramps are per endpoint of weight 1; a weighted endpoint has more (or fewer) writers
                scale = plan.endpoint_total(endpoint) / top
                for slot, writer in zip(plan.slots(endpoint), endpoint_writers, strict=True):
                    loop = make_loop(run, writer, _seed(w, writer, slot))
                    tg.start_soon(_closed_worker, run, loop, slot, schedule, end_ns, scale)
        guarded.cancel_scope.cancel()  # every writer is done: no drain to guard


async def _closed_worker(
    run: WorkloadRun,
    loop: WriterLoop,
    slot: int,
    schedule: ConcurrencySchedule | None,
    end_ns: int | None,
    scale: float = 1.0,
) -> None:
    think = run.plan.workload.think_time
    perf_ns = run.plan.perf_ns
    while True:
        now = perf_ns()
        if run.over(now, end_ns):
            return
        if schedule is not None and slot >= round(schedule.target_at((now - run.start_ns) / NS_PER_S) * scale):
            await anyio.sleep(0.02)  # parked: the ramp has not reached this slot yet
            continue
        if not run.take_iteration():
            return
        await loop.execute()
        if think:
            await anyio.sleep(think)


async def run_open_loop(run: WorkloadRun) -> None:
    """Open loop: arrivals at intended times; a busy endpoint queues a few, then drops (counted)."""
    plan = run.plan
    w = plan.workload
    if w.executor == "constant-rate":
        assert w.rate is not None
        schedule = ArrivalSchedule.constant(w.rate, None)
    else:
        schedule = ArrivalSchedule.ramping([Stage(s.duration, s.target) for s in w.stages], w.start)
    active = [i for i in range(len(plan.writers)) if plan.endpoint_total(i) > 0]
    weights = [_endpoint_weight(plan, i) for i in active]
    cycle = WeightedCycle(weights)
    mine = [i for i in active if plan.writers[i]]
    handoffs = {i: Handoff(queue_depth(plan, i)) for i in mine}
    loops = {
        i: [make_loop(run, wr, _seed(w, wr, s)) for s, wr in zip(plan.slots(i), plan.writers[i], strict=True)]
        for i in mine
    }
    run.begin()
    end_ns = None if schedule.duration_s is None else run.start_ns + int(schedule.duration_s * NS_PER_S)
    async with anyio.create_task_group() as guarded:
        guarded.start_soon(drain_guard, run, guarded.cancel_scope)
        async with anyio.create_task_group() as tg:
            for i in mine:
                for loop in loops[i]:
                    tg.start_soon(_open_worker, loop, handoffs[i])
            await dispatch(run, schedule, cycle, active, handoffs, loops, end_ns)
            for i in mine:  # every waiting arrival still runs and is counted; then each worker stops
                handoffs[i].close()
        guarded.cancel_scope.cancel()  # every writer is done: no drain to guard
    drop_mix = WeightedCycle([op.weight for op in w.ops])
    for i in mine:  # arrivals still waiting when the drain ran out never ran: counted as drops
        for _ in handoffs[i].leftover():
            loops[i][0].recorders[drop_mix.next()].drop()


def queue_depth(plan: WorkloadPlan, endpoint: int) -> int:
    """How many arrivals may wait for this process's writers of an endpoint while all are busy.

    The workload's `queue_depth` is per endpoint over every process, split in proportion to
    the writers each owns; without one, as many as this process's writers there.
    """
    depth = plan.workload.queue_depth
    owned = len(plan.writers[endpoint])
    if depth is None:
        return max(1, owned)
    index, count = plan.share
    if count == 1:
        return depth
    total = plan.endpoint_total(endpoint)
    return split_weighted(depth, [len(range(p, total, count)) for p in range(count)])[index]


async def dispatch(
    run: WorkloadRun,
    schedule: ArrivalSchedule,
    cycle: WeightedCycle,
    active: list[int],
    handoffs: dict[int, Handoff],
    loops: dict[int, list[WriterLoop]],
    end_ns: int | None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Release each arrival at its intended time to its endpoint's writers, in batches per timer tick.

    Every arrival due within half a tick goes at once, then one sleep to the next (at least a
    tick): one wake-up per tick instead of one per arrival (`release_wait_ns`). Latency still
    counts from each arrival's own intended time. When every writer of an endpoint is busy the
    dispatcher yields once before handing over, so writers that just finished take it; a full
    backlog is a drop, counted on the arrival's op.

    Args:
        sleep: waits that many seconds (tests pass one that moves a fake clock).
    """
    plan, start = run.plan, run.start_ns
    perf_ns = plan.perf_ns
    drop_mix = WeightedCycle([op.weight for op in plan.workload.ops])
    index, count = plan.share
    arrivals = dict.fromkeys(active, 0)
    now = perf_ns()
    for offset_s in schedule.intended_times():
        intended = start + int(offset_s * NS_PER_S)
        if run.over(intended, end_ns):
            break
        endpoint = active[cycle.next()]
        if count > 1:  # the schedule is global: arrival j of an endpoint goes to the owner of slot j
            j = arrivals[endpoint]
            arrivals[endpoint] = j + 1
            if j % plan.endpoint_total(endpoint) % count != index:
                continue
        if run.skip_before_ns is not None and intended < run.skip_before_ns:
            continue
        if release_wait_ns(intended, now, TICK_NS):  # not due by the last clock reading: read it again
            now = perf_ns()
            wait = release_wait_ns(intended, now, TICK_NS)
            if wait:
                await sleep(wait / NS_PER_S)
                now = perf_ns()
        handoff = handoffs[endpoint]
        if not handoff.idle:  # every writer busy: let those that just finished come back first
            await sleep(0)
            now = perf_ns()
        if not run.take_iteration():
            break
        if not handoff.offer(intended):  # every writer busy and the backlog full: counted, never hidden
            loops[endpoint][0].recorders[drop_mix.next()].drop()
            if perf_ns() - intended > LATE_DROP_NS:  # the dispatcher itself was behind: the client's fault
                run.late_drops += 1


async def _open_worker(loop: WriterLoop, handoff: Handoff) -> None:
    take = handoff.take
    while (intended := await take()) is not None:
        await loop.execute(intended, open_loop=True)


def _endpoint_weight(plan: WorkloadPlan, endpoint: int) -> float:
    weights = plan.workload.endpoints
    if not weights:
        return 1.0
    if plan.endpoint_names:
        name = plan.endpoint_names[endpoint]
    else:
        name = plan.writers[endpoint][0].name if plan.writers[endpoint] else ""
    return weights.get(name, 0.0)


def _seed(w: Workload, writer: Writer, slot: int) -> int:
    """Per-writer seed: reproducible for a given `seed` (str hashes are salted per process)."""
    base = w.seed if w.seed is not None else random.SystemRandom().randrange(2**31)
    return zlib.crc32(f"{base}|{w.name}|{writer.endpoint}|{slot}".encode()) & 0x7FFFFFFF
