"""Property tests of the isolation checker: histories of serial and snapshot executors, the graph machinery."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.isolation import Txn, TxnType, check
from holoload.core.isolation.graph import REALTIME, EdgeList, add_realtime_edges, strongly_connected
from holoload.core.isolation.history import MicroOp
from holoload.core.isolation.versions import statuses

PROPERTY = settings(max_examples=150, deadline=None)

plans = st.lists(st.tuples(st.sampled_from(["append", "r"]), st.integers(0, 4)), min_size=1, max_size=4)
outcomes = st.sampled_from(["ok", "ok", "ok", "ok", "fail", "info-applied", "info-lost"])
steps = st.lists(st.tuples(st.integers(0, 3), plans, outcomes), max_size=40)


@dataclass
class SerialExecutor:
    """Processes invoke transactions; each takes effect atomically at its completion (a strict-serializable
    database): reads return the lists as they are then, with the transaction's own earlier appends."""

    lists: dict[int, list[int]] = field(default_factory=dict)
    value: int = 0
    now: int = 0
    txns: list[Txn | None] = field(default_factory=list)
    pending: dict[int, tuple[int, int, list[tuple[str, int]], str]] = field(default_factory=dict)

    def step(self, process: int, plan: list[tuple[str, int]], outcome: str) -> None:
        self.now += 1
        if process not in self.pending:
            self.pending[process] = (len(self.txns), self.now, plan, outcome)
            self.txns.append(None)
            return
        self.finish(process)

    def finish(self, process: int) -> None:
        tid, invoke, plan, outcome = self.pending.pop(process)
        applied = outcome in ("ok", "info-applied")
        kind = {"ok": TxnType.OK, "fail": TxnType.FAIL}.get(outcome, TxnType.INFO)
        ops: list[MicroOp] = []
        staged = {k: list(v) for k, v in self.lists.items()}
        for f, key in plan:
            if f == "append":
                self.value += 1
                ops.append(("append", key, self.value))
                staged.setdefault(key, []).append(self.value)
            else:
                ops.append(("r", key, tuple(staged.get(key, ())) if kind is TxnType.OK else None))
        if applied:
            self.lists = staged
        self.txns[tid] = Txn(tid, process, invoke, self.now, kind, tuple(ops))

    def history(self) -> list[Txn]:
        for process in list(self.pending):
            self.now += 1
            self.finish(process)
        return [t for t in self.txns if t is not None]


@PROPERTY
@given(steps)
def test_histories_of_a_serial_executor_are_never_flagged(
    schedule: list[tuple[int, list[tuple[str, int]], str]],
) -> None:
    """Interleaved processes over a few keys, with failures and in-doubt commits: no anomaly, valid."""
    executor = SerialExecutor()
    for process, plan, outcome in schedule:
        executor.step(process, plan, outcome)
    history = executor.history()
    for model in ("strict-serializable", "strong-session-serializable", "snapshot-isolation", "read-committed"):
        result = check(history, model)
        assert result.counts == {}, (model, result.anomalies)
        assert result.valid is True


@PROPERTY
@given(st.lists(st.tuples(plans, outcomes), max_size=30))
def test_one_process_at_a_time_is_never_flagged(plan_list: list[tuple[list[tuple[str, int]], str]]) -> None:
    """The same with no concurrency at all: each transaction completes before the next begins."""
    executor = SerialExecutor()
    for plan, outcome in plan_list:
        executor.step(0, plan, outcome)
        executor.step(0, plan, outcome)
    assert check(executor.history(), "strict-serializable").valid is True


def _snapshot_history(seed: int, n: int, read_skew: bool) -> list[Txn]:
    """A snapshot-isolation executor (reads from the snapshot taken at invoke, first committer wins) or, with
    read_skew, a read-committed one whose read-only transactions read one key per step from the latest state."""
    rng = random.Random(seed)
    committed: dict[int, tuple[int, ...]] = {}
    version: dict[int, int] = {}  # key -> commit counter of its last append
    clock = 0
    value = 0
    txns: list[Txn | None] = []
    pending: dict[int, dict[str, object]] = {}
    while len(txns) < n or pending:
        clock += 1
        p = rng.randrange(4)
        state = pending.get(p)
        if state is None:
            if len(txns) >= n:
                p = next(iter(pending))
                state = pending[p]
            else:
                keys = rng.sample(range(3), 2)
                if read_skew and rng.random() < 0.5:
                    plan = [("r", k) for k in keys]
                else:
                    plan = [("r", keys[0]), ("append", keys[1])] if rng.random() < 0.7 else [("append", keys[0])]
                pending[p] = {
                    "id": len(txns),
                    "invoke": clock,
                    "plan": plan,
                    "snap": dict(committed),
                    "seen": dict(version),
                    "done": [],
                }
                txns.append(None)
                continue
        plan = state["plan"]  # type: ignore[assignment]
        done: list[MicroOp] = state["done"]  # type: ignore[assignment]
        if read_skew and all(f == "r" for f, _ in plan) and len(done) < len(plan):
            key = plan[len(done)][1]
            done.append(("r", key, committed.get(key, ())))  # read committed: the latest state, op by op
            if len(done) < len(plan):
                continue
        pending.pop(p)
        snap: dict[int, tuple[int, ...]] = state["snap"]  # type: ignore[assignment]
        seen: dict[int, int] = state["seen"]  # type: ignore[assignment]
        ops: list[MicroOp] = list(done)
        writes: dict[int, list[int]] = {}
        for f, key in plan[len(done) :]:
            if f == "append":
                value += 1
                ops.append(("append", key, value))
                writes.setdefault(key, []).append(value)
            else:
                ops.append(("r", key, snap.get(key, ()) + tuple(writes.get(key, ()))))
        conflict = any(version.get(k, 0) != seen.get(k, 0) for k in writes)
        tid: int = state["id"]  # type: ignore[assignment]
        if conflict:
            ops = [(f, k, None) if f == "r" else (f, k, v) for f, k, v in ops]  # type: ignore[misc]
            txns[tid] = Txn(tid, p, state["invoke"], clock, TxnType.FAIL, tuple(ops))  # type: ignore[arg-type]
            continue
        for k, vs in writes.items():
            committed[k] = committed.get(k, ()) + tuple(vs)
            version[k] = clock
        txns[tid] = Txn(tid, p, state["invoke"], clock, TxnType.OK, tuple(ops))  # type: ignore[arg-type]
    return [t for t in txns if t is not None]


def test_snapshot_isolation_executor_shows_write_skew_and_nothing_si_forbids() -> None:
    """A snapshot executor's history: valid under snapshot-isolation, G2-item under serializable."""
    found_g2 = 0
    for seed in range(20):
        history = _snapshot_history(seed, 60, read_skew=False)
        si = check(history, "snapshot-isolation")
        assert si.valid is True, (seed, si.anomalies)
        assert set(si.counts) <= {"G2-item"}
        ser = check(history, "serializable")
        found_g2 += ser.counts.get("G2-item", 0)
        assert ser.valid is (not ser.counts)
    assert found_g2 > 0


def test_read_committed_executor_shows_read_skew_and_nothing_rc_forbids() -> None:
    """Reads one key at a time from the latest committed state: G-single (read skew) found, valid under RC."""
    found = 0
    for seed in range(20):
        history = _snapshot_history(seed, 60, read_skew=True)
        rc = check(history, "read-committed")
        assert rc.valid is True, (seed, rc.anomalies)
        found += rc.counts.get("G-single", 0)
        if rc.counts.get("G-single"):
            assert check(history, "snapshot-isolation").valid is False
    assert found > 0


edge_lists = st.integers(1, 12).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
)


@PROPERTY
@given(edge_lists)
def test_tarjan_finds_the_same_cyclic_components_as_networkx(graph: tuple[int, list[tuple[int, int]]]) -> None:
    """The iterative Tarjan over flat arrays agrees with networkx on every graph (self-loops aside)."""
    n, pairs = graph
    pairs = [(a, b) for a, b in pairs if a != b]
    edges = EdgeList.empty(n)
    for a, b in pairs:
        edges.src.append(a)
        edges.dst.append(b)
        edges.kind.append(1)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(pairs)
    expected = {frozenset(c) for c in nx.strongly_connected_components(g) if len(c) > 1}
    assert {frozenset(c) for c in strongly_connected(edges)} == expected


intervals = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 10), st.sampled_from([TxnType.OK, TxnType.OK, TxnType.INFO])),
    max_size=25,
)


@PROPERTY
@given(intervals)
def test_realtime_edges_reach_exactly_the_pairs_ordered_in_real_time(spans: list[tuple[int, int, TxnType]]) -> None:
    """The reduced real-time edges' transitive closure is 'ok T1 completed before T2 was invoked'."""
    txns = [Txn(i, i, start, start + length, kind, ()) for i, (start, length, kind) in enumerate(spans)]
    edges = EdgeList.empty(len(txns))
    add_realtime_edges(txns, statuses(txns), edges)
    assert set(edges.kind) <= {REALTIME}
    g = nx.DiGraph()
    g.add_nodes_from(range(len(txns)))
    g.add_edges_from(zip(edges.src, edges.dst, strict=True))
    closure = {(a, b) for a in g for b in nx.descendants(g, a)}
    expected = {
        (a.id, b.id)
        for a in txns
        for b in txns
        if a.type is TxnType.OK and a.complete_ns is not None and a.complete_ns < b.invoke_ns
    }
    assert closure == expected


PLANTED: dict[str, list[tuple[list[MicroOp], str]]] = {
    # class -> transactions on fresh keys 1000/1001 (plan, type); the last one is a reader fixing the orders
    "G0": [
        ([("append", 1000, 1), ("append", 1001, 1)], "ok"),
        ([("append", 1000, 2), ("append", 1001, 2)], "ok"),
        ([("r", 1000, (1, 2)), ("r", 1001, (2, 1))], "ok"),
    ],
    "G1c": [
        ([("append", 1000, 1), ("r", 1001, (1,))], "ok"),
        ([("append", 1001, 1), ("r", 1000, (1,))], "ok"),
    ],
    "G-single": [
        ([("append", 1000, 1), ("append", 1001, 1)], "ok"),
        ([("r", 1000, ()), ("r", 1001, (1,))], "ok"),
        ([("r", 1000, (1,))], "ok"),
    ],
    "G2-item": [
        ([("r", 1000, ()), ("append", 1001, 1)], "ok"),
        ([("r", 1001, ()), ("append", 1000, 1)], "ok"),
        ([("r", 1000, (1,)), ("r", 1001, (1,))], "ok"),
    ],
    "G1a": [([("append", 1000, 1)], "fail"), ([("r", 1000, (1,))], "ok")],
}


@settings(max_examples=40, deadline=None)
@given(steps, st.sampled_from(sorted(PLANTED)), st.randoms(use_true_random=False))
def test_one_planted_anomaly_among_serial_noise_is_found_exactly(
    schedule: list[tuple[int, list[tuple[str, int]], str]], planted: str, rng: random.Random
) -> None:
    """A serial history with one anomaly's transactions shuffled in: that class, once, on exactly them."""
    executor = SerialExecutor()
    for process, plan, outcome in schedule:
        executor.step(process, plan, outcome)
    history = executor.history()
    positions = sorted(rng.sample(range(len(history) + len(PLANTED[planted])), len(PLANTED[planted])))
    merged: list[Txn] = []
    background = iter(history)
    extra = iter(PLANTED[planted])
    planted_ids = []
    for i in range(len(history) + len(PLANTED[planted])):
        if i in positions:
            ops, kind = next(extra)
            merged.append(Txn(i, 100 + i, 0, 10**6, TxnType(kind), tuple(ops)))
            planted_ids.append(i)
        else:
            t = next(background)
            merged.append(t._replace(id=i))
    result = check(merged, "serializable")
    assert result.counts == {planted: 1}
    assert result.valid is False
    (anomaly,) = result.anomalies[planted]
    assert set(anomaly.txns) <= set(planted_ids)
    assert all(s.source in planted_ids and s.target in planted_ids for s in anomaly.steps)


@PROPERTY
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from([TxnType.OK, TxnType.OK, TxnType.INFO, TxnType.FAIL])), max_size=20
    )
)
def test_process_edges_reach_each_later_transaction_of_the_process(spans: list[tuple[int, TxnType]]) -> None:
    """Closure of process edges: ok T1 -> every later (non-failed) transaction of its process, nothing else."""
    from holoload.core.isolation.graph import add_process_edges

    txns = [Txn(i, process, i, i + 1, kind, ()) for i, (process, kind) in enumerate(spans)]
    edges = EdgeList.empty(len(txns))
    add_process_edges(txns, statuses(txns), edges)
    g = nx.DiGraph()
    g.add_nodes_from(range(len(txns)))
    g.add_edges_from(zip(edges.src, edges.dst, strict=True))
    closure = {(a, b) for a in g for b in nx.descendants(g, a)}
    expected = {
        (a.id, b.id)
        for a in txns
        for b in txns
        if a.process == b.process and a.id < b.id and a.type is TxnType.OK and b.type is not TxnType.FAIL
    }
    assert closure == expected
