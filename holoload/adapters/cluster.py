"""The embedded local PostgreSQL cluster: N independent loopback-only servers in a temp dir."""

from __future__ import annotations

import math
import os
import pwd
import shutil
import signal
import socket
import struct
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

from holoload.adapters.pg_binaries import PgBinaries, find_postgres_binaries
from holoload.core.errors import InputError, SetupError

Log = Callable[[str], None]

DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
RESERVED_SETTINGS = frozenset({"listen_addresses", "port", "unix_socket_directories"})
LOOPBACK = "127.0.0.1"
SERVER_OS_USER = "postgres"  # initdb/pg_ctl refuse to run as root
CONNECT_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
PORT_ATTEMPTS = 3
_PORT_SCAN_LIMIT = 1000


@dataclass(frozen=True)
class LocalNode:
    """One running server of a LocalCluster (index is 1-based)."""

    index: int
    port: int
    datadir: Path
    dsn: str


# --- running server programs -------------------------------------------------------------


def _server_account() -> pwd.struct_passwd | None:
    """The OS account to run server programs as: None means 'as ourselves' (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise SetupError(
            f"running as root, but there is no '{SERVER_OS_USER}' OS user to run PostgreSQL "
            f"as (initdb refuses root); create one (`useradd -r {SERVER_OS_USER}`) or run "
            "holoload as an ordinary user"
        ) from None


def _give_to_server_account(path: Path) -> None:
    account = _server_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def _check_server_can_write(directory: Path) -> None:
    """Fail early, and clearly, when root made a dir the postgres user cannot reach."""
    if _server_account() is None:
        return
    probe = ["/bin/sh", "-c", 'test -w "$1" && test -x "$1"', "sh", str(directory)]
    try:
        run_server_program(probe, what="access check", timeout_s=10)
    except SetupError:
        raise SetupError(
            f"OS user '{SERVER_OS_USER}' cannot write {directory} (is a parent directory "
            "private to root?); pick a workdir under /tmp or let holoload create a temp dir"
        ) from None


def run_server_program(cmd: Sequence[str], *, what: str, timeout_s: float, log_file: Path | None = None) -> str:
    """Run one server program (as the postgres user when root); SetupError on any failure."""
    account = _server_account()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if account is not None:
        env["HOME"] = account.pw_dir
    try:
        done = subprocess.run(
            list(cmd),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd="/",
            user=None if account is None else account.pw_uid,
            group=None if account is None else account.pw_gid,
            extra_groups=None if account is None else [],
        )
    except subprocess.TimeoutExpired:
        reason = f"timed out after {timeout_s:g} s"
        raise SetupError(_failure(what, cmd, reason, log_file)) from None
    except OSError as exc:
        raise SetupError(_failure(what, cmd, str(exc), log_file)) from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise SetupError(_failure(what, cmd, f"exit {done.returncode}: {output}", log_file))
    return str(done.stdout)


def _failure(what: str, cmd: Sequence[str], reason: str, log_file: Path | None) -> str:
    text = f"{what}: `{' '.join(cmd)}` failed: {reason}"
    tail = log_tail(log_file) if log_file is not None else ""
    return f"{text}\n--- last lines of {log_file} ---\n{tail}" if tail else text


def log_tail(log_file: Path, lines: int = 15) -> str:
    """Return the last lines of a server log, or "" when it cannot be read."""
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- ports and readiness -----------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound and listened on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option as the postmaster, so sockets in TIME_WAIT do not count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
            sock.listen(1)
        except OSError:
            return False
    return True


class _PortAllocator:
    """Hands out distinct free loopback ports from base_port upwards (thread-safe)."""

    def __init__(self, base_port: int) -> None:
        self._next = base_port
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            last = min(self._next + _PORT_SCAN_LIMIT, 65536)
            for port in range(self._next, last):
                if port_is_free(port):
                    self._next = port + 1
                    return port
            raise SetupError(f"no free port on {LOOPBACK} in {self._next}..{last - 1}")


def accepts_connection(port: int, timeout_s: float = 2.0) -> str | None:
    """Complete a real PostgreSQL startup handshake as user postgres.

    Returns:
        None when the server answered ReadyForQuery, else why not (SQLSTATE or OS error).
    """
    startup = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack("!i", len(startup) + 4) + startup)
            while True:
                kind, payload = _read_message(sock)
                if kind == b"Z":
                    sock.sendall(b"X\0\0\0\x04")
                    return None
                if kind == b"E":
                    fields = dict((f[:1], f[1:]) for f in payload.split(b"\0") if f)
                    return f"SQLSTATE {fields.get(b'C', b'?').decode()}"
                if kind == b"R" and payload[:4] != b"\0\0\0\0":
                    return "server asked for a password (expected trust auth)"
    except OSError as exc:
        return str(exc) or type(exc).__name__


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _recv_exact(sock, 5)
    (length,) = struct.unpack("!i", header[1:])
    return header[:1], _recv_exact(sock, length - 4)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


# --- one node's lifecycle ----------------------------------------------------------------


def postmaster_pid(datadir: Path) -> int | None:
    """The postmaster PID from datadir/postmaster.pid, or None when absent/unreadable."""
    try:
        first = (datadir / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def live_postmaster(datadir: Path) -> int | None:
    """The PID of the postmaster serving datadir if it is alive, else None.

    A stale postmaster.pid (crash, reboot) may name a PID now used by another program:
    where /proc exists, the process must be a live, non-zombie `postgres`.
    """
    pid = postmaster_pid(datadir)
    if pid is None:
        return None
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        return pid if b"postgres" in cmdline and state != "Z" else None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user (e.g. 'postgres' while we are not root)
    return pid


def process_tree(root_pid: int) -> list[int]:
    """root_pid and its live descendants, parents first; [] when root_pid is gone.

    Read from the parent links in /proc/*/stat (zombies left out). Without /proc only the
    root itself can be found.
    """
    if not Path("/proc/self").exists():
        try:
            os.kill(root_pid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [root_pid]
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if fields[0] == "Z":
            continue
        pid = int(entry.name)
        live.add(pid)
        children.setdefault(int(fields[1]), []).append(pid)
    if root_pid not in live:
        return []
    tree = [root_pid]
    for pid in tree:  # grows while iterating: breadth first
        tree.extend(children.get(pid, []))
    return tree


def continue_server(datadir: Path) -> None:
    """SIGCONT a server's postmaster and all its descendants; a no-op for a running server.

    A paused (SIGSTOPped) server ignores `pg_ctl stop` until its timeouts expire, and once
    its postmaster is killed its stopped backends stay behind as orphans: stop paths call this.
    """
    pid = live_postmaster(datadir)
    if pid is None:
        return
    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGCONT)
        except OSError:
            pass  # exited meanwhile


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


def stop_datadir(bindir: Path, datadir: Path, *, index: int) -> None:
    """Stop the server of one data dir: fast, then immediate, then SIGKILL; bounded time."""
    if live_postmaster(datadir) is None:
        return
    continue_server(datadir)  # a paused node would ignore the stop below
    pg_ctl = str(bindir / "pg_ctl")
    for mode, timeout_s in (("fast", STOP_TIMEOUT_S), ("immediate", 10)):
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


def stop_all(bindir: Path, datadirs: Sequence[Path], log: Log) -> None:
    """Stop several data dirs in parallel; failures are logged, never raised (cleanup path)."""
    running = [(i, d) for i, d in enumerate(datadirs, start=1) if live_postmaster(d) is not None]
    if not running:
        return
    with ThreadPoolExecutor(max_workers=len(running)) as pool:
        futures = {}
        for index, datadir in running:
            log(f"stopping node {index}")
            futures[index] = pool.submit(stop_datadir, bindir, datadir, index=index)
        for index, future in futures.items():
            if future.exception() is not None:
                log(f"node {index}: stop failed: {future.exception()}")


def remove_files(workdir: Path, nodes_dirs: Sequence[Path], *, owns_workdir: bool) -> None:
    """Delete what holoload created: the whole workdir if it made it, else only node dirs."""
    for path in [workdir] if owns_workdir else list(nodes_dirs):
        shutil.rmtree(path, ignore_errors=True)


class LocalCluster:
    """N independent PostgreSQL servers on 127.0.0.1, trust auth, in a temp (or given) dir.

    Args:
        nodes: how many servers.
        base_port: first port to try; busy ports are skipped.
        workdir: where node dirs go; None means a fresh temp dir.
        binaries: server binaries; None means find_postgres_binaries().
        settings: extra postgresql.conf settings for every node.
        keep: stop() (and a failed start()) stops the servers but leaves their files.
        log: receives one progress line per step.
    """

    def __init__(
        self,
        nodes: int = 3,
        *,
        base_port: int = 55432,
        workdir: Path | None = None,
        binaries: PgBinaries | None = None,
        settings: Mapping[str, str] | None = None,
        keep: bool = False,
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
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._requested_workdir = workdir
        self._binaries = binaries
        self._log: Log = log or (lambda _line: None)
        self.workdir: Path | None = None
        self.owns_workdir = False
        self.nodes: list[LocalNode] = []
        self._node_dirs: list[Path] = []
        self._abort = threading.Event()

    @property
    def binaries(self) -> PgBinaries:
        """The server binaries in use (found on first access when not given)."""
        if self._binaries is None:
            self._binaries = find_postgres_binaries()
        return self._binaries

    def start(self) -> list[LocalNode]:
        """Create, start and check every node; on any failure stop and clean what was made.

        Raises:
            SetupError: naming the node, the command and the server log tail.
        """
        if self.workdir is not None:
            raise SetupError("this LocalCluster was already started")
        try:
            self._prepare_workdir()
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
            _give_to_server_account(self.workdir)
        self._log(f"local cluster in {self.workdir} (PostgreSQL {binaries.version})")
        for index in self._indexes():
            node_dir = self.workdir / f"node{index}"
            if node_dir.exists():
                raise SetupError(f"node {index}: {node_dir} already exists; pick another workdir")
            node_dir.mkdir(mode=0o700)
            self._node_dirs.append(node_dir)
            _give_to_server_account(node_dir)
        _check_server_can_write(self._node_dirs[0])

    def _bring_up_all(self) -> list[LocalNode]:
        # Ports are picked up front so node i gets base_port + i - 1 whenever that is free.
        allocator = _PortAllocator(self.base_port)
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

    def _bring_up(self, index: int, port: int, ports: _PortAllocator) -> LocalNode:
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
        dsn = f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
        return LocalNode(index=index, port=port, datadir=datadir, dsn=dsn)

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
        if remove and self.workdir is not None:
            remove_files(self.workdir, self._node_dirs, owns_workdir=self.owns_workdir)
        self.nodes = []
        self._node_dirs = []
