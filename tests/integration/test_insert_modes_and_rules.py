"""Multi-row insert modes against real PostgreSQL, and a target's error-message rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from holoload.adapters.local.cluster import LocalNode
from holoload.core.outcome import ErrorClass, ErrorRules
from holoload.shell.cli import dispatch
from holoload.shell.files import load_target


def shared_target(tmp_path: Path, node: LocalNode, extra: str = "") -> str:
    path = tmp_path / "target.toml"
    path.write_text(f'name = "one"\ndata = "shared"\n[[nodes]]\ndsn = "{node.dsn}"\n{extra}')
    return str(path)


def phase_ops(run_dir: Path) -> dict[str, dict[str, object]]:
    data = json.loads((run_dir / "summary.json").read_text())
    return data["phases"]["load"]["ops"]


def only_run(base: Path) -> Path:
    (run,) = [p for p in base.iterdir() if p.is_dir()]  # not history.sqlite
    return run


def test_values_executemany_and_copy_insert_exact_rows(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Each insert mode writes rows x iterations rows with unique seq ids, and reports rows."""
    scenario = tmp_path / "modes.toml"
    scenario.write_text("""
name = "modes"
[setup]
sql = ["DROP TABLE IF EXISTS modes_t", "CREATE TABLE modes_t (id bigint primary key, v text not null)"]
[[phases]]
name = "load"
[[phases.workloads]]
name = "w"
executor = "iterations"
iterations = 30
concurrency = 3
[[phases.workloads.ops]]
name = "values"
sql = "INSERT INTO modes_t (id, v) VALUES"
rows = 7
insert_mode = "values"
params = [{ gen = "seq" }, { gen = "text", length = 8 }]
[[phases.workloads.ops]]
name = "many"
sql = "INSERT INTO modes_t (id, v) VALUES ($1, $2)"
rows = 5
insert_mode = "executemany"
params = [{ gen = "seq" }, { gen = "const", value = "m" }]
[[phases.workloads.ops]]
name = "copy"
rows = 11
insert_mode = "copy"
table = "modes_t"
columns = ["id", "v"]
params = [{ gen = "seq" }, { gen = "choice", values = ["a", "b"] }]
[gates]
none_failed = "errors_total == 0"
""")
    code = dispatch(
        [str(scenario), "--target", shared_target(tmp_path, pg_cluster[0]), "--results-dir", str(tmp_path / "r"), "-q"]
    )
    assert code == 0
    ops = phase_ops(only_run(tmp_path / "r"))
    per_row = {"w.values": 7, "w.many": 5, "w.copy": 11}
    assert sum(o["ok"] for o in ops.values()) == 30
    assert all(ops[name]["ok"] > 0 and ops[name]["rows"] == ops[name]["ok"] * n for name, n in per_row.items())
    expected = sum(ops[name]["rows"] for name in per_row)
    import asyncio

    import asyncpg

    async def count() -> tuple[int, int]:
        conn = await asyncpg.connect(pg_cluster[0].dsn)
        try:
            row = await conn.fetchrow("SELECT count(*) AS n, count(DISTINCT id) AS d FROM modes_t")
            return int(row["n"]), int(row["d"])
        finally:
            await conn.close()

    assert asyncio.run(count()) == (expected, expected)


def test_error_rules_reclassify_by_message_only_when_asked() -> None:
    """An XX000 with a matching message becomes retryable; without a rule it stays 'other'."""
    rules = ErrorRules([("XX000", r"shard unavailable|leader not found", ErrorClass.RETRYABLE)])
    assert rules.classify("XX000", "storage: shard unavailable (retry later)") is ErrorClass.RETRYABLE
    assert rules.classify("XX000", "something else broke") is ErrorClass.OTHER
    assert rules.classify("40001", "shard unavailable") is ErrorClass.RETRYABLE
    assert rules.classify("23505", "shard unavailable") is ErrorClass.CONSTRAINT
    assert ErrorRules().classify("XX000", "shard unavailable") is ErrorClass.OTHER


def test_target_error_rules_are_validated(tmp_path: Path) -> None:
    """A rule with a broken regular expression is rejected with its key path."""
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "x"\n[[nodes]]\ndsn = "postgresql://u@127.0.0.1:1/db"\n'
        '[[error_rules]]\nsqlstate = "XX000"\npattern = "(unclosed"\nclass = "retryable"\n'
    )
    with pytest.raises(Exception) as exc:
        load_target(path)
    assert "error_rules[0].pattern" in str(exc.value)
    path.write_text(
        'name = "x"\n[[nodes]]\ndsn = "postgresql://u@127.0.0.1:1/db"\n'
        '[[error_rules]]\nsqlstate = "XX000"\npattern = "unavailable"\nclass = "retryable"\n'
    )
    assert load_target(path).rules().classify("XX000", "shard unavailable") is ErrorClass.RETRYABLE


def test_error_rule_applies_in_a_run(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A statement raising XX000 'shard unavailable' is counted retryable and retried per policy."""
    scenario = tmp_path / "flaky.toml"
    scenario.write_text("""
name = "flaky"
[setup]
sql = [\"\"\"CREATE OR REPLACE FUNCTION holoload_flaky() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF random() < 0.3 THEN RAISE EXCEPTION 'storage: shard unavailable' USING ERRCODE = 'XX000'; END IF;
  RETURN 1;
END $$\"\"\"]
[[phases]]
name = "load"
[[phases.workloads]]
name = "w"
executor = "iterations"
iterations = 200
[phases.workloads.retry]
max_attempts = 20
backoff = "1ms"
max_backoff = "2ms"
budget = 1.0
[[phases.workloads.ops]]
name = "call"
sql = "SELECT holoload_flaky()"
""")
    extra = '[[error_rules]]\nsqlstate = "XX000"\npattern = "shard unavailable"\nclass = "retryable"\n'
    code = dispatch(
        [
            str(scenario),
            "--target",
            shared_target(tmp_path, pg_cluster[0], extra),
            "--results-dir",
            str(tmp_path / "r"),
            "-q",
        ]
    )
    assert code == 0
    op = phase_ops(only_run(tmp_path / "r"))["w.call"]
    assert op["ok"] == 200
    assert op["errors"].get("retryable", 0) > 10 and "other" not in op["errors"]
    assert op["retries"] == op["errors"]["retryable"]
