"""The embedded local PostgreSQL cluster: N independent loopback-only servers in a temp dir."""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from holoload.adapters.local import watchdog as cluster_watchdog
from holoload.adapters.local.binaries import PgBinaries, find_postgres_binaries, stage_for_server_account
from holoload.adapters.local.server import (
    LOOPBACK,
    PortAllocator,
    accepts_connection,
    check_server_can_write,
    continue_server,
    give_to_server_account,
    live_postmaster,
    log_tail,
    port_is_free,
    run_server_program,
)
from holoload.core.errors import InputError, SetupError

Log = Callable[[str], None]
StopMode = Literal["smart", "fast", "immediate"]

DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
RESERVED_SETTINGS = frozenset({"listen_addresses", "port", "unix_socket_directories"})
CONNECT_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
PORT_ATTEMPTS = 3
#: How stop_datadir asks a server to stop, in order: (pg_ctl stop mode, seconds to wait); SIGKILL after the last.
STOP_LADDER: tuple[tuple[StopMode, int], ...] = (("fast", STOP_TIMEOUT_S), ("immediate", 10))


@dataclass(frozen=True)
class LocalNode:
    """One running server of a LocalCluster (index is 1-based)."""

    index: int
    port: int
    datadir: Path
    dsn: str


def _write_settings(datadir: Path, port: int, settings: Mapping[str, str]) -> None:
    node_dir = datadir.parent
    lines = [
        "# --- written by holoload ---",
        f"listen_addresses = '{LOOPBACK}'",
        f"port = {port}",
        f"unix_socket_directories = '{_quote(str(node_dir))}'",
        *(f"{key} = '{_quote(value)}'" for key, value in settings.items()),
    ]
    with open(datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n" + "\n".join(lines) + "\n")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def _node_log(datadir: Path) -> Path:
    return datadir.parent / "postgres.log"


def stop_datadir(
    bindir: Path, datadir: Path, *, index: int, ladder: Sequence[tuple[StopMode, int]] = STOP_LADDER
) -> None:
    """Stop the server of one data dir: each pg_ctl mode of the ladder (fast, then immediate), then SIGKILL."""
    if live_postmaster(datadir) is None:
        return
    continue_server(datadir)  # a paused node would ignore the stop below
    pg_ctl = str(bindir / "pg_ctl")
    for mode, timeout_s in ladder:
        cmd = [pg_ctl, "-D", str(datadir), "-m", mode, "-w", "-t", str(timeout_s), "stop"]
        try:
            run_server_program(cmd, what=f"node {index}: stop", timeout_s=timeout_s + 5)
            return
        except SetupError:
            if live_postmaster(datadir) is None:
                return
    pid = live_postmaster(datadir)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_all(
    bindir: Path, datadirs: Sequence[Path], log: Log, *, ladder: Sequence[tuple[StopMode, int]] = STOP_LADDER
) -> None:
    """Stop several data dirs in parallel (see stop_datadir); failures are logged, never raised (cleanup path)."""
    running = [(i, d) for i, d in enumerate(datadirs, start=1) if live_postmaster(d) is not None]
    if not running:
        return
    with ThreadPoolExecutor(max_workers=len(running)) as pool:
        futures = {}
        for index, datadir in running:
            log(f"stopping node {index}")
            futures[index] = pool.submit(stop_datadir, bindir, datadir, index=index, ladder=ladder)
        for index, future in futures.items():
            if future.exception() is not None:
                log(f"node {index}: stop failed: {future.exception()}")


def remove_files(workdir: Path, nodes_dirs: Sequence[Path], *, owns_workdir: bool) -> None:
    """Delete what holoload created: the whole workdir if it made it, else only node dirs."""
    for path in [workdir] if owns_workdir else list(nodes_dirs):
        shutil.rmtree(path, ignore_errors=True)


#: The first port a local cluster tries (`--base-port` changes it; busy ports are skipped).
DEFAULT_BASE_PORT = 55432


class LocalCluster:
    """N independent PostgreSQL servers on 127.0.0.1, trust auth, in a temp (or given) dir.

    Args:
        nodes: how many servers.
        base_port: first port to try; busy ports are skipped.
        workdir: where node dirs go; None means a fresh temp dir.
        binaries: server binaries; None means find_postgres_binaries().
        settings: extra postgresql.conf settings for every node.
        keep: stop() (and a failed start()) stops the servers but leaves their files.
        watchdog: unless keep, start() also spawns a watchdog process (cluster_watchdog) that
            stops the servers and deletes the files if this process dies without stop()
            (SIGKILL); stop() ends it. A kept cluster outlives us on purpose: it gets none.
        log: receives one progress line per step.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        base_port: int = DEFAULT_BASE_PORT,
        workdir: Path | None = None,
        binaries: PgBinaries | None = None,
        settings: Mapping[str, str] | None = None,
        keep: bool = False,
        watchdog: bool = True,
        log: Log | None = None,
    ) -> None:
        if nodes < 1:
            raise InputError(f"a local cluster needs at least 1 node, got {nodes}")
        if not 1024 <= base_port <= 65535:
            raise InputError(f"base_port must be in 1024..65535, got {base_port}")
        reserved = RESERVED_SETTINGS & set(settings or {})
        if reserved:
            raise InputError(f"settings may not override {', '.join(sorted(reserved))}")
        self.node_count = nodes
        self.base_port = base_port
        self.keep = keep
        self.watchdog = watchdog
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._requested_workdir = workdir
        self._given_binaries = binaries
        self._binaries: PgBinaries | None = None
        self._log: Log = log or (lambda _line: None)
        self.workdir: Path | None = None
        self.owns_workdir = False
        self.nodes: list[LocalNode] = []
        self._node_dirs: list[Path] = []
        self._abort = threading.Event()
        # Every node gets this database, named for this cluster alone: when a node is down and
        # another server takes its port, connections fail (3D000) instead of silently reaching
        # the other server's tables (writes "acknowledged" there would look lost here).
        self.database = f"holoload_{secrets.token_hex(4)}"
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def binaries(self) -> PgBinaries:
        """The server binaries in use (found on first access when not given)."""
        if self._binaries is None:
            self._binaries = stage_for_server_account(self._given_binaries or find_postgres_binaries())
        return self._binaries

    @property
    def watchdog_pid(self) -> int | None:
        """The pid of the running watchdog process, or None when there is none."""
        return None if self._watchdog is None else self._watchdog.pid

    def start(self) -> list[LocalNode]:
        """Create, start and check every node; on any failure stop and clean what was made.

        Raises:
            SetupError: naming the node, the command and the server log tail.
        """
        if self.workdir is not None:
            raise SetupError("this LocalCluster was already started")
        try:
            self._prepare_workdir()
            self._start_watchdog()  # before any server starts: a SIGKILL during start-up is covered too
            self.nodes = self._bring_up_all()
        except BaseException as exc:
            self._teardown(remove=not self.keep)  # also on Ctrl-C: no orphan postmasters
            if isinstance(exc, OSError):
                raise SetupError(f"local cluster in {self.workdir}: {exc}") from exc
            raise
        return list(self.nodes)

    def stop(self) -> None:
        """Stop every node and delete the files unless keep=True; safe to call repeatedly."""
        if self.workdir is None:
            return
        self._teardown(remove=not self.keep)

    def node(self, index: int) -> LocalNode:
        """The started node with this 1-based index.

        Raises:
            InputError: no such node, or the cluster is not started.
        """
        if not 1 <= index <= len(self.nodes):
            raise InputError(f"no node {index}: the local cluster has {len(self.nodes)} started node(s)")
        return self.nodes[index - 1]

    def start_node(self, index: int, *, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start one node again (after a stop or a crash) and wait until it accepts connections.

        After a crash (kill) PostgreSQL runs crash recovery. The lock files of a postmaster
        that is not running (postmaster.pid, the socket's .lock) are removed first: PostgreSQL
        would set them aside itself, except when the dead postmaster is an unreaped zombie (a
        container whose init does not reap), which its `kill(pid, 0)` check takes for alive.
        That is safe: PostgreSQL still refuses to start while old backends hold the data
        dir's shared memory.

        Returns:
            False when the node was already running (its readiness is still checked).

        Raises:
            InputError: no such node.
            SetupError: pg_ctl failed or no connection within timeout_s (with the log tail).
        """
        node = self.node(index)
        deadline = time.monotonic() + timeout_s
        was_down = live_postmaster(node.datadir) is None
        if was_down:
            for lock in [node.datadir / "postmaster.pid", *node.datadir.parent.glob(".s.PGSQL.*.lock")]:
                lock.unlink(missing_ok=True)
            self._log(f"starting node {index} on {LOOPBACK}:{node.port}")
            self._start_server(index, node.datadir, timeout_s=max(1, math.ceil(timeout_s)), slack_s=2)
        self._wait_connectable(index, node.port, node.datadir, timeout_s=max(0.1, deadline - time.monotonic()))
        return was_down

    def stop_node(
        self, index: int, *, mode: Literal["smart", "fast", "immediate"] = "fast", timeout_s: float = STOP_TIMEOUT_S
    ) -> bool:
        """Stop one node with `pg_ctl stop -m mode` (a paused node is resumed first).

        Returns:
            False when the node was not running.

        Raises:
            InputError: no such node.
            SetupError: pg_ctl failed or timed out.
        """
        node = self.node(index)
        if live_postmaster(node.datadir) is None:
            return False
        continue_server(node.datadir)
        self._log(f"stopping node {index} ({mode})")
        wait_s = str(max(1, math.ceil(timeout_s)))
        cmd = [self.binaries.program("pg_ctl"), "-D", str(node.datadir), "-m", mode, "-w", "-t", wait_s, "stop"]
        run_server_program(cmd, what=f"node {index}: stop", timeout_s=timeout_s + 2, log_file=_node_log(node.datadir))
        return True

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _indexes(self) -> range:
        return range(1, self.node_count + 1)

    def _prepare_workdir(self) -> None:
        binaries = self.binaries  # fail before creating anything
        if self._requested_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="holoload-cluster-"))
            self.owns_workdir = True
        else:
            self.workdir = self._requested_workdir.resolve()
            self.owns_workdir = not self.workdir.exists()
            self.workdir.mkdir(parents=True, exist_ok=True)
        if self.owns_workdir:
            give_to_server_account(self.workdir)
        self._log(f"local cluster in {self.workdir} (PostgreSQL {binaries.version})")
        for index in self._indexes():
            node_dir = self.workdir / f"node{index}"
            if node_dir.exists():
                raise SetupError(f"node {index}: {node_dir} already exists; pick another workdir")
            node_dir.mkdir(mode=0o700)
            self._node_dirs.append(node_dir)
            give_to_server_account(node_dir)
        check_server_can_write(self._node_dirs[0])

    def _start_watchdog(self) -> None:
        if not self.watchdog or self.keep or self.workdir is None:
            return
        self._watchdog = cluster_watchdog.spawn(
            bindir=self.binaries.bindir,
            workdir=self.workdir,
            owns_workdir=self.owns_workdir,
            datadirs=[node_dir / "data" for node_dir in self._node_dirs],
        )
        self._log(f"cluster watchdog started (pid {self._watchdog.pid})")

    def _bring_up_all(self) -> list[LocalNode]:
        # Ports are picked up front so node i gets base_port + i - 1 whenever that is free.
        allocator = PortAllocator(self.base_port)
        ports = [allocator.take() for _ in self._indexes()]
        with ThreadPoolExecutor(max_workers=self.node_count) as pool:
            futures = [
                pool.submit(self._bring_up, index, port, allocator)
                for index, port in zip(self._indexes(), ports, strict=True)
            ]
            try:
                return [future.result() for future in futures]
            except BaseException:
                self._abort.set()  # workers still running skip their remaining steps
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _bring_up(self, index: int, port: int, ports: PortAllocator) -> LocalNode:
        datadir = self._node_dirs[index - 1] / "data"
        self._init_datadir(index, datadir)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if self._abort.is_set():
                raise SetupError(f"node {index}: start abandoned (another node failed or Ctrl-C)")
            _write_settings(datadir, port, self.settings)
            self._log(f"starting node {index} on {LOOPBACK}:{port}")
            try:
                self._start_server(index, datadir)
                break
            except SetupError:
                # Another process took the port between our probe and the bind: try the next.
                if attempt == PORT_ATTEMPTS or port_is_free(port):
                    raise
                port = ports.take()
        self._wait_connectable(index, port, datadir)
        database = self._create_database(index, port)
        dsn = f"postgresql://postgres@{LOOPBACK}:{port}/{database}"
        return LocalNode(index=index, port=port, datadir=datadir, dsn=dsn)

    def _create_database(self, index: int, port: int) -> str:
        """This cluster's own database on the node (falls back to "postgres" without createdb)."""
        createdb = self.binaries.bindir / "createdb"
        if not createdb.exists():
            self._log(f"node {index}: no createdb beside the server programs; using database postgres")
            return "postgres"
        cmd = [str(createdb), "-h", LOOPBACK, "-p", str(port), "-U", "postgres", self.database]
        run_server_program(cmd, what=f"node {index}: createdb", timeout_s=CONNECT_TIMEOUT_S)
        return self.database

    def _init_datadir(self, index: int, datadir: Path) -> None:
        self._log(f"initdb node {index}")
        cmd = [
            self.binaries.program("initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        run_server_program(cmd, what=f"node {index}: initdb", timeout_s=120)

    def _start_server(
        self, index: int, datadir: Path, *, timeout_s: int = START_TIMEOUT_S, slack_s: float = 10
    ) -> None:
        log_file = _node_log(datadir)
        cmd = [
            self.binaries.program("pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(log_file),
            "-w",
            "-t",
            str(timeout_s),
            "start",
        ]
        what = f"node {index}: start"
        run_server_program(cmd, what=what, timeout_s=timeout_s + slack_s, log_file=log_file)

    def _wait_connectable(self, index: int, port: int, datadir: Path, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (reason := accepts_connection(port)) is not None:
            if time.monotonic() > deadline:
                tail = log_tail(_node_log(datadir))
                raise SetupError(
                    f"node {index}: no connection on {LOOPBACK}:{port} within "
                    f"{timeout_s:g} s ({reason})\n--- server log tail ---\n{tail}"
                )
            time.sleep(0.05)

    def _teardown(self, *, remove: bool) -> None:
        datadirs = [node_dir / "data" for node_dir in self._node_dirs]
        if datadirs and self._binaries is not None:
            stop_all(self._binaries.bindir, datadirs, self._log)
        if self._node_dirs:  # an initdb or pg_ctl start interrupted by Ctrl-C may have left a server
            cluster_watchdog.sweep(self._node_dirs, self._log)
        if remove and self.workdir is not None:
            remove_files(self.workdir, self._node_dirs, owns_workdir=self.owns_workdir)
        self.nodes = []
        self._node_dirs = []
        # Only now, so it never races the cleanup above; if that was interrupted, the
        # watchdog (still running) finishes it once this process exits.
        if self._watchdog is not None:
            cluster_watchdog.end(self._watchdog)
            self._watchdog = None
