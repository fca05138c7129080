"""Shared fixtures: a real local PostgreSQL cluster for the session, anyio on asyncio + uvloop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from holoload.adapters.cluster import LocalCluster, LocalNode

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "holofusion"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures" / "holofusion"
FAKES = Path(__file__).resolve().parent / "fakes"

#: Away from 55432 (the default run) and the cluster module's own tests.
SESSION_BASE_PORT = 57432


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("asyncio", {}), id="asyncio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Async tests run on uvloop (what holoload uses) and on the plain asyncio loop."""
    return request.param


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[list[LocalNode]]:
    """Three real PostgreSQL nodes on loopback, started once per test session."""
    cluster = LocalCluster(3, base_port=SESSION_BASE_PORT)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
