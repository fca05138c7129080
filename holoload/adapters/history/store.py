"""The run history database: SQLite (a file, stdlib sqlite3) or PostgreSQL (a URL, asyncpg).

One schema (`history_schema.py`), one set of SQL statements written with `?` placeholders
(rewritten to `$1, $2...` for PostgreSQL), two small backends that run a list of statements in
one transaction and fetch rows. Errors of either database become `SetupError` (exit 3) naming
the location with its password hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from holoload.adapters.history.schema import CREATE_SCHEMA_TABLE, MIGRATIONS, SCHEMA_TABLE, latest_version
from holoload.adapters.pg.connect import redact
from holoload.core.errors import SetupError
from holoload.core.history.model import GateRecord, OpRecord, RunEntry

__all__ = ["HistoryStore", "open_store"]

Statement = tuple[str, Sequence[Any]]

_RUN_COLUMNS = (
    "run_id scenario scenario_hash target topology environment verdict started_at started_ts ended_at duration_s "
    "exit_code results_dir holoload_version git_commit git_branch host_name host_cpus host_model host_load1 "
    "source problems"
).split()
_GATE_COLUMNS = "name expression passed state observed threshold observed_text threshold_text reason".split()
_OP_COLUMNS = (
    "phase op measured seconds ok errors errors_by_class dropped retries row_count ops_per_s "
    "p50_ms p95_ms p99_ms max_ms histogram"
).split()
_FLOAT_COLUMNS = {"started_ts", "duration_s", "host_load1", "observed", "threshold", "seconds", "ops_per_s"} | {
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
}


class _Backend(Protocol):
    def run(self, statements: Sequence[Statement]) -> None: ...
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def migrate(self) -> None: ...
    def close(self) -> None: ...


def _migration_statements(current: int) -> list[list[Statement]]:
    now = datetime.now(UTC).isoformat()
    return [
        [
            *((sql, ()) for sql in m.statements),
            (
                f"INSERT INTO {SCHEMA_TABLE} (version, description, applied_at) VALUES (?, ?, ?)",
                (m.version, m.description, now),
            ),
        ]
        for m in MIGRATIONS
        if m.version > current
    ]


def _check_version(current: int, where: str) -> None:
    if current > latest_version():
        raise SetupError(
            f"history {where}: schema version {current} is newer than this holoload knows ({latest_version()}); "
            "upgrade holoload to write to it"
        )


class _Sqlite:
    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise SetupError(f"history {path}: cannot open: {exc}") from exc

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: one writer at a time, others wait up to the
        timeout), rolled back on any error; sqlite errors become SetupError."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SetupError(f"history {self.where}: {exc}") from exc

    def run(self, statements: Sequence[Statement]) -> None:
        with self._writing():
            for sql, params in statements:
                self.conn.execute(sql, tuple(params))

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.conn.execute(sql, tuple(params)).fetchall())
        except sqlite3.Error as exc:
            raise SetupError(f"history {self.where}: {exc}") from exc

    def migrate(self) -> None:
        with self._writing():  # the check and the migrations under one write lock
            self.conn.execute(CREATE_SCHEMA_TABLE)
            current = int(self.conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0])
            _check_version(current, self.where)
            for statements in _migration_statements(current):
                for sql, params in statements:
                    self.conn.execute(sql, tuple(params))

    def close(self) -> None:
        self.conn.close()


_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (our statements hold no literal question marks)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _Postgres:
    """asyncpg behind a private event loop: the history is written after the run's loop has ended."""

    def __init__(self, url: str, *, timeout_s: float = 15.0) -> None:
        import asyncpg

        self.where = redact(url)
        self.timeout_s = timeout_s
        self.loop = asyncio.Runner()
        self._errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
        try:
            self.conn = self.loop.run(asyncpg.connect(url, timeout=timeout_s))
        except self._errors as exc:
            self.loop.close()
            raise SetupError(f"history {self.where}: cannot connect: {exc}") from exc

    def run(self, statements: Sequence[Statement]) -> None:
        async def go() -> None:
            async with self.conn.transaction():
                for sql, params in statements:
                    await self.conn.execute(_numbered(sql), *params, timeout=self.timeout_s)

        self._call(go())

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def go() -> list[tuple[Any, ...]]:
            rows = await self.conn.fetch(_numbered(sql), *params, timeout=self.timeout_s)
            return [tuple(r) for r in rows]

        rows: list[tuple[Any, ...]] = self._call(go())
        return rows

    def migrate(self) -> None:
        async def go() -> None:
            async with self.conn.transaction():
                # two CI jobs migrating one database at once: the second waits, then finds nothing to do
                await self.conn.execute("SELECT pg_advisory_xact_lock(4242001)")
                await self.conn.execute(CREATE_SCHEMA_TABLE)
                current = int(await self.conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}"))
                _check_version(current, self.where)
                for statements in _migration_statements(current):
                    for sql, params in statements:
                        await self.conn.execute(_numbered(sql), *params)

        self._call(go())

    def _call(self, coro: Any) -> Any:
        try:
            return self.loop.run(coro)
        except self._errors as exc:
            raise SetupError(f"history {self.where}: {exc}") from exc

    def close(self) -> None:
        try:
            self.loop.run(self.conn.close(timeout=self.timeout_s))
        except self._errors:
            self.conn.terminate()
        finally:
            self.loop.close()


def _value(column: str, value: Any) -> Any:
    """A column value as both databases take it: booleans 0/1, floats as float, mappings as JSON."""
    if isinstance(value, bool):
        return int(value)
    if column in _FLOAT_COLUMNS and value is not None:
        return float(value)
    if column in ("problems", "errors_by_class"):
        return json.dumps(list(value) if column == "problems" else dict(value), sort_keys=True)
    return value


def _insert(table: str, columns: Sequence[str], values: Sequence[Any]) -> Statement:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values


class HistoryStore:
    """Runs in and out of one history database.

    Args:
        backend: an open `_Sqlite` or `_Postgres`; `open_store` picks one from a location.
    """

    def __init__(self, backend: _Backend, where: str) -> None:
        self.backend = backend
        self.where = where

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def schema_version(self) -> int:
        return int(self.backend.fetch(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}")[0][0])

    def record(self, entry: RunEntry) -> None:
        """Store a run, replacing what was stored under its id (a killed run rebuilt, a re-import)."""
        statements: list[Statement] = [
            (f"DELETE FROM {table} WHERE run_id = ?", (entry.run_id,))
            for table in ("holoload_gates", "holoload_ops", "holoload_runs")
        ]
        run_values = [_value(c, getattr(entry, c)) for c in _RUN_COLUMNS]
        statements.append(
            _insert("holoload_runs", [*_RUN_COLUMNS, "recorded_at"], [*run_values, datetime.now(UTC).isoformat()])
        )
        for i, gate in enumerate(entry.gates):
            values = [_value(c, getattr(gate, c)) for c in _GATE_COLUMNS]
            statements.append(
                _insert("holoload_gates", ["run_id", "position", *_GATE_COLUMNS], [entry.run_id, i, *values])
            )
        for i, op in enumerate(entry.ops):
            values = [_value(c, getattr(op, "rows" if c == "row_count" else c)) for c in _OP_COLUMNS]
            statements.append(_insert("holoload_ops", ["run_id", "position", *_OP_COLUMNS], [entry.run_id, i, *values]))
        self.backend.run(statements)

    def runs(
        self,
        *,
        scenario: str | None = None,
        environment: str | None = None,
        target: str | None = None,
        run_ids: Iterable[str] | None = None,
        with_histograms: bool = False,
    ) -> list[RunEntry]:
        """Stored runs matching every filter given, oldest first, with their gates and ops."""
        where, params = [], []
        for column, value in (("scenario", scenario), ("environment", environment), ("target", target)):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        if run_ids is not None:
            ids = list(run_ids)
            if not ids:
                return []
            where.append(f"r.run_id IN ({', '.join('?' for _ in ids)})")
            params += ids
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.backend.fetch(
            f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)} FROM holoload_runs r{clause} "
            "ORDER BY r.started_ts, r.run_id",
            params,
        )
        gates: dict[str, list[GateRecord]] = {}
        for row in self.backend.fetch(
            f"SELECT g.run_id, {', '.join('g.' + c for c in _GATE_COLUMNS)} FROM holoload_gates g "
            f"JOIN holoload_runs r ON r.run_id = g.run_id{clause} ORDER BY g.run_id, g.position",
            params,
        ):
            passed = None if row[3] is None else bool(row[3])
            gates.setdefault(row[0], []).append(GateRecord(row[1], row[2], passed, *row[4:]))
        ops: dict[str, list[OpRecord]] = {}
        columns = [c if c != "histogram" or with_histograms else "NULL" for c in _OP_COLUMNS]
        for row in self.backend.fetch(
            f"SELECT o.run_id, {', '.join(c if c == 'NULL' else 'o.' + c for c in columns)} FROM holoload_ops o "
            f"JOIN holoload_runs r ON r.run_id = o.run_id{clause} ORDER BY o.run_id, o.position",
            params,
        ):
            values = dict(zip(_OP_COLUMNS, row[1:], strict=True))
            values["measured"] = bool(values["measured"])
            values["errors_by_class"] = json.loads(values["errors_by_class"] or "{}")
            values["rows"] = values.pop("row_count")
            ops.setdefault(row[0], []).append(OpRecord(**values))
        out = []
        for row in rows:
            values = dict(zip(_RUN_COLUMNS, row, strict=True))
            values["problems"] = tuple(json.loads(values["problems"] or "[]"))
            run_id = values["run_id"]
            out.append(RunEntry(**values, gates=tuple(gates.get(run_id, ())), ops=tuple(ops.get(run_id, ()))))
        return out

    def run(self, run_id: str, *, with_histograms: bool = True) -> RunEntry | None:
        found = self.runs(run_ids=[run_id], with_histograms=with_histograms)
        if not found:  # a unique prefix is enough, as with git commits
            ids = [
                r[0] for r in self.backend.fetch("SELECT run_id FROM holoload_runs WHERE run_id LIKE ?", [run_id + "%"])
            ]
            found = self.runs(run_ids=ids, with_histograms=with_histograms) if len(ids) == 1 else []
        return found[0] if found else None


def is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_store(location: str) -> HistoryStore:
    """Open (creating and migrating if needed) the history at a file path or a PostgreSQL URL.

    Raises:
        SetupError: the database cannot be opened or migrated, or its schema is newer than ours.
    """
    backend: _Backend = _Postgres(location) if is_url(location) else _Sqlite(Path(location))
    try:
        backend.migrate()
    except BaseException:
        backend.close()
        raise
    return HistoryStore(backend, redact(location) if is_url(location) else location)
