"""Pure topology input parsing: SQL rows mapped by column name, topology JSON, table/state merge."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.model import (
    RECORDS_UNKNOWN,
    ROLE_LEASEHOLDER,
    ROLE_REPLICA,
    Placement,
    SplitHealth,
    Topology,
    any_unknown_records,
    format_count,
    format_range,
    id_sort_key,
)

#: Node state written when a source does not say.
NODE_STATE_UNKNOWN = "Unknown"


def merge_table_records(state: Topology, table: Topology) -> tuple[Topology, list[str]]:
    """Fill a state-derived topology's record counts from a parsed table.

    Args:
        state: from `parse_state` (records unknown).
        table: from `parse_table` of the same cluster.

    Returns:
        The state topology with the table's count (or its ERR/n/a text) on every row whose
        (node, shard) and range the table shows identically, and the "node N shard S" rows
        the table did not match (their counts stay unknown).
    """
    rows = {(p.node_id, p.shard_id): p for p in table.placements if p.holds_shard}
    records: dict[tuple[str, str], int | str | None] = {}
    unmatched: list[str] = []
    for placement in state.placements:
        if not placement.holds_shard:
            continue
        row = rows.get((placement.node_id, placement.shard_id))
        if row is None or row.range_text != placement.range_text:
            unmatched.append(f"node {placement.node_id} shard {placement.shard_id}")
            continue
        records[(placement.node_id, placement.shard_id)] = row.records if row.records is not None else row.records_text
    return state.with_records(records), unmatched


#: Model fields a query's columns map to (see SqlQuerySource).
QUERY_FIELDS = frozenset(
    {
        "shard_id",
        "start_key",
        "end_key",
        "range",
        "replicas",
        "node_id",
        "leaseholder",
        "records",
        "node_state",
        "state",
    }
)


#: CockroachDB (v23.1+), one row per range: `SHOW RANGES FROM TABLE t WITH DETAILS` has no
#: row counts, so records stay unknown. Not tested here (no CockroachDB in CI).
COCKROACH_RANGES_QUERY = (
    "SELECT range_id, start_key, end_key, replicas, lease_holder FROM [SHOW RANGES FROM TABLE {table} WITH DETAILS]"
)


COCKROACH_COLUMNS: Mapping[str, str] = {
    "shard_id": "range_id",
    "start_key": "start_key",
    "end_key": "end_key",
    "replicas": "replicas",
    "leaseholder": "lease_holder",
}


def check_columns(columns: Mapping[str, str]) -> None:
    """Validate a model field -> column mapping (see SqlQuerySource).

    Raises:
        ValueError: unknown field, no `shard_id`, or not exactly one of `replicas`/`node_id`.
    """
    unknown = sorted(set(columns) - QUERY_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown topology column field(s) {', '.join(unknown)}; known: {', '.join(sorted(QUERY_FIELDS))}"
        )
    if "shard_id" not in columns:
        raise ValueError("topology columns must map 'shard_id'")
    if ("replicas" in columns) == ("node_id" in columns):
        raise ValueError(
            "topology columns must map exactly one of 'replicas' (row per shard) or 'node_id' (row per replica)"
        )
    if "range" in columns and ({"start_key", "end_key"} & columns.keys()):
        raise ValueError("topology columns map either 'range' or 'start_key'/'end_key', not both")


def topology_from_rows(
    rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], *, node_state: str = NODE_STATE_UNKNOWN
) -> Topology:
    """Map query rows to a Topology (pure; see SqlQuerySource for the shapes).

    Args:
        rows: result rows as column -> value.
        columns: model field -> column name (validated with `check_columns`).
        node_state: node state where none is mapped.

    Returns:
        The topology, placements ordered by node then shard, split None.

    Raises:
        ValueError: a mapped column is missing from a row or holds a value of the wrong kind
            (the message names the row and column), or a node holds a shard twice.
    """
    check_columns(columns)
    placements: list[Placement] = []
    for i, row in enumerate(rows, start=1):
        cell = _Cells(row, columns, i)
        shard_id = cell.ident("shard_id")
        range_text = cell.text("range") if "range" in columns else _key_range(cell)
        records = cell.count("records")
        state = cell.text("state") if "state" in columns else ""
        if "replicas" in columns:
            leaseholder = cell.optional_ident("leaseholder")
            for node_id in cell.replicas():
                role = ROLE_LEASEHOLDER if node_id == leaseholder else ROLE_REPLICA
                placements.append(_placement(node_id, node_state, role, shard_id, range_text, records, state))
        else:
            node_id = cell.ident("node_id")
            lease = row.get(columns["leaseholder"]) if "leaseholder" in columns else None
            is_leaseholder = lease if isinstance(lease, bool) else cell.optional_ident("leaseholder") == node_id
            role = ROLE_LEASEHOLDER if is_leaseholder else ROLE_REPLICA
            own_state = cell.text("node_state") if "node_state" in columns else node_state
            placements.append(_placement(node_id, own_state, role, shard_id, range_text, records, state))
    placements.sort(key=lambda p: (id_sort_key(p.node_id), id_sort_key(p.shard_id)))
    return Topology(tuple(placements), None, partial=any_unknown_records(placements))


def _placement(
    node_id: str, node_state: str, role: str, shard_id: str, range_text: str, records: int | None, state: str
) -> Placement:
    text = RECORDS_UNKNOWN if records is None else format_count(records)
    return Placement(node_id, node_state, role, shard_id, range_text, records, text, state)


def _key_range(cell: _Cells) -> str:
    return format_range(cell.key("start_key"), cell.key("end_key"))


_LIST_SPLIT = re.compile(r"[\s,{}\[\]]+")


class _Cells:
    """Typed access to one mapped row; errors name the row and the column."""

    def __init__(self, row: Mapping[str, Any], columns: Mapping[str, str], index: int) -> None:
        self.row = row
        self.columns = columns
        self.index = index

    def _value(self, field: str) -> Any:
        column = self.columns[field]
        if column not in self.row:
            have = ", ".join(self.row) or "none"
            raise ValueError(f"row {self.index}: no column {column!r} (mapped from {field}); columns: {have}")
        return self.row[column]

    def _bad(self, field: str, expected: str, value: Any) -> ValueError:
        column = self.columns[field]
        return ValueError(f"row {self.index}: column {column!r} ({field}): expected {expected}, got {value!r}")

    def optional_ident(self, field: str) -> str | None:
        if field not in self.columns or self._value(field) is None:
            return None
        return self.ident(field)

    def ident(self, field: str) -> str:
        value = self._value(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value:
            return value
        raise self._bad(field, "an id (integer or text)", value)

    def text(self, field: str) -> str:
        value = self._value(field)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        raise self._bad(field, "text", value)

    def count(self, field: str) -> int | None:
        if field not in self.columns:
            return None
        value = self._value(field)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise self._bad(field, "a non-negative integer or NULL", value)

    def key(self, field: str) -> bytes | None:
        if field not in self.columns:
            return None
        value = self._value(field)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value).encode("ascii")
        raise self._bad(field, "bytes, text or an integer", value)

    def replicas(self) -> list[str]:
        value = self._value("replicas")
        if isinstance(value, str):
            items: list[Any] = [v for v in _LIST_SPLIT.split(value) if v]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise self._bad("replicas", "an array of node ids or text like '{1,2,3}'", value)
        out: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | str) or item == "":
                raise self._bad("replicas", "node ids", value)
            out.append(str(item))
        return out


def parse_topology_json(text: str) -> Topology:
    """Parse a topology printed as JSON.

    Shapes: `holoctl state` JSON (has `members` and `shards`), or an object with
    `placements`, a list of objects with `node_id` and `shard_id` (integers or text) and
    optional `node_state` (default "Unknown"), `role` (default "replica"), `range_text`
    (default "n/a"), `records` (integer or null, default null), `records_text` (default
    derived from records), `state` (default ""); and an optional `split` object (`attempts`,
    `successes`, `failures`, `transient`, `backoff`, `attempts_by` as {reason: count}) or
    null. `Topology.to_dict()` output is accepted as is; its derived keys and `partial` are
    recomputed, not read.

    Raises:
        ValueError: not JSON or a field is missing or mistyped (the message gives its path).
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object, got {type(doc).__name__}")
    if "members" in doc and "shards" in doc:
        return parse_state(text)
    rows = doc.get("placements")
    if not isinstance(rows, list):
        raise ValueError("placements: expected an array")
    placements = [_json_placement(row, f"placements[{i}]") for i, row in enumerate(rows)]
    split = None if doc.get("split") is None else _json_split(doc["split"])
    return Topology(tuple(placements), split, partial=any_unknown_records(placements))


def _json_placement(row: Any, path: str) -> Placement:
    if not isinstance(row, dict):
        raise ValueError(f"{path}: expected an object")

    def ident(key: str) -> str:
        value = row.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value:
            return value
        raise ValueError(f"{path}.{key}: expected an id (integer or text), got {value!r}")

    def text(key: str, default: str) -> str:
        value = row.get(key, default)
        if not isinstance(value, str):
            raise ValueError(f"{path}.{key}: expected text, got {value!r}")
        return value

    records = row.get("records")
    if records is not None and (not isinstance(records, int) or isinstance(records, bool) or records < 0):
        raise ValueError(f"{path}.records: expected a non-negative integer or null, got {records!r}")
    default_text = RECORDS_UNKNOWN if records is None else format_count(records)
    return Placement(
        node_id=ident("node_id"),
        node_state=text("node_state", NODE_STATE_UNKNOWN),
        role=text("role", ROLE_REPLICA),
        shard_id=ident("shard_id"),
        range_text=text("range_text", RECORDS_UNKNOWN),
        records=records,
        records_text=text("records_text", default_text),
        state=text("state", ""),
    )


def _json_split(raw: Any) -> SplitHealth:
    if not isinstance(raw, dict):
        raise ValueError("split: expected an object or null")

    def count(key: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"split.{key}: expected a non-negative integer, got {value!r}")
        return value

    reasons = raw.get("attempts_by", {})
    if not isinstance(reasons, dict):
        raise ValueError("split.attempts_by: expected an object of reason: count")
    attempts_by = sorted(
        ((str(k), count(f"attempts_by.{k}", v)) for k, v in reasons.items()), key=lambda item: (-item[1], item[0])
    )
    return SplitHealth(
        attempts=count("attempts", raw.get("attempts", 0)),
        successes=count("successes", raw.get("successes", 0)),
        failures=count("failures", raw.get("failures", 0)),
        transient=count("transient", raw.get("transient", 0)),
        backoff=count("backoff", raw.get("backoff", 0)),
        attempts_by=tuple(attempts_by),
    )
