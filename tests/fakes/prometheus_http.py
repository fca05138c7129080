"""Fake Prometheus exporter (`GET /metrics` in text exposition format 0.0.4) for sampler tests.

Every scrape adds 10 to `http_requests_total{code="200",...}` and 1 to the `code="500"` series;
`restart()` makes the next scrape start again from zero, as a restarted process would.
`delay_s` makes `/metrics` answer late (for timeout tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from aiohttp import web

#: A label value that needs every escape of the format: `"`, `\` and a newline.
ESCAPED_PATH = 'a"b\\c\nd'


class FakeExporter:
    """State of the fake: scrape count since the last restart, and a response delay."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.scrapes = 0

    def restart(self) -> None:
        """Reset every counter: the next scrape shows what was counted since the 'restart'."""
        self.scrapes = 0

    def render(self) -> str:
        """Count one scrape and return the exposition text."""
        self.scrapes += 1
        ok, failed = 10 * self.scrapes, self.scrapes
        escaped = ESCAPED_PATH.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return (
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{code="200",method="get"}} {ok}\n'
            f'http_requests_total{{code="500",method="get"}} {failed}\n'
            f'http_requests_total{{code="200",method="post",path="{escaped}"}} 0\n'
            "# HELP queue_depth Items waiting.\n"
            "# TYPE queue_depth gauge\n"
            f"queue_depth {3 + self.scrapes % 2}\n"
            "# HELP request_seconds Request latency.\n"
            "# TYPE request_seconds histogram\n"
            f'request_seconds_bucket{{le="0.01"}} {self.scrapes}\n'
            f'request_seconds_bucket{{le="0.1"}} {2 * self.scrapes}\n'
            f'request_seconds_bucket{{le="+Inf"}} {3 * self.scrapes}\n'
            f"request_seconds_sum {0.25 * self.scrapes}\n"
            f"request_seconds_count {3 * self.scrapes}\n"
            "# TYPE temperature_celsius gauge\n"
            "temperature_celsius NaN\n"
        )


def make_app(exporter: FakeExporter) -> web.Application:
    """Build the aiohttp application serving `exporter`."""

    async def metrics(_request: web.Request) -> web.Response:
        if exporter.delay_s:
            await anyio.sleep(exporter.delay_s)
        return web.Response(text=exporter.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def serve(exporter: FakeExporter, *, port: int = 0) -> AsyncIterator[str]:
    """Serve `make_app(exporter)` on 127.0.0.1 (port 0: the OS picks) and yield its base URL."""
    # A handler still sleeping when the client gives up is cancelled, so cleanup never waits.
    runner = web.AppRunner(make_app(exporter), access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        host, bound_port = runner.addresses[0][:2]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
