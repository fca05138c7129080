"""Which recorded ids a table really holds, by counting and bisecting id ranges (asyncpg)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from holoload.adapters.pg.connect import describe_error, quote_ident
from holoload.core.errors import HololoadError
from holoload.core.ledger.book import Ledger
from holoload.core.ledger.findings import CheckReport, check
from holoload.core.ledger.intervals import IntervalSet

__all__ = ["Observation", "ObservationError", "observe_ids", "verify"]


class ObservationError(HololoadError):
    """The ids could not be observed completely (exit 1, like any failed check).

    Raised when the query budget is spent, a statement times out or the database fails.
    No partial answer is returned, so a verify never passes on a half-probed table.

    Attributes:
        queries: statements run before giving up.
    """

    def __init__(self, message: str, *, queries: int) -> None:
        super().__init__(message)
        self.queries = queries


@dataclass(frozen=True, slots=True)
class Observation:
    """What the probe saw inside the ranges it was given."""

    present: IntervalSet
    """Ids visible at least once within the probed ranges."""
    duplicates: IntervalSet
    """Ids visible more than once."""
    queries: int
    """How many SQL statements were run."""
    elapsed_s: float
    """Wall time of the probe."""

    def merge(self, other: Observation) -> Observation:
        """Combine with the observation of other (disjoint) ranges.

        Args:
            other: the other observation.

        Returns:
            Union of ids; queries and time add up.
        """
        return Observation(
            self.present.union(other.present),
            self.duplicates.union(other.duplicates),
            self.queries + other.queries,
            self.elapsed_s + other.elapsed_s,
        )


@dataclass(slots=True)
class _Node:
    """A range still to resolve, with its counts when the parent's already imply them."""

    start: int
    end: int
    rows: int | None = None
    distinct: int | None = None


class _Probe:
    """The SQL of one probe, its query budget and what it found so far."""

    def __init__(
        self, conn: asyncpg.Connection, table: str, id_column: str, *, timeout_s: float, max_queries: int
    ) -> None:
        col, tbl = quote_ident(id_column), quote_ident(table)
        where = f"WHERE {col} >= $1::int8 AND {col} < $2::int8"
        self.count_sql = f"SELECT count(*), count(DISTINCT {col}) FROM {tbl} {where}"
        self.fetch_sql = f"SELECT {col}, count(*) FROM {tbl} {where} GROUP BY {col}"
        self.conn = conn
        self.timeout_s = timeout_s
        self.max_queries = max_queries
        self.queries = 0
        self.present = IntervalSet()
        self.duplicates = IntervalSet()

    async def count(self, start: int, end: int) -> tuple[int, int]:
        """``count(*)`` and ``count(DISTINCT id)`` of ``[start, end)``."""
        rows = await self._run(self.count_sql, start, end)
        return int(rows[0][0]), int(rows[0][1])

    async def fetch(self, start: int, end: int, keep: IntervalSet | None = None) -> None:
        """Every id of ``[start, end)`` with its multiplicity, into present/duplicates (``keep``: only those ids)."""
        rows = await self._run(self.fetch_sql, start, end)
        seen = sorted((int(r[0]), int(r[1])) for r in rows)
        present = [i for i, _ in seen if keep is None or i in keep]
        doubled = [i for i, n in seen if n > 1 and (keep is None or i in keep)]
        for s, e in _runs(present):
            self.present.add(s, e)
        for s, e in _runs(doubled):
            self.duplicates.add(s, e)

    async def _run(self, sql: str, start: int, end: int) -> list[asyncpg.Record]:
        if self.queries >= self.max_queries:
            raise ObservationError(
                f"observing ids needed more than max_queries={self.max_queries} statements "
                f"(stopped at [{start}, {end})); raise max_queries or leaf",
                queries=self.queries,
            )
        self.queries += 1
        try:
            rows: list[asyncpg.Record] = await self.conn.fetch(sql, start, end, timeout=self.timeout_s)
            return rows
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ObservationError(
                f"probing ids [{start}, {end}) failed: {describe_error(exc)}", queries=self.queries
            ) from exc


async def observe_ids(
    conn: asyncpg.Connection,
    table: str,
    id_column: str,
    ranges: IntervalSet,
    *,
    leaf: int = 4096,
    timeout_s: float = 60.0,
    max_queries: int = 100_000,
) -> Observation:
    """Find which ids of ``ranges`` the table holds, and which it holds more than once.

    Cost follows the number of intervals and holes, not ids. Each interval wider than
    ``leaf`` gets one ``count(*), count(DISTINCT id)`` over its id range: all distinct and
    no surplus means fully present, zero rows means absent; otherwise it is halved, and only
    the left half is queried (the right half's counts are the parent's minus the left's).
    A range of at most ``leaf`` ids whose answer is still open is read with one
    ``SELECT id, count(*) ... GROUP BY id`` (at most ``leaf`` rows). Consecutive small
    intervals whose combined span fits in ``leaf`` share one such read; rows in the gaps
    between them are ignored (only ``ranges`` is observed). Only plain range predicates,
    ``count``, ``count(DISTINCT)`` and ``GROUP BY`` are used: fine for HoloFusion's SQL scope.

    Args:
        conn: an open connection (used sequentially).
        table: the table name, quoted as one identifier (no schema prefix).
        id_column: the integer id column, quoted as one identifier.
        ranges: the ids to probe.
        leaf: ranges of at most this many ids are read row by row, >= 1.
        timeout_s: client-side timeout per statement.
        max_queries: statement budget for the whole probe.

    Returns:
        The observation; ``present`` and ``duplicates`` lie inside ``ranges``.

    Raises:
        ValueError: ``leaf < 1``.
        ObservationError: the budget ran out, a statement timed out or the database failed.
    """
    if leaf < 1:
        raise ValueError(f"expected leaf >= 1, got {leaf}")
    began = time.perf_counter()
    probe = _Probe(conn, table, id_column, timeout_s=timeout_s, max_queries=max_queries)
    for group in _groups(ranges, leaf):
        if len(group) > 1:
            await probe.fetch(group[0][0], group[-1][1], keep=ranges)
        else:
            await _resolve(probe, *group[0], leaf=leaf)
    return Observation(probe.present, probe.duplicates, probe.queries, time.perf_counter() - began)


async def _resolve(probe: _Probe, start: int, end: int, *, leaf: int) -> None:
    """Settle ``[start, end)`` by counting and halving, depth first, left before right."""
    stack = [_Node(start, end)]
    while stack:
        node = stack.pop()
        size = node.end - node.start
        if node.rows is None or node.distinct is None:
            if size <= leaf:
                await probe.fetch(node.start, node.end)
                continue
            node.rows, node.distinct = await probe.count(node.start, node.end)
        if node.rows == 0:
            continue
        if node.distinct == size and node.rows == size:
            probe.present.add(node.start, node.end)
            continue
        if size <= leaf:
            await probe.fetch(node.start, node.end)
            continue
        mid = node.start + size // 2
        left = _Node(node.start, mid)
        if mid - node.start > leaf:  # a small left half is read whole anyway: no count needed
            left.rows, left.distinct = await probe.count(node.start, mid)
            right = _Node(mid, node.end, node.rows - left.rows, node.distinct - left.distinct)
        else:
            right = _Node(mid, node.end)
        stack.append(right)
        stack.append(left)


def _groups(ranges: IntervalSet, leaf: int) -> Iterator[list[tuple[int, int]]]:
    """Consecutive intervals whose span fits in ``leaf`` together; wider intervals alone."""
    group: list[tuple[int, int]] = []
    for start, end in ranges.intervals():
        if group and end - group[0][0] <= leaf:
            group.append((start, end))
            continue
        if group:
            yield group
        group = [(start, end)]
    if group:
        yield group


def _runs(sorted_ids: list[int]) -> Iterator[tuple[int, int]]:
    """Half-open intervals of consecutive ids."""
    it = iter(sorted_ids)
    for first in it:
        start = end = first
        for i in it:
            if i != end + 1:
                yield start, end + 1
                start = i
            end = i
        yield start, end + 1


async def verify(
    conn: asyncpg.Connection,
    table: str,
    id_column: str,
    ledger: Ledger,
    *,
    leaf: int = 4096,
    timeout_s: float = 60.0,
    sample_size: int = 5,
    max_queries: int = 100_000,
    probe_gaps: bool = True,
) -> tuple[CheckReport, Observation]:
    """Probe every id the ledger recorded and check the ledger against what is visible.

    The probed ids are the union of acknowledged, recovered, in-doubt and failed ids.
    With ``probe_gaps`` the holes between them (inside [smallest, largest recorded id]) are
    probed too, usually one query each, so ``untracked`` reports stray rows there;
    rows outside that hull are never looked at.

    Args:
        conn: an open connection.
        table: the table the writers inserted into.
        id_column: its integer id column.
        ledger: what the writers recorded.
        leaf: see ``observe_ids``.
        timeout_s: client-side timeout per statement.
        sample_size: how many leading intervals each finding keeps.
        max_queries: statement budget, for the recorded ids and the gaps each.
        probe_gaps: also probe the unrecorded holes between recorded ids.

    Returns:
        The report and the observation it was made from.

    Raises:
        ObservationError: see ``observe_ids``.
    """
    recorded = ledger.acknowledged.union(ledger.recovered).union(ledger.in_doubt).union(ledger.failed)
    seen = await observe_ids(conn, table, id_column, recorded, leaf=leaf, timeout_s=timeout_s, max_queries=max_queries)
    if probe_gaps and recorded.interval_count > 1:
        spans = list(recorded.intervals())
        gaps = IntervalSet.from_intervals([(spans[0][0], spans[-1][1])]).difference(recorded)
        seen = seen.merge(
            await observe_ids(conn, table, id_column, gaps, leaf=leaf, timeout_s=timeout_s, max_queries=max_queries)
        )
    report = check(ledger, seen.present, duplicates=seen.duplicates, sample_size=sample_size)
    return report, seen
