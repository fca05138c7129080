"""A LocalCluster's watchdog: a process that stops and deletes the cluster if holoload dies without stop()."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import holoload
from holoload.adapters.local.server import proc_stat

Log = Callable[[str], None]

MODULE = "holoload.adapters.local.watchdog"
POLL_S = 0.5
MAX_AGE_S = 7 * 24 * 3600.0
IMMEDIATE_STOP_TIMEOUT_S = 10
SWEEP_TIMEOUT_S = 10.0
END_TIMEOUT_S = 5.0
LOG_NAME = "watchdog.log"
#: Programs of a cluster the watchdog may kill: only these, and only when they use the cluster's dirs.
SERVER_COMMANDS = frozenset({"postgres", "pg_ctl", "initdb"})
_START_TICKS_FIELD = 19  # /proc/<pid>/stat field 22 (starttime), counted from the state field


def start_ticks(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (from /proc); None without /proc or process."""
    fields = proc_stat(pid)
    return fields[_START_TICKS_FIELD] if fields is not None and len(fields) > _START_TICKS_FIELD else None


# --- the parent's side ------------------------------------------------------------------------


def command(*, parent_pid: int, bindir: Path, workdir: Path, owns_workdir: bool, datadirs: Sequence[Path]) -> list[str]:
    """The command line of a watchdog for this cluster and parent."""
    # -S: no site-packages (.pth hooks cost more than the watchdog's own imports); spawn() sets PYTHONPATH.
    cmd = [sys.executable, "-S", "-m", MODULE, "--parent", str(parent_pid)]
    ticks = start_ticks(parent_pid)
    if ticks is not None:
        cmd += ["--parent-start", ticks]
    cmd += ["--bindir", str(bindir), "--workdir", str(workdir)]
    if owns_workdir:
        cmd.append("--owns-workdir")
    for datadir in datadirs:
        cmd += ["--datadir", str(datadir)]
    return cmd


def spawn(*, bindir: Path, workdir: Path, owns_workdir: bool, datadirs: Sequence[Path]) -> subprocess.Popen[bytes]:
    """Start the watchdog of this process's cluster, in its own session (a Ctrl-C to our group spares it).

    Its stderr goes to watchdog.log in the first node dir, which both cleanups delete.

    Raises:
        OSError: the process could not be started.
    """
    cmd = command(parent_pid=os.getpid(), bindir=bindir, workdir=workdir, owns_workdir=owns_workdir, datadirs=datadirs)
    # cwd="/" keeps it from pinning any dir. PYTHONPATH finds this very holoload (not whatever an
    # editable install maps `holoload` to), from "/" and without site-packages.
    package_root = str(Path(holoload.__file__).resolve().parent.parent)  # the directory holding holoload/
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(datadirs[0].parent / LOG_NAME, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            env=env,
            close_fds=True,
            start_new_session=True,
        )


def end(watchdog: subprocess.Popen[bytes], timeout_s: float = END_TIMEOUT_S) -> None:
    """Stop a watchdog (SIGTERM, then SIGKILL after timeout_s) and reap it; fine if it already exited."""
    if watchdog.poll() is None:
        watchdog.terminate()
        try:
            watchdog.wait(timeout_s)
            return
        except subprocess.TimeoutExpired:
            watchdog.kill()
    watchdog.wait()


# --- the watchdog's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Parent:
    """The holoload process being watched, identified by pid and start time (pids get reused)."""

    pid: int
    start_ticks: str | None
    is_our_parent: bool  # then its death shows at once as a change of our own parent pid

    def alive(self) -> bool:
        """Whether the parent still runs: not exited, not a zombie, not a new process with its pid."""
        if self.is_our_parent and os.getppid() != self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, another user's
        if Path("/proc/self").exists():
            fields = proc_stat(self.pid)
            if fields is None or fields[0] in ("Z", "X"):
                return False
            if self.start_ticks is not None and start_ticks(self.pid) != self.start_ticks:
                return False
        return True


@dataclass(frozen=True)
class WatchedCluster:
    """What the watchdog cleans: the same as LocalCluster's own teardown."""

    bindir: Path
    workdir: Path
    owns_workdir: bool
    datadirs: tuple[Path, ...]

    @property
    def node_dirs(self) -> list[Path]:
        return [datadir.parent for datadir in self.datadirs]

    def files_gone(self) -> bool:
        """Whether the normal cleanup already deleted what the cluster made."""
        if self.owns_workdir:
            return not self.workdir.exists()
        return not any(node_dir.exists() for node_dir in self.node_dirs)


def cluster_processes(node_dirs: Sequence[Path]) -> list[int]:
    """Live postgres/pg_ctl/initdb processes naming a node dir on their command line or working in one.

    That covers postmasters and backends (their cwd is the data dir) and an initdb or pg_ctl
    still running for the cluster; a `tail -f` of a server log is left alone. [] without /proc.
    """
    prefixes = [str(node_dir).rstrip("/") + "/" for node_dir in node_dirs]
    found = []
    proc = Path("/proc")
    if not (proc / "self").exists():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "comm").read_text().strip() not in SERVER_COMMANDS:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd") + "/"
        except OSError:
            continue  # gone meanwhile, or not ours to read
        fields = proc_stat(entry.name)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if any(prefix in cmdline or cwd.startswith(prefix) for prefix in prefixes):
            found.append(int(entry.name))
    return found


def sweep(node_dirs: Sequence[Path], log: Log, timeout_s: float = SWEEP_TIMEOUT_S) -> None:
    """SIGKILL whatever of the cluster still runs after its servers were stopped.

    An initdb or pg_ctl that was interrupted, a postmaster it was starting, orphaned backends.
    Two empty scans in a row, so a pg_ctl's child caught between fork and exec is not missed.
    """
    deadline = time.monotonic() + timeout_s
    empty_scans = 0
    while empty_scans < 2 and time.monotonic() < deadline:
        left = cluster_processes(node_dirs)
        empty_scans = 0 if left else empty_scans + 1
        for pid in left:
            log(f"killing pid {pid}")
            try:
                os.kill(pid, signal.SIGKILL)  # ends a SIGSTOPped process too
            except OSError:
                pass  # exited meanwhile
        time.sleep(0.05)


def clean_up(cluster: WatchedCluster, log: Log) -> None:
    """Stop every server of the cluster, kill what else of it runs, delete its files; bounded (~25 s worst case)."""
    # Imported here: holoload.adapters.local.cluster imports this module to spawn watchdogs.
    from holoload.adapters.local.cluster import remove_files, stop_all

    stop_all(cluster.bindir, list(cluster.datadirs), log, ladder=(("immediate", IMMEDIATE_STOP_TIMEOUT_S),))
    sweep(cluster.node_dirs, log)
    remove_files(cluster.workdir, cluster.node_dirs, owns_workdir=cluster.owns_workdir)
    left = cluster_processes(cluster.node_dirs)
    if left:
        log(f"still running after the cleanup: pids {left}")


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} watchdog[{os.getpid()}]: {line}", file=sys.stderr, flush=True)


def watch(parent: Parent, cluster: WatchedCluster, *, poll_s: float, max_age_s: float, log: Log = _log) -> str:
    """Poll every poll_s until one of these, then return.

    - The parent is gone (SIGKILL, OOM kill): stop every server (`pg_ctl -m immediate`, then
      SIGKILL), kill what else of the cluster runs (an initdb or pg_ctl the parent started),
      delete the files as LocalCluster.stop() would.
    - The cluster's files are gone: the normal cleanup happened.
    - max_age_s passed: give up, leaving the cluster alone.

    Returns:
        "cleaned", "files gone" or "gave up".
    """
    deadline = time.monotonic() + max_age_s
    while time.monotonic() < deadline:
        if not parent.alive():
            started = time.monotonic()
            log(f"holoload (pid {parent.pid}) is gone: stopping and removing the cluster in {cluster.workdir}")
            clean_up(cluster, log)
            log(f"cluster stopped and removed in {time.monotonic() - started:.2f} s")
            return "cleaned"
        if cluster.files_gone():
            return "files gone"
        time.sleep(poll_s)
    log(f"giving up after {max_age_s:g} s; the cluster in {cluster.workdir} is left as it is")
    return "gave up"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    about = "Stop and delete a LocalCluster once its holoload process is gone."
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=about)
    parser.add_argument("--parent", type=int, required=True, help="pid of the holoload process to watch")
    parser.add_argument("--parent-start", help="its start time in clock ticks (/proc/PID/stat field 22)")
    parser.add_argument("--bindir", type=Path, required=True, help="dir of pg_ctl")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--owns-workdir", action="store_true", help="delete the whole workdir, not only node dirs")
    parser.add_argument("--datadir", type=Path, action="append", required=True, help="one per node")
    parser.add_argument("--poll-s", type=float, default=POLL_S)
    parser.add_argument("--max-age-s", type=float, default=MAX_AGE_S)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the watchdog; always exits 0 (nobody reads its status once its parent is gone)."""
    args = _parse(argv)
    parent = Parent(
        pid=args.parent,
        start_ticks=args.parent_start if args.parent_start is not None else start_ticks(args.parent),
        is_our_parent=os.getppid() == args.parent,
    )
    cluster = WatchedCluster(args.bindir, args.workdir, args.owns_workdir, tuple(args.datadir))
    watch(parent, cluster, poll_s=args.poll_s, max_age_s=args.max_age_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
