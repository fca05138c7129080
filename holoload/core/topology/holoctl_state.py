"""Parse `holoctl state` cluster-state JSON into a `Topology` with holoctl topology's rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from holoload.core.topology.model import (
    NO_SHARD,
    RECORDS_UNKNOWN,
    ROLE_LEASEHOLDER,
    ROLE_REPLICA,
    Placement,
    SplitHealth,
    Topology,
    any_unknown_records,
    format_range,
    id_sort_key,
)


def parse_state(text: str) -> Topology:
    """Build a `Topology` from `holoctl state` JSON.

    One placement per (shard, replica member), role leaseholder/replica, ordered by node then
    shard like `holoctl topology`; a member holding no replica gets holoctl's "-" row.
    Record counts are not in the state JSON: they are None with records_text "n/a" (fill them
    with `Topology.with_records`). The STATE column is derived from `shard_rebalances` and
    `shard_merges` as holoctl does. Unknown fields are ignored.

    Raises:
        ValueError: not JSON, or a required field is missing or mistyped (the message gives
            its path, e.g. "shards[1].start_key").
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"holoctl state is not JSON: {exc}") from None
    root = _obj(doc, "<top level>")
    members = _members(_obj(root.get("members"), "members"))
    shards = _shards(_list(root.get("shards"), "shards"))
    moves = _moves(root.get("shard_rebalances", {}))
    merges = _merges(root.get("shard_merges", {}))

    placements: list[Placement] = []
    for node_id, node_state in members:
        held = False
        for shard in shards:
            if node_id not in shard.replicas:
                continue
            held = True
            move = _move(node_id, shard.shard_id, moves)
            row_state = _row_state(merges.get(shard.shard_id, ""), move)
            placements.append(
                Placement(
                    node_id=str(node_id),
                    node_state=node_state,
                    role=ROLE_LEASEHOLDER if shard.leaseholder == node_id else ROLE_REPLICA,
                    shard_id=str(shard.shard_id),
                    range_text=format_range(shard.start_key, shard.end_key),
                    records=None,
                    records_text=RECORDS_UNKNOWN,
                    state=row_state,
                )
            )
        if not held:
            placements.append(Placement(str(node_id), node_state, NO_SHARD, NO_SHARD, NO_SHARD, None, NO_SHARD))
    # holoctl sorts rows by (node, shard) numerically, "-" counting as 0; the sort is stable.
    placements.sort(key=lambda p: (id_sort_key(p.node_id), _shard_order(p.shard_id)))
    split = _split_health(root.get("split_health", {}))
    return Topology(tuple(placements), split, partial=any_unknown_records(placements))


@dataclass(frozen=True, slots=True)
class _Shard:
    shard_id: int
    start_key: bytes
    end_key: bytes
    replicas: tuple[int, ...]
    leaseholder: int


def _shard_order(shard_id: str) -> int:
    return int(shard_id) if shard_id.isascii() and shard_id.isdigit() else 0


def _malformed(path: str, expected: str) -> ValueError:
    # Wrongly typed JSON is bad input, hence ValueError rather than TypeError.
    return ValueError(f"holoctl state: {path}: expected {expected}")


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(path, f"an object, got {_kind(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _malformed(path, f"an array, got {_kind(value)}")
    return value


def _uint(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _malformed(path, f"a non-negative integer, got {value!r}")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _malformed(path, f"a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _key(value: Any, path: str) -> bytes:
    items = _list(value, path)
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in items):
        raise _malformed(path, "an array of byte values 0..255")
    return bytes(items)


def _members(raw: Mapping[str, Any]) -> list[tuple[int, str]]:
    members: list[tuple[int, str]] = []
    for key, value in raw.items():
        member = _obj(value, f"members.{key}")
        fallback = int(key) if key.isascii() and key.isdigit() else None
        node_id = _uint(member.get("node_id", fallback), f"members.{key}.node_id")
        members.append((node_id, _str(member.get("state"), f"members.{key}.state")))
    members.sort(key=lambda m: m[0])
    return members


def _shards(raw: list[Any]) -> list[_Shard]:
    shards: list[_Shard] = []
    for i, value in enumerate(raw):
        path = f"shards[{i}]"
        shard = _obj(value, path)
        replicas = _list(shard.get("replicas"), f"{path}.replicas")
        shards.append(
            _Shard(
                shard_id=_uint(shard.get("shard_id"), f"{path}.shard_id"),
                start_key=_key(shard.get("start_key"), f"{path}.start_key"),
                end_key=_key(shard.get("end_key"), f"{path}.end_key"),
                replicas=tuple(_uint(r, f"{path}.replicas[{j}]") for j, r in enumerate(replicas)),
                leaseholder=_uint(shard.get("leaseholder"), f"{path}.leaseholder"),
            )
        )
    return shards


def _moves(raw: Any) -> dict[int, tuple[int, int, str]]:
    moves: dict[int, tuple[int, int, str]] = {}
    for key, value in _obj(raw, "shard_rebalances").items():
        if not (key.isascii() and key.isdigit()):
            continue  # holoctl skips keys that are not shard ids
        path = f"shard_rebalances.{key}"
        move = _obj(value, path)
        moves[int(key)] = (
            _uint(move.get("from_node"), f"{path}.from_node"),
            _uint(move.get("to_node"), f"{path}.to_node"),
            _str(move.get("phase"), f"{path}.phase"),
        )
    return moves


def _move(node_id: int, shard_id: int, moves: Mapping[int, tuple[int, int, str]]) -> str:
    move = moves.get(shard_id)
    if move is None:
        return ""
    from_node, to_node, phase = move
    if node_id == to_node:
        return f"in:{phase}"
    if node_id == from_node:
        return f"out:{phase}"
    return ""


def _merges(raw: Any) -> dict[int, str]:
    statuses: dict[int, str] = {}
    for key, value in _obj(raw, "shard_merges").items():
        path = f"shard_merges.{key}"
        merge = _obj(value, path)
        left = _uint(merge.get("left_shard_id"), f"{path}.left_shard_id")
        right = _uint(merge.get("right_shard_id"), f"{path}.right_shard_id")
        phase = _str(merge.get("phase"), f"{path}.phase")
        for shard_id, side in ((left, "left"), (right, "right")):
            statuses[shard_id] = _merge_status(side, phase, merge)
    return statuses


def _merge_status(side: str, phase: str, merge: Mapping[str, Any]) -> str:
    parts = [f"{side}:{phase}"]
    if merge.get("paused") is True:
        parts.append("paused")
    for field, label, unit in (
        ("copied_rows", "rows", ""),
        ("copied_bytes", "bytes", ""),
        ("lag_ops", "lag", ""),
        ("retry_count", "retries", ""),
        ("eta_seconds", "eta", "s"),
    ):
        value = merge.get(field, 0)
        if isinstance(value, int) and value > 0:
            parts.append(f"{label}={value}{unit}")
    last_error = merge.get("last_error", "")
    if isinstance(last_error, str) and last_error:
        parts.append(f"err={last_error}")
    return " ".join(parts)


def _row_state(merge_status: str, move_status: str) -> str:
    if merge_status and move_status:
        return f"BUG merge={merge_status} move={move_status}"
    return merge_status or move_status


def _split_health(raw: Any) -> SplitHealth:
    health = _obj(raw, "split_health")

    def count(name: str) -> int:
        return _uint(health.get(name, 0), f"split_health.{name}")

    reasons = _obj(health.get("attempt_reasons", {}), "split_health.attempt_reasons")
    attempts_by = sorted(
        ((str(k), _uint(v, f"split_health.attempt_reasons.{k}")) for k, v in reasons.items()),
        key=lambda item: (-item[1], item[0]),
    )
    return SplitHealth(
        attempts=count("attempts"),
        successes=count("successes"),
        failures=count("failures"),
        transient=count("transient_aborts"),
        backoff=count("backoff_active"),
        attempts_by=tuple(attempts_by),
    )
