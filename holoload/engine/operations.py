"""Compiled operations: an Operation model turned into one fast call per execution."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from holoload.adapters.pool import Writer
from holoload.core.generators import SeqAllocator, build
from holoload.core.workload import Operation

Generator = Callable[[], Any]


def values_sql(sql: str, rows: int, params: int) -> str:
    """`INSERT ... VALUES` followed by `rows` tuples of `params` placeholders each."""
    tuples = []
    n = 1
    for _ in range(rows):
        tuples.append("(" + ", ".join(f"${n + i}" for i in range(params)) + ")")
        n += params
    return sql.rstrip().rstrip(";") + " " + ", ".join(tuples)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CompiledOp:
    """One Operation bound to a writer's generators; `await op.run(writer)` returns rows affected.

    Args:
        op: the validated operation.
        rng: this writer's random source (seeded per writer for reproducible mixes).
        seq: the process-wide id allocator (ids unique across writers and endpoints).
    """

    __slots__ = ("name", "rows", "_gens", "_sql", "run", "_table", "_columns", "_stmt", "_conn", "_timeout")

    def __init__(self, op: Operation, rng: random.Random, seq: SeqAllocator, timeout_s: float | None = None) -> None:
        self.name = op.name
        self._timeout = timeout_s  # client side: a frozen server never answers statement_timeout
        self.rows = op.rows
        self._gens: list[Generator] = [
            build(p.model_dump(), rng=rng, seq_allocator=seq, clock=_utc_now) for p in op.params
        ]
        self._table = op.table
        self._columns = op.columns
        self._stmt: Any = None
        self._conn: Any = None
        self.run: Callable[[Writer], Awaitable[int]]
        if op.rows == 1:
            self._sql = op.sql
            self.run = self._single
        elif op.insert_mode == "values":
            self._sql = values_sql(op.sql, op.rows, len(op.params))
            self.run = self._values
        elif op.insert_mode == "executemany":
            self._sql = op.sql
            self.run = self._executemany
        else:
            self._sql = ""
            self.run = self._copy

    def args(self) -> list[Any]:
        return [g() for g in self._gens]

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
