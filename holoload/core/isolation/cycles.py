"""Cycle search inside one strongly connected component: a shortest cycle of each anomaly class.

Classes (Adya, as in Elle): G0 (ww edges only), G1c (ww/wr with at least one wr), G-single (exactly one rw,
the rest ww/wr), G2-item (two or more rw). With order edges (process or real-time) allowed too, a class whose
cycle needs one is reported with a ``-process``/``-realtime`` suffix; the data-only search runs first, so a
suffixed class means no data-only cycle of that class exists in the component.

Each search starts from the edges that the class needs (a wr edge for G1c, an rw edge for G-single and
G2-item) and looks for the way back by breadth-first search, so the cycle found through a start edge is a
shortest one. Components up to ``EXHAUSTIVE_NODES`` transactions try every start edge and keep the shortest
cycle; larger ones stop at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from holoload.core.isolation.graph import ORDER, PROCESS, REALTIME, RW, WR, WW
from holoload.core.isolation.models import AnomalyClass

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["EXHAUSTIVE_NODES", "Cycle", "SearchExpired", "component_graph", "find_cycle"]

EXHAUSTIVE_NODES = 200
REACH_NODES = 20_000  # condensed nodes up to which G-single starts are found by reachability bitsets
_CHECK_EVERY = 1024

Cycle = list[tuple[int, int, int]]  # (source, target, edge kind bit) around the cycle
_PRIORITY = (WW, WR, RW, PROCESS, REALTIME)  # the label an edge gets when it has several kinds


class SearchExpired(Exception):
    """Raised by the deadline check: the search ran out of its time limit."""


def component_graph(edges: Iterable[tuple[int, int, int]]) -> nx.DiGraph:
    """A networkx DiGraph of one component, each edge with ``k``: the OR of its kinds."""
    import networkx as nx  # imported on first use: most CLI commands never need it

    graph = nx.DiGraph()
    for u, v, k in edges:
        data = graph.get_edge_data(u, v)
        if data is None:
            graph.add_edge(u, v, k=k)
        else:
            data["k"] |= k
    return graph


def _base(kind: AnomalyClass) -> tuple[str, int]:
    """The class's base name and order-edge bits: G1c-realtime -> ("G1c", REALTIME)."""
    name = kind.value
    if name.endswith("-realtime"):
        return name[: -len("-realtime")], REALTIME
    if name.endswith("-process"):
        return name[: -len("-process")], PROCESS
    return name, 0


def find_cycle(
    graph: nx.DiGraph, kind: AnomalyClass, check: Callable[[], None], enumerate_g2: bool = True
) -> Cycle | None:
    """A shortest cycle of class ``kind`` in one component, or None when it has none.

    Args:
        graph: the component (``component_graph``).
        kind: a cycle class, e.g. ``G-single`` or ``G2-item-realtime``.
        check: the deadline; raises ``SearchExpired`` to stop.
        enumerate_g2: when the shortest-walk search finds no G2-item, enumerate simple cycles (components of
            at most ``EXHAUSTIVE_NODES``); the checker asks for it only in components where no other class
            was found, since enumeration can take long where many cycles exist.

    Returns:
        The cycle's edges in order, each labelled with the kind it is used as.
    """
    base, order = _base(kind)
    exhaustive = graph.number_of_nodes() <= EXHAUSTIVE_NODES
    best: Cycle | None = None
    for cycle in _candidates(graph, base, order, check, enumerate_g2):
        if order and not any(k & ORDER for _, _, k in cycle):
            continue  # a data-only cycle is the unsuffixed class's, found by its own search
        if best is None or len(cycle) < len(best):
            best = cycle
        if not exhaustive or len(best) <= 2:
            break
    return best


def _candidates(
    graph: nx.DiGraph, base: str, order: int, check: Callable[[], None], enumerate_g2: bool
) -> Iterator[Cycle]:
    if base == "G0":
        mask = WW | order
        for part in _parts(graph, mask):
            for node in part:
                check()
                path = _path(graph, node, node, mask, order, check)
                if path is not None:
                    yield path
    elif base == "G1c":
        mask = WW | WR | order
        for part in _parts(graph, mask):
            inside = set(part)
            for u, v, k in graph.subgraph(part).edges(data="k"):
                if k & WR and u in inside and v in inside:
                    check()
                    path = _path(graph, v, u, mask, order, check)
                    if path is not None:
                        yield [(u, v, WR), *path]
    elif base == "G-single":
        mask = WW | WR | order
        for u, v in _closing_rw_edges(graph, mask, check):
            check()
            path = _path(graph, v, u, mask, order, check)
            if path is not None:
                yield [(u, v, RW), *path]
    elif base == "G2-item":
        found = False
        for u, v, k in graph.edges(data="k"):
            if k & RW:
                check()
                path = _path_with_rw(graph, v, u, WW | WR | order, order, check)
                if path is None:
                    continue
                # The shortest walk may pass a node twice; a G2-item is a simple cycle with two rw edges.
                for piece in _simple_pieces([(u, v, RW), *path]):
                    if sum(1 for _, _, label in piece if label == RW) >= 2:
                        found = True
                        yield piece
        if not found and enumerate_g2 and graph.number_of_nodes() <= EXHAUSTIVE_NODES:
            yield from _simple_g2(graph, WW | WR | order, check)


def _closing_rw_edges(graph: nx.DiGraph, mask: int, check: Callable[[], None]) -> list[tuple[int, int]]:
    """The rw edges u -> v with a way back from v to u over edges in ``mask``: exactly the G-single starts.

    Reachability over the condensation of the ``mask`` subgraph, one bitset (a Python int) per condensed
    node, so a component without G-single (a snapshot-isolation history) costs no search per rw edge.
    Above ``REACH_NODES`` condensed nodes the bitsets would cost too much memory: every rw edge is a start.
    """
    import networkx as nx  # imported on first use: most CLI commands never need it

    rw_edges = [(u, v) for u, v, k in graph.edges(data="k") if k & RW]
    view = nx.subgraph_view(graph, filter_edge=lambda a, b: bool(graph[a][b]["k"] & mask))
    dag = nx.condensation(view)
    if dag.number_of_nodes() > REACH_NODES:
        return rw_edges
    where: dict[int, int] = dag.graph["mapping"]
    reach = [0] * dag.number_of_nodes()
    for count, c in enumerate(reversed(list(nx.topological_sort(dag)))):
        if not count % _CHECK_EVERY:
            check()
        bits = 1 << c
        for d in dag.succ[c]:
            bits |= reach[d]
        reach[c] = bits
    return [(u, v) for u, v in rw_edges if reach[where[v]] >> where[u] & 1]


def _simple_pieces(walk: Cycle) -> list[Cycle]:
    """Split a closed walk into simple cycles (cut each loop out where a node repeats)."""
    pieces: list[Cycle] = []
    stack: Cycle = []
    where: dict[int, int] = {walk[0][0]: 0}
    for edge in walk:
        stack.append(edge)
        target = edge[1]
        if target in where:
            at = where[target]
            pieces.append(stack[at:])
            for dropped in stack[at:]:
                where.pop(dropped[1], None)
            del stack[at:]
            where[target] = at
        else:
            where[target] = len(stack)
    return pieces


def _simple_g2(graph: nx.DiGraph, mask: int, check: Callable[[], None]) -> Iterator[Cycle]:
    """Fallback: simple cycles by networkx (Johnson's algorithm, shortest bounds first) with two rw edges."""
    import networkx as nx  # imported on first use: most CLI commands never need it

    # Only edges the class may use: an order edge outside ``mask`` (a real-time edge in the plain G2-item
    # search of a strict-serializable graph) would otherwise close a cycle with a step of no kind.
    usable = mask | RW
    view = nx.subgraph_view(graph, filter_edge=lambda a, b: bool(graph[a][b]["k"] & usable))
    for bound in range(2, graph.number_of_nodes() + 1):
        for nodes in nx.simple_cycles(view, length_bound=bound):
            check()
            if len(nodes) != bound:
                continue
            cycle: Cycle = []
            rw = 0
            for i, u in enumerate(nodes):
                v = nodes[(i + 1) % len(nodes)]
                k = graph[u][v]["k"]
                label = RW if k & RW else _label(k, mask)
                rw += label == RW
                cycle.append((u, v, label))
            if rw >= 2:
                yield cycle
                return


def _parts(graph: nx.DiGraph, mask: int) -> list[list[int]]:
    """Cyclic components of the subgraph of edges in ``mask``."""
    import networkx as nx  # imported on first use: most CLI commands never need it

    view = nx.subgraph_view(graph, filter_edge=lambda u, v: bool(graph[u][v]["k"] & mask))
    return [sorted(c) for c in nx.strongly_connected_components(view) if len(c) > 1]


def _label(k: int, mask: int) -> int:
    for bit in _PRIORITY:
        if k & mask & bit:
            return bit
    return 0


def _path(graph: nx.DiGraph, start: int, goal: int, mask: int, order: int, check: Callable[[], None]) -> Cycle | None:
    """Shortest path start -> goal over edges in ``mask`` (data edges preferred as labels); start == goal
    finds a shortest cycle through start."""
    parent: dict[int, tuple[int, int]] = {}
    seen = {start}
    queue = [start]
    succ = graph.succ
    for pops, u in enumerate(queue):
        if not pops % _CHECK_EVERY:
            check()
        for w, data in succ[u].items():
            k = data["k"] & mask
            if not k:
                continue
            if w == goal:
                steps = [(u, w, _label(k, mask))]
                while u != start:
                    p, pk = parent[u]
                    steps.append((p, u, pk))
                    u = p
                steps.reverse()
                return steps
            if w not in seen:
                seen.add(w)
                parent[w] = (u, _label(k, mask))
                queue.append(w)
    return None


def _path_with_rw(
    graph: nx.DiGraph, start: int, goal: int, mask: int, order: int, check: Callable[[], None]
) -> Cycle | None:
    """Shortest path start -> goal using at least one rw edge (states: rw used yet or not)."""
    parent: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    origin = (start, 0)
    seen = {origin}
    queue = [origin]
    succ = graph.succ
    for pops, state in enumerate(queue):
        if not pops % _CHECK_EVERY:
            check()
        u, used = state
        for w, data in succ[u].items():
            k = data["k"]
            moves: list[tuple[tuple[int, int], int]] = []
            plain = _label(k, mask)
            if plain:
                moves.append(((w, used), plain))
            if k & RW:
                moves.append(((w, 1), RW))
            for nxt, label in moves:
                if nxt == (goal, 1):
                    steps = [(u, w, label)]
                    cur = state
                    while cur != origin:
                        prev, pk = parent[cur]
                        steps.append((prev[0], cur[0], pk))
                        cur = prev
                    steps.reverse()
                    return steps
                if nxt not in seen:
                    seen.add(nxt)
                    parent[nxt] = (state, label)
                    queue.append(nxt)
    return None
