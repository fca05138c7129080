"""A run in one process is a fleet of one in-process worker, against real PostgreSQL: it records
straight into the coordinator's aggregator and ledgers, and nothing is flushed or merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from holoload.adapters.holofusion.surfaces import TargetSurfaces
from holoload.adapters.local.cluster import LocalNode
from holoload.core.events import PhaseChanged, WindowClosed
from holoload.core.model.target import Node, Target
from holoload.engine.load import LoadEngine
from holoload.engine.worker import InProcessWorker, WorkerEngine
from holoload.shell.files import load_scenario

pytestmark = pytest.mark.anyio

SCENARIO = """
name = "one_process"
window = "200ms"

[setup]
sql = ["DROP TABLE IF EXISTS one_process_rows", "CREATE TABLE one_process_rows (id BIGINT PRIMARY KEY)"]

[table]
name = "one_process_rows"

[[phases]]
name = "main"

[[phases.workloads]]
name = "ingest"
executor = "iterations"
iterations = 300
concurrency = 3

[[phases.workloads.ops]]
name = "insert"
sql = "INSERT INTO one_process_rows (id) VALUES ($1)"
params = [{ gen = "seq", start = 1 }]
ledger = { table = "one_process_rows", id_column = "id", unique = true }

[gates]
lost = "lost == 0"
acknowledged = "acknowledged_ids == 300"
"""


class Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)


async def test_one_process_runs_on_a_fleet_of_one_worker_recording_into_the_coordinator(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """Every op lands in the coordinator's aggregator and ledger; the windows add up; no worker process."""
    node = pg_cluster[0]
    path = tmp_path / "one_process.toml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    target = Target(name="one", data="per_node", nodes=[Node(name="node1", dsn=node.dsn)])
    sink = Events()
    launched: list[InProcessWorker] = []
    async with TargetSurfaces(target, connect_timeout_s=5, statement_timeout_s=30) as surfaces:
        engine = LoadEngine(scenario, surfaces, sink, workers=1)
        await engine.run()
        fleet = engine.fleet
        assert fleet is not None and fleet.count == 1 and fleet.losses == []
        assert fleet.specs[0].count == 1 and fleet.specs[0].seq_parts == 1  # the id space of one process
        launched.append(fleet.launch(0, fleet.specs[0]))  # type: ignore[arg-type]
    assert not [e for e in sink.events if isinstance(e, PhaseChanged) and e.phase == "workers"]
    assert engine.workers_summary() == {"count": 1, "mode": "in-process", "lost": [], "restarts": 0}
    stats = engine.aggregator.total("ingest.insert", ["main"])
    assert stats is not None and stats.ok == 300 and stats.error_count == 0
    assert engine.book.totals()["acknowledged"] == 300
    windows = [e for e in sink.events if isinstance(e, WindowClosed)]
    assert sum(r.ok for w in windows for r in w.rows if r.endpoint == "*") == 300
    assert all(v.passed for v in engine.verdicts()), engine.verdicts()
    conn = await asyncpg.connect(node.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM one_process_rows") == 300
    finally:
        await conn.close()
    # the in-process worker records into the coordinator's aggregator: it has nothing to flush
    (handle,) = launched
    assert isinstance(handle.engine, WorkerEngine) and handle.engine.direct
    assert handle.engine.aggregator is engine.aggregator and handle.engine.book is engine.book
    with pytest.raises(RuntimeError, match="nothing to flush"):
        await handle.call("flush")
