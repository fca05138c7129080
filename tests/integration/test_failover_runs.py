"""Failover scenarios end to end on real streaming replication (each run starts its own cluster).

Sync replication: repeated kill -9 failovers under write load lose nothing, writers follow the new
primary without a restart and reads on a standby keep going. Async replication with the standby's
link blackholed first: the checker reports the lost acknowledged ids, with the node that
acknowledged them. A blackhole of a known length is measured as an outage of that length. SIGINT
during a failover leaves no server and no data directory behind.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

SYNC = str(REPO / "scenarios" / "failover.toml")
ASYNC = str(REPO / "scenarios" / "failover_async.toml")
# failover.toml compressed: 2 s warm-up, then 32 s with a failover at 3, 13 and 23 s.
SYNC_SHORT = ["phases.0.duration=2s", "phases.1.duration=32s", "chaos.0.every=10s", "chaos.0.start=3s"]


def _run(scenario: str, results: Path, overrides: list[str], timeout_s: float = 300) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "holoload", scenario, "--results-dir", str(results), "-q"]
    for item in overrides:
        cmd += ["--set", item]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]  # history.sqlite lies beside the runs
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    with (run_dir / "timeseries.csv").open() as fh:
        windows = list(csv.DictReader(fh))
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"proc": proc, "events": events, "windows": windows, "summary": summary, "dir": run_dir}


def _finished(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in run["events"] if e["kind"] == "chaos_finished" and e["name"] == name]


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(SYNC, tmp_path_factory.mktemp("sync"), SYNC_SHORT)


def test_sync_replication_loses_nothing_over_three_failovers(sync_run: dict[str, Any]) -> None:
    proc, summary = sync_run["proc"], sync_run["summary"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check = summary["check"]
    assert check["complete"] and check["counts"]["lost"] == 0 and check["counts"]["duplicated"] == 0
    assert check["ledger"]["acknowledged"] > 3000
    failovers = _finished(sync_run, "failover")
    assert [e["ok"] for e in failovers] == [True, True, True]
    # each one moved the primary: node1 -> a standby -> ... (never "promoted" the node it killed)
    moves = [e["detail"].split(" (")[0] for e in failovers]
    assert all(a != b for a, b in (m.split(" -> ") for m in moves)), moves
    assert all("rejoined by pg_rewind" in e["detail"] or "rejoined by base backup" in e["detail"] for e in failovers)
    (fault,) = summary["chaos"]
    assert [o["outage_s"] is not None and o["outage_s"] < 10 for o in fault["outages"]] == [True, True, True]


def test_writers_follow_the_new_primary_and_standby_reads_keep_going(sync_run: dict[str, Any]) -> None:
    windows = [w for w in sync_run["windows"] if w["phase"] == "failovers" and w["endpoint"] != "*"]
    writes = [w for w in windows if w["workload"] == "ingest"]
    reads = [w for w in windows if w["workload"] == "reads"]
    assert {w["endpoint"] for w in writes} == {"primary"} and {w["endpoint"] for w in reads} == {"standby"}
    ends = [e["ts"] for e in _finished(sync_run, "failover")]
    for end in ends:  # acknowledged writes again within 2 windows of each failover's end, same process
        after = [w for w in writes if end < float(w["ts"]) <= end + 2.5]
        assert sum(int(w["ok"]) for w in after) > 0, f"no write acknowledged after the failover ending at {end}"
    assert sum(int(w["ok"]) > 0 for w in reads) >= 0.8 * len(reads)


@pytest.fixture(scope="module")
def async_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(ASYNC, tmp_path_factory.mktemp("async"), ["phases.0.duration=16s"])


def test_async_replication_with_a_blackholed_link_reports_the_lost_ids(async_run: dict[str, Any]) -> None:
    proc, summary = async_run["proc"], async_run["summary"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # its gates expect the loss
    check = summary["check"]
    assert check["counts"]["lost"] > 0 and check["counts"]["duplicated"] == 0
    ranges = check["lost_ranges"]
    assert sum(r["count"] for r in ranges) == check["counts"]["lost"]
    fired = _finished(async_run, "link_blackhole")[0]["ts"]
    failover = _finished(async_run, "failover")[0]
    assert failover["ok"] and failover["detail"].startswith("node1 -> node2")
    for row in ranges:  # every lost id was acknowledged by the old primary, while its standby was cut off
        assert row["node"] == "node1", row
        assert row["acked_at"] is not None and row["acked_at"][1] >= row["acked_at"][0]
    # acknowledged after the link's blackhole began (less a moment of WAL already sent) and before the kill
    killed = failover["ts"] - failover["elapsed_s"]
    assert min(r["acked_at"][0] for r in ranges) >= fired - 1.0
    assert max(r["acked_at"][1] for r in ranges) <= killed + 1.0


BLACKHOLE = """
name = "blackhole_outage"
window = "1s"
[run]
statement_timeout = "1s"
connect_timeout = "2s"
workers = 1
[[phases]]
name = "load"
duration = "9s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 2
retry = { max_attempts = 20, backoff = "20ms", max_backoff = "200ms", budget = 1.0, on = ["retryable", "connection", "timeout"] }
ops = [{ name = "q", sql = "SELECT 1" }]
[[chaos]]
name = "hole"
action = "net"
node = "node1"
at = "3s"
duration = "3s"
net = { blackhole = true }
[gates]
outage = "outage(hole).max <= 10s"
"""


def test_a_planted_blackhole_is_measured_as_an_outage_of_its_length(tmp_path: Path) -> None:
    scenario = tmp_path / "blackhole.toml"
    scenario.write_text(BLACKHOLE)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "holoload", str(scenario), "--results-dir", str(results), "--nodes", "1", "-q"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]  # history.sqlite lies beside the runs
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    fire, heal = [e for e in events if e["kind"] == "chaos_finished" and e["name"] == "hole"]
    planted_s = heal["ts"] - fire["ts"]  # the proxy's faults were set, then cleared, just before these
    (fault,) = json.loads((run_dir / "summary.json").read_text())["chaos"]
    (episode,) = fault["outages"]
    assert abs(episode["outage_s"] - planted_s) <= 1.0 + 0.1, (episode, planted_s)  # statement timeout + 100 ms


def test_sigint_during_a_failover_leaves_no_server_and_no_data_directory(tmp_path: Path) -> None:
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "holoload", SYNC, "--results-dir", str(results), "-q", *("--set", "chaos.0.start=2s")]
    output = tmp_path / "output.txt"
    with output.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        workdir = None
        while time.monotonic() < deadline:
            logs = list(results.glob("*/run.log"))
            text = logs[0].read_text() if logs else ""
            if workdir is None and "local cluster in " in text:
                workdir = text.split("local cluster in ", 1)[1].split(" ", 1)[0]
            if "kill -9" in text:  # the failover is under way
                break
            time.sleep(0.1)
        else:
            pytest.fail("no failover started within 120 s")
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # the second one: stop at once
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output.read_text()[-2000:]
    assert workdir is not None and not Path(workdir).exists(), f"{workdir} left behind"
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if workdir in cmdline:
                left.append((pid, cmdline))
    assert not left, left


def test_cluster_up_keeps_a_replicated_cluster_with_primary_and_standby_endpoints(tmp_path: Path) -> None:
    import asyncio

    import asyncpg

    from holoload.core.model.target import parse_target

    env = {**os.environ, "HOLOLOAD_STATE_DIR": str(tmp_path / "state")}
    base = [sys.executable, "-m", "holoload", "cluster"]
    up = subprocess.run(
        [*base, "up", "--replication", "sync", "--nodes", "2", "--base-port", "56740"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        target = parse_target((tmp_path / "state" / "local-target.toml").read_text(), "local-target.toml")
        assert [(n.name, n.role) for n in target.nodes] == [("primary", "primary"), ("standby", "standby")]
        assert target.data == "shared" and target.writable() == [True, False]

        async def roundtrip() -> tuple[bool, bool]:
            writer = await asyncpg.connect(target.nodes[0].dsn, timeout=10)
            reader = await asyncpg.connect(target.nodes[1].dsn, timeout=10)
            try:
                await writer.execute("CREATE TABLE t (id int)")
                await writer.execute("INSERT INTO t VALUES (1)")  # sync: acknowledged once the standby has it
                return await writer.fetchval("SELECT pg_is_in_recovery()"), await reader.fetchval(
                    "SELECT pg_is_in_recovery()"
                )
            finally:
                await writer.close()
                await reader.close()

        assert asyncio.run(roundtrip()) == (False, True)
    finally:
        down = subprocess.run(
            [*base, "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert down.returncode == 0, down.stdout + down.stderr


def test_a_switchover_under_async_replication_is_clean_and_loses_nothing(tmp_path: Path) -> None:
    """A clean stop sends the standby every WAL record first: nothing acknowledged is lost, even async."""
    overrides = [
        "phases.0.duration=10s",
        "chaos.0.enabled=false",  # no link fault
        "chaos.1.action=switchover",
        "chaos.1.at=3s",
        "gates.lost_found=lost == 0",
        "gates.stale_node2=",
    ]
    run = _run(ASYNC, tmp_path / "results", overrides)
    proc, summary = run["proc"], run["summary"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (step,) = _finished(run, "failover")
    assert step["ok"] and step["action"] == "switchover" and step["detail"].startswith("node1 -> node2")
    assert summary["check"]["counts"]["lost"] == 0 and summary["check"]["ledger"]["acknowledged"] > 500
