"""One normalised cluster topology that holoctl state JSON, holoctl tables and PostgreSQL map to.

A `Topology` is a tuple of `Placement` rows (one per node x shard replica, in holoctl's
row order) plus the split-controller health. Display helpers (`format_range`,
`format_count`) reproduce holoctl's text exactly so that rendering stays byte-faithful.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

ROLE_LEASEHOLDER = "leaseholder"
ROLE_REPLICA = "replica"
# holoctl prints one row of "-" cells for a member that holds no shard replica.
NO_SHARD = "-"
RECORDS_UNKNOWN = "n/a"

# holoctl's DEFAULT_RANGE_BOUND_MAX_CHARS.
RANGE_BOUND_MAX_CHARS = 24


@dataclass(frozen=True, slots=True)
class Placement:
    """One holoctl topology row: a node's replica of one shard (or a member with no shard).

    Args:
        node_id: node id as printed ("1").
        node_state: membership state ("Active", "Removed", ...).
        role: "leaseholder", "replica", or "-" for a member holding no shard.
        shard_id: shard id as printed ("1"), or "-".
        range_text: the RANGE cell ("all_keys", "[start, 0x2000...c350)").
        records: local record count, or None when unknown (unreachable node, "n/a", "-").
        records_text: the RECORDS cell as printed ("49,999", "ERR(Timeout)", "n/a").
        state: the STATE cell (move/merge status; usually empty).
    """

    node_id: str
    node_state: str
    role: str
    shard_id: str
    range_text: str
    records: int | None
    records_text: str
    state: str = ""

    @property
    def holds_shard(self) -> bool:
        """False for the "-" row holoctl prints for a member without replicas."""
        return self.shard_id != NO_SHARD

    @property
    def is_leaseholder(self) -> bool:
        """True when this node holds the shard's lease."""
        return self.role == ROLE_LEASEHOLDER

    def with_records(self, value: int | str | None) -> Placement:
        """Copy with a count (int), a display text ("ERR(Timeout)") or unknown (None)."""
        if value is None:
            return replace(self, records=None, records_text=RECORDS_UNKNOWN)
        if isinstance(value, str):
            return replace(self, records=None, records_text=value)
        return replace(self, records=value, records_text=format_count(value))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "node_id": self.node_id,
            "node_state": self.node_state,
            "role": self.role,
            "shard_id": self.shard_id,
            "range_text": self.range_text,
            "records": self.records,
            "records_text": self.records_text,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class SplitHealth:
    """Range-split controller counters as holoctl reports them.

    Args:
        attempts: split attempts.
        successes: successful splits.
        failures: failed splits.
        transient: transient aborts (holoctl `transient_aborts`).
        backoff: splits currently in backoff (holoctl `backoff_active`).
        attempts_by: (reason, count) pairs, most frequent first; a parsed table holds only
            the top two that holoctl prints.
    """

    attempts: int = 0
    successes: int = 0
    failures: int = 0
    transient: int = 0
    backoff: int = 0
    attempts_by: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (attempts_by as an ordered mapping)."""
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": self.failures,
            "transient": self.transient,
            "backoff": self.backoff,
            "attempts_by": dict(self.attempts_by),
        }


@dataclass(frozen=True, slots=True)
class Topology:
    """Cluster topology: placements in holoctl row order, split health, and completeness.

    Args:
        placements: one row per (node, shard) replica, plus "-" rows for empty members.
        split: split controller health, or None when the source has none (e.g. PostgreSQL).
        partial: True when some record counts are unknown (holoctl's "(partial)" totals).

    Raises:
        ValueError: the same (node, shard) pair appears twice.
    """

    placements: tuple[Placement, ...]
    split: SplitHealth | None = None
    partial: bool = False

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        for placement in self.placements:
            pair = (placement.node_id, placement.shard_id)
            if pair in seen:
                raise ValueError(f"node {placement.node_id} holds shard {placement.shard_id} twice")
            seen.add(pair)

    def _by_shard(self) -> dict[str, list[Placement]]:
        by_shard: dict[str, list[Placement]] = {}
        for placement in self.placements:
            if placement.holds_shard:
                by_shard.setdefault(placement.shard_id, []).append(placement)
        return by_shard

    @property
    def shard_ids(self) -> tuple[str, ...]:
        """Distinct shard ids, numerically ordered."""
        return tuple(sorted(self._by_shard(), key=id_sort_key))

    @property
    def shard_count(self) -> int:
        """Number of distinct shards."""
        return len(self._by_shard())

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Distinct node ids (including members holding no shard), numerically ordered."""
        return tuple(sorted({p.node_id for p in self.placements}, key=id_sort_key))

    @property
    def node_states(self) -> dict[str, str]:
        """Node id -> membership state, numerically ordered by node id."""
        states: dict[str, str] = {}
        for placement in self.placements:
            states.setdefault(placement.node_id, placement.node_state)
        return {node: states[node] for node in sorted(states, key=id_sort_key)}

    @property
    def unique_records(self) -> int:
        """Records, each shard counted once: its leaseholder row, else its first counted row."""
        total = 0
        for rows in self._by_shard().values():
            counted = [p for p in rows if p.records is not None]
            chosen = next((p for p in counted if p.is_leaseholder), None)
            if chosen is None and counted:
                chosen = counted[0]
            if chosen is not None and chosen.records is not None:
                total += chosen.records
        return total

    @property
    def replicated_records(self) -> int:
        """Sum of every row whose record count is known."""
        return sum(p.records for p in self.placements if p.records is not None)

    def for_shard(self, shard_id: str) -> tuple[Placement, ...]:
        """Placements of one shard in row order (empty when unknown)."""
        return tuple(self._by_shard().get(shard_id, ()))

    def with_records(self, records: Mapping[tuple[str, str], int | str | None]) -> Topology:
        """Fill record counts per (node_id, shard_id); `partial` is recomputed.

        Args:
            records: (node_id, shard_id) -> count, display text ("ERR(Timeout)"), or None
                for unknown. Pairs not mentioned keep their current value.

        Returns:
            A new Topology.
        """
        placements = tuple(
            p.with_records(records[(p.node_id, p.shard_id)])
            if (p.node_id, p.shard_id) in records and p.holds_shard
            else p
            for p in self.placements
        )
        return Topology(placements, self.split, partial=any_unknown_records(placements))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict including the derived totals."""
        return {
            "placements": [p.to_dict() for p in self.placements],
            "split": None if self.split is None else self.split.to_dict(),
            "partial": self.partial,
            "shard_ids": list(self.shard_ids),
            "shard_count": self.shard_count,
            "node_ids": list(self.node_ids),
            "unique_records": self.unique_records,
            "replicated_records": self.replicated_records,
        }


def any_unknown_records(placements: Iterable[Placement]) -> bool:
    """True when some shard-holding row has no record count."""
    return any(p.holds_shard and p.records is None for p in placements)


def id_sort_key(value: str) -> tuple[int, int, str]:
    """Order numeric ids numerically, then any other text."""
    if value.isascii() and value.isdigit():
        return (0, int(value), "")
    return (1, 0, value)


def format_count(n: int) -> str:
    """Integer with `,` thousands separators, as holoctl prints counts: 49999 -> "49,999"."""
    return f"{n:,}"


def format_range(start: bytes | None, end: bytes | None) -> str:
    """holoctl's RANGE cell for a shard's [start, end) keys; None or b"" is unbounded.

    Returns:
        "all_keys" when both ends are unbounded, otherwise "[<start>, <end>)" where each bound
        is "start"/"end", the key as text when it is UTF-8 without control characters, or
        "0x<hex>"; bounds longer than 24 characters are cut in the middle with "...".
    """
    if not start and not end:
        return "all_keys"
    return f"[{format_key_bound(start, is_start=True)}, {format_key_bound(end, is_start=False)})"


def format_key_bound(key: bytes | None, *, is_start: bool) -> str:
    """One range bound as holoctl prints it (see `format_range`)."""
    if not key:
        return "start" if is_start else "end"
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not any(unicodedata.category(c) == "Cc" for c in text):
        return truncate_middle(text, RANGE_BOUND_MAX_CHARS)
    return truncate_middle("0x" + bytes(key).hex(), RANGE_BOUND_MAX_CHARS)


def truncate_middle(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars` characters around "..." (the head gets the odd one)."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 3:
        return "." * max_chars
    keep = max_chars - 3
    head = (keep + 1) // 2
    tail = keep // 2
    return f"{text[:head]}...{text[len(text) - tail :]}"
