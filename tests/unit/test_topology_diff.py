"""Tests for holoload.core.topology.diff: typed changes between readings, and gate summaries."""

from __future__ import annotations

from holoload.core.topology.diff import TopologyChange, diff, summary, summary_text
from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.model import Placement, SplitHealth, Topology, any_unknown_records
from holoload.core.topology.table import parse_table
from tests.support import fixture_text

KEY = "0x200000000...000000c350"
LEFT = f"[start, {KEY})"
RIGHT = f"[{KEY}, end)"

# What a split of the single all_keys shard at pk 50000 changes, as the fixtures record it.
SPLIT_CHANGES = [
    TopologyChange("range_changed", "shard 1", "all_keys", LEFT),
    TopologyChange("shard_added", "shard 2", None, RIGHT),
    TopologyChange("leaseholder_moved", "shard 2", None, "2"),
    TopologyChange("replicas_changed", "shard 2", None, "1,2,3"),
    TopologyChange("split_attempted", "split", "0", "1"),
    TopologyChange("split_succeeded", "split", "0", "1"),
]


def _table(phase: str) -> Topology:
    return parse_table(fixture_text(f"holoctl_topology_{phase}.txt"))


def _state(phase: str) -> Topology:
    return parse_state(fixture_text(f"holoctl_state_{phase}.json"))


Row = tuple[str, str, str, str, str, int | None]


def _topo(
    rows: list[Row], split: SplitHealth | None = None, states: dict[tuple[str, str], str] | None = None
) -> Topology:
    """Build a topology from (node, node_state, role, shard, range, records) rows."""
    placements = tuple(
        Placement(
            node_id=node,
            node_state=node_state,
            role=role,
            shard_id=shard,
            range_text=range_text,
            records=records,
            records_text="n/a" if records is None else f"{records:,}",
            state=(states or {}).get((node, shard), ""),
        )
        for node, node_state, role, shard, range_text, records in rows
    )
    return Topology(placements, split, partial=any_unknown_records(placements))


def _replicated(shards: list[tuple[str, str, str, int]], nodes: list[tuple[str, str]]) -> list[Row]:
    """Every node holds every shard: shards as (shard, range, leaseholder node, records)."""
    return [
        (node, node_state, "leaseholder" if lh == node else "replica", shard, range_text, records)
        for node, node_state in nodes
        for shard, range_text, lh, records in shards
    ]


THREE = [("1", "Active"), ("2", "Active"), ("3", "Active")]


def test_split_in_state_fixtures_reports_new_shard_range_leaseholder_and_split_counters() -> None:
    """holoctl state before -> after the split: shard 2 appears, shard 1 shrinks, split 0 -> 1."""
    assert diff(_state("before_split"), _state("after_split")) == SPLIT_CHANGES


def test_split_in_table_fixtures_reports_the_same_changes_as_the_state() -> None:
    """The ASCII tables of the same split give the same changes (record counts are not topology)."""
    assert diff(_table("before_split"), _table("after_split")) == SPLIT_CHANGES


def test_first_reading_is_one_initial_change_with_a_summary() -> None:
    """No previous reading: a single "initial" change describing the topology."""
    changes = diff(None, _table("after_split"))
    assert changes == [
        TopologyChange(
            "initial",
            "topology",
            None,
            "3 nodes (Active: 3), 2 shards, 90,000 unique records, 270,000 replicated, split 1/1 ok, 0 failed",
        )
    ]


def test_identical_readings_give_an_empty_diff() -> None:
    """Nothing changed: no changes, also when only record counts moved."""
    after = _table("after_split")
    assert diff(after, after) == []
    assert diff(_state("before_split"), _state("before_split")) == []
    grown = after.with_records({("1", "1"): 60_000, ("2", "1"): 60_000, ("3", "1"): 60_000})
    assert diff(after, grown) == []


def test_row_order_does_not_change_the_diff() -> None:
    """Changes are sorted by id, not by the sources' row order."""
    before, after = _table("before_split"), _table("after_split")
    shuffled = Topology(tuple(reversed(after.placements)), after.split, partial=after.partial)
    assert diff(before, shuffled) == diff(before, after)


def test_unreachable_node_reports_its_records_becoming_unknown() -> None:
    """Node 3's counts turn into ERR cells: records_partial for node 3, summary says partial."""
    before = _table("after_split")
    after = before.with_records({("3", "1"): "ERR(Timeout)", ("3", "2"): "ERR(Timeout)"})
    assert after.partial
    assert diff(before, after) == [
        TopologyChange(
            "records_partial",
            "node 3",
            "shard 1: 49,999, shard 2: 40,001",
            "shard 1: ERR(Timeout), shard 2: ERR(Timeout)",
        )
    ]
    assert summary(after)["partial"] is True
    assert summary(after)["replicated_records"] == 180_000
    assert diff(after, before) == [
        TopologyChange(
            "records_recovered",
            "node 3",
            "shard 1: ERR(Timeout), shard 2: ERR(Timeout)",
            "shard 1: 49,999, shard 2: 40,001",
        )
    ]


def test_five_nodes_joining_report_nodes_states_and_replicas() -> None:
    """Nodes 4 and 5 join (one still Joining, then Active) and take replicas of shard 2."""
    shards = [("1", LEFT, "1", 10), ("2", RIGHT, "2", 20)]
    before = _topo(_replicated(shards, THREE))
    joined = _topo(
        _replicated(shards, THREE)
        + [("4", "Joining", "replica", "2", RIGHT, 20), ("5", "Joining", "replica", "2", RIGHT, 20)]
    )
    assert diff(before, joined) == [
        TopologyChange("node_added", "node 4", None, "Joining"),
        TopologyChange("node_added", "node 5", None, "Joining"),
        TopologyChange("replicas_changed", "shard 2", "1,2,3", "1,2,3,4,5"),
    ]
    moved = [("1", LEFT, "1", 10), ("2", RIGHT, "4", 20)]  # the lease of shard 2 moved to node 4
    active = _topo(
        _replicated(moved, THREE)
        + [("4", "Active", "leaseholder", "2", RIGHT, 20), ("5", "Active", "replica", "2", RIGHT, 20)]
    )
    assert diff(joined, active) == [
        TopologyChange("node_state_changed", "node 4", "Joining", "Active"),
        TopologyChange("node_state_changed", "node 5", "Joining", "Active"),
        TopologyChange("leaseholder_moved", "shard 2", "2", "4"),
    ]
    assert summary(joined)["states"] == {"Active": 3, "Joining": 2}
    assert summary(active)["nodes"] == 5


def test_merge_of_two_shards_reports_the_removed_shard_and_the_widened_range() -> None:
    """Shards 1 and 2 become one: shard 1 covers all keys, shard 2 is gone with its lease."""
    split = SplitHealth(attempts=1, successes=1)
    before = _topo(_replicated([("1", LEFT, "1", 10), ("2", RIGHT, "2", 20)], THREE), split)
    merging = _topo(
        _replicated([("1", LEFT, "1", 10), ("2", RIGHT, "2", 20)], THREE),
        split,
        states={("1", "1"): "left:copying", ("1", "2"): "right:copying"},
    )
    merged = _topo(_replicated([("1", "all_keys", "1", 30)], THREE), split)
    assert diff(before, merging) == [
        TopologyChange("shard_state_changed", "shard 1", None, "node 1: left:copying"),
        TopologyChange("shard_state_changed", "shard 2", None, "node 1: right:copying"),
    ]
    assert diff(merging, merged) == [
        TopologyChange("range_changed", "shard 1", LEFT, "all_keys"),
        TopologyChange("shard_state_changed", "shard 1", "node 1: left:copying", None),
        TopologyChange("shard_removed", "shard 2", RIGHT, None),
        TopologyChange("leaseholder_moved", "shard 2", "2", None),
        TopologyChange("replicas_changed", "shard 2", "1,2,3", None),
        TopologyChange("shard_state_changed", "shard 2", "node 1: right:copying", None),
    ]
    assert summary(merged)["shards"] == 1


def test_removed_node_reports_state_and_lost_replicas() -> None:
    """Node 3 is decommissioned: its state changes, it keeps a "-" row, shard 1 loses a replica."""
    before = _topo(_replicated([("1", "all_keys", "1", 5)], THREE))
    rows = _replicated([("1", "all_keys", "1", 5)], THREE[:2])
    after = _topo(rows + [("3", "Removed", "-", "-", "-", None)])
    assert not after.partial  # a "-" row holds no shard, so its missing count is not partial
    assert diff(before, after) == [
        TopologyChange("node_state_changed", "node 3", "Active", "Removed"),
        TopologyChange("replicas_changed", "shard 1", "1,2,3", "1,2"),
    ]
    gone = _topo(rows)
    assert diff(after, gone) == [TopologyChange("node_removed", "node 3", "Removed", None)]


def test_failed_split_and_counter_reset_are_reported() -> None:
    """A failing split counts an attempt and a failure; counters going down are one reset."""
    rows = _replicated([("1", "all_keys", "1", 5)], THREE)
    before = _topo(rows, SplitHealth(attempts=1, successes=1))
    after = _topo(rows, SplitHealth(attempts=2, successes=1, failures=1))
    assert diff(before, after) == [
        TopologyChange("split_attempted", "split", "1", "2"),
        TopologyChange("split_failed", "split", "0", "1"),
    ]
    restarted = _topo(rows, SplitHealth())
    assert diff(after, restarted) == [
        TopologyChange(
            "split_counters_reset",
            "split",
            "attempts 2, successes 1, failures 1",
            "attempts 0, successes 0, failures 0",
        )
    ]


def test_split_counters_are_compared_only_when_both_readings_have_them() -> None:
    """A source without split health (SQL) never reports split changes."""
    rows = _replicated([("1", "all_keys", "1", 5)], THREE)
    assert diff(_topo(rows), _topo(rows, SplitHealth(attempts=3, successes=3))) == []


def test_summary_gives_gate_series_for_the_after_split_table() -> None:
    """summary(): shards, nodes, states, totals, partial and split counters."""
    assert summary(_table("after_split")) == {
        "shards": 2,
        "nodes": 3,
        "states": {"Active": 3},
        "unique_records": 90_000,
        "replicated_records": 270_000,
        "partial": False,
        "split.attempts": 1,
        "split.successes": 1,
        "split.failures": 0,
        "split.transient": 0,
        "split.backoff": 0,
    }


def test_summary_without_split_health_has_no_split_keys() -> None:
    """A topology with split None has no split.* series (gates on them see no data)."""
    values = summary(_topo(_replicated([("1", "all_keys", "1", 5)], THREE)))
    assert not any(key.startswith("split.") for key in values)
    assert values["shards"] == 1


def test_summary_text_of_a_state_reading_marks_totals_partial() -> None:
    """State JSON has no counts: the totals are marked partial."""
    assert summary_text(_state("before_split")) == (
        "3 nodes (Active: 3), 1 shard, 0 unique records (partial), 0 replicated (partial), split 0/0 ok, 0 failed"
    )


def test_change_to_dict_is_json_ready() -> None:
    """TopologyChange.to_dict() has kind, subject, before and after."""
    assert SPLIT_CHANGES[1].to_dict() == {"kind": "shard_added", "subject": "shard 2", "before": None, "after": RIGHT}
