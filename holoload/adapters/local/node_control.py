"""Node faults for chaos runs: kill, stop, start, restart, pause and resume one database server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import anyio

from holoload.adapters.local.cluster import LocalCluster
from holoload.adapters.local.server import live_postmaster, proc_stat, process_tree
from holoload.adapters.workers.process import run_command
from holoload.core.errors import HololoadError, InputError

_POLL_S = 0.01
_DETAIL_CHARS = 1500


class NodeAction(StrEnum):
    """What can be done to one node."""

    KILL = "kill"
    STOP = "stop"
    START = "start"
    RESTART = "restart"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class ControlResult:
    """How one action on one node went.

    Args:
        action: what was asked.
        node: the node's name.
        ok: whether the node is now in the state the action aims for.
        detail: what was done (pids, commands, output tail) or why it failed.
        elapsed_s: wall time of the action.
    """

    action: NodeAction
    node: str
    ok: bool
    detail: str
    elapsed_s: float


class NodeControl(Protocol):
    """Acts on the nodes of one target; expected failures are results (ok=False), not exceptions."""

    def nodes(self) -> list[str]:
        """The node names this control can act on."""
        ...

    async def act(self, action: NodeAction, node: str, *, timeout_s: float) -> ControlResult:
        """Carry out one action on one node within about timeout_s."""
        ...

    async def heal_all(self, timeout_s: float) -> list[ControlResult]:
        """Bring every node back (resume paused ones, start stopped or killed ones)."""
        ...


# --- processes of a local node -------------------------------------------------------------

_Pids = dict[int, int]  # pid -> start time in clock ticks: a pid plus its start is one process


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks) of a process from /proc/<pid>/stat, None when it is gone."""
    fields = proc_stat(pid)
    try:
        return None if fields is None else (fields[0], int(fields[19]))
    except (IndexError, ValueError):
        return None


def _alive(pid: int, ticks: int) -> bool:
    """Whether the very process (same pid, same start) still exists and is no zombie."""
    now = _stat(pid)
    return now is not None and now[1] == ticks and now[0] != "Z"


def _send(pids: _Pids, sig: signal.Signals) -> list[int]:
    """Signal each process still alive as the same process; return the pids signalled."""
    sent = []
    for pid, ticks in pids.items():
        if not _alive(pid, ticks):
            continue
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
        sent.append(pid)
    return sent


def _wait_for(done: Callable[[], bool], deadline: float) -> bool:
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _freeze_tree(root: int, deadline: float) -> tuple[_Pids, bool]:
    """SIGSTOP root and every descendant until no new one appears.

    The postmaster stops first, so it forks nothing new; a round ends only once every
    signalled process has really stopped, so a fork in flight shows up in the next scan.

    Returns:
        The processes signalled, and whether that happened before the deadline.
    """
    frozen: _Pids = {}
    while True:
        fresh = {pid: now[1] for pid in process_tree(root) if pid not in frozen and (now := _stat(pid)) is not None}
        if not fresh:
            return frozen, True
        for pid in _send(fresh, signal.SIGSTOP):
            frozen[pid] = fresh[pid]
        if not _wait_for(lambda: _all_stopped(frozen), deadline):
            return frozen, False


def _all_stopped(pids: _Pids) -> bool:
    """Whether every process is stopped, or is no longer that process."""
    return all((now := _stat(pid)) is None or now[1] != ticks or now[0] in "TtZ" for pid, ticks in pids.items())


def _pid_list(pids: Sequence[int] | _Pids) -> str:
    return " ".join(str(pid) for pid in sorted(pids))


def _proc_needed() -> None:
    if not Path("/proc/self").exists():
        raise InputError("kill, pause and resume of local nodes need Linux /proc")


# --- the local cluster -------------------------------------------------------------------


class LocalNodeControl:
    """Faults for the nodes of a running LocalCluster.

    Args:
        cluster: a started LocalCluster (nodes are looked up on each action).
        names: one name per node; default node1..nodeN as in `local_target`.

    Raises:
        InputError: names do not match the node count or repeat.

    Semantics (each action bounded by about timeout_s; blocking work runs in a thread):

    - kill: SIGKILL the postmaster and all its descendants (a crash; also when paused);
      ok once every one is gone. Not running: ok=False.
    - stop: `pg_ctl stop -m fast` (in-flight transactions roll back); a paused node is
      resumed first. Not running: ok=True, nothing done.
    - start: `pg_ctl start` (crash recovery after a kill) and wait for connections.
      Already running: ok=True "already running". Paused by this control: ok=False.
    - restart: stop (fast) when running, then start.
    - pause: SIGSTOP the postmaster and all descendants (connections are accepted by the
      kernel, never answered). Already paused: ok=True. Not running: ok=False.
    - resume: SIGCONT exactly the processes that pause stopped. Not paused: ok=True.

    LocalCluster.stop() resumes a paused node before stopping it, so cleanup never hangs.
    """

    def __init__(self, cluster: LocalCluster, names: Sequence[str] | None = None) -> None:
        count = cluster.node_count
        chosen = [f"node{i}" for i in range(1, count + 1)] if names is None else list(names)
        if len(chosen) != count:
            raise InputError(f"{len(chosen)} node name(s) given for a local cluster of {count} node(s)")
        if len(set(chosen)) != len(chosen) or not all(chosen):
            raise InputError(f"node names must be distinct and non-empty, got {chosen}")
        self._cluster = cluster
        self._index = {name: i for i, name in enumerate(chosen, start=1)}
        self._paused: dict[str, _Pids] = {}
        self._locks = {name: anyio.Lock() for name in chosen}

    def nodes(self) -> list[str]:
        """The node names, in node order."""
        return list(self._index)

    def paused(self) -> list[str]:
        """Names of the nodes this control paused and has not resumed, killed or stopped."""
        return [name for name in self._index if name in self._paused]

    async def act(self, action: NodeAction, node: str, *, timeout_s: float) -> ControlResult:
        """Carry out one action on one node (see the class docstring); never raises for failures."""
        started = time.monotonic()
        if node not in self._index:
            known = ", ".join(self._index)
            return ControlResult(action, node, False, f"no such node '{node}' (known: {known})", 0.0)
        async with self._locks[node]:
            return await self._execute(action, node, started + timeout_s, started)

    async def heal_all(self, timeout_s: float) -> list[ControlResult]:
        """Resume every paused node and start every stopped or killed one, all nodes at once.

        Returns:
            One result per action taken, in node order (nothing for nodes already healthy).
        """
        started = time.monotonic()
        deadline = started + timeout_s
        taken: dict[str, list[ControlResult]] = {name: [] for name in self._index}

        async def heal(name: str) -> None:
            async with self._locks[name]:
                if name in self._paused:
                    taken[name].append(await self._execute(NodeAction.RESUME, name, deadline, time.monotonic()))
                if not await anyio.to_thread.run_sync(self._is_running, name):
                    taken[name].append(await self._execute(NodeAction.START, name, deadline, time.monotonic()))

        async with anyio.create_task_group() as tg:
            for name in self._index:
                tg.start_soon(heal, name)
        return [result for name in self._index for result in taken[name]]

    async def _execute(self, action: NodeAction, node: str, deadline: float, started: float) -> ControlResult:
        handlers = {
            NodeAction.KILL: self._kill,
            NodeAction.STOP: self._stop,
            NodeAction.START: self._start,
            NodeAction.RESTART: self._restart,
            NodeAction.PAUSE: self._pause,
            NodeAction.RESUME: self._resume,
        }
        try:
            ok, detail = await anyio.to_thread.run_sync(handlers[action], node, deadline)
        except (HololoadError, OSError) as exc:
            ok, detail = False, str(exc)
        return ControlResult(action, node, ok, detail, time.monotonic() - started)

    # The handlers run in a worker thread, one at a time per node (the node's lock).

    def _datadir(self, node: str) -> Path:
        return self._cluster.node(self._index[node]).datadir

    def _is_running(self, node: str) -> bool:
        try:
            return live_postmaster(self._datadir(node)) is not None
        except InputError:
            return False  # not started: START then says why

    def _still_paused(self, node: str) -> bool:
        pids = self._paused.get(node)
        if pids is not None and not any(_alive(pid, ticks) for pid, ticks in pids.items()):
            del self._paused[node]  # those processes are gone (e.g. killed from outside)
            pids = None
        return pids is not None

    def _kill(self, node: str, deadline: float) -> tuple[bool, str]:
        _proc_needed()
        root = live_postmaster(self._datadir(node))
        if root is None:
            return False, "not running: nothing to kill"
        doomed, _ = _freeze_tree(root, deadline)  # stopped first, so nothing forks while we kill
        _send(doomed, signal.SIGKILL)
        self._paused.pop(node, None)
        if not _wait_for(lambda: not any(_alive(pid, ticks) for pid, ticks in doomed.items()), deadline):
            left = [pid for pid, ticks in doomed.items() if _alive(pid, ticks)]
            return False, f"SIGKILL sent to pids {_pid_list(doomed)}; still alive: {_pid_list(left)}"
        return True, f"killed postmaster {root} and {len(doomed) - 1} child process(es): pids {_pid_list(doomed)}"

    def _stop(self, node: str, deadline: float) -> tuple[bool, str]:
        budget_s = max(0.1, deadline - time.monotonic())
        stopped = self._cluster.stop_node(self._index[node], mode="fast", timeout_s=budget_s)
        self._paused.pop(node, None)  # stop_node resumed it first
        return True, "stopped (pg_ctl stop -m fast)" if stopped else "not running: nothing to stop"

    def _start(self, node: str, deadline: float) -> tuple[bool, str]:
        if self._still_paused(node):
            return False, "paused: resume it instead of starting it"
        budget_s = max(0.1, deadline - time.monotonic())
        started = self._cluster.start_node(self._index[node], timeout_s=budget_s)
        port = self._cluster.node(self._index[node]).port
        return True, f"started; accepts connections on port {port}" if started else "already running"

    def _restart(self, node: str, deadline: float) -> tuple[bool, str]:
        _, stop_detail = self._stop(node, deadline)
        ok, start_detail = self._start(node, deadline)
        return ok, f"{stop_detail}; {start_detail}"

    def _pause(self, node: str, deadline: float) -> tuple[bool, str]:
        _proc_needed()
        if self._still_paused(node):
            return True, f"already paused: pids {_pid_list(self._paused[node])}"
        root = live_postmaster(self._datadir(node))
        if root is None:
            return False, "not running: nothing to pause"
        frozen, complete = _freeze_tree(root, deadline)
        self._paused[node] = frozen  # also when incomplete: resume must continue them
        if not complete:
            return False, f"SIGSTOP sent to pids {_pid_list(frozen)}, but not all had stopped in time"
        return True, f"paused (SIGSTOP) pids {_pid_list(frozen)}"

    def _resume(self, node: str, deadline: float) -> tuple[bool, str]:
        _proc_needed()
        pids = self._paused.pop(node, None)
        if pids is None:
            if self._is_running(node):
                return True, "not paused"
            return False, "not running: nothing to resume"
        resumed = _send(pids, signal.SIGCONT)
        if not resumed:
            return False, "the paused processes are gone"
        return True, f"resumed (SIGCONT) pids {_pid_list(resumed)}"


# --- remote clusters: user commands ------------------------------------------------------


class CommandNodeControl:
    """Faults carried out by user-supplied commands, one argv per action (no shell).

    Args:
        commands: action name ("kill", "stop", "start", "restart", "pause", "resume") ->
            argv; `{node}` in any argument is replaced by the node's name.
        names: the node names.
        env: extra environment variables for the commands (on top of holoload's own).

    Raises:
        InputError: an unknown action name, an empty argv, or bad node names.
    """

    def __init__(
        self, commands: Mapping[str, Sequence[str]], names: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        known = {action.value for action in NodeAction}
        unknown = sorted(set(commands) - known)
        if unknown:
            raise InputError(f"no such node action(s): {', '.join(unknown)} (known: {', '.join(NodeAction)})")
        empty = sorted(name for name, argv in commands.items() if not argv or isinstance(argv, str))
        if empty:
            raise InputError(f"command for {', '.join(empty)} must be a non-empty argv list")
        if not names or len(set(names)) != len(names) or not all(names):
            raise InputError(f"node names must be distinct and non-empty, got {list(names)}")
        self._commands = {NodeAction(name): tuple(argv) for name, argv in commands.items()}
        self._names = list(names)
        self._env = dict(env or {})

    def nodes(self) -> list[str]:
        """The node names."""
        return list(self._names)

    async def act(self, action: NodeAction, node: str, *, timeout_s: float) -> ControlResult:
        """Run the action's command for the node; ok when it exits 0, never raises for failures."""
        started = time.monotonic()
        if node not in self._names:
            return ControlResult(action, node, False, f"no such node '{node}' (known: {', '.join(self._names)})", 0.0)
        template = self._commands.get(action)
        if template is None:
            return ControlResult(action, node, False, f"no command for {action}", 0.0)
        argv = [arg.replace("{node}", node) for arg in template]
        env = {**os.environ, **self._env} if self._env else None
        try:
            done = await run_command(argv, timeout_s=timeout_s, env=env, label=f"{action} command for {node}")
        except OSError as exc:
            return ControlResult(action, node, False, f"cannot run {argv[0]}: {exc}", time.monotonic() - started)
        output = (done.stdout + done.stderr).strip()
        tail = output[-_DETAIL_CHARS:]
        detail = f"exit {done.returncode}" + (f": {tail}" if tail else "")
        return ControlResult(action, node, done.ok, detail, time.monotonic() - started)

    async def heal_all(self, timeout_s: float) -> list[ControlResult]:
        """Run the 'resume' then the 'start' command (those given) for every node, nodes at once.

        Returns:
            One result per command run, in node order.
        """
        deadline = time.monotonic() + timeout_s
        steps = [action for action in (NodeAction.RESUME, NodeAction.START) if action in self._commands]
        taken: dict[str, list[ControlResult]] = {name: [] for name in self._names}

        async def heal(name: str) -> None:
            for action in steps:
                remaining_s = max(0.1, deadline - time.monotonic())
                taken[name].append(await self.act(action, name, timeout_s=remaining_s))

        async with anyio.create_task_group() as tg:
            for name in self._names:
                tg.start_soon(heal, name)
        return [result for name in self._names for result in taken[name]]
