"""Tests for holoload.core.topology.table: holoctl's ASCII table, rendered and parsed exactly."""

from __future__ import annotations

import pytest

from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.model import (
    Placement,
    SplitHealth,
    Topology,
    format_count,
    format_range,
    truncate_middle,
)
from holoload.core.topology.splitkey import row_v1_split_key
from holoload.core.topology.table import parse_table, render_table
from tests.support import FIXTURES, fixture_text
from tests.support.topology import FIVE_NODES

PHASES = ("before_split", "after_split")


# One node unreachable (ERR), one shard count missing (n/a): only `replicated` is partial,
# because every shard's leaseholder still answered.
UNREACHABLE_NODE = """\
+--------+-------------+-------------------+----------------------------+--------------------+-----------------------------+-------+
| NODE   | NODE_STATE  | ROLE              | SHARD                      | RANGE              | RECORDS                     | STATE |
+--------+-------------+-------------------+----------------------------+--------------------+-----------------------------+-------+
| 1      | Active      | leaseholder       | 1                          | [start, user/5000) | 2,500                       |       |
| 1      | Active      | replica           | 2                          | [user/5000, end)   | n/a                         |       |
| 2      | Active      | replica           | 1                          | [start, user/5000) | 2,500                       |       |
| 2      | Active      | leaseholder       | 2                          | [user/5000, end)   | 2,501                       |       |
| 3      | Active      | replica           | 1                          | [start, user/5000) | ERR(Unavailable)            |       |
| 3      | Active      | replica           | 2                          | [user/5000, end)   | ERR(Unavailable)            |       |
+--------+-------------+-------------------+----------------------------+--------------------+-----------------------------+-------+
| TOTALS | nodes: 3    | states: Active: 3 | shards: 2                  | unique: 5,001      | replicated: 7,501 (partial) |       |
+--------+-------------+-------------------+----------------------------+--------------------+-----------------------------+-------+
| SPLIT  | attempts: 1 | success: 1        | failures: 0 (transient: 0) | backoff: 0         | attempts_by: manual=1       |       |
+--------+-------------+-------------------+----------------------------+--------------------+-----------------------------+-------+
"""

# The leaseholder is unreachable, with holoctl's real `ERR (<error>)` wording: both totals partial.
LEASEHOLDER_DOWN = """\
+--------+-------------+-------------------+----------------------------+---------------------+----------------------------------------------------------+-------+
| NODE   | NODE_STATE  | ROLE              | SHARD                      | RANGE               | RECORDS                                                  | STATE |
+--------+-------------+-------------------+----------------------------+---------------------+----------------------------------------------------------+-------+
| 1      | Active      | leaseholder       | 1                          | all_keys            | ERR (status: Unavailable, message: "connection refused") |       |
| 2      | Active      | replica           | 1                          | all_keys            | 40,000                                                   |       |
+--------+-------------+-------------------+----------------------------+---------------------+----------------------------------------------------------+-------+
| TOTALS | nodes: 2    | states: Active: 2 | shards: 1                  | unique: 0 (partial) | replicated: 40,000 (partial)                             |       |
+--------+-------------+-------------------+----------------------------+---------------------+----------------------------------------------------------+-------+
| SPLIT  | attempts: 0 | success: 0        | failures: 0 (transient: 0) | backoff: 0          | attempts_by: -                                           |       |
+--------+-------------+-------------------+----------------------------+---------------------+----------------------------------------------------------+-------+
"""


@pytest.mark.parametrize("phase", PHASES)
def test_fixture_table_round_trips_byte_for_byte(phase: str) -> None:
    """Parsing a holoctl fixture table and rendering it again reproduces the file exactly."""
    raw = (FIXTURES / f"holoctl_topology_{phase}.txt").read_bytes()
    assert render_table(parse_table(raw.decode("utf-8"))).encode("utf-8") == raw


@pytest.mark.parametrize("phase", PHASES)
def test_state_json_plus_table_records_renders_the_fixture_table(phase: str) -> None:
    """The state JSON with the table's record counts renders the same bytes as holoctl."""
    table_text = fixture_text(f"holoctl_topology_{phase}.txt")
    records = {(p.node_id, p.shard_id): p.records for p in parse_table(table_text).placements}
    state = parse_state(fixture_text(f"holoctl_state_{phase}.json"))
    assert render_table(state.with_records(records)) == table_text


def test_parsed_before_split_table_has_one_shard_on_three_nodes() -> None:
    """Before the split: 3 replicas of shard 1, 40,000 unique and 120,000 replicated records."""
    topo = parse_table(fixture_text("holoctl_topology_before_split.txt"))
    assert topo.node_ids == ("1", "2", "3")
    assert topo.shard_ids == ("1",)
    assert topo.shard_count == 1
    assert [p.role for p in topo.placements] == ["leaseholder", "replica", "replica"]
    assert {p.range_text for p in topo.placements} == {"all_keys"}
    assert topo.unique_records == 40_000
    assert topo.replicated_records == 120_000
    assert topo.partial is False
    assert topo.split == SplitHealth(0, 0, 0, 0, 0, ())


def test_parsed_after_split_table_has_two_shards_and_the_manual_split() -> None:
    """After the split: 2 shards, leaseholders on nodes 1 and 2, 90,000 unique records."""
    topo = parse_table(fixture_text("holoctl_topology_after_split.txt"))
    assert topo.shard_ids == ("1", "2")
    first = topo.placements[0]
    assert first == Placement(
        node_id="1",
        node_state="Active",
        role="leaseholder",
        shard_id="1",
        range_text="[start, 0x200000000...000000c350)",
        records=49_999,
        records_text="49,999",
        state="",
    )
    assert [p.node_id for p in topo.for_shard("2") if p.is_leaseholder] == ["2"]
    assert topo.unique_records == 90_000
    assert topo.replicated_records == 270_000
    assert topo.split == SplitHealth(1, 1, 0, 0, 0, (("manual", 1),))


def test_format_range_matches_holoctl_after_split_cells() -> None:
    """format_range prints the split boundary exactly like the fixture's RANGE cells."""
    key = row_v1_split_key(100, 50000)
    assert format_range(None, None) == "all_keys"
    assert format_range(b"", b"") == "all_keys"
    assert format_range(None, key) == "[start, 0x200000000...000000c350)"
    assert format_range(key, None) == "[0x200000000...000000c350, end)"


def test_format_range_prints_text_keys_and_truncates_long_ones() -> None:
    """UTF-8 keys without control characters print as text, cut in the middle at 24 characters."""
    assert format_range(b"user/5000", b"") == "[user/5000, end)"
    assert format_range(b"a" * 24, None) == "[" + "a" * 24 + ", end)"
    assert format_range(b"0123456789abcdefghijklmnopqrstuvwxyz", None) == ("[0123456789a...qrstuvwxyz, end)")
    assert format_range(b"\x00\x01", b"\xff") == "[0x0001, 0xff)"
    assert truncate_middle("abcdef", 3) == "..."


def test_format_count_uses_thousands_separators() -> None:
    """Counts print like holoctl's format_count_u64."""
    assert [format_count(n) for n in (0, 999, 1000, 49_999, 1_234_567)] == [
        "0",
        "999",
        "1,000",
        "49,999",
        "1,234,567",
    ]


@pytest.mark.parametrize("text", [UNREACHABLE_NODE, LEASEHOLDER_DOWN, FIVE_NODES])
def test_hand_made_tables_round_trip_byte_for_byte(text: str) -> None:
    """Unreachable nodes, ERR/n/a cells, (partial) totals and 5 nodes all round-trip exactly."""
    assert render_table(parse_table(text)) == text


def test_unreachable_node_rows_have_unknown_records_and_partial_totals() -> None:
    """ERR(...) and n/a cells parse to records=None and mark the topology partial."""
    topo = parse_table(UNREACHABLE_NODE)
    node3 = [p for p in topo.placements if p.node_id == "3"]
    assert [(p.records, p.records_text) for p in node3] == [
        (None, "ERR(Unavailable)"),
        (None, "ERR(Unavailable)"),
    ]
    assert topo.placements[1].records is None
    assert topo.placements[1].records_text == "n/a"
    assert topo.partial is True
    assert topo.unique_records == 5_001
    assert topo.replicated_records == 7_501


def test_unique_records_falls_back_to_a_replica_when_the_leaseholder_is_unknown() -> None:
    """unique_records uses the first counted row when the leaseholder's count is missing."""
    topo = parse_table(LEASEHOLDER_DOWN)
    assert topo.placements[0].records is None
    assert topo.unique_records == 40_000
    assert topo.partial is True


def test_five_node_table_parses_member_rows_states_and_split_reasons() -> None:
    """The 5-node table keeps the '-' member row, the move status and the top split reasons."""
    topo = parse_table(FIVE_NODES)
    assert topo.node_ids == ("1", "2", "3", "4", "5")
    assert topo.shard_ids == ("1", "2", "3")
    assert topo.node_states["5"] == "Decommissioning"
    assert topo.placements[-1].holds_shard is False
    assert [p.state for p in topo.placements if p.state] == ["in:catchup"]
    assert topo.unique_records == 2_284_142
    assert topo.replicated_records == 6_852_426
    assert topo.partial is False
    assert topo.split == SplitHealth(17, 12, 5, 2, 1, (("load", 12), ("manual", 3)))


def test_render_options_override_node_count_and_states() -> None:
    """node_count and states override the TOTALS cells computed from the rows."""
    topo = parse_table(fixture_text("holoctl_topology_before_split.txt"))
    text = render_table(topo, node_count=4, states={"Active": 3, "Joining": 1})
    assert "| nodes: 4 " in text
    assert "| states: Active: 3, Joining: 1 |" in text


def test_render_without_split_health_omits_the_split_row() -> None:
    """A topology without split health (e.g. PostgreSQL) has only the TOTALS footer."""
    topo = Topology(
        (Placement("1", "Active", "primary", "p0", "[start, 100)", 10, "10"),),
        split=None,
    )
    text = render_table(topo)
    assert "SPLIT" not in text
    assert "| unique: 10 " in text
    assert parse_table(text) == topo


def test_empty_topology_renders_holoctl_no_rows_note_and_parses_back() -> None:
    """No placements prints holoctl's note and a footer-only table that parses back."""
    topo = Topology((), SplitHealth())
    text = render_table(topo)
    assert text.startswith("no shard responsibilities found\n+")
    assert parse_table(text) == topo


def test_multibyte_text_keys_pad_like_rust_and_round_trip() -> None:
    """Widths count UTF-8 bytes while padding counts characters, as holoctl's Rust does."""
    rng = format_range("ключ".encode(), None)
    topo = Topology((Placement("1", "Active", "leaseholder", "1", rng, 1, "1"),), SplitHealth())
    text = render_table(topo)
    row = text.splitlines()[3]
    assert f"| {rng}     |" in row  # 19 bytes wide, 15 characters long
    assert parse_table(text) == topo


def test_extra_unknown_columns_are_ignored() -> None:
    """A table with an extra column parses to the same topology."""
    text = fixture_text("holoctl_topology_after_split.txt")
    widened = []
    for i, line in enumerate(text.splitlines()):
        if line.startswith("+"):
            widened.append(line + "-------+")
        else:
            widened.append(line + (" EXTRA |" if i == 1 else " x     |"))
    assert parse_table("\n".join(widened) + "\n") == parse_table(text)


def test_parse_accepts_crlf_line_endings() -> None:
    """Windows line endings do not break parsing."""
    text = fixture_text("holoctl_topology_before_split.txt")
    assert parse_table(text.replace("\n", "\r\n")) == parse_table(text)


def _garble(text: str, line_no: int, new_line: str) -> str:
    lines = text.splitlines()
    lines[line_no - 1] = new_line
    return "\n".join(lines) + "\n"


BEFORE = (FIXTURES / "holoctl_topology_before_split.txt").read_bytes().decode("utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", r"line 1: empty"),
        ("hello world\n", r"line 1: expected a table border"),
        ('{"members": {}}', r"line 1: expected a table border"),
        (_garble(BEFORE, 2, "| NODE | ROLE | SHARD |"), r"line 2: expected a row of 7"),
        (BEFORE.replace("| STATE |", "| STATUS|"), r"line 2: not a holoctl topology header"),
        (_garble(BEFORE, 5, "| 2      | Active      | replica           | 1 |"), r"line 5: "),
        (
            BEFORE.replace("| 40,000              |", "| lots                |", 1),
            r"line 4: RECORDS",
        ),
        ("\n".join(BEFORE.splitlines()[:-1]) + "\n", r"line 10: table does not end"),
        (BEFORE.replace("unique: 40,000", "unique: many  "), r"line 8: unique"),
        (BEFORE.replace("failures: 0 (transient: 0)", "failures: 0                "), r"line 10:"),
    ],
)
def test_garbled_text_raises_value_error_naming_the_line(text: str, expected: str) -> None:
    """Text that is not a holoctl topology table raises ValueError with the offending line."""
    with pytest.raises(ValueError, match=expected):
        parse_table(text)


def test_duplicate_node_shard_rows_are_rejected() -> None:
    """A node cannot hold the same shard twice."""
    row = Placement("1", "Active", "leaseholder", "1", "all_keys", 1, "1")
    with pytest.raises(ValueError, match="twice"):
        Topology((row, row))


def test_with_records_fills_counts_and_recomputes_partial() -> None:
    """with_records sets counts/texts per (node, shard) and partial follows unknown rows."""
    topo = parse_state(fixture_text("holoctl_state_before_split.json"))
    assert topo.partial is True
    filled = topo.with_records({("1", "1"): 40_000, ("2", "1"): 40_000, ("3", "1"): "ERR(Timeout)"})
    assert [p.records_text for p in filled.placements] == ["40,000", "40,000", "ERR(Timeout)"]
    assert filled.partial is True
    complete = filled.with_records({("3", "1"): 40_000})
    assert complete.partial is False
    assert complete.to_dict()["unique_records"] == 40_000
    assert complete.to_dict()["replicated_records"] == 120_000
