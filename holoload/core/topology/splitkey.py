"""HoloFusion split-key encoding: the byte key `holoctl split --hex` expects for a table row."""

from __future__ import annotations

import re

_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_SIGN_BIT = 1 << 63

# Layout of a row_v1 primary-key prefix, as HoloFusion's ingest canary builds it.
_ROW_V1_TAG = b"\x20"
_PK_SEPARATOR = b"\x02\x00"
_HEX_RE = re.compile(r"[0-9a-fA-F]*")


def row_v1_split_key(table_id: int, pk: int) -> bytes:
    """Build the split key of a `row_v1` table row.

    `0x20 || table_id (u64 BE) || 0x02 0x00 || (pk XOR 2^63) (u64 BE)`: flipping the sign
    bit makes signed primary keys sort in byte order.

    Args:
        table_id: HoloFusion table id, 0 <= table_id < 2**64.
        pk: signed 64-bit primary key value.

    Returns:
        The 19-byte split key.

    Raises:
        TypeError: an argument is not an int (bool included).
        ValueError: an argument is outside its 64-bit range.
    """
    if not isinstance(table_id, int) or isinstance(table_id, bool):
        raise TypeError(f"table_id must be an int, got {type(table_id).__name__}")
    if not isinstance(pk, int) or isinstance(pk, bool):
        raise TypeError(f"pk must be an int, got {type(pk).__name__}")
    if not 0 <= table_id <= _U64_MAX:
        raise ValueError(f"table_id must be in [0, 2**64 - 1], got {table_id}")
    if not _I64_MIN <= pk <= _I64_MAX:
        raise ValueError(f"pk must be a signed 64-bit integer, got {pk}")
    encoded_pk = (pk & _U64_MAX) ^ _SIGN_BIT
    return _ROW_V1_TAG + table_id.to_bytes(8, "big") + _PK_SEPARATOR + encoded_pk.to_bytes(8, "big")


def to_hex(key: bytes) -> str:
    """Lowercase hex without a `0x` prefix, the form `holoctl split --hex --split-key` takes."""
    return bytes(key).hex()


def from_hex(text: str) -> bytes:
    """Parse the hex form back into bytes (no `0x` prefix, even length), like holoctl does.

    Raises:
        ValueError: the text is not an even-length run of hex digits.
    """
    if len(text) % 2 != 0:
        raise ValueError(f"hex string must have even length, got {len(text)} characters")
    if not _HEX_RE.fullmatch(text):
        raise ValueError(f"invalid hex character in split key {text!r}")
    return bytes.fromhex(text)
