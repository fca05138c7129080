"""check(history, model) -> CheckResult: the list-append isolation checker (Kingsbury and Alvaro's Elle method).

Steps: index appends and reads, infer each key's version order and the non-cycle anomalies (versions.py);
build ww/wr/rw edges, plus process or real-time edges when the model asks (graph.py); find the cyclic
strongly connected components; in each, search a shortest cycle of every class (cycles.py), the classes the
model forbids first. The deadline covers the cycle search (components and cycles); a search cut short by
it leaves the verdict "unknown" unless a forbidden anomaly was already found, never "valid".
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from functools import partial

from holoload.core.isolation.cycles import Cycle, SearchExpired, component_graph, find_cycle
from holoload.core.isolation.graph import (
    EDGE_NAMES,
    PROCESS,
    REALTIME,
    RW,
    WR,
    WW,
    EdgeList,
    add_process_edges,
    add_realtime_edges,
    build_edges,
    strongly_connected,
)
from holoload.core.isolation.history import Txn
from holoload.core.isolation.models import CYCLE_CLASSES, AnomalyClass, ConsistencyModel, model_named
from holoload.core.isolation.result import UNKNOWN, Anomaly, AnomalyLog, CheckResult, Step, Validity, describe_txn
from holoload.core.isolation.versions import FAIL, INFO, OK, VersionIndex, index_versions

__all__ = ["Deadline", "check"]


class Deadline:
    """The cycle search's time limit, read from an injected clock (core code never reads the time itself).

    The limit runs from ``arm()``: the checker arms it when the search for cycles begins (components, then
    cycles), after the linear indexing and edge building, which always run to the end.

    Args:
        clock: seconds, monotonic (``time.monotonic`` in the shell, a fake in tests).
        limit_s: seconds allowed from ``arm()``; None for no limit.
    """

    def __init__(self, clock: Callable[[], float], limit_s: float | None) -> None:
        self._clock = clock
        self._end: float | None = None
        self.limit_s = limit_s

    def arm(self) -> None:
        """Start the limit now."""
        if self.limit_s is not None:
            self._end = self._clock() + self.limit_s

    def check(self) -> None:
        """Raise SearchExpired once the armed limit has passed."""
        if self._end is not None and self._clock() >= self._end:
            raise SearchExpired


def check(
    txns: Sequence[Txn],
    model: ConsistencyModel | str = "serializable",
    deadline: Deadline | None = None,
) -> CheckResult:
    """Check a list-append history against a consistency model.

    Args:
        txns: the history (``HistoryBuilder.build()`` or ``parse_history``); ``txns[i].id == i``.
        model: a ``ConsistencyModel`` or its name (read-committed, snapshot-isolation, serializable,
            strong-session-serializable, strict-serializable).
        deadline: the cycle search's time limit (armed here, after the linear passes); when it passes, the
            search stops and forbidden classes not yet ruled out make the verdict "unknown".

    Returns:
        The result: verdict, counts per class, anomalies with their cycles.

    Raises:
        HistoryError: ids out of place or a value appended twice to a key.
        KeyError: an unknown model name.
    """
    m = model_named(model) if isinstance(model, str) else model
    tick = deadline.check if deadline is not None else _never
    classes = [c for c in CYCLE_CLASSES if _searched(c, m)]
    classes.sort(key=lambda c: not m.forbidden(c))  # forbidden classes first (stable: Adya's order within)
    incomplete: list[AnomalyClass] = []
    searched: list[AnomalyClass] = []  # classes whose search finished in every component
    unclassified = 0
    index = index_versions(txns)
    anomalies = index.anomalies  # the cycle classes are added to the same log
    components: list[list[int]] = []
    edges = build_edges(txns, index)
    if m.process:
        add_process_edges(txns, index.status, edges)
    if m.realtime:
        add_realtime_edges(txns, index.status, edges)
    if deadline is not None:
        deadline.arm()
    try:
        tick()
        components = strongly_connected(edges, tick)
        graphs = [component_graph(part) for part in _component_edges(edges, components)]
        found_in: list[set[str]] = [set() for _ in graphs]
        for kind in classes:
            base = _base_name(kind)
            for number, graph in enumerate(graphs):
                if base != kind.value and base in found_in[number]:
                    continue  # the component has a data-only cycle of this class already
                cycle = find_cycle(graph, kind, tick, enumerate_g2=not found_in[number])
                if cycle is not None:
                    found_in[number].add(kind.value)
                    anomalies.add(kind, partial(_cycle_anomaly, kind, cycle, txns, index))
            searched.append(kind)
        # Every cycle is of some class, and all searches but G2-item's are exact; a component where none was
        # found holds only G2-item cycles the shortest-walk search missed (see cycles.py).
        unclassified = sum(1 for found in found_in if not found)
    except SearchExpired:
        incomplete = [c for c in classes if c not in searched]
    return _result(m, txns, index, edges, components, anomalies, incomplete, unclassified)


def _never() -> None:
    """No deadline."""


def _searched(kind: AnomalyClass, m: ConsistencyModel) -> bool:
    if kind.value.endswith("-realtime"):
        return m.realtime
    if kind.value.endswith("-process"):
        return m.process
    return True


def _base_name(kind: AnomalyClass) -> str:
    return kind.value.removesuffix("-realtime").removesuffix("-process")


_MEANING = {
    "G0": "a write cycle: each transaction's append overwrote the next one's (dirty write)",
    "G1c": "circular information flow: each transaction saw or overwrote the next one's appends",
    "G-single": "a cycle with exactly one anti-dependency (read skew, lost update)",
    "G2-item": "a cycle with two or more anti-dependencies (write skew)",
}


def _component_edges(edges: EdgeList, components: list[list[int]]) -> list[list[tuple[int, int, int]]]:
    """The edges inside each component (one pass over all edges; only when there are cyclic components)."""
    if not components:
        return []
    where = array("q", [-1]) * edges.n
    for number, part in enumerate(components):
        for v in part:
            where[v] = number
    buckets: list[list[tuple[int, int, int]]] = [[] for _ in components]
    src, dst, kind = edges.src, edges.dst, edges.kind
    for i, s in enumerate(src):
        c = where[s]
        if c >= 0 and where[dst[i]] == c:
            buckets[c].append((s, dst[i], kind[i]))
    return buckets


def _cycle_anomaly(kind: AnomalyClass, cycle: Cycle, txns: Sequence[Txn], index: VersionIndex) -> Anomaly:
    steps = []
    for u, v, k in cycle:
        key, why = _explain(u, v, k, txns, index)
        steps.append(Step(u, EDGE_NAMES[k], v, key, why))
    members = tuple(dict.fromkeys(u for u, _, _ in cycle))
    base = _base_name(kind)
    suffix = kind.value[len(base) :]
    meaning = _MEANING[base] + (f", with {suffix[1:]} order edges" if suffix else "")
    return Anomaly(
        kind,
        members,
        f"{len(members)} transactions: {meaning}",
        tuple(steps),
        {t: describe_txn(txns[t]) for t in members},
    )


def _explain(u: int, v: int, k: int, txns: Sequence[Txn], index: VersionIndex) -> tuple[int | None, str]:
    """The key behind an edge and a sentence saying why it exists."""
    writer, order = index.writer, index.order
    if k == WW:
        for op in txns[u].ops:
            versions = order.get(op[1])
            if op[0] == "append" and versions and op[2] in versions:
                appended = writer.get(op[1], {})
                for nxt in versions[versions.index(op[2]) + 1 :]:
                    t = appended.get(nxt, -1)
                    if t == -1 or index.status[t] == FAIL:
                        continue  # skipped by the ww edges too
                    if t == v:
                        return op[1], f"T{v} appended {nxt} to key {op[1]} right after T{u}'s {op[2]}"
                    break
    elif k == WR:
        for op in txns[v].ops:
            if op[0] == "r" and op[2] and writer.get(op[1], {}).get(op[2][-1]) == u:
                return op[1], f"T{v} read key {op[1]} ending at {op[2][-1]}, appended by T{u}"
    elif k == RW:
        for op in txns[u].ops:
            if op[0] != "r" or op[2] is None:
                continue
            versions = order.get(op[1])
            values = op[2]
            if versions and len(values) < len(versions):
                nxt = versions[len(values)]
                if writer.get(op[1], {}).get(nxt) == v:
                    last = f"ending at {values[-1]}" if values else "empty"
                    return op[1], f"T{u} read key {op[1]} {last}, before T{v} appended {nxt}"
    elif k == PROCESS:
        return None, f"T{u} completed before T{v} on process {txns[u].process}"
    elif k == REALTIME:
        return None, f"T{u} completed at {txns[u].complete_ns} ns, before T{v} began at {txns[v].invoke_ns} ns"
    return None, "edge"


def _result(
    m: ConsistencyModel,
    txns: Sequence[Txn],
    index: VersionIndex,
    edges: EdgeList,
    components: list[list[int]],
    anomalies: AnomalyLog,
    incomplete: list[AnomalyClass],
    unclassified: int,
) -> CheckResult:
    counts = dict(anomalies.counts)
    forbidden = tuple(k for k in counts if m.forbidden(AnomalyClass(k)))
    unsettled = [c.value for c in incomplete if m.forbidden(c)]
    valid: Validity
    if forbidden:
        valid = False
        reason = f"found anomalies {m.name} forbids: {', '.join(forbidden)}"
    elif unsettled:
        valid = UNKNOWN
        reason = f"the cycle search ran out of its time limit before ruling out {', '.join(unsettled)}"
    elif unclassified and m.forbidden(AnomalyClass.G2_ITEM):
        valid = UNKNOWN
        reason = f"{unclassified} cyclic component(s) whose cycle could not be classified (G2-item suspected)"
    else:
        valid = True
        reason = ""
    status = index.status
    by_kind = {name: 0 for name in EDGE_NAMES.values()}
    for k in set(edges.kind):
        by_kind[EDGE_NAMES[k]] = edges.kind.count(k)
    stats = {
        "txns": len(txns),
        "ok": status.count(OK),
        "fail": status.count(FAIL),
        "info": status.count(INFO),
        "micro_ops": sum(len(t.ops) for t in txns),
        "keys": len(index.writer),
        "edges": len(edges),
        **{f"edges_{name}": count for name, count in by_kind.items()},
        "cyclic_components": len(components),
        "largest_component": max((len(c) for c in components), default=0),
        "unclassified_components": unclassified,
    }
    return CheckResult(
        m.name, valid, counts, forbidden, anomalies.kept, stats, tuple(c.value for c in incomplete), reason
    )
