"""HTTP samplers against fake nodes: metrics ticks, dead and slow endpoints, health, wait_ready."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from holoload.adapters.holofusion.samplers import (
    HealthObservation,
    HealthSampler,
    MetricsSampler,
    parse_state,
    wait_ready,
)
from holoload.core.errors import ExitCode, SetupError
from holoload.core.server.metrics import parse_metrics
from holoload.core.server.metrics_store import MetricsStore
from tests.fakes import holofusion_http, prometheus_http
from tests.fakes.prometheus_http import ESCAPED_PATH, FakeExporter
from tests.support import FIXTURES

BEFORE = (FIXTURES / "metrics_node1_before.txt").read_bytes().decode("utf-8")

SampleRecord = tuple[str, float, str | None, str | None]


def _closed_port_url() -> str:
    """A loopback URL nobody listens on (a port the OS just handed out and took back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _not_ready_app(*, state_body: str, content_type: str, ready_after: int | None = None) -> web.Application:
    """A node whose /ready answers 503 (until `ready_after` /ready requests, if given)."""
    ready_calls = itertools.count(1)

    async def live(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ready(_request: web.Request) -> web.Response:
        if ready_after is not None and next(ready_calls) > ready_after:
            return web.Response(text="ready")
        return web.Response(status=503, text="not ready")

    async def state(_request: web.Request) -> web.Response:
        return web.Response(text=state_body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/state", state)
    return app


BOOTSTRAPPING = '{"state": "Bootstrapping", "detail": "catching up shard 2"}'


@asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _collector(
    records: list[SampleRecord], wanted: int, done: anyio.Event
) -> Callable[[str, float, str | None, str | None], None]:
    def on_sample(node: str, ts: float, text: str | None, error: str | None) -> None:
        records.append((node, ts, text, error))
        if len(records) >= wanted:
            done.set()

    return on_sample


# --- MetricsSampler -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_metrics_samples_arrive_at_the_interval(tmp_path: Path) -> None:
    """Polling a fake HoloFusion node every 0.1 s delivers its exact body, spaced by the interval."""
    records: list[SampleRecord] = []
    done = anyio.Event()
    async with holofusion_http.serve(FIXTURES, tmp_path) as base, aiohttp.ClientSession() as session:
        sampler = MetricsSampler(
            "node1",
            f"{base}/metrics",
            interval_s=0.1,
            session=session,
            on_sample=_collector(records, 3, done),
            clock=time.monotonic,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler.run)
            with anyio.fail_after(5):
                await done.wait()
            tg.cancel_scope.cancel()
    assert [(node, text, error) for node, _ts, text, error in records[:3]] == [("node1", BEFORE, None)] * 3
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(records)]
    assert all(gap >= 0.05 for gap in gaps), gaps
    assert sampler.successes == len(records) and sampler.failures == 0 and sampler.last_error is None


@pytest.mark.anyio
async def test_dead_url_records_failures_without_raising() -> None:
    """A closed port is reported as an error outcome and counted; run() keeps polling."""
    records: list[SampleRecord] = []
    done = anyio.Event()
    url = f"{_closed_port_url()}/metrics"
    async with aiohttp.ClientSession() as session:
        sampler = MetricsSampler("node9", url, interval_s=0.05, session=session, on_sample=_collector(records, 3, done))
        assert await sampler.poll_once() is False
        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler.run)
            with anyio.fail_after(5):
                await done.wait()
            tg.cancel_scope.cancel()
    assert all(text is None and error and url in error for _node, _ts, text, error in records)
    assert sampler.failures == len(records) >= 3 and sampler.successes == 0
    assert sampler.last_error is not None and url in sampler.last_error


@pytest.mark.anyio
async def test_slow_endpoint_is_bounded_by_the_timeout() -> None:
    """A /metrics handler slower than timeout_s gives a timeout outcome after about timeout_s."""
    records: list[SampleRecord] = []
    async with prometheus_http.serve(FakeExporter(delay_s=10.0)) as base, aiohttp.ClientSession() as session:
        sampler = MetricsSampler(
            "slow",
            f"{base}/metrics",
            timeout_s=0.2,
            session=session,
            on_sample=_collector(records, 1, anyio.Event()),
        )
        started = anyio.current_time()
        with anyio.fail_after(5):
            ok = await sampler.poll_once()
        elapsed = anyio.current_time() - started
    assert ok is False and elapsed < 2.0
    assert records[0][2] is None and "timed out after 0.2s" in (records[0][3] or "")
    assert sampler.failures == 1


@pytest.mark.anyio
async def test_prometheus_restart_is_a_reset_not_a_negative_delta() -> None:
    """Sampler -> parse -> store: a counter going backwards after a restart adds, never subtracts."""
    exporter = FakeExporter()
    store = MetricsStore()

    def on_sample(node: str, ts: float, text: str | None, error: str | None) -> None:
        assert text is not None, error
        store.observe(node, ts, parse_metrics(text))

    clock = itertools.count(0.0, 10.0)
    async with prometheus_http.serve(exporter) as base, aiohttp.ClientSession() as session:
        sampler = MetricsSampler(
            "exp", f"{base}/metrics", session=session, on_sample=on_sample, clock=lambda: next(clock)
        )
        await sampler.poll_once()  # 200-series at 10
        await sampler.poll_once()  # 20
        exporter.restart()
        await sampler.poll_once()  # 10 again: counted since the restart
    assert store.delta("http_requests_total", labels={"code": "200", "method": "get"}) == 10 + 10
    assert store.delta("http_requests_total", labels={"code": "500"}) == 1 + 1
    assert store.resets("http_requests_total") == 2  # the post series stayed at 0
    rate = store.rate("http_requests_total", labels={"code": "200"})
    assert rate is not None and rate == pytest.approx(20 / 20)
    assert store.delta("http_requests_total", labels={"path": ESCAPED_PATH}) == 0
    assert store.delta("request_seconds_count") == 3 + 3
    assert store.max("queue_depth") == 4 and store.last("temperature_celsius") is not None


# --- HealthSampler --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_health_of_a_ready_holofusion_node(tmp_path: Path) -> None:
    """/live 200, /ready 200 and /state {"state": "Ready"} read as live, ready, Ready."""
    seen: list[HealthObservation] = []
    async with holofusion_http.serve(FIXTURES, tmp_path) as base, aiohttp.ClientSession() as session:
        sampler = HealthSampler("node1", base, session=session, on_observation=seen.append, clock=lambda: 42.0)
        observation = await sampler.poll_once()
    assert observation == HealthObservation("node1", 42.0, True, True, "Ready", None, None)
    assert seen == [observation] and sampler.successes == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("state_body", "content_type", "state", "detail"),
    [
        (BOOTSTRAPPING, "application/json", "Bootstrapping", "catching up shard 2"),
        ("Degraded\n", "text/plain", "Degraded", "not ready"),
    ],
    ids=["json", "plain-text"],
)
async def test_health_of_a_node_not_ready(state_body: str, content_type: str, state: str, detail: str) -> None:
    """/ready 503 is ready=False (not an error); the state comes from JSON or a plain text body."""
    app = _not_ready_app(state_body=state_body, content_type=content_type)
    async with _serve(app) as base, aiohttp.ClientSession() as session:
        observation = await HealthSampler("node2", base, session=session).poll_once()
    assert (observation.live, observation.ready, observation.state, observation.detail) == (True, False, state, detail)
    assert observation.error is None


@pytest.mark.anyio
async def test_health_of_a_dead_node_is_unknown_with_an_error() -> None:
    """No answer at all: live/ready/state are None and the error names each endpoint."""
    async with aiohttp.ClientSession() as session:
        sampler = HealthSampler("node3", _closed_port_url(), timeout_s=1.0, session=session)
        with anyio.fail_after(5):
            observation = await sampler.poll_once()
    assert (observation.live, observation.ready, observation.state) == (None, None, None)
    assert observation.error is not None and all(f"/{p}:" in observation.error for p in ("live", "ready", "state"))
    assert sampler.failures == 1


def test_parse_state_accepts_json_objects_json_strings_and_plain_text() -> None:
    """`/state` bodies of every shape give (state, detail)."""
    assert parse_state(BOOTSTRAPPING) == ("Bootstrapping", "catching up shard 2")
    assert parse_state('{"state": "Degraded", "detail": {"down": [2]}}') == ("Degraded", '{"down":[2]}')
    assert parse_state('"NotReady"') == ("NotReady", None)
    assert parse_state("Ready\n") == ("Ready", None)
    assert parse_state("  ") == (None, None)


# --- wait_ready -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_wait_ready_returns_when_every_node_is_ready(tmp_path: Path) -> None:
    """Ready nodes, and one that turns ready on its third /ready, end the wait well before the timeout."""
    late = _not_ready_app(state_body=BOOTSTRAPPING, content_type="application/json", ready_after=2)
    async with (
        holofusion_http.serve(FIXTURES, tmp_path) as ready_base,
        _serve(late) as late_base,
        aiohttp.ClientSession() as session,
    ):
        started = anyio.current_time()
        nodes = [("node1", ready_base), ("node2", late_base)]
        await wait_ready(nodes, timeout_s=5.0, session=session, interval_s=0.05)
        assert anyio.current_time() - started < 4.0


@pytest.mark.anyio
async def test_wait_ready_raises_setup_error_naming_the_nodes_not_ready(tmp_path: Path) -> None:
    """After the bounded timeout, SetupError (exit 3) names each node not ready with its last status."""
    not_ready = _not_ready_app(state_body=BOOTSTRAPPING, content_type="application/json")
    async with (
        holofusion_http.serve(FIXTURES, tmp_path) as ready_base,
        _serve(not_ready) as not_ready_base,
        aiohttp.ClientSession() as session,
    ):
        nodes = [("node1", ready_base), ("node2", not_ready_base), ("node3", _closed_port_url())]
        started = anyio.current_time()
        with pytest.raises(SetupError) as excinfo:
            await wait_ready(nodes, timeout_s=0.5, session=session, interval_s=0.1)
        assert anyio.current_time() - started < 3.0
    message = str(excinfo.value)
    assert excinfo.value.exit_code == ExitCode.SETUP
    assert "node2: live=True ready=False state=Bootstrapping (catching up shard 2)" in message
    assert "node3:" in message and "error: /live:" in message
    assert "node1" not in message
