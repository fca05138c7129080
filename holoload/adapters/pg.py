"""asyncpg connections to PostgreSQL-wire endpoints, with errors translated for the engine."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

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


async def connect(
    dsn: str, *, connect_timeout_s: float, statement_timeout_s: float, name: str = ""
) -> asyncpg.Connection:
    """Open one connection with a server-side statement timeout.

    Raises:
        SetupError: the endpoint cannot be reached or refuses us (exit 3).
    """
    settings = {"statement_timeout": str(int(statement_timeout_s * 1000)), "application_name": "holoload"}
    try:
        return await asyncpg.connect(dsn, timeout=connect_timeout_s, server_settings=settings)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        label = f"{name} " if name else ""
        raise SetupError(f"cannot connect to {label}{redact(dsn)}: {describe_error(exc)}") from exc


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
