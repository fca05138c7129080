"""Scenario and target files: strict validation, clear messages, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from holoload.core.errors import ExitCode, ScenarioError
from holoload.shell.files import load_scenario, load_target
from tests.support import REPO

SALES = REPO / "scenarios" / "sales_facts.toml"


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def minimal(extra: str = "", batch: str = 'label = "20k"\nrows = "20k"\n') -> str:
    return f'name = "t"\n{extra}\n[[batches]]\n{batch}'


def problems(exc: pytest.ExceptionInfo[ScenarioError]) -> dict[str, str]:
    return dict(exc.value.problems)


def test_shipped_scenario_is_the_canary_shape() -> None:
    """sales_facts.toml holds 3x20k then 3x50k, a split after batch 2, and the canary gates."""
    s = load_scenario(SALES)
    assert [(b.label, b.rows, b.count) for b in s.batches] == [("20k", 20_000, 3), ("50k", 50_000, 3)]
    assert s.total_rows == 210_000
    assert [(a.action, a.after_batch) for a in s.enabled_chaos()] == [("split", 2)]
    assert s.active_gates()["p95_20k"] == "p95(batch_20k) <= 8s"
    assert s.run.statement_timeout == 300.0


def test_unknown_key_names_file_path_and_suggests(tmp_path: Path) -> None:
    """A typo in a nested key names the file, the key path and the likely intended key."""
    path = write(tmp_path, minimal(batch='label = "20k"\nrowz = 5\n'))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    found = problems(exc)
    assert "unknown key 'rowz'" in found["batches[0].rowz"]
    assert "did you mean 'rows'" in found["batches[0].rowz"]
    assert str(path) in str(exc.value)


def test_wrong_type_and_bad_duration_are_both_reported(tmp_path: Path) -> None:
    """Every problem is reported at once, each with what was expected."""
    path = write(
        tmp_path,
        minimal(
            '[run]\nstatement_timeout = "fast"\nconnect_timeout = "10s"\n',
            batch='label = "20k"\nrows = "20k"\ncount = "three"\n',
        ),
    )
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    found = problems(exc)
    assert "duration" in found["run.statement_timeout"]
    assert "fast" in found["run.statement_timeout"]
    assert "integer" in found["batches[0].count"]


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    """A scenario path that does not exist is exit 2 with 'file not found'."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(tmp_path / "nope.toml")
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    assert "file not found" in str(exc.value)


def test_invalid_toml_is_reported_with_position(tmp_path: Path) -> None:
    """Broken TOML is reported as such, with the parser's line/column."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path, 'name = "t"\n[[batches]\nlabel = 1\n'))
    assert "not valid TOML" in str(exc.value)
    assert "line" in str(exc.value)


def test_gate_with_unknown_op_fails_validation(tmp_path: Path) -> None:
    """A gate naming an op the scenario does not define is caught before any load."""
    path = write(tmp_path, minimal('[gates]\nslow = "p95(batch_2k) <= 8s"\n'))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "batch_2k" in problems(exc)["gates.slow"]


def test_gate_comparing_duration_with_number_fails(tmp_path: Path) -> None:
    """p95 is a duration; comparing it with a bare number is an error, not a silent pass."""
    path = write(tmp_path, minimal('[gates]\nslow = "p95(batch_20k) <= 8"\n'))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "duration" in problems(exc)["gates.slow"]


def test_overrides_change_nested_and_list_fields() -> None:
    """--set reaches tables, list items by index, and reads values as TOML."""
    s = load_scenario(
        SALES,
        [
            "gates.p95_20k=p95(batch_20k) <= 10s",
            "chaos.0.enabled=false",
            "batches.1.count=1",
            'run.statement_timeout="30s"',
        ],
    )
    assert s.active_gates()["p95_20k"] == "p95(batch_20k) <= 10s"
    assert s.enabled_chaos() == []
    assert s.total_batches == 4
    assert s.run.statement_timeout == 30.0


def test_empty_gate_override_disables_the_gate() -> None:
    """Setting a gate to "" removes it from the active gates."""
    s = load_scenario(SALES, ['gates.split=""'])
    assert "split" not in s.active_gates()


def test_bad_override_syntax_is_bad_input() -> None:
    """An override without '=' says what form is expected."""
    with pytest.raises(ScenarioError) as exc:
        load_scenario(SALES, ["gates.p95_20k"])
    assert "key.path=value" in str(exc.value)


def test_chaos_pointing_past_the_last_batch_is_rejected(tmp_path: Path) -> None:
    """A split after batch 9 of a 1-batch scenario is caught at validation."""
    path = write(tmp_path, minimal('[[chaos]]\nname = "s"\naction = "split"\nafter_batch = 9\n'))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "batch 9" in str(exc.value)


def test_shipped_targets_validate() -> None:
    """Both shipped target files are valid and describe what they say."""
    holo = load_target(REPO / "targets" / "holofusion-dev.toml")
    assert [n.dsn.rsplit(":", 1)[1].split("/")[0] for n in holo.nodes] == ["55432", "55433", "55434"]
    assert holo.topology.source == "holoctl_state" and holo.split.method == "holoctl"
    assert [n.health_url for n in holo.nodes] == [f"http://127.0.0.1:{p}" for p in (18081, 18082, 18083)]
    roach = load_target(REPO / "targets" / "cockroach-local.toml")
    assert roach.topology.source == "sql" and roach.topology.columns["shard_id"] == "range_id"
    assert roach.split.sql == "ALTER TABLE {table} SPLIT AT VALUES ({key})"
    assert holo.data == "shared"
    pg = load_target(REPO / "targets" / "postgres.toml")
    assert pg.split.method == "none"


def test_target_with_bad_dsn_and_unknown_key(tmp_path: Path) -> None:
    """Target files are as strict as scenarios: bad DSN and unknown keys are named."""
    path = write(tmp_path, 'name = "x"\ncolour = 1\n[[nodes]]\ndsn = "mysql://h/db"\n', "t.toml")
    with pytest.raises(ScenarioError) as exc:
        load_target(path)
    found = problems(exc)
    assert "postgresql://" in found["nodes[0].dsn"]
    assert "unknown key 'colour'" in found["colour"]


def load_phase(tmp_path: Path, workload: str) -> Path:
    text = f"""name = "t"
[[phases]]
name = "p"
duration = "5s"
[[phases.workloads]]
name = "w"
{workload}
[[phases.workloads.ops]]
name = "q"
sql = "SELECT 1"
"""
    return write(tmp_path, text)


@pytest.mark.parametrize(
    ("written", "per_second"),
    [("300", 300.0), ('"300/s"', 300.0), ('"1.5k/s"', 1500.0), ('"600/min"', 10.0), ('"7200/h"', 2.0)],
)
def test_rates_take_the_units_gates_write(tmp_path: Path, written: str, per_second: float) -> None:
    """`rate = "300/s"` means what `rate(x) >= 300/s` means in a gate (issue 15)."""
    scenario = load_scenario(load_phase(tmp_path, f'executor = "constant-rate"\nrate = {written}'))
    assert scenario.phases[0].workloads[0].rate == pytest.approx(per_second)
    ramp = load_scenario(
        load_phase(
            tmp_path,
            f'executor = "ramping-rate"\nstart = {written}\nstages = [{{ duration = "5s", target = {written} }}]',
        )
    )
    assert ramp.phases[0].workloads[0].start == pytest.approx(per_second)
    assert ramp.phases[0].workloads[0].stages[0].target == pytest.approx(per_second)


def test_a_rate_that_is_not_one_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(load_phase(tmp_path, 'executor = "constant-rate"\nrate = "300/parsec"'))
    assert "expected a rate such as 300/s" in problems(exc)["phases[0].workloads[0].rate"]


@pytest.mark.parametrize(
    ("executor", "stray"),
    [
        ('executor = "constant-rate"\nrate = 100', 'think_time = "5ms"'),
        ('executor = "constant-rate"\nrate = 100', "concurrency = 4"),
        ('executor = "constant-concurrency"\nconcurrency = 2', "max_inflight = 8"),
        ('executor = "constant-concurrency"\nconcurrency = 2', "rate = 50"),
        ('executor = "iterations"\niterations = 5', "queue_depth = 8"),
        ('executor = "ramping-rate"\nstages = [{ duration = "5s", target = 10 }]', "iterations = 5"),
    ],
)
def test_keys_the_executor_does_not_read_are_rejected(tmp_path: Path, executor: str, stray: str) -> None:
    """A key the executor ignores is a mistake the user should hear about, with the key path and a hint."""
    path = load_phase(tmp_path, f"{executor}\n{stray}")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    (where, message), *_ = exc.value.problems
    key = stray.split(" ")[0]
    assert where.startswith("phases[0].workloads[0]")
    assert f"{key} does not apply to executor" in message and "it takes" in message


def test_every_executor_accepts_its_own_keys(tmp_path: Path) -> None:
    for workload in (
        'executor = "iterations"\niterations = 10\nconcurrency = 2\nthink_time = "1ms"',
        'executor = "constant-concurrency"\nconcurrency = 2\nthink_time = "1ms"',
        'executor = "ramping-concurrency"\nstart = 1\nstages = [{ duration = "5s", target = 3 }]\nthink_time = "1ms"',
        'executor = "constant-rate"\nrate = "10/s"\nmax_inflight = 4\nqueue_depth = 0',
        'executor = "ramping-rate"\nstart = 1\nstages = [{ duration = "5s", target = "20/s" }]\nmax_inflight = 4\nqueue_depth = 100000',
    ):
        load_scenario(load_phase(tmp_path, workload))


def test_the_chaos_scenario_retries_in_doubt_writes_into_23505_as_its_header_says() -> None:
    """Issue 15: its comment promises recoveries by 23505, which needs `unique = true` on every ledger."""
    scenario = load_scenario(REPO / "scenarios" / "chaos_split_kill.toml")
    ledgers = [op.ledger for p in scenario.phases for w in p.workloads for op in w.ops if op.ledger is not None]
    assert ledgers and all(ledger.unique for ledger in ledgers)


@pytest.mark.parametrize("depth", ["-1", "100001", '"deep"'])
def test_a_queue_depth_outside_0_to_100000_is_rejected_at_its_key(tmp_path: Path, depth: str) -> None:
    """queue_depth is a whole number of waiting arrivals, 0..100,000."""
    path = load_phase(tmp_path, f'executor = "constant-rate"\nrate = 100\nqueue_depth = {depth}')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert "phases[0].workloads[0].queue_depth" in problems(exc)
