"""FaultProxy against real PostgreSQL: transparent when healthy, and each fault does what it says, live."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import statistics
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from holoload.adapters.faults.netproxy import FaultProxy, NetFaults, ProxyStats
from holoload.adapters.local.cluster import LocalNode

pytestmark = pytest.mark.anyio

#: What a dropped or reset connection may surface as from asyncpg.
CONNECTION_ERRORS = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, ConnectionError)


@pytest.fixture
async def proxy(pg_cluster: list[LocalNode]) -> AsyncIterator[FaultProxy]:
    """A started proxy in front of the first session node."""
    async with FaultProxy("127.0.0.1", pg_cluster[0].port, seed=7, name="node1") as started:
        yield started


def dsn_for(port: int) -> str:
    """A DSN for the session cluster's superuser through `port`."""
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def connect(proxy: FaultProxy, timeout_s: float = 5.0) -> asyncpg.Connection:
    """An asyncpg connection through the proxy, with its statement cache warm for `SELECT 1`."""
    conn = await asyncpg.connect(dsn_for(proxy.port), timeout=timeout_s, ssl=False)
    assert await conn.fetchval("SELECT 1") == 1
    return conn


async def round_trips_s(conn: asyncpg.Connection, count: int = 5) -> list[float]:
    """Wall time of `count` prepared `SELECT 1` round trips."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert await conn.fetchval("SELECT 1") == 1
        times.append(time.perf_counter() - started)
    return times


async def wait_for_stats(proxy: FaultProxy, *, active: int, timeout_s: float = 2.0) -> ProxyStats:
    """The proxy's stats once `active` connections remain (closes reach the proxy asynchronously)."""
    async with asyncio.timeout(timeout_s):
        while proxy.stats.active != active:
            await asyncio.sleep(0.01)
    return proxy.stats


def proxy_tasks() -> list[asyncio.Task[object]]:
    """Unfinished tasks running the proxy's own coroutines."""
    names = {"_Pipe.run", "_Link._connect"}
    return [t for t in asyncio.all_tasks() if not t.done() and getattr(t.get_coro(), "__qualname__", "") in names]


def test_net_faults_default_is_healthy_and_bad_values_are_rejected() -> None:
    """NetFaults() is healthy, any fault is not, and negative or zero rates raise ValueError."""
    assert NetFaults().healthy
    assert not NetFaults(latency_s=0.01).healthy
    assert not NetFaults(refuse=True).healthy
    for bad in ({"latency_s": -1.0}, {"jitter_s": -0.1}, {"bandwidth_bps": 0.0}, {"latency_s": float("nan")}):
        with pytest.raises(ValueError):
            NetFaults(**bad)  # type: ignore[arg-type]


async def test_healthy_proxy_is_transparent_and_counts_connections_and_bytes(proxy: FaultProxy) -> None:
    """Concurrent queries through a healthy proxy return the right rows; stats count what went through."""
    conns = [await connect(proxy) for _ in range(4)]
    try:
        sums = await asyncio.gather(
            *(c.fetchval("SELECT sum(g) FROM generate_series(1, $1::int) g", 1000) for c in conns)
        )
        assert sums == [500500] * 4
        stats = proxy.stats
        assert (stats.accepted, stats.refused, stats.resets, stats.active) == (4, 0, 0, 4)
        assert stats.bytes_up > 0 and stats.bytes_down > 0
    finally:
        for conn in conns:
            await conn.close()
    assert (await wait_for_stats(proxy, active=0)).accepted == 4


async def test_latency_slows_round_trips_and_heal_restores_them(proxy: FaultProxy) -> None:
    """latency_s=0.05 makes a round trip take >= 0.1 s (both directions); heal() brings it back."""
    conn = await connect(proxy)
    try:
        assert statistics.median(await round_trips_s(conn)) < 0.05
        proxy.set_faults(NetFaults(latency_s=0.05))
        slowed = statistics.median(await round_trips_s(conn))
        assert 0.098 <= slowed < 0.3
        proxy.heal()
        assert proxy.faults.healthy
        assert statistics.median(await round_trips_s(conn)) < 0.05
    finally:
        await conn.close()


async def test_jitter_stays_within_latency_plus_or_minus_jitter_and_varies(proxy: FaultProxy) -> None:
    """With 40 +- 30 ms each way, round trips fall in [20, 140] ms (plus server time) and are not all alike."""
    conn = await connect(proxy)
    try:
        proxy.set_faults(NetFaults(latency_s=0.04, jitter_s=0.03))
        times = await round_trips_s(conn, count=8)
        assert all(0.0195 <= t < 0.14 + 0.03 for t in times), times
        assert max(times) - min(times) > 0.01, times
    finally:
        await conn.close()


async def test_jitter_never_reorders_bytes_in_a_large_transfer(proxy: FaultProxy) -> None:
    """A 1 MB upload and download under heavy jitter arrive intact (chunks stay in order)."""
    conn = await connect(proxy)
    try:
        proxy.set_faults(NetFaults(latency_s=0.005, jitter_s=0.005))
        payload = "".join(chr(ord("a") + i % 26) for i in range(1000)) * 1000
        assert await conn.fetchval("SELECT md5($1::text)", payload) == hashlib.md5(payload.encode()).hexdigest()
        assert await conn.fetchval("SELECT repeat($1::text, 1000)", payload[:1000]) == payload
    finally:
        await conn.close()


async def test_bandwidth_cap_slows_a_large_result_and_unlimited_is_fast(proxy: FaultProxy) -> None:
    """1 MB at 2 MB/s takes >= 0.4 s; without a cap it takes well under that."""
    conn = await connect(proxy)
    query = "SELECT repeat('x', 1000000)"
    try:
        started = time.perf_counter()
        assert len(await conn.fetchval(query)) == 1_000_000
        unlimited_s = time.perf_counter() - started
        proxy.set_faults(NetFaults(bandwidth_bps=2_000_000))
        started = time.perf_counter()
        assert len(await conn.fetchval(query)) == 1_000_000
        capped_s = time.perf_counter() - started
    finally:
        await conn.close()
    assert unlimited_s < 0.2
    assert 0.4 <= capped_s < 1.5


async def test_reset_connections_breaks_open_connections_and_new_ones_work(proxy: FaultProxy) -> None:
    """After reset_connections() an open connection's next query fails; a new connection works."""
    conn = await connect(proxy)
    try:
        assert proxy.reset_connections() == 1
        with pytest.raises(CONNECTION_ERRORS):
            async with asyncio.timeout(5):
                await conn.fetchval("SELECT 1")
    finally:
        conn.terminate()
    stats = await wait_for_stats(proxy, active=0)
    assert stats.resets == 1
    fresh = await connect(proxy)
    assert await fresh.fetchval("SELECT 2") == 2
    await fresh.close()


async def test_reset_connections_sends_an_rst_not_a_fin(proxy: FaultProxy) -> None:
    """A raw client of a reset connection sees ConnectionResetError, not a clean end of stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        await wait_for_stats(proxy, active=1)
        assert proxy.reset_connections() == 1
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(1)
    finally:
        writer.close()


async def test_refuse_fails_new_connections_fast_until_heal(proxy: FaultProxy) -> None:
    """While refuse is on, connecting fails at once (RST); after heal() it works again."""
    proxy.set_faults(NetFaults(refuse=True))
    started = time.perf_counter()
    with pytest.raises(CONNECTION_ERRORS):
        await asyncpg.connect(dsn_for(proxy.port), timeout=5, ssl=False)
    assert time.perf_counter() - started < 1.0
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(5):
                await reader.read(1)
    finally:
        writer.close()
    assert proxy.stats.refused >= 2 and proxy.stats.accepted == 0
    proxy.heal()
    conn = await connect(proxy)
    await conn.close()


async def test_blackhole_times_out_queries_and_connects_and_heal_lets_new_connections_in(proxy: FaultProxy) -> None:
    """Under a blackhole a query and a connect time out; after heal() a new connection works."""
    conn = await connect(proxy)
    try:
        proxy.set_faults(NetFaults(blackhole=True))
        with pytest.raises(TimeoutError):
            await conn.fetchval("SELECT 1", timeout=0.5)
    finally:
        conn.terminate()  # also drops asyncpg's cancel request, itself stuck in the blackhole
    with pytest.raises(TimeoutError):
        await asyncpg.connect(dsn_for(proxy.port), timeout=0.5, ssl=False)
    proxy.heal()
    fresh = await connect(proxy)
    assert await fresh.fetchval("SELECT 3") == 3
    await fresh.close()


async def test_heal_resumes_a_blackholed_connection_with_its_held_data(proxy: FaultProxy) -> None:
    """A query sent into a blackhole gets no answer until heal(), then completes on the same connection."""
    conn = await connect(proxy)
    try:
        proxy.set_faults(NetFaults(blackhole=True))
        async with asyncio.TaskGroup() as tg:
            query = tg.create_task(conn.fetchval("SELECT 42"))
            await asyncio.sleep(0.3)
            assert not query.done()
            proxy.heal()
            async with asyncio.timeout(2):
                assert await query == 42
    finally:
        await conn.close()


async def test_unreachable_upstream_closes_the_client_connection() -> None:
    """If the upstream refuses, the proxy closes the client's connection instead of hanging."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with FaultProxy("127.0.0.1", dead_port) as proxy:
        started = time.perf_counter()
        with pytest.raises(CONNECTION_ERRORS):
            await asyncpg.connect(dsn_for(proxy.port), timeout=5, ssl=False)
        assert time.perf_counter() - started < 1.0
        stats = await wait_for_stats(proxy, active=0)
        assert stats.accepted >= 1 and stats.bytes_up == 0


async def test_aclose_stops_listening_drops_connections_and_is_idempotent(pg_cluster: list[LocalNode]) -> None:
    """After aclose() the port refuses, open connections are gone, no proxy task is left; twice is fine."""
    proxy = FaultProxy("127.0.0.1", pg_cluster[0].port)
    await proxy.start()
    port = proxy.port
    conn = await connect(proxy)
    proxy.set_faults(NetFaults(latency_s=0.05))
    pending = asyncio.ensure_future(conn.fetchval("SELECT 1"))  # in flight while the proxy closes
    await asyncio.sleep(0.01)
    try:
        await proxy.aclose()
        assert proxy_tasks() == []
        assert proxy.stats.active == 0
        with pytest.raises(CONNECTION_ERRORS):
            async with asyncio.timeout(5):
                await pending
    finally:
        conn.terminate()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await proxy.aclose()
