"""Fixtures for both tiers: async tests run on uvloop and on the plain asyncio loop.

Tests come in two tiers: tests/unit (no PostgreSQL, no server started; its conftest refuses any
attempt) and tests/integration (real PostgreSQL and whole runs; its conftest starts the session's
cluster and marks every test there ``cluster``). Shared helpers live in tests/support.
"""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("asyncio", {}), id="asyncio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Async tests run on uvloop (what holoload uses) and on the plain asyncio loop."""
    return request.param
