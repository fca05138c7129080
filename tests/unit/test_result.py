"""RunSummary reads every summary.json (this version's, older and rebuilt ones) and writes it back unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from holoload.core.errors import ExitCode
from holoload.core.result import GateState, RunSummary, RunVerdict, decide_verdict
from tests.support import TESTS

SUMMARIES = TESTS / "fixtures" / "summaries"


def fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((SUMMARIES / name).read_text()))


@pytest.mark.parametrize("name", ["load_0.1.0.json", "canary_0.1.0.json"])
def test_a_summary_written_by_holoload_0_1_0_reads_and_writes_back_unchanged(name: str) -> None:
    """Files written before RunSummary existed: the same dict, the same key order, at every level."""
    data = fixture(name)
    result = RunSummary.from_json(SUMMARIES / name)
    again = result.to_json()
    assert again == data
    assert json.dumps(again) == json.dumps(data)  # key order too
    assert RunSummary.from_json(again) == result


def test_a_load_summary_has_typed_verdict_gates_phases_and_client() -> None:
    """The sections readers use are typed: verdict, gates with state, per phase/op figures, client, check."""
    result = RunSummary.from_json(fixture("load_0.1.0.json"))
    assert result.verdict is RunVerdict.PASS and str(result.verdict) == "PASS" and result.exit_code == 0
    assert result.scenario_name == "oltp" and not result.is_canary
    assert result.measured_phases() == ["read_heavy", "mixed", "write_heavy"]
    gates = {g.name: g for g in result.gates}
    assert gates["client.ok"].state is GateState.PASS and not result.failed_gates
    figures = result.phases["read_heavy"].ops["read_heavy.point_read"]
    assert figures.ok > 0 and figures.error_count == 0 and figures.percentile_ms("p99") is not None
    assert result.client is not None and result.client.ok is True and "coordinator" in result.client.processes
    assert result.run.run_id is not None and result.run.run_id.startswith("oltp-")
    assert result.workers is not None and result.env == "default" and result.check.keys == ()


def test_a_canary_summary_has_typed_batch_ops() -> None:
    result = RunSummary.from_json(fixture("canary_0.1.0.json"))
    assert result.is_canary and result.ops is not None and not result.phases
    assert result.ops["batch_20k"].runs == 3 and result.ops["batch_20k"].latency_ms is not None
    assert len(result.batches) == 6 and result.counts is not None


def test_older_and_rebuilt_summaries_read_with_what_they_have() -> None:
    """Gates without `state` (older), a rebuilt summary (KILLED, extra keys) and unknown keys survive a round trip."""
    old = {
        "verdict": "FAIL",
        "run": {"run_id": "x-1"},
        "gates": [{"name": "g", "passed": False}, {"name": "h", "passed": True}],
    }
    result = RunSummary.from_json(old)
    assert [g.state for g in result.gates] == [GateState.FAIL, GateState.PASS]
    assert result.to_json() == old
    rebuilt = {
        "holoload_version": "0.1.0",
        "rebuilt_from_disk": True,
        "run": {"run_id": "r", "status": "KILLED", "exit_code": None, "last_event_ts": 1.5, "problems": ["killed?"]},
        "verdict": "KILLED",
        "exit_code": None,
        "phases": {"main": {"measured": True, "seconds": 3.0, "ops": {"w.op": {"ok": 3, "error_count": 0}}}},
        "gates": [{"name": "g", "state": "pass"}],
        "chaos": [],
        "check": {},
        "client": None,
        "isolation": {"model": "serializable"},
    }
    result = RunSummary.from_json(rebuilt)
    assert result.verdict is RunVerdict.KILLED and result.rebuilt_from_disk and result.client is None
    assert result.run.extra == {"last_event_ts": 1.5} and result.extra == {"isolation": {"model": "serializable"}}
    assert result.to_json() == rebuilt
    assert RunSummary.from_json({"verdict": "WHATEVER"}).verdict is RunVerdict.UNKNOWN
    assert RunSummary.from_json({}).status == "UNKNOWN"


def test_from_json_reads_a_directory_a_file_or_a_dict(tmp_path: Path) -> None:
    data = fixture("canary_0.1.0.json")
    (tmp_path / "summary.json").write_text(json.dumps(data))
    assert (
        RunSummary.from_json(tmp_path) == RunSummary.from_json(tmp_path / "summary.json") == RunSummary.from_json(data)
    )
    (tmp_path / "summary.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        RunSummary.from_json(tmp_path)


def test_sections_are_frozen_and_replace_keeps_the_layout() -> None:
    result = RunSummary.from_json(fixture("canary_0.1.0.json"))
    with pytest.raises(AttributeError):
        result.verdict = RunVerdict.FAIL  # type: ignore[misc]
    changed = replace(result, keys=result.with_keys("notify"), notify=({"url": "https://x", "ok": True},))
    assert list(changed.to_json())[-1] == "notify" and changed.to_json()["notify"] == [{"url": "https://x", "ok": True}]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"stopped": None}, (RunVerdict.PASS, ExitCode.PASS)),
        ({"stopped": None, "gates_failed": True}, (RunVerdict.FAIL, ExitCode.FAIL)),
        ({"stopped": None, "gates_failed": True, "enforce": False}, (RunVerdict.FAIL, ExitCode.PASS)),
        ({"stopped": None, "regressed": True}, (RunVerdict.FAIL, ExitCode.FAIL)),
        ({"stopped": None, "regressed": True, "enforce": False}, (RunVerdict.FAIL, ExitCode.PASS)),
        ({"stopped": RunVerdict.ERROR, "error_exit_code": 3, "gates_failed": True}, (RunVerdict.ERROR, ExitCode.SETUP)),
        ({"stopped": RunVerdict.ERROR}, (RunVerdict.ERROR, ExitCode.FAIL)),
        ({"stopped": RunVerdict.INTERRUPTED, "regressed": True}, (RunVerdict.INTERRUPTED, ExitCode.INTERRUPTED)),
        ({"stopped": RunVerdict.INTERRUPTED, "stop_signal": "SIGTERM"}, (RunVerdict.INTERRUPTED, ExitCode.TERMINATED)),
    ],
)
def test_decide_verdict_is_the_one_place_verdict_and_exit_code_are_decided(
    kwargs: dict[str, Any], expected: tuple[RunVerdict, int]
) -> None:
    """Gates and a baseline regression fail a completed run; a stop or an error wins over both."""
    assert decide_verdict(**kwargs) == expected


def _drops_summary(gates: dict[str, str], failed: set[str]) -> RunSummary:
    """Two phases, two ops each with drops (one op without), and the named gates (`failed` ones failed)."""
    ops = {"oltp.insert": {"ok": 10, "dropped": 3}, "oltp.read": {"ok": 10, "dropped": 2}, "etl.load": {"ok": 5}}
    return RunSummary.from_json(
        {
            "verdict": "FAIL",
            "phases": {"warmup": {"measured": False, "ops": ops}, "steady": {"ops": ops}},
            "gates": [
                {"name": n, "expression": e, "state": "fail" if n in failed else "pass"} for n, e in gates.items()
            ],
        }
    )


def test_drops_that_failed_names_the_ops_a_failed_dropped_gate_counted() -> None:
    """`dropped(sel)` marks the ops it selects over the measured phases, only with drops, only when it failed."""
    summary = _drops_summary({"d": "dropped(insert) == 0", "p": "dropped(read) == 0"}, failed={"d"})
    assert summary.drops_that_failed() == {("steady", "oltp.insert")}
    by_workload = _drops_summary({"d": "dropped(oltp) < 1"}, failed={"d"})
    assert by_workload.drops_that_failed() == {("steady", "oltp.insert"), ("steady", "oltp.read")}
    assert _drops_summary({"d": "dropped(oltp) < 1"}, failed=set()).drops_that_failed() == frozenset()


def test_drops_that_failed_follows_the_scalar_phase_keyword_and_phase_gates() -> None:
    """Bare `dropped` sums every phase and op; `phase=` and a phase's own gate (`steady.x`) pick that phase."""
    bare = _drops_summary({"d": "dropped == 0"}, failed={"d"}).drops_that_failed()
    assert bare == {(p, o) for p in ("warmup", "steady") for o in ("oltp.insert", "oltp.read")}
    keyword = _drops_summary({"d": "dropped(oltp.read, phase=warmup) <= 1"}, failed={"d"})
    assert keyword.drops_that_failed() == {("warmup", "oltp.read")}
    own = _drops_summary({"warmup.d": "dropped(insert) == 0"}, failed={"warmup.d"})
    assert own.drops_that_failed() == {("warmup", "oltp.insert")}
    other = _drops_summary({"d": "p99(insert) < 1ms"}, failed={"d"})
    assert other.drops_that_failed() == frozenset()
