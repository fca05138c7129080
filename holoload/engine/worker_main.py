"""A worker process's main: `python -m holoload.engine.worker_main`, started by `ProcessWorker`.

It reads its spec and then calls from stdin, runs them on a `WorkerEngine` under uvloop, and
answers on the original stdout (fd 1 is pointed at stderr, so a stray print cannot corrupt a
frame). SIGINT and SIGTERM are ignored: a Ctrl-C or a `kill` of the process group reaches
every process, and the coordinator, which handles them, tells its workers to stop (a worker
whose coordinator is gone reads end-of-file and exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from holoload.adapters.workers.local import frame, read_message
from holoload.engine.worker import WorkerEngine

METHODS = frozenset({"hello", "prepare", "run", "stop", "cancel", "flush", "txn_records"})


async def serve(out_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    spec = await read_message(reader)
    if spec is None:
        return
    engine = WorkerEngine(spec)
    lock = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def answer(message: tuple[Any, ...]) -> None:
        async with lock:
            writer.write(frame(message))
            await writer.drain()

    async def handle(call_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            result = await getattr(engine, method)(*args)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the coordinator
            await answer((call_id, "error", (type(exc).__name__, str(exc))))
        else:
            await answer((call_id, "ok", result))

    while (message := await read_message(reader)) is not None:
        call_id, method, args = message
        if method == "exit":
            await answer((call_id, "ok", None))
            break
        if method not in METHODS:
            await answer((call_id, "error", ("ValueError", f"unknown method {method!r}")))
            continue
        task = asyncio.create_task(handle(call_id, method, args))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for task in list(tasks):  # the coordinator left (or said exit): abandon the phase
        task.cancel()
    for task in list(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        import uvloop

        uvloop.run(serve(out_fd))
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        asyncio.run(serve(out_fd))


if __name__ == "__main__":
    main()
