"""A real aiohttp webhook receiver on 127.0.0.1 (own thread and loop) that records what is POSTed to it."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    content_type: str
    body: Any


@dataclass
class WebhookReceiver:
    """`with WebhookReceiver() as base:` serves `POST /ok` (200), `/fail` (500), `/bad` (400), `/slow` (sleeps).

    `received` lists every request in arrival order (a 500 is recorded too, so retries show).
    """

    slow_s: float = 3.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook", daemon=True)
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    def by_path(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.received.append(Received(request.path, request.content_type, body))
        name = request.match_info["name"]
        if name == "fail":
            return web.Response(status=500, text="boom")
        if name == "bad":
            return web.Response(status=400, text="invalid_payload")
        if name == "slow":
            await asyncio.sleep(self.slow_s)
        return web.Response(text="ok")

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def refused_url() -> str:
    """A loopback URL nobody listens on (a port bound and released just now)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
