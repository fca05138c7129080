"""asyncpg connections to PostgreSQL-wire endpoints, with errors translated for the engine."""

from __future__ import annotations

import asyncio
import re
import socket
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import asyncpg

from holoload.core.errors import SetupError
from holoload.core.outcome import ErrorClass, ErrorRules, classify_sqlstate


@dataclass(frozen=True, slots=True)
class StatementError:
    """A statement that failed: its class by SQLSTATE, the code and the server's message."""

    error_class: ErrorClass
    sqlstate: str | None
    message: str

    def __str__(self) -> str:
        code = self.sqlstate or "no SQLSTATE"
        return f"{self.error_class.value} ({code}): {self.message}"


def describe_error(exc: BaseException, rules: ErrorRules | None = None) -> StatementError:
    """Classify an exception raised while talking to the database.

    By SQLSTATE; message text only through a target's explicit `rules`.
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, TimeoutError) and sqlstate is None:
        return StatementError(ErrorClass.TIMEOUT, None, "client-side timeout")
    message = str(exc).strip() or type(exc).__name__
    error_class = rules.classify(sqlstate, message) if rules else classify_sqlstate(sqlstate)
    return StatementError(error_class, sqlstate, message)


def redact(dsn: str) -> str:
    """The DSN without its password (user:pass@ or ?password=), for logs and artifacts."""
    parts = urlsplit(dsn)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return parts._replace(query=query).geturl()


#: Every connection holoload opens names itself `holoload` (writers) or `holoload/<purpose>`
#: (control, chaos, metrics, checker, cleanup) in pg_stat_activity.
APP_NAME = "holoload"

#: How long cleaning up after a step that was cut short may take in all.
DISCARD_TIMEOUT_S = 5.0

#: What a connection may raise while being cleaned up (each is handled the same way: give up on it).
_CLEANUP_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


def application_name(purpose: str = "") -> str:
    """`holoload`, or `holoload/<purpose>` (PostgreSQL keeps 63 bytes of it)."""
    return f"{APP_NAME}/{purpose}"[:63] if purpose else APP_NAME


async def connect(
    dsn: str, *, connect_timeout_s: float, statement_timeout_s: float, name: str = "", purpose: str = ""
) -> asyncpg.Connection:
    """Open one connection with a server-side statement timeout, named for `purpose` in pg_stat_activity.

    Raises:
        SetupError: the endpoint cannot be reached or refuses us (exit 3).
    """
    settings = {
        "statement_timeout": str(int(statement_timeout_s * 1000)),
        "application_name": application_name(purpose),
    }
    try:
        return await asyncpg.connect(dsn, timeout=connect_timeout_s, server_settings=settings)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        who = f"{name} at {address_of(dsn)}" if name else address_of(dsn)
        raise SetupError(f"cannot connect to {who} ({connect_failure(exc, connect_timeout_s)})") from exc


def address_of(dsn: str) -> str:
    """`host:port` of a URL DSN (`[::1]:5432` for IPv6), else the DSN without its password."""
    parts = urlsplit(dsn)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return redact(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not host:
        return redact(dsn)
    return f"{f'[{host}]' if ':' in host else host}:{port or 5432}"


def connect_failure(exc: BaseException, timeout_s: float) -> str:
    """Why a connection attempt failed, in words (`connection refused`, `no answer within 10s`...).

    Server refusals keep their SQLSTATE (`password authentication failed for user "x" (28P01)`).
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, TimeoutError) and sqlstate is None:
        return f"no answer within {timeout_s:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    message = str(exc).strip() or type(exc).__name__
    return f"{message} ({sqlstate})" if sqlstate else message


#: Connections whose server has no pg_stat_force_next_flush() (before PostgreSQL 15, other servers).
_NO_FLUSH: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


async def flush_stats(conn: asyncpg.Connection) -> bool:
    """Publish this backend's statistics now (PostgreSQL 15+), not up to 10 s later.

    A PostgreSQL 15 backend that goes idle holds its pending counters (pg_stat_database,
    pg_stat_user_tables) for up to 10 s, so a setup insert or a canary batch on an otherwise
    quiet connection showed in the SQL metrics that late. `pg_stat_force_next_flush()` makes
    the backend publish them when this statement ends, before it answers. A server without
    the function is remembered and never asked again; a failure never fails the step.

    Returns:
        Whether the counters were published.
    """
    if conn in _NO_FLUSH or conn.is_closed() or conn.is_in_transaction():
        return False
    if conn.get_server_version().major < 15:
        _NO_FLUSH.add(conn)
        return False
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    except (asyncpg.UndefinedFunctionError, asyncpg.InsufficientPrivilegeError, asyncpg.FeatureNotSupportedError):
        _NO_FLUSH.add(conn)
        return False
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):  # the step itself went through;
        return False  # a broken connection shows at the next step, which reopens it
    return True


async def count_rows(conn: asyncpg.Connection, table: str) -> int:
    """`SELECT count(*)` of a table (quoted identifier)."""
    value = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(table)}")
    return int(value)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def close_quietly(conn: asyncpg.Connection | None, timeout_s: float = 5.0) -> None:
    """Close a connection, terminating it if a graceful close does not finish in time."""
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), timeout_s)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


def reusable_after(conn: asyncpg.Connection, exc: BaseException) -> bool:
    """Whether a connection may serve the next step after this one raised `exc`.

    Only when the server answered (an error of ours or of the database's, never a timeout,
    a cancellation or a broken connection) and no transaction is left open.
    """
    broken = (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.InternalClientError)
    cause: BaseException | None = exc
    while cause is not None:  # an error of ours wrapping a timeout (the checker's) counts as the timeout
        if isinstance(cause, broken) or not isinstance(cause, Exception):
            return False
        cause = cause.__cause__
    return not conn.is_closed() and not conn.is_in_transaction()


async def discard(
    conn: asyncpg.Connection | None,
    dsn: str | None,
    *,
    timeout_s: float = DISCARD_TIMEOUT_S,
    graceful_s: float | None = None,
) -> bool:
    """Drop a connection whose step was cut short, so that nothing it started lives on in the server.

    A step cut short by a timeout or a cancellation can leave its backend running a statement,
    or idle in a transaction and holding its locks: asyncpg sends a cancel request when the task
    awaiting a query is cancelled, but the ROLLBACK of a `transaction()` block is cancelled too
    (and asyncpg then forgets the block, so the next `transaction()` on that connection raises
    "cannot use Connection.transaction() in a manually started transaction"), and a cancel
    request that arrives after its statement ended is ignored by an idle backend.

    So, shielded from cancellation and bounded by `timeout_s`: roll back and close gracefully
    (the ROLLBACK waits for asyncpg's own cancel request to land); if that does not finish
    within `graceful_s` (default: half the time), drop the socket and end the backend from a
    second connection with `pg_terminate_backend` (a backend busy in a statement does not
    notice a closed socket until the statement ends). The connection is unusable afterwards in every case. A connection
    found closed already is left alone: its server went away, or whoever closed it knew why (its
    backend's pid may belong to another session by now).

    Args:
        conn: the connection (None: nothing to do).
        dsn: where to open the second connection (None: only the graceful path).
        timeout_s: bound on the whole clean-up.
        graceful_s: bound on the graceful path (default `timeout_s / 2`).

    Returns:
        True when the session is known to have ended (or the connection was closed already),
        False when it might still linger.
    """
    if conn is None or conn.is_closed():
        return True
    with anyio.CancelScope(shield=True):
        pid = conn.get_server_pid()
        graceful_s = timeout_s / 2 if graceful_s is None else min(graceful_s, timeout_s)
        with anyio.move_on_after(graceful_s):
            try:
                await conn.execute("ROLLBACK")
                await conn.close()
                return True
            except _CLEANUP_ERRORS:
                pass
        conn.terminate()
        if dsn is None or not pid:
            return False
        with anyio.move_on_after(timeout_s - graceful_s):
            return await _end_backend(dsn, pid)
        return False
    return False  # not reached: the shielded scope above always returns


async def _end_backend(dsn: str, pid: int) -> bool:
    """pg_terminate_backend(pid) if it is one of ours, then wait until it is gone (cancel to bound it)."""
    try:
        other = await asyncpg.connect(dsn, server_settings={"application_name": application_name("cleanup")})
    except (*_CLEANUP_ERRORS, ValueError):
        return False
    ours = "FROM pg_stat_activity WHERE pid = $1 AND application_name LIKE $2"
    try:
        await other.execute(f"SELECT pg_terminate_backend(pid) {ours}", pid, APP_NAME + "%")
        while await other.fetchval(f"SELECT count(*) {ours}", pid, APP_NAME + "%"):
            await anyio.sleep(0.05)
        return True
    except _CLEANUP_ERRORS:
        return False
    finally:
        with anyio.CancelScope(shield=True):
            await close_quietly(other, 1.0)
