"""Fake HoloFusion node HTTP surface (`/metrics`, `/live`, `/ready`, `/state`) for tests.

`/metrics` serves metrics_node1_before.txt until fake_holoctl has recorded a split in
`<state_dir>/split_calls.jsonl`, then metrics_node1_after.txt, byte for byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

SPLIT_CALLS = "split_calls.jsonl"


def make_app(fixtures_dir: Path, state_dir: Path) -> web.Application:
    """Build the aiohttp application serving the fixture files."""
    fixtures_dir = Path(fixtures_dir)
    state_dir = Path(state_dir)

    async def metrics(_request: web.Request) -> web.Response:
        phase = "after" if (state_dir / SPLIT_CALLS).exists() else "before"
        body = (fixtures_dir / f"metrics_node1_{phase}.txt").read_bytes()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def live(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ready")

    async def state(_request: web.Request) -> web.Response:
        return web.json_response({"state": "Ready"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/state", state)
    return app


@asynccontextmanager
async def serve(fixtures_dir: Path, state_dir: Path, *, port: int = 0) -> AsyncIterator[str]:
    """Serve `make_app` on 127.0.0.1 (port 0: the OS picks) and yield its base URL."""
    runner = web.AppRunner(make_app(fixtures_dir, state_dir), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound_port = runner.addresses[0][:2]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
