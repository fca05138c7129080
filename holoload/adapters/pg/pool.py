"""Writers: one long-lived asyncpg connection each, prepared statements, reconnect with backoff.

A writer owns its connection for the whole phase (no per-operation acquire/release: asyncpg's
Pool costs 26-40 µs of CPU per operation, more than the rest of the hot path together).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import anyio
import asyncpg

from holoload.adapters.pg.connect import StatementError, close_quietly, connect, describe_error, discard
from holoload.core.errors import SetupError


class Writer:
    """One connection to one endpoint, reconnected with jittered backoff when it breaks.

    Args:
        endpoint: index of the endpoint (node) in the target.
        name: the endpoint's display name.
        dsn: where to connect.
        connect_timeout_s / statement_timeout_s: per connection.
        rng: jitter source.
    """

    __slots__ = (
        "endpoint",
        "name",
        "dsn",
        "conn",
        "_prepared",
        "_connect_timeout_s",
        "_statement_timeout_s",
        "_rng",
        "reconnects",
        "_backoff_s",
        "server",
        "last_error",
    )

    def __init__(
        self,
        endpoint: int,
        name: str,
        dsn: str,
        *,
        connect_timeout_s: float,
        statement_timeout_s: float,
        rng: random.Random,
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        self.dsn = dsn
        self.conn: asyncpg.Connection | None = None
        self._prepared: dict[str, Any] = {}
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._rng = rng
        self.reconnects = 0
        self._backoff_s = 0.05
        self.server = ""  # host:port the connection reached (a multi-host DSN picks one)
        self.last_error: StatementError | None = None  # why the latest reconnect failed, for error messages

    async def open(self) -> None:
        """Connect (raises SetupError when the endpoint cannot be reached)."""
        self.conn = await connect(
            self.dsn,
            connect_timeout_s=self._connect_timeout_s,
            statement_timeout_s=self._statement_timeout_s,
            name=self.name,
        )
        self._prepared.clear()
        self._backoff_s = 0.05
        addr = getattr(self.conn, "_addr", None)  # asyncpg keeps the address it connected to
        self.server = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else str(addr or "")
        self.last_error = None

    def broken(self) -> bool:
        return self.conn is None or self.conn.is_closed()

    async def ensure(self, deadline_s: float) -> bool:
        """Reconnect if the connection is gone; False when the deadline passed first."""
        while self.broken():
            if time.monotonic() >= deadline_s:
                return False
            try:
                await close_quietly(self.conn, 1.0)
                self.conn = None
                await self.open()
                self.reconnects += 1
            except SetupError as exc:
                cause = exc.__cause__
                self.last_error = describe_error(cause) if cause is not None else None
                pause = min(self._backoff_s * self._rng.uniform(0.5, 1.5), max(0.0, deadline_s - time.monotonic()))
                await anyio.sleep(pause)
                self._backoff_s = min(self._backoff_s * 2, 2.0)
        return True

    async def prepared(self, sql: str) -> Any:
        """A prepared statement for `sql` on this connection (cached per connection)."""
        stmt = self._prepared.get(sql)
        if stmt is None:
            assert self.conn is not None
            stmt = self._prepared[sql] = await self.conn.prepare(sql)
        return stmt

    async def close(self) -> None:
        await close_quietly(self.conn, 2.0)
        self.conn = None

    async def discard(self) -> None:
        """After an operation was cut short: end whatever it left on the server, drop the connection.

        Shielded and bounded (see `pg.discard`); the next operation reconnects.
        """
        conn, self.conn = self.conn, None
        self._prepared.clear()
        await discard(conn, self.dsn)


async def open_writers(writers: Sequence[Writer]) -> None:
    """Connect all writers concurrently; the first failure is raised (others closed)."""
    failures: list[SetupError] = []

    async def one(w: Writer) -> None:
        try:
            await w.open()
        except SetupError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for w in writers:
            tg.start_soon(one, w)
    if failures:
        with anyio.CancelScope(shield=True):
            await close_writers(writers)
        raise failures[0]


async def close_writers(writers: Sequence[Writer]) -> None:
    """Close every writer at once (a frozen node must not make cleanup take writers x 2 s)."""
    with anyio.CancelScope(shield=True):
        async with anyio.create_task_group() as tg:
            for w in writers:
                tg.start_soon(w.close)
