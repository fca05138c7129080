"""The dependency graph of a list-append history: ww/wr/rw edges from version orders, optional process and
real-time order edges, kept as flat integer arrays; strongly connected components by iterative Tarjan.

Why not a graph library for the whole graph: a million transactions make several million edges, and a
networkx DiGraph costs a few hundred bytes per edge (dicts of dicts); three ``array('q')`` cost 17 bytes.
Almost every component of a correct history is a single transaction, so networkx is used only inside the
few cyclic components (see cycles.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from holoload.core.isolation.history import Txn
from holoload.core.isolation.versions import FAIL, OK, VersionIndex

__all__ = [
    "EDGE_NAMES",
    "ORDER",
    "PROCESS",
    "REALTIME",
    "RW",
    "WR",
    "WW",
    "EdgeList",
    "add_process_edges",
    "add_realtime_edges",
    "build_edges",
    "strongly_connected",
]

WW, WR, RW, PROCESS, REALTIME = 1, 2, 4, 8, 16
ORDER = PROCESS | REALTIME
EDGE_NAMES = {WW: "ww", WR: "wr", RW: "rw", PROCESS: "process", REALTIME: "realtime"}


@dataclass(slots=True)
class EdgeList:
    """Edges as parallel arrays: ``src[i] -kind[i]-> dst[i]``; a pair may appear once per kind."""

    n: int
    src: array[int]
    dst: array[int]
    kind: array[int]

    @classmethod
    def empty(cls, n: int) -> EdgeList:
        return cls(n, array("q"), array("q"), array("B"))

    def __len__(self) -> int:
        return len(self.src)


def build_edges(txns: Sequence[Txn], index: VersionIndex) -> EdgeList:
    """ww edges between consecutive writers of each key's version order; wr from the writer of a read's last
    value to the reader; rw from a reader to the writer of the value right after what it read.

    Only ok reads of keys with a compatible order count; failed transactions take part in no edge.
    """
    edges = EdgeList.empty(len(txns))
    src, dst, kind = edges.src, edges.dst, edges.kind
    add_s, add_d, add_k = src.append, dst.append, kind.append
    status = index.status
    writer = index.writer
    order = index.order
    empty: dict[int, int] = {}
    for k, versions in order.items():
        w = writer.get(k, empty)
        prev = -1
        for v in versions:
            t = w.get(v, -1)
            if t == -1 or status[t] == FAIL:
                continue  # garbage or aborted value (reported as such): the writers around it stay adjacent
            if prev != -1 and prev != t:
                add_s(prev)
                add_d(t)
                add_k(WW)
            prev = t
    for tid, txn in enumerate(txns):
        if status[tid] != OK:
            continue
        for op in txn.ops:
            if op[0] != "r":
                continue
            k = op[1]
            versions_k = order.get(k)
            values = op[2]
            if versions_k is None or values is None:
                continue
            w = writer.get(k, empty)
            n = len(values)
            if n:
                t = w.get(values[-1], -1)
                if t != -1 and t != tid and status[t] != FAIL:
                    add_s(t)
                    add_d(tid)
                    add_k(WR)
            if n < len(versions_k):
                t = w.get(versions_k[n], -1)
                if t != -1 and t != tid and status[t] != FAIL:
                    add_s(tid)
                    add_d(t)
                    add_k(RW)
    return edges


def add_process_edges(txns: Sequence[Txn], status: bytearray, edges: EdgeList) -> None:
    """Each process's ok transaction -> every later transaction of that process up to its next ok one.

    In-doubt transactions are never the source: their effects may land at any time after their invoke.
    """
    by_process: dict[int, list[int]] = {}
    for tid, txn in enumerate(txns):
        if status[tid] != FAIL:
            by_process.setdefault(txn.process, []).append(tid)
    for ids in by_process.values():
        ids.sort(key=lambda i: txns[i].invoke_ns)
        last_ok = -1
        for tid in ids:
            if last_ok != -1:
                edges.src.append(last_ok)
                edges.dst.append(tid)
                edges.kind.append(PROCESS)
            if status[tid] == OK:
                last_ok = tid


def add_realtime_edges(txns: Sequence[Txn], status: bytearray, edges: EdgeList) -> None:
    """T1 -realtime-> T2 when ok T1 completed strictly before T2 was invoked, transitively reduced.

    A sweep over invoke and complete events in time order keeps a frontier: the completed transactions no
    later-completed one is known to follow. An invoked transaction gets an edge from each member; when it
    completes it replaces the members it was linked from. Every real-time precedence is then a path, and
    the edge count is about the concurrency times the transaction count, not quadratic.
    """
    n = len(txns)
    invoke = array("q", [t.invoke_ns for t in txns])
    complete = array("q", [t.invoke_ns if t.complete_ns is None else t.complete_ns for t in txns])
    starts = sorted((tid for tid in range(n) if status[tid] != FAIL), key=invoke.__getitem__)
    ends = sorted(
        (tid for tid in range(n) if status[tid] == OK and txns[tid].complete_ns is not None), key=complete.__getitem__
    )
    frontier: set[int] = set()
    linked: dict[int, tuple[int, ...]] = {}
    src, dst, kind = edges.src, edges.dst, edges.kind
    # Merge the two sorted streams; at equal times invokes go first (only strictly earlier ends order).
    i = j = 0
    while i < len(starts):
        if j < len(ends) and complete[ends[j]] < invoke[starts[i]]:
            tid = ends[j]
            j += 1
            frontier.difference_update(linked.pop(tid, ()))
            frontier.add(tid)
            continue
        tid = starts[i]
        i += 1
        preds = tuple(frontier)
        for p in preds:
            if p != tid:  # only when a completion precedes its own invoke (bad clocks)
                src.append(p)
                dst.append(tid)
                kind.append(REALTIME)
        if status[tid] == OK:
            linked[tid] = preds


def strongly_connected(edges: EdgeList, check: Callable[[], None] | None = None, kinds: int = 0xFF) -> list[list[int]]:
    """The strongly connected components with two or more transactions (iterative Tarjan, no recursion).

    Args:
        edges: the graph.
        check: called every 65,536 steps (a deadline that raises to stop).
        kinds: only edges whose kind is in this mask.

    Returns:
        Each cyclic component's transaction ids.
    """
    n = edges.n
    offsets, targets = _adjacency(edges, kinds)
    index = array("q", [-1]) * n
    low = array("q", [0]) * n
    position = array("q", offsets[:-1]) if n else array("q")
    on_stack = bytearray(n)
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    steps = 0
    for root in range(n):
        if index[root] != -1 or offsets[root] == offsets[root + 1]:
            continue  # visited, or no successors (a single-node component)
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        calls = [root]
        while calls:
            v = calls[-1]
            i = position[v]
            end = offsets[v + 1]
            descended = False
            while i < end:
                w = targets[i]
                i += 1
                if index[w] == -1:
                    position[v] = i
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = 1
                    calls.append(w)
                    descended = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            position[v] = i
            calls.pop()
            steps += 1
            if check is not None and not steps & 0xFFFF:
                check()
            if low[v] == index[v]:
                w = stack.pop()
                on_stack[w] = 0
                if w != v:
                    component = [w]
                    while w != v:
                        w = stack.pop()
                        on_stack[w] = 0
                        component.append(w)
                    components.append(component)
            if calls:
                u = calls[-1]
                if low[v] < low[u]:
                    low[u] = low[v]
    return components


def _adjacency(edges: EdgeList, kinds: int) -> tuple[array[int], array[int]]:
    """Compressed adjacency (CSR) of the edges whose kind is in ``kinds`` (the edges hold no self-loops)."""
    n = edges.n
    degree = array("q", [0]) * (n + 1)
    src, dst, kind = edges.src, edges.dst, edges.kind
    every = kinds == 0xFF
    for i, s in enumerate(src):
        if every or kind[i] & kinds:
            degree[s + 1] += 1
    total = 0
    for v in range(n + 1):
        total += degree[v]
        degree[v] = total
    offsets = degree
    fill = array("q", offsets[:-1]) if n else array("q")
    targets = array("q", [0]) * total
    for i, s in enumerate(src):
        if every or kind[i] & kinds:
            targets[fill[s]] = dst[i]
            fill[s] += 1
    return offsets, targets
