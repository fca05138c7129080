"""A loopback TCP proxy that injects latency, jitter, bandwidth caps, blackholes, refusals and resets, live."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import struct
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit, urlunsplit

from holoload.core.errors import SetupError

#: Buffered bytes per direction above which the source is paused, and below which it resumes.
_HIGH_WATER: Final = 256 * 1024
_LOW_WATER: Final = 64 * 1024
#: A capped direction forwards at most this much at once (and at most ~20 ms worth), so its rate is smooth.
_CAPPED_SLICE: Final = 16 * 1024
_CAPPED_SLICE_S: Final = 0.02
_CONNECT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class NetFaults:
    """The network faults a FaultProxy applies; the default is a healthy network.

    Args:
        latency_s: one-way delay added to every forwarded chunk, both directions.
        jitter_s: uniform +- jitter added to the latency (seeded), never below zero delay.
        bandwidth_bps: bytes/s cap per direction per connection; None is unlimited.
        blackhole: new connections are accepted but never reach the upstream; existing ones stop
            forwarding (data is held, in order, and delivered after the blackhole lifts).
        refuse: new connections are reset (RST) as soon as they are accepted.

    Raises:
        ValueError: a negative latency or jitter, or a bandwidth that is not positive.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    bandwidth_bps: float | None = None
    blackhole: bool = False
    refuse: bool = False

    def __post_init__(self) -> None:
        if not (self.latency_s >= 0 and self.jitter_s >= 0):  # also rejects NaN
            raise ValueError(f"latency_s and jitter_s must be >= 0, got {self.latency_s}, {self.jitter_s}")
        if self.bandwidth_bps is not None and not self.bandwidth_bps > 0:
            raise ValueError(f"bandwidth_bps must be > 0 or None, got {self.bandwidth_bps}")

    @property
    def healthy(self) -> bool:
        """True when no fault is set."""
        return self == NetFaults()


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """A snapshot of a FaultProxy's counters.

    `accepted` and `refused` are disjoint: a refused connection is never counted as accepted.
    `resets` counts connections aborted by reset_connections(); `active` those not yet closed.
    `bytes_up` (client to upstream) and `bytes_down` count bytes delivered, not merely received.
    """

    accepted: int = 0
    refused: int = 0
    resets: int = 0
    active: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


def _reset(transport: asyncio.BaseTransport) -> None:
    """Abort a transport with an RST (SO_LINGER 0) rather than a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None and not transport.is_closing():  # a closed transport's fd may already be reused
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cast(asyncio.Transport, transport).abort()


class _Pipe:
    """One direction of one connection: chunks queued with due times, delivered in order by one task."""

    def __init__(self, link: _Link, to_upstream: bool, source: asyncio.Transport | None) -> None:
        self._link = link
        self._to_upstream = to_upstream
        self.source = source
        self.dest: asyncio.Transport | None = None
        self._queue: deque[tuple[float, bytes | None]] = deque()  # None marks "close the destination"
        self._buffered = 0
        self._last_due = 0.0
        self._link_free = 0.0  # when the capped link has finished sending what was delivered so far
        self._wake = asyncio.Event()
        self._source_paused = self.dest_paused = self.done = self.exited = False

    def push(self, item: bytes | None) -> None:
        """Queue received bytes (or a close) behind everything already queued."""
        if self.done:
            return
        now = asyncio.get_running_loop().time()
        self._last_due = max(now + self._link.proxy._delay_s(), self._last_due)  # never overtakes a chunk
        self._queue.append((self._last_due, item))
        if item:
            self._buffered += len(item)
            source = self.source
            if self._buffered > _HIGH_WATER and source and not self._source_paused and not source.is_closing():
                source.pause_reading()
                self._source_paused = True
        self.wake()

    def wake(self) -> None:
        """Re-evaluate what to do now (new data, faults changed, destination writable or gone)."""
        self._wake.set()

    def _wait_s(self, now: float) -> float:
        """Seconds until the head of the queue may go; infinity while something other than time blocks it."""
        if self.dest is None or self.dest_paused or not self._queue or self._link.proxy.faults.blackhole:
            return math.inf
        due = self._queue[0][0]
        if self._link.proxy.faults.bandwidth_bps is not None:
            due = max(due, self._link_free)
        return due - now

    def _deliver_head(self, now: float, dest: asyncio.Transport) -> None:
        due, item = self._queue.popleft()
        if item is None:
            dest.close()
            self.done = True
            return
        cap = self._link.proxy.faults.bandwidth_bps
        if cap is not None:
            size = max(1, min(_CAPPED_SLICE, int(cap * _CAPPED_SLICE_S)))
            if len(item) > size:
                self._queue.appendleft((due, item[size:]))
                item = item[:size]
            self._link_free = max(now, self._link_free) + len(item) / cap
        dest.write(item)
        self._buffered -= len(item)
        self._link.proxy._counts["bytes_up" if self._to_upstream else "bytes_down"] += len(item)
        source = self.source
        if self._source_paused and self._buffered < _LOW_WATER and source and not source.is_closing():
            source.resume_reading()
            self._source_paused = False

    async def run(self) -> None:
        """Deliver queued chunks until a close is delivered or the destination is gone."""
        loop = asyncio.get_running_loop()
        while not self.done:  # every pass delivers a chunk or waits for a wake-up or a due time
            wait_s = self._wait_s(loop.time())
            dest = self.dest
            if wait_s <= 0 and dest is not None:
                self._deliver_head(loop.time(), dest)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if math.isinf(wait_s) else wait_s):
                    await self._wake.wait()
        self.exited = True
        self._link.pipe_exited()


class _Side(asyncio.Protocol):
    """One end of a link: the accepted client (its link is made on accept) or the upstream connection."""

    def __init__(self, proxy: FaultProxy, link: _Link | None = None) -> None:
        self._proxy, self._link, self._is_upstream = proxy, link, link is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._link is None:
            self._link = self._proxy._accept(cast(asyncio.Transport, transport))
        else:
            self._link.attach_upstream(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self._link is not None:
            self._link.pipe_from(self._is_upstream).push(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._link is not None:
            self._link.side_lost(self._is_upstream)

    def pause_writing(self) -> None:
        if self._link is not None:
            self._link.pipe_from(not self._is_upstream).dest_paused = True

    def resume_writing(self) -> None:
        if self._link is not None:
            pipe = self._link.pipe_from(not self._is_upstream)
            pipe.dest_paused = False
            pipe.wake()


class _Link:
    """One proxied connection: client and upstream transports, two pipes and the tasks that drive them."""

    def __init__(self, proxy: FaultProxy, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.up = _Pipe(self, to_upstream=True, source=client)
        self.down = _Pipe(self, to_upstream=False, source=None)
        self.down.dest = client
        self.closed = False
        self._tasks = [proxy._spawn(self._connect())]

    async def _connect(self) -> None:
        proxy = self.proxy
        while proxy.faults.blackhole:  # a blackholed SYN never arrives; ends on a fault change or cancel
            await proxy._changed.wait()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                await loop.create_connection(lambda: _Side(proxy, self), proxy.upstream_host, proxy.upstream_port)
        except (OSError, TimeoutError):
            self.close(abort=False)
            return
        self._tasks += [proxy._spawn(self.up.run()), proxy._spawn(self.down.run())]

    def attach_upstream(self, transport: asyncio.Transport) -> None:
        """The upstream connection is made (data may arrive before the connect task resumes)."""
        if self.closed:
            transport.abort()
        else:
            self.upstream = self.up.dest = self.down.source = transport

    def pipe_from(self, upstream: bool) -> _Pipe:
        """The pipe carrying what the upstream (or the client) sends."""
        return self.down if upstream else self.up

    def side_lost(self, upstream: bool) -> None:
        """One end closed: deliver its close to the other end in order; drop what was headed to it."""
        if self.upstream is None:  # never reached the upstream: nothing to deliver
            self.close(abort=False)
            return
        self.pipe_from(upstream).push(None)
        towards = self.pipe_from(not upstream)
        towards.done = True
        towards.wake()

    def pipe_exited(self) -> None:
        if self.up.exited and self.down.exited:
            self.close(abort=False)

    def close(self, *, abort: bool) -> None:
        """Close both ends (with an RST if `abort`) and stop this link's tasks; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.up.done = self.down.done = True
        self.proxy._links.discard(self)
        for transport in (self.client, self.upstream):
            if transport is not None and abort:
                _reset(transport)
            elif transport is not None:
                transport.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()


class FaultProxy:
    """A TCP proxy in front of one endpoint whose faults can be changed while traffic flows.

    Call its methods from the event loop's thread. `heal()` resumes blackholed connections: held
    data is delivered in order and connections accepted during the blackhole then reach the
    upstream. Latency applies to chunks as they arrive; chunks already queued keep their due time.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        seed: int | None = None,
        name: str = "",
    ) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.listen_host, self.listen_port, self.name = listen_host, listen_port, name
        self.faults = NetFaults()
        self._rng = random.Random(seed)
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._closed = False
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = {"accepted": 0, "refused": 0, "resets": 0, "bytes_up": 0, "bytes_down": 0}

    async def start(self) -> None:
        """Start listening; a listen_port of 0 picks a free port (see `port`).

        Raises:
            SetupError: the address cannot be bound, or the proxy was started or closed before.
        """
        if self._server is not None or self._closed:
            raise SetupError(f"fault proxy {self.name!r} cannot be started twice")
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _Side(self), self.listen_host, self.listen_port)
        except OSError as exc:
            raise SetupError(
                f"fault proxy {self.name!r} cannot listen on {self.listen_host}:{self.listen_port}: {exc}"
            ) from exc
        self._port = int(self._server.sockets[0].getsockname()[1])

    @property
    def port(self) -> int:
        """The port the proxy listens on (RuntimeError before start())."""
        if self._port is None:
            raise RuntimeError("fault proxy is not started")
        return self._port

    def dsn_through(self, dsn: str) -> str:
        """`dsn` with its host and port replaced by this proxy's (user, password and database kept)."""
        parts = urlsplit(dsn)
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = parts.netloc[: len(parts.netloc) - len(host)] + f"{self.listen_host}:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def set_faults(self, faults: NetFaults) -> None:
        """Apply `faults` now, to new and existing connections."""
        self.faults = faults
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for link in self._links:
            link.up.wake()
            link.down.wake()

    def heal(self) -> None:
        """Back to a healthy network; blackholed connections resume (held data is delivered)."""
        self.set_faults(NetFaults())

    def reset_connections(self) -> int:
        """Abort every current connection with an RST on both sides.

        Returns:
            How many connections were reset.
        """
        links = list(self._links)
        for link in links:
            link.close(abort=True)
        self._counts["resets"] += len(links)
        return len(links)

    @property
    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        return ProxyStats(active=len(self._links), **self._counts)

    async def aclose(self) -> None:
        """Stop listening and abort every connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.close(abort=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- used by links and protocols ---------------------------------------------------------

    def _accept(self, transport: asyncio.Transport) -> _Link | None:
        if self._closed or self.faults.refuse:
            _reset(transport)
            if not self._closed:
                self._counts["refused"] += 1
            return None
        self._counts["accepted"] += 1
        link = _Link(self, transport)
        self._links.add(link)
        return link

    def _spawn(self, coro: Coroutine[None, None, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _delay_s(self) -> float:
        latency, jitter = self.faults.latency_s, self.faults.jitter_s
        return max(0.0, latency + self._rng.uniform(-jitter, jitter)) if jitter else latency
