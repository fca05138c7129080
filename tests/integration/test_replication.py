"""The replicated embedded cluster against real PostgreSQL streaming replication.

Sync replication must lose no acknowledged write across a failover; async replication with the
standbys' WAL receivers frozen before the primary is killed must lose the writes they never got.
"""

from __future__ import annotations

import asyncio
import os
import signal

import asyncpg
import pytest

from holoload.adapters.local.replication import ReplicatedCluster, _lsn_value, replication_settings
from holoload.adapters.local.server import process_tree
from holoload.core.errors import InputError

BASE_SYNC = 56510
BASE_ASYNC = 56520
BASE_SWITCH = 56530


async def _insert(dsn: str, first: int, count: int) -> list[int]:
    """Insert ids one statement each (each one acknowledged on its own); returns the acknowledged ids."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY)")
        acked = []
        for i in range(first, first + count):
            await conn.execute("INSERT INTO acked VALUES ($1)", i)
            acked.append(i)
        return acked
    finally:
        await conn.close()


async def _ids(dsn: str) -> set[int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return {r["id"] for r in await conn.fetch("SELECT id FROM acked")}
    finally:
        await conn.close()


def _walsender_pids(cluster: ReplicatedCluster, index: int) -> list[int]:
    """The WAL sender processes of a primary (their titles say 'walsender')."""
    from holoload.adapters.local.server import live_postmaster

    root = live_postmaster(cluster.node(index).datadir)
    assert root is not None
    found = []
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"walsender" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def test_settings_and_lsn_order() -> None:
    assert replication_settings("sync")["synchronous_standby_names"] == "ANY 1 (*)"
    assert "synchronous_standby_names" not in replication_settings("async")
    with pytest.raises(InputError):
        replication_settings("semi")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        ReplicatedCluster(1)
    assert _lsn_value("1/0") > _lsn_value("0/FFFFFFFF") > _lsn_value("0/3000148")


def test_sync_failover_loses_no_acknowledged_write_and_the_old_primary_rejoins() -> None:
    with ReplicatedCluster(3, replication="sync", base_port=BASE_SYNC) as cluster:
        assert cluster.roles() == {1: "primary", 2: "standby", 3: "standby"}
        acked = asyncio.run(_insert(cluster.node(1).dsn, 1, 300))
        change = cluster.failover()
        assert change.old_primary == 1 and change.new_primary in (2, 3)
        assert change.rejoined_by in ("pg_rewind", "base backup")
        roles = cluster.roles()
        assert roles[change.new_primary] == "primary"
        assert sorted(roles.values()) == ["primary", "standby", "standby"]
        assert set(acked) <= asyncio.run(_ids(cluster.node(change.new_primary).dsn))
        # the multi-host writer DSN reaches the new primary; every node (the old primary too) replays its writes
        more = asyncio.run(_insert(cluster.writer_dsn(), 1000, 50))
        cluster.wait_replayed()
        for node in cluster.nodes:
            assert set(acked + more) == asyncio.run(_ids(node.dsn)), f"node {node.index}"


def test_async_failover_with_frozen_senders_loses_the_writes_never_sent() -> None:
    """(Freezing the standby's receiver is not enough: the WAL already sent waits in its socket.)"""
    with ReplicatedCluster(2, replication="async", base_port=BASE_ASYNC) as cluster:
        before = asyncio.run(_insert(cluster.node(1).dsn, 1, 50))
        cluster.wait_replayed()
        senders = _walsender_pids(cluster, 1)
        assert senders, "no walsender found on the primary"
        for pid in senders:
            os.kill(pid, signal.SIGSTOP)
        after = asyncio.run(_insert(cluster.node(1).dsn, 100, 40))  # acknowledged by the primary alone
        change = cluster.failover(rejoin=False)  # SIGKILL ends the frozen senders too
        assert change.new_primary == 2 and change.rejoined_by == ""
        survived = asyncio.run(_ids(cluster.node(2).dsn))
        assert set(before) <= survived
        assert set(after).isdisjoint(survived), "the writes never sent should all be lost"
        assert cluster.role(1) == "down"


def test_switchover_is_clean_and_loses_nothing() -> None:
    with ReplicatedCluster(2, replication="async", base_port=BASE_SWITCH) as cluster:
        acked = asyncio.run(_insert(cluster.node(1).dsn, 1, 100))
        change = cluster.switchover(to=2)
        assert (change.old_primary, change.new_primary) == (1, 2)
        assert cluster.roles() == {1: "standby", 2: "primary"}
        assert set(acked) == asyncio.run(_ids(cluster.node(2).dsn))
