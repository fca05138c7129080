"""The canary end to end, against real PostgreSQL (and the fake HoloFusion surfaces)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.core.topology.splitkey import row_v1_split_key, to_hex
from holoload.shell.cli import dispatch
from tests.fakes.threaded_http import ThreadedFakeHoloFusion
from tests.support import FAKES, FIXTURES, REPO, free_port
from tests.support.runs import batch_rows, events, only_run_dir, summary_txt, write_target

SALES = str(REPO / "scenarios" / "sales_facts.toml")


def test_readme_command_passes_on_the_embedded_cluster(tmp_path: Path) -> None:
    """`python -m holoload scenarios/sales_facts.toml` starts its own cluster, PASSes, cleans up."""
    proc = subprocess.run(
        [sys.executable, "-m", "holoload", SALES, "--results-dir", str(tmp_path)],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    run = only_run_dir(tmp_path)
    s = summary_txt(run)
    assert s["slo_status"] == "PASS"
    assert s["observed_final_row_count"] == s["expected_final_row_count"] == "210000"
    assert s["split_triggered"] == "1" and s["split_after_batch_index"] == "2"
    assert [r["status"] for r in batch_rows(run)] == ["ok"] * 6
    assert [r["row_delta"] for r in batch_rows(run)] == ["20000"] * 3 + ["50000"] * 3
    assert "embedded cluster stopped and removed" in proc.stdout
    # the first lines say which server runs the cluster (this machine has system binaries)
    assert re.search(
        r"starting embedded PostgreSQL cluster \(3 nodes on 127\.0\.0\.1, PostgreSQL [\d.]+ \(", proc.stdout
    )
    snaps = {p.name for p in (run / "snapshots").iterdir()}
    for i, label in enumerate(["20k"] * 3 + ["50k"] * 3, start=1):
        for when in ("before", "after"):
            assert f"batch_{i:02d}_{label}_{when}_topology.txt" in snaps
            assert f"batch_{i:02d}_{label}_{when}_metrics_node3.txt" in snaps


def test_split_really_changes_the_partition_layout(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Topology after the split batch shows two partitions per node where there was one."""
    code = dispatch(
        [
            SALES,
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(tmp_path),
            "--set",
            "batches.0.rows=2000",
            "--set",
            "batches.1.rows=5000",
            "-q",
        ]
    )
    assert code == 0
    snaps = only_run_dir(tmp_path) / "snapshots"
    before = (snaps / "batch_02_20k_after_topology.txt").read_text()
    after = (snaps / "batch_02_20k_after_split_topology.txt").read_text()
    assert before != after
    assert "all_keys" in before and "shards: 3 " in before
    assert "shards: 6 " in after and "success: 3 " in after
    # node 1 ran batch 1 (2,000 rows): auto key = 2000 + 1000
    assert "[start, 3000)" in after and "[3000, end)" in after
    run = only_run_dir(tmp_path)
    changes = [json.loads(line) for line in (run / "topology.jsonl").read_text().splitlines()]
    assert {"split_attempted", "split_succeeded", "shard_added"} <= {c["kind"] for c in changes}
    assert any(e["kind"] == "topology" for e in events(run))
    gates = {g["name"]: g for g in json.loads((run / "summary.json").read_text())["gates"]}
    assert gates["split_seen"]["passed"] and gates["split_seen"]["observed"] == 3  # one split per node


def test_a_server_side_gate_that_cannot_hold_fails_the_run(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A gate on the sampled topology (no more shards than nodes) fails the canary with exit 1."""
    code = dispatch(
        [
            SALES,
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(tmp_path),
            "--set",
            "batches.0.rows=100",
            "--set",
            "batches.1.rows=100",
            "--set",
            "table.name=gated_facts",
            "--set",
            "gates.no_new_shards=max(topology.shards) <= 3",
            "-q",
        ]
    )
    assert code == 1
    gates = {g["name"]: g for g in json.loads((only_run_dir(tmp_path) / "summary.json").read_text())["gates"]}
    assert not gates["no_new_shards"]["passed"] and gates["no_new_shards"]["observed"] == 6
    assert all(g["passed"] for name, g in gates.items() if name != "no_new_shards")


def test_rows_deleted_mid_batch_fail_the_run_and_name_the_batch(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A DELETE racing batch 4 makes its delta wrong: exit 1, batch 4 marked, gates say why."""
    scenario = tmp_path / "vandal.toml"
    scenario.write_text("""
name = "vandal"
[table]
name = "vandal_facts"
[[batches]]
label = "small"
rows = 3000
count = 5
[[chaos]]
name = "vandal"
action = "sql"
during_batch = 4
sql = "DELETE FROM {table} WHERE order_id <= 10"
[gates]
deltas = "failed_batches == 0"
final = "final_count == expected_final_count"
latency = "p95(batch_small) <= 1m"
""")
    code = dispatch(
        [
            str(scenario),
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert code == 1
    run = only_run_dir(tmp_path / "r")
    rows = batch_rows(run)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "delta_mismatch", "ok"]
    assert rows[3]["row_delta"] == "2990"
    data = json.loads((run / "summary.json").read_text())
    assert data["counts"]["failed_batch_indexes"] == [4]
    gates = {g["name"]: g for g in data["gates"]}
    assert not gates["deltas"]["passed"] and not gates["final"]["passed"]
    assert gates["latency"]["passed"]
    assert summary_txt(run)["slo_status"] == "FAIL"


def test_no_enforce_reports_fail_but_exits_zero(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """--no-enforce keeps the FAIL verdict in the summary and exits 0."""
    code = dispatch(
        [
            SALES,
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(tmp_path),
            "--set",
            "batches.0.rows=500",
            "--set",
            "batches.1.rows=500",
            "--set",
            "gates.p95_20k=p95(batch_20k) <= 1us",
            "--no-enforce",
            "-q",
        ]
    )
    assert code == 0
    assert summary_txt(only_run_dir(tmp_path))["slo_status"] == "FAIL"


def test_unreachable_endpoint_exits_3_before_any_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A node nobody listens on: exit 3, the endpoint is named, no batch started."""
    port = free_port()
    target = tmp_path / "dead.toml"
    target.write_text(f'name = "dead"\n[[nodes]]\ndsn = "postgresql://postgres@127.0.0.1:{port}/postgres"\n')
    code = dispatch(
        [
            SALES,
            "--target",
            str(target),
            "--results-dir",
            str(tmp_path / "r"),
            "--set",
            "chaos.0.enabled=false",
        ]
    )
    assert code == 3
    out = capsys.readouterr().out
    assert f"127.0.0.1:{port}" in out
    run = only_run_dir(tmp_path / "r")
    assert not [e for e in events(run) if e["kind"] == "batch_started"]
    assert json.loads((run / "summary.json").read_text())["verdict"] == "ERROR"


def test_bad_scenario_exits_2_and_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in the scenario is exit 2 with file and key path; no results directory is made."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[batches]]\nlabel = "a"\nrows = 10\n[snapshots]\nenabeld = true\n')
    code = dispatch([str(bad), "--results-dir", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}: snapshots.enabeld: unknown key 'enabeld' (did you mean 'enabled'?)" in err
    assert not (tmp_path / "r").exists()


def test_validate_command_checks_files_without_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`holoload validate` accepts the shipped files and exits 2 on a bad one."""
    files = [SALES, str(REPO / "targets" / "holofusion-dev.toml"), str(REPO / "targets" / "postgres.toml")]
    assert dispatch(["validate", *files]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[batches]]\nlabel = "a"\nrows = "lots"\n')
    assert dispatch(["validate", SALES, str(bad)]) == 2
    assert "batches[0].rows" in capsys.readouterr().out


@pytest.fixture
def fake_holofusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Fake HoloFusion HTTP on a thread, fake holoctl via HOLOCTL_BIN, sharing one state dir."""
    state = tmp_path / "holo-state"
    state.mkdir()
    monkeypatch.setenv("HOLOCTL_BIN", str(FAKES / "fake_holoctl.py"))
    monkeypatch.setenv("FAKE_HOLOCTL_STATE_DIR", str(state))
    with ThreadedFakeHoloFusion(FIXTURES, state) as url:
        yield url, state


def holofusion_target(tmp_path: Path, node: LocalNode, metrics_base: str, *, health: bool = True) -> str:
    """Three 'HoloFusion' endpoints sharing one table (all on one real PostgreSQL)."""
    lines = ['name = "fake-holofusion"', 'data = "shared"']
    for i in range(3):
        lines += [
            "[[nodes]]",
            f'name = "node{i + 1}"',
            f'dsn = "{node.dsn}"',
            f'metrics_url = "{metrics_base}/metrics"',
            *([f'health_url = "{metrics_base}"'] if health else []),
        ]
    lines += [
        "[topology]",
        'source = "holoctl"',
        'holoctl = "holoctl"',
        'holoctl_target = "127.0.0.1:15051"',
        "[split]",
        'method = "holoctl"',
    ]
    path = tmp_path / "holofusion.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_canary_against_fake_holofusion_surfaces(
    tmp_path: Path, pg_cluster: list[LocalNode], fake_holofusion: tuple[str, Path]
) -> None:
    """SQL on real PostgreSQL, /metrics and holoctl faked: PASS, documented split key, raw snapshots."""
    url, state = fake_holofusion
    code = dispatch(
        [
            SALES,
            "--target",
            holofusion_target(tmp_path, pg_cluster[0], url),
            "--results-dir",
            str(tmp_path / "r"),
            "--set",
            "table.name=hf_sales_facts",
            "--set",
            "gates.conflicts=delta(tx_conflict_count, node=2) == 1",
            "--set",
            "gates.rows_applied=delta(distributed_write_apply_rows) == 150000",
            "--set",
            "gates.shards=max(topology.shards) >= 2",
            "-q",
        ]
    )
    assert code == 0
    calls = [json.loads(line) for line in (state / "split_calls.jsonl").read_text().splitlines()]
    # after 2 batches of 20k on a shared table: max(order_id) = 40000, auto key = 40000 + 20000/2
    assert [c["split_key_hex"] for c in calls] == [to_hex(row_v1_split_key(100, 50_000))]
    assert calls[0]["split_key_hex"] == "2000000000000000640200800000000000c350"
    assert calls[0]["target"] == "127.0.0.1:15051"
    run = only_run_dir(tmp_path / "r")
    snaps = run / "snapshots"
    assert (snaps / "batch_01_20k_before_topology.txt").read_bytes() == (
        FIXTURES / "holoctl_topology_before_split.txt"
    ).read_bytes()
    assert (snaps / "batch_03_20k_after_topology.txt").read_bytes() == (
        FIXTURES / "holoctl_topology_after_split.txt"
    ).read_bytes()
    assert (snaps / "batch_01_20k_before_metrics_node2.txt").read_bytes() == (
        FIXTURES / "metrics_node1_before.txt"
    ).read_bytes()
    assert (snaps / "batch_06_50k_after_metrics_node1.txt").read_bytes() == (
        FIXTURES / "metrics_node1_after.txt"
    ).read_bytes()
    s = summary_txt(run)
    assert s["topology_target"] == "127.0.0.1:15051"
    assert s["observed_final_row_count"] == "210000"
    data = json.loads((run / "summary.json").read_text())
    verdicts = {g["name"]: g for g in data["gates"]}
    # each fake node serves the before sample until the split, the after sample from then on
    assert verdicts["conflicts"]["passed"] and verdicts["conflicts"]["observed"] == 1
    assert verdicts["rows_applied"]["observed"] == 150000  # 3 nodes x (90,000 - 40,000)
    assert verdicts["shards"]["passed"] and verdicts["split_seen"]["passed"]
    metrics_csv = (run / "metrics.csv").read_text().splitlines()
    assert metrics_csv[0] == "ts,node,name,labels,value"
    assert any(",node2,ingest_job_0_status,,running" in line for line in metrics_csv)
    changes = [json.loads(line) for line in (run / "topology.jsonl").read_text().splitlines()]
    assert changes[0]["kind"] == "initial"
    assert {"shard_added", "split_succeeded"} <= {c["kind"] for c in changes}


def test_failed_holoctl_split_fails_the_split_gate(
    tmp_path: Path,
    pg_cluster: list[LocalNode],
    fake_holofusion: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """holoctl split exiting 1 is recorded as a failed chaos action and the split gate fails."""
    url, _ = fake_holofusion
    monkeypatch.setenv("FAKE_HOLOCTL_FAIL_SPLIT", "1")
    code = dispatch(
        [
            SALES,
            "--target",
            holofusion_target(tmp_path, pg_cluster[0], url),
            "--results-dir",
            str(tmp_path / "r"),
            "--set",
            "table.name=hf_fail",
            "--set",
            "batches.0.rows=100",
            "--set",
            "batches.1.rows=100",
            "-q",
        ]
    )
    assert code == 1
    run = only_run_dir(tmp_path / "r")
    gates = {g["name"]: g["passed"] for g in json.loads((run / "summary.json").read_text())["gates"]}
    assert gates == {
        "p95_20k": True,
        "p95_50k": True,
        "deltas_exact": True,
        "final_count": True,
        "split": False,
        "split_seen": False,
    }
    chaos = [e for e in events(run) if e["kind"] == "chaos_finished"]
    assert chaos and chaos[0]["ok"] is False and "exit 1" in str(chaos[0]["detail"])


def test_missing_holoctl_is_a_setup_error(
    tmp_path: Path, pg_cluster: list[LocalNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holoctl target without a holoctl binary exits 3 and says to set HOLOCTL_BIN."""
    monkeypatch.setenv("HOLOCTL_BIN", str(tmp_path / "no-such-holoctl"))
    code = dispatch(
        [
            SALES,
            "--target",
            holofusion_target(tmp_path, pg_cluster[0], "http://127.0.0.1:9", health=False),
            "--results-dir",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert code == 3


def test_sigint_keeps_what_was_measured(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Ctrl-C mid-run: exit 130, verdict INTERRUPTED, finished batches kept in the artifacts."""
    results = tmp_path / "r"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "holoload",
            SALES,
            "--target",
            write_target(tmp_path, pg_cluster),
            "--results-dir",
            str(results),
            "--set",
            "batches.0.count=40",
            "--set",
            "batches.1.count=40",
            "--set",
            "table.name=interrupted_facts",
            "--set",
            "chaos.0.enabled=false",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = list(results.glob("*/events.jsonl")) if results.exists() else []
            if runs and '"batch_finished"' in runs[0].read_text():
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    run = only_run_dir(results)
    data = json.loads((run / "summary.json").read_text())
    assert data["verdict"] == "INTERRUPTED"
    assert 1 <= len(batch_rows(run)) < 80
    assert any(e["kind"] == "problem" and e["what"] == "interrupted" for e in events(run))
