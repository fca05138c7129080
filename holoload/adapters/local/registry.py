"""Registry of the one kept local cluster, so `holoload cluster up|status|down` share it."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from holoload.adapters.local.cluster import LocalCluster, LocalNode, Log, remove_files, stop_all
from holoload.adapters.local.server import LOOPBACK, live_postmaster, postmaster_pid, run_server_program
from holoload.core.errors import SetupError

RECORD_FILE = "cluster.json"
RECORD_FORMAT = 1


@dataclass(frozen=True)
class ClusterRecord:
    """What `cluster up` left running: enough to report on it and to tear it down."""

    workdir: Path
    owns_workdir: bool
    bindir: Path
    nodes: tuple[LocalNode, ...]
    pids: Mapping[int, int]  # node index -> postmaster PID when the record was written
    created_at: str  # ISO 8601


class NodeState(Enum):
    """A recorded node as seen now."""

    RUNNING = "running"  # pg_ctl says running and the port accepts TCP
    UNREACHABLE = "unreachable"  # a postmaster runs but the port does not answer
    STOPPED = "stopped"  # no postmaster for the data dir
    MISSING = "missing"  # the data dir is gone


@dataclass(frozen=True)
class NodeStatus:
    """One node of a record and its current state."""

    node: LocalNode
    state: NodeState
    pid: int | None

    @property
    def running(self) -> bool:
        """Whether the node serves connections."""
        return self.state is NodeState.RUNNING


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """HOLOLOAD_STATE_DIR, else $XDG_STATE_HOME/holoload, else ~/.local/state/holoload."""
    env = os.environ if env is None else env
    if env.get("HOLOLOAD_STATE_DIR"):
        return Path(env["HOLOLOAD_STATE_DIR"])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "holoload"
    return Path.home() / ".local" / "state" / "holoload"


def record_of(cluster: LocalCluster, *, created_at: str | None = None) -> ClusterRecord:
    """Describe a started cluster; created_at defaults to its oldest postmaster start time.

    Raises:
        SetupError: the cluster is not running.
    """
    if cluster.workdir is None or not cluster.nodes:
        raise SetupError("only a started local cluster can be recorded")
    pids = {n.index: pid for n in cluster.nodes if (pid := postmaster_pid(n.datadir)) is not None}
    return ClusterRecord(
        workdir=cluster.workdir,
        owns_workdir=cluster.owns_workdir,
        bindir=cluster.binaries.bindir,
        nodes=tuple(cluster.nodes),
        pids=pids,
        created_at=created_at or _started_at(cluster.nodes),
    )


def save_record(cluster: LocalCluster, *, created_at: str | None = None, directory: Path | None = None) -> Path:
    """Write the record of a started cluster atomically; returns the file written."""
    record = record_of(cluster, created_at=created_at)
    target = (directory or state_dir()) / RECORD_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_to_json(record), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_record(directory: Path | None = None) -> ClusterRecord | None:
    """Read the record, or None when no cluster is recorded.

    Raises:
        SetupError: the file exists but cannot be understood.
    """
    path = (directory or state_dir()) / RECORD_FILE
    try:
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SetupError(f"{path}: unreadable cluster record ({exc}); delete it") from exc


def delete_record(directory: Path | None = None) -> None:
    """Forget the recorded cluster (no error when there is none)."""
    ((directory or state_dir()) / RECORD_FILE).unlink(missing_ok=True)


def status_of(record: ClusterRecord) -> list[NodeStatus]:
    """The current state of each recorded node (pg_ctl status plus a TCP connect)."""
    return [_node_status(record.bindir, node) for node in record.nodes]


def stop_record(record: ClusterRecord, *, directory: Path | None = None, log: Log | None = None) -> None:
    """Stop every recorded node, delete its files and then the record itself."""
    log = log or (lambda _line: None)
    stop_all(record.bindir, [node.datadir for node in record.nodes], log)
    node_dirs = [node.datadir.parent for node in record.nodes]
    remove_files(record.workdir, node_dirs, owns_workdir=record.owns_workdir)
    delete_record(directory)


def _node_status(bindir: Path, node: LocalNode) -> NodeStatus:
    if not node.datadir.is_dir():
        return NodeStatus(node, NodeState.MISSING, None)
    pid = live_postmaster(node.datadir)
    if pid is None or not _pg_ctl_says_running(bindir, node.datadir):
        return NodeStatus(node, NodeState.STOPPED, None)
    state = NodeState.RUNNING if _port_answers(node.port) else NodeState.UNREACHABLE
    return NodeStatus(node, state, pid)


def _pg_ctl_says_running(bindir: Path, datadir: Path) -> bool:
    # pg_ctl exits 0 when running, 3 when not, 4 without an accessible data dir.
    cmd = [str(bindir / "pg_ctl"), "-D", str(datadir), "status"]
    try:
        run_server_program(cmd, what="status", timeout_s=10)
    except SetupError:
        return False
    return True


def _port_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def _started_at(nodes: list[LocalNode]) -> str:
    # postmaster.pid line 3 is the start time in epoch seconds: no clock read needed.
    starts = []
    for node in nodes:
        try:
            starts.append(int((node.datadir / "postmaster.pid").read_text().splitlines()[2]))
        except (OSError, IndexError, ValueError):
            continue
    if not starts:
        raise SetupError("cannot tell when the cluster started: pass created_at")
    return datetime.fromtimestamp(min(starts), tz=UTC).isoformat()


def _to_json(record: ClusterRecord) -> dict[str, object]:
    return {
        "format": RECORD_FORMAT,
        "workdir": str(record.workdir),
        "owns_workdir": record.owns_workdir,
        "bindir": str(record.bindir),
        "created_at": record.created_at,
        "nodes": [
            {
                "index": n.index,
                "port": n.port,
                "datadir": str(n.datadir),
                "dsn": n.dsn,
                "pid": record.pids.get(n.index),
            }
            for n in record.nodes
        ],
    }


def _from_json(data: dict[str, object]) -> ClusterRecord:
    if data.get("format") != RECORD_FORMAT:
        raise ValueError(f"unknown record format {data.get('format')!r}")
    nodes_json = data["nodes"]
    if not isinstance(nodes_json, list):
        raise ValueError("'nodes' is not a list")
    nodes = tuple(LocalNode(int(n["index"]), int(n["port"]), Path(n["datadir"]), str(n["dsn"])) for n in nodes_json)
    pids = {int(n["index"]): int(n["pid"]) for n in nodes_json if n.get("pid") is not None}
    return ClusterRecord(
        workdir=Path(str(data["workdir"])),
        owns_workdir=bool(data["owns_workdir"]),
        bindir=Path(str(data["bindir"])),
        nodes=nodes,
        pids=pids,
        created_at=str(data["created_at"]),
    )
