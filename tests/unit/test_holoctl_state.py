"""Tests for holoload.core.topology.holoctl_state: holoctl state JSON -> Topology."""

from __future__ import annotations

import json
from typing import Any

import pytest

from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.model import Placement, SplitHealth, Topology
from holoload.core.topology.splitkey import row_v1_split_key
from holoload.core.topology.table import parse_table, render_table
from tests.support import fixture_text
from tests.support.topology import FIVE_NODES


def _member(node_id: int, state: str = "Active") -> dict[str, Any]:
    return {
        "node_id": node_id,
        "grpc_addr": f"127.0.0.1:{15050 + node_id}",
        "redis_addr": f"127.0.0.1:{16378 + node_id}",
        "state": state,
    }


def test_before_split_state_has_three_replicas_of_one_unbounded_shard() -> None:
    """One shard over all keys, leaseholder node 1, counts unknown ("n/a"), split idle."""
    topo = parse_state(fixture_text("holoctl_state_before_split.json"))
    assert topo.placements == (
        Placement("1", "Active", "leaseholder", "1", "all_keys", None, "n/a"),
        Placement("2", "Active", "replica", "1", "all_keys", None, "n/a"),
        Placement("3", "Active", "replica", "1", "all_keys", None, "n/a"),
    )
    assert topo.partial is True
    assert topo.unique_records == 0
    assert topo.split == SplitHealth(0, 0, 0, 0, 0, ())


def test_after_split_state_orders_rows_by_node_then_shard() -> None:
    """Six placements, node-major like holoctl topology, leaseholders 1 and 2, manual split."""
    topo = parse_state(fixture_text("holoctl_state_after_split.json"))
    assert [(p.node_id, p.shard_id, p.role) for p in topo.placements] == [
        ("1", "1", "leaseholder"),
        ("1", "2", "replica"),
        ("2", "1", "replica"),
        ("2", "2", "leaseholder"),
        ("3", "1", "replica"),
        ("3", "2", "replica"),
    ]
    assert topo.placements[0].range_text == "[start, 0x200000000...000000c350)"
    assert topo.placements[1].range_text == "[0x200000000...000000c350, end)"
    assert topo.split == SplitHealth(1, 1, 0, 0, 0, (("manual", 1),))


@pytest.mark.parametrize("phase", ["before_split", "after_split"])
def test_state_placements_match_the_topology_table_apart_from_records(phase: str) -> None:
    """Every row from the state JSON equals holoctl's table row except for the record count."""
    from_state = parse_state(fixture_text(f"holoctl_state_{phase}.json"))
    from_table = parse_table(fixture_text(f"holoctl_topology_{phase}.txt"))

    def strip(topo: Topology) -> list[tuple[str, ...]]:
        return [(p.node_id, p.node_state, p.role, p.shard_id, p.range_text, p.state) for p in topo.placements]

    assert strip(from_state) == strip(from_table)
    assert from_state.split == from_table.split


def test_unknown_fields_are_ignored() -> None:
    """Extra top-level, member, shard and split_health fields do not matter."""
    doc = json.loads(fixture_text("holoctl_state_after_split.json"))
    doc["meta_ranges"] = [{"meta_range_id": 1}]
    doc["controller_leases"] = {"range": {"holder": 1, "term": 3, "lease_until_ms": 1}}
    doc["members"]["1"]["zone"] = "a"
    doc["shards"][0]["epoch"] = 7
    doc["split_health"]["last_failure_reason"] = ""
    assert parse_state(json.dumps(doc)) == parse_state(fixture_text("holoctl_state_after_split.json"))


def test_member_without_replicas_gets_a_dash_row_and_ids_sort_numerically() -> None:
    """A member holding nothing gets holoctl's '-' row; node 10 sorts after node 2."""
    doc = {
        "members": {"10": _member(10, "Joining"), "2": _member(2), "1": _member(1)},
        "shards": [{"shard_id": 1, "start_key": [], "end_key": [], "replicas": [2, 1], "leaseholder": 2}],
    }
    topo = parse_state(json.dumps(doc))
    assert [(p.node_id, p.role, p.shard_id) for p in topo.placements] == [
        ("1", "replica", "1"),
        ("2", "leaseholder", "1"),
        ("10", "-", "-"),
    ]
    assert topo.placements[-1].records_text == "-"
    assert topo.node_ids == ("1", "2", "10")
    assert topo.split == SplitHealth()  # missing split_health defaults like holoctl's serde


def test_five_node_state_renders_the_hand_made_five_node_table() -> None:
    """Moves, text ranges, five members and many reasons render exactly like holoctl."""
    k1 = list(row_v1_split_key(0, 0x100000))
    k2 = list(row_v1_split_key(0, 0x200000))
    doc = {
        "members": {str(n): _member(n) for n in range(1, 5)} | {"5": _member(5, "Decommissioning")},
        "shards": [
            {
                "shard_id": 1,
                "start_key": [],
                "end_key": k1,
                "replicas": [1, 2, 3],
                "leaseholder": 1,
            },
            {
                "shard_id": 2,
                "start_key": k1,
                "end_key": k2,
                "replicas": [2, 3, 4],
                "leaseholder": 3,
            },
            {
                "shard_id": 3,
                "start_key": k2,
                "end_key": [],
                "replicas": [1, 2, 4],
                "leaseholder": 4,
            },
        ],
        "shard_rebalances": {"3": {"from_node": 5, "to_node": 4, "phase": "catchup"}},
        "split_health": {
            "attempts": 17,
            "successes": 12,
            "failures": 5,
            "transient_aborts": 2,
            "backoff_active": 1,
            "attempt_reasons": {"size": 2, "manual": 3, "load": 12},
        },
    }
    topo = parse_state(json.dumps(doc))
    assert topo.split is not None
    assert topo.split.attempts_by == (("load", 12), ("manual", 3), ("size", 2))
    counts = {"1": 1_234_567, "2": 1_048_576, "3": 999}
    filled = topo.with_records({(p.node_id, p.shard_id): counts[p.shard_id] for p in topo.placements if p.holds_shard})
    assert render_table(filled) == FIVE_NODES


def test_merges_and_moves_fill_the_state_column() -> None:
    """shard_merges and shard_rebalances produce holoctl's STATE text."""
    doc = {
        "members": {"1": _member(1), "2": _member(2)},
        "shards": [
            {"shard_id": 1, "start_key": [], "end_key": [109], "replicas": [1], "leaseholder": 1},
            {
                "shard_id": 2,
                "start_key": [109],
                "end_key": [],
                "replicas": [1, 2],
                "leaseholder": 1,
            },
        ],
        "shard_merges": {
            "1": {
                "left_shard_id": 1,
                "right_shard_id": 2,
                "phase": "copying",
                "copied_rows": 10,
                "eta_seconds": 4,
            }
        },
        "shard_rebalances": {"2": {"from_node": 1, "to_node": 2, "phase": "learner"}},
    }
    topo = parse_state(json.dumps(doc))
    states = {(p.node_id, p.shard_id): p.state for p in topo.placements}
    assert states[("1", "1")] == "left:copying rows=10 eta=4s"
    assert states[("1", "2")] == "BUG merge=right:copying rows=10 eta=4s move=out:learner"
    assert states[("2", "2")] == "BUG merge=right:copying rows=10 eta=4s move=in:learner"
    assert topo.placements[0].range_text == "[start, m)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "not JSON"),
        ("[]", "<top level>: expected an object"),
        ('{"shards": []}', "members: expected an object"),
        ('{"members": {}, "shards": [{"shard_id": 1}]}', r"shards\[0\]\.replicas"),
        (
            (
                '{"members": {}, "shards": [{"shard_id": 1, "start_key": [256], "end_key": [],'
                ' "replicas": [], "leaseholder": 1}]}'
            ),
            r"shards\[0\].start_key: expected an array of byte values",
        ),
        ('{"members": {"1": {"node_id": 1}}, "shards": []}', r"members.1.state"),
    ],
)
def test_malformed_state_raises_value_error_with_the_field_path(text: str, expected: str) -> None:
    """Broken JSON or missing/mistyped required fields name the field."""
    with pytest.raises(ValueError, match=expected):
        parse_state(text)
