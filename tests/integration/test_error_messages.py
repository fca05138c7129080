"""Every failure explained where people read it, against real PostgreSQL.

A statement the server rejects stops the run before load with the server's message and SQLSTATE;
errors during load leave their first distinct messages (SQLSTATE, count, first and last time) in
events.jsonl, summary.json, summary.md, junit.xml, report.html and the progress lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.engine.preflight import _prepare
from holoload.shell.cli import dispatch

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
    assert (
        prepared and prepared[0]["detail"] == "2 statements prepared before load (1 distinct)"
    )  # one statement on each of 2 nodes
    summary = json.loads((root / "summary.json").read_text())
    assert summary["phases"]["main"]["ops"]["w.read"]["ok"] > 0
    assert code in (0, 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_errors_during_load_are_explained_in_every_artifact(
    tmp_path: Path, pg_cluster: list[LocalNode], capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    """A statement that prepares but fails when run: its message, SQLSTATE and count reach every reader.

    With 2 workers the messages travel from the child processes in their window messages.
    """
    code, root = run(
        tmp_path, pg_cluster, capsys, name=f"em{workers}", sql="SELECT 1 / ($1::int - $1::int)", workers=workers
    )
    assert code == 1  # error_rate(w) <= 1% fails
    summary = json.loads((root / "summary.json").read_text())
    assert summary["workers"]["count"] == workers
    errors = summary["phases"]["main"]["ops"]["w.read"]["error_count"]
    assert errors > 0
    found = summary["error_messages"]["messages"]
    assert {(m["endpoint"], m["sqlstate"], m["message"]) for m in found} == {
        ("node1", "22012", "division by zero"),
        ("node2", "22012", "division by zero"),
    }
    assert sum(m["count"] for m in found) == errors  # every failed attempt counted under its message
    for m in found:
        assert m["class"] == "other" and 0 <= m["first_s"] <= m["last_s"] <= summary["run"]["duration_s"]
    seen = [e for e in events(root) if e["kind"] == "error_seen"]
    assert sorted(e["endpoint"] for e in seen) == ["node1", "node2"]
    (table,) = [e for e in events(root) if e["kind"] == "error_messages"]
    assert sum(m["count"] for m in table["messages"]) == errors
    for name in ("summary.md", "junit.xml", "report.html"):
        text = (root / name).read_text()
        assert "division by zero" in text and "22012" in text, name
    junit = (root / "junit.xml").read_text()
    failure = junit.split('<testcase classname="holoload.em', 1)[1].split("</testcase>", 1)[0]
    assert "error messages:" in failure and "w.read @node1 22012" in failure
    out = capsys.readouterr().out
    assert "[error] w.read @node1 22012 (other)" in out and "division by zero" in out


@pytest.mark.anyio
async def test_preparing_leaves_no_transaction_or_lock_behind(pg_cluster: list[LocalNode]) -> None:
    """After the prepare step the control connection holds no lock: a LOCK TABLE ... NOWAIT elsewhere succeeds."""
    dsn = pg_cluster[0].dsn
    control, other = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await control.execute("CREATE TABLE IF NOT EXISTS em_locks (id int PRIMARY KEY, v int)")
        await _prepare(control, "UPDATE em_locks SET v = v + 1 WHERE id = $1")
        async with other.transaction():
            await other.execute("LOCK TABLE em_locks IN ACCESS EXCLUSIVE MODE NOWAIT")
        with pytest.raises(asyncpg.UndefinedTableError):
            await _prepare(control, "UPDATE em_lockz SET v = 1")
        assert await control.fetchval("SELECT 1") == 1  # the failed prepare left the connection usable
    finally:
        await control.close()
        await other.close()
