"""Worker processes against real PostgreSQL: merged numbers equal the sum, ids never collide,
and a worker killed mid-run is reported and the run still ends with the right verdict."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from holoload.adapters.local.cluster import LocalNode
from tests.support.runs import (
    events,
    has_event,
    holoload_process,
    only_run_dir,
    run_cli,
    summary_json,
    wait_for,
    write_scenario,
    write_target,
)

WORKER_MAIN = "holoload.engine.worker_main"


async def table_ids(nodes: list[LocalNode]) -> list[int]:
    ids: list[int] = []
    for node in nodes:
        conn = await asyncpg.connect(node.dsn)
        try:
            ids += [r["id"] for r in await conn.fetch("SELECT id FROM worker_rows")]
        finally:
            await conn.close()
    return ids


def op(summary: dict[str, Any], key: str) -> dict[str, Any]:
    return dict(summary["phases"]["main"]["ops"][key])


def test_two_workers_merge_to_exact_sums_and_never_reuse_an_id(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    results = tmp_path / "results"
    target = write_target(tmp_path, pg_cluster)
    args = [write_scenario(tmp_path, "3s"), "--target", target, "--results-dir", str(results), "--workers", "2"]
    done = run_cli(args)
    assert done.returncode == 0, done.stdout + done.stderr
    run = only_run_dir(results)
    summary = summary_json(run)
    assert summary["workers"] == {"count": 2, "mode": "processes", "lost": [], "restarts": 0}

    ids = asyncio.run(table_ids(pg_cluster))
    inserted = op(summary, "ingest.insert")
    # every acknowledged insert is a row, counted once in the merged totals: the sum of both workers
    assert inserted["ok"] == len(ids) > 100
    assert inserted["errors"] == {}  # a reused id would be a 23505 (constraint) error
    assert len(set(ids)) == len(ids)  # and ids are unique over every node, not only per table
    check = summary["check"]
    assert check["ledger"]["acknowledged"] == len(ids)
    assert check["counts"]["lost"] == 0 and check["counts"]["duplicated"] == 0

    # the open-loop schedule is global: 200/s for 3 s is 600 arrivals, split by the workers, none twice
    read = op(summary, "paced.read")
    assert read["ok"] + read["dropped"] + read["error_count"] == 600

    # the windows the coordinator wrote (per endpoint) add up to the same totals
    assert sum(int(r["ok"]) for r in window_rows(run, "insert")) == len(ids)


def window_rows(run: Path, op_name: str) -> list[dict[str, str]]:
    with (run / "timeseries.csv").open() as fh:
        return [r for r in csv.DictReader(fh) if r["op"] == op_name and r["endpoint"] != "*"]


def worker_pids(parent: int) -> list[int]:
    """The worker processes a holoload process started (children running worker_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and WORKER_MAIN in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@contextmanager
def killed_worker_run(tmp_path: Path, pg_cluster: list[LocalNode], *extra: str):  # type: ignore[no-untyped-def]
    results = tmp_path / "results"
    target = write_target(tmp_path, pg_cluster)
    args = [write_scenario(tmp_path, "6s"), "--target", target, "--results-dir", str(results), "--workers", "2"]
    with holoload_process(tmp_path, [*args, *extra]) as proc:
        wait_for(lambda: len(worker_pids(proc.pid)) == 2, 60, "two worker processes", proc)
        wait_for(lambda: has_event(results, "phase", phase="main"), 60, "the main phase", proc)
        time.sleep(1.5)
        victim = worker_pids(proc.pid)[1]
        os.kill(victim, signal.SIGKILL)
        started = time.monotonic()
        proc.wait(timeout=120)
        yield proc, only_run_dir(results), victim, time.monotonic() - started


def test_a_killed_worker_is_reported_and_fails_the_run(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    with killed_worker_run(tmp_path, pg_cluster) as (proc, run, victim, waited):
        assert proc.returncode == 1, (tmp_path / "stdout.txt").read_text()
        assert waited < 60
    summary = summary_json(run)
    assert summary["verdict"] == "FAIL"
    assert summary["aborted_by"] == "workers"
    (lost,) = summary["workers"]["lost"]
    assert f"pid {victim}" in lost and "SIGKILL" in lost
    gate = next(g for g in summary["gates"] if g["name"] == "workers")
    assert not gate["passed"]
    problems = [e for e in events(run) if e["kind"] == "problem" and e["what"] == "worker_lost"]
    assert len(problems) == 1 and "SIGKILL" in problems[0]["detail"]
    # what was acknowledged before and after stays checked; nothing the coordinator knew of is lost
    assert summary["check"]["counts"]["lost"] == 0
    assert "worker 1" in (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()


def test_a_killed_worker_is_replaced_when_the_scenario_says_restart(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    with killed_worker_run(tmp_path, pg_cluster, "--set", 'run.on_worker_loss="restart"') as (proc, run, _, waited):
        assert proc.returncode == 0, (tmp_path / "stdout.txt").read_text()
        assert waited < 60
    summary = summary_json(run)
    assert summary["workers"]["restarts"] == 1 and len(summary["workers"]["lost"]) == 1
    problems = [e for e in events(run) if e["kind"] == "problem" and e["what"] == "worker_lost"]
    assert "starting a new worker" in problems[0]["detail"]
    ids = asyncio.run(table_ids(pg_cluster))
    assert len(set(ids)) == len(ids)  # the new worker took a fresh id partition
    counts = summary["check"]["counts"]
    assert counts["lost"] == 0 and counts["duplicated"] == 0
    # the replacement kept inserting: the last windows still have inserts
    last = max(int(r["window"]) for r in window_rows(run, "insert"))
    assert sum(int(r["ok"]) for r in window_rows(run, "insert") if int(r["window"]) >= last - 2) > 0
    assert json.dumps(summary["gates"]).count('"passed": false') == 0
