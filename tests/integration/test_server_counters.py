"""The server's SQL statistics show holoload's own steps at once, and topology polls read no table.

PostgreSQL 15 backends hold their counters up to 10 s while idle; holoload publishes them after
its own steps (`pg_stat_force_next_flush()`), so a setup insert is in the first metrics poll and
a canary batch in the snapshot right after it. Partition row counts are estimates by default
(no `count(*)` per poll, no tup_returned spikes every `topology.interval`).
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import holoload
from holoload.adapters.holofusion.topology_sources import SqlPartitionSource
from holoload.adapters.local.cluster import LocalNode
from holoload.adapters.pg import localpg
from holoload.adapters.pg.connect import application_name, quote_ident
from holoload.shell.cli import dispatch
from tests.support.runs import SALES, only_run_dir, write_target


def one_node_target(node: LocalNode, **topology: Any) -> dict[str, Any]:
    return {
        "name": "one",
        "data": "per_node",
        "table_layout": "range_partitioned",
        "nodes": [{"dsn": node.dsn}],
        "topology": {"source": "partitions", **topology},
        "split": {"method": "partition"},
        "metrics_interval": "1s",
    }


def setup_insert_scenario(table: str) -> dict[str, Any]:
    """10,000 rows inserted by the setup SQL, then 3 s of SELECT 1 in 1 s windows."""
    return {
        "name": table,
        "window": "1s",
        "setup": {
            "sql": [
                f"DROP TABLE IF EXISTS {table}",
                f"CREATE TABLE {table} (id BIGINT PRIMARY KEY)",
                f"INSERT INTO {table} SELECT g FROM generate_series(1, 10000) g",
            ]
        },
        "table": {"name": table},
        "run": {"workers": 1},
        "phases": [
            {
                "name": "main",
                "duration": "3s",
                "workloads": [
                    {"name": "w", "executor": "constant-rate", "rate": 20, "ops": [{"name": "op", "sql": "SELECT 1"}]}
                ],
            }
        ],
        "gates": {"ran": "count(op) >= 1"},
    }


def metric_samples(run: Path, name: str) -> list[tuple[float, float]]:
    """(ts, value) of one metric on node1, in order, from metrics.csv."""
    with (run / "metrics.csv").open() as fh:
        return [(float(r["ts"]), float(r["value"])) for r in csv.DictReader(fh) if r["name"] == name]


def test_a_setup_insert_is_in_the_first_metrics_poll(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """The setup's 10,000 inserted rows are in the very first SQL metrics sample (within one window)."""
    table = f"counters_{uuid.uuid4().hex[:8]}"
    result = holoload.run(
        setup_insert_scenario(table), one_node_target(pg_cluster[0]), results_dir=tmp_path, history="none"
    )
    assert result.verdict is holoload.RunVerdict.PASS, result.run.problems
    inserted = metric_samples(only_run_dir(tmp_path), f"pg_table_{table}_n_tup_ins")
    assert len(inserted) >= 2, inserted
    assert inserted[0][1] == 10_000, inserted  # not 0 for the first 10 s, as before the flush


def test_a_canary_batch_is_in_the_snapshot_right_after_it(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """The first batch's rows show in its `after` metrics snapshot (the canary's first batches were missing)."""
    args = [SALES, "--target", write_target(tmp_path, pg_cluster), "--results-dir", str(tmp_path / "r"), "-q"]
    sets = ["batches.0.rows=300", "batches.0.count=1", "batches.1.rows=500", "batches.1.count=1"]
    sets += ["chaos.0.enabled=false", "gates.split=", "gates.split_seen="]
    assert dispatch([*args, *[x for s in sets for x in ("--set", s)]]) == 0
    snaps = only_run_dir(tmp_path / "r") / "snapshots"
    after_first = (snaps / "batch_01_20k_after_metrics_node1.txt").read_text()
    assert "pg_table_sales_facts_n_tup_ins=300\n" in after_first, after_first
    after_second = (snaps / "batch_02_50k_after_metrics_node2.txt").read_text()
    assert "pg_table_sales_facts_n_tup_ins=500\n" in after_second, after_second


@pytest.mark.anyio
async def test_estimated_row_counts_read_no_table_and_exact_ones_read_every_row(pg_cluster: list[LocalNode]) -> None:
    """A topology poll with `row_counts = "estimate"` scans nothing; "exact" reads every row of every partition."""
    table = f"estimate_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg_cluster[0].dsn, server_settings={"application_name": application_name("test")})
    try:
        await localpg.prepare_partitioned_table(conn, table)
        await conn.execute(
            f"INSERT INTO {quote_ident(table)} SELECT g, 1, 1, 1, 1, 'ok', 100 FROM generate_series(1, 5000) g"
        )
        await localpg.split_partition(conn, table, 2001)
        await conn.execute("SELECT pg_stat_force_next_flush()")

        async def rows_read() -> int:
            await conn.execute("SELECT pg_stat_force_next_flush()")
            value = await conn.fetchval(
                "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables WHERE relname LIKE $1 || '\\_%'", table
            )
            return int(value)

        before = await rows_read()
        estimated = await SqlPartitionSource([conn], table, row_counts="estimate").read()
        after_estimate = await rows_read()
        exact = await SqlPartitionSource([conn], table, row_counts="exact").read()
        after_exact = await rows_read()
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        await conn.close()
    assert after_estimate == before  # the estimate read no row
    assert after_exact - after_estimate == 5000  # count(*) read all of them
    assert estimated.topology is not None and exact.topology is not None
    assert [p.records for p in exact.topology.placements] == [2000, 3000]
    assert [p.records for p in estimated.topology.placements] == [2000, 3000]  # published stats: exact here
