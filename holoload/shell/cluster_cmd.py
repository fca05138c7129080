"""`holoload cluster up|status|down`: a local cluster that outlives one run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from holoload.adapters.local.cluster import LocalCluster, LocalNode
from holoload.adapters.local.registry import (
    load_record,
    save_record,
    state_dir,
    status_of,
    stop_record,
)
from holoload.adapters.local.replication import ReplicatedCluster, ReplicationMode
from holoload.core.errors import ExitCode, InputError

TARGET_FILE = "local-target.toml"


def cluster_command(action: str, nodes: int, base_port: int, console: Console, replication: str = "none") -> int:
    """Run one cluster action; returns the exit code."""
    if action == "up":
        return _up(nodes, base_port, console, replication)
    if action == "status":
        return _status(console)
    return _down(console)


def target_toml(nodes: list[LocalNode] | tuple[LocalNode, ...]) -> str:
    """A target file describing a running local cluster (what `holoload run` uses internally)."""
    lines = [
        "# written by `holoload cluster up`; removed by `holoload cluster down`",
        'name = "local"',
        'description = "local PostgreSQL cluster kept by holoload cluster up"',
        'data = "per_node"',
        'table_layout = "range_partitioned"',
        "",
    ]
    for node in nodes:
        lines += ["[[nodes]]", f'name = "node{node.index}"', f'dsn = "{node.dsn}"', ""]
    lines += ["[topology]", 'source = "partitions"', "", "[split]", 'method = "partition"', ""]
    return "\n".join(lines)


def replicated_target_toml(writer_dsn: str, standby_dsn: str, replication: str, nodes: int) -> str:
    """A target file for a kept replicated cluster: endpoints `primary` and `standby` over shared data."""
    return "\n".join(
        [
            "# written by `holoload cluster up --replication`; removed by `holoload cluster down`",
            'name = "local-replicated"',
            f'description = "1 primary + {nodes - 1} {replication} streaming-replication standby(s)"',
            'data = "shared"',
            'table_layout = "plain"',
            "",
            "[[nodes]]",
            'name = "primary"',
            f'dsn = "{writer_dsn}"',
            'role = "primary"',
            "",
            "[[nodes]]",
            'name = "standby"',
            f'dsn = "{standby_dsn}"',
            'role = "standby"',
            "",
        ]
    )


def _up(nodes: int, base_port: int, console: Console, replication: str = "none") -> int:
    existing = load_record()
    if existing is not None:
        raise InputError(
            f"a local cluster is already recorded ({len(existing.nodes)} nodes, "
            f"created {existing.created_at}); run `holoload cluster down` first"
        )
    log = lambda line: console.print(line, highlight=False)  # noqa: E731
    cluster: LocalCluster
    if replication in ("async", "sync"):
        if nodes < 2:
            raise InputError(f"--replication needs at least 2 nodes, got --nodes {nodes}")
        mode: ReplicationMode = "sync" if replication == "sync" else "async"
        cluster = ReplicatedCluster(nodes, replication=mode, base_port=base_port, keep=True, log=log)
    else:
        cluster = LocalCluster(nodes, base_port=base_port, keep=True, log=log)
    console.print(f"server: {cluster.binaries.describe()}", highlight=False)
    started = cluster.start()
    try:
        save_record(cluster)
    except BaseException:  # an unrecorded cluster could never be stopped by `cluster down`
        cluster.keep = False
        cluster.stop()
        raise
    target = state_dir() / TARGET_FILE
    if isinstance(cluster, ReplicatedCluster):
        target.write_text(replicated_target_toml(cluster.writer_dsn(), cluster.standby_dsn(), replication, nodes))
    else:
        target.write_text(target_toml(started))
    for node in started:
        console.print(f"node{node.index}  {node.dsn}  ({node.datadir})", highlight=False)
    console.print(f"target file: {target}\nrun with: holoload SCENARIO.toml --target {target}", highlight=False)
    return int(ExitCode.PASS)


def _status(console: Console) -> int:
    record = load_record()
    if record is None:
        console.print("no local cluster is recorded (start one with `holoload cluster up`)", highlight=False)
        return int(ExitCode.SETUP)
    statuses = status_of(record)
    for st in statuses:
        pid = f"pid {st.pid}" if st.pid else "no pid"
        console.print(f"node{st.node.index}  {st.node.dsn}  {st.state.value}  {pid}", highlight=False)
    console.print(f"target file: {state_dir() / TARGET_FILE}", highlight=False)
    return int(ExitCode.PASS if all(s.running for s in statuses) else ExitCode.SETUP)


def _down(console: Console) -> int:
    record = load_record()
    if record is None:
        console.print("no local cluster is recorded; nothing to stop", highlight=False)
        return int(ExitCode.PASS)
    stop_record(record, log=lambda line: console.print(line, highlight=False))
    Path(state_dir() / TARGET_FILE).unlink(missing_ok=True)
    console.print("local cluster stopped and removed", highlight=False)
    return int(ExitCode.PASS)
