"""The cluster watch during sustained load: metrics, health and topology on the run's timeline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.shell.cli import dispatch
from tests.fakes.threaded_http import ThreadedFakeHoloFusion
from tests.support import FAKES, FIXTURES

SCENARIO = """
name = "watched"
[table]
name = "watched_t"
[setup]
sql = ["DROP TABLE IF EXISTS watched_t", "CREATE TABLE watched_t (id bigint primary key, v int)",
       "INSERT INTO watched_t SELECT i, 0 FROM generate_series(1, 1000) i"]
[[phases]]
name = "load"
duration = "3s"
[[phases.workloads]]
name = "w"
executor = "constant-rate"
rate = 200
max_inflight = 4
[[phases.workloads.ops]]
name = "upd"
sql = "UPDATE watched_t SET v = v + 1 WHERE id = $1"
params = [{ gen = "uniform", min = 1, max = 1000 }]
[gates]
"""


def run_dir(base: Path) -> Path:
    (run,) = [p for p in base.iterdir() if p.is_dir()]  # not history.sqlite
    return run


def test_local_cluster_metrics_and_topology_feed_server_gates(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """SQL metrics of each node land in metrics.csv and gates; the partition layout in topology.jsonl."""
    target = tmp_path / "t.toml"
    lines = ['name = "local3"', 'data = "per_node"', 'metrics_interval = "500ms"']
    for node in pg_cluster:
        lines += ["[[nodes]]", f'dsn = "{node.dsn}"']
    lines += ["[topology]", 'source = "partitions"', 'interval = "1s"']
    target.write_text("\n".join(lines) + "\n")
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        SCENARIO + 'commits = "rate(pg_database_xact_commit) >= 50/s"\n'
        'shards = "max(topology.shards) == 3"\n'
        'node2_updates = "delta(pg_table_watched_t_n_tup_upd, node=2) > 0"\n'
    )
    code = dispatch([str(scenario), "--target", str(target), "--results-dir", str(tmp_path / "r"), "-q"])
    run = run_dir(tmp_path / "r")
    verdicts = {g["name"]: g for g in json.loads((run / "summary.json").read_text())["gates"]}
    assert code == 0, verdicts
    assert verdicts["shards"]["observed"] == 3
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    nodes = {r["node"] for r in rows if r["name"] == "pg_database_xact_commit"}
    assert nodes == {"node1", "node2", "node3"}
    samples_node1 = [r for r in rows if r["node"] == "node1" and r["name"] == "pg_database_xact_commit"]
    assert len(samples_node1) >= 4  # every 500 ms over ~3 s
    first = json.loads((run / "topology.jsonl").read_text().splitlines()[0])
    assert first["kind"] == "initial" and first["summary"]["shards"] == 3


def test_fake_holofusion_health_metrics_and_state_topology(
    tmp_path: Path, pg_cluster: list[LocalNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP /metrics and /ready of the fake nodes and holoctl state are sampled during load."""
    state = tmp_path / "holo-state"
    state.mkdir()
    monkeypatch.setenv("HOLOCTL_BIN", str(FAKES / "fake_holoctl.py"))
    monkeypatch.setenv("FAKE_HOLOCTL_STATE_DIR", str(state))
    with ThreadedFakeHoloFusion(FIXTURES, state) as url:
        target = tmp_path / "holo.toml"
        lines = ['name = "fake-holo"', 'data = "shared"', 'metrics_interval = "500ms"', 'ready_timeout = "5s"']
        for i in range(3):
            lines += [
                "[[nodes]]",
                f'name = "node{i + 1}"',
                f'dsn = "{pg_cluster[0].dsn}"',
                f'metrics_url = "{url}/metrics"',
                f'health_url = "{url}"',
            ]
        lines += ["[topology]", 'source = "holoctl_state"', 'holoctl = "holoctl"', 'interval = "1s"']
        target.write_text("\n".join(lines) + "\n")
        scenario = tmp_path / "s.toml"
        scenario.write_text(
            SCENARIO + 'shards = "max(topology.shards) == 1"\n'
            'ingest = "last(ingest_rows_ingested_total, node=node1) == 40000"\n'
            'no_conflicts = "delta(tx_conflict_count) == 0"\n'
        )
        code = dispatch([str(scenario), "--target", str(target), "--results-dir", str(tmp_path / "r"), "-q"])
    run = run_dir(tmp_path / "r")
    verdicts = {g["name"]: g for g in json.loads((run / "summary.json").read_text())["gates"]}
    assert code == 0, verdicts
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    health = [e for e in events if e["kind"] == "health"]
    assert {e["node"] for e in health} == {"node1", "node2", "node3"} and all(e["ready"] for e in health)
    assert any(e["kind"] == "topology" for e in events)


def test_a_node_never_ready_is_a_setup_error(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A health_url that never answers /ready: exit 3 before any load, naming the node."""
    target = tmp_path / "t.toml"
    target.write_text(
        f'name = "unready"\nready_timeout = "1s"\n[[nodes]]\nname = "lonely"\n'
        f'dsn = "{pg_cluster[0].dsn}"\nhealth_url = "http://127.0.0.1:9"\n'
    )
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    code = dispatch([str(scenario), "--target", str(target), "--results-dir", str(tmp_path / "r"), "-q"])
    assert code == 3
    run = run_dir(tmp_path / "r")
    problems = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any("lonely" in str(e.get("detail", "")) for e in problems if e["kind"] == "problem")
    assert not (run / "timeseries.csv").exists()


def test_a_dead_metrics_endpoint_fails_loudly_while_the_run_goes_on(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """Node 2's /metrics refuses connections: its samples are failure events; node 1's still arrive."""
    with ThreadedFakeHoloFusion(FIXTURES, tmp_path) as url:
        target = tmp_path / "t.toml"
        target.write_text(
            f'name = "half"\ndata = "shared"\nmetrics_interval = "300ms"\n'
            f'[[nodes]]\nname = "alive"\ndsn = "{pg_cluster[0].dsn}"\nmetrics_url = "{url}/metrics"\n'
            f'[[nodes]]\nname = "dead"\ndsn = "{pg_cluster[0].dsn}"\nmetrics_url = "http://127.0.0.1:9/metrics"\n'
        )
        scenario = tmp_path / "s.toml"
        scenario.write_text(SCENARIO)
        code = dispatch([str(scenario), "--target", str(target), "--results-dir", str(tmp_path / "r"), "-q"])
    assert code == 0
    run = run_dir(tmp_path / "r")
    failures = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    failures = [e for e in failures if e["kind"] == "metrics"]
    assert failures and {e["node"] for e in failures} == {"dead"} and all(not e["ok"] for e in failures)
    assert all(e["error"] and e["ts"] for e in failures)
    with (run / "metrics.csv").open() as fh:
        nodes = {r["node"] for r in csv.DictReader(fh)}
    assert nodes == {"alive"}
