"""Timed-out or cancelled steps leave nothing behind on real PostgreSQL: splits, chaos SQL, the checker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg
import pytest

from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.local.cluster import LocalNode
from holoload.core.events import ChaosFinished
from holoload.core.model.chaos import ChaosAction
from holoload.core.model.target import Node, SplitCapability, Target, TopologySource
from holoload.engine.chaos import FaultRunner
from holoload.engine.ledgers import LedgerBook, Pulse

pytestmark = pytest.mark.anyio

TABLE = "cleanup_facts"
ROW = "INSERT INTO {t} (order_id, customer_id, merchant_id, region_id, event_day, status, amount_cents) "
LEFTOVERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'holoload%' "
    "AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')"
)


class Events:
    """A sink keeping every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def finished(self) -> list[ChaosFinished]:
        return [e for e in self.events if isinstance(e, ChaosFinished)]


def one_node_target(node: LocalNode) -> Target:
    return Target(
        name="one",
        data="per_node",
        table_layout="range_partitioned",
        nodes=[Node(name="node1", dsn=node.dsn)],
        topology=TopologySource(source="partitions"),
        split=SplitCapability(method="partition"),
    )


@asynccontextmanager
async def opened(node: LocalNode, rows: int) -> AsyncIterator[TargetSurfaces]:
    """Surfaces on one node with TABLE holding ids 1..rows in one partition."""
    async with TargetSurfaces(one_node_target(node), connect_timeout_s=5, statement_timeout_s=60) as surfaces:
        await surfaces.prepare_table(TABLE)
        await surfaces.conns[0].execute(
            ROW.format(t=TABLE) + "SELECT i, 1, 1, 1, 1, 'paid', 1 FROM generate_series(1, $1::int) AS g(i)", rows
        )
        yield surfaces


def split_runner(surfaces: TargetSurfaces, sink: Events, key: int, timeout_s: float) -> FaultRunner:
    action = ChaosAction(name="split_once", action="split", at="0s", key=key, timeout=f"{timeout_s:g}s")
    return FaultRunner(
        [action],
        surfaces=surfaces,
        sink=sink,
        book=LedgerBook(shared=False),
        pulses=[Pulse()],
        node_control=None,
        proxies={},
        table=TABLE,
        seed=1,
    )


async def insert_one(dsn: str, order_id: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(ROW.format(t=TABLE) + "VALUES ($1, 1, 1, 1, 1, 'paid', 1)", order_id)
    finally:
        await conn.close()


async def waiting_on_lock(conn: asyncpg.Connection, like: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", like
        )
    )


async def test_a_timed_out_split_holding_access_exclusive_leaves_nothing_behind(pg_cluster: list[LocalNode]) -> None:
    """A split blocked while it holds ACCESS EXCLUSIVE times out: writers proceed, no session is left, the next works."""
    node = pg_cluster[0]
    async with opened(node, 1000) as surfaces:
        observer = await asyncpg.connect(node.dsn)
        blocker = await asyncpg.connect(node.dsn)
        try:
            # The split takes the table's ACCESS EXCLUSIVE lock first and logs itself last: with the
            # log table locked elsewhere it waits at its end, still holding the table's lock.
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE holoload_split_log IN ACCESS EXCLUSIVE MODE")
            sink = Events()
            done: list[float] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(split_runner(surfaces, sink, 500, 2.0).run_frame, None, None)
                with anyio.fail_after(10):
                    while not await waiting_on_lock(observer, "INSERT INTO holoload_split_log%"):
                        await anyio.sleep(0.05)

                async def writer() -> None:
                    await insert_one(node.dsn, 5000)
                    done.append(anyio.current_time())

                tg.start_soon(writer)
                with anyio.fail_after(10):  # the writer waits behind the split's table lock
                    while not await waiting_on_lock(observer, "INSERT INTO cleanup_facts%"):
                        await anyio.sleep(0.05)
            (first,) = sink.finished()
            assert not first.ok and "timed out" in first.detail, first.detail
            assert done, "the writer never got through"
            # nothing of holoload's is left waiting or idle in a transaction (the blocker is not ours)
            assert await observer.fetchval(LEFTOVERS) == 0
            await tx.rollback()

            sink = Events()
            with anyio.fail_after(30):
                await split_runner(surfaces, sink, 700, 20.0).run_frame(None, None)
            (second,) = sink.finished()
            assert second.ok, second.detail
            assert await observer.fetchval(LEFTOVERS) == 0
            parts = await observer.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = $1::regclass ORDER BY 1",
                TABLE,
            )
            assert [p["relname"] for p in parts] == ["cleanup_facts_700_max", "cleanup_facts_min_700"]
            assert await observer.fetchval(f"SELECT count(*) FROM {TABLE}") == 1001
        finally:
            await blocker.close()
            await observer.close()


async def test_a_step_cut_short_between_statements_releases_the_locks_it_held(pg_cluster: list[LocalNode]) -> None:
    """Cancelled while idle in its transaction (no statement to cancel), a step's locks still go with it."""
    node = pg_cluster[0]
    async with opened(node, 100) as surfaces:
        observer = await asyncpg.connect(node.dsn)
        try:
            with anyio.move_on_after(1.0) as scope:
                async with surfaces.session(0, "chaos") as conn, conn.transaction():
                    await conn.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                    await anyio.sleep(30)  # cut short here, between statements
            assert scope.cancelled_caught
            assert await observer.fetchval(LEFTOVERS) == 0
            with anyio.fail_after(5):  # a writer is not blocked by a lock nobody holds any more
                await insert_one(node.dsn, 5000)
            done = await surfaces.split(TABLE, 50, 0, 0, timeout_s=10)
            assert done.ok, done.detail  # not "cannot use Connection.transaction() in a manually started ..."
        finally:
            await observer.close()


async def test_chaos_sql_that_leaves_a_transaction_open_is_rolled_back(pg_cluster: list[LocalNode]) -> None:
    """`BEGIN; LOCK ...` as chaos SQL fails and is rolled back: it never holds a lock past its step."""
    node = pg_cluster[0]
    async with opened(node, 10) as surfaces:
        observer = await asyncpg.connect(node.dsn)
        try:
            with pytest.raises(ValueError, match="left a transaction open"):
                await surfaces.run_sql(0, f"BEGIN; LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE", timeout_s=5)
            assert await observer.fetchval(LEFTOVERS) == 0
            with anyio.fail_after(5):
                await insert_one(node.dsn, 5000)
            assert await surfaces.run_sql(0, f"DELETE FROM {TABLE} WHERE order_id = 5000", timeout_s=5) == "DELETE 1"
        finally:
            await observer.close()


async def test_a_timed_out_checker_read_leaves_no_query_behind(pg_cluster: list[LocalNode]) -> None:
    """The checker's read blocked by a lock and cut short: no holoload/checker backend keeps waiting."""
    from holoload.adapters.pg.checker import verify
    from holoload.core.ledger.book import Ledger, WriteOutcome

    node = pg_cluster[0]
    async with opened(node, 100) as surfaces:
        observer = await asyncpg.connect(node.dsn)
        blocker = await asyncpg.connect(node.dsn)
        try:
            ledger = Ledger()
            ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(1, 101)])
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            with anyio.move_on_after(1.0) as scope:
                async with surfaces.session(0, "checker") as conn:
                    await verify(conn, TABLE, "order_id", ledger, timeout_s=30)
            assert scope.cancelled_caught
            ours = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holoload/checker'"
            assert await observer.fetchval(ours) == 0
            await tx.rollback()
            async with surfaces.session(0, "checker") as conn:  # a new connection, and it works
                report, _ = await verify(conn, TABLE, "order_id", ledger, timeout_s=30)
            assert report.ok
        finally:
            await blocker.close()
            await observer.close()


async def test_discard_ends_the_backend_from_a_second_connection_when_rollback_cannot(
    pg_cluster: list[LocalNode],
) -> None:
    """No time for the graceful path: the backend idle in its transaction is terminated and its lock freed."""
    from holoload.adapters.pg import connect as pg

    node = pg_cluster[0]
    async with opened(node, 10):
        observer = await asyncpg.connect(node.dsn)
        conn = await pg.connect(node.dsn, connect_timeout_s=5, statement_timeout_s=30, purpose="test")
        try:
            await conn.execute(f"BEGIN; LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            pid = conn.get_server_pid()
            assert await observer.fetchval(LEFTOVERS) == 1
            assert await pg.discard(conn, node.dsn, graceful_s=0)
            assert conn.is_closed()
            assert await observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
            with anyio.fail_after(5):
                await insert_one(node.dsn, 5000)
            # a connection closed already is left alone (its pid may be someone else's by now)
            assert await pg.discard(conn, node.dsn)
        finally:
            await observer.close()


async def test_a_last_acked_split_with_nothing_new_to_split_is_skipped(pg_cluster: list[LocalNode]) -> None:
    """`last_acked + 1` with no id acknowledged since its last split: the slot is skipped, not failed."""
    from holoload.core.ledger.book import WriteOutcome

    node = pg_cluster[0]
    async with opened(node, 100) as surfaces:
        book = LedgerBook(shared=False)
        spec_ledger = book.at(TABLE, "order_id", 0)
        spec_ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(1, 101)])
        action = ChaosAction(
            name="churn", action="split", every="200ms", start="0s", count=3, key="last_acked + 1", timeout="10s"
        )
        sink = Events()
        runner = FaultRunner(
            [action],
            surfaces=surfaces,
            sink=sink,
            book=book,
            pulses=[Pulse()],
            node_control=None,
            proxies={},
            table=TABLE,
            seed=1,
        )
        with anyio.fail_after(20):
            await runner.run_frame(None, 1.0)
        (record,) = runner.summary()
        assert (record["fired"], record["ok"], record["failed"], record["skipped"]) == (1, 1, 0, 2), record
        assert [e.ok for e in sink.finished()] == [True]
        assert "split at 101" in sink.finished()[0].detail
