"""holoload.adapters.holofusion.topology_sources against real PostgreSQL: partition layouts, split logs, SQL queries."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.holofusion.topology_sources import SqlPartitionSource, SqlQuerySource
from holoload.adapters.local.cluster import LocalNode
from holoload.adapters.pg import localpg
from holoload.adapters.pg.connect import quote_ident
from holoload.core.model.target import local_target
from holoload.core.topology.diff import TopologyChange, diff
from holoload.core.topology.io import COCKROACH_COLUMNS
from holoload.core.topology.splitkey import row_v1_split_key
from holoload.core.topology.table import parse_table, render_table
from tests.support import fixture_text
from tests.support.topology import reading_topology

SPLIT_KEY = row_v1_split_key(100, 50000)


@asynccontextmanager
async def _connections(nodes: list[LocalNode]) -> AsyncIterator[list[Any]]:
    conns = [await asyncpg.connect(node.dsn) for node in nodes]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


def _table_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _drop(conns: list[Any], table: str) -> None:
    for conn in conns:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        if await conn.fetchval("SELECT to_regclass($1)", localpg.SPLIT_LOG) is not None:
            await conn.execute(f"DELETE FROM {localpg.SPLIT_LOG} WHERE table_name = $1", table)


async def _fill(conn: Any, table: str, first: int, last: int) -> None:
    await conn.execute(
        f"INSERT INTO {quote_ident(table)} SELECT g, 1, 1, 1, 1, 'ok', 100 FROM generate_series($1::bigint, $2) g",
        first,
        last,
    )


@pytest.mark.anyio
async def test_partition_source_reads_each_nodes_layout_and_split_log(pg_cluster: list[LocalNode]) -> None:
    """Split partitions on real nodes: exact layout and split counts, also through a local target's surfaces."""
    table = _table_name("topo_parts")
    async with _connections(pg_cluster) as conns:
        try:
            for conn in conns:
                await localpg.prepare_partitioned_table(conn, table)
            await _fill(conns[0], table, 1, 1000)
            await _fill(conns[1], table, 1, 300)
            await localpg.split_partition(conns[0], table, 500)
            await localpg.split_partition(conns[1], table, 100)
            with pytest.raises(ValueError):
                await localpg.split_partition(conns[1], table, 100)  # already a boundary: logged as failed
            reading = await SqlPartitionSource(conns, table).read()
            topology = reading_topology(reading)
            target = local_target([node.dsn for node in pg_cluster])
            exact = target.topology.model_copy(update={"row_counts": "exact"})  # this test's inserts are unflushed
            target = target.model_copy(update={"topology": exact})
            async with TargetSurfaces(target, connect_timeout_s=10, statement_timeout_s=30) as surfaces:
                through_target = await surfaces.topology_reading(table)
                assert through_target is not None and through_target.topology == topology
            assert reading.raw == render_table(topology)
            assert [(p.node_id, p.shard_id, p.range_text, p.records) for p in topology.placements] == [
                ("1", f"n1.{table}_min_500", "[start, 500)", 499),
                ("1", f"n1.{table}_500_max", "[500, end)", 501),
                ("2", f"n2.{table}_min_100", "[start, 100)", 99),
                ("2", f"n2.{table}_100_max", "[100, end)", 201),
                ("3", f"n3.{table}_min_max", "all_keys", 0),
            ]
            assert {p.role for p in topology.placements} == {"primary"}
            assert topology.split is not None
            assert (topology.split.attempts, topology.split.successes, topology.split.failures) == (3, 2, 1)
            assert topology.split.attempts_by == (("manual", 3),)
        finally:
            await _drop(conns, table)


@pytest.mark.anyio
async def test_partition_split_between_readings_is_a_removed_and_two_added_shards(
    pg_cluster: list[LocalNode],
) -> None:
    """Diffing partition readings around a split: old partition removed, two new ones, split counted."""
    table = _table_name("topo_pdiff")
    async with _connections(pg_cluster[:1]) as conns:
        try:
            await localpg.prepare_partitioned_table(conns[0], table)
            await _fill(conns[0], table, 1, 10)

            async def control() -> Any:
                return conns[0]

            source = SqlPartitionSource([control], table)
            before = reading_topology(await source.read())
            await localpg.split_partition(conns[0], table, 5)
            after = reading_topology(await source.read())
            # Text shard ids sort as text: "5_max" < "min_5" < "min_max".
            assert diff(before, after) == [
                TopologyChange("shard_added", f"shard n1.{table}_5_max", None, "[5, end)"),
                TopologyChange("replicas_changed", f"shard n1.{table}_5_max", None, "1"),
                TopologyChange("shard_added", f"shard n1.{table}_min_5", None, "[start, 5)"),
                TopologyChange("replicas_changed", f"shard n1.{table}_min_5", None, "1"),
                TopologyChange("shard_removed", f"shard n1.{table}_min_max", "all_keys", None),
                TopologyChange("replicas_changed", f"shard n1.{table}_min_max", "1", None),
                TopologyChange("split_attempted", "split", "0", "1"),
                TopologyChange("split_succeeded", "split", "0", "1"),
            ]
        finally:
            await _drop(conns, table)


@pytest.mark.anyio
async def test_partition_source_reports_the_failing_node(pg_cluster: list[LocalNode]) -> None:
    """A missing table or a closed connection is an error naming the node, not an exception."""
    async with _connections(pg_cluster[:2]) as conns:
        missing = await SqlPartitionSource(conns, _table_name("topo_missing")).read()
        assert missing.topology is None
        assert missing.error is not None and missing.error.startswith("partitions: node 1: ")
        assert "42P01" in missing.error  # undefined_table, by SQLSTATE
        table = _table_name("topo_closed")
        try:
            for conn in conns:
                await localpg.prepare_partitioned_table(conn, table)
            closed = await asyncpg.connect(pg_cluster[1].dsn)
            await closed.close()
            reading = await SqlPartitionSource([conns[0], closed], table).read()
            assert reading.error is not None and reading.error.startswith("partitions: node 2: ")
        finally:
            await _drop(conns, table)


AFTER_SPLIT_RANGES = """
SELECT * FROM (VALUES
    (1, ''::bytea, $1::bytea, ARRAY[1, 2, 3], 1, 49999::bigint),
    (2, $1::bytea, ''::bytea, ARRAY[3, 2, 1], 2, 40001::bigint)
) AS r(range_id, start_key, end_key, replicas, lease_holder, row_count)
"""


@pytest.mark.anyio
async def test_sql_query_rows_per_range_map_to_the_after_split_table(pg_cluster: list[LocalNode]) -> None:
    """A CockroachDB-shaped VALUES query (plus a row count) maps to the fixture's placements."""
    async with _connections(pg_cluster[:1]) as conns:
        columns = {**COCKROACH_COLUMNS, "records": "row_count"}
        source = SqlQuerySource(conns[0], AFTER_SPLIT_RANGES, columns, args=(SPLIT_KEY,), node_state="Active")
        reading = await source.read()
        topology = reading_topology(reading)
        assert topology.placements == parse_table(fixture_text("holoctl_topology_after_split.txt")).placements
        assert topology.split is None and not topology.partial
        assert reading.raw == render_table(topology)


@pytest.mark.anyio
async def test_sql_query_rows_per_replica_from_a_table(pg_cluster: list[LocalNode]) -> None:
    """One row per replica from a real table: boolean lease flag, node state column, NULL counts."""
    table = _table_name("topo_ranges")
    qt = quote_ident(table)
    async with _connections(pg_cluster[:1]) as conns:
        conn = conns[0]
        try:
            await conn.execute(
                f"CREATE TABLE {qt} (shard text, node int, holds_lease bool, lo bigint, hi bigint, n bigint, st text)"
            )
            await conn.execute(
                f"INSERT INTO {qt} VALUES ('a', 1, true, NULL, 500, 10, 'Active'), ('a', 2, false, NULL, 500, 10, 'Active'),"
                " ('b', 2, true, 500, NULL, 7, 'Active'), ('b', 5, false, 500, NULL, NULL, 'Draining')"
            )
            columns = {
                "shard_id": "shard",
                "node_id": "node",
                "leaseholder": "holds_lease",
                "start_key": "lo",
                "end_key": "hi",
                "records": "n",
                "node_state": "st",
            }

            async def control() -> Any:
                return conn

            reading = await SqlQuerySource(control, f"SELECT * FROM {qt}", columns).read()
            topology = reading_topology(reading)
            rows = [
                (p.node_id, p.node_state, p.role, p.shard_id, p.range_text, p.records_text) for p in topology.placements
            ]
            assert rows == [
                ("1", "Active", "leaseholder", "a", "[start, 500)", "10"),
                ("2", "Active", "replica", "a", "[start, 500)", "10"),
                ("2", "Active", "leaseholder", "b", "[500, end)", "7"),
                ("5", "Draining", "replica", "b", "[500, end)", "n/a"),
            ]
            assert topology.partial
            assert topology.unique_records == 17
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {qt}")


@pytest.mark.anyio
async def test_sql_query_errors_are_readings(pg_cluster: list[LocalNode]) -> None:
    """A missing column, a SQL error and a slow query each come back as error text."""
    async with _connections(pg_cluster[:1]) as conns:
        conn = conns[0]
        columns = {"shard_id": "range_id", "replicas": "replicas", "leaseholder": "lease_holder"}
        missing = await SqlQuerySource(conn, "SELECT 1 AS range_id, ARRAY[1] AS replicas", columns).read()
        assert missing.error == (
            "sql: row 1: no column 'lease_holder' (mapped from leaseholder); columns: range_id, replicas"
        )
        bad = await SqlQuerySource(conn, "SELECT * FROM no_such_ranges_table", columns).read()
        assert bad.error is not None and "42P01" in bad.error
        started = time.monotonic()
        slow = await SqlQuerySource(conn, "SELECT pg_sleep(10)", columns, timeout_s=0.3).read()
        assert time.monotonic() - started < 5
        assert slow.error == "timeout: sql did not answer within 0.3s"
        assert await conn.fetchval("SELECT 1") == 1  # the cancelled query left the connection usable


@pytest.mark.anyio
async def test_readings_racing_splits_retry_quietly(pg_cluster: list[LocalNode]) -> None:
    """Issue 15: a reading caught inside a split (a partition without bound, one just dropped) reads again.

    Twelve splits on one connection, a quarter second apart (a soak splits once a minute), while
    another reads the layout back to back: every reading succeeds, the last one shows every split.
    """
    import anyio

    table = _table_name("topo_race")
    async with _connections(pg_cluster[:1]) as splitter, _connections(pg_cluster[:1]) as reader:
        try:
            await localpg.prepare_partitioned_table(splitter[0], table)
            await _fill(splitter[0], table, 1, 4000)
            source = SqlPartitionSource(reader, table)
            errors: list[str] = []
            readings = 0
            done = anyio.Event()

            async def read_until_done() -> None:
                nonlocal readings
                while not done.is_set() and readings < 5000:
                    reading = await source.read()
                    readings += 1
                    if reading.error is not None:
                        errors.append(reading.error)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_until_done)
                for key in range(300, 3601, 300):
                    await localpg.split_partition(splitter[0], table, key)
                    await anyio.sleep(0.25)
                done.set()
            assert errors == []
            assert readings >= 5
            final = reading_topology(await source.read())
            assert len(final.placements) == 13
        finally:
            await _drop(splitter, table)
