"""report.html's chart assembly: phase spans, per-node lines, ramp targets, batch bars with SLOs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from holoload.core.result import GateOutcome
from holoload.shell.report_charts import (
    Timeline,
    batch_chart,
    batch_groups,
    latency_charts,
    node_lines,
    slo_ms,
    target_lines,
    throughput_charts,
)

NS = "{http://www.w3.org/2000/svg}"


def row(t: float, phase: str, key: str, endpoint: str = "*", ok: float = 10.0, errors: int = 0) -> dict[str, Any]:
    workload, op = key.split(".")
    return {
        "t": t,
        "phase": phase,
        "key": key,
        "workload": workload,
        "op": op,
        "endpoint": endpoint,
        "ops_per_s": str(ok),
        "errors": str(errors),
        "p50_ms": "1.0",
        "p95_ms": "2.0",
        "p99_ms": "3.0",
    }


def timeline() -> Timeline:
    """Phase a (starts 0.5 s, windows 1-4) runs w.x; phase b (starts 4.2 s, windows 5-8) runs w.y; two nodes."""
    star = [row(t, "a", "w.x") for t in (1, 2, 3, 4)] + [row(t, "b", "w.y") for t in (5, 6, 7, 8)]
    nodes = [row(r["t"], r["phase"], r["key"], n, ok=5.0) for r in star for n in ("node1", "node2")]
    return Timeline(star, nodes, (0.0, 9.0), {"a": 0.5, "b": 4.2, "setup": 0.1})


def gate(expression: str, threshold: float | None) -> GateOutcome:
    return GateOutcome.from_json({"name": "g", "expression": expression, "threshold": threshold, "passed": True})


def test_phase_spans_run_from_the_phase_event_to_the_last_window() -> None:
    """Only phases with windows have a span; an op's axis is its phases', not the run's."""
    tl = timeline()
    assert tl.phase_spans() == {"a": (0.5, 4.0), "b": (4.2, 8.0)}
    assert tl.op_range("w.x") == (0.5, 4.0) and tl.op_range("w.y") == (4.2, 8.0)
    assert tl.op_range("w.unknown") == (0.0, 9.0)
    charts = [ET.fromstring(c) for c in latency_charts(tl)]
    assert [c.get("data-op") for c in charts] == ["w.x", "w.y"]
    x_ticks = [
        float("".join(t.itertext()))
        for t in charts[1].iter(f"{NS}text")
        if t.get("class") == "tick" and t.get("text-anchor") == "middle"
    ]
    assert min(x_ticks) >= 4.2 and max(x_ticks) <= 8.0  # w.y's axis is its phase, not the run


def test_node_lines_sum_ops_per_node_and_fill_missing_windows_with_zero() -> None:
    """A node with no row in a window (dead) reads 0 there; ops of one node in one window add up."""
    star = [row(t, "p", "w.x") for t in (1, 2, 3, 4)]
    nodes = [row(t, "p", "w.x", "node1", ok=4.0) for t in (1, 2, 3, 4)]
    nodes += [row(t, "p", "w.y", "node1", ok=1.0) for t in (1, 2, 3, 4)]
    nodes += [row(t, "p", "w.x", "node2", ok=6.0) for t in (1, 4)]  # node2 dead in windows 2 and 3
    lines = {s.label: s.points for s in node_lines(star, nodes, "ops_per_s")}
    assert lines == {
        "node1": [(1, 5.0), (2, 5.0), (3, 5.0), (4, 5.0)],
        "node2": [(1, 6.0), (2, 0.0), (3, 0.0), (4, 6.0)],
    }


def _scenario(*workloads: dict[str, Any]) -> dict[str, Any]:
    return {
        "phases": [{"name": "a", "workloads": list(workloads)}, {"name": "never_ran", "workloads": list(workloads)}]
    }


def test_ramping_rate_target_is_a_line_through_its_stage_targets() -> None:
    """From `start` at the phase start through each stage's target at its end, on the left (ops/s) axis."""
    stages = [{"duration": 2.0, "target": 100.0}, {"duration": 1.0, "target": 40.0}]
    ramp = {"name": "r", "executor": "ramping-rate", "start": 10.0, "stages": stages}
    flat = {"name": "c", "executor": "constant-rate", "rate": 50.0, "stages": []}
    [line] = target_lines(_scenario(ramp, flat), {"a": (5.0, 9.0)})
    assert list(line.points) == [(5.0, 10.0), (7.0, 100.0), (8.0, 40.0)]
    assert not line.right and not line.step and line.label == "target rate r"


def test_ramping_concurrency_target_is_a_staircase_of_whole_writers_on_the_right_axis() -> None:
    """1 -> 4 writers over 3 s, held 2 s: steps at each whole writer (rounded half up), as the engine parks slots."""
    stages = [{"duration": 3.0, "target": 4.0}, {"duration": 2.0, "target": 4.0}]
    ramp = {"name": "k", "executor": "ramping-concurrency", "start": 1.0, "stages": stages}
    [line] = target_lines(_scenario(ramp), {"a": (10.0, 16.0)})
    assert line.right and line.step
    values = [y for _, y in line.points]
    assert values == [1.0, 2.0, 3.0, 4.0, 4.0]
    times = [x for x, _ in line.points]
    assert times[0] == 10.0 and times[1] == pytest.approx(10.5, abs=0.01) and times[-1] == 15.0  # 1.5 writers at 0.5 s


def test_throughput_charts_add_ramp_targets_and_per_node_charts() -> None:
    """ok ops/s carries the target line (right axis for concurrency); per-node ok ops/s always, errors when any."""
    tl = timeline()
    tl.node_rows.append(row(3, "a", "w.x", "node2", errors=4))
    stages = [{"duration": 3.0, "target": 4.0}]
    scenario = _scenario({"name": "w", "executor": "ramping-concurrency", "start": 1.0, "stages": stages})
    charts = {c.get("class"): c for c in (ET.fromstring(s) for s in throughput_charts(tl, scenario))}
    assert set(charts) == {"chart throughput", "chart node-throughput", "chart node-errors"}
    labels = [p.get("data-label") for p in charts["chart throughput"].iter(f"{NS}path")]
    assert labels == ["w.x", "w.y", "target in flight per endpoint, w"]
    texts = ["".join(t.itertext()) for t in charts["chart throughput"].iter(f"{NS}text")]
    assert "target in flight per endpoint" in texts  # the right axis's label
    assert [p.get("data-label") for p in charts["chart node-throughput"].iter(f"{NS}path")] == ["node1", "node2"]


def test_slo_is_the_tightest_latency_limit_on_that_op() -> None:
    """p95/max limits on the op count (in ms); other ops, lower bounds and counts do not."""
    gates = [
        gate("p95(batch_20k) <= 8s", 8.0),
        gate("max(batch_20k) < 5s", 5.0),
        gate("p95(batch_50k) <= 1s", 1.0),
        gate("p95(batch_20k) >= 1ms", 0.001),
        gate("count(batch_20k) <= 3", 3.0),
    ]
    assert slo_ms(gates, "batch_20k") == (5000.0, "SLO max(batch_20k) < 5s")
    assert slo_ms(gates, "batch_9k") is None


def test_batch_groups_keep_run_order_color_failures_and_carry_each_ops_slo() -> None:
    """Bars grouped by op in order of first run; a failed batch is red; each group has its own SLO."""
    batches = [
        {"index": 1, "op": "batch_a", "elapsed_s": 0.1, "status": "ok"},
        {"index": 2, "op": "batch_b", "elapsed_s": 0.4, "status": "ok"},
        {"index": 3, "op": "batch_a", "elapsed_s": 0.2, "status": "error"},
    ]
    groups = batch_groups(batches, [gate("p95(batch_a) <= 8s", 8.0)])
    assert [(g.label, [b.label for b in g.bars]) for g in groups] == [("batch_a", ["#1", "#3"]), ("batch_b", ["#2"])]
    assert [b.value for b in groups[0].bars] == pytest.approx([100.0, 200.0])
    assert groups[0].bars[1].color == "#cf222e" and groups[0].bars[0].color != "#cf222e"
    assert (groups[0].limit, groups[1].limit) == (8000.0, None)
    svg = ET.fromstring(batch_chart(batches, [gate("p95(batch_a) <= 8s", 8.0)]))
    notes = ["".join(t.itertext()) for t in svg.iter(f"{NS}text") if "off-scale" in (t.get("class") or "")]
    assert notes == ["\u2191 SLO p95(batch_a) <= 8s off scale (40x its tallest bar)"]
    assert batch_chart([], []) == ""
