"""Tests for holoload.adapters.holofusion.metrics_http: HoloFusion name=value parsing and fetching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from holoload.adapters.holofusion.metrics_http import MetricsFetchError, fetch_text
from holoload.core.server.metrics import parse_holofusion
from tests.fakes.holofusion_http import serve
from tests.support import FIXTURES, fixture_text


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return "asyncio"


def parse_metrics_text(text: str) -> dict[str, float | str]:
    """The parsed lines by name (a repeated name keeps its last value), as the store sees them."""
    return {s.name: s.value for s in parse_holofusion(text)}


def test_before_fixture_parses_every_line() -> None:
    """All 86 lines of the before sample become metrics; ints stay int."""
    metrics = parse_metrics_text(fixture_text("metrics_node1_before.txt"))
    assert len(metrics) == 86
    assert metrics["tx_begin_count"] == 12
    assert isinstance(metrics["tx_begin_count"], int)
    assert metrics["distributed_write_shard_1_apply_rows"] == 40_000
    assert metrics["ingest_job_0_status"] == "completed"
    assert metrics["ingest_job_0_id"] == "bulk-7f3a"
    assert "distributed_write_shard_2_apply_rows" not in metrics


def test_after_fixture_keeps_strings_and_empty_values() -> None:
    """String values (status, ids, statement) stay str and an empty value is ''."""
    metrics = parse_metrics_text(fixture_text("metrics_node1_after.txt"))
    assert len(metrics) == 105
    assert metrics["ingest_job_0_status"] == "running"
    assert metrics["ingest_job_0_last_error"] == ""
    assert metrics["active_query_0_id"] == "q00000000000000af"
    assert metrics["active_query_0_statement"] == "insert"
    assert metrics["active_query_0_started_at_unix_ns"] == 1_763_764_000_000_000_000
    assert metrics["distributed_write_shard_2_apply_rows"] == 40_001
    assert metrics["distributed_write_target_127_0_0_1_15052_retryable_failures"] == 3


def test_value_types_int_float_and_str() -> None:
    """Integers -> int, decimals/exponents -> float, else str; values may contain '='."""
    metrics = parse_metrics_text("a=1\nb=-2\nc=1.5\nd=2e3\ne=abc\nf=x=y\ng=1_000\nh=NaN\n")
    assert metrics == {
        "a": 1,
        "b": -2,
        "c": 1.5,
        "d": 2000.0,
        "e": "abc",
        "f": "x=y",
        "g": "1_000",
        "h": metrics["h"],
    }
    assert isinstance(metrics["c"], float)
    assert isinstance(metrics["h"], float) and metrics["h"] != metrics["h"]


def test_blank_lines_are_skipped() -> None:
    """Blank and whitespace-only lines are ignored, CRLF endings too."""
    assert parse_metrics_text("\na=1\r\n   \nb=2\n\n") == {"a": 1, "b": 2}


def test_line_without_equals_raises_naming_the_line_number() -> None:
    """A line with no '=' is a ValueError that names its line number."""
    with pytest.raises(ValueError, match="line 3"):
        parse_metrics_text("a=1\nb=2\n# HELP not holofusion\n")
    with pytest.raises(ValueError, match="line 1: empty metric name"):
        parse_metrics_text("=5\n")


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fake HoloFusion node HTTP port with state in tmp_path."""
    async with serve(FIXTURES, tmp_path) as url:
        yield url


@pytest.mark.anyio
async def test_fetch_text_returns_metrics_before_and_after_a_split(base_url: str, tmp_path: Path) -> None:
    """/metrics is the before sample byte for byte, then the after sample once split."""
    async with aiohttp.ClientSession() as session:
        text = await fetch_text(session, f"{base_url}/metrics")
        assert text == fixture_text("metrics_node1_before.txt")
        (tmp_path / "split_calls.jsonl").write_text("{}\n", encoding="utf-8")
        text = await fetch_text(session, f"{base_url}/metrics")
        assert text == fixture_text("metrics_node1_after.txt")
        assert parse_metrics_text(text)["ingest_job_0_status"] == "running"


@pytest.mark.anyio
async def test_fake_node_serves_health_endpoints(base_url: str) -> None:
    """/live, /ready and /state answer 200 like a HoloFusion node."""
    async with aiohttp.ClientSession() as session:
        assert await fetch_text(session, f"{base_url}/live") == "ok"
        await fetch_text(session, f"{base_url}/ready")
        async with session.get(f"{base_url}/state") as response:
            assert response.status == 200
            assert await response.json() == {"state": "Ready"}


@pytest.mark.anyio
async def test_fetch_text_http_error_carries_url_and_cause(base_url: str) -> None:
    """A 404 raises MetricsFetchError with the URL and the aiohttp error as cause."""
    url = f"{base_url}/nope"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(MetricsFetchError) as caught:
            await fetch_text(session, url)
    assert caught.value.url == url
    assert isinstance(caught.value.cause, aiohttp.ClientResponseError)
    assert url in str(caught.value)


@pytest.mark.anyio
async def test_fetch_text_connection_refused_raises_adapter_error() -> None:
    """Nothing listening raises MetricsFetchError, not a raw aiohttp error."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(MetricsFetchError, match=f"127.0.0.1:{port}"):
            await fetch_text(session, f"http://127.0.0.1:{port}/metrics", timeout_s=2.0)


@pytest.mark.timeout(10)
@pytest.mark.anyio
async def test_fetch_text_times_out_on_a_silent_server() -> None:
    """A server that never answers is bounded by timeout_s and raises MetricsFetchError."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(MetricsFetchError) as caught:
                await fetch_text(session, f"http://127.0.0.1:{port}/metrics", timeout_s=0.3)
        assert isinstance(caught.value.cause, TimeoutError)
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
