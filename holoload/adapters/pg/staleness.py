"""Samples each standby's staleness: time until it replayed the WAL the primary had at a moment.

Every `interval_s`, the sampler reads the primary's `pg_current_wal_lsn()` (through the multi-host
read-write DSN, so it follows failovers) and polls each standby (its own DSN) until
`pg_last_wal_replay_lsn()` reaches it: every write acknowledged before the sample is visible there
from then on. A node that is the primary, or down, gives no sample; one that does not catch up
within `timeout_s` (or is promoted before it does) counts as a timeout and gives its wait so far
as the sample (a lower bound: it was at least that stale).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio
import asyncpg

from holoload.adapters.pg.connect import close_quietly
from holoload.core.server.staleness import StalenessSamples

_POLL_S = 0.005
# NULL once the node is out of recovery (its replay position stays put after a promotion)
_REACHED = "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() >= $1::pg_lsn END"
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


class StalenessSampler:
    """Staleness samples of a replicated cluster's standbys, by node name.

    Args:
        primary_dsn: the read-write multi-host DSN.
        standbys: node name -> that node's own DSN (every node: whichever is a standby is sampled).
        interval_s: time between samples.
        timeout_s: how long one sample waits for a standby.
    """

    def __init__(
        self,
        primary_dsn: str,
        standbys: Mapping[str, str],
        *,
        interval_s: float = 0.5,
        timeout_s: float = 10.0,
        perf_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.primary_dsn = primary_dsn
        self.standbys = dict(standbys)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.perf_ns = perf_ns
        self.samples = StalenessSamples()
        self._conns: dict[str, asyncpg.Connection | None] = {}

    async def _conn(self, key: str, dsn: str) -> asyncpg.Connection:
        conn = self._conns.get(key)
        if conn is None or conn.is_closed():
            conn = self._conns[key] = await asyncpg.connect(dsn, timeout=min(5.0, self.timeout_s))
        return conn

    async def _drop(self, key: str) -> None:
        await close_quietly(self._conns.pop(key, None))

    async def run(self) -> None:
        """Sample until cancelled; connections are closed on the way out."""
        try:
            while True:
                started = self.perf_ns()
                await self.sample_once()
                spent = (self.perf_ns() - started) / 1e9
                await anyio.sleep(max(0.0, self.interval_s - spent))
        finally:
            with anyio.CancelScope(shield=True):
                for key in list(self._conns):
                    await self._drop(key)

    async def sample_once(self) -> None:
        """One sample of every standby (concurrently)."""
        try:
            with anyio.fail_after(self.timeout_s):
                primary = await self._conn("primary", self.primary_dsn)
                lsn = await primary.fetchval("SELECT pg_current_wal_lsn()")
        except (*_ERRORS, TimeoutError):
            await self._drop("primary")
            return
        acked_ns = self.perf_ns()
        async with anyio.create_task_group() as tg:
            for node, dsn in self.standbys.items():
                tg.start_soon(self._one, node, dsn, lsn, acked_ns)

    async def _one(self, node: str, dsn: str, lsn: object, acked_ns: int) -> None:
        waited = False
        try:
            with anyio.fail_after(self.timeout_s):
                conn = await self._conn(node, dsn)
                while True:
                    reached = await conn.fetchval(_REACHED, lsn)
                    if reached is None:  # not in recovery: a primary now (promoted before it caught up?)
                        if waited:
                            self._never(node, acked_ns)
                        return
                    if reached:
                        self.samples.add(node, (self.perf_ns() - acked_ns) / 1e9)
                        return
                    waited = True
                    await anyio.sleep(_POLL_S)
        except TimeoutError:
            self._never(node, acked_ns)
            await self._drop(node)
        except _ERRORS:
            await self._drop(node)

    def _never(self, node: str, acked_ns: int) -> None:
        """It did not catch up (timed out, or was promoted first): its wait so far is a lower bound."""
        self.samples.timed_out(node)
        self.samples.add(node, (self.perf_ns() - acked_ns) / 1e9)
