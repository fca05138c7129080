"""Every failure explained where people read it, against real PostgreSQL.

A statement the server rejects stops the run before load with the server's message and SQLSTATE;
errors during load leave their first distinct messages (SQLSTATE, count, first and last time) in
events.jsonl, summary.json, summary.md, junit.xml, report.html and the progress lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from holoload.adapters.cluster import LocalNode
from holoload.shell.cli import dispatch

pytestmark = pytest.mark.cluster

SCENARIO = """
name = "{name}"
window = "500ms"
[setup]
sql = ["CREATE TABLE IF NOT EXISTS em_accounts (id bigint PRIMARY KEY, v int)"]
[[phases]]
name = "main"
duration = "{duration}"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "{op}"
sql = "{sql}"
params = [{{ gen = "uniform", min = 1, max = 1000000 }}]
[run]
workers = {workers}
[gates]
errors = "error_rate(w) <= 1%"
"""


def target_file(tmp_path: Path, nodes: list[LocalNode]) -> str:
    lines = ['name = "session"', 'data = "per_node"']
    for node in nodes[:2]:
        lines += ["[[nodes]]", f'dsn = "{node.dsn}"']
    path = tmp_path / "target.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(tmp_path: Path, nodes: list[LocalNode], capsys: pytest.CaptureFixture[str], **values: Any) -> tuple[int, Path]:
    values = {"name": "em", "duration": "1500ms", "op": "read", "workers": 1, **values}
    path = tmp_path / f"{values['name']}.toml"
    path.write_text(SCENARIO.format(**values))
    results = tmp_path / "results"
    code = dispatch([str(path), "--target", target_file(tmp_path, nodes), "--results-dir", str(results)])
    (root,) = [p for p in results.iterdir() if p.is_dir()]
    return code, root


def events(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]


def test_a_misspelt_table_stops_before_load_with_the_servers_message(
    tmp_path: Path, pg_cluster: list[LocalNode], capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's `acounts`: exit 2, no operation ran, and the message with 42P01 is in every artifact."""
    code, root = run(tmp_path, pg_cluster, capsys, sql="SELECT v FROM acounts WHERE id = $1")
    assert code == 2
    out = capsys.readouterr()
    said = out.out + out.err
    assert 'relation "acounts" does not exist' in said and "42P01" in said
    assert "phases[0].workloads[0].ops[0].sql" in said
    summary = json.loads((root / "summary.json").read_text())
    assert summary["verdict"] == "ERROR" and summary["exit_code"] == 2
    assert summary["phases"] == {}  # no phase started: nothing was loaded
    assert not [e for e in events(root) if e["kind"] == "phase" and e["phase"] == "main"]
    for name in ("summary.md", "junit.xml", "report.html"):
        text = (root / name).read_text()
        assert "acounts" in text and "42P01" in text, name


def test_a_statement_that_prepares_runs(
    tmp_path: Path, pg_cluster: list[LocalNode], capsys: pytest.CaptureFixture[str]
) -> None:
    """The prepare step lets a good statement through and says how many it prepared."""
    code, root = run(tmp_path, pg_cluster, capsys, sql="SELECT v FROM em_accounts WHERE id = $1", duration="500ms")
    prepared = [e for e in events(root) if e["kind"] == "phase" and e["phase"] == "prepare"]
    assert prepared and "2 prepared before load" in prepared[0]["detail"]  # one statement on each of 2 nodes
    summary = json.loads((root / "summary.json").read_text())
    assert summary["phases"]["main"]["ops"]["w.read"]["ok"] > 0
    assert code in (0, 1)
