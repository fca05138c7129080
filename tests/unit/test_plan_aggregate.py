"""The canary plan and the event reducer: pure, no database, no event loop."""

from __future__ import annotations

import pytest

from holoload.core.events import BaselineTaken, BatchFinished, ChaosFinished, FinalCount
from holoload.core.model.plan import plan_batches, rows_after
from holoload.core.stats.canary import CanaryAggregator
from holoload.shell.files import load_scenario
from tests.support import FIXTURES, REPO, SHARED_FIXTURES

SALES = REPO / "scenarios" / "sales_facts.toml"


def finished(index: int, op: str, rows: int, status: str, elapsed_s: float = 0.5) -> BatchFinished:
    delta = rows if status == "ok" else (None if status == "error" else rows - 1)
    return BatchFinished(0.0, index, 6, op, op.removeprefix("batch_"), rows, "node1", elapsed_s, delta, status)


def test_plan_spreads_batches_round_robin_and_places_the_split() -> None:
    """Six batches over three nodes go 1,2,3,1,2,3; the split fires after batch 2 only."""
    plan = plan_batches(load_scenario(SALES), 3)
    assert [b.node for b in plan] == [0, 1, 2, 0, 1, 2]
    assert [b.group.label for b in plan] == ["20k"] * 3 + ["50k"] * 3
    assert [len(b.chaos_after) for b in plan] == [0, 1, 0, 0, 0, 0]
    assert plan[3].snapshot_prefix == "batch_04_50k"
    assert rows_after(plan, 2) == 20_000 and rows_after(plan, 3) == 50_000 and rows_after(plan, 6) == 1


def test_plan_on_one_node_keeps_every_batch_there() -> None:
    """A single-endpoint target runs every batch on node 0."""
    assert {b.node for b in plan_batches(load_scenario(SALES), 1)} == {0}


def test_disabled_chaos_is_not_planned() -> None:
    """chaos.0.enabled=false leaves no action in the plan."""
    plan = plan_batches(load_scenario(SALES, ["chaos.0.enabled=false"]), 3)
    assert all(not b.chaos_after and not b.chaos_during for b in plan)


def test_aggregator_counts_failures_and_expected_total() -> None:
    """Mismatches and errors are failed batches; expected final = baseline + planned rows."""
    agg = CanaryAggregator(["batch_a"], planned_rows=300, split_expected=1)
    agg.emit(BaselineTaken(0.0, 7, (7,)))
    agg.emit(finished(1, "batch_a", 100, "ok", 0.2))
    agg.emit(finished(2, "batch_a", 100, "delta_mismatch", 0.4))
    agg.emit(finished(3, "batch_a", 100, "error"))
    agg.emit(ChaosFinished(0.0, "split", "split", True, 0.1, "ok"))
    agg.emit(FinalCount(0.0, 206, (206,)))
    assert agg.scalar("failed_batches") == 2.0
    assert agg.failed_batch_indexes == [2, 3]
    assert agg.scalar("expected_final_count") == 307.0
    assert agg.scalar("final_count") == 206.0
    assert agg.scalar("split_triggered") == 1.0
    stats = agg.ops["batch_a"]
    assert (stats.runs, stats.ok, stats.mismatches, stats.errors) == (3, 1, 1, 1)
    assert stats.histogram.count == 2  # the failed statement has no latency


def test_aggregator_reports_missing_data_as_none() -> None:
    """Before the baseline is taken, count scalars are unknown rather than zero."""
    agg = CanaryAggregator(["batch_a"], planned_rows=10, split_expected=0)
    assert agg.scalar("baseline_count") is None
    assert agg.scalar("expected_final_count") is None
    assert agg.scalar("no_such_scalar") is None


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="../shared is not beside this checkout")
def test_vendored_fixtures_match_shared_ones() -> None:
    """tests/fixtures/holofusion is a byte-exact copy of ../shared/fixtures/holofusion."""
    shared = sorted(p.name for p in SHARED_FIXTURES.iterdir())
    assert shared == sorted(p.name for p in FIXTURES.iterdir())
    for name in shared:
        assert (FIXTURES / name).read_bytes() == (SHARED_FIXTURES / name).read_bytes(), name
