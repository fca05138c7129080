"""WorkerFleet's clock offsets: a worker's clock maps onto the coordinator's, even when its start-up is slow."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from holoload.core.events import Event
from holoload.core.wire import WorkerWindow
from holoload.engine.fleet import WorkerFleet

SHIFT_NS = 7_000_000_000  # this worker's monotonic clock runs 7 s ahead of ours


class ShiftedWorker:
    """An in-process stand-in for a worker whose clock differs and whose first answer is slow."""

    def __init__(self, slot: int, spec: object) -> None:
        self.slot = slot
        self.calls = 0

    async def start(self) -> None:
        pass

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        self.calls += 1
        await anyio.sleep(0.8 if self.calls == 1 else 0.001)  # imports before the first answer
        now = time.perf_counter_ns() + SHIFT_NS
        await anyio.sleep(0.001)
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
    fleet = WorkerFleet([object(), object()], ShiftedWorker, Events())  # type: ignore[list-item]
    await fleet.start()
    for member in fleet.live():
        # the slow first answer alone would be ~0.4 s off; a quick ping is within a few ms
        assert abs(member.offset_ns + SHIFT_NS) < 20_000_000, member.offset_ns
        assert member.pid == 1 and member.host == "here"
    await fleet.close()
    assert fleet.live() == []


class FlushingWorker(ShiftedWorker):
    """Answers hello at once; worker 1's flushes take 0.5 s."""

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        if method == "hello":
            return {"pid": 2, "host": "here", "now_ns": time.perf_counter_ns()}
        if method == "flush":
            await anyio.sleep(0.5 if self.slot == 1 else 0.0)
            return WorkerWindow(self.slot, completed={"w": 10 + self.slot})
        raise AssertionError(method)


@pytest.mark.anyio
async def test_a_slow_worker_does_not_hold_up_a_window_and_its_window_comes_at_the_next_collect() -> None:
    fleet = WorkerFleet([object(), object()], FlushingWorker, Events())  # type: ignore[list-item]
    await fleet.start()
    started = time.monotonic()
    first = await fleet.collect(wait_s=0.05)
    assert time.monotonic() - started < 0.4
    assert [w.worker for w, _ in first] == [0]
    await anyio.sleep(0.6)
    second = await fleet.collect(wait_s=0.05)
    assert sorted(w.worker for w, _ in second) == [0, 1]  # the late window, and worker 0's next one
    everything = await fleet.collect()  # at a phase's end: wait for all
    assert sorted(w.worker for w, _ in everything) == [0, 1]
    assert sum(w.completed["w"] for w, _ in first + second + everything) == 10 * 3 + 11 * 2
    await fleet.close()
