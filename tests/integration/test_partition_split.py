"""The local partition split on real PostgreSQL: it moves only the smaller side of its key, capped by max_rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.adapters.pg import localpg

pytestmark = pytest.mark.anyio

TABLE = "split_bounds"


@asynccontextmanager
async def table_with(node: LocalNode, first: int, last: int) -> AsyncIterator[asyncpg.Connection]:
    """A fresh partitioned TABLE holding ids first..last in one partition."""
    conn = await asyncpg.connect(node.dsn)
    try:
        await localpg.prepare_partitioned_table(conn, TABLE)
        await fill(conn, first, last)
        yield conn
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")
        await conn.close()


async def fill(conn: asyncpg.Connection, first: int, last: int) -> None:
    await conn.execute(
        f"INSERT INTO {TABLE} SELECT i, 1, 1, 1, 1, 'paid', 1 FROM generate_series($1::int8, $2::int8) AS g(i)",
        first,
        last,
    )


async def layout(conn: asyncpg.Connection) -> list[tuple[int | None, int | None, int]]:
    return [(p.lower, p.upper, p.rows) for p in await localpg.partitions(conn, TABLE)]


async def test_a_split_moves_only_the_rows_above_its_key_however_big_the_partition(
    pg_cluster: list[LocalNode],
) -> None:
    """After splits that never happened, a split at the append point moves the few rows above it, not the rest."""
    async with table_with(pg_cluster[0], 1, 200_000) as conn:
        done = await localpg.split_partition(conn, TABLE, 199_991, max_rows=1000)
        assert done.moved == 10 and done.moved_to == f"{TABLE}_199991_max"
        assert await layout(conn) == [(None, 199_991, 199_990), (199_991, None, 10)]
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE}") == 200_000


async def test_a_split_moves_the_rows_below_its_key_when_those_are_fewer(pg_cluster: list[LocalNode]) -> None:
    """Key near the bottom of a big partition: the rows below move, the partition keeps the rest."""
    async with table_with(pg_cluster[0], 1, 20_000) as conn:
        done = await localpg.split_partition(conn, TABLE, 101, max_rows=1000)
        assert done.moved == 100 and done.moved_to == f"{TABLE}_min_101"
        assert await layout(conn) == [(None, 101, 100), (101, None, 19_900)]
        # and a later split of the upper partition renames it as it narrows
        done = await localpg.split_partition(conn, TABLE, 19_001, max_rows=1000)
        assert done.moved == 1000 and done.moved_to == f"{TABLE}_19001_max"
        assert await layout(conn) == [(None, 101, 100), (101, 19_001, 18_900), (19_001, None, 1000)]
        names = [p.name for p in await localpg.partitions(conn, TABLE)]
        assert names == [f"{TABLE}_min_101", f"{TABLE}_101_19001", f"{TABLE}_19001_max"]


async def test_a_split_that_would_move_more_than_max_rows_is_skipped_and_logged(pg_cluster: list[LocalNode]) -> None:
    """Both sides over the cap: nothing moves, the table is as it was, the split log says why."""
    async with table_with(pg_cluster[0], 1, 5000) as conn:
        with pytest.raises(localpg.SplitSkipped, match="more than 1,000 rows"):
            await localpg.split_partition(conn, TABLE, 2500, max_rows=1000)
        assert await layout(conn) == [(None, None, 5000)]
        log = await localpg.split_log(conn, TABLE)
        assert (log.attempts, log.successes, log.failures) == (1, 0, 1)
        detail = await conn.fetchval(f"SELECT detail FROM {localpg.SPLIT_LOG} WHERE table_name = $1", TABLE)
        assert "skipped" in detail
        # the same split with room for it succeeds
        done = await localpg.split_partition(conn, TABLE, 2500, max_rows=2501)
        assert done.moved == 2499 and await layout(conn) == [(None, 2500, 2499), (2500, None, 2501)]
