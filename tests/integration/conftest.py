"""The integration tier: a real local PostgreSQL cluster for the session; every test here is marked ``cluster``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalCluster, LocalNode

HERE = Path(__file__).resolve().parent

#: Away from 55432 (the default run) and the cluster module's own tests.
SESSION_BASE_PORT = 57432


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``cluster``: `-m "not cluster"` selects exactly tests/unit."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[list[LocalNode]]:
    """Three real PostgreSQL nodes on loopback, started once per test session."""
    cluster = LocalCluster(3, base_port=SESSION_BASE_PORT)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def pg_history_url(pg_cluster: list[LocalNode]) -> Iterator[str]:
    """A fresh database on the session's first node, dropped afterwards."""
    name = f"history_{uuid.uuid4().hex[:8]}"
    admin = pg_cluster[0].dsn

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f"CREATE DATABASE {name}"))
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
