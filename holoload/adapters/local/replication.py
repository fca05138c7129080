"""A replicated embedded cluster: one primary and hot standbys by streaming replication.

``ReplicatedCluster`` is a ``LocalCluster`` whose node 1 starts as the primary and whose other
nodes are physical copies of it (``pg_basebackup -X stream`` from the same binaries) that follow
it as hot standbys. ``replication="sync"`` makes every commit wait until at least one standby
has flushed it (``synchronous_standby_names = 'ANY 1 (*)'``, ``synchronous_commit = on``), so a
failover to the most advanced standby loses no acknowledged write; ``"async"`` acknowledges at
once, so a promoted standby may lack the old primary's last commits: a real loss for the ledger
checker to find.

Role changes:

- ``failover()``: kill -9 the primary's process tree, promote the standby that received the most
  WAL, point the other standbys at it, and bring the old primary back as a standby (``pg_rewind``
  from the new primary, or a fresh base backup when the rewind fails).
- ``switchover()``: the same with a clean (fast) shutdown of the primary instead of the kill.

Each standby's ``primary_conninfo`` port comes from ``upstream_port(standby, primary_port)``,
so the replication links can be routed through holoload's TCP fault proxy. Every method is
synchronous and blocking (server programs and ``psql``): call it from a thread in async code.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from holoload.adapters.local.cluster import (
    CONNECT_TIMEOUT_S,
    LocalCluster,
    LocalNode,
    _node_log,
    _write_settings,
)
from holoload.adapters.local.server import LOOPBACK, PortAllocator, live_postmaster, process_tree, run_server_program
from holoload.core.errors import InputError, SetupError

ReplicationMode = Literal["async", "sync"]
Role = Literal["primary", "standby", "down"]

#: What every node of a replicated cluster runs with (standbys inherit it by the base backup).
REPLICATION_SETTINGS: Mapping[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "16",
    "max_replication_slots": "16",
    "hot_standby": "on",
    "wal_log_hints": "on",  # pg_rewind needs it (or data checksums)
    "wal_keep_size": "512MB",  # a standby that fell behind can still catch up from the primary
    "wal_receiver_status_interval": "1s",
}
SYNC_SETTINGS: Mapping[str, str] = {"synchronous_standby_names": "ANY 1 (*)", "synchronous_commit": "on"}
PROMOTE_TIMEOUT_S = 60
BASEBACKUP_TIMEOUT_S = 300
KILL_WAIT_S = 10.0

UpstreamPort = Callable[[int, int], int]


def replication_settings(mode: ReplicationMode) -> dict[str, str]:
    """Server settings for a replicated cluster in this mode."""
    if mode not in ("async", "sync"):
        raise InputError(f"replication must be 'async' or 'sync', got {mode!r}")
    return {**REPLICATION_SETTINGS, **(SYNC_SETTINGS if mode == "sync" else {})}


@dataclass(frozen=True)
class RoleChange:
    """What a failover or switchover did: who was primary, who is now, and how the old one rejoined."""

    old_primary: int
    new_primary: int
    rejoined_by: str  # "pg_rewind", "base backup", or "" when the old primary was left down
    receive_lsns: Mapping[int, str]  # per standby at the moment of choosing, for the record
    seconds: float


class ReplicatedCluster(LocalCluster):
    """One primary (node 1 at start) and ``nodes - 1`` hot standbys on 127.0.0.1.

    Args:
        nodes: 2 or more.
        replication: "async" or "sync".
        upstream_port: ``(standby index, primary port) -> port`` written into the standby's
            ``primary_conninfo``; the default connects straight to the primary.
        settings: extra server settings (the replication ones are added).
        The other arguments are LocalCluster's.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        replication: ReplicationMode = "sync",
        upstream_port: UpstreamPort | None = None,
        settings: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if nodes < 2:
            raise InputError(f"a replicated cluster needs at least 2 nodes, got {nodes}")
        wanted = {**replication_settings(replication), **(settings or {})}
        # The sync settings are switched on once the standbys run: before that, a commit on the
        # primary (its own CREATE DATABASE) would wait for a standby that does not exist yet.
        self._sync_settings = {k: wanted.pop(k) for k in SYNC_SETTINGS if k in wanted}
        super().__init__(nodes, settings=wanted, **kwargs)
        self.replication: ReplicationMode = replication
        self.upstream_port: UpstreamPort = upstream_port or (lambda _standby, port: port)
        self.primary = 1

    # --- set-up ------------------------------------------------------------------------------

    def _bring_up_all(self) -> list[LocalNode]:
        allocator = PortAllocator(self.base_port)
        nodes = [self._bring_up(1, allocator.take(), allocator)]
        for index in range(2, self.node_count + 1):
            if self._abort.is_set():
                raise SetupError(f"node {index}: start abandoned (Ctrl-C)")
            nodes.append(self._bring_up_standby(index, allocator, nodes[0]))
        self.nodes = nodes
        if self._sync_settings:
            self._enable_sync()
        return nodes

    def _enable_sync(self, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Switch synchronous replication on everywhere (a standby keeps it for when it is promoted)."""
        for node in self.nodes:
            for key, value in self._sync_settings.items():
                self.sql(node.index, f"ALTER SYSTEM SET {key} = '{value}'")
            self.sql(node.index, "SELECT pg_reload_conf()")
        query = "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')"
        deadline = time.monotonic() + timeout_s
        while int(self.sql(self.primary, query) or 0) < 1:
            if time.monotonic() > deadline:
                raise SetupError(f"no synchronous standby connected to node {self.primary} within {timeout_s:g} s")
            time.sleep(0.05)

    def _bring_up_standby(self, index: int, allocator: PortAllocator, primary: LocalNode) -> LocalNode:
        datadir = self._node_dirs[index - 1] / "data"
        self._base_backup(index, datadir, primary.port)
        # The port is taken only now: a port found free before a base backup of seconds may be taken
        # by then (other clusters on a busy machine).
        port = allocator.take()
        self._configure_standby(index, datadir, port, primary.port)
        self._log(f"starting standby node {index} on {LOOPBACK}:{port}")
        self._start_server(index, datadir)
        self._wait_connectable(index, port, datadir)
        dsn = f"postgresql://postgres@{LOOPBACK}:{port}/{self.database}"
        return LocalNode(index=index, port=port, datadir=datadir, dsn=dsn)

    def _base_backup(self, index: int, datadir: Path, primary_port: int) -> None:
        self._log(f"node {index}: base backup from {LOOPBACK}:{primary_port}")
        cmd = [
            self.binaries.program("pg_basebackup"),
            *("-h", LOOPBACK, "-p", str(primary_port), "-U", "postgres"),
            *("-D", str(datadir), "-X", "stream", "--checkpoint=fast", "--no-sync"),
        ]
        run_server_program(cmd, what=f"node {index}: pg_basebackup", timeout_s=BASEBACKUP_TIMEOUT_S)

    def _configure_standby(self, index: int, datadir: Path, port: int, primary_port: int) -> None:
        """Own port and socket dir (the copy has the primary's), standby.signal, primary_conninfo."""
        _write_settings(datadir, port, self.settings)
        (datadir / "standby.signal").write_text("")
        upstream = self.upstream_port(index, primary_port)
        conninfo = f"host={LOOPBACK} port={upstream} user=postgres application_name=node{index}"
        # postgresql.auto.conf wins over postgresql.conf, and a later line over an earlier one.
        with open(datadir / "postgresql.auto.conf", "a", encoding="utf-8") as auto:
            auto.write(f"\nprimary_conninfo = '{conninfo}'\n")

    # --- roles -------------------------------------------------------------------------------

    def sql(self, index: int, query: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
        """One query's first column of the first row as text, through psql (raises SetupError)."""
        node = self.node(index)
        cmd = [
            self.binaries.program("psql"),
            *("-h", LOOPBACK, "-p", str(node.port), "-U", "postgres", "-d", "postgres"),
            *("-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query),
        ]
        return run_server_program(cmd, what=f"node {index}: psql", timeout_s=timeout_s).strip()

    def role(self, index: int) -> Role:
        """What node ``index`` is right now, asked of the server itself."""
        if live_postmaster(self.node(index).datadir) is None:
            return "down"
        try:
            in_recovery = self.sql(index, "SELECT pg_is_in_recovery()", timeout_s=10)
        except SetupError:
            return "down"
        return "standby" if in_recovery == "t" else "primary"

    def roles(self) -> dict[int, Role]:
        """Every node's role, by 1-based index."""
        return {node.index: self.role(node.index) for node in self.nodes}

    def writer_dsn(self) -> str:
        """One DSN naming every node with ``target_session_attrs=read-write``: a (re)connect reaches
        whichever node is primary now, so writers follow a failover without being told."""
        hosts = ",".join(f"{LOOPBACK}:{node.port}" for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{self.database}?target_session_attrs=read-write"

    def standby_dsn(self) -> str:
        """Every node with ``target_session_attrs=prefer-standby``: reads land on a standby while one is up."""
        hosts = ",".join(f"{LOOPBACK}:{node.port}" for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{self.database}?target_session_attrs=prefer-standby"

    def standbys(self) -> list[int]:
        """The nodes that are not the primary (running or not)."""
        return [node.index for node in self.nodes if node.index != self.primary]

    def wait_replayed(self, *, timeout_s: float = 30.0) -> None:
        """Wait until every running standby replayed the primary's current WAL position."""
        target = self.sql(self.primary, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout_s
        for index in self.standbys():
            if self.role(index) != "standby":
                continue
            query = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            while self.sql(index, query, timeout_s=10) != "t":
                if time.monotonic() > deadline:
                    raise SetupError(f"node {index}: did not replay up to {target} within {timeout_s:g} s")
                time.sleep(0.05)

    def failover(self, *, rejoin: bool = True) -> RoleChange:
        """kill -9 the primary, promote the most advanced standby, rejoin the old primary as a standby."""
        return self._change_primary(kill=True, to=None, rejoin=rejoin)

    def switchover(self, to: int | None = None) -> RoleChange:
        """Stop the primary cleanly, promote ``to`` (default: the most advanced standby), rejoin the old one."""
        return self._change_primary(kill=False, to=to, rejoin=True)

    def rejoin(self, index: int) -> str:
        """Bring a stopped former primary back as a standby of the current primary.

        Returns:
            "pg_rewind" or "base backup", whichever brought it back.
        """
        node = self.node(index)
        if live_postmaster(node.datadir) is not None:
            raise SetupError(f"node {index} is running; stop it before it rejoins")
        primary = self.node(self.primary)
        # A killed postmaster leaves its lock files; pg_rewind's crash recovery (postgres --single)
        # refuses to run beside them, and so would the start below.
        for lock in [node.datadir / "postmaster.pid", *node.datadir.parent.glob(".s.PGSQL.*.lock")]:
            lock.unlink(missing_ok=True)
        how = "pg_rewind"
        try:
            self._rewind(index, node.datadir, primary.port)
        except SetupError as exc:
            self._log(f"node {index}: pg_rewind failed, taking a fresh base backup ({exc})")
            shutil.rmtree(node.datadir, ignore_errors=True)
            self._base_backup(index, node.datadir, primary.port)
            how = "base backup"
        self._configure_standby(index, node.datadir, node.port, primary.port)
        self._log(f"starting node {index} as a standby of node {self.primary}")
        self._start_server(index, node.datadir)
        self._wait_connectable(index, node.port, node.datadir)
        return how

    # --- internals ---------------------------------------------------------------------------

    def _change_primary(self, *, kill: bool, to: int | None, rejoin: bool) -> RoleChange:
        started = time.monotonic()
        old = self.primary
        if to is not None and to not in self.standbys():
            raise InputError(f"node {to} is not a standby (standbys: {self.standbys()})")
        if kill:
            self._kill(old)
        else:
            self.stop_node(old, mode="fast")
        lsns = self._receive_lsns()
        if not lsns:
            raise SetupError("no running standby to promote")
        new = to if to is not None else max(lsns, key=lambda i: (_lsn_value(lsns[i]), -i))
        self._promote(new)
        # pg_rewind reads the source's timeline from its control file, which a promoted server
        # updates only at its next checkpoint (the PostgreSQL docs ask for this CHECKPOINT).
        self.sql(new, "CHECKPOINT", timeout_s=PROMOTE_TIMEOUT_S)
        self.primary = new
        for index in self.standbys():
            if index != old and self.role(index) == "standby":
                self._repoint(index)
        how = self.rejoin(old) if rejoin else ""
        return RoleChange(old, new, how, lsns, time.monotonic() - started)

    def _kill(self, index: int) -> None:
        datadir = self.node(index).datadir
        pid = live_postmaster(datadir)
        if pid is None:
            return
        self._log(f"node {index}: kill -9 (postmaster {pid} and its children)")
        for victim in process_tree(pid) or [pid]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + KILL_WAIT_S
        while live_postmaster(datadir) is not None:
            if time.monotonic() > deadline:
                raise SetupError(f"node {index}: postmaster {pid} still alive {KILL_WAIT_S:g} s after SIGKILL")
            time.sleep(0.02)

    def _receive_lsns(self) -> dict[int, str]:
        """Each running standby's furthest WAL position: received (flushed) or replayed.

        Both count: a WAL receiver that restarted (e.g. after following a new primary) reports the
        start of the segment it streams from, which may be behind what the standby already holds.
        """
        found: dict[int, str] = {}
        for index in self.standbys():
            if self.role(index) != "standby":
                continue
            query = (
                "SELECT greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'::pg_lsn), "
                "coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn))"
            )
            found[index] = self.sql(index, query, timeout_s=10)
        return found

    def _promote(self, index: int) -> None:
        node = self.node(index)
        self._log(f"node {index}: promote")
        cmd = [self.binaries.program("pg_ctl"), "-D", str(node.datadir), "-w", "-t", str(PROMOTE_TIMEOUT_S), "promote"]
        run_server_program(
            cmd, what=f"node {index}: promote", timeout_s=PROMOTE_TIMEOUT_S + 5, log_file=_node_log(node.datadir)
        )

    def _repoint(self, index: int) -> None:
        """A running standby follows the new primary (primary_conninfo reloads without restart)."""
        primary = self.node(self.primary)
        conninfo = (
            f"host={LOOPBACK} port={self.upstream_port(index, primary.port)} user=postgres application_name=node{index}"
        )
        self._log(f"node {index}: now follows node {self.primary}")
        self.sql(index, f"ALTER SYSTEM SET primary_conninfo = '{conninfo}'")
        self.sql(index, "SELECT pg_reload_conf()")

    def _rewind(self, index: int, datadir: Path, source_port: int) -> None:
        self._log(f"node {index}: pg_rewind from node {self.primary}")
        source = f"host={LOOPBACK} port={source_port} user=postgres dbname=postgres"
        cmd = [self.binaries.program("pg_rewind"), "--target-pgdata", str(datadir), "--source-server", source]
        run_server_program(cmd, what=f"node {index}: pg_rewind", timeout_s=BASEBACKUP_TIMEOUT_S)


def _lsn_value(lsn: str) -> int:
    """'0/3000148' -> an integer that orders like the WAL position."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)
