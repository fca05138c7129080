"""Plain PostgreSQL as a "cluster": range partitions as shards, partition split, SQL metrics."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from holoload.adapters.pg.connect import quote_ident

#: The canary table; `{table}` is filled in. Partitioned variants append PARTITION BY.
TABLE_DDL = """\
CREATE TABLE {table} (
    order_id     BIGINT PRIMARY KEY,
    customer_id  BIGINT NOT NULL,
    merchant_id  BIGINT NOT NULL,
    region_id    BIGINT NOT NULL,
    event_day    BIGINT NOT NULL,
    status       VARCHAR(16) NOT NULL,
    amount_cents BIGINT NOT NULL
)"""

KEY_COLUMN = "order_id"
SPLIT_LOG = "holoload_split_log"

_BOUND = re.compile(r"FOR VALUES FROM \((?P<lo>[^)]*)\) TO \((?P<hi>[^)]*)\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One range partition: [lower, upper) on the key column; None means unbounded."""

    name: str
    lower: int | None
    upper: int | None
    rows: int

    def contains(self, key: int) -> bool:
        return (self.lower is None or key >= self.lower) and (self.upper is None or key < self.upper)


@dataclass(frozen=True, slots=True)
class SplitLog:
    """Split attempts recorded on one node (the SPLIT footer of its topology)."""

    attempts: int
    successes: int
    failures: int


async def prepare_plain_table(conn: asyncpg.Connection, table: str) -> None:
    """Create the canary table if missing and empty it (shared targets such as HoloFusion)."""
    ddl = TABLE_DDL.format(table=quote_ident(table)).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
    await conn.execute(ddl)
    await conn.execute(f"DELETE FROM {quote_ident(table)}")


async def prepare_partitioned_table(conn: asyncpg.Connection, table: str) -> None:
    """Recreate the canary table range-partitioned on its key, as one partition covering all keys."""
    async with conn.transaction():
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        await conn.execute(TABLE_DDL.format(table=quote_ident(table)) + f" PARTITION BY RANGE ({KEY_COLUMN})")
        await partition_whole(conn, table)


async def partition_whole(conn: asyncpg.Connection, table: str) -> None:
    """Give a table created `PARTITION BY RANGE (...)` its one partition covering every key, and the split log.

    Any table laid out so can be split (`split_partition` reads its key column from the catalog).
    """
    await conn.execute(
        f"CREATE TABLE {quote_ident(partition_name(table, None, None))} PARTITION OF "
        f"{quote_ident(table)} FOR VALUES FROM (MINVALUE) TO (MAXVALUE)"
    )
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SPLIT_LOG} (at timestamptz NOT NULL DEFAULT now(), "
        "table_name text NOT NULL, split_key bigint NOT NULL, ok boolean NOT NULL, detail text)"
    )
    await conn.execute(f"DELETE FROM {SPLIT_LOG} WHERE table_name = $1", table)


async def partition_key(conn: asyncpg.Connection, table: str) -> str:
    """The range partition key column of a partitioned table (`order_id` for the canary's; plain: `order_id`)."""
    text = await conn.fetchval("SELECT pg_get_partkeydef($1::regclass)", quote_ident(table))
    match = re.fullmatch(r"RANGE \((?P<col>[^,()]+)\)", text or "")
    return match["col"].strip() if match else KEY_COLUMN


def partition_name(table: str, lower: int | None, upper: int | None) -> str:
    """Deterministic partition names: sales_facts_min_50000, sales_facts_50000_max."""
    lo = "min" if lower is None else str(lower).replace("-", "n")
    hi = "max" if upper is None else str(upper).replace("-", "n")
    return f"{table}_{lo}_{hi}"


RowCounts = Literal["exact", "estimate", "none"]

#: A relation's row estimate without reading it: the statistics' live rows (kept current as
#: backends publish their counters), else pg_class.reltuples (after a crash reset the statistics).
_ESTIMATE = (
    "CASE WHEN pg_stat_get_live_tuples(c.oid) > 0 OR c.reltuples < 0 "
    "THEN pg_stat_get_live_tuples(c.oid) ELSE c.reltuples::bigint END"
)


async def partitions(conn: asyncpg.Connection, table: str, *, counts: RowCounts = "exact") -> list[Partition]:
    """The table's range partitions ordered by lower bound, with their row counts.

    Args:
        counts: "exact": `count(*)` of each partition (reads every row: it shows in the server's
            tup_returned); "estimate": the server's statistics, no table read; "none": 0.
    """
    estimate = _ESTIMATE if counts == "estimate" else "0"
    records = await conn.fetch(
        f"SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound, {estimate} AS estimate "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass",
        quote_ident(table),
    )
    if not records:  # not partitioned: the whole table is one range
        if counts == "estimate":
            rows = await conn.fetchval(
                f"SELECT {_ESTIMATE} FROM pg_class c WHERE c.oid = $1::regclass", quote_ident(table)
            )
        else:
            rows = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(table)}") if counts == "exact" else 0
        return [Partition(table, None, None, int(rows))]
    parts = []
    for rec in records:
        if rec["bound"] is None:  # caught between DETACH and ATTACH of a concurrent split
            raise SplitUnderWay(f"partition {rec['relname']} of {table} has no bound yet (a split is under way)")
        lower, upper = parse_bound(rec["bound"])
        if counts == "exact":
            rows = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(rec['relname'])}")
        else:
            rows = rec["estimate"]
        parts.append(Partition(rec["relname"], lower, upper, int(rows)))
    return sorted(parts, key=lambda p: (p.lower is not None, p.lower or 0))


def parse_bound(text: str) -> tuple[int | None, int | None]:
    """Read `FOR VALUES FROM (MINVALUE) TO ('50000')` into (None, 50000)."""
    match = _BOUND.search(text)
    if match is None:
        raise ValueError(f"not a range partition bound: {text!r}")
    return _bound_value(match["lo"]), _bound_value(match["hi"])


def _bound_value(text: str) -> int | None:
    text = text.strip().strip("'")
    return None if text in ("MINVALUE", "MAXVALUE") else int(text)


class SplitUnderWay(ValueError):
    """A partition read caught a concurrent split half done (a partition without bound): read again."""


class SplitSkipped(ValueError):
    """A split that would move more rows than allowed on either side of its key (logged as failed)."""


@dataclass(frozen=True, slots=True)
class SplitDone:
    """A finished split: the partitions below and above the key, and the rows moved into the new one."""

    low: Partition
    high: Partition
    moved_to: str
    moved: int

    def describe(self) -> str:
        kept = self.high.name if self.moved_to == self.low.name else self.low.name
        return f"{self.low.name}, {self.high.name} ({self.moved:,} rows moved to {self.moved_to}, {kept} kept its rows)"


#: Most rows one split may move unless the target says otherwise (`split.max_rows`).
MAX_SPLIT_ROWS = 1_000_000


async def split_partition(
    conn: asyncpg.Connection, table: str, key: int, *, max_rows: int = MAX_SPLIT_ROWS
) -> SplitDone:
    """Split the partition holding `key` into [lower, key) and [key, upper), moving only one side.

    Runs in one transaction under an ACCESS EXCLUSIVE lock on the table, so concurrent writers
    block while it runs (that is what a range split under load should exercise). Only the rows
    on the smaller side of the key move, into a new partition (a split at `last_acked + 1`
    moves the few rows above the append point); the old partition keeps the rest and is renamed
    and re-attached with its narrower bound (a read-only scan validates it). So a split's writes
    stay bounded however long the run and however many splits failed before it. Counting the
    sides reads at most `max_rows + 1` rows of each. When both sides hold more than `max_rows`
    the split is skipped. Every attempt is logged in holoload_split_log, skipped or failed ones too.

    Raises:
        SplitSkipped: both sides of the key hold more than `max_rows` rows.
        ValueError: the key is already a partition boundary.
        asyncpg.PostgresError: the server refused; the transaction is rolled back.
    """
    qt = quote_ident(table)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {qt} IN ACCESS EXCLUSIVE MODE")
            column = await partition_key(conn, table)
            parts = await partitions(conn, table, counts="none")
            old = next((p for p in parts if p.contains(key)), None)
            if old is None:
                raise ValueError(f"no partition of {table} holds key {key}")
            if old.lower == key:
                raise ValueError(f"{key} is already a partition boundary of {table}")
            low = Partition(partition_name(table, old.lower, key), old.lower, key, 0)
            high = Partition(partition_name(table, key, old.upper), key, old.upper, 0)
            src = quote_ident(old.name)
            above, below = f"{column} >= $1", f"{column} < $1"
            tail = await _count_upto(conn, src, above, key, max_rows + 1)
            head = await _count_upto(conn, src, below, key, tail) if tail else 0  # as far as it matters
            if head < tail:
                new, kept, side = low, high, below
            elif tail <= max_rows:
                new, kept, side = high, low, above
            else:
                raise SplitSkipped(
                    f"split at {key} skipped: both sides of it in {old.name} hold more than {max_rows:,} rows "
                    "(split.max_rows)"
                )
            await conn.execute(f"ALTER TABLE {qt} DETACH PARTITION {src}")
            await conn.execute(f"CREATE TABLE {quote_ident(new.name)} (LIKE {qt} INCLUDING ALL)")
            copy = f"INSERT INTO {quote_ident(new.name)} SELECT * FROM {src} WHERE {side}"
            moved = await _rows(conn.execute(copy, key))
            await conn.execute(f"DELETE FROM {src} WHERE {side}", key)
            if old.name != kept.name:
                await conn.execute(f"ALTER TABLE {src} RENAME TO {quote_ident(kept.name)}")
            for part in (low, high):
                await conn.execute(
                    f"ALTER TABLE {qt} ATTACH PARTITION {quote_ident(part.name)} "
                    f"FOR VALUES FROM ({_sql_bound(part.lower, 'MINVALUE')}) "
                    f"TO ({_sql_bound(part.upper, 'MAXVALUE')})"
                )
            done = SplitDone(low, high, new.name, moved)
            await _log_split(conn, table, key, ok=True, detail=f"{old.name} -> {done.describe()}")
    except (asyncpg.PostgresError, ValueError) as exc:
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await _log_split(conn, table, key, ok=False, detail=str(exc))
        raise
    return done


async def _count_upto(conn: asyncpg.Connection, src: str, where: str, key: int, limit: int) -> int:
    """Rows of `src` matching `where`, counted up to `limit` (reads at most `limit` rows)."""
    value = await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM {src} WHERE {where} LIMIT $2) AS s", key, limit)
    return int(value)


async def _rows(status: Awaitable[str]) -> int:
    return int((await status).rsplit(" ", 1)[-1])


def _sql_bound(value: int | None, unbounded: str) -> str:
    return unbounded if value is None else str(value)


async def _log_split(conn: asyncpg.Connection, table: str, key: int, *, ok: bool, detail: str) -> None:
    await conn.execute(
        f"INSERT INTO {SPLIT_LOG} (table_name, split_key, ok, detail) VALUES ($1, $2, $3, $4)",
        table,
        key,
        ok,
        detail,
    )


async def split_log(conn: asyncpg.Connection, table: str) -> SplitLog:
    """Counts of split attempts on this node for the table (zeros when nothing was ever split)."""
    if await conn.fetchval("SELECT to_regclass($1)", SPLIT_LOG) is None:
        return SplitLog(attempts=0, successes=0, failures=0)
    row = await conn.fetchrow(
        f"SELECT count(*) AS attempts, count(*) FILTER (WHERE ok) AS ok FROM {SPLIT_LOG} WHERE table_name = $1",
        table,
    )
    attempts, ok = int(row["attempts"]), int(row["ok"])
    return SplitLog(attempts=attempts, successes=ok, failures=attempts - ok)


METRICS_SQL = """\
SELECT numbackends, xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,
       tup_inserted, tup_updated, tup_deleted, conflicts, deadlocks, temp_files, temp_bytes
FROM pg_stat_database WHERE datname = current_database()"""

TABLE_METRICS_SQL = """\
SELECT coalesce(sum(n_tup_ins), 0) AS n_tup_ins, coalesce(sum(n_tup_upd), 0) AS n_tup_upd,
       coalesce(sum(n_tup_del), 0) AS n_tup_del,
       coalesce(sum(n_live_tup), 0) AS n_live_tup, count(*) AS relations
FROM pg_stat_user_tables WHERE relname = $1 OR relname LIKE $1 || '\\_%'"""


async def metrics_text(conn: asyncpg.Connection, table: str) -> str:
    """A `name=value` metrics snapshot from pg_stat_database and pg_stat_user_tables."""
    db = await conn.fetchrow(METRICS_SQL)
    tbl = await conn.fetchrow(TABLE_METRICS_SQL, table)
    lines = [f"pg_database_{k}={v}" for k, v in db.items()]
    lines += [f"pg_table_{table}_{k}={v}" for k, v in tbl.items()]
    return "\n".join(lines) + "\n"
