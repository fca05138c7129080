"""Runs survive signals, hung and dying nodes, odd names and odd SQL, and keep secrets out of artifacts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalCluster, LocalNode
from holoload.adapters.local.server import accepts_connection, postmaster_pid, run_server_program
from holoload.shell.cli import dispatch
from tests.support import REPO, free_port
from tests.support.runs import (
    assert_cluster_gone,
    batch_rows,
    children_of,
    cluster_workdir,
    events,
    has_event,
    holoload_cmd,
    holoload_process,
    log_has,
    only_run_dir,
    output,
    run_log,
    summary_json,
    summary_txt,
    wait_for,
    write_target,
)

SALES = str(REPO / "scenarios" / "sales_facts.toml")

#: Our own throwaway cluster (the node-dies test) lives here, away from the session's and the default's.
OWN_CLUSTER_BASE_PORT = 59600


# --- signals ------------------------------------------------------------------------------


def test_sigterm_mid_run_keeps_results_and_removes_the_embedded_cluster(tmp_path: Path) -> None:
    """SIGTERM mid-run of the default embedded run: exit 143, INTERRUPTED, batches kept, cluster gone.

    The stop is graceful: the batch under way finishes (every recorded batch is ok) and the
    final count is still taken."""
    results = tmp_path / "r"
    args = [SALES, "--results-dir", str(results), "--set", "batches.0.count=40", "--set", "batches.1.count=40"]
    with holoload_process(tmp_path, args) as proc:
        wait_for(lambda: has_event(results, "batch_finished"), 60, "batch_finished", proc)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("holoload still running 60 s after SIGTERM")
    out = output(tmp_path)
    assert proc.returncode == 143, out
    run = only_run_dir(results)
    assert summary_json(run)["verdict"] == "INTERRUPTED"
    assert summary_txt(run)["slo_status"] == "INTERRUPTED"
    assert any(e["kind"] == "final_count" for e in events(run))
    finished = [e for e in events(run) if e["kind"] == "batch_finished"]
    rows = batch_rows(run)
    assert 1 <= len(rows) < 80
    assert [int(r["index"]) for r in rows] == [e["index"] for e in finished]
    assert all(r["status"] == "ok" for r in rows), rows
    assert any(e["kind"] == "problem" and e["what"] == "interrupted" for e in events(run))
    assert_cluster_gone(cluster_workdir(run))


@pytest.mark.parametrize("moment", ["initdb node", "starting node"])
def test_ctrl_c_during_cluster_start_up_leaves_no_cluster_behind(tmp_path: Path, moment: str) -> None:
    """Ctrl-C (SIGINT to the process group) while the embedded cluster starts: exit 130, summaries, no leftovers."""
    results = tmp_path / "r"
    with holoload_process(tmp_path, [SALES, "--results-dir", str(results)], new_session=True) as proc:
        wait_for(lambda: log_has(results, moment), 60, f"'{moment}' in run.log", proc)
        assert not has_event(results, "batch_started")
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("holoload still running 60 s after Ctrl-C")
    out = output(tmp_path)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    run = only_run_dir(results)
    assert summary_json(run)["verdict"] == "INTERRUPTED"
    assert summary_txt(run)["slo_status"] == "INTERRUPTED"
    assert not [e for e in events(run) if e["kind"] == "batch_started"]
    assert_cluster_gone(cluster_workdir(run))


# --- nodes that hang or die ---------------------------------------------------------------------


def test_hung_node_fails_its_batches_and_the_run_ends_in_bounded_time(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """A SIGSTOPped node: its batches are `error`, the run still ends (< 60 s) with FAIL and summaries."""
    results = tmp_path / "r"
    hung = pg_cluster[1]
    args = [
        SALES,
        "--target",
        write_target(tmp_path, pg_cluster),
        "--results-dir",
        str(results),
        "--set",
        "table.name=hung_facts",
        "--set",
        "batches.1.rows=5000",
        "--set",
        "batches.1.count=2",
        "--set",
        "run.control_timeout=2s",
        "--set",
        "run.statement_timeout=3s",
        "--set",
        "snapshots.timeout=2s",
    ]
    stopped: list[int] = []
    started = time.monotonic()
    try:
        with holoload_process(tmp_path, args) as proc:
            # batch 1 (20k rows on node1) is running: node2 is hung before its batch 2 begins.
            wait_for(lambda: has_event(results, "batch_started", index=1), 30, "batch 1 started", proc)
            assert not has_event(results, "batch_started", index=2)
            postmaster = postmaster_pid(hung.datadir)
            assert postmaster is not None
            os.kill(postmaster, signal.SIGSTOP)  # first, so it forks nothing new
            stopped.append(postmaster)
            for child in children_of(postmaster):
                os.kill(child, signal.SIGSTOP)
                stopped.append(child)
            try:
                proc.wait(timeout=max(1.0, 60 - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                done = sorted({e["index"] for e in events(only_run_dir(results)) if e["kind"] == "batch_finished"})
                pytest.fail(
                    f"run still going {time.monotonic() - started:.0f} s after launch with node2 hung "
                    f"(batches finished so far: {done}); tail of output:\n{output(tmp_path)[-1500:]}"
                )
        elapsed_s = time.monotonic() - started
    finally:
        for pid in reversed(stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    while accepts_connection(hung.port) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert accepts_connection(hung.port) is None, "the session node did not recover after SIGCONT"
    out = output(tmp_path)
    assert proc.returncode == 1, out
    assert elapsed_s < 60
    run = only_run_dir(results)
    data = summary_json(run)
    assert data["verdict"] == "FAIL"
    assert summary_txt(run)["slo_status"] == "FAIL"
    by_node = {(b["index"], b["node"]): b["status"] for b in data["batches"]}
    assert by_node == {
        (1, "node1"): "ok",
        (2, "node2"): "error",
        (3, "node3"): "ok",
        (4, "node1"): "ok",
        (5, "node2"): "error",
    }
    assert [r["status"] for r in batch_rows(run)] == ["ok", "error", "ok", "ok", "error"]
    gates = {g["name"]: g["passed"] for g in data["gates"]}
    assert gates["deltas_exact"] is False


NODE_DIES_SCENARIO = """
name = "node_dies"
[table]
name = "dies_facts"
[[batches]]
label = "small"
rows = 2000
count = 4
[[chaos]]
name = "hold"
action = "sql"
after_batch = 1
sql = "SELECT pg_sleep(2)"
[gates]
deltas = "failed_batches == 0"
final = "final_count == expected_final_count"
latency = "p95(batch_small) <= 1m"
"""


def test_node_that_stops_mid_run_fails_its_later_batches_as_connection_errors(tmp_path: Path) -> None:
    """Node 2 of our own 2-node cluster stops after batch 1: its batches are `connection` errors, exit 1."""
    scenario = tmp_path / "node_dies.toml"
    scenario.write_text(NODE_DIES_SCENARIO)
    cluster = LocalCluster(2, base_port=OWN_CLUSTER_BASE_PORT)
    try:
        nodes = cluster.start()
        results = tmp_path / "r"
        args = [str(scenario), "--target", write_target(tmp_path, nodes, "own"), "--results-dir", str(results)]
        with holoload_process(tmp_path, args) as proc:
            # The `hold` action (pg_sleep(2) on node1 after batch 1) keeps batch 2 from starting meanwhile.
            wait_for(lambda: has_event(results, "chaos_started", name="hold"), 60, "the hold action", proc)
            assert not has_event(results, "batch_started", index=2)
            pg_ctl = cluster.binaries.program("pg_ctl")
            run_server_program(
                [pg_ctl, "-D", str(nodes[1].datadir), "-m", "immediate", "-w", "stop"],
                what="test: stop node 2",
                timeout_s=30,
            )
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("run still going 60 s after node 2 stopped")
    finally:
        cluster.stop()
    out = output(tmp_path)
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    run = only_run_dir(results)
    assert not [e for e in run_log(run) if e.get("event") == "internal_error"]
    data = summary_json(run)
    assert data["verdict"] == "FAIL"
    assert summary_txt(run)["slo_status"] == "FAIL"
    assert [(b["index"], b["node"], b["status"]) for b in data["batches"]] == [
        (1, "node1", "ok"),
        (2, "node2", "error"),
        (3, "node1", "ok"),
        (4, "node2", "error"),
    ]
    assert [b["error_class"] for b in data["batches"] if b["node"] == "node2"] == ["connection", "connection"]
    assert [r["status"] for r in batch_rows(run)] == ["ok", "error", "ok", "error"]
    assert data["counts"]["failed_batch_indexes"] == [2, 4]


# --- scenarios that must simply work -------------------------------------------------------------


def run_quietly(tmp_path: Path, target: str, *extra: str, scenario: str = SALES) -> tuple[int, Path]:
    results = tmp_path / "r"
    code = dispatch([scenario, "--target", target, "--results-dir", str(results), "-q", *extra])
    return code, only_run_dir(results)


def test_split_during_a_batch_succeeds_and_the_run_passes(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A split fired during batch 4 (racing its INSERT) succeeds and every gate holds."""
    code, run = run_quietly(
        tmp_path,
        write_target(tmp_path, pg_cluster),
        "--set",
        'chaos.0={name="split", action="split", during_batch=4}',
        "--set",
        "table.name=during_facts",
        "--set",
        "batches.0.rows=2000",
    )
    assert code == 0
    chaos = [e for e in events(run) if e["kind"] == "chaos_finished"]
    assert [(c["name"], c["ok"]) for c in chaos] == [("split", True)], chaos
    started = [e for e in events(run) if e["kind"] == "chaos_started"]
    assert [s["trigger"] for s in started] == ["during batch 4"]
    assert summary_txt(run)["split_triggered"] == "1"
    assert [r["status"] for r in batch_rows(run)] == ["ok"] * 6
    after = (run / "snapshots" / "batch_04_50k_after_split_topology.txt").read_text()
    assert "shards: 6 " in after


def test_mixed_case_table_name_works_end_to_end(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """`table.name=SalesFacts` (a quoted identifier) runs, splits and PASSes."""
    code, run = run_quietly(
        tmp_path,
        write_target(tmp_path, pg_cluster),
        "--set",
        "table.name=SalesFacts",
        "--set",
        "batches.0.rows=1000",
        "--set",
        "batches.1.rows=1000",
    )
    assert code == 0
    s = summary_txt(run)
    assert s["slo_status"] == "PASS"
    assert s["observed_final_row_count"] == s["expected_final_row_count"] == "6000"
    assert s["split_triggered"] == "1"
    assert "SalesFacts_" in (run / "snapshots" / "batch_02_20k_after_split_topology.txt").read_text()
    assert not [e for e in events(run) if e["kind"] == "problem"]


BRACES_SCENARIO = """
name = "braces"
[table]
name = "braces_facts"
[[batches]]
label = "small"
rows = 1000
count = 3
[[chaos]]
name = "split"
action = "split"
after_batch = 2
[[chaos]]
name = "json"
action = "sql"
after_batch = 1
sql = "SELECT '{}'::json, '{\\"a\\": [1, {\\"b\\": 2}]}'::jsonb, count(*) FROM {table}"
[gates]
deltas = "failed_batches == 0"
final = "final_count == expected_final_count"
split = "split_triggered >= split_expected"
chaos = "chaos_failed == 0"
"""


def test_chaos_sql_with_braces_runs_and_the_run_completes(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A chaos `sql` action with JSON braces (`SELECT '{}'::json`) is ok and the run PASSes."""
    scenario = tmp_path / "braces.toml"
    scenario.write_text(BRACES_SCENARIO)
    code, run = run_quietly(tmp_path, write_target(tmp_path, pg_cluster), scenario=str(scenario))
    assert code == 0
    chaos = {e["name"]: e for e in events(run) if e["kind"] == "chaos_finished"}
    assert chaos["json"]["ok"] is True, chaos["json"]
    assert "SELECT 1" in chaos["json"]["detail"]
    assert chaos["split"]["ok"] is True
    assert summary_json(run)["verdict"] == "PASS"


# --- command line and inputs --------------------------------------------------------------------


def test_unwritable_results_dir_exits_2_before_starting_anything(tmp_path: Path) -> None:
    """`--results-dir /proc/holoload-nope`: exit 2, the message names the dir, no cluster is started."""
    proc = subprocess.run(
        holoload_cmd(SALES, "--results-dir", "/proc/holoload-nope"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot create a results directory under /proc/holoload-nope" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "starting embedded" not in proc.stdout
    assert not Path("/proc/holoload-nope").exists()


def test_flag_before_the_scenario_is_accepted(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """`holoload -q SCENARIO ...` runs the scenario quietly (the flag before the file is fine)."""
    results = tmp_path / "r"
    proc = subprocess.run(
        holoload_cmd(
            "-q",
            SALES,
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(results),
            "--set",
            "table.name=quiet_facts",
            "--set",
            "batches.0.rows=500",
            "--set",
            "batches.1.rows=500",
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS exit 0" in proc.stdout
    assert "[1/6]" not in proc.stdout  # quiet: no per-batch lines
    assert summary_txt(only_run_dir(results))["slo_status"] == "PASS"


@pytest.mark.parametrize(
    "dsn_shape",
    [
        "postgresql://postgres@127.0.0.1:{port}/postgres?password=secret",
        "postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable&password=secret",
        "postgresql://postgres:secret@127.0.0.1:{port}/postgres",
    ],
    ids=["query", "query-second", "userinfo"],
)
def test_dsn_password_never_reaches_artifacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dsn_shape: str
) -> None:
    """A DSN password (`?password=secret` or `user:secret@`) is in no summary, log or output; exit 3."""
    target = tmp_path / "dsn.toml"
    target.write_text(f'name = "redaction"\n[[nodes]]\ndsn = "{dsn_shape.format(port=free_port())}"\n')
    results = tmp_path / "r"
    code = dispatch([SALES, "--target", str(target), "--results-dir", str(results)])
    assert code == 3
    out = capsys.readouterr()
    run = only_run_dir(results)
    assert summary_json(run)["verdict"] == "ERROR"
    for name in ("summary.txt", "summary.json", "run.log", "events.jsonl"):
        assert "secret" not in (run / name).read_text(), name
    assert "secret" not in out.out + out.err
    assert "password=***" in summary_txt(run)["pg_url"] or ":***@" in summary_txt(run)["pg_url"]
