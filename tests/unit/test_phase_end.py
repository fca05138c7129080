"""The end of a phase's load, on a fake clock: where the phase's time ends, which windows are judged, the drain."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from holoload.engine.phase_end import LoadEnded, LoadStop, cut_short_problem, drain_guard

S = 1_000_000_000


def test_the_load_stops_at_the_phase_end_or_an_earlier_stop_request() -> None:
    """Without either the load runs on; the earlier of the two is the stop point; the first request counts."""
    stop = LoadStop()
    assert stop.point() is None and stop.clamp(7 * S) == 7 * S and stop.judged(100 * S)
    stop.phase_end_ns = 60 * S
    assert stop.point() == 60 * S
    assert stop.clamp(65 * S) == 60 * S and stop.clamp(30 * S) == 30 * S
    assert stop.judged(59 * S) and not stop.judged(60 * S) and not stop.judged(61 * S)
    stop.request(20 * S)
    stop.request(25 * S)
    assert stop.point() == 20 * S and not stop.judged(20 * S) and stop.judged(19 * S)


@dataclass
class FakeRun:
    """What the drain guard reads of a WorkloadRun (and of its plan), on a clock the test moves."""

    now_ns: int = 0
    phase_end_ns: int | None = None
    stop_requested: bool = False
    drain_s: float = 2.0

    @property
    def plan(self) -> FakeRun:
        return self

    def perf_ns(self) -> int:
        return self.now_ns


@pytest.mark.anyio
async def test_the_drain_guard_cancels_drain_s_after_the_phase_end() -> None:
    """Nothing is cancelled before end + drain_s; right after it the scope is."""
    run = FakeRun(now_ns=0, phase_end_ns=10 * S)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain_guard, run, tg.cancel_scope)
            run.now_ns = 11 * S  # inside the drain
            await anyio.sleep(0.25)
            assert not tg.cancel_scope.cancel_called
            run.now_ns = 12 * S  # end + 2 s
            await anyio.sleep(30)  # the guard cancels this
    assert tg.cancel_scope.cancel_called


@pytest.mark.anyio
async def test_the_drain_guard_counts_the_drain_from_a_stop_request() -> None:
    """No phase end: the drain starts when the guard first sees the stop request."""
    run = FakeRun(now_ns=5 * S)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain_guard, run, tg.cancel_scope)
            await anyio.sleep(0.25)
            run.stop_requested = True
            await anyio.sleep(0.25)  # seen at 5 s
            run.now_ns = 6 * S
            await anyio.sleep(0.25)
            assert not tg.cancel_scope.cancel_called
            run.now_ns = 7 * S
            await anyio.sleep(30)
    assert tg.cancel_scope.cancel_called


def test_a_drain_that_cut_operations_is_on_the_record() -> None:
    """The problem names the phase, how many operations and the drain; none when nothing was cut."""
    ends = [LoadEnded(0, cut_short=2, drain_s=2.0), LoadEnded(0, cut_short=1, drain_s=1.0)]
    problem = cut_short_problem("soak", ends, 1.0)
    assert problem is not None and problem.what == "drain"
    assert problem.detail.startswith("phase soak: 3 operations still running 2s after its load stopped")
    assert cut_short_problem("soak", [LoadEnded(0, drain_s=2.0)], 1.0) is None
    assert cut_short_problem("soak", [], 1.0) is None
