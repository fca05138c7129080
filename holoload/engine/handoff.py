"""The open loop's hand-off: arrivals go from the dispatcher straight to an idle executor task.

`asyncio.Queue` costs a getter future, a `call_soon` and bookkeeping on both sides of every
item; here an arrival goes to the longest-waiting idle task's future, or into a small bounded
backlog when every task is busy, or is refused (the caller counts a drop).
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Handoff"]


class Handoff:
    """Intended start times from one dispatcher to the executor tasks of one endpoint.

    Args:
        depth: how many arrivals may wait while every task is busy, >= 0 (0: none wait).

    Raises:
        ValueError: ``depth`` is negative.
    """

    __slots__ = ("_backlog", "_closed", "_idle", "depth")

    def __init__(self, depth: int) -> None:
        if depth < 0:
            raise ValueError(f"expected depth >= 0, got {depth}")
        self.depth = depth
        self._idle: deque[asyncio.Future[int | None]] = deque()
        self._backlog: deque[int] = deque()
        self._closed = False

    @property
    def idle(self) -> int:
        """Tasks waiting for an arrival right now."""
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Arrivals in the backlog (every task was busy when they came)."""
        return len(self._backlog)

    def offer(self, intended_ns: int) -> bool:
        """Hand an arrival to an idle task, else to the backlog; False when that is full (a drop).

        Raises:
            RuntimeError: the hand-off was closed.
        """
        if self._closed:
            raise RuntimeError("offer after close")
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():  # a waiter cancelled meanwhile is skipped
                waiter.set_result(intended_ns)
                return True
        if len(self._backlog) < self.depth:
            self._backlog.append(intended_ns)
            return True
        return False

    async def take(self) -> int | None:
        """The next arrival (the backlog first), waiting while there is none; None once closed and empty.

        An arrival handed to a task that is cancelled before it resumes goes back to the front
        of the backlog, so it is counted (run or dropped), never lost.
        """
        if self._backlog:
            return self._backlog.popleft()
        if self._closed:
            return None
        waiter: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is not None:
                    self._backlog.appendleft(handed)
            elif waiter in self._idle:
                self._idle.remove(waiter)  # rare (a cancelled task): a linear scan is fine
            raise

    def close(self) -> None:
        """No more arrivals: waiting tasks get None; the backlog is still taken first."""
        self._closed = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def leftover(self) -> list[int]:
        """Take every arrival still in the backlog (after the tasks stopped: they never ran)."""
        out = list(self._backlog)
        self._backlog.clear()
        return out
