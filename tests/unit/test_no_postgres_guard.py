"""The unit tier's guard refuses PostgreSQL programs here and in Python children (so it cannot be a no-op)."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import anyio
import pytest

from holoload.adapters.local.cluster import LocalCluster


def test_a_server_program_is_refused_and_remembered(no_postgres: ModuleType) -> None:
    """subprocess.run(["initdb", ...]) raises before anything runs, and the after-test check would see it."""
    with pytest.raises(no_postgres.PostgresRefused):
        subprocess.run(["/usr/lib/postgresql/16/bin/initdb", "--version"], check=False)
    assert no_postgres.REFUSED == ["initdb"]
    no_postgres.REFUSED.clear()


def test_starting_a_local_cluster_is_refused(no_postgres: ModuleType) -> None:
    """LocalCluster.start() gets no further than finding (or running) a server program."""
    from holoload.core.errors import PostgresNotFound

    try:
        LocalCluster(1, base_port=59990).start()
    except PostgresNotFound:
        assert no_postgres.REFUSED == []  # no binaries at all on this machine: nothing ran either
    except no_postgres.PostgresRefused:
        no_postgres.REFUSED.clear()
    else:
        pytest.fail("a local cluster started in the unit tier")


def test_a_python_child_is_guarded_too() -> None:
    """A child Python process imports the guard at start-up and exits EXIT_CODE instead of running pg_ctl."""
    code = "import subprocess; subprocess.run(['pg_ctl', '--version'], check=False); print('ran')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 97, done.stdout + done.stderr
    assert "ran" not in done.stdout and "tests/integration" in done.stderr


@pytest.mark.anyio
async def test_an_event_loop_subprocess_is_refused(no_postgres: ModuleType) -> None:
    """anyio.run_process (loop.subprocess_exec on asyncio and on uvloop) is refused as well."""
    with pytest.raises(no_postgres.PostgresRefused):
        await anyio.run_process(["postgres", "--version"])
    assert no_postgres.REFUSED == ["postgres"]
    no_postgres.REFUSED.clear()
