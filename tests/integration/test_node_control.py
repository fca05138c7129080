"""Node faults (kill, stop, start, restart, pause, resume) against real PostgreSQL, and command-driven faults."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalCluster
from holoload.adapters.local.node_control import CommandNodeControl, LocalNodeControl, NodeAction
from holoload.adapters.local.server import continue_server, live_postmaster, postmaster_pid, process_tree
from holoload.core.errors import InputError

# Away from the session cluster (57432) and tests/test_cluster.py (5641x).
BASE_PORT = 59500
BASE_PAUSED_STOP = 59510


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two real nodes of our own: the session cluster is shared by other tests and must not be hurt."""
    local = LocalCluster(2, base_port=BASE_PORT)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def control(cluster: LocalCluster) -> Iterator[LocalNodeControl]:
    """A fresh control; afterwards every node is running and unpaused, whatever the test did."""
    yield LocalNodeControl(cluster)
    for index in range(1, cluster.node_count + 1):
        continue_server(cluster.node(index).datadir)
        cluster.start_node(index, timeout_s=30)


def _identities(pids: list[int]) -> dict[int, int]:
    """pid -> start ticks, so a reused pid is not taken for the same process."""
    found = {}
    for pid in pids:
        try:
            found[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        except OSError:
            pass
    return found


def _state(pid: int, ticks: int) -> str | None:
    """The state letter of that very process, None when it is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0] if int(fields[19]) == ticks and fields[0] != "Z" else None


def _server_processes(datadir: Path) -> dict[int, int]:
    root = postmaster_pid(datadir)
    assert root is not None
    return _identities(process_tree(root))


async def _fetchval(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql, timeout=10)
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_kill_crashes_every_process_and_start_recovers_committed_rows(
    cluster: LocalCluster, control: LocalNodeControl
) -> None:
    """SIGKILL takes the postmaster and its children, the port refuses, and start runs crash recovery."""
    node1, node2 = cluster.nodes
    conn = await asyncpg.connect(node1.dsn, timeout=10)
    try:
        await conn.execute("DROP TABLE IF EXISTS survivors; CREATE TABLE survivors (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO survivors SELECT generate_series(1, 500)")
        processes = _server_processes(node1.datadir)
        assert len(processes) >= 4  # postmaster, its auxiliary processes and our backend

        killed = await control.act(NodeAction.KILL, "node1", timeout_s=10)
    finally:
        conn.terminate()

    assert killed.ok, killed.detail
    assert set(map(str, processes)) <= set(killed.detail.split())
    assert {pid: _state(pid, ticks) for pid, ticks in processes.items()} == dict.fromkeys(processes)
    with pytest.raises(OSError):
        await asyncpg.connect(node1.dsn, timeout=2)
    assert await _fetchval(node2.dsn, "SELECT 1") == 1  # the other node is untouched

    log_file = node1.datadir.parent / "postgres.log"
    log_offset = log_file.stat().st_size
    started = await control.act(NodeAction.START, "node1", timeout_s=30)
    assert started.ok, started.detail
    assert "started" in started.detail
    assert await _fetchval(node1.dsn, "SELECT count(*) FROM survivors") == 500
    assert "automatic recovery in progress" in log_file.read_text()[log_offset:]


@pytest.mark.anyio
async def test_stop_rolls_back_in_flight_work_and_start_brings_the_node_back(
    cluster: LocalCluster, control: LocalNodeControl
) -> None:
    """A fast stop ends open transactions; a stopped node cannot be killed, paused or resumed; start revives it."""
    node = cluster.nodes[1]
    conn = await asyncpg.connect(node.dsn, timeout=10)
    try:
        await conn.execute("DROP TABLE IF EXISTS in_flight; CREATE TABLE in_flight (id int)")
        await conn.execute("BEGIN; INSERT INTO in_flight VALUES (1)")
        stopped = await control.act(NodeAction.STOP, "node2", timeout_s=30)
    finally:
        conn.terminate()

    assert stopped.ok, stopped.detail
    assert live_postmaster(node.datadir) is None
    with pytest.raises(OSError):
        await asyncpg.connect(node.dsn, timeout=2)
    again = await control.act(NodeAction.STOP, "node2", timeout_s=30)
    assert again.ok and "not running" in again.detail
    for action in (NodeAction.KILL, NodeAction.PAUSE, NodeAction.RESUME):
        refused = await control.act(action, "node2", timeout_s=5)
        assert not refused.ok and "not running" in refused.detail, refused

    started = await control.act(NodeAction.START, "node2", timeout_s=30)
    assert started.ok, started.detail
    assert await _fetchval(node.dsn, "SELECT count(*) FROM in_flight") == 0


@pytest.mark.anyio
async def test_restart_replaces_the_postmaster_and_start_of_a_running_node_is_a_no_op(
    cluster: LocalCluster, control: LocalNodeControl
) -> None:
    """restart gives a new postmaster that answers; start on a running node keeps it and says so."""
    node = cluster.nodes[0]
    before = live_postmaster(node.datadir)

    restarted = await control.act(NodeAction.RESTART, "node1", timeout_s=30)
    assert restarted.ok, restarted.detail
    after = live_postmaster(node.datadir)
    assert after is not None and after != before
    assert await _fetchval(node.dsn, "SELECT 1") == 1

    started = await control.act(NodeAction.START, "node1", timeout_s=30)
    assert started.ok and "already running" in started.detail
    assert live_postmaster(node.datadir) == after


@pytest.mark.anyio
async def test_pause_hangs_the_node_and_resume_continues_exactly_those_processes(
    cluster: LocalCluster, control: LocalNodeControl
) -> None:
    """Paused: queries and connects time out, start refuses; resumed: the same connection answers again."""
    node = cluster.nodes[0]
    conn = await asyncpg.connect(node.dsn, timeout=10)
    try:
        processes = _server_processes(node.datadir)
        paused = await control.act(NodeAction.PAUSE, "node1", timeout_s=10)
        assert paused.ok, paused.detail
        assert control.paused() == ["node1"]
        assert {_state(pid, ticks) for pid, ticks in processes.items()} == {"T"}
        with pytest.raises(TimeoutError):
            await conn.fetchval("SELECT 1", timeout=0.5)
        with pytest.raises(TimeoutError):
            await asyncpg.connect(node.dsn, timeout=0.5)
        assert (await control.act(NodeAction.PAUSE, "node1", timeout_s=5)).detail.startswith("already paused")
        refused = await control.act(NodeAction.START, "node1", timeout_s=5)
        assert not refused.ok and "paused" in refused.detail

        resumed = await control.act(NodeAction.RESUME, "node1", timeout_s=10)
        assert resumed.ok, resumed.detail
        assert control.paused() == []
        assert "T" not in {_state(pid, ticks) for pid, ticks in processes.items()}
        assert await conn.fetchval("SELECT 2", timeout=10) == 2
        assert await _fetchval(node.dsn, "SELECT 3") == 3
        not_paused = await control.act(NodeAction.RESUME, "node1", timeout_s=5)
        assert not_paused.ok and not_paused.detail == "not paused"
    finally:
        conn.terminate()


@pytest.mark.anyio
async def test_heal_all_starts_a_killed_paused_node_and_resumes_a_paused_one(
    cluster: LocalCluster, control: LocalNodeControl
) -> None:
    """A paused node still dies on kill; heal_all then starts it and resumes the other, both answer."""
    node1, node2 = cluster.nodes
    assert (await control.act(NodeAction.PAUSE, "node1", timeout_s=10)).ok
    processes = _server_processes(node1.datadir)
    killed = await control.act(NodeAction.KILL, "node1", timeout_s=10)
    assert killed.ok, killed.detail
    assert all(_state(pid, ticks) is None for pid, ticks in processes.items())
    assert (await control.act(NodeAction.PAUSE, "node2", timeout_s=10)).ok

    healed = await control.heal_all(timeout_s=30)

    assert [(r.action, r.node, r.ok) for r in healed] == [
        (NodeAction.START, "node1", True),
        (NodeAction.RESUME, "node2", True),
    ], healed
    assert [await _fetchval(n.dsn, "SELECT 1") for n in (node1, node2)] == [1, 1]
    assert await control.heal_all(timeout_s=30) == []


@pytest.mark.anyio
async def test_local_control_names_and_unknown_nodes() -> None:
    """Names must match the node count; an unknown node or an unstarted cluster is a failed result."""
    unstarted = LocalCluster(2, base_port=BASE_PORT)
    with pytest.raises(InputError):
        LocalNodeControl(unstarted, names=["only-one"])
    control = LocalNodeControl(unstarted, names=["a", "b"])
    assert control.nodes() == ["a", "b"]
    unknown = await control.act(NodeAction.KILL, "node1", timeout_s=1)
    assert not unknown.ok and "no such node 'node1'" in unknown.detail
    not_started = await control.act(NodeAction.STOP, "a", timeout_s=1)
    assert not not_started.ok and "no node 1" in not_started.detail


def test_cluster_stop_cleans_up_a_paused_node_without_hanging() -> None:
    """LocalCluster.stop() resumes a paused node first: it ends quickly and leaves no stopped orphans."""
    cluster = LocalCluster(1, base_port=BASE_PAUSED_STOP)
    (node,) = cluster.start()
    processes = _server_processes(node.datadir)
    stopper = threading.Thread(target=cluster.stop)
    try:
        paused = asyncio.run(LocalNodeControl(cluster).act(NodeAction.PAUSE, "node1", timeout_s=10))
        assert paused.ok, paused.detail
        began = time.monotonic()
        stopper.start()
        stopper.join(timeout=20)
        assert not stopper.is_alive(), "LocalCluster.stop() hung on a paused node"
        assert time.monotonic() - began < 15  # pg_ctl's fast stop, not its 30 s timeout
    finally:
        if stopper.is_alive() or not stopper.ident:
            for pid in processes:
                os.kill(pid, signal.SIGKILL)
            stopper.join(timeout=20)
            cluster.stop()
    assert {pid: _state(pid, ticks) for pid, ticks in processes.items()} == dict.fromkeys(processes)
    assert cluster.workdir is not None and not cluster.workdir.exists()


# --- command-driven faults ---------------------------------------------------------------

_WRITE_ARGS = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
_APPEND_LINE = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


@pytest.mark.anyio
async def test_command_control_substitutes_the_node_name_without_a_shell(tmp_path: Path) -> None:
    """{node} is replaced in every argument; shell syntax in names and arguments stays literal."""
    name = "db 2;$(id)"
    control = CommandNodeControl(
        {"kill": [sys.executable, "-c", _WRITE_ARGS, str(tmp_path / "killed-{node}.txt"), "name={node} $HOME `id`"]},
        names=["db1", name],
    )
    result = await control.act(NodeAction.KILL, name, timeout_s=10)
    assert (result.action, result.node, result.ok, result.detail) == (NodeAction.KILL, name, True, "exit 0")
    assert (tmp_path / f"killed-{name}.txt").read_text() == f"name={name} $HOME `id`"
    assert [p.name for p in tmp_path.iterdir()] == [f"killed-{name}.txt"]


@pytest.mark.anyio
async def test_command_control_failures_are_results_with_the_output_tail() -> None:
    """A failing, a timed-out or a missing command, and an unknown node, give ok=False with why."""
    control = CommandNodeControl(
        {
            "stop": [sys.executable, "-c", "import sys; print('boom', sys.argv[1]); sys.exit(3)", "{node}"],
            "pause": [sys.executable, "-c", "import time; time.sleep(30)"],
            "start": ["/nonexistent/holoload-start", "{node}"],
        },
        names=["db1"],
    )
    failed = await control.act(NodeAction.STOP, "db1", timeout_s=10)
    assert not failed.ok and failed.detail == "exit 3: boom db1"
    timed_out = await control.act(NodeAction.PAUSE, "db1", timeout_s=0.5)
    assert not timed_out.ok and "timeout" in timed_out.detail and timed_out.elapsed_s < 5
    unstartable = await control.act(NodeAction.START, "db1", timeout_s=5)
    assert not unstartable.ok and "cannot run /nonexistent/holoload-start" in unstartable.detail
    missing = await control.act(NodeAction.KILL, "db1", timeout_s=5)
    assert not missing.ok and missing.detail == "no command for kill"
    unknown = await control.act(NodeAction.STOP, "db9", timeout_s=5)
    assert not unknown.ok and "no such node 'db9'" in unknown.detail


@pytest.mark.anyio
async def test_command_control_heal_all_runs_resume_then_start_for_every_node(tmp_path: Path) -> None:
    """heal_all runs the given 'resume' and 'start' commands per node, in that order, with the extra env."""
    record = tmp_path / "record.txt"
    line = [sys.executable, "-c", _APPEND_LINE + "; print(__import__('os').environ['HOLO_MARK'])", str(record)]
    control = CommandNodeControl(
        {"resume": [*line, "resume {node}"], "start": [*line, "start {node}"]},
        names=["a", "b"],
        env={"HOLO_MARK": "marked"},
    )
    healed = await control.heal_all(timeout_s=20)
    assert [(r.action, r.node, r.ok, r.detail) for r in healed] == [
        (NodeAction.RESUME, "a", True, "exit 0: marked"),
        (NodeAction.START, "a", True, "exit 0: marked"),
        (NodeAction.RESUME, "b", True, "exit 0: marked"),
        (NodeAction.START, "b", True, "exit 0: marked"),
    ]
    lines = record.read_text().splitlines()
    assert sorted(lines) == ["resume a", "resume b", "start a", "start b"]
    assert lines.index("resume a") < lines.index("start a") and lines.index("resume b") < lines.index("start b")


def test_command_control_rejects_unknown_actions_and_empty_commands() -> None:
    """Unknown action names, empty or string argvs and repeated names fail at construction."""
    with pytest.raises(InputError, match="reboot"):
        CommandNodeControl({"reboot": ["true"]}, names=["a"])
    with pytest.raises(InputError, match="kill"):
        CommandNodeControl({"kill": []}, names=["a"])
    with pytest.raises(InputError, match="kill"):
        CommandNodeControl({"kill": "pkill postgres"}, names=["a"])
    with pytest.raises(InputError):
        CommandNodeControl({"kill": ["true"]}, names=["a", "a"])
