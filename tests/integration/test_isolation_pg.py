"""PostgreSQL's isolation levels as known answers: the list-append and bank checkers on real transactions.

SERIALIZABLE shows no anomaly; REPEATABLE READ (snapshot isolation) shows write skew (G2-item) and nothing
snapshot isolation forbids; READ COMMITTED shows read skew (G-single), and a read-then-write transfer
breaks conservation there. A COMMIT whose connection is killed is in doubt, never failed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.adapters.pg.pool import Writer, close_writers, open_writers
from holoload.core.isolation import HistoryBuilder, Txn, TxnType, check
from holoload.core.isolation.bank import BankHistory, ViolationKind, check_bank
from holoload.core.isolation.generate import BankGenerator, BankSpec, ListAppendGenerator, ListAppendSpec, Transfer
from holoload.core.ledger.book import WriteOutcome
from holoload.core.outcome import ErrorClass
from holoload.engine.transactions import (
    BankExecutor,
    IsolationLevel,
    ListAppendExecutor,
    TxnRetry,
    TxnRunner,
    TxnStats,
    create_bank_tables,
    create_list_append_table,
    read_bank_final,
)

pytestmark = pytest.mark.anyio

SER, RR, RC = IsolationLevel.SERIALIZABLE, IsolationLevel.REPEATABLE_READ, IsolationLevel.READ_COMMITTED
PROCESSES = 8  # concurrent connections: enough contention on a handful of keys for the weak levels to show
LIST_TXNS = 120  # transactions per process
BANK_OPS = 60  # bank operations per process
RETRY = TxnRetry(max_attempts=30, backoff_s=0.001, max_backoff_s=0.05)
DEADLOCK_TIMEOUT = "SET deadlock_timeout = '20ms'"


@pytest.fixture
def anyio_backend() -> str:
    """One event loop: these runs are long enough once."""
    return "asyncio"


@pytest.fixture
def dsn(pg_cluster: list[LocalNode]) -> str:
    return pg_cluster[0].dsn


@pytest.fixture
async def admin(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _writers(dsn: str, n: int) -> list[Writer]:
    writers = [
        Writer(i, f"p{i}", dsn, connect_timeout_s=10, statement_timeout_s=30, rng=random.Random(i)) for i in range(n)
    ]
    await open_writers(writers)
    return writers


def runner(writer: Writer, level: IsolationLevel, **kwargs: Any) -> TxnRunner:
    """A runner whose sessions look for deadlocks after 20 ms: list-append transactions append to keys in any
    order, so deadlocks (40P01, retried) are normal, and PostgreSQL's default 1 s wait would dominate the run."""
    kwargs.setdefault("retry", RETRY)
    return TxnRunner(writer, level, session_sql=[DEADLOCK_TIMEOUT], **kwargs)


async def run_list_append(dsn: str, admin: asyncpg.Connection, level: IsolationLevel, seed: int) -> list[Txn]:
    """PROCESSES clients x LIST_TXNS list-append transactions at ``level`` on a fresh table."""
    table = _name("la")
    await create_list_append_table(admin, table, unlogged=True)
    history = HistoryBuilder()
    gen = ListAppendGenerator(ListAppendSpec(keys=5, min_ops=2, max_ops=4, writes_per_key=40), random.Random(seed))
    writers = await _writers(dsn, PROCESSES)
    try:

        async def client(p: int) -> None:
            executor = ListAppendExecutor(runner(writers[p], level, rng=random.Random(seed + p)), table, history, p)
            for _ in range(LIST_TXNS):
                await executor.run(gen.next_txn())

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for p in range(PROCESSES):
                    tg.start_soon(client, p)
    finally:
        await close_writers(writers)
        await admin.execute(f'DROP TABLE IF EXISTS "{table}"')
    return history.build()


def _types(txns: list[Txn]) -> Counter[str]:
    return Counter(t.type.value for t in txns)


async def test_list_append_at_serializable_shows_no_anomaly(dsn: str, admin: asyncpg.Connection) -> None:
    """SERIALIZABLE: the history is serializable (conflicts were rejected with 40001 and retried)."""
    txns = await run_list_append(dsn, admin, SER, seed=1)
    result = check(txns, "serializable")
    assert result.valid is True, result.counts
    assert result.counts == {}
    assert _types(txns)["ok"] == PROCESSES * LIST_TXNS  # every transaction committed, on some attempt


async def test_list_append_at_repeatable_read_shows_write_skew_only(dsn: str, admin: asyncpg.Connection) -> None:
    """REPEATABLE READ is snapshot isolation: G2-item (write skew) appears, nothing SI forbids does."""
    txns = await run_list_append(dsn, admin, RR, seed=2)
    si = check(txns, "snapshot-isolation")
    assert si.valid is True, si.counts
    serializable = check(txns, "serializable")
    assert serializable.valid is False
    assert serializable.forbidden_found == ("G2-item",)
    assert serializable.counts["G2-item"] >= 1
    assert set(serializable.counts) == {"G2-item"}
    cycle = serializable.anomalies["G2-item"][0]
    assert sum(step.edge == "rw" for step in cycle.steps) >= 2


async def test_list_append_at_read_committed_shows_read_skew(dsn: str, admin: asyncpg.Connection) -> None:
    """READ COMMITTED: G-single (read skew) appears, and nothing read committed forbids."""
    txns = await run_list_append(dsn, admin, RC, seed=3)
    rc = check(txns, "read-committed")
    assert rc.valid is True, rc.counts
    si = check(txns, "snapshot-isolation")
    assert si.valid is False
    assert "G-single" in si.forbidden_found
    assert si.counts["G-single"] >= 1
    cycle = si.anomalies["G-single"][0]
    assert sum(step.edge == "rw" for step in cycle.steps) == 1


async def run_bank(
    dsn: str, admin: asyncpg.Connection, level: IsolationLevel, *, read_then_write: bool, seed: int
) -> tuple[BankHistory, BankSpec, TxnStats, object]:
    """PROCESSES clients x BANK_OPS transfers and read-alls on fresh tables; the history, stats, end state."""
    spec = BankSpec(accounts=5, initial_balance=100, max_amount=5, read_every=4)
    accounts, log = _name("acc"), _name("xfer")
    await create_bank_tables(admin, spec, accounts, log, unlogged=True)
    history = BankHistory()
    stats = TxnStats()
    writers = await _writers(dsn, PROCESSES)
    try:

        async def client(p: int) -> None:
            gen = BankGenerator(spec, random.Random(seed * 100 + p), id_start=p + 1, id_step=PROCESSES)
            executor = BankExecutor(
                runner(writers[p], level, rng=random.Random(seed + p)),
                history,
                p,
                accounts=accounts,
                log=log,
                read_then_write=read_then_write,
            )
            for _ in range(BANK_OPS):
                stats.record(await executor.run(gen.next_op()))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for p in range(PROCESSES):
                    tg.start_soon(client, p)
        final = await read_bank_final(admin, accounts, log)
    finally:
        await close_writers(writers)
        await admin.execute(f'DROP TABLE IF EXISTS "{accounts}", "{log}"')
    return history, spec, stats, final


@pytest.mark.parametrize("read_then_write", [False, True], ids=["atomic", "read-then-write"])
async def test_bank_at_serializable_conserves_money(dsn: str, admin: asyncpg.Connection, read_then_write: bool) -> None:
    """SERIALIZABLE: every read sums to the total and every transfer applied once, even read-then-write."""
    history, spec, stats, final = await run_bank(dsn, admin, SER, read_then_write=read_then_write, seed=4)
    result = check_bank(history, initial=spec.initial(), final=final)  # type: ignore[arg-type]
    assert result.valid, result.counts
    assert result.stats["acknowledged"] > 0 and result.stats["reads"] > 0
    assert result.stats["in_doubt"] == 0
    if read_then_write:
        assert max(stats.attempts) > 1  # the lost updates SERIALIZABLE prevented were 40001s, retried


async def test_bank_read_then_write_at_read_committed_breaks_conservation(dsn: str, admin: asyncpg.Connection) -> None:
    """READ COMMITTED: read-then-write transfers lose updates: reads and the end state miss the total."""
    history, spec, _, final = await run_bank(dsn, admin, RC, read_then_write=True, seed=5)
    result = check_bank(history, initial=spec.initial(), final=final)  # type: ignore[arg-type]
    assert not result.valid
    assert result.counts[ViolationKind.BALANCE_MISMATCH.value] >= 1
    assert result.counts[ViolationKind.WRONG_TOTAL.value] >= 1
    wrong = result.violations[ViolationKind.WRONG_TOTAL.value][0]
    assert wrong.reads and "sums to" in wrong.description
    assert ViolationKind.LOST.value not in result.counts  # every acknowledged transfer is in the log


async def test_bank_atomic_transfers_at_read_committed_conserve_money(dsn: str, admin: asyncpg.Connection) -> None:
    """READ COMMITTED with `balance = balance - amount` updates: no lost update, money is conserved."""
    history, spec, _, final = await run_bank(dsn, admin, RC, read_then_write=False, seed=6)
    result = check_bank(history, initial=spec.initial(), final=final)  # type: ignore[arg-type]
    assert result.valid, result.counts


# ---------------------------------------------------------------------------------------------- ambiguous commits


async def _slow_commit(admin: asyncpg.Connection, table: str) -> None:
    """A deferred constraint trigger on ``table`` that sleeps at COMMIT, so a kill can land during it."""
    fn = _name("slow")
    await admin.execute(
        f'CREATE FUNCTION "{fn}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$'
    )
    await admin.execute(
        f'CREATE CONSTRAINT TRIGGER "{fn}" AFTER INSERT OR UPDATE ON "{table}" '
        f'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{fn}"()'
    )


async def _kill_at_commit(admin: asyncpg.Connection, pid: int) -> None:
    """Wait until backend ``pid`` runs COMMIT, then terminate it."""
    for _ in range(200):
        state = await admin.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid)
        if state == "COMMIT":
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"backend {pid} never ran COMMIT")


async def test_list_append_commit_killed_is_in_doubt(dsn: str, admin: asyncpg.Connection) -> None:
    """pg_terminate_backend during COMMIT: the transaction is `info` in the history, never `fail`."""
    table = _name("la")
    await create_list_append_table(admin, table)
    await _slow_commit(admin, table)
    [writer] = await _writers(dsn, 1)
    try:
        assert writer.conn is not None
        pid = writer.conn.get_server_pid()
        history = HistoryBuilder()
        la_runner = runner(writer, SER)
        executor = ListAppendExecutor(la_runner, table, history, 0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_kill_at_commit, admin, pid)
            result = await executor.run([("append", 1, 1), ("r", 1, None)])
        assert result.outcome is WriteOutcome.IN_DOUBT
        assert result.attempts == 1  # an in-doubt transaction is never run again
        assert result.error is not None and result.error.error_class is ErrorClass.CONNECTION  # 57P01 or 08003
        [txn] = history.build()
        assert txn.type is TxnType.INFO
        assert check(history.build(), "serializable").valid is True
        # the next transaction reconnects, with the session settings again, and runs normally
        again = await executor.run([("r", 1, None)])
        assert again.outcome is WriteOutcome.ACKNOWLEDGED
        assert writer.conn is not None and writer.conn.get_server_pid() != pid
        setting = await la_runner.run(lambda conn: conn.fetchval("SHOW deadlock_timeout"))
        assert setting.value == "20ms"
    finally:
        await close_writers([writer])
        await admin.execute(f'DROP TABLE IF EXISTS "{table}"')


async def test_bank_commit_killed_is_in_doubt(dsn: str, admin: asyncpg.Connection) -> None:
    """A transfer whose COMMIT loses its backend is in doubt; the checker accepts it applied or not."""
    spec = BankSpec(accounts=3)
    accounts, log = _name("acc"), _name("xfer")
    await create_bank_tables(admin, spec, accounts, log)
    await _slow_commit(admin, log)
    [writer] = await _writers(dsn, 1)
    try:
        assert writer.conn is not None
        pid = writer.conn.get_server_pid()
        history = BankHistory()
        executor = BankExecutor(runner(writer, SER), history, 0, accounts=accounts, log=log)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_kill_at_commit, admin, pid)
            result = await executor.run(Transfer(1, 0, 2, 7))
        assert result.outcome is WriteOutcome.IN_DOUBT
        [record] = history.transfers
        assert record.outcome is WriteOutcome.IN_DOUBT
        verdict = check_bank(history, initial=spec.initial(), final=await read_bank_final(admin, accounts, log))
        assert verdict.valid, verdict.counts
        assert verdict.stats["in_doubt"] == 1
        assert verdict.stats["in_doubt_applied"] + verdict.stats["in_doubt_not_applied"] == 1
    finally:
        await close_writers([writer])
        await admin.execute(f'DROP TABLE IF EXISTS "{accounts}", "{log}"')


# ---------------------------------------------------------------------------------------------- cut short


async def _holders(admin: asyncpg.Connection, pid: int) -> int:
    return int(await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid))


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_transaction_cut_short_leaves_nothing_on_the_server(
    dsn: str, admin: asyncpg.Connection, how: str
) -> None:
    """A transaction holding a row lock, cut short by its timeout or a cancel: backend gone, lock free."""
    table = _name("la")
    await create_list_append_table(admin, table)
    await admin.execute(f'INSERT INTO "{table}" VALUES (1, ARRAY[1])')
    [writer] = await _writers(dsn, 1)
    try:
        assert writer.conn is not None
        pid = writer.conn.get_server_pid()
        cut = runner(writer, RC, timeout_s=0.5 if how == "timeout" else 30)

        async def hold(conn: asyncpg.Connection) -> None:
            await conn.execute(f'SELECT * FROM "{table}" WHERE k = 1 FOR UPDATE')
            await conn.execute("SELECT pg_sleep(20)")

        if how == "timeout":
            result = await cut.run(hold)
            assert result.outcome is WriteOutcome.FAILED  # cut short before COMMIT: it cannot have committed
            assert result.error is not None and result.error.error_class is ErrorClass.TIMEOUT
            assert result.attempts == 1
        else:
            with anyio.move_on_after(0.5) as scope:
                await cut.run(hold)
            assert scope.cancelled_caught
        assert await _holders(admin, pid) == 0
        assert writer.conn is None
        await admin.execute("SET lock_timeout = '2s'")
        assert await admin.execute(f'UPDATE "{table}" SET v = v || 2::int8 WHERE k = 1') == "UPDATE 1"
    finally:
        await close_writers([writer])
        await admin.execute("RESET lock_timeout")
        await admin.execute(f'DROP TABLE IF EXISTS "{table}"')


# ---------------------------------------------------------------------------------------------- retries


SERIALIZATION_FAILURE = "DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '40001'; END $$"


async def test_a_serialization_failure_runs_the_whole_transaction_again(dsn: str, admin: asyncpg.Connection) -> None:
    """40001 on the first two attempts: the third commits; the failed attempts' writes were rolled back."""
    table = _name("la")
    await create_list_append_table(admin, table)
    [writer] = await _writers(dsn, 1)
    ticks = iter(range(1000, 10**6, 1000))
    try:
        txn = runner(writer, SER, clock_ns=lambda: next(ticks))
        calls: list[int] = []

        async def body(conn: asyncpg.Connection) -> int:
            calls.append(len(calls) + 1)
            await conn.execute(f'INSERT INTO "{table}" VALUES ($1, ARRAY[1])', len(calls))
            if len(calls) < 3:
                await conn.execute(SERIALIZATION_FAILURE)
            return len(calls)

        result = await txn.run(body, intended_ns=0)
        assert (result.outcome, result.value, result.attempts) == (WriteOutcome.ACKNOWLEDGED, 3, 3)
        assert result.latency_ns == result.done_ns > 0  # from the intended start, over every attempt
        assert [r[0] for r in await admin.fetch(f'SELECT k FROM "{table}"')] == [3]
        assert writer.conn is not None and not writer.conn.is_in_transaction()

        calls.clear()
        limited = runner(writer, SER, retry=TxnRetry(max_attempts=2, backoff_s=0))
        exhausted = await limited.run(body)
        assert (exhausted.outcome, exhausted.attempts) == (WriteOutcome.FAILED, 2)
        assert exhausted.error is not None and exhausted.error.sqlstate == "40001"

        async def duplicate(conn: asyncpg.Connection) -> None:
            await conn.execute(f'INSERT INTO "{table}" VALUES (3, ARRAY[2])')

        rejected = await txn.run(duplicate)
        assert (rejected.outcome, rejected.attempts) == (WriteOutcome.FAILED, 1)  # 23505 is not retryable
        assert rejected.error is not None and rejected.error.error_class is ErrorClass.CONSTRAINT

        stats = TxnStats()
        for r in (result, exhausted, rejected):
            stats.record(r)
        assert stats.attempts == Counter({3: 1, 2: 1, 1: 1})
        assert stats.to_json()["outcomes"] == {"acknowledged": 1, "failed": 2}
        assert stats.errors == Counter({"40001": 1, "23505": 1})
    finally:
        await close_writers([writer])
        await admin.execute(f'DROP TABLE IF EXISTS "{table}"')


async def test_abort_rolls_back_without_retry_and_keeps_the_connection(dsn: str, admin: asyncpg.Connection) -> None:
    """A transfer the balance cannot cover is aborted: failed, one attempt, nothing written, connection kept."""
    spec = BankSpec(accounts=2, initial_balance=3)
    accounts, log = _name("acc"), _name("xfer")
    await create_bank_tables(admin, spec, accounts, log)
    [writer] = await _writers(dsn, 1)
    try:
        assert writer.conn is not None
        pid = writer.conn.get_server_pid()
        history = BankHistory()
        executor = BankExecutor(runner(writer, SER), history, 0, accounts=accounts, log=log)
        result = await executor.run(Transfer(1, 1, 0, 5))  # credit of 0 first (id order), then the debit fails
        assert (result.outcome, result.attempts) == (WriteOutcome.FAILED, 1)
        assert result.aborted == "account 1 cannot cover 5"
        assert writer.conn is not None and writer.conn.get_server_pid() == pid
        assert not writer.conn.is_in_transaction()
        final = await read_bank_final(admin, accounts, log)
        assert dict(final.balances) == {0: 3, 1: 3} and list(final.logged_ids) == []
        assert check_bank(history, initial=spec.initial(), final=final).valid
    finally:
        await close_writers([writer])
        await admin.execute(f'DROP TABLE IF EXISTS "{accounts}", "{log}"')
