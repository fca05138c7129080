"""Closing a window yields to the event loop between its steps, and still emits one whole window."""

from __future__ import annotations

from typing import Any, cast

import anyio
import pytest

from holoload.core.events import Event, WindowClosed
from holoload.core.stats.window import Aggregator, OpKey
from holoload.engine.run_state import RunState
from holoload.engine.window_rows import window_rows
from holoload.engine.window_ticker import WindowTicker

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.ns = 0

    def perf_ns(self) -> int:
        return self.ns


class Board:
    def __init__(self) -> None:
        self.judged: list[tuple[int, int]] = []

    def judge(self, now_ns: int, window_start_ns: int) -> None:
        self.judged.append((now_ns, window_start_ns))


class Client:
    def close(self, index: int, actual_s: float, tick_late_s: float | None) -> tuple[Any, tuple[str, ...]]:
        return None, ()


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def ticker(aggregator: Aggregator, clock: Clock, sink: Sink, board: Board) -> WindowTicker:
    state = RunState()
    state.current_phase = "main"
    return WindowTicker(
        1.0,
        aggregator,
        cast(Any, None),  # the fleet: close() never calls it
        cast(Any, board),
        state,
        cast(Any, Client()),
        cast(Any, None),
        (),
        ("n0", "n1"),
        sink,
        clock=lambda: 1000.0,
        perf_ns=clock.perf_ns,
    )


@pytest.mark.anyio
async def test_close_lets_other_tasks_run_between_its_steps() -> None:
    """Other tasks run at least three times while a window closes; what they record lands in the next window."""
    clock, sink, board = Clock(), Sink(), Board()
    aggregator = Aggregator(0)
    keys = [OpKey("main", "w", "read", "n0"), OpKey("main", "w", "read", "n1"), OpKey("main", "w", "write", "n0")]
    recorders = [aggregator.recorder(k, 0) for k in keys]
    for i, rec in enumerate(recorders):
        for v in range(1, 200):
            rec.success(0, 0, v * 1000 * (i + 1))
    clock.ns = 1000 * MS
    closing = ticker(aggregator, clock, sink, board)
    ran_during_close: list[int] = []
    done = False

    async def other() -> None:
        while not done:
            ran_during_close.append(1)
            recorders[0].success(clock.ns, clock.ns, clock.ns + MS)  # an op finishing meanwhile
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await anyio.sleep(0)
        before = len(ran_during_close)
        await closing.close(1000 * MS)
        done = True
        during = len(ran_during_close) - before
    assert during >= 3
    windows = [e for e in sink.events if isinstance(e, WindowClosed)]
    assert len(windows) == 1
    event = windows[0]
    assert len(event.histograms) == 3  # every key's latency histogram, encoded
    star = {(r.op, r.endpoint): r for r in event.rows}
    assert star[("read", "*")].ok == 2 * 199 + before and star[("write", "*")].ok == 199
    assert board.judged == [(1000 * MS, 0)]
    # what ran during the close (after the swap) is the next window's, never lost
    assert aggregator.close_window(2000 * MS).stats[keys[0]].ok >= during


def test_an_op_on_one_endpoint_has_the_same_figures_in_its_endpoint_and_star_rows() -> None:
    """The '*' row of a single-endpoint op is its endpoint row plus the phase totals."""
    aggregator = Aggregator(0)
    key = OpKey("main", "w", "read", "n0")
    rec = aggregator.recorder(key, 0)
    for v in (100, 200, 5000, 90_000):
        rec.success(0, 0, v * 1000)
    rec.drop()
    window = aggregator.close_window(1000 * MS)
    endpoint, star = window_rows(window, aggregator, "main")
    assert endpoint.endpoint == "n0" and star.endpoint == "*"
    assert (endpoint.ok, endpoint.dropped, endpoint.p50_ms, endpoint.p99_ms, endpoint.max_ms) == (
        star.ok,
        star.dropped,
        star.p50_ms,
        star.p99_ms,
        star.max_ms,
    )
    assert star.total_ok == 4 and endpoint.total_ok == 0 and endpoint.total_p99_ms is None
