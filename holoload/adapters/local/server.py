"""PostgreSQL server processes on this machine: programs run as the server account, ports,
readiness probes, postmaster PIDs and process trees (what LocalCluster and node control share)."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from holoload.core.errors import SetupError

LOOPBACK = "127.0.0.1"
SERVER_OS_USER = "postgres"  # initdb/pg_ctl refuse to run as root
_PORT_SCAN_LIMIT = 1000


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


def give_to_server_account(path: Path) -> None:
    account = _server_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def server_can_execute(program: Path) -> bool:
    """Whether the server account (ourselves unless root) can run ``program``."""
    if _server_account() is None:
        return os.access(program, os.X_OK)
    probe = ["/bin/sh", "-c", 'test -x "$1"', "sh", str(program)]
    try:
        run_server_program(probe, what="access check", timeout_s=10)
    except SetupError:
        return False
    return True


def check_server_can_write(directory: Path) -> None:
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


class PortAllocator:
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


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first, then the parent pid...).

    None when the process is gone (or there is no /proc).
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
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
        stat = proc_stat(pid)
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        return pid if stat and b"postgres" in cmdline and stat[0] != "Z" else None
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
        fields = proc_stat(entry.name)
        if fields is None or fields[0] == "Z":  # exited while we looked, or a zombie
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
