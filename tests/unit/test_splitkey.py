"""Tests for holoload.core.topology.splitkey: the row_v1 split key holoctl split --hex expects."""

from __future__ import annotations

import json

import pytest

from holoload.core.topology.splitkey import from_hex, row_v1_split_key, to_hex
from tests.support import FIXTURES


def test_row_v1_key_matches_documented_example() -> None:
    """Table 100, pk 50000 encodes to the hex the fixture README documents."""
    assert to_hex(row_v1_split_key(100, 50000)) == "2000000000000000640200800000000000c350"


def test_row_v1_key_equals_the_shard_boundary_after_split() -> None:
    """The key is the byte boundary holoctl state shows between the two shards."""
    state = json.loads((FIXTURES / "holoctl_state_after_split.json").read_bytes())
    left, right = state["shards"]
    key = row_v1_split_key(100, 50000)
    assert bytes(left["end_key"]) == key
    assert bytes(right["start_key"]) == key


def test_row_v1_key_layout_is_tag_table_separator_pk() -> None:
    """The key is 0x20, table id u64 BE, 0x02 0x00, then pk with its sign bit flipped."""
    key = row_v1_split_key(0x0102030405060708, 0)
    assert len(key) == 19
    assert key[0] == 0x20
    assert key[1:9] == bytes.fromhex("0102030405060708")
    assert key[9:11] == b"\x02\x00"
    assert key[11:] == bytes.fromhex("8000000000000000")


def test_row_v1_keys_sort_like_signed_primary_keys() -> None:
    """Flipping the sign bit makes byte order follow signed pk order."""
    pks = [-(2**63), -50000, -1, 0, 1, 50000, 2**63 - 1]
    keys = [row_v1_split_key(7, pk) for pk in pks]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("table_id", "pk"),
    [(-1, 0), (2**64, 0), (1, 2**63), (1, -(2**63) - 1)],
)
def test_row_v1_key_rejects_out_of_range_values(table_id: int, pk: int) -> None:
    """Values outside u64 table ids / i64 primary keys raise ValueError."""
    with pytest.raises(ValueError, match="table_id|pk"):
        row_v1_split_key(table_id, pk)


def test_row_v1_key_accepts_the_extreme_values() -> None:
    """The largest table id and both i64 extremes are valid."""
    assert to_hex(row_v1_split_key(2**64 - 1, 2**63 - 1)).endswith("0200" + "ff" * 8)
    assert to_hex(row_v1_split_key(0, -(2**63))).endswith("0200" + "00" * 8)


def test_row_v1_key_rejects_non_integers() -> None:
    """Booleans and floats are not silently treated as ids."""
    with pytest.raises(TypeError):
        row_v1_split_key(True, 1)
    with pytest.raises(TypeError):
        row_v1_split_key(1, 1.0)  # type: ignore[arg-type]


def test_to_hex_is_lowercase_without_prefix() -> None:
    """to_hex gives lowercase digits and no 0x."""
    assert to_hex(b"\xab\xcd\x00") == "abcd00"


def test_from_hex_round_trips_and_rejects_bad_text() -> None:
    """from_hex inverts to_hex and refuses odd lengths, 0x prefixes and non-hex characters."""
    key = row_v1_split_key(100, 50000)
    assert from_hex(to_hex(key)) == key
    for bad in ("abc", "0xab", "zz", "ab cd"):
        with pytest.raises(ValueError):
            from_hex(bad)
