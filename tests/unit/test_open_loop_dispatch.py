"""Open-loop dispatch on a fake clock: batched release per timer tick, the hand-off, queue depth and drops."""

from __future__ import annotations

import asyncio

import pytest

from holoload.core.model.scenario import RunSettings
from holoload.core.model.workload import Phase
from holoload.core.pacing.schedule import ArrivalSchedule, WeightedCycle, release_wait_ns
from holoload.core.stats.window import Aggregator
from holoload.engine.executors import TICK_NS, WriterLoop, dispatch, queue_depth
from holoload.engine.handoff import Handoff
from holoload.engine.ledgers import LedgerBook
from holoload.engine.phase_runs import RunBuilder
from holoload.engine.workload_run import WorkloadRun

MS = 1_000_000
NS_PER_S = 1_000_000_000


# --- release_wait_ns (pure) -------------------------------------------------------------------


def test_an_arrival_due_within_half_a_tick_is_released_now() -> None:
    """Due now, past due, or due within half a tick: no wait (at most half a tick early)."""
    assert release_wait_ns(1000 * MS, 1000 * MS, MS) == 0
    assert release_wait_ns(990 * MS, 1000 * MS, MS) == 0
    assert release_wait_ns(1000 * MS + MS // 2, 1000 * MS, MS) == 0


def test_a_later_arrival_is_waited_for_at_least_a_whole_tick() -> None:
    """Beyond half a tick the wait is the time to it, never less than one tick."""
    assert release_wait_ns(1000 * MS + MS // 2 + 1, 1000 * MS, MS) == MS
    assert release_wait_ns(1003 * MS, 1000 * MS, MS) == 3 * MS
    with pytest.raises(ValueError, match="tick_ns"):
        release_wait_ns(1, 0, 0)


# --- Handoff ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_handoff_gives_arrivals_to_idle_tasks_in_the_order_they_came() -> None:
    """The longest-waiting task gets the first arrival; with none idle the backlog fills, then offers fail."""
    handoff = Handoff(depth=2)
    got: list[tuple[str, int | None]] = []

    async def task(name: str) -> None:
        got.append((name, await handoff.take()))

    tasks = [asyncio.ensure_future(task(n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    assert handoff.idle == 2
    assert handoff.offer(1) and handoff.offer(2)
    assert handoff.offer(3) and handoff.offer(4)  # nobody idle: the backlog takes two
    assert not handoff.offer(5)  # then it is full
    await asyncio.gather(*tasks)
    assert got == [("a", 1), ("b", 2)]
    assert handoff.waiting == 2
    assert await handoff.take() == 3  # the backlog first, in order, without waiting
    handoff.close()
    assert await handoff.take() == 4
    assert await handoff.take() is None  # closed and empty
    with pytest.raises(RuntimeError):
        handoff.offer(6)


@pytest.mark.anyio
async def test_a_task_cancelled_after_it_was_handed_an_arrival_puts_it_back() -> None:
    """An arrival handed to a task that is cancelled before it resumes is not lost: leftover() has it."""
    handoff = Handoff(depth=0)
    task = asyncio.ensure_future(handoff.take())
    await asyncio.sleep(0)
    assert handoff.offer(7)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handoff.leftover() == [7]
    waiting = asyncio.ensure_future(handoff.take())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert handoff.idle == 0 and not handoff.offer(8)  # a cancelled waiter is no longer idle


@pytest.mark.anyio
async def test_close_wakes_every_idle_task_with_none() -> None:
    handoff = Handoff(depth=4)
    tasks = [asyncio.ensure_future(handoff.take()) for _ in range(3)]
    await asyncio.sleep(0)
    handoff.close()
    assert await asyncio.gather(*tasks) == [None, None, None]


# --- dispatch on a fake clock -------------------------------------------------------------------


class FakeClock:
    """perf_ns and an injected sleep that moves it; ready tasks run once as each sleep begins."""

    def __init__(self, start_ns: int = 10 * NS_PER_S) -> None:
        self.ns = start_ns
        self.sleeps: list[float] = []

    def perf_ns(self) -> int:
        return self.ns

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # tasks handed work run as the sleep begins, on the clock as it is
        self.ns += round(seconds * NS_PER_S)


def open_run(clock: FakeClock, workload: dict[str, object], share: tuple[int, int] = (0, 1)) -> WorkloadRun:
    op = {"name": "q", "sql": "SELECT 1"}
    phase = Phase.model_validate(
        {"name": "p", "duration": "10s", "workloads": [{"name": "w", "ops": [op], "seed": 1, **workload}]}
    )
    builder = RunBuilder(
        ("node1",),
        ["postgresql://x"],
        RunSettings(),
        None,
        Aggregator(clock.ns),
        LedgerBook(shared=False),
        share=share,
        perf_ns=clock.perf_ns,
    )
    (run,), _ = builder.build(phase)
    return run


async def drive(
    clock: FakeClock, run: WorkloadRun, seconds: float, *, busy: bool = False
) -> tuple[list[int], WriterLoop]:
    """Dispatch `seconds` of the run's schedule to consumers that take instantly (or never return)."""
    plan = run.plan
    assert plan.workload.rate is not None
    schedule = ArrivalSchedule.constant(plan.workload.rate, seconds)
    handoff = Handoff(queue_depth(plan, 0))
    loops = {0: [WriterLoop(run, writer, 1) for writer in plan.writers[0]]}
    lags: list[int] = []
    run.begin()

    async def consumer() -> None:
        while (intended := await handoff.take()) is not None:
            lags.append(clock.ns - intended)
            if busy:
                await asyncio.Event().wait()  # an operation that never finishes

    tasks = [asyncio.ensure_future(consumer()) for _ in plan.writers[0]]
    end_ns = run.start_ns + int(seconds * NS_PER_S)
    await dispatch(run, schedule, WeightedCycle([1.0]), [0], {0: handoff}, loops, end_ns, sleep=clock.sleep)
    handoff.close()
    if busy:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return lags, loops[0][0]


@pytest.mark.anyio
async def test_at_5000_per_s_arrivals_go_in_batches_with_one_wake_up_per_tick() -> None:
    """5 arrivals per 1 ms tick: about one sleep per tick, not per arrival; each within half a tick early to a tick late."""
    clock = FakeClock()
    run = open_run(clock, {"executor": "constant-rate", "rate": 5000, "max_inflight": 32})
    lags, _ = await drive(clock, run, 1.0)
    assert len(lags) == 5000
    timed = [s for s in clock.sleeps if s > 0]
    assert 900 <= len(timed) <= 1001
    assert all(s >= TICK_NS / NS_PER_S for s in timed)
    assert min(lags) >= -TICK_NS // 2 and max(lags) <= TICK_NS


@pytest.mark.anyio
async def test_arrivals_further_apart_than_a_tick_each_get_their_own_sleep_and_start_on_time() -> None:
    """At 200/s (5 ms apart) every arrival is waited for and released exactly at its intended time."""
    clock = FakeClock()
    run = open_run(clock, {"executor": "constant-rate", "rate": 200, "max_inflight": 4})
    lags, _ = await drive(clock, run, 1.0)
    assert len(lags) == 200
    assert set(lags) == {0}
    assert len([s for s in clock.sleeps if s > 0]) == 199  # the first is due at the start


@pytest.mark.anyio
async def test_when_every_writer_is_busy_queue_depth_arrivals_wait_and_the_rest_are_dropped() -> None:
    """2 writers that never finish and queue_depth 3: 2 run, 3 wait, every other arrival is a counted drop."""
    clock = FakeClock()
    run = open_run(clock, {"executor": "constant-rate", "rate": 100, "max_inflight": 2, "queue_depth": 3})
    lags, loop = await drive(clock, run, 0.5, busy=True)
    assert len(lags) == 2
    assert loop.recorders[0].stats.dropped == 50 - 2 - 3


@pytest.mark.anyio
async def test_queue_depth_zero_drops_whatever_finds_no_idle_writer() -> None:
    clock = FakeClock()
    run = open_run(clock, {"executor": "constant-rate", "rate": 100, "max_inflight": 1, "queue_depth": 0})
    lags, loop = await drive(clock, run, 0.2, busy=True)
    assert len(lags) == 1 and loop.recorders[0].stats.dropped == 19


def test_queue_depth_is_split_over_worker_processes_like_their_writers() -> None:
    """A workload's queue_depth is per endpoint over every process; without one, each process's writers."""
    clock = FakeClock()
    depths = [
        queue_depth(
            open_run(clock, {"executor": "constant-rate", "rate": 1, "max_inflight": 5, "queue_depth": 7}, (i, 2)).plan,
            0,
        )
        for i in range(2)
    ]
    assert sum(depths) == 7 and depths[0] >= depths[1]
    default = open_run(clock, {"executor": "constant-rate", "rate": 1, "max_inflight": 5}, (1, 2))
    assert queue_depth(default.plan, 0) == 2  # slots 1 and 3 of 5


@pytest.mark.anyio
async def test_a_worker_process_releases_only_the_arrivals_of_its_own_slots() -> None:
    """Share (1, 2) of 4 writer slots: every other arrival of the global schedule, on time."""
    clock = FakeClock()
    run = open_run(clock, {"executor": "constant-rate", "rate": 400, "max_inflight": 4}, (1, 2))
    lags, _ = await drive(clock, run, 1.0)
    assert len(lags) == 200
    assert min(lags) >= -TICK_NS // 2 and max(lags) <= TICK_NS


def test_the_startup_heap_is_frozen_once_before_the_first_phase() -> None:
    """freeze_startup_heap exempts what is alive from later full collections, once per process."""
    import gc

    from holoload.engine.worker import freeze_startup_heap

    already = gc.get_freeze_count()
    try:
        freeze_startup_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        freeze_startup_heap()
        assert gc.get_freeze_count() == frozen  # a later phase freezes nothing more
        if already:
            assert frozen == already
    finally:
        if not already:
            gc.unfreeze()
