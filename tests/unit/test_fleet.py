"""WorkerFleet on an injected clock: a worker's clock maps onto the coordinator's, even when its
start-up is slow; a slow worker's window never holds up the others'; a fleet of one in-process
worker runs on the coordinator's clock and has nothing to flush."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from holoload.core.events import Event
from holoload.core.stats.wire import WorkerWindow
from holoload.engine.fleet import WorkerFleet
from holoload.engine.phase_end import LoadEnded

SHIFT_NS = 7_000_000_000  # this worker's monotonic clock runs 7 s ahead of ours
NS_PER_MS = 1_000_000


class FakeClock:
    """A monotonic clock in nanoseconds that moves only when told."""

    def __init__(self) -> None:
        self.now_ns = 1_000 * NS_PER_MS

    def __call__(self) -> int:
        return self.now_ns


class ShiftedWorker:
    """A stand-in for a worker whose clock differs and whose first answer is slow (0.8 s of imports)."""

    def __init__(self, slot: int, clock: FakeClock) -> None:
        self.slot = slot
        self.clock = clock
        self.calls = 0

    async def start(self) -> None:
        pass

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        self.calls += 1
        self.clock.now_ns += 800 * NS_PER_MS if self.calls == 1 else 1 * NS_PER_MS  # the way there
        now = self.clock.now_ns + SHIFT_NS
        self.clock.now_ns += 1 * NS_PER_MS  # the way back
        return {"pid": 1, "host": "here", "now_ns": now}

    def kill(self) -> None:
        pass

    async def close(self, timeout_s: float = 10.0) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def emit(self, event: Event) -> None:
        self.seen.append(event)


@pytest.mark.anyio
async def test_the_clock_offset_comes_from_a_quick_round_trip_not_the_slow_first_one() -> None:
    """The slow first answer alone would put the offset 0.4 s off; a quick symmetric ping gets it exactly."""
    clock = FakeClock()
    fleet = WorkerFleet(
        [object(), object()],  # type: ignore[list-item]
        lambda slot, _: ShiftedWorker(slot, clock),
        Events(),
        perf_ns=clock,
    )
    await fleet.start()
    for member in fleet.live():
        assert member.offset_ns == -SHIFT_NS
        assert member.pid == 1 and member.host == "here" and not member.direct
    await fleet.close()
    assert fleet.live() == []


class FlushingWorker(ShiftedWorker):
    """Answers hello at once; worker 1's flushes wait until the test releases them."""

    release = anyio.Event()

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        if method == "hello":
            return {"pid": 2, "host": "here", "now_ns": self.clock()}
        if method == "flush":
            if self.slot == 1:
                await self.release.wait()
            return WorkerWindow(self.slot, completed={"w": 10 + self.slot})
        raise AssertionError(method)


@pytest.mark.anyio
async def test_a_slow_worker_does_not_hold_up_a_window_and_its_window_comes_at_the_next_collect() -> None:
    """A collect with a wait takes the windows that came; a late one comes at the next collect."""
    clock = FakeClock()
    FlushingWorker.release = anyio.Event()
    fleet = WorkerFleet(
        [object(), object()],  # type: ignore[list-item]
        lambda slot, _: FlushingWorker(slot, clock),
        Events(),
        perf_ns=clock,
    )
    await fleet.start()
    with anyio.fail_after(10):  # a guard against a hang, not a measurement
        first = await fleet.collect(wait_s=0.05)
        assert [w.worker for w, _ in first] == [0]  # worker 1's flush is still held
        FlushingWorker.release.set()
        second = await fleet.collect(wait_s=5.0)
        assert sorted(w.worker for w, _ in second) == [0, 1]  # the late window, and worker 0's next one
        everything = await fleet.collect()  # at a phase's end: wait for all
    assert sorted(w.worker for w, _ in everything) == [0, 1]
    assert sum(w.completed["w"] for w, _ in first + second + everything) == 10 * 3 + 11 * 2
    await fleet.close()


class DirectWorker(ShiftedWorker):
    """Records into the coordinator's aggregator: says so in hello, must never be flushed."""

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        self.calls += 1
        if method == "hello":
            return {"pid": 3, "host": "here", "now_ns": self.clock() + SHIFT_NS, "direct": True}
        if method == "run":
            start_ns, end_ns, _resume = args
            assert isinstance(start_ns, int) and isinstance(end_ns, int)
            return LoadEnded(end_ns, cut_short=2, drain_s=1.5)
        raise AssertionError(method)


@pytest.mark.anyio
async def test_a_direct_worker_runs_on_our_clock_and_is_never_flushed() -> None:
    """A fleet of one in-process worker: offset 0 without pings, nothing to collect, its load end as it said."""
    clock = FakeClock()
    workers: list[DirectWorker] = []

    def launch(slot: int, _: object) -> DirectWorker:
        workers.append(DirectWorker(slot, clock))
        return workers[-1]

    fleet = WorkerFleet([object()], launch, Events(), perf_ns=clock)  # type: ignore[list-item]
    await fleet.start()
    (member,) = fleet.live()
    assert member.direct and member.offset_ns == 0 and workers[0].calls == 1  # one hello, no pings
    assert await fleet.collect(wait_s=0.05) == [] and await fleet.collect() == []
    assert await fleet.run(5 * NS_PER_MS, 9 * NS_PER_MS) == [LoadEnded(9 * NS_PER_MS, cut_short=2, drain_s=1.5)]
    await fleet.close()
