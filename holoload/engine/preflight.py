"""Before any load: every op's statement is prepared where it will run, so a rejected one stops the run.

A misspelt table or column would otherwise run the whole scenario as a stream of errors with
the server's message nowhere in the results. Preparing (Parse/Describe, nothing executed) on
each node a workload writes to catches it in a second, with the server's message and SQLSTATE:
a statement the server rejects as malformed or naming something that does not exist is a
scenario mistake (ScenarioError, exit 2, naming the op's key path); anything else (no privilege,
a node gone) is a setup error (exit 3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import asyncpg

from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg.connect import describe_error, quote_ident
from holoload.core.errors import ScenarioError, SetupError
from holoload.core.events import EventSink, PhaseChanged
from holoload.core.model.scenario import Scenario
from holoload.core.model.workload import Operation
from holoload.engine.operations import values_sql
from holoload.engine.phase_runs import writer_counts

#: SQLSTATE classes (and codes) that mean the statement itself is wrong: syntax, unknown table,
#: column, function or type (42), bad literal (22), unsupported feature (0A), unknown schema (3F).
_SCENARIO_CLASSES = frozenset({"42", "22", "0A", "3F"})
_NOT_SCENARIO = frozenset({"42501"})  # insufficient_privilege: the target's grants, not the file
#: A standby may not have replayed the setup's DDL yet: an undefined table, column, function,
#: object or schema there is asked again until the primary's DDL has had time to arrive.
_MAY_LAG = frozenset({"42P01", "42703", "42883", "42704", "3F000"})
STANDBY_CATCH_UP_S = 10.0


@dataclass(frozen=True, slots=True)
class Statement:
    """One distinct statement text to prepare, where the scenario defines it and where it runs."""

    sql: str
    path: str  # key path of what defines it, such as phases[1].workloads[0].ops[0].sql
    nodes: tuple[int, ...]


def statement_text(op: Operation) -> str:
    """The text the writers will prepare for `op` (COPY: a query over the same table and columns)."""
    if op.rows > 1 and op.insert_mode == "copy":
        assert op.table is not None
        columns = ", ".join(quote_ident(c) for c in op.columns) if op.columns else "*"
        return f"SELECT {columns} FROM {quote_ident(op.table)} WHERE false"
    if op.rows > 1 and op.insert_mode == "values":
        return values_sql(op.sql, op.rows, len(op.params))
    return op.sql


def statements(scenario: Scenario, surfaces: TargetSurfaces) -> list[Statement]:
    """Each distinct (statement, node) of the scenario's ops, first key path that defines it."""
    data = set(surfaces.data_nodes())
    found: dict[str, tuple[str, set[int]]] = {}
    for p, phase in enumerate(scenario.phases):
        for w, workload in enumerate(phase.workloads):
            used = [i for i, n in enumerate(writer_counts(workload, surfaces.names)) if n > 0]
            nodes = {i for i in used if i in data} if not surfaces.shared else set(used[:1])
            for o, op in enumerate(() if workload.is_txn else workload.ops):  # transactions: their own SQL
                sql = statement_text(op)
                key = "table" if op.rows > 1 and op.insert_mode == "copy" else "sql"
                path, where = found.setdefault(sql, (f"phases[{p}].workloads[{w}].ops[{o}].{key}", set()))
                where |= nodes
    return [Statement(sql, path, tuple(sorted(nodes))) for sql, (path, nodes) in found.items()]


async def _prepare(conn: asyncpg.Connection, sql: str) -> None:
    """Parse and describe `sql` inside a transaction rolled back at once.

    A bare prepare ends without Sync, which leaves the connection in a transaction holding the
    statement's table locks (an UPDATE's ROW EXCLUSIVE) until its next query: a `LOCK TABLE`
    during the load would then wait for this idle connection forever.
    """
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.prepare(sql)
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(*DB_ERRORS):  # a broken connection: the
            await transaction.rollback()  # prepare's own error says more


def _is_scenario_mistake(sqlstate: str | None) -> bool:
    return sqlstate is not None and sqlstate not in _NOT_SCENARIO and sqlstate[:2] in _SCENARIO_CLASSES


def _rejection(exc: BaseException) -> str:
    """The server's words: message, SQLSTATE, and its detail/hint when it gave one."""
    error = describe_error(exc)
    text = f"{error.sqlstate or 'no SQLSTATE'} {error.message}"
    for extra in ("detail", "hint"):
        value = getattr(exc, extra, None)
        if value:
            text += f" ({extra}: {value})"
    return text


async def prepare_statements(
    scenario: Scenario, surfaces: TargetSurfaces, sink: EventSink, file: str, clock: Callable[[], float]
) -> int:
    """Prepare every op's statement on every node it will run on, before any load.

    Args:
        scenario: the validated scenario.
        surfaces: the opened target (its control connections are used; nothing is executed).
        sink: gets a `prepare` phase event.
        file: the scenario file, for the error message.
        clock: wall clock for the event.

    Returns:
        How many (statement, node) pairs were prepared.

    Raises:
        ScenarioError: the server rejected a statement as malformed or naming something that
            does not exist (exit 2): key path, node, SQLSTATE and the server's message.
        SetupError: any other failure (exit 3), with the server's message.
    """
    todo = statements(scenario, surfaces)
    pairs = sum(len(s.nodes) for s in todo)
    sink.emit(PhaseChanged(clock(), "prepare", f"{pairs} statements prepared before load ({len(todo)} distinct)"))
    writable = surfaces.target.writable()
    for statement in todo:
        for node in statement.nodes:
            name = surfaces.names[node]
            try:
                await _prepare_on(surfaces, node, statement.sql, standby=not writable[node])
            except TimeoutError as exc:
                raise SetupError(f"preparing a statement on {name} timed out: {statement.sql[:200]}") from exc
            except DB_ERRORS as exc:
                reason = f"{name} rejected the statement before load: {_rejection(exc)}"
                shown = " ".join(statement.sql.split())[:300]
                if _is_scenario_mistake(getattr(exc, "sqlstate", None)):
                    raise ScenarioError(file, [(statement.path, f"{reason}\n  {shown}")]) from exc
                raise SetupError(f"{file}: {statement.path}: {reason}\n  {shown}") from exc
    return pairs


async def _prepare_on(surfaces: TargetSurfaces, node: int, sql: str, *, standby: bool) -> None:
    """Prepare on one node; on a standby, what may only lag behind the primary's DDL is retried
    for up to STANDBY_CATCH_UP_S (then its error stands)."""
    deadline = anyio.current_time() + STANDBY_CATCH_UP_S
    while True:
        try:
            with anyio.fail_after(surfaces.control_timeout_s):
                await _prepare(surfaces.conns[node], sql)
            return
        except DB_ERRORS as exc:
            lagging = standby and getattr(exc, "sqlstate", None) in _MAY_LAG
            if not lagging or anyio.current_time() >= deadline:
                raise
            await anyio.sleep(0.2)
