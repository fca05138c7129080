"""A worker engine in a local child process, driven over its stdin/stdout with framed pickles.

Each message is a 4-byte big-endian length and a pickle. The parent sends the worker's spec
first, then calls `(id, method, args)`; the child answers `(id, "ok", result)` or
`(id, "error", (exception type, message))`, calls running concurrently (a `flush` arrives while
`run` is still going). The child's stdout carries only these frames; its stderr is kept as a
tail for reports. A child whose parent dies reads end-of-file and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import signal
import struct
import sys
from collections import deque
from typing import Any

from holoload.core.errors import SetupError, WorkerLost

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 30
STDERR_TAIL = 20


class WorkerFailed(RuntimeError):
    """A worker method raised; the message names the worker, the method and the error."""


async def read_message(reader: asyncio.StreamReader) -> Any:
    """The next message, or None at end of file.

    Raises:
        ValueError: a frame longer than MAX_MESSAGE.
    """
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE:
        raise ValueError(f"frame of {length} bytes is over the {MAX_MESSAGE}-byte limit")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None
    return pickle.loads(payload)  # noqa: S301 - frames come only from our own child or parent


def frame(message: object) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


class ProcessWorker:
    """The parent's handle on one worker process.

    Args:
        slot: the worker's slot (for messages).
        spec: what the child's engine is built from (pickled to it first).
        module: the child's entry module (`python -m module`).
    """

    def __init__(self, slot: int, spec: object, *, module: str = "holoload.engine.worker_main") -> None:
        self.slot = slot
        self.spec = spec
        self.module = module
        self.proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL)
        self._gone: str | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(self.spec))
        await self.proc.stdin.drain()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._drain_stderr())]

    async def call(self, method: str, *args: object, timeout_s: float | None = None) -> Any:
        """Call a worker engine method and wait for its answer.

        Raises:
            WorkerLost: the process died, or did not answer within `timeout_s` (it is then killed).
            SetupError: the method raised one (a writer could not connect).
            WorkerFailed: the method raised anything else.
        """
        if self._gone is not None or self.proc is None or self.proc.stdin is None:
            raise WorkerLost(self.slot, self._gone or "not started")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            self.proc.stdin.write(frame((call_id, method, args)))
            await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(call_id, None)
            raise WorkerLost(self.slot, await self._describe(f"its input pipe broke ({exc})")) from exc
        try:
            status, payload = await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            self.kill()
            raise WorkerLost(self.slot, f"no answer to {method} within {timeout_s:g}s; killed it") from exc
        finally:
            self._pending.pop(call_id, None)
        if status == "ok":
            return payload
        kind, message = payload
        if kind == "SetupError":
            raise SetupError(message)
        raise WorkerFailed(f"worker {self.slot}: {method} failed: {kind}: {message}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Ask the child to exit; kill it when it does not within `timeout_s`."""
        proc = self.proc
        if proc is None:
            return
        if self._gone is None and proc.returncode is None:
            with contextlib.suppress(WorkerLost, WorkerFailed, SetupError):
                await self.call("exit", timeout_s=timeout_s)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            self.kill()
            await proc.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        reason = "its output ended"
        try:
            while (message := await read_message(self.proc.stdout)) is not None:
                call_id, status, payload = message
                future = self._pending.get(call_id)
                if future is not None and not future.done():
                    future.set_result((status, payload))
        except (ValueError, pickle.UnpicklingError, EOFError) as exc:
            reason = f"it sent a bad frame ({exc})"
            self.kill()
        self._gone = await self._describe(reason)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerLost(self.slot, self._gone))

    async def _describe(self, reason: str) -> str:
        """How the process ended (exit code or signal), and the tail of its stderr."""
        assert self.proc is not None
        try:
            code = await asyncio.wait_for(self.proc.wait(), 5.0)
        except TimeoutError:
            code = None
        if code is None:
            how = f"{reason}, the process (pid {self.proc.pid}) still runs"
        elif code < 0:
            how = f"pid {self.proc.pid} killed by {signal.Signals(-code).name}"
        else:
            how = f"pid {self.proc.pid} exited with code {code}"
        await asyncio.sleep(0.05)  # let the stderr reader take the last lines
        tail = " | ".join(line for line in list(self._stderr)[-5:] if line)
        return how + (f"; stderr: {tail}" if tail else "")

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())
