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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from holoload.adapters.pg import StatementError, describe_error
from holoload.adapters.pool import Writer
from holoload.adapters.surfaces import DB_ERRORS
from holoload.core.acklog import AckLog
from holoload.core.client_health import LATE_DROP_MS
from holoload.core.generators import SeqAllocator
from holoload.core.ledger import Ledger, WriteOutcome, outcome_of
from holoload.core.outcome import ErrorClass, ErrorRules
from holoload.core.pacing import ArrivalSchedule, ConcurrencySchedule, Stage, WeightedCycle
from holoload.core.window import Aggregator, OpKey, OpRecorder
from holoload.core.workload import Workload
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.operations import CompiledOp
from holoload.engine.phase_end import drain_guard

UNIQUE_VIOLATION = "23505"

NS = 1_000_000_000
LATE_DROP_NS = int(LATE_DROP_MS * 1_000_000)


@dataclass
class RetryBudget:
    """Retries allowed so far: at most `fraction` of operations, plus a small head start."""

    fraction: float
    operations: int = 0
    retries: int = 0

    def allow(self) -> bool:
        if self.retries < 10 + self.fraction * self.operations:
            self.retries += 1
            return True
        return False


@dataclass
class WorkloadRun:
    """Everything one workload needs while its phase runs.

    Args:
        phase: phase name (part of every recorder key).
        workload: the validated workload.
        writers: writers per endpoint (index = endpoint), only endpoints with weight > 0 have any.
        aggregator: where outcomes go.
        seq: id allocators by start value.
        perf_ns: monotonic clock.
        phase_end_ns: when the phase's duration runs out (None: no limit).
        share: (this process's number, how many processes share the workload). Writer slot s of
            an endpoint belongs to process s % count, and so do that slot's open-loop arrivals.
        seq_part: (index, parts) of the seq id space this process allocates from.
        totals: writers per endpoint over all processes (None: just this one's).
        start_at_ns: when the workload's schedule starts (None: when its executor starts).
        iterations: this process's share of an iterations workload (None: all of them).
        endpoint_names: endpoint names by index (for endpoint weights when this process has no
            writer on some endpoint).
        skip_before_ns: open loop, a restarted worker process: arrivals intended before this
            belonged to the dead one and are skipped.
        drain_s: once the phase's time is up or a stop was asked, how long operations in flight
            may finish before they are cancelled.
        cut_short: operations cancelled that way (counted as timeouts, writes in doubt).
        late_drops: open loop, drops of arrivals whose dispatcher was already more than
            `LATE_DROP_MS` behind their intended time (the client's lateness, not the server's).
    """

    phase: str
    workload: Workload
    writers: list[list[Writer]]
    aggregator: Aggregator
    seq: dict[int, SeqAllocator]
    perf_ns: Callable[[], int] = time.perf_counter_ns
    phase_end_ns: int | None = None
    remaining: int | None = None
    rules: ErrorRules | None = None
    op_timeout_s: float | None = None
    ledgers: LedgerBook | None = None
    pulses: Sequence[Pulse] = ()
    completed: int = 0
    stop_requested: bool = False
    budget: RetryBudget = field(init=False)
    start_ns: int = 0
    lag_ns: int = 0
    share: tuple[int, int] = (0, 1)
    seq_part: tuple[int, int] = (0, 1)
    totals: list[int] | None = None
    start_at_ns: int | None = None
    iterations: int | None = None
    endpoint_names: Sequence[str] = ()
    skip_before_ns: int | None = None
    acks: AckLog | None = None  # chaos runs in one process: who acknowledged which ids, and when
    drain_s: float = 10.0
    cut_short: int = 0
    late_drops: int = 0

    def __post_init__(self) -> None:
        self.budget = RetryBudget(self.workload.retry.budget)
        if self.workload.executor != "iterations":
            self.remaining = None
        else:
            self.remaining = self.iterations if self.iterations is not None else self.workload.iterations

    def endpoint_total(self, endpoint: int) -> int:
        """Writers on an endpoint over every process."""
        return len(self.writers[endpoint]) if self.totals is None else self.totals[endpoint]

    def slots(self, endpoint: int) -> list[int]:
        """The writer slots of an endpoint this process owns (their writers, in order)."""
        index, count = self.share
        return [s for s in range(self.endpoint_total(endpoint)) if s % count == index]

    def begin(self) -> int:
        """Mark the executor's start: the shared start time when one was given."""
        self.start_ns = self.start_at_ns if self.start_at_ns is not None else self.perf_ns()
        return self.start_ns

    def take_iteration(self) -> bool:
        """Iterations executor: claim one iteration; False when they are all claimed."""
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def over(self, now_ns: int, schedule_end_ns: int | None) -> bool:
        if self.stop_requested:
            return True
        if self.phase_end_ns is not None and now_ns >= self.phase_end_ns:
            return True
        return schedule_end_ns is not None and now_ns >= schedule_end_ns


class WriterLoop:
    """One writer's compiled ops, op mix and recorders; runs attempts with retries."""

    def __init__(self, run: WorkloadRun, writer: Writer, seed: int) -> None:
        self.run = run
        self.writer = writer
        rng = random.Random(seed)
        ops = run.workload.ops
        self.ops = [
            CompiledOp(
                op,
                rng,
                _allocator(run, op.params),
                run.op_timeout_s,
                None if run.ledgers is None or op.ledger is None else run.ledgers.ledger(op.ledger, writer.endpoint),
            )
            for op in ops
        ]
        self.pulse = run.pulses[writer.endpoint] if writer.endpoint < len(run.pulses) else None
        self.mix = WeightedCycle([op.weight for op in ops])
        self.single = len(ops) == 1
        now = run.perf_ns()
        self.recorders: list[OpRecorder] = [
            run.aggregator.recorder(OpKey(run.phase, run.workload.name, op.name, writer.name), now) for op in ops
        ]
        self.rng = rng

    async def execute(self, intended_ns: int | None = None, *, open_loop: bool = False) -> None:
        """One operation, retried per the workload's policy.

        Latency counts from `intended_ns` (open loop), else from the first attempt's send.
        Open loop: the schedule lag (start - intended) is recorded; an operation that starts
        early (timer granularity) counts from its actual start, so latency is never understated.
        Service time (from the last attempt's send) is recorded where it can differ from the
        latency: open loop, or when retries are on.
        """
        i = 0 if self.single else self.mix.next()
        op, rec = self.ops[i], self.recorders[i]
        if open_loop and intended_ns is not None:
            started = self.run.perf_ns()
            rec.schedule_lag(intended_ns, started)
            intended_ns = min(intended_ns, started)  # an early start counts from when it really began
        self.run.completed += 1
        if op.ledger is not None:
            await self._tracked(op, op.ledger, rec, intended_ns, open_loop)
            return
        policy = self.run.workload.retry
        self.run.budget.operations += 1
        attempt = 1
        while True:
            writer = self.writer
            if writer.broken() and not await writer.ensure(time.monotonic() + 1.0):
                self._unconnected(rec, writer)
                return
            sent_ns = self.run.perf_ns()
            if intended_ns is None:
                intended_ns = sent_ns
            try:
                rows = await op.run(writer)
            except anyio.get_cancelled_exc_class():
                await self._cut_short(rec, writer)
                raise
            except DB_ERRORS as exc:
                if not await self._failed(rec, writer, describe_error(exc, self.run.rules), attempt):
                    return
                attempt += 1
                continue
            self._succeeded(rec, intended_ns, sent_ns, rows, open_loop or policy.max_attempts > 1)
            return

    async def _tracked(
        self, op: CompiledOp, ledger: Ledger, rec: OpRecorder, intended_ns: int | None, open_loop: bool
    ) -> None:
        """A ledger write: its ids are recorded acknowledged, failed or in doubt.

        A retry reuses the same ids. An in-doubt write is retried only when the id column is
        unique; a 23505 on such a retry proves the earlier attempt applied (recovered).
        """
        ids = op.draw()
        policy = self.run.workload.retry
        unique = op.unique_ids
        self.run.budget.operations += 1
        attempt, doubted = 1, False
        while True:
            writer = self.writer
            if writer.broken() and not await writer.ensure(time.monotonic() + 1.0):
                self._unconnected(rec, writer)
                ledger.record_write(outcome_of(None, sent=False), ids)  # never sent: nothing applied
                return
            sent_ns = self.run.perf_ns()
            if intended_ns is None:
                intended_ns = sent_ns
            try:
                rows = await op.replay(writer)
            except anyio.get_cancelled_exc_class():
                ledger.record_write(WriteOutcome.IN_DOUBT, ids)  # sent, never answered
                await self._cut_short(rec, writer)
                raise
            except DB_ERRORS as exc:
                error = describe_error(exc, self.run.rules)
                if doubted and error.sqlstate == UNIQUE_VIOLATION:
                    for start, end in ids:  # the earlier, in-doubt attempt had applied
                        ledger.duplicate_proof(start, end)
                    self._succeeded(rec, intended_ns, sent_ns, op.rows, open_loop or policy.max_attempts > 1)
                    return
                outcome = outcome_of(error.sqlstate, sent=True)
                ledger.record_write(outcome, ids)
                doubted = doubted or outcome is WriteOutcome.IN_DOUBT
                retry_ok = outcome is WriteOutcome.FAILED or unique  # never blindly re-run a write in doubt
                if not await self._failed(rec, writer, error, attempt, retry_ok=retry_ok):
                    return
                attempt += 1
                continue
            ledger.record_write(WriteOutcome.ACKNOWLEDGED, ids)
            if self.run.acks is not None:
                self.run.acks.note(ids, writer.server, self.run.perf_ns())
            self._succeeded(rec, intended_ns, sent_ns, rows, open_loop or policy.max_attempts > 1)
            return

    def _note(self, rec: OpRecorder, error: StatementError) -> None:
        """Count a failed attempt by class, and keep its message (the first few distinct ones) for people."""
        rec.failure(error.error_class)
        key = rec.key
        self.run.aggregator.errors.note(
            (key.workload, key.op, key.endpoint),
            error.sqlstate,
            error.error_class.value,
            error.message,
            self.run.perf_ns(),
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
        policy = self.run.workload.retry
        if (
            not retry_ok
            or attempt >= policy.max_attempts
            or error_class not in policy.on
            or self.run.over(self.run.perf_ns(), None)  # the phase's time is up: no new attempt
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
        done_ns = self.run.perf_ns()
        rec.success(intended_ns, sent_ns, done_ns, rows, service=service)
        if self.pulse is not None and self.pulse.armed:
            self.pulse.hit(done_ns)


def _allocator(run: WorkloadRun, params: Sequence[object]) -> SeqAllocator:
    starts = [getattr(p, "start", None) for p in params if getattr(p, "gen", "") == "seq"]
    start = int(starts[0]) if starts and starts[0] is not None else 1
    if start not in run.seq:
        index, parts = run.seq_part
        run.seq[start] = SeqAllocator.partition(start, parts, index)
    return run.seq[start]


async def run_closed_loop(run: WorkloadRun) -> None:
    """Closed loop: each writer runs operations back to back (iterations and *-concurrency)."""
    w = run.workload
    schedule = None
    if w.executor == "ramping-concurrency":
        stages = [Stage(s.duration, s.target) for s in w.stages]
        schedule = ConcurrencySchedule.ramping(stages, w.start)
    run.begin()
    end_ns = None
    if schedule is not None and schedule.duration_s is not None:
        end_ns = run.start_ns + int(schedule.duration_s * NS)
    top = max([w.start] + [s.target for s in w.stages]) or 1
    async with anyio.create_task_group() as guarded:
        guarded.start_soon(drain_guard, run, guarded.cancel_scope)
        async with anyio.create_task_group() as tg:
            for endpoint, endpoint_writers in enumerate(run.writers):
                # ramps are per endpoint of weight 1; a weighted endpoint has more (or fewer) writers
                scale = run.endpoint_total(endpoint) / top
                for slot, writer in zip(run.slots(endpoint), endpoint_writers, strict=True):
                    loop = WriterLoop(run, writer, seed=_seed(w, writer, slot))
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
    think = run.workload.think_time
    while True:
        now = run.perf_ns()
        if run.over(now, end_ns):
            return
        if schedule is not None and slot >= round(schedule.target_at((now - run.start_ns) / NS) * scale):
            await anyio.sleep(0.02)  # parked: the ramp has not reached this slot yet
            continue
        if not run.take_iteration():
            return
        await loop.execute()
        if think:
            await anyio.sleep(think)


async def run_open_loop(run: WorkloadRun) -> None:
    """Open loop: arrivals at intended times; a busy endpoint queues a few, then drops (counted)."""
    w = run.workload
    if w.executor == "constant-rate":
        assert w.rate is not None
        schedule = ArrivalSchedule.constant(w.rate, None)
    else:
        schedule = ArrivalSchedule.ramping([Stage(s.duration, s.target) for s in w.stages], w.start)
    active = [i for i in range(len(run.writers)) if run.endpoint_total(i) > 0]
    weights = [_endpoint_weight(run, i) for i in active]
    cycle = WeightedCycle(weights)
    mine = [i for i in active if run.writers[i]]
    queues = {i: asyncio.Queue[int | None](maxsize=max(1, len(run.writers[i]))) for i in mine}
    loops = {
        i: [WriterLoop(run, wr, _seed(w, wr, s)) for s, wr in zip(run.slots(i), run.writers[i], strict=True)]
        for i in mine
    }
    run.begin()
    end_ns = None if schedule.duration_s is None else run.start_ns + int(schedule.duration_s * NS)
    async with anyio.create_task_group() as guarded:
        guarded.start_soon(drain_guard, run, guarded.cancel_scope)
        async with anyio.create_task_group() as tg:
            for i in mine:
                for loop in loops[i]:
                    tg.start_soon(_open_worker, run, loop, queues[i])
            await _dispatch(run, schedule, cycle, active, queues, loops, end_ns)
            for i in mine:  # every queued operation still runs and is counted; then each worker stops
                for _ in loops[i]:
                    await queues[i].put(None)
        guarded.cancel_scope.cancel()  # every writer is done: no drain to guard
    drop_mix = WeightedCycle([op.weight for op in w.ops])
    for i in mine:  # arrivals still queued when the drain ran out never ran: counted as drops
        while not queues[i].empty():
            if queues[i].get_nowait() is not None:
                loops[i][0].recorders[drop_mix.next()].drop()


async def _dispatch(
    run: WorkloadRun,
    schedule: ArrivalSchedule,
    cycle: WeightedCycle,
    active: list[int],
    queues: dict[int, asyncio.Queue[int | None]],
    loops: dict[int, list[WriterLoop]],
    end_ns: int | None,
) -> None:
    start = run.start_ns
    drop_mix = WeightedCycle([op.weight for op in run.workload.ops])
    index, count = run.share
    arrivals = dict.fromkeys(active, 0)
    for offset_s in schedule.intended_times():
        intended = start + int(offset_s * NS)
        if run.over(intended, end_ns):
            break
        endpoint = active[cycle.next()]
        if count > 1:  # the schedule is global: arrival j of an endpoint goes to the owner of slot j
            j = arrivals[endpoint]
            arrivals[endpoint] = j + 1
            if j % run.endpoint_total(endpoint) % count != index:
                continue
        if run.skip_before_ns is not None and intended < run.skip_before_ns:
            continue
        now = run.perf_ns()
        if intended > now:
            await asyncio.sleep((intended - now) / NS)
        else:
            await asyncio.sleep(0)  # behind schedule: let idle writers take what is queued
        if not run.take_iteration():
            break
        try:
            queues[endpoint].put_nowait(intended)
        except asyncio.QueueFull:  # every writer busy and as many waiting: counted, never hidden
            loops[endpoint][0].recorders[drop_mix.next()].drop()
            if run.perf_ns() - intended > LATE_DROP_NS:  # the dispatcher itself was behind: the client's fault
                run.late_drops += 1


async def _open_worker(run: WorkloadRun, loop: WriterLoop, queue: asyncio.Queue[int | None]) -> None:
    while (intended := await queue.get()) is not None:
        await loop.execute(intended, open_loop=True)


def _endpoint_weight(run: WorkloadRun, endpoint: int) -> float:
    weights = run.workload.endpoints
    if not weights:
        return 1.0
    if run.endpoint_names:
        name = run.endpoint_names[endpoint]
    else:
        name = run.writers[endpoint][0].name if run.writers[endpoint] else ""
    return weights.get(name, 0.0)


def _seed(w: Workload, writer: Writer, slot: int) -> int:
    """Per-writer seed: reproducible for a given `seed` (str hashes are salted per process)."""
    base = w.seed if w.seed is not None else random.SystemRandom().randrange(2**31)
    return zlib.crc32(f"{base}|{w.name}|{writer.endpoint}|{slot}".encode()) & 0x7FFFFFFF
