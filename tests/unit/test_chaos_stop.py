"""After a graceful stop ("no new work") no chaos action starts; faults left active still heal.

The runner's schedule reads an injected clock; the fakes stand in for the target (a split that
takes a slot's time, a fault proxy), so nothing here waits for a real slot.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from holoload.adapters.holofusion.surfaces import SplitOutcome
from holoload.core.events import ChaosStarted
from holoload.core.model.chaos import ChaosAction
from holoload.core.stats.window import NS_PER_S
from holoload.engine.canary import CanaryEngine
from holoload.engine.chaos import FaultRunner
from holoload.engine.ledgers import LedgerBook, Pulse

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


class FakeSurfaces:
    """Two nodes; a split takes `split_s` of the injected clock and may run a hook (a Ctrl-C under way)."""

    def __init__(self, clock: Clock, split_s: float = 0.0) -> None:
        self.names = ["node1", "node2"]
        self.clock = clock
        self.split_s = split_s
        self.splits: list[int] = []
        self.during_split: Any = None

    async def split(self, table: str, key: int, table_id: int, next_rows: int, *, timeout_s: float) -> SplitOutcome:
        self.splits.append(key)
        self.clock.now_ns += int(self.split_s * NS_PER_S)
        if self.during_split is not None:
            self.during_split(len(self.splits))
        return SplitOutcome(True, f"split at {key}", "")


class FakeProxy:
    def __init__(self) -> None:
        self.faulty = False

    def set_faults(self, faults: object) -> None:
        self.faulty = True

    def heal(self) -> None:
        self.faulty = False

    def reset_connections(self) -> int:
        return 0


def runner_for(surfaces: FakeSurfaces, *actions: ChaosAction, proxies: dict[int, Any] | None = None) -> FaultRunner:
    events: list[Any] = []
    runner = FaultRunner(
        actions,
        surfaces=surfaces,  # type: ignore[arg-type]  # names and split are all the runner reads here
        sink=SimpleNamespace(emit=events.append),  # type: ignore[arg-type]
        book=LedgerBook(shared=False),
        pulses=[Pulse(), Pulse()],
        node_control=None,
        proxies=proxies or {},
        table="t",
        seed=1,
        clock=lambda: surfaces.clock.now_ns / NS_PER_S,
        perf_ns=surfaces.clock,
    )
    runner.events = events  # type: ignore[attr-defined]
    return runner


SPLIT_EVERY_10S = ChaosAction(name="churn", action="split", during="main", every="10s", start="0s", key=1000)


async def test_a_split_due_after_the_stop_never_fires() -> None:
    """Ctrl-C during the second split: the four later slots (due on the clock) fire nothing."""
    surfaces = FakeSurfaces(Clock(), split_s=10.0)  # each split lasts exactly up to the next slot
    runner = runner_for(surfaces, SPLIT_EVERY_10S)
    surfaces.during_split = lambda n: runner.stop() if n == 2 else None
    with anyio.fail_after(5):
        await runner.run_frame("main", 60.0)
    assert len(surfaces.splits) == 2
    assert runner.chaos_count("churn", "fired") == 2.0
    assert runner.chaos_count("churn", "skipped") == 0.0  # not fired after a stop is not a skip
    starts = [e for e in runner.events if isinstance(e, ChaosStarted)]  # type: ignore[attr-defined]
    assert [e.ts for e in starts] == [0.0, 10.0]


async def test_without_a_stop_every_slot_fires() -> None:
    """The same schedule unstopped fires in all six slots (the test above can fail)."""
    surfaces = FakeSurfaces(Clock(), split_s=10.0)
    runner = runner_for(surfaces, SPLIT_EVERY_10S)
    with anyio.fail_after(5):
        await runner.run_frame("main", 60.0)
    assert len(surfaces.splits) == 6


async def test_stop_ends_a_schedule_waiting_for_its_next_slot() -> None:
    """A frame waiting 30 s (on the clock) for its action returns as soon as the stop arrives."""
    surfaces = FakeSurfaces(Clock())
    runner = runner_for(surfaces, ChaosAction(name="late", action="split", during="main", at="30s", key=1000))
    with anyio.fail_after(5):  # a hang guard only: unstopped, the frame would sleep 30 s
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run_frame, "main", 60.0)
            await wait_all_tasks_blocked()
            runner.stop()
    assert surfaces.splits == [] and runner.chaos_count("late", "fired") == 0.0


async def test_frames_and_iteration_triggers_after_the_stop_fire_nothing() -> None:
    """The next phase's frame and an `after_iterations` action already reached: nothing fires."""
    surfaces = FakeSurfaces(Clock())
    now = ChaosAction(name="now", action="split", during="next", key=1000)
    counted = ChaosAction(name="counted", action="split", workload="w", after_iterations=10, key=2000)
    runner = runner_for(surfaces, now, counted)
    runner.stop()
    with anyio.fail_after(5):
        await runner.run_frame("next", 60.0)
        await runner.watch_iterations(lambda workload: 100)
    assert surfaces.splits == [] and runner.stopped


async def test_a_fault_active_at_the_stop_still_heals() -> None:
    """Stopped while a net fault waits for its heal: the schedule ends, heal_all undoes the fault."""
    surfaces = FakeSurfaces(Clock())
    proxy = FakeProxy()
    slow = ChaosAction(name="slow", action="net", node="node2", during="main", duration="30s", net={"latency": "20ms"})
    runner = runner_for(surfaces, slow, proxies={1: proxy})
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run_frame, "main", 60.0)
            await wait_all_tasks_blocked()
            assert proxy.faulty  # fired at 0 s; its heal is due at 30 s
            runner.stop()
        await runner.heal_all()
    assert not proxy.faulty
    assert (runner.chaos_count("slow", "fired"), runner.chaos_count("slow", "healed")) == (1.0, 1.0)


async def test_the_canary_starts_no_chaos_action_after_a_stop() -> None:
    """A canary asked to stop during its batch: the split planned after that batch never starts."""
    events: list[Any] = []
    surfaces = FakeSurfaces(Clock())
    engine = CanaryEngine(
        SimpleNamespace(table=SimpleNamespace(name="t")),  # type: ignore[arg-type]
        surfaces,  # type: ignore[arg-type]
        SimpleNamespace(emit=events.append),  # type: ignore[arg-type]
    )
    split = ChaosAction(name="split", action="split", after_batch=1, key=1000)
    batch = SimpleNamespace(index=1, node=0, group=SimpleNamespace(rows=10), snapshot_prefix="batch_01_x")
    engine.request_stop()
    await engine._chaos(split, batch, [batch], "after batch 1")  # type: ignore[arg-type]
    assert events == [] and surfaces.splits == []
