"""Chaos actions that need no node control, on the session cluster: command, sql, after_iterations, net refuse;
and chaos that cannot run on a target stops the run with exit 2 before any load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from holoload.adapters.local.cluster import LocalNode
from tests.support import REPO
from tests.support.runs import write_target

SCENARIO = """
name = "chaos_actions"
window = "500ms"

[setup]
sql = ["DROP TABLE IF EXISTS chaos_marks", "CREATE TABLE chaos_marks (id BIGINT PRIMARY KEY, what TEXT)"]

[[phases]]
name = "main"
duration = "4s"

[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
retry = {{ max_attempts = 3, on = ["connection"], budget = 1.0, backoff = "20ms" }}

[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO chaos_marks (id, what) VALUES ($1, 'load')"
params = [{{ gen = "seq", start = 1000 }}]
ledger = {{ table = "chaos_marks", id_column = "id" }}

[[chaos]]
name = "marker"
action = "command"
at = "500ms"
command = [{python!r}, "-c", "import sys; open(sys.argv[1], 'w').write('fired')", {marker!r}]

[[chaos]]
name = "after_200"
action = "sql"
node = "node2"
after_iterations = 200
workload = "w"
sql = "INSERT INTO {{table}} (id, what) VALUES (1, 'after_200')"

[[chaos]]
name = "refuse_node1"
action = "net"
node = "node1"
at = "1s"
duration = "1s"
net = {{ refuse = true, reset = true }}

[table]
name = "chaos_marks"

[gates]
lost = "lost == 0"
refused = "chaos(refuse_node1).healed == 1"
"""


def run(tmp_path: Path, scenario: str, target: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    path = tmp_path / "chaos.toml"
    path.write_text(scenario)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "holoload", str(path), "--target", target, "--results-dir", str(results)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    dirs = [p for p in results.iterdir() if p.is_dir()] if results.exists() else []  # not history.sqlite
    return proc, dirs[0] if dirs else results


def test_command_sql_after_iterations_and_net_refuse_fire_in_order(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    marker = tmp_path / "marker.txt"
    text = SCENARIO.format(python=sys.executable, marker=str(marker))
    proc, run_dir = run(tmp_path, text, write_target(tmp_path, pg_cluster))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert marker.read_text() == "fired"  # argv, no shell
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    done = {(e["name"], e["step"]): e for e in events if e["kind"] == "chaos_finished"}
    assert done[("marker", "fire")]["ok"] and "exited 0" in done[("marker", "fire")]["detail"]
    assert done[("after_200", "fire")]["ok"] and "INSERT 0 1" in done[("after_200", "fire")]["detail"]
    assert done[("refuse_node1", "fire")]["ok"] and done[("refuse_node1", "heal")]["ok"]
    summary = json.loads((run_dir / "summary.json").read_text())
    # the sql action's row (id 1) is on node2 but outside the ledger's ids: not reported as anything
    assert summary["check"]["complete"] and summary["check"]["counts"]["lost"] == 0
    windows = (run_dir / "timeseries.csv").read_text().splitlines()
    node1 = [line for line in windows if ",node1," in line]
    assert node1, "node1 windows missing"
    # after_iterations waited for its count: at least 200 inserts happened before it fired
    started = next(e for e in events if e["kind"] == "chaos_started" and e["name"] == "after_200")
    assert started["trigger"] == "after 200 iterations of w"


def test_chaos_the_target_cannot_do_exits_2_before_any_load(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    scenario = SCENARIO.format(python=sys.executable, marker=str(tmp_path / "m")) + (
        '\n[[chaos]]\nname = "kill_it"\naction = "kill"\nnode = "node9"\nat = "1s"\n'
    )
    proc, run_dir = run(tmp_path, scenario, write_target(tmp_path, pg_cluster))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "chaos[3].node: no node 'node9'" in out
    assert "chaos[3].action: 'kill' needs the embedded local cluster or [control] commands" in out
    assert not (tmp_path / "m").exists()  # nothing fired
    timeseries = run_dir / "timeseries.csv"
    assert not timeseries.exists() or len(timeseries.read_text().splitlines()) <= 1  # no load ran
