"""Gates never pass on missing evidence: every gate kind's no-data case fails (or, opted in, reports no data)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from holoload.core.gates.language import parse_gate
from holoload.core.gates.load import GateMonitor, GateState, LoadGateContext
from holoload.core.gates.verdicts import Verdict, evaluate
from holoload.core.model.chaos import ChaosAction
from holoload.core.result import RunVerdict, decide_verdict
from holoload.core.server.metrics import Sample
from holoload.core.server.metrics_store import MetricsStore
from holoload.core.server.view import ServerView, TopologySeries
from holoload.core.stats.window import NS_PER_S, Aggregator, OpKey
from holoload.engine.chaos import FaultRunner
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.shell.ci_outputs import junit_xml, summary_markdown
from holoload.shell.html_report import render_report

NS_PER_MS = 1_000_000
KEY = OpKey("main", "w", "op", "node1")


def quiet_run() -> Aggregator:
    """A phase in which op `op` has a recorder (it was set up to run) but never ran once."""
    agg = Aggregator(0)
    agg.phase_started("main", 0)
    agg.recorder(KEY, 0)
    agg.close_window(NS_PER_S)
    return agg


def judge(text: str, ctx: Any, *, report: bool = False) -> Verdict:
    return evaluate("g", parse_gate(text), ctx, report_no_data=report)


def load_ctx(agg: Aggregator, now_ns: int = NS_PER_S, **kw: Any) -> LoadGateContext:
    return LoadGateContext(agg, ["main"], now_ns, **kw)


# ------------------------------------------------------------------ ops with no samples


@pytest.mark.parametrize(
    "text",
    [
        "p50(op) <= 1s",
        "p99.9(op) <= 1s",
        "p99(op, window=10s) <= 1s",
        "min(op) <= 1s",
        "max(op) <= 1s",
        "mean(op) <= 1s",
        "error_rate(op) <= 1%",
        "rate(op) <= 1000/s",
        "rate(op, window=10s) <= 1000/s",
        "errors(op) == 0",
        "errors(op, class=connection) == 0",
        "dropped(op) == 0",
        "retries(op) == 0",
    ],
)
def test_an_op_that_never_ran_fails_every_op_gate(text: str) -> None:
    """A key that recorded nothing: a zero count or an empty histogram proves nothing, so the gate fails."""
    verdict = judge(text, load_ctx(quiet_run()))
    assert not verdict.passed and verdict.fails_run and verdict.state == "fail"
    assert verdict.observed is None and verdict.reason.startswith("no evidence: ")


@pytest.mark.parametrize(
    "text", ["p95(op, during=split) <= 1s", "errors(op, during=split) == 0", "max_gap(op, phase=other) <= 5s"]
)
def test_a_slice_the_op_never_ran_in_fails(text: str) -> None:
    """A tag that never occurred, or a phase that never ran, is no evidence."""
    verdict = judge(text, load_ctx(quiet_run()))
    assert not verdict.passed and verdict.reason.startswith("no evidence: ")


def test_count_of_an_op_that_never_ran_is_zero_and_of_an_unknown_op_is_no_evidence() -> None:
    """count() measures completions: 0 is its answer (count(op) >= 1 fails on it); no such op is no evidence."""
    agg = quiet_run()
    assert judge("count(op) >= 1", load_ctx(agg)).reason == "FAIL: count(op) = 0 < 1"
    assert judge("count(nothing) == 0", load_ctx(agg)).reason == "no evidence: no samples for op 'nothing'"


def test_counters_with_attempts_are_evidence_even_when_zero() -> None:
    """One success is evidence: errors(op) == 0 and dropped(op) == 0 then pass."""
    agg = quiet_run()
    agg.recorder(KEY, NS_PER_S).success(NS_PER_S, NS_PER_S, NS_PER_S + NS_PER_MS)
    agg.close_window(2 * NS_PER_S)
    for text in ("errors(op) == 0", "dropped(op) == 0", "retries(op) == 0", "error_rate(op) == 0%"):
        assert judge(text, load_ctx(agg, 2 * NS_PER_S)).passed, text
    assert judge("errors(op, phase=main, window=1s) == 0", load_ctx(agg, 2 * NS_PER_S)).passed


def test_a_missing_scalar_fails() -> None:
    """`lost == 0` without a checker run (no `lost` scalar) fails instead of passing."""
    verdict = judge("lost == 0", load_ctx(quiet_run()))
    assert (verdict.passed, verdict.reason) == (False, "no evidence: no value for scalar 'lost'")


# ------------------------------------------------------------------ the cluster's own signals


def server(metric_samples: int, topology_samples: int) -> ServerView:
    metrics, topology = MetricsStore(), TopologySeries()
    for i in range(metric_samples):
        metrics.observe("node1", float(i), [Sample("tx_conflict_count", (), float(i), "counter")])
    for i in range(topology_samples):
        topology.observe(float(i), {"shards": 2 + i})
    return ServerView(metrics, topology, ["node1"])


@pytest.mark.parametrize(
    "text",
    [
        "delta(tx_conflict_count) <= 10",
        "rate(tx_conflict_count) <= 10/s",
        "last(tx_conflict_count) <= 10",
        "peak(tx_conflict_count) <= 10",
        "max(topology.shards) >= 1",
        "min(topology.shards) >= 1",
        "delta(split.successes) >= 0",
    ],
)
def test_a_series_never_sampled_fails(text: str) -> None:
    """No sample of a metric or topology series is no evidence."""
    verdict = judge(text, load_ctx(quiet_run(), server=server(0, 0)))
    assert not verdict.passed and verdict.reason.startswith("no evidence: no samples of")


@pytest.mark.parametrize("text", ["delta(tx_conflict_count) <= 10", "delta(topology.shards) <= 10"])
def test_a_delta_over_one_sample_fails(text: str) -> None:
    """One sample spans no time: its delta of 0 would pass `<= 10` on nothing."""
    verdict = judge(text, load_ctx(quiet_run(), server=server(1, 1)))
    assert not verdict.passed and "needs two" in verdict.reason
    assert judge(text, load_ctx(quiet_run(), server=server(3, 3))).passed


# ------------------------------------------------------------------ chaos


class Clock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


def fault_runner(clock: Clock, *actions: ChaosAction) -> tuple[FaultRunner, list[Pulse]]:
    surfaces = SimpleNamespace(names=["node1", "node2"])
    pulses = [Pulse(), Pulse()]
    runner = FaultRunner(
        actions,
        surfaces=surfaces,  # type: ignore[arg-type]  # the runner reads only `names` until it acts
        sink=SimpleNamespace(emit=lambda event: None),  # type: ignore[arg-type]
        book=LedgerBook(shared=False),
        pulses=pulses,
        node_control=None,
        proxies={},
        table="t",
        seed=1,
        perf_ns=clock,
    )
    return runner, pulses


KILL = ChaosAction(name="kill_node2", action="kill", node="node2", during="main", at="20s", duration="10s")
SPLIT = ChaosAction(name="split_churn", action="split", during="main", every="12s")


def chaos_judge(text: str, runner: FaultRunner, now_ns: int, *, report: bool = False) -> Verdict:
    return judge(text, load_ctx(quiet_run(), now_ns, chaos=runner), report=report)


@pytest.mark.parametrize("field", ["ok", "failed", "healed"])
def test_chaos_fields_of_a_fault_that_never_fired_fail(field: str) -> None:
    """`chaos(x).failed == 0` of a fault that never fired is no evidence (it never ran, it did not succeed)."""
    runner, _ = fault_runner(Clock(), KILL)
    verdict = chaos_judge(f"chaos(kill_node2).{field} == 0", runner, NS_PER_S)
    assert (verdict.passed, verdict.reason) == (False, "no evidence: chaos fault 'kill_node2' never fired")
    assert chaos_judge("chaos(kill_node2).fired == 0", runner, NS_PER_S).passed  # fired counts firings: 0 is its answer


def test_recovery_of_a_fault_that_never_fired_or_never_healed_fails() -> None:
    """No firing, then a firing without heal: both are no evidence, each named."""
    clock = Clock()
    runner, _ = fault_runner(clock, KILL, SPLIT)
    assert chaos_judge("recovery(kill_node2) <= 30s", runner, NS_PER_S).reason == (
        "no evidence: chaos fault 'kill_node2' never fired"
    )
    runner.records[0].fired = 1
    assert chaos_judge("recovery(kill_node2) <= 30s", runner, NS_PER_S).reason == (
        "no evidence: chaos fault 'kill_node2' never healed"
    )
    runner.records[1].fired = 1
    assert chaos_judge("recovery(split_churn) <= 30s", runner, NS_PER_S).reason == (
        "no evidence: chaos fault 'split_churn' has no heal to recover from"
    )


def test_recovery_with_no_success_after_the_heal_fails() -> None:
    """The issue's false pass: node2 healed 0.4 s before the load ended and never served a write.

    It used to pass with "the time so far"; now it fails with no evidence, and the summary shows no time.
    """
    clock = Clock()
    runner, _ = fault_runner(clock, KILL)
    rec = runner.records[0]
    rec.fired = rec.ok = 1
    clock.now_ns = 30 * NS_PER_S
    runner._arm_recovery(rec, "node2", clock.now_ns)  # the heal (restart) of node2
    rec.healed = 1
    clock.now_ns = 30 * NS_PER_S + 400 * NS_PER_MS  # the phase ends: no writer runs any more
    runner._load_ended_ns = clock.now_ns
    clock.now_ns = 35 * NS_PER_S  # gates are judged after the checker ran
    verdict = chaos_judge("recovery(kill_node2) <= 30s", runner, clock.now_ns)
    assert not verdict.passed and verdict.fails_run
    assert verdict.reason == (
        "no evidence: no successful operation on node2 after a heal of 'kill_node2' (waited 0.4s)"
    )
    assert rec.to_dict(clock.now_ns)["recovery_s"] == [None]


def test_recovery_waiting_longer_than_the_limit_fails_on_the_bound() -> None:
    """While writers run, the time waited is a lower bound: past 30 s, `<= 30s` fails with the figure."""
    clock = Clock()
    runner, pulses = fault_runner(clock, KILL)
    rec = runner.records[0]
    rec.fired = 1
    runner._arm_recovery(rec, "node2", 0)
    clock.now_ns = 41 * NS_PER_S
    verdict = chaos_judge("recovery(kill_node2) <= 30s", runner, clock.now_ns)
    assert not verdict.passed and verdict.observed == pytest.approx(41.0)
    assert verdict.observed_text == ">= 41s"
    assert verdict.reason.startswith("FAIL: recovery(kill_node2) >= 41s (no successful operation on node2")
    assert verdict.reason.endswith(") > 30s")
    mirrored = chaos_judge("30s >= recovery(kill_node2)", runner, clock.now_ns)
    assert not mirrored.passed and mirrored.reason.endswith(") > 30s")
    early = chaos_judge("recovery(kill_node2) <= 60s", runner, clock.now_ns)  # the bound decides nothing yet
    assert not early.passed and early.reason.startswith("no evidence: ")
    pulses[1].hit(42 * NS_PER_S)  # the first write through node2 after the heal
    assert (
        chaos_judge("recovery(kill_node2) <= 60s", runner, 50 * NS_PER_S).reason == "recovery(kill_node2) = 42s <= 60s"
    )


# ------------------------------------------------------------------ opting in: "no data"


def test_a_gate_opted_in_reports_no_data_and_neither_passes_nor_fails_the_run() -> None:
    """`no_data = "report"`: the verdict is "no data" (passed False, fails_run False)."""
    verdict = judge("p99(op) <= 1s", load_ctx(quiet_run()), report=True)
    assert (verdict.passed, verdict.no_data, verdict.fails_run, verdict.state) == (False, True, False, "no data")
    assert verdict.reason == "no data: no samples for op 'op'"
    assert verdict.to_dict()["state"] == "no data"


def test_opting_in_never_hides_a_real_failure() -> None:
    """With data, an opted-in gate fails like any other; a decisive lower bound fails too."""
    agg = quiet_run()
    agg.recorder(KEY, NS_PER_S).success(NS_PER_S, NS_PER_S, NS_PER_S + 50 * NS_PER_MS)
    agg.close_window(2 * NS_PER_S)
    verdict = judge("p99(op) <= 1ms", load_ctx(agg, 2 * NS_PER_S), report=True)
    assert verdict.fails_run and not verdict.no_data
    clock = Clock()
    runner, _ = fault_runner(clock, KILL)
    runner.records[0].fired = 1
    runner._arm_recovery(runner.records[0], "node2", 0)
    clock.now_ns = 31 * NS_PER_S
    assert chaos_judge("recovery(kill_node2) <= 30s", runner, clock.now_ns, report=True).fails_run


def test_monitor_of_an_opted_in_gate_ends_in_no_data() -> None:
    """Live: pending while there is nothing; final: "no data" (not fail) when nothing ever came."""
    agg = quiet_run()
    monitor = GateMonitor("g", parse_gate("p99(op) <= 1s"), ["main"], report_no_data=True)
    monitor.observe(load_ctx(agg))
    assert monitor.state == GateState.PENDING
    final = monitor.final(load_ctx(agg, 2 * NS_PER_S))
    assert final.no_data and monitor.state == GateState.NO_DATA and not final.fails_run
    strict = GateMonitor("g", parse_gate("p99(op) <= 1s"), ["main"])
    final = strict.final(load_ctx(agg, 2 * NS_PER_S))
    assert final.fails_run and strict.state == GateState.FAIL


def test_windowed_gate_with_an_empty_window_fails_for_good() -> None:
    """`p99(op, window=1s)` must hold in every window: a window without samples is one it did not hold in."""
    agg = Aggregator(0)
    agg.phase_started("main", 0)
    agg.recorder(KEY, 0).success(0, 0, 10 * NS_PER_MS)
    agg.close_window(NS_PER_S)
    monitor = GateMonitor("g", parse_gate("p99(op, window=1s) <= 1s"), ["main"])
    monitor.observe(load_ctx(agg, NS_PER_S))
    assert monitor.state == GateState.PASS
    agg.close_window(2 * NS_PER_S)  # nothing ran in this second
    monitor.observe(load_ctx(agg, 2 * NS_PER_S))
    final = monitor.final(load_ctx(agg, 3 * NS_PER_S))
    assert final.fails_run and final.reason.startswith("no evidence: ") and "(in at least one window)" in final.reason


# ------------------------------------------------------------------ where people read it


def test_no_data_neither_passes_nor_fails_the_run_and_every_reader_says_no_data(tmp_path: Path) -> None:
    """The exit code ignores a reported "no data"; summary.md says NO DATA, junit.xml skips it, report.html marks it."""
    passing = judge("count(op) == 0", load_ctx(quiet_run()))
    no_data = judge("p99(op) <= 1s", load_ctx(quiet_run()), report=True)
    failing = judge("p99(op) <= 1s", load_ctx(quiet_run()))
    assert decide_verdict(stopped=None, gates_failed=any(v.fails_run for v in [passing, no_data])) == (
        RunVerdict.PASS,
        0,
    )
    assert decide_verdict(stopped=None, gates_failed=any(v.fails_run for v in [passing, no_data, failing])) == (
        RunVerdict.FAIL,
        1,
    )

    summary = {"verdict": "PASS", "scenario": {"name": "s"}, "gates": [passing.to_dict(), no_data.to_dict()]}
    assert "| g | NO DATA |" in summary_markdown(summary)
    suite = ET.fromstring(junit_xml(summary).split("\n", 1)[1])
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = render_report(tmp_path)
    assert '<tr class="nodata">' in page and "1 passed, 0 failed, 1 no data" in page
