"""Problems read as words for people: "setup failed: cannot connect to node1 at HOST:PORT (connection refused)".

A Python class name (SetupError) never labels a problem; only a bug keeps its class, which is
what a bug report needs.
"""

from __future__ import annotations

import socket

import asyncpg
import pytest

from holoload.adapters.pg.connect import address_of, connect, connect_failure
from holoload.core.errors import (
    HololoadError,
    InputError,
    PostgresNotFound,
    ScenarioError,
    SetupError,
    WorkerLost,
    label_of,
    reason_of,
)
from tests.support import free_port


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (SetupError("cannot connect to node1 at 127.0.0.1:5 (connection refused)"),
         "setup failed: cannot connect to node1 at 127.0.0.1:5 (connection refused)"),
        (PostgresNotFound("no PostgreSQL server binaries"), "setup failed: no PostgreSQL server binaries"),
        (ScenarioError("s.toml", [("run.drain", "expected a duration")]),
         "invalid input: s.toml: run.drain: expected a duration"),
        (InputError("--base-port: expected 1024..65535"), "invalid input: --base-port: expected 1024..65535"),
        (WorkerLost(2, "exited with code 1"), "worker 2 lost: exited with code 1"),
        (HololoadError("the checker could not read node2"), "run failed: the checker could not read node2"),
        (HololoadError(), "run failed"),
        (KeyError("x"), "internal error: KeyError: 'x'"),
    ],
)  # fmt: skip
def test_reasons_name_the_failure_in_words(exc: BaseException, reason: str) -> None:
    """Each kind of failure gets its label; no HololoadError subclass name shows."""
    assert reason_of(exc) == reason
    if isinstance(exc, HololoadError):
        assert type(exc).__name__ not in reason


def test_labels_are_the_problem_kinds() -> None:
    """The `what` of a problem event: a few fixed words."""
    assert [label_of(e) for e in (SetupError(), InputError(), WorkerLost(1, "x"), HololoadError(), ValueError())] == [
        "setup failed",
        "invalid input",
        "worker lost",
        "run failed",
        "internal error",
    ]


@pytest.mark.parametrize(
    ("dsn", "address"),
    [
        ("postgresql://postgres:secret@127.0.0.1:55432/postgres", "127.0.0.1:55432"),
        ("postgres://u@db.example/x", "db.example:5432"),
        ("postgresql://u@[::1]:6000/x", "[::1]:6000"),
        ("host=/tmp port=5432 password=secret", "host=/tmp port=5432 password=secret"),  # not a URL: as given
        ("postgresql://u:pw@h:notaport/x", "postgresql://u:***@h:notaport/x"),
    ],
)
def test_address_of_a_dsn_never_shows_its_password(dsn: str, address: str) -> None:
    """host:port of a URL; anything else redacted as a whole."""
    assert address_of(dsn) == address


@pytest.mark.parametrize(
    ("exc", "why"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5)"), "connection refused"),
        (TimeoutError(), "no answer within 2s"),
        (socket.gaierror(-2, "Name or service not known"), "unknown host: Name or service not known"),
        (OSError(113, "No route to host"), "no route to host"),
        (asyncpg.InvalidPasswordError('password authentication failed for user "x"'),
         'password authentication failed for user "x" (28P01)'),
    ],
)  # fmt: skip
def test_connect_failures_in_words(exc: BaseException, why: str) -> None:
    """Socket errors by kind; a server's refusal keeps its SQLSTATE."""
    assert connect_failure(exc, 2.0) == why


@pytest.mark.anyio
async def test_a_refused_connection_reads_as_words() -> None:
    """A real connection attempt to a closed loopback port: node, address and reason, no class name."""
    port = free_port()
    with pytest.raises(SetupError) as caught:
        await connect(
            f"postgresql://postgres:pw@127.0.0.1:{port}/postgres",
            connect_timeout_s=2.0,
            statement_timeout_s=5.0,
            name="node1",
        )
    assert reason_of(caught.value) == f"setup failed: cannot connect to node1 at 127.0.0.1:{port} (connection refused)"
