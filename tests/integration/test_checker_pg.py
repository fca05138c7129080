"""The write checker against real PostgreSQL: it must find lost, duplicated, partial and unexpected rows."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.adapters.pg.checker import ObservationError, observe_ids, verify
from holoload.adapters.pg.connect import quote_ident
from holoload.core.ledger.book import Ledger, WriteOutcome, outcome_of
from holoload.core.ledger.intervals import IntervalSet

pytestmark = pytest.mark.anyio

ACK, FAILED, IN_DOUBT = WriteOutcome.ACKNOWLEDGED, WriteOutcome.FAILED, WriteOutcome.IN_DOUBT


@pytest.fixture
async def conn(pg_cluster: list[LocalNode]) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the first node, closed after the test."""
    connection = await asyncpg.connect(pg_cluster[0].dsn, timeout=10)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def table(conn: asyncpg.Connection) -> AsyncIterator[str]:
    """A fresh ``(id int8 PRIMARY KEY)`` table (unlogged: faster to fill), dropped after the test."""
    name = f"chk_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE UNLOGGED TABLE {quote_ident(name)} (id int8 PRIMARY KEY)")
    try:
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")


@pytest.fixture
async def heap(conn: asyncpg.Connection) -> AsyncIterator[str]:
    """A fresh table WITHOUT a primary key (plain index on id), so ids can repeat; dropped after."""
    name = f"chk_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE UNLOGGED TABLE {quote_ident(name)} (id int8)")
    await conn.execute(f"CREATE INDEX ON {quote_ident(name)} (id)")
    try:
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")


async def insert(conn: asyncpg.Connection, table: str, start: int, end: int) -> None:
    """Insert ids ``start <= id < end`` in one statement."""
    await conn.execute(f"INSERT INTO {quote_ident(table)} SELECT generate_series($1::int8, $2::int8 - 1)", start, end)


async def delete(conn: asyncpg.Connection, table: str, start: int, end: int) -> None:
    """Delete ids ``start <= id < end``."""
    await conn.execute(f"DELETE FROM {quote_ident(table)} WHERE id >= $1 AND id < $2", start, end)


async def write(
    conn: asyncpg.Connection, table: str, ledger: Ledger, outcome: WriteOutcome, *intervals: tuple[int, int]
) -> None:
    """Insert a statement's ids and record it in the ledger under ``outcome``."""
    for start, end in intervals:
        await insert(conn, table, start, end)
    ledger.record_write(outcome, intervals)


def ids(*intervals: tuple[int, int]) -> IntervalSet:
    """Shorthand for an interval set."""
    return IntervalSet.from_intervals(intervals)


async def test_a_clean_run_verifies_ok_with_one_query_per_interval(conn: asyncpg.Connection, table: str) -> None:
    """200k acknowledged ids in 50k-id statements (one split across two blocks) are all there: ok, all zero."""
    ledger = Ledger()
    for start in range(0, 150_000, 50_000):
        await write(conn, table, ledger, ACK, (start, start + 50_000))
    await write(conn, table, ledger, ACK, (150_000, 175_000), (175_000, 200_000))

    report, seen = await verify(conn, table, "id", ledger)

    assert report.ok
    assert all(v["count"] == 0 for k, v in report.to_dict().items() if k != "ok")
    assert list(seen.present.intervals()) == [(0, 200_000)] and len(seen.duplicates) == 0
    assert seen.queries == 1


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": True})], ids=["uvloop"])  # a measurement: once
async def test_a_million_acknowledged_rows_verify_in_seconds(conn: asyncpg.Connection, table: str) -> None:
    """1,000,000 rows written by 1,000 acknowledged statements verify quickly, in a handful of queries."""
    await insert(conn, table, 1, 1_000_001)
    ledger = Ledger()
    for start in range(1, 1_000_001, 1000):
        ledger.record_write(ACK, [(start, start + 1000)])

    began = time.perf_counter()
    report, seen = await verify(conn, table, "id", ledger)
    elapsed_s = time.perf_counter() - began

    print(f"verify of 1,000,000 rows: {elapsed_s:.2f} s, {seen.queries} queries")
    assert report.ok and report.recovered.count == 0 and report.partial.count == 0
    assert len(seen.present) == 1_000_000 and ledger.statements == 1000
    assert seen.queries == 1
    assert elapsed_s < 30


async def test_deleted_acknowledged_rows_are_lost_and_their_statements_partial(
    conn: asyncpg.Connection, table: str
) -> None:
    """Rows deleted after their commit come back as lost, exactly; their statements are partly visible."""
    ledger = Ledger()
    for start in range(0, 100_000, 1000):
        await write(conn, table, ledger, ACK, (start, start + 1000))
    await delete(conn, table, 12_340, 12_347)
    await delete(conn, table, 77_777, 77_778)

    report, seen = await verify(conn, table, "id", ledger)

    assert not report.ok
    assert (report.lost.count, report.lost.sample) == (8, ((12_340, 12_347), (77_777, 77_778)))
    assert (report.partial.count, report.partial.sample) == (2, ((12_000, 13_000), (77_000, 78_000)))
    assert report.unexpected.count == report.duplicated.count == report.untracked.count == 0
    assert seen.queries < 100


async def test_an_id_stored_twice_is_duplicated(conn: asyncpg.Connection, heap: str) -> None:
    """Without a primary key, one id inserted twice is reported as duplicated, and nothing else is wrong."""
    ledger = Ledger()
    await write(conn, heap, ledger, ACK, (0, 50_000))
    await insert(conn, heap, 31_337, 31_338)

    report, seen = await verify(conn, heap, "id", ledger)

    assert not report.ok
    assert (report.duplicated.count, report.duplicated.sample) == (1, ((31_337, 31_338),))
    assert list(seen.duplicates.intervals()) == [(31_337, 31_338)]
    assert report.lost.count == report.partial.count == report.unexpected.count == 0


async def test_an_in_doubt_statement_half_applied_is_partial(conn: asyncpg.Connection, table: str) -> None:
    """An in-doubt multi-row statement with half its rows visible breaks atomicity: partial, not lost."""
    ledger = Ledger()
    await write(conn, table, ledger, ACK, (0, 10_000))
    await insert(conn, table, 10_000, 10_500)  # the in-doubt statement covered [10000, 11000)
    ledger.record_write(IN_DOUBT, [(10_000, 11_000)])
    await write(conn, table, ledger, IN_DOUBT, (11_000, 12_000))  # whole: fine
    ledger.record_write(IN_DOUBT, [(12_000, 13_000)])  # absent: fine

    report, _ = await verify(conn, table, "id", ledger)

    assert not report.ok
    assert (report.partial.count, report.partial.sample) == (1, ((10_000, 11_000),))
    assert report.recovered.sample == ((10_000, 10_500), (11_000, 12_000))
    assert report.in_doubt_absent.sample == ((10_500, 11_000), (12_000, 13_000))
    assert report.lost.count == 0


async def test_a_statement_split_over_two_blocks_is_partial_when_one_block_is_missing(
    conn: asyncpg.Connection, table: str
) -> None:
    """A two-interval in-doubt statement with only its first block visible is one partial statement."""
    ledger = Ledger()
    await insert(conn, table, 5_000, 5_010)
    ledger.record_write(IN_DOUBT, [(5_000, 5_010), (9_000, 9_010)])

    report, _ = await verify(conn, table, "id", ledger)

    assert (report.partial.count, report.partial.intervals) == (1, 2)
    assert report.partial.sample == ((5_000, 5_010), (9_000, 9_010))


async def test_an_acknowledged_statement_half_visible_is_lost_and_partial(conn: asyncpg.Connection, table: str) -> None:
    """Half of an acknowledged statement missing is both lost ids and a partial statement."""
    ledger = Ledger()
    await insert(conn, table, 0, 500)
    ledger.record_write(ACK, [(0, 1000)])

    report, _ = await verify(conn, table, "id", ledger)

    assert (report.lost.count, report.lost.sample) == (500, ((500, 1000),))
    assert (report.partial.count, report.partial.sample) == (1, ((0, 1000),))


async def test_failed_ids_that_are_visible_are_unexpected(conn: asyncpg.Connection, table: str) -> None:
    """Rows of a statement recorded as failed must not exist; if they do they are unexpected."""
    ledger = Ledger()
    await write(conn, table, ledger, ACK, (0, 1000))
    await write(conn, table, ledger, FAILED, (1000, 1100))
    ledger.record_write(FAILED, [(1100, 1200)])  # really failed: absent, fine

    report, _ = await verify(conn, table, "id", ledger)

    assert not report.ok
    assert (report.unexpected.count, report.unexpected.sample) == (100, ((1000, 1100),))
    assert report.lost.count == report.partial.count == 0


async def test_a_23505_on_retry_recovers_in_doubt_ids_and_holds_them_to_the_acknowledged_standard(
    conn: asyncpg.Connection, table: str
) -> None:
    """An in-doubt write whose retry hits a real unique violation is recovered; deleting one of its rows is loss."""
    ledger = Ledger()
    await write(conn, table, ledger, IN_DOUBT, (0, 100))
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        await insert(conn, table, 0, 100)  # the retry
    ledger.record_write(outcome_of(caught.value.sqlstate, sent=True), [(0, 100)])
    assert ledger.duplicate_proof(0, 100) == 100

    report, _ = await verify(conn, table, "id", ledger)
    assert report.ok and report.recovered.sample == ((0, 100),) and report.in_doubt_absent.count == 0

    await delete(conn, table, 40, 41)
    report, _ = await verify(conn, table, "id", ledger)
    assert (report.lost.sample, report.partial.count) == (((40, 41),), 2)  # the write and its retry


async def test_stray_rows_between_recorded_ids_are_untracked_only_when_gaps_are_probed(
    conn: asyncpg.Connection, table: str
) -> None:
    """A row in a hole of the ledger shows as untracked with probe_gaps, and is not looked at without."""
    ledger = Ledger()
    await write(conn, table, ledger, ACK, (0, 100))
    await write(conn, table, ledger, ACK, (200, 300))
    await insert(conn, table, 150, 151)
    await insert(conn, table, 1_000, 1_001)  # beyond the largest recorded id: never probed

    report, seen = await verify(conn, table, "id", ledger)
    assert report.ok and report.untracked.sample == ((150, 151),)
    assert seen.queries == 2  # one read of the two small recorded intervals, one of the gap

    report, seen = await verify(conn, table, "id", ledger, probe_gaps=False)
    assert report.untracked.count == 0 and seen.queries == 1


async def test_bisection_finds_random_holes_and_duplicates_exactly(conn: asyncpg.Connection, heap: str) -> None:
    """Seeded random holes and repeats in 250k ids match a brute-force read, with few queries."""
    rng = random.Random(20240611)
    size = 250_000
    await insert(conn, heap, 0, size)
    for _ in range(40):
        start = rng.randrange(size)
        await delete(conn, heap, start, start + rng.randint(1, 60))
    await delete(conn, heap, 150_000, 170_000)
    for _ in range(15):
        start = rng.randrange(size)
        await insert(conn, heap, start, start + rng.randint(1, 3))
    await conn.execute(f"ANALYZE {quote_ident(heap)}")

    seen = await observe_ids(conn, heap, "id", ids((0, size)))

    rows = await conn.fetch(f"SELECT id, count(*) FROM {quote_ident(heap)} GROUP BY id ORDER BY id")
    assert list(seen.present.intervals()) == list(_brute(rows, 1).intervals())
    assert list(seen.duplicates.intervals()) == list(_brute(rows, 2).intervals())
    assert len(seen.duplicates) > 0 and len(seen.present) < size
    print(f"bisection over {len(rows)} rows: {seen.queries} queries, {seen.elapsed_s:.2f} s")
    assert seen.queries < len(rows) // 200


async def test_fragmented_ranges_are_observed_exactly_with_a_small_leaf(conn: asyncpg.Connection, heap: str) -> None:
    """Many small probed ranges with gaps, holes and repeats, at leaf 16: exactly the brute-force answer inside them."""
    rng = random.Random(7)
    await insert(conn, heap, 0, 20_000)
    for _ in range(60):
        start = rng.randrange(20_000)
        await delete(conn, heap, start, start + rng.randint(1, 40))
    for _ in range(20):
        start = rng.randrange(20_000)
        await insert(conn, heap, start, start + rng.randint(1, 5))
    ranges = IntervalSet()
    cursor = 0
    while cursor < 20_000:
        width = rng.choice([1, 3, 10, 50, 2_000])
        ranges.add(cursor, cursor + width)
        cursor += width + rng.randint(1, 30)

    seen = await observe_ids(conn, heap, "id", ranges, leaf=16)

    rows = await conn.fetch(f"SELECT id, count(*) FROM {quote_ident(heap)} GROUP BY id ORDER BY id")
    assert list(seen.present.intervals()) == list(_brute(rows, 1).intersection(ranges).intervals())
    assert list(seen.duplicates.intervals()) == list(_brute(rows, 2).intersection(ranges).intervals())
    assert len(seen.duplicates) > 0


async def test_running_out_of_query_budget_is_an_error_not_a_pass(conn: asyncpg.Connection, table: str) -> None:
    """A probe that needs more statements than ``max_queries`` raises instead of answering half."""
    await insert(conn, table, 0, 100_000)
    for start in range(500, 100_000, 10_000):
        await delete(conn, table, start, start + 1)
    with pytest.raises(ObservationError, match="max_queries=5") as caught:
        await observe_ids(conn, table, "id", ids((0, 100_000)), max_queries=5, leaf=64)
    assert caught.value.queries == 5


async def test_a_statement_timeout_is_an_observation_error(
    conn: asyncpg.Connection, table: str, pg_cluster: list[LocalNode]
) -> None:
    """A probe blocked by a lock past ``timeout_s`` raises ObservationError; the connection stays usable."""
    await insert(conn, table, 0, 10)
    locker = await asyncpg.connect(pg_cluster[0].dsn, timeout=10)
    try:
        async with locker.transaction():
            await locker.execute(f"LOCK TABLE {quote_ident(table)} IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ObservationError, match="timeout"):
                await observe_ids(conn, table, "id", ids((0, 10)), timeout_s=0.3)
    finally:
        await locker.close()
    assert len((await observe_ids(conn, table, "id", ids((0, 10)))).present) == 10


def _brute(rows: list[asyncpg.Record], at_least: int) -> IntervalSet:
    """Ids whose row count is at least ``at_least``, from a full ``GROUP BY id ORDER BY id`` read."""
    result = IntervalSet()
    start = end = -1
    for row in rows:
        if row[1] < at_least:
            continue
        if row[0] != end:
            if end > start:
                result.add(start, end)
            start = row[0]
        end = row[0] + 1
    if end > start:
        result.add(start, end)
    return result
