"""Compare two topology readings into typed changes, and summarise one reading as gate series."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from holoload.core.topology.model import Placement, SplitHealth, Topology, format_count, id_sort_key

# Change kinds, in the order diff() reports them within each section.
INITIAL = "initial"
NODE_ADDED = "node_added"
NODE_REMOVED = "node_removed"
NODE_STATE_CHANGED = "node_state_changed"
SHARD_ADDED = "shard_added"
SHARD_REMOVED = "shard_removed"
RANGE_CHANGED = "range_changed"
LEASEHOLDER_MOVED = "leaseholder_moved"
REPLICAS_CHANGED = "replicas_changed"
SHARD_STATE_CHANGED = "shard_state_changed"
RECORDS_PARTIAL = "records_partial"
RECORDS_RECOVERED = "records_recovered"
SPLIT_ATTEMPTED = "split_attempted"
SPLIT_SUCCEEDED = "split_succeeded"
SPLIT_FAILED = "split_failed"
SPLIT_COUNTERS_RESET = "split_counters_reset"

#: The value of a summary() key.
SummaryValue = int | bool | dict[str, int]


@dataclass(frozen=True, slots=True)
class TopologyChange:
    """One difference between two topology readings.

    Args:
        kind: what changed, one of the module's kind constants ("shard_added", ...).
        subject: what it is about: "topology", "node 3", "shard 2", "split".
        before: the old value as text, or None when there was none (a new shard's leaseholder).
        after: the new value as text, or None when there is none (a removed shard's replicas).
    """

    kind: str
    subject: str
    before: str | None
    after: str | None

    def to_dict(self) -> dict[str, str | None]:
        """Plain JSON-ready dict."""
        return {"kind": self.kind, "subject": self.subject, "before": self.before, "after": self.after}


@dataclass(frozen=True, slots=True)
class _ShardView:
    range_text: str
    leaseholder: str | None
    replicas: str
    state: str | None


def diff(before: Topology | None, after: Topology) -> list[TopologyChange]:
    """The changes from `before` to `after`, in a deterministic order.

    Sections come in this order: nodes (by id: added, removed, state changed); shards (by id:
    added/removed carrying the range, range changed, leaseholder moved, replicas changed,
    shard state changed); record counts per node (records_partial when counts known before
    became unknown, records_recovered the other way, comparing (node, shard) pairs present
    in both); split counters (attempted, succeeded, failed, or one split_counters_reset when
    any counter went down, e.g. after a cluster restart).

    A shard's leaseholder and replicas are compared with None standing for an absent shard,
    so a new shard also reports leaseholder_moved and replicas_changed from None, and a
    removed one to None: filtering by kind then shows where every lease went. Record counts
    themselves are data, not topology: they change on every write and are never reported.
    Split counters are compared only when both readings have them.

    Args:
        before: the previous reading, or None for the first one.
        after: the current reading.

    Returns:
        The changes; empty when nothing changed. With no `before`, one "initial" change whose
        `after` is `summary_text(after)`.
    """
    if before is None:
        return [TopologyChange(INITIAL, "topology", None, summary_text(after))]
    changes = _node_changes(before, after)
    changes += _shard_changes(before, after)
    changes += _record_changes(before, after)
    if before.split is not None and after.split is not None:
        changes += _split_changes(before.split, after.split)
    return changes


def summary(topology: Topology) -> dict[str, SummaryValue]:
    """The reading as series values for gates (`max(topology.shards)`, `delta(split.successes)`).

    Args:
        topology: one reading.

    Returns:
        `shards`, `nodes`, `states` (node count per membership state), `unique_records`,
        `replicated_records` (both count only known records), `partial`, and, when the
        reading has split health, `split.attempts`, `split.successes`, `split.failures`,
        `split.transient`, `split.backoff`.
    """
    out: dict[str, SummaryValue] = {
        "shards": topology.shard_count,
        "nodes": len(topology.node_ids),
        "states": _state_counts(topology),
        "unique_records": topology.unique_records,
        "replicated_records": topology.replicated_records,
        "partial": topology.partial,
    }
    if topology.split is not None:
        out["split.attempts"] = topology.split.attempts
        out["split.successes"] = topology.split.successes
        out["split.failures"] = topology.split.failures
        out["split.transient"] = topology.split.transient
        out["split.backoff"] = topology.split.backoff
    return out


def summary_text(topology: Topology) -> str:
    """One line for people: "3 nodes (Active: 3), 2 shards, 90,000 unique records, split 1/1 ok, 0 failed".

    Args:
        topology: one reading.

    Returns:
        The line; record totals end in " (partial)" when some counts are unknown.
    """
    states = ", ".join(f"{state}: {count}" for state, count in sorted(_state_counts(topology).items()))
    partial = " (partial)" if topology.partial else ""
    parts = [
        f"{_plural(len(topology.node_ids), 'node')} ({states or '-'})",
        _plural(topology.shard_count, "shard"),
        f"{format_count(topology.unique_records)} unique records{partial}",
        f"{format_count(topology.replicated_records)} replicated{partial}",
    ]
    if topology.split is not None:
        split = topology.split
        parts.append(f"split {split.successes}/{split.attempts} ok, {split.failures} failed")
    return ", ".join(parts)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _state_counts(topology: Topology) -> dict[str, int]:
    counts = Counter(topology.node_states.values())
    return {state: counts[state] for state in sorted(counts)}


def _node_changes(before: Topology, after: Topology) -> list[TopologyChange]:
    old, new = before.node_states, after.node_states
    changes: list[TopologyChange] = []
    for node in sorted(old.keys() | new.keys(), key=id_sort_key):
        subject = f"node {node}"
        if node not in old:
            changes.append(TopologyChange(NODE_ADDED, subject, None, new[node]))
        elif node not in new:
            changes.append(TopologyChange(NODE_REMOVED, subject, old[node], None))
        elif old[node] != new[node]:
            changes.append(TopologyChange(NODE_STATE_CHANGED, subject, old[node], new[node]))
    return changes


def _shard_views(topology: Topology) -> dict[str, _ShardView]:
    views: dict[str, _ShardView] = {}
    for shard_id in topology.shard_ids:
        rows = topology.for_shard(shard_id)
        # Replicas of one shard print the same range; if a source disagrees, show every variant.
        ranges = list(dict.fromkeys(p.range_text for p in rows))
        leaseholders = sorted({p.node_id for p in rows if p.is_leaseholder}, key=id_sort_key)
        states = [f"node {p.node_id}: {p.state}" for p in _by_node(rows) if p.state]
        views[shard_id] = _ShardView(
            range_text=" | ".join(ranges),
            leaseholder=",".join(leaseholders) or None,
            replicas=",".join(sorted({p.node_id for p in rows}, key=id_sort_key)),
            state="; ".join(states) or None,
        )
    return views


def _by_node(rows: tuple[Placement, ...]) -> list[Placement]:
    return sorted(rows, key=lambda p: id_sort_key(p.node_id))


def _shard_changes(before: Topology, after: Topology) -> list[TopologyChange]:
    old, new = _shard_views(before), _shard_views(after)
    changes: list[TopologyChange] = []
    for shard_id in sorted(old.keys() | new.keys(), key=id_sort_key):
        subject = f"shard {shard_id}"
        was, now = old.get(shard_id), new.get(shard_id)
        if was is None and now is not None:
            changes.append(TopologyChange(SHARD_ADDED, subject, None, now.range_text))
        elif was is not None and now is None:
            changes.append(TopologyChange(SHARD_REMOVED, subject, was.range_text, None))
        elif was is not None and now is not None and was.range_text != now.range_text:
            changes.append(TopologyChange(RANGE_CHANGED, subject, was.range_text, now.range_text))
        pairs = (
            (LEASEHOLDER_MOVED, _get(was, "leaseholder"), _get(now, "leaseholder")),
            (REPLICAS_CHANGED, _get(was, "replicas"), _get(now, "replicas")),
            (SHARD_STATE_CHANGED, _get(was, "state"), _get(now, "state")),
        )
        changes.extend(TopologyChange(kind, subject, a, b) for kind, a, b in pairs if a != b)
    return changes


def _get(view: _ShardView | None, field: str) -> str | None:
    """A shard attribute, None for an absent shard."""
    if view is None:
        return None
    return {"leaseholder": view.leaseholder, "replicas": view.replicas, "state": view.state}[field]


def _record_changes(before: Topology, after: Topology) -> list[TopologyChange]:
    old = {(p.node_id, p.shard_id): p for p in before.placements if p.holds_shard}
    lost: dict[str, list[tuple[Placement, Placement]]] = {}
    regained: dict[str, list[tuple[Placement, Placement]]] = {}
    for placement in after.placements:
        previous = old.get((placement.node_id, placement.shard_id))
        if previous is None or not placement.holds_shard:
            continue
        if previous.records is not None and placement.records is None:
            lost.setdefault(placement.node_id, []).append((previous, placement))
        elif previous.records is None and placement.records is not None:
            regained.setdefault(placement.node_id, []).append((previous, placement))
    changes: list[TopologyChange] = []
    for node in sorted(lost.keys() | regained.keys(), key=id_sort_key):
        for kind, group in ((RECORDS_PARTIAL, lost.get(node)), (RECORDS_RECOVERED, regained.get(node))):
            if group:
                ordered = sorted(group, key=lambda pair: id_sort_key(pair[1].shard_id))
                was = ", ".join(f"shard {a.shard_id}: {a.records_text}" for a, _ in ordered)
                now = ", ".join(f"shard {b.shard_id}: {b.records_text}" for _, b in ordered)
                changes.append(TopologyChange(kind, f"node {node}", was, now))
    return changes


def _split_changes(before: SplitHealth, after: SplitHealth) -> list[TopologyChange]:
    counters = (
        (SPLIT_ATTEMPTED, before.attempts, after.attempts),
        (SPLIT_SUCCEEDED, before.successes, after.successes),
        (SPLIT_FAILED, before.failures, after.failures),
    )
    if any(b < a for _, a, b in counters):
        return [TopologyChange(SPLIT_COUNTERS_RESET, "split", _split_text(before), _split_text(after))]
    return [TopologyChange(kind, "split", str(a), str(b)) for kind, a, b in counters if b != a]


def _split_text(split: SplitHealth) -> str:
    return f"attempts {split.attempts}, successes {split.successes}, failures {split.failures}"
