"""The local cluster's watchdog: a SIGKILLed holoload leaves no servers and no files behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from holoload.adapters.local import watchdog as cluster_watchdog
from holoload.adapters.local.cluster import LocalCluster
from holoload.adapters.local.server import live_postmaster, proc_stat, process_tree
from tests.support import REPO
from tests.support.runs import (
    SALES,
    assert_cluster_gone,
    cluster_workdir,
    has_event,
    holoload_process,
    log_has,
    only_run_dir,
    processes_using,
    wait_for,
)

#: Away from 55432 (the default run), the session's 57432 and the other modules' own clusters.
BASE_UNIT = 59700
BASE_KEEP = 59710
BASE_DIRECT = 59720

#: The requirement: a cluster whose holoload was SIGKILLed is gone within this (typically ~1.5 s).
GONE_WITHIN_S = 15.0


# --- helpers --------------------------------------------------------------------------------


def watchdogs_of(workdir: Path) -> list[int]:
    """Live (non-zombie) watchdog processes naming workdir on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = proc_stat(proc.name)
        if fields is None or fields[0] == "Z":
            continue
        if cluster_watchdog.MODULE.encode() in args and str(workdir).encode() in args:
            found.append(int(proc.name))
    return found


def alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie may never be reaped in a container)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def exits_within(pid: int, timeout_s: float) -> bool:
    """True once pid is no longer alive, False if it still is after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_until_gone(workdir: Path, timeout_s: float) -> float:
    """Seconds until no process uses workdir and it is deleted; fails after timeout_s."""
    started = time.monotonic()
    while processes_using(workdir) or workdir.exists():
        if time.monotonic() - started > timeout_s:
            left = processes_using(workdir)
            pytest.fail(f"{timeout_s:g} s on, {workdir} exists={workdir.exists()}, processes using it: {left}")
        time.sleep(0.02)
    return time.monotonic() - started


def kill_leftovers(workdir: Path) -> None:
    """A failed test must not leave servers behind: SIGKILL every process of workdir, delete it."""
    for pid in watchdogs_of(workdir):
        os.kill(pid, signal.SIGKILL)
    for datadir in workdir.glob("node*/data"):
        pid = live_postmaster(datadir)
        for member in process_tree(pid) if pid is not None else []:
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def leftovers() -> Iterator[list[Path]]:
    """Work dirs appended here are cleaned up by force after the test, pass or fail."""
    workdirs: list[Path] = []
    yield workdirs
    for workdir in workdirs:
        kill_leftovers(workdir)


def start_watchdog(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", cluster_watchdog.MODULE, *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finished(watchdog: subprocess.Popen[bytes], timeout_s: float) -> str:
    """Wait for a watchdog started by start_watchdog; returns its output (exit 0 asserted)."""
    try:
        out, _ = watchdog.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        out, _ = watchdog.communicate()
        pytest.fail(f"watchdog still running after {timeout_s:g} s: {out.decode(errors='replace')}")
    text = out.decode(errors="replace")
    assert watchdog.returncode == 0, text
    return text


# --- the real thing: holoload SIGKILLed mid-run ----------------------------------------------------


def test_sigkilled_run_leaves_no_cluster_behind(tmp_path: Path, leftovers: list[Path]) -> None:
    """SIGKILL to holoload mid-run: within 15 s its watchdog has stopped every server and deleted the workdir."""
    results = tmp_path / "r"
    args = [SALES, "--results-dir", str(results), "--set", "batches.0.count=40", "--set", "batches.1.count=40"]
    with holoload_process(tmp_path, args) as proc:
        wait_for(lambda: has_event(results, "batch_finished"), 60, "batch_finished", proc)
        workdir = cluster_workdir(only_run_dir(results))
        leftovers.append(workdir)
        postmasters = [pid for d in workdir.glob("node*/data") if (pid := live_postmaster(d)) is not None]
        assert len(postmasters) == 3
        (watchdog,) = watchdogs_of(workdir)
        assert os.getsid(watchdog) == watchdog != os.getsid(proc.pid)
        proc.kill()
        proc.wait()
    elapsed_s = wait_until_gone(workdir, GONE_WITHIN_S)
    assert not any(alive(pid) for pid in postmasters)
    # an exiting process's command line empties a moment before it is gone: allow the rest of the time
    assert exits_within(watchdog, max(0.0, GONE_WITHIN_S - elapsed_s))
    print(f"cluster of the SIGKILLed run gone {elapsed_s:.2f} s after the kill")


@pytest.mark.parametrize("moment", ["initdb node", "starting node"])
def test_sigkill_during_cluster_start_up_leaves_no_cluster_behind(
    tmp_path: Path, leftovers: list[Path], moment: str
) -> None:
    """SIGKILL while the cluster starts (initdb or pg_ctl start running): the watchdog already covers it."""
    results = tmp_path / "r"
    with holoload_process(tmp_path, [SALES, "--results-dir", str(results)]) as proc:
        wait_for(lambda: log_has(results, moment), 60, f"'{moment}' in run.log", proc)
        workdir = cluster_workdir(only_run_dir(results))
        leftovers.append(workdir)
        proc.kill()
        proc.wait()
    elapsed_s = wait_until_gone(workdir, GONE_WITHIN_S)
    print(f"cluster of the run SIGKILLed at '{moment}' gone {elapsed_s:.2f} s after the kill")


# --- LocalCluster and its watchdog -----------------------------------------------------------------


def test_watchdog_runs_in_its_own_session_and_stop_ends_it(leftovers: list[Path]) -> None:
    """start() spawns a watchdog for this process in a session of its own; stop() ends it, no leftovers."""
    cluster = LocalCluster(1, base_port=BASE_UNIT)
    try:
        cluster.start()
        workdir = cluster.workdir
        assert workdir is not None
        leftovers.append(workdir)
        pid = cluster.watchdog_pid
        assert pid is not None and alive(pid)
        assert watchdogs_of(workdir) == [pid]
        assert os.getsid(pid) == pid != os.getsid(0)
        cmdline = (Path(f"/proc/{pid}") / "cmdline").read_bytes().split(b"\0")
        assert cmdline[cmdline.index(b"--parent") + 1] == str(os.getpid()).encode()
        assert b"--owns-workdir" in cmdline
    finally:
        cluster.stop()
    assert cluster.watchdog_pid is None
    assert not alive(pid)
    assert_cluster_gone(workdir)


@pytest.mark.parametrize("options", [{"keep": True}, {"watchdog": False}], ids=["keep", "watchdog-off"])
def test_kept_or_opted_out_cluster_starts_no_watchdog(options: dict[str, bool], leftovers: list[Path]) -> None:
    """A keep=True cluster (holoload cluster up) outlives its process on purpose: no watchdog; nor with watchdog=False."""
    cluster = LocalCluster(1, base_port=BASE_KEEP, **options)
    try:
        cluster.start()
        assert cluster.workdir is not None
        leftovers.append(cluster.workdir)
        assert cluster.watchdog_pid is None
        assert watchdogs_of(cluster.workdir) == []
    finally:
        cluster.keep = False
        cluster.stop()


# --- the watchdog program itself ----------------------------------------------------------------


def test_watchdog_stops_a_cluster_whose_parent_died(leftovers: list[Path]) -> None:
    """Watching a process that then dies (not its own parent): the server stops and the node dirs go.

    The workdir is given (not the cluster's own), so as LocalCluster.stop() would, it stays, emptied."""
    workdir = Path(tempfile.mkdtemp(prefix="holoload-watchdog-test-"))
    leftovers.append(workdir)
    workdir.chmod(0o755)  # as root, the postgres user must reach the node dirs in it
    cluster = LocalCluster(1, base_port=BASE_DIRECT, workdir=workdir, watchdog=False)
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (node,) = cluster.start()
        assert not cluster.owns_workdir
        postmaster = live_postmaster(node.datadir)
        assert postmaster is not None
        bindir = str(cluster.binaries.bindir)
        watchdog = start_watchdog(
            "--parent", str(parent.pid), "--bindir", bindir, "--workdir", str(workdir), "--datadir", str(node.datadir)
        )
        time.sleep(1.0)
        assert watchdog.poll() is None, "the watchdog ended while its parent was alive"
        parent.kill()
        parent.wait()
        out = finished(watchdog, GONE_WITHIN_S)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        cluster.stop()
    assert f"holoload (pid {parent.pid}) is gone" in out
    assert "cluster stopped and removed in" in out
    assert not alive(postmaster)
    assert workdir.is_dir() and list(workdir.iterdir()) == []


def test_a_reused_parent_pid_counts_as_gone(tmp_path: Path) -> None:
    """A live process under the parent pid but with another start time is not the parent: clean up at once."""
    workdir = tmp_path / "w"
    (workdir / "node1").mkdir(parents=True)
    real_start = cluster_watchdog.start_ticks(os.getpid())
    assert real_start is not None
    args = ["--parent", str(os.getpid()), "--parent-start", str(int(real_start) + 1)]
    watchdog = start_watchdog(
        *args,
        "--bindir",
        "/nonexistent",
        "--workdir",
        str(workdir),
        "--owns-workdir",
        "--datadir",
        str(workdir / "node1" / "data"),
    )
    out = finished(watchdog, GONE_WITHIN_S)
    assert f"holoload (pid {os.getpid()}) is gone" in out
    assert not workdir.exists()


def test_watchdog_exits_quietly_once_the_files_are_gone(tmp_path: Path) -> None:
    """With the parent alive, deleting the workdir (the normal cleanup) ends the watchdog: exit 0, nothing said."""
    workdir = tmp_path / "w"
    (workdir / "node1").mkdir(parents=True)
    watchdog = start_watchdog(
        "--parent", str(os.getpid()), "--bindir", "/nonexistent", "--workdir", str(workdir), "--owns-workdir",
        "--datadir", str(workdir / "node1" / "data"), "--poll-s", "0.05",
    )  # fmt: skip
    time.sleep(0.5)
    assert watchdog.poll() is None
    shutil.rmtree(workdir)
    assert finished(watchdog, 5) == ""


def test_watchdog_gives_up_after_its_maximum_age(tmp_path: Path) -> None:
    """Every wait is bounded: past --max-age-s the watchdog exits 0 and leaves the cluster alone."""
    workdir = tmp_path / "w"
    (workdir / "node1").mkdir(parents=True)
    watchdog = start_watchdog(
        "--parent", str(os.getpid()), "--bindir", "/nonexistent", "--workdir", str(workdir), "--owns-workdir",
        "--datadir", str(workdir / "node1" / "data"), "--poll-s", "0.05", "--max-age-s", "0.3",
    )  # fmt: skip
    assert "giving up" in finished(watchdog, 5)
    assert (workdir / "node1").is_dir()


def test_watchdog_imports_no_heavy_modules() -> None:
    """The watchdog (and the cluster module it uses to clean up) import neither asyncpg nor anyio nor the shell."""
    code = (
        "import sys, holoload.adapters.local.watchdog, holoload.adapters.local.cluster\n"
        "heavy = {'asyncpg', 'anyio', 'aiohttp', 'uvloop', 'rich', 'structlog', 'pydantic', 'holoload.shell'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('holoload.shell')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
