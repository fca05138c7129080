"""The coordinator's side of worker processes: start them, run phases on them, collect windows.

A `WorkerFleet` owns one handle per worker slot (a local process, a Ray actor or, for a run in
one process, an `InProcessWorker`, all with `call(method, *args)`), the clock offset of each,
and what happens when one is lost: it is reported as a `RunProblem("worker_lost")`, then either
the run fails (`on_loss = "fail"`: the fleet sets `failed` and the engine aborts) or a new worker
takes the slot's share with a seq partition no earlier worker used (`on_loss = "restart"`, at
most `max_restarts` times in all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import anyio

from holoload.core.errors import SetupError, WorkerLost
from holoload.core.events import EventSink, RunProblem
from holoload.core.gates.verdicts import Verdict
from holoload.core.model.scenario import Scenario
from holoload.core.outcome import ErrorRules
from holoload.core.stats.wire import WorkerWindow
from holoload.engine.phase_end import LoadEnded
from holoload.engine.worker import WorkerSpec

CLOCK_PINGS = 5


class WorkerHandle(Protocol):
    """A worker engine somewhere: `call` runs one of its methods and returns the result."""

    slot: int

    async def start(self) -> None: ...

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any: ...

    def kill(self) -> None: ...

    async def close(self, timeout_s: float = 10.0) -> None: ...


Launcher = Callable[[int, WorkerSpec], WorkerHandle]


def worker_specs(
    scenario: Scenario,
    names: Sequence[str],
    dsns: Sequence[str],
    rules: ErrorRules | None,
    *,
    shared: bool,
    count: int,
) -> list[WorkerSpec]:
    """One spec per worker slot. With `on_worker_loss = "restart"` the seq id space has room for
    every restart (a restarted slot takes partition slot + count * generation)."""
    run = scenario.run
    parts = count * (run.worker_restarts + 1) if run.on_worker_loss == "restart" else count
    return [
        WorkerSpec(scenario, tuple(names), tuple(dsns), rules, shared, slot, count, slot, parts)
        for slot in range(count)
    ]


@dataclass
class Member:
    """One slot's current worker (`direct`: it records straight into our aggregator, on our clock)."""

    handle: WorkerHandle
    spec: WorkerSpec
    offset_ns: int = 0
    pid: int | None = None
    host: str = ""
    generation: int = 0
    direct: bool = False


@dataclass
class WorkerFleet:
    """Worker slots and their workers.

    Args:
        specs: one spec per slot (index i, count len(specs)).
        launch: makes the handle of a slot's worker.
        sink: where worker_started/worker_lost problems go.
        on_loss: "fail" or "restart".
        max_restarts: restarts allowed over the whole run (restart mode).
        flush_timeout_s: a worker that does not hand over its window within this is lost.
    """

    specs: list[WorkerSpec]
    launch: Launcher
    sink: EventSink
    on_loss: str = "fail"
    max_restarts: int = 3
    flush_timeout_s: float = 30.0
    clock: Callable[[], float] = time.time
    perf_ns: Callable[[], int] = time.perf_counter_ns
    members: list[Member | None] = field(default_factory=list)
    failed: str | None = None
    losses: list[str] = field(default_factory=list)
    restarts: int = 0
    _current: str | None = None
    _flushing: dict[int, tuple[Member, asyncio.Future[Any]]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.specs)

    def live(self) -> list[Member]:
        return [m for m in self.members if m is not None]

    async def start(self) -> None:
        """Start every worker at once and measure each one's clock offset."""
        self.members = [None] * self.count

        async def one(slot: int) -> None:
            try:
                self.members[slot] = await self._start(slot, self.specs[slot], 0)
            except WorkerLost as exc:
                raise SetupError(f"could not start worker {slot}: {exc.detail}") from exc

        try:
            async with anyio.create_task_group() as tg:
                for slot in range(self.count):
                    tg.start_soon(one, slot)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.close()
            raise

    async def _start(self, slot: int, spec: WorkerSpec, generation: int) -> Member:
        handle = self.launch(slot, spec)
        await handle.start()
        info = await handle.call("hello", timeout_s=60.0)  # the first answer waits for the worker's start-up
        if info.get("direct"):  # in this process: our clock, our aggregator
            return Member(handle, spec, 0, info.get("pid"), str(info.get("host", "")), generation, direct=True)
        best: tuple[int, int] | None = None
        for _ in range(CLOCK_PINGS):  # the offset from the quickest round trip: its error is under half of it
            before = self.perf_ns()
            now = int((await handle.call("hello", timeout_s=60.0))["now_ns"])
            after = self.perf_ns()
            if best is None or after - before < best[0]:
                best = (after - before, (before + after) // 2 - now)  # the worker's clock + offset = ours
        assert best is not None
        return Member(handle, spec, best[1], info.get("pid"), str(info.get("host", "")), generation)

    async def prepare(self, phase: str) -> None:
        """Every live worker builds its share of the phase and connects its writers."""
        self._current = phase
        await self._each(lambda m: m.handle.call("prepare", phase))

    async def run(self, start_ns: int, end_ns: int | None) -> list[LoadEnded]:
        """Run the prepared phase on every worker from `start_ns` (our clock) until each is done.

        Returns:
            How each worker's load ended that finished (our clock).
        """
        ended: list[LoadEnded] = []
        try:
            async with anyio.create_task_group() as tg:
                for slot in range(self.count):
                    tg.start_soon(self._run_slot, slot, start_ns, end_ns, ended)
        finally:
            self._current = None
        return ended

    async def _run_slot(self, slot: int, start_ns: int, end_ns: int | None, ended: list[LoadEnded]) -> None:
        resume: int | None = None
        while (member := self.members[slot]) is not None:
            off = member.offset_ns
            try:
                done = await member.handle.call(
                    "run",
                    start_ns - off,
                    None if end_ns is None else end_ns - off,
                    None if resume is None else resume - off,
                )
                ended.append(replace(done, ended_ns=done.ended_ns + off))
                return
            except WorkerLost as exc:
                if not await self._lost(slot, exc):
                    return
                resume = self.perf_ns()

    async def collect(self, wait_s: float | None = None) -> list[tuple[WorkerWindow, int]]:
        """Every live worker's window since its last flush, with its clock offset.

        Args:
            wait_s: how long to wait for slow workers (None: until each answers or is lost). A
                worker that has not answered by then keeps its flush going: its window is
                taken at the next collect, so one slow worker never holds up the others'
                windows. It is lost only after `flush_timeout_s`.
        """
        for slot, member in enumerate(self.members):
            if member is not None and not member.direct and slot not in self._flushing:
                call = member.handle.call("flush", timeout_s=self.flush_timeout_s)
                self._flushing[slot] = (member, asyncio.ensure_future(call))
        if self._flushing:
            await asyncio.wait([task for _, task in self._flushing.values()], timeout=wait_s)
        out: list[tuple[WorkerWindow, int]] = []
        for slot, (member, task) in list(self._flushing.items()):
            if not task.done():
                continue
            del self._flushing[slot]
            try:
                out.append((task.result(), member.offset_ns))
            except WorkerLost as exc:
                if self.members[slot] is member:
                    await self._lost(slot, exc)
        return out

    async def stop(self) -> None:
        """Graceful stop on every live worker (their running phase ends once in-flight work is done)."""
        await self._each(lambda m: m.handle.call("stop", timeout_s=self.flush_timeout_s))

    async def cancel(self) -> list[LoadEnded]:
        """Abandon the running phase on every live worker.

        Returns:
            How the load ended on the workers whose phase has already wound down (our clock).
        """
        ended: list[LoadEnded] = []

        async def cancel(member: Member) -> None:
            done = await member.handle.call("cancel", timeout_s=self.flush_timeout_s)
            if isinstance(done, LoadEnded):
                ended.append(replace(done, ended_ns=done.ended_ns + member.offset_ns))

        await self._each(cancel)
        return ended

    async def txn_records(self) -> list[tuple[dict[str, Any], int]]:
        """Every live worker's transactional histories and counts (`WorkerEngine.txn_records`), with its
        clock offset; a worker lost on the way is lost with its history (see `losses`)."""
        out: list[tuple[dict[str, Any], int]] = []

        async def one(member: Member) -> None:
            out.append((await member.handle.call("txn_records", timeout_s=self.flush_timeout_s), member.offset_ns))

        await self._each(one)
        return out

    async def close(self) -> None:
        for _, task in self._flushing.values():
            task.cancel()
        self._flushing.clear()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for member in self.live():
                    tg.start_soon(member.handle.close)
        self.members = [None] * self.count

    def verdict(self) -> Verdict | None:
        """A failing `workers` gate when a lost worker failed the run (on_worker_loss = fail)."""
        if self.failed is None:
            return None
        lost = len(self.losses)
        expression = "no worker process lost (run.on_worker_loss = fail)"
        return Verdict("workers", expression, False, float(lost), 0.0, str(lost), "0", self.failed)

    def summary(self, mode: str) -> dict[str, object]:
        """summary.json's `workers`: count, mode, lost (one line each) and restarts."""
        return {"count": self.count, "mode": mode, "lost": list(self.losses), "restarts": self.restarts}

    async def _each(self, call: Callable[[Member], Awaitable[Any]]) -> None:
        async def one(slot: int, member: Member) -> None:
            try:
                await call(member)
            except WorkerLost as exc:
                await self._lost(slot, exc)

        async with anyio.create_task_group() as tg:
            for slot, member in enumerate(self.members):
                if member is not None:
                    tg.start_soon(one, slot, member)

    async def _lost(self, slot: int, exc: WorkerLost) -> bool:
        """Report a lost worker; True when a new one took its slot (and joined the running phase)."""
        member = self.members[slot]
        if member is None:
            return False
        self.members[slot] = None
        member.handle.kill()
        with anyio.CancelScope(shield=True):
            await member.handle.close(timeout_s=2.0)
        where = f" on {member.host}" if member.host else ""
        message = f"worker {slot} (pid {member.pid}{where}) lost: {exc.detail}"
        self.losses.append(message)
        restart = self.on_loss == "restart" and self.restarts < self.max_restarts
        self.sink.emit(
            RunProblem(
                self.clock(),
                "worker_lost",
                message
                + ("; starting a new worker for its share" if restart else f"; on_worker_loss = {self.on_loss}"),
            )
        )
        if not restart:
            if self.on_loss != "restart" and self.failed is None:
                self.failed = message
            return False
        self.restarts += 1
        generation = member.generation + 1
        spec = replace(
            member.spec,
            seq_index=slot + self.count * generation,
            seq_parts=self.count * (self.max_restarts + 1),
        )
        try:
            fresh = await self._start(slot, spec, generation)
            if self._current is not None:
                await fresh.handle.call("prepare", self._current)
        except (WorkerLost, OSError) as again:
            self.failed = f"worker {slot} could not be restarted: {again}"
            self.sink.emit(RunProblem(self.clock(), "worker_lost", self.failed))
            return False
        self.members[slot] = fresh
        return True
