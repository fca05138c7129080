"""The end of a phase is bounded: operations blocked past it are cancelled after run.drain, recorded, and leave nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalNode
from tests.support.engine import Sidecar, problems, query, run_scenario, shared_target, wait_for_holoload_query

SCENARIO = """
name = "drain"
window = "500ms"

[run]
statement_timeout = "20s"
drain = "1s"

[table]
name = "drain_marks"

[setup]
sql = ["DROP TABLE IF EXISTS drain_marks", "CREATE TABLE drain_marks (id BIGINT PRIMARY KEY, what TEXT)"]

[[phases]]
name = "main"
duration = "3s"

[[phases.workloads]]
name = "ingest"
executor = "constant-concurrency"
concurrency = 2

[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO drain_marks (id, what) VALUES ($1, 'load')"
params = [{ gen = "seq" }]
ledger = { table = "drain_marks", id_column = "id" }

[[phases.workloads]]
name = "reads"
executor = "constant-concurrency"
concurrency = 1

[[phases.workloads.ops]]
name = "read"
sql = "SELECT 1"

[phases.gates]
read_p99 = "p99(read, window=1s) <= 1s"

[gates]
lost = "lost == 0"
"""

OURS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'holoload%'"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_writes_blocked_at_the_phase_end_are_cancelled_after_the_drain(
    tmp_path: Path, pg_cluster: list[LocalNode], workers: str
) -> None:
    """Inserts blocked by a lock held past the phase's end: cut after 1 s, counted, in doubt; the run ends on time."""
    node = pg_cluster[0]
    locked_at: list[float] = []

    async def hold_lock(stop: threading.Event) -> None:
        watcher = await asyncpg.connect(node.dsn)
        blocker = await asyncpg.connect(node.dsn)
        try:
            await wait_for_holoload_query([watcher], "INSERT INTO drain_marks%", stop)
            await asyncio.sleep(1.0)
            # SHARE blocks every insert but no read, so the checker still reads the table
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE drain_marks IN SHARE MODE")
            locked_at.append(time.time())
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await tx.rollback()
        finally:
            await blocker.close()
            await watcher.close()

    with Sidecar(hold_lock) as sidecar:
        run = run_scenario(tmp_path, SCENARIO, shared_target(tmp_path, node, endpoints=1), "--workers", workers)
        left = query(node.dsn, OURS)  # the lock is still held: nothing of the run may be waiting on it
        sidecar.finish()
    assert locked_at, "the lock was never taken"
    assert run.code == 0, problems(run)
    assert left == 0
    phases = {e["phase"]: e["ts"] for e in run.events() if e["kind"] == "phase"}
    # 3 s of load, 1 s of drain, then the check: far from the lock's end or the 20 s statement timeout
    assert phases["verify"] - phases["main"] < 3 + 1 + 3, phases
    ins = run.op("ingest.ins")
    assert ins["errors"].get("timeout", 0) == 2, ins["errors"]  # both writers were blocked, both cut
    summary = run.summary
    assert summary["check"]["ledger"]["in_doubt"] >= 2
    assert summary["check"]["complete"] and summary["check"]["counts"]["lost"] == 0
    # said on the run's record too: one process or worker processes (their load's end reports it)
    drains = [p for p in problems(run) if p.startswith("drain:")]
    assert drains and "2 operations" in drains[0], problems(run)
    # the reads stopped with the phase; the windows of the drain after it are not judged (no "no samples")
    assert run.gates()["main.read_p99"]["passed"], run.gates()["main.read_p99"]
