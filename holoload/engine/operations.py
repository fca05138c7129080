"""Compiled operations: an Operation model turned into one fast call per execution."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio

from holoload.adapters.holofusion.surfaces import DB_ERRORS
from holoload.adapters.pg.pool import Writer
from holoload.core.ledger.book import Ledger
from holoload.core.model.workload import Operation
from holoload.core.pacing.generators import SeqAllocator, build

Generator = Callable[[], Any]


def values_sql(sql: str, rows: int, params: int) -> str:
    """`INSERT ... VALUES` followed by `rows` tuples of `params` placeholders each."""
    tuples = []
    n = 1
    for _ in range(rows):
        tuples.append("(" + ", ".join(f"${n + i}" for i in range(params)) + ")")
        n += params
    return sql.rstrip().rstrip(";") + " " + ", ".join(tuples)


def id_intervals(ids: list[int]) -> list[tuple[int, int]]:
    """Ids as sorted, merged half-open intervals: [5, 6, 7, 9] -> [(5, 8), (9, 10)]."""
    out: list[tuple[int, int]] = []
    for value in sorted(ids):
        if out and value <= out[-1][1]:
            if value == out[-1][1]:
                out[-1] = (out[-1][0], value + 1)
            continue
        out.append((value, value + 1))
    return out


def prepared_sql(op: Operation) -> str | None:
    """The statement a writer prepares for `op` (None: executemany and COPY prepare nothing)."""
    if op.rows == 1:
        return op.sql
    if op.insert_mode == "values":
        return values_sql(op.sql, op.rows, len(op.params))
    return None


async def warm_writers(writers: Sequence[Writer], ops: Sequence[Operation], timeout_s: float) -> None:
    """Prepare the ops' statements on every writer before the phase starts, all writers at once.

    Otherwise each writer's first operation carries a prepare round trip, and at an open
    loop's start the first arrivals queue behind as many prepares as there are writers.
    Best effort: a statement that fails to prepare (or a writer that does not answer within
    `timeout_s`) is left to the first operation, which then records the error as usual.
    """
    statements = [sql for sql in dict.fromkeys(prepared_sql(op) for op in ops) if sql]
    if not statements:
        return

    async def one(writer: Writer) -> None:
        with anyio.move_on_after(timeout_s) as scope:
            for sql in statements:
                try:
                    await writer.prepared(sql)
                except DB_ERRORS:
                    return
        if scope.cancelled_caught:  # a prepare cut short: the first operation reconnects
            await writer.discard()

    async with anyio.create_task_group() as tg:
        for writer in writers:
            if not writer.broken():
                tg.start_soon(one, writer)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CompiledOp:
    """One Operation bound to a writer's generators; `await op.run(writer)` returns rows affected.

    Args:
        op: the validated operation.
        rng: this writer's random source (seeded per writer for reproducible mixes).
        seq: the process-wide id allocator (ids unique across writers and endpoints).
    """

    __slots__ = (
        "name",
        "rows",
        "_gens",
        "_sql",
        "run",
        "_table",
        "_columns",
        "_stmt",
        "_conn",
        "_timeout",
        "ledger",
        "_ids",
        "_args",
        "_mode",
        "unique_ids",
    )

    def __init__(
        self,
        op: Operation,
        rng: random.Random,
        seq: SeqAllocator,
        timeout_s: float | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.name = op.name
        self._timeout = timeout_s  # client side: a frozen server never answers statement_timeout
        self.rows = op.rows
        self._gens: list[Generator] = [build(p, rng=rng, seq_allocator=seq, clock=_utc_now) for p in op.params]
        self.ledger = ledger if op.ledger is not None else None
        self.unique_ids = op.ledger is not None and op.ledger.unique
        self._ids: list[int] = []
        self._args: Any = None
        if self.ledger is not None and op.id_param is not None:
            self._gens[op.id_param] = self._capturing(self._gens[op.id_param])
        self._mode = "single" if op.rows == 1 else op.insert_mode
        self._table = op.table
        self._columns = op.columns
        self._stmt: Any = None
        self._conn: Any = None
        self.run: Callable[[Writer], Awaitable[int]]
        self._sql = prepared_sql(op) or ""
        if op.rows == 1:
            self.run = self._single
        elif op.insert_mode == "values":
            self.run = self._values
        elif op.insert_mode == "executemany":
            self._sql = op.sql
            self.run = self._executemany
        else:
            self.run = self._copy

    def _capturing(self, gen: Generator) -> Generator:
        ids = self._ids

        def draw() -> Any:
            value = gen()
            ids.append(value)
            return value

        return draw

    def draw(self) -> list[tuple[int, int]]:
        """Ledger ops: generate the next statement's arguments and return its ids as intervals."""
        self._ids.clear()
        if self._mode == "single":
            self._args = [g() for g in self._gens]
        elif self._mode == "values":
            self._args = [g() for _ in range(self.rows) for g in self._gens]
        else:
            self._args = [tuple(g() for g in self._gens) for _ in range(self.rows)]
        return id_intervals(self._ids)

    async def replay(self, writer: Writer) -> int:
        """Ledger ops: run the statement `draw()` made (again, on a retry: same ids)."""
        args = self._args
        if self._mode == "single":
            stmt = await self._statement(writer)
            result = await stmt.fetch(*args, timeout=self._timeout)
            return len(result) or 1
        if self._mode == "values":
            stmt = await self._statement(writer)
            await stmt.fetch(*args, timeout=self._timeout)
        elif self._mode == "executemany":
            assert writer.conn is not None
            await writer.conn.executemany(self._sql, args, timeout=self._timeout)
        else:
            assert writer.conn is not None and self._table is not None
            await writer.conn.copy_records_to_table(
                self._table, records=args, columns=self._columns, timeout=self._timeout
            )
        return self.rows

    async def _statement(self, writer: Writer) -> Any:
        """The prepared statement on the writer's current connection (re-prepared after a reconnect)."""
        if self._conn is not writer.conn:
            self._stmt = await writer.prepared(self._sql)
            self._conn = writer.conn
        return self._stmt

    async def _single(self, writer: Writer) -> int:
        stmt = self._stmt if self._conn is writer.conn else await self._statement(writer)
        result = await stmt.fetch(*[g() for g in self._gens], timeout=self._timeout)
        return len(result) or 1

    async def _values(self, writer: Writer) -> int:
        stmt = await self._statement(writer)
        flat: list[Any] = []
        for _ in range(self.rows):
            flat.extend(g() for g in self._gens)
        await stmt.fetch(*flat, timeout=self._timeout)
        return self.rows

    async def _executemany(self, writer: Writer) -> int:
        assert writer.conn is not None
        await writer.conn.executemany(
            self._sql, [tuple(g() for g in self._gens) for _ in range(self.rows)], timeout=self._timeout
        )
        return self.rows

    async def _copy(self, writer: Writer) -> int:
        assert writer.conn is not None and self._table is not None
        records = [tuple(g() for g in self._gens) for _ in range(self.rows)]
        await writer.conn.copy_records_to_table(
            self._table, records=records, columns=self._columns, timeout=self._timeout
        )
        return self.rows
