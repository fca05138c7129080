"""The unit tier: no PostgreSQL. Running a server program here (even to find one) fails the test.

The guard (``no_postgres/sitecustomize.py``) covers this process and, through PYTHONPATH, every
Python child a test starts. A test that needs a server belongs in tests/integration.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
SITE = HERE / "no_postgres"

_spec = importlib.util.spec_from_file_location("tests.unit.no_postgres_guard", SITE / "sitecustomize.py")
assert _spec is not None and _spec.loader is not None
guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(guard)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A unit test marked ``cluster`` is in the wrong tier: say so before anything runs."""
    misplaced = [item.nodeid for item in items if HERE in item.path.parents and item.get_closest_marker("cluster")]
    if misplaced:
        raise pytest.UsageError(f"tests marked cluster belong in tests/integration: {', '.join(misplaced)}")


@pytest.fixture(scope="package", autouse=True)
def no_postgres() -> Iterator[ModuleType]:
    """Guard this process and its Python children for as long as the unit tier runs; yields the guard."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(guard.ENV, "1")
        mp.setenv("PYTHONPATH", os.pathsep.join([str(SITE), *filter(None, [os.environ.get("PYTHONPATH")])]))
        guard.install(mp.setattr)
        yield guard


@pytest.fixture(autouse=True)
def no_postgres_attempt(no_postgres: ModuleType) -> Iterator[None]:
    """Fail a test that tried to run a server program, even if the code under test swallowed the refusal."""
    guard.REFUSED.clear()
    yield
    if guard.REFUSED:
        pytest.fail(
            f"tried to run {', '.join(guard.REFUSED)}: the unit tier runs no PostgreSQL; move the test to tests/integration"
        )
