"""Chaos on a replicated embedded cluster: failover, switchover, and faults on the replication links.

``ReplicationControl`` runs a ``ReplicatedCluster``'s role changes in a worker thread (they are
blocking: kill, promote, pg_rewind, start), one at a time. ``LinkProxies`` puts a ``FaultProxy`` on
every standby's replication connection; the proxies live on an event loop in their own thread
because the cluster starts (and re-points standbys) outside the run's event loop, so a `net`
fault on ``link:node2`` can blackhole, slow or reset the WAL stream of standby node 2.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio

from holoload.adapters.faults.netproxy import FaultProxy, NetFaults
from holoload.adapters.local.node_control import ControlResult, NodeAction
from holoload.adapters.local.replication import ReplicatedCluster
from holoload.adapters.local.server import LOOPBACK
from holoload.core.errors import HololoadError, SetupError

T = TypeVar("T")
_CALL_TIMEOUT_S = 10.0
LINK_PREFIX = "link:"


class LinkProxies:
    """One FaultProxy per (standby, upstream port), on a private event loop in a daemon thread.

    Pass `upstream_port` to ``ReplicatedCluster(upstream_port=...)``; call `close()` after the
    cluster stopped. Every method may be called from any thread except the proxies' own.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._seed = seed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="holoload-link-proxies", daemon=True)
        self._thread.start()
        self._proxies: dict[tuple[int, int], FaultProxy] = {}
        self._faults: dict[int, NetFaults] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(_CALL_TIMEOUT_S)

    def upstream_port(self, standby: int, primary_port: int) -> int:
        """The port standby `standby` should stream from to reach `primary_port` (a proxy's)."""
        with self._lock:
            if self._closed:
                raise SetupError("replication link proxies are closed")
            proxy = self._proxies.get((standby, primary_port))
            if proxy is None:

                async def start() -> FaultProxy:
                    made = FaultProxy(LOOPBACK, primary_port, seed=self._seed, name=f"{LINK_PREFIX}node{standby}")
                    await made.start()
                    faults = self._faults.get(standby)
                    if faults is not None:
                        made.set_faults(faults)
                    return made

                proxy = self._proxies[(standby, primary_port)] = self._call(start)
            return proxy.port

    def names(self) -> list[str]:
        """`link:nodeN` for every standby that has (had) a proxied link."""
        return sorted({f"{LINK_PREFIX}node{standby}" for standby, _ in self._proxies})

    def set_faults(self, standby: int, faults: NetFaults, *, reset: bool = False) -> int:
        """Apply faults to every link of `standby` (also ones made later, e.g. after a failover).

        Returns:
            Connections reset (when `reset`).
        """
        with self._lock:
            proxies = [p for (s, _), p in self._proxies.items() if s == standby]
            if faults.healthy:
                self._faults.pop(standby, None)
            else:
                self._faults[standby] = faults

        async def apply() -> int:
            count = 0
            for proxy in proxies:
                proxy.set_faults(faults)
                if reset:
                    count += proxy.reset_connections()
            return count

        return self._call(apply)

    def heal(self) -> None:
        """Every link healthy again."""
        for standby in {s for s, _ in self._proxies}:
            self.set_faults(standby, NetFaults())

    def close(self) -> None:
        """Close every proxy and stop the thread; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proxies = list(self._proxies.values())

        async def close_all() -> None:
            for proxy in proxies:
                await proxy.aclose()

        try:
            self._call(close_all)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_CALL_TIMEOUT_S)
            if not self._thread.is_alive():
                self._loop.close()


class ReplicationControl:
    """Role changes and link faults of one ReplicatedCluster, for the chaos runner.

    Args:
        cluster: a started ReplicatedCluster.
        links: its link proxies, when the standbys stream through them.
        log: where the steps are told (one line each).

    The node actions of the NodeControl protocol (kill a named node...) are not offered: the
    replicated target's endpoints are roles ("primary", "standby"), not servers.
    """

    def __init__(
        self, cluster: ReplicatedCluster, links: LinkProxies | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        self.cluster = cluster
        self.links = links
        self._lock = anyio.Lock()
        self._log = log or (lambda _line: None)

    def nodes(self) -> list[str]:
        return [f"node{n.index}" for n in self.cluster.nodes]

    async def act(self, action: NodeAction, node: str, *, timeout_s: float) -> ControlResult:
        return ControlResult(action, node, False, "a replicated cluster takes failover/switchover, not node actions", 0)

    async def change_primary(self, kind: str, *, timeout_s: float) -> tuple[bool, str]:
        """`failover` (kill -9 the primary) or `switchover` (clean stop); the old primary rejoins.

        Returns:
            (ok, what happened: old and new primary, how the old one rejoined, seconds).
        """
        async with self._lock:
            started = time.monotonic()
            call = self.cluster.failover if kind == "failover" else self.cluster.switchover
            try:
                # Never abandoned half way (a rejoin racing the cluster's stop could leave a server
                # behind): every step of it is bounded by the cluster's own timeouts.
                change = await anyio.to_thread.run_sync(call)
            except (HololoadError, OSError) as exc:
                return False, f"{kind} failed after {time.monotonic() - started:.1f}s: {exc}"
            lsns = ", ".join(f"node{i} {lsn}" for i, lsn in sorted(change.receive_lsns.items()))
            detail = (
                f"node{change.old_primary} -> node{change.new_primary} (received WAL: {lsns}); "
                f"node{change.old_primary} rejoined by {change.rejoined_by or 'nothing'}; {change.seconds:.2f}s"
            )
            self._log(f"{kind}: {detail}")
            return True, detail

    async def link_faults(self, link: str, faults: NetFaults, *, reset: bool) -> tuple[bool, str]:
        """Faults on `link:nodeN`: the standby's WAL stream."""
        if self.links is None:
            return False, "the replication links run without a proxy (no net action names a link)"
        standby = _link_node(link)
        if standby is None:
            return False, f"not a link: {link!r} (expected link:nodeN)"
        resets = await anyio.to_thread.run_sync(lambda: self.links.set_faults(standby, faults, reset=reset))  # type: ignore[union-attr]
        return True, f"{link}: {'healed' if faults.healthy else 'faults set'}" + (f", {resets} reset" if reset else "")

    async def heal_all(self, timeout_s: float) -> list[ControlResult]:
        """Heal every link and bring back (as a standby) every node that is down."""
        results: list[ControlResult] = []
        if self.links is not None:
            await anyio.to_thread.run_sync(self.links.heal)
        async with self._lock:
            roles = await anyio.to_thread.run_sync(self.cluster.roles)
            for index, role in roles.items():
                if role != "down":
                    continue
                started = time.monotonic()
                try:
                    how = await anyio.to_thread.run_sync(self.cluster.rejoin, index)
                    results.append(ControlResult(NodeAction.START, f"node{index}", True, f"rejoined by {how}", 0))
                except (HololoadError, OSError) as exc:
                    results.append(
                        ControlResult(NodeAction.START, f"node{index}", False, str(exc), time.monotonic() - started)
                    )
        return results


def _link_node(link: str) -> int | None:
    tail = link[len(LINK_PREFIX) :] if link.startswith(LINK_PREFIX) else ""
    tail = tail.removeprefix("node")
    return int(tail) if tail.isdigit() else None


def link_targets(nodes: list[str | int | None]) -> bool:
    """Whether any of the chaos `node` values names a replication link."""
    return any(isinstance(n, str) and n.startswith(LINK_PREFIX) for n in nodes)
