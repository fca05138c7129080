"""Transactions as operations: several statements at an isolation level, retried whole, an ambiguous COMMIT in doubt.

``TxnRunner.run(body)`` runs ``body(conn)`` (any number of statements; later ones may use earlier
results) between ``BEGIN ISOLATION LEVEL ...`` and ``COMMIT`` on a ``Writer``'s connection:

- a definite failure (the server rolled back: 40001, 40P01 and the other classes the retry policy
  names, before or at COMMIT) runs the whole transaction again, up to ``max_attempts``, with
  jittered exponential backoff;
- an error after COMMIT left the client with no reliable answer (connection lost, 57P01, a timeout
  or cancel racing the commit: ``ledger.outcome_of``) is IN_DOUBT, never failed, and never retried
  (running it again could apply it twice);
- a body may raise ``Abort`` to roll back on purpose (insufficient funds): FAILED, not retried;
- a timeout, a cancellation, or a non-database error drops the connection with ``pg.discard``
  (rolled back, backend ended), so nothing of the transaction lives on in the server;
- latency runs from the intended start (the pacer's), through every attempt, to the outcome.

Two executors build on it: ``ListAppendExecutor`` (records into an isolation ``HistoryBuilder``)
and ``BankExecutor`` (records into a ``BankHistory``; transfers in one atomic UPDATE each, or as a
deliberately wrong read-then-write).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import anyio
import asyncpg

from holoload.adapters.pg.connect import StatementError, describe_error, quote_ident
from holoload.adapters.pg.localpg import partition_whole
from holoload.adapters.pg.pool import Writer
from holoload.core.isolation.bank import BankHistory, FinalState
from holoload.core.isolation.generate import BankSpec, ReadAll, Transfer
from holoload.core.isolation.history import HistoryBuilder, MicroOp, read, txn_type_of
from holoload.core.ledger.book import WriteOutcome, outcome_of
from holoload.core.outcome import ErrorClass, ErrorRules
from holoload.core.stats.histogram import LatencyHistogram

__all__ = [
    "Abort",
    "BankExecutor",
    "IsolationLevel",
    "ListAppendExecutor",
    "TxnResult",
    "TxnRetry",
    "TxnRunner",
    "TxnStats",
    "create_bank_tables",
    "create_list_append_table",
    "read_bank_final",
]

T = TypeVar("T")

#: What talking to the database may raise; anything else from a body is a bug, re-raised after clean-up.
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)
_ROLLBACK_S = 2.0  # a ROLLBACK after a server error; longer and the connection is discarded instead


class IsolationLevel(StrEnum):
    """PostgreSQL's isolation levels (READ UNCOMMITTED behaves as READ COMMITTED there)."""

    SERIALIZABLE = "serializable"
    REPEATABLE_READ = "repeatable read"
    READ_COMMITTED = "read committed"

    @property
    def begin_sql(self) -> str:
        """``BEGIN ISOLATION LEVEL SERIALIZABLE`` and so on."""
        return f"BEGIN ISOLATION LEVEL {self.value.upper()}"


class _RetryLike(Protocol):
    max_attempts: int
    backoff: float
    max_backoff: float
    on: list[ErrorClass]


@dataclass(frozen=True, slots=True)
class TxnRetry:
    """When to run a transaction again: only after a definite failure of a class in ``on``.

    Args:
        max_attempts: attempts in all (1: never again).
        backoff_s: pause before the second attempt, doubled each time, jittered x0.5..1.5.
        max_backoff_s: cap of the pause.
        on: error classes that are retried (SQLSTATEs 40001 and 40P01 are ``retryable``; a target's
            rules may add its own).
    """

    max_attempts: int = 10
    backoff_s: float = 0.002
    max_backoff_s: float = 0.2
    on: frozenset[ErrorClass] = frozenset({ErrorClass.RETRYABLE})

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("expected max_attempts >= 1 and non-negative backoffs")

    @classmethod
    def from_policy(cls, policy: _RetryLike) -> TxnRetry:
        """From a workload's retry policy (``max_attempts``, ``backoff``, ``max_backoff``, ``on``)."""
        return cls(policy.max_attempts, policy.backoff, policy.max_backoff, frozenset(policy.on))

    def pause_s(self, attempt: int, rng: random.Random) -> float:
        """The jittered pause after failed attempt number ``attempt`` (1-based)."""
        pause_s: float = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        return pause_s * rng.uniform(0.5, 1.5)


class Abort(Exception):
    """Raised by a transaction body to roll back on purpose (e.g. insufficient funds): failed, not retried."""


@dataclass(frozen=True, slots=True)
class TxnResult(Generic[T]):
    """How one logical transaction ended, over all its attempts.

    ``value`` is what the body returned (acknowledged only); ``error`` the last attempt's error;
    ``aborted`` the reason a body gave with ``Abort``.
    """

    outcome: WriteOutcome
    value: T | None
    attempts: int
    intended_ns: int
    done_ns: int
    error: StatementError | None = None
    aborted: str | None = None

    @property
    def latency_ns(self) -> int:
        """From the intended start to the outcome."""
        return self.done_ns - self.intended_ns


class TxnStats:
    """Outcomes, attempts per transaction (a histogram: attempts -> transactions) and latencies."""

    def __init__(self) -> None:
        self.outcomes: Counter[WriteOutcome] = Counter()
        self.attempts: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()  # last error's SQLSTATE (or class) of transactions not acknowledged
        self.aborted = 0
        self.latency = LatencyHistogram()

    def record(self, result: TxnResult[Any]) -> None:
        """Count one transaction."""
        self.outcomes[result.outcome] += 1
        self.attempts[result.attempts] += 1
        self.aborted += result.aborted is not None
        if result.error is not None and result.outcome is not WriteOutcome.ACKNOWLEDGED:
            self.errors[result.error.sqlstate or result.error.error_class.value] += 1
        self.latency.record_us(max(0, result.latency_ns) // 1000)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "outcomes": {k.value: v for k, v in self.outcomes.items()},
            "attempts": {str(k): v for k, v in sorted(self.attempts.items())},
            "errors": dict(self.errors),
            "aborted": self.aborted,
            "latency_us": {"p50": self.latency.percentile_us(50), "p99": self.latency.percentile_us(99)},
        }


Body = Callable[[asyncpg.Connection], Awaitable[T]]


class TxnRunner:
    """Runs transactions on one writer (one connection, one logical client), one at a time.

    Args:
        writer: the connection holder (reconnected when broken).
        isolation: the level every transaction begins with.
        retry: when to run a transaction again.
        timeout_s: bound on each attempt, BEGIN to COMMIT (None: none; the server's statement_timeout still
            applies per statement). Cut short before COMMIT: failed; after: in doubt.
        rules: a target's message rules for classifying errors.
        clock_ns: the monotonic clock latencies and history times are read from.
        rng: jitter of the backoff.
        connect_wait_s: how long to try to get a broken connection back before an attempt fails.
        session_sql: statements run on each new connection before its first transaction (e.g.
            ``SET deadlock_timeout = '20ms'``): a reconnect after a node kill gets them again.
        first_sql: statements run right after BEGIN, before anything takes the transaction's snapshot (e.g.
            ``LOCK TABLE t IN ROW EXCLUSIVE MODE``: a lock taken before the snapshot, so DDL that is not
            MVCC-safe, such as a split moving rows into a new partition, happens wholly before it or after).
    """

    def __init__(
        self,
        writer: Writer,
        isolation: IsolationLevel | str = IsolationLevel.SERIALIZABLE,
        *,
        retry: TxnRetry | None = None,
        timeout_s: float | None = 10.0,
        rules: ErrorRules | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        rng: random.Random | None = None,
        connect_wait_s: float = 1.0,
        session_sql: Sequence[str] = (),
        first_sql: Sequence[str] = (),
    ) -> None:
        self.writer = writer
        self.isolation = IsolationLevel(isolation)
        self.retry = retry or TxnRetry()
        self.timeout_s = timeout_s
        self.rules = rules
        self.clock_ns = clock_ns
        self._rng = rng or random.Random()
        self._connect_wait_s = connect_wait_s
        self._session_sql = tuple(session_sql)
        self._first_sql = tuple(first_sql)
        self._prepared_conn: asyncpg.Connection | None = None  # the connection session_sql last ran on

    async def run(self, body: Body[T], *, intended_ns: int | None = None) -> TxnResult[T]:
        """Run ``body`` in one transaction, again after each retryable definite failure.

        Args:
            body: the statements, given the connection; returns the transaction's value.
            intended_ns: when the transaction was meant to start (``clock_ns`` time; default now).

        Returns:
            ACKNOWLEDGED with the body's value; FAILED (rolled back: no attempt took effect); or IN_DOUBT
            (COMMIT sent and no reliable answer: it may or may not have taken effect).

        Raises:
            BaseException: a cancellation, or a non-database error from the body, after the connection was
                discarded (nothing of the transaction is left on the server).
        """
        start_ns = self.clock_ns() if intended_ns is None else intended_ns
        attempt = 0
        while True:
            attempt += 1
            outcome, value, error, aborted = await self._attempt(body)
            if (
                outcome is WriteOutcome.FAILED
                and error is not None
                and aborted is None
                and error.error_class in self.retry.on
                and attempt < self.retry.max_attempts
            ):
                await anyio.sleep(self.retry.pause_s(attempt, self._rng))
                continue
            return TxnResult(outcome, value, attempt, start_ns, self.clock_ns(), error, aborted)

    async def _attempt(self, body: Body[T]) -> tuple[WriteOutcome, T | None, StatementError | None, str | None]:
        writer = self.writer
        if not await writer.ensure(time.monotonic() + self._connect_wait_s):
            last = writer.last_error
            error = last or StatementError(ErrorClass.CONNECTION, None, f"no connection to {writer.name}")
            return WriteOutcome.FAILED, None, error, None  # nothing was sent
        conn = writer.conn
        assert conn is not None
        commit_sent = False
        scope: AbstractContextManager[Any] = (
            nullcontext() if self.timeout_s is None else anyio.fail_after(self.timeout_s)
        )
        try:
            with scope:
                if self._session_sql and conn is not self._prepared_conn:
                    for sql in self._session_sql:
                        await conn.execute(sql)
                    self._prepared_conn = conn
                await conn.execute(self.isolation.begin_sql)
                for sql in self._first_sql:
                    await conn.execute(sql)
                value = await body(conn)
                commit_sent = True
                await conn.execute("COMMIT")
        except Abort as exc:
            await self._end_transaction(conn)
            return WriteOutcome.FAILED, None, None, str(exc) or "aborted"
        except _DB_ERRORS as exc:
            error = describe_error(exc, self.rules)
            answered = isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, asyncpg.PostgresConnectionError)
            if answered and not conn.is_closed():
                await self._end_transaction(conn)  # roll back the aborted transaction, keep the connection
            else:
                await writer.discard()  # a timeout, or a broken connection: end the session on the server
            if not commit_sent:
                return WriteOutcome.FAILED, None, error, None  # never committed: the server rolls it back
            return outcome_of(error.sqlstate if answered else None, sent=True), None, error, None
        except BaseException:
            await writer.discard()  # cancelled, or a bug in the body: leave nothing behind on the server
            raise
        return WriteOutcome.ACKNOWLEDGED, value, None, None

    async def _end_transaction(self, conn: asyncpg.Connection) -> None:
        """Roll back what is left of a transaction, or discard the connection if that does not work."""
        if conn.is_closed() or not conn.is_in_transaction():
            return
        try:
            with anyio.fail_after(_ROLLBACK_S):
                await conn.execute("ROLLBACK")
        except _DB_ERRORS:
            await self.writer.discard()


# ---------------------------------------------------------------------------------------------- list-append


async def create_list_append_table(
    conn: asyncpg.Connection, table: str, *, unlogged: bool = False, partitioned: bool = False
) -> None:
    """``(k int8 PRIMARY KEY, v int8[] NOT NULL)``, created fresh (dropped first); ``unlogged`` for tests;
    ``partitioned``: range partitioned on ``k`` as one partition, which a split action can split."""
    name = quote_ident(table)
    await conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    kind = "UNLOGGED TABLE" if unlogged else "TABLE"
    layout = " PARTITION BY RANGE (k)" if partitioned else ""
    await conn.execute(f"CREATE {kind} {name} (k int8 PRIMARY KEY, v int8[] NOT NULL){layout}")
    if partitioned:
        await partition_whole(conn, table)


class ListAppendExecutor:
    """Runs list-append transactions and records them in a ``HistoryBuilder`` as one process.

    An append is ``INSERT ... ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v`` (the row's array
    grows in place: one statement, no read-modify-write); a read returns the key's array ([] when the
    row does not exist). Each logical transaction is one history entry: failed attempts before it
    applied nothing, an in-doubt one is never retried. A transaction cut short by a cancellation stays
    open in the history, which makes it in doubt.

    Args:
        runner: the transaction runner (its writer is this process's connection).
        table: the list-append table.
        history: where transactions are recorded.
        process: this client's process number in the history.
        key_offset: what the history's keys carry over the table's (a per-node target's histories number node
            i's keys from i x 2^32, so one history holds every node's keys apart while each table uses its own).
    """

    def __init__(
        self, runner: TxnRunner, table: str, history: HistoryBuilder, process: int, *, key_offset: int = 0
    ) -> None:
        self.runner = runner
        self.history = history
        self.process = process
        self.key_offset = key_offset
        name = quote_ident(table)
        self._append_sql = (
            f"INSERT INTO {name} AS t (k, v) VALUES ($1, ARRAY[$2::int8]) "
            "ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v"
        )
        self._read_sql = f"SELECT v FROM {name} WHERE k = $1"

    async def run(self, ops: Sequence[MicroOp], *, intended_ns: int | None = None) -> TxnResult[tuple[MicroOp, ...]]:
        """Run one transaction of micro-ops and record it (``ok`` with its reads, ``fail`` or ``info``)."""
        txn = self.history.invoke(self.process, self.runner.clock_ns(), ops)

        async def body(conn: asyncpg.Connection) -> tuple[MicroOp, ...]:
            done: list[MicroOp] = []
            offset = self.key_offset
            for op in ops:
                if op[0] == "append":
                    await conn.execute(self._append_sql, op[1] - offset, op[2])
                    done.append(op)
                else:
                    values = await conn.fetchval(self._read_sql, op[1] - offset)
                    done.append(read(op[1], values or ()))
            return tuple(done)

        result = await self.runner.run(body, intended_ns=intended_ns)
        if result.outcome is WriteOutcome.ACKNOWLEDGED:
            self.history.complete(txn, "ok", result.done_ns, result.value)
        else:
            self.history.complete(txn, txn_type_of(result.outcome), result.done_ns)
        return result


# ---------------------------------------------------------------------------------------------- bank


async def create_bank_tables(
    conn: asyncpg.Connection,
    spec: BankSpec,
    accounts: str,
    log: str,
    *,
    unlogged: bool = False,
    partitioned: bool = False,
) -> None:
    """The accounts table (``id int4 PRIMARY KEY, balance int8``) filled with ``spec``'s initial balances,
    and the empty transfer log (``id int8 PRIMARY KEY, src, dst, amount``); both created fresh.
    ``partitioned``: the accounts table range partitioned on ``id`` as one partition (splittable)."""
    acc, lg = quote_ident(accounts), quote_ident(log)
    kind = "UNLOGGED TABLE" if unlogged else "TABLE"
    layout = " PARTITION BY RANGE (id)" if partitioned else ""
    await conn.execute(f"DROP TABLE IF EXISTS {acc}, {lg} CASCADE")
    await conn.execute(f"CREATE {kind} {acc} (id int4 PRIMARY KEY, balance int8 NOT NULL){layout}")
    if partitioned:
        await partition_whole(conn, accounts)
    await conn.execute(f"CREATE {kind} {lg} (id int8 PRIMARY KEY, src int4 NOT NULL, dst int4 NOT NULL, amount int8)")
    await conn.executemany(f"INSERT INTO {acc} (id, balance) VALUES ($1, $2)", sorted(spec.initial().items()))


async def read_bank_final(conn: asyncpg.Connection, accounts: str, log: str) -> FinalState:
    """The end state for ``check_bank``: every account's balance and every logged transfer id."""
    rows = await conn.fetch(f"SELECT id, balance FROM {quote_ident(accounts)}")
    ids = await conn.fetch(f"SELECT id FROM {quote_ident(log)}")
    return FinalState({int(r[0]): int(r[1]) for r in rows}, [int(r[0]) for r in ids])


class BankExecutor:
    """Runs bank transfers and read-alls and records them in a ``BankHistory`` as one process.

    A transfer debits, credits and writes its log row in one transaction. The accounts are updated in
    id order (two opposite transfers do not deadlock). Without ``allow_negative`` the debit only happens
    when the balance covers it; otherwise the transfer is aborted (failed, not retried).

    ``read_then_write`` is the deliberately wrong variant: SELECT both balances, then UPDATE them to the
    values computed in the client. Under READ COMMITTED two concurrent transfers from one account
    overwrite each other (a lost update) and money appears or vanishes; REPEATABLE READ and SERIALIZABLE
    reject the second with 40001 and the retry makes it right.

    Args:
        runner: the transaction runner (its writer is this process's connection).
        history: where transfers and reads are recorded.
        process: this client's number.
        accounts, log: the tables (``create_bank_tables``).
        read_then_write: use the wrong variant.
        allow_negative: let balances go below zero.
    """

    def __init__(
        self,
        runner: TxnRunner,
        history: BankHistory,
        process: int,
        *,
        accounts: str,
        log: str,
        read_then_write: bool = False,
        allow_negative: bool = False,
    ) -> None:
        self.runner = runner
        self.history = history
        self.process = process
        self.read_then_write = read_then_write
        self.allow_negative = allow_negative
        acc, lg = quote_ident(accounts), quote_ident(log)
        self._debit_sql = f"UPDATE {acc} SET balance = balance - $2 WHERE id = $1"
        self._covered_debit_sql = f"UPDATE {acc} SET balance = balance - $2 WHERE id = $1 AND balance >= $2 RETURNING 1"
        self._credit_sql = f"UPDATE {acc} SET balance = balance + $2 WHERE id = $1"
        self._select_sql = f"SELECT id, balance FROM {acc} WHERE id = ANY($1::int4[])"
        self._set_sql = f"UPDATE {acc} SET balance = $2 WHERE id = $1"
        self._log_sql = f"INSERT INTO {lg} (id, src, dst, amount) VALUES ($1, $2, $3, $4)"
        self._read_all_sql = f"SELECT id, balance FROM {acc} ORDER BY id"

    async def run(self, op: Transfer | ReadAll, *, intended_ns: int | None = None) -> TxnResult[Any]:
        """Run a transfer or a read-all and record it."""
        invoke_ns = self.runner.clock_ns()
        if isinstance(op, ReadAll):
            reading = await self.runner.run(self._read_all, intended_ns=intended_ns)
            if reading.outcome is WriteOutcome.ACKNOWLEDGED and reading.value is not None:
                self.history.read(
                    op.id,
                    process=self.process,
                    invoke_ns=invoke_ns,
                    complete_ns=reading.done_ns,
                    balances=reading.value,
                )
            return reading
        body = self._transfer_read_then_write if self.read_then_write else self._transfer
        moving = await self.runner.run(lambda conn: body(conn, op), intended_ns=intended_ns)
        self.history.transfer(op, moving.outcome, process=self.process, invoke_ns=invoke_ns, complete_ns=moving.done_ns)
        return moving

    async def _read_all(self, conn: asyncpg.Connection) -> Mapping[int, int]:
        return {int(r[0]): int(r[1]) for r in await conn.fetch(self._read_all_sql)}

    async def _transfer(self, conn: asyncpg.Connection, t: Transfer) -> None:
        for account in sorted((t.src, t.dst)):
            if account == t.dst:
                await conn.execute(self._credit_sql, t.dst, t.amount)
            elif self.allow_negative:
                await conn.execute(self._debit_sql, t.src, t.amount)
            elif await conn.fetchval(self._covered_debit_sql, t.src, t.amount) is None:
                raise Abort(f"account {t.src} cannot cover {t.amount}")
        await conn.execute(self._log_sql, t.id, t.src, t.dst, t.amount)

    async def _transfer_read_then_write(self, conn: asyncpg.Connection, t: Transfer) -> None:
        balances = {int(r[0]): int(r[1]) for r in await conn.fetch(self._select_sql, [t.src, t.dst])}
        if not self.allow_negative and balances[t.src] < t.amount:
            raise Abort(f"account {t.src} cannot cover {t.amount}")
        new = {t.src: balances[t.src] - t.amount, t.dst: balances[t.dst] + t.amount}
        for account in sorted(new):
            await conn.execute(self._set_sql, account, new[account])
        await conn.execute(self._log_sql, t.id, t.src, t.dst, t.amount)
