"""Hand-built list-append histories, one planted anomaly each: reported as exactly that class, with its cycle."""

from __future__ import annotations

from typing import Any

import pytest

from holoload.core.isolation import UNKNOWN, AnomalyClass, CheckResult, Deadline, Txn, TxnType, check, render_text
from holoload.core.isolation.models import MODELS

X, Y = 1, 2  # keys


def txn(tid: int, *ops: Any, type_: str = "ok", process: int | None = None, at: tuple[int, int] = (0, 100)) -> Txn:
    """A transaction; by default every one runs concurrently (0..100 ns) on its own process."""
    return Txn(tid, tid if process is None else process, at[0], at[1], TxnType(type_), tuple(ops))


def app(key: int, value: int) -> tuple[str, int, int]:
    return ("append", key, value)


def r(key: int, *values: int) -> tuple[str, int, tuple[int, ...]]:
    return ("r", key, tuple(values))


def cycle_of(result: CheckResult, kind: str) -> set[tuple[int, str, int, int | None]]:
    (anomaly,) = result.anomalies[kind]
    return {(s.source, s.edge, s.target, s.key) for s in anomaly.steps}


def test_g0_write_cycle_is_reported_with_its_two_ww_edges() -> None:
    """Two transactions append to x and y in opposite orders: a ww cycle (G0), nothing else."""
    h = [txn(0, app(X, 1), app(Y, 1)), txn(1, app(X, 2), app(Y, 2)), txn(2, r(X, 1, 2), r(Y, 2, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"G0": 1}
    assert result.valid is False and result.forbidden_found == ("G0",)
    assert cycle_of(result, "G0") == {(0, "ww", 1, X), (1, "ww", 0, Y)}
    assert result.anomalies["G0"][0].cycle_text() in (
        "T0 -ww(key 1)-> T1 -ww(key 2)-> T0",
        "T1 -ww(key 2)-> T0 -ww(key 1)-> T1",
    )


def test_g1a_aborted_read_names_the_failed_writer_and_the_reader() -> None:
    """A read shows a value of a failed transaction."""
    h = [txn(0, app(X, 1), type_="fail"), txn(1, r(X, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"G1a": 1}
    assert result.valid is False
    (anomaly,) = result.anomalies["G1a"]
    assert anomaly.txns == (0, 1)
    assert "failed" in anomaly.description


def test_a_failed_append_inside_a_version_order_keeps_its_neighbours_ordered() -> None:
    """x reads [1, 5, 3] with 5 from a failed transaction: G1a, and T0 -ww-> T2 still closes a G0 with y."""
    h = [
        txn(0, app(X, 1), app(Y, 2)),
        txn(1, app(X, 5), type_="fail"),
        txn(2, app(X, 3), app(Y, 4)),
        txn(3, r(X, 1, 5, 3), r(Y, 4, 2)),
    ]
    result = check(h, "read-committed")
    assert result.counts == {"G1a": 1, "G0": 1}
    assert cycle_of(result, "G0") == {(0, "ww", 2, X), (2, "ww", 0, Y)}


def test_many_separate_cycles_are_each_counted() -> None:
    """Fifty independent write-skew pairs: fifty G2-item anomalies, examples capped in JSON."""
    h: list[Txn] = []
    for i in range(50):
        a, b, base = 10 * i, 10 * i + 1, len(h)
        h += [txn(base, r(a), app(b, 1)), txn(base + 1, r(b), app(a, 1)), txn(base + 2, r(a, 1), r(b, 1))]
    result = check(h, "serializable")
    assert result.counts == {"G2-item": 50}
    assert result.stats["cyclic_components"] == 50
    assert len(result.to_json(examples=5)["anomalies"]["G2-item"]) == 5


def test_g1b_intermediate_read_is_reported() -> None:
    """T0 appends 1 then 2 to x; T1 reads x ending at 1, which was never T0's final state of x."""
    h = [txn(0, app(X, 1), app(X, 2)), txn(1, r(X, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"G1b": 1}
    assert result.anomalies["G1b"][0].txns == (0, 1)


def test_g1c_circular_information_flow() -> None:
    """Each transaction reads the other's append: a wr cycle."""
    h = [txn(0, app(X, 1), r(Y, 1)), txn(1, app(Y, 1), r(X, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"G1c": 1}
    assert cycle_of(result, "G1c") == {(0, "wr", 1, X), (1, "wr", 0, Y)}


def test_g_single_read_skew_is_forbidden_by_snapshot_isolation_but_not_read_committed() -> None:
    """T1 sees T0's append to y but not its append to x: one rw edge and one wr edge."""
    h = [txn(0, app(X, 1), app(Y, 1)), txn(1, r(X), r(Y, 1)), txn(2, r(X, 1), r(Y, 1))]
    si = check(h, "snapshot-isolation")
    assert si.counts == {"G-single": 1}
    assert si.valid is False
    assert cycle_of(si, "G-single") == {(1, "rw", 0, X), (0, "wr", 1, Y)}
    rc = check(h, "read-committed")
    assert rc.counts == {"G-single": 1} and rc.valid is True and rc.forbidden_found == ()


def test_lost_update_is_g_single() -> None:
    """Both read x empty and append: one's append overwrote the version the other read."""
    h = [txn(0, r(X), app(X, 1)), txn(1, r(X), app(X, 2)), txn(2, r(X, 1, 2))]
    result = check(h, "snapshot-isolation")
    assert result.counts == {"G-single": 1}
    assert cycle_of(result, "G-single") == {(1, "rw", 0, X), (0, "ww", 1, X)}


def test_g2_item_write_skew_is_allowed_by_snapshot_isolation_and_forbidden_by_serializable() -> None:
    """Each reads the key the other appends to, before it: two rw edges."""
    h = [txn(0, r(X), app(Y, 1)), txn(1, r(Y), app(X, 1)), txn(2, r(X, 1), r(Y, 1))]
    si = check(h, "snapshot-isolation")
    assert si.counts == {"G2-item": 1} and si.valid is True
    ser = check(h, "serializable")
    assert ser.counts == {"G2-item": 1} and ser.valid is False and ser.forbidden_found == ("G2-item",)
    assert cycle_of(ser, "G2-item") == {(0, "rw", 1, X), (1, "rw", 0, Y)}


def test_internal_inconsistency_a_read_missing_its_own_append() -> None:
    """A transaction appends to x and then reads x without its own value."""
    h = [txn(0, app(X, 1), r(X))]
    result = check(h, "read-committed")
    assert result.counts == {"internal": 1}
    assert "appended [1]" in result.anomalies["internal"][0].description


def test_internal_inconsistency_a_read_shrinking() -> None:
    """A later read of x in the same transaction is not an extension of the earlier one."""
    h = [txn(0, app(X, 1)), txn(1, app(X, 2)), txn(2, r(X, 1, 2), r(X, 1, 2)), txn(3, r(X, 1, 2), r(X, 1))]
    result = check(h, "read-committed")
    assert result.counts["internal"] == 1
    assert result.anomalies["internal"][0].txns == (3,)


def test_duplicate_elements() -> None:
    """A read shows the same value twice."""
    h = [txn(0, app(X, 1)), txn(1, r(X, 1, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"duplicate-elements": 1}


def test_incompatible_orders() -> None:
    """Two reads of x disagree on the order of its values."""
    h = [txn(0, app(X, 1)), txn(1, app(X, 2)), txn(2, r(X, 1, 2)), txn(3, r(X, 2, 1))]
    result = check(h, "read-committed")
    assert result.counts == {"incompatible-order": 1}
    assert set(result.anomalies["incompatible-order"][0].txns) == {2, 3}


def test_garbage_read() -> None:
    """A read shows a value no transaction appended."""
    result = check([txn(0, r(X, 7))], "read-committed")
    assert result.counts == {"garbage-read": 1}


def test_real_time_order_only_matters_for_strict_serializable() -> None:
    """T1 begins after T0 completed yet misses its append: serializable, not strict-serializable."""
    h = [
        txn(0, app(X, 1), at=(0, 10)),
        txn(1, r(X), at=(20, 30)),
        txn(2, r(X, 1), at=(40, 50)),
    ]
    assert check(h, "serializable").valid is True
    strict = check(h, "strict-serializable")
    assert strict.counts == {"G-single-realtime": 1}
    assert strict.valid is False
    assert cycle_of(strict, "G-single-realtime") == {(0, "realtime", 1, None), (1, "rw", 0, X)}


def test_process_order_only_matters_for_strong_session_models() -> None:
    """The same process runs T0 then T1 (overlapping clocks), and T1 misses T0's append."""
    h = [txn(0, app(X, 1), process=7, at=(0, 100)), txn(1, r(X), process=7, at=(1, 100)), txn(2, r(X, 1))]
    assert check(h, "serializable").valid is True
    session = check(h, "strong-session-serializable")
    assert session.counts == {"G-single-process": 1}
    assert cycle_of(session, "G-single-process") == {(0, "process", 1, None), (1, "rw", 0, X)}


def test_in_doubt_append_may_have_happened_or_not() -> None:
    """An info transaction's append, observed or not, is no anomaly (a failed one's would be)."""
    seen = [txn(0, app(X, 1), type_="info"), txn(1, r(X, 1))]
    unseen = [txn(0, app(X, 1), type_="info"), txn(1, r(X))]
    for h in (seen, unseen):
        result = check(h, "strict-serializable")
        assert result.counts == {} and result.valid is True


def test_in_doubt_transaction_orders_nothing_in_real_time() -> None:
    """An info transaction may take effect after its recorded end: a later reader missing it is fine."""
    h = [
        Txn(0, 0, 0, 10, TxnType.INFO, (app(X, 1),)),
        txn(1, r(X), at=(20, 30)),
        txn(2, r(X, 1), at=(40, 50)),
    ]
    assert check(h, "strict-serializable").valid is True


def test_every_model_forbids_broken_list_semantics() -> None:
    """Internal, duplicate, incompatible-order and garbage reads are forbidden by every model."""
    for name in MODELS:
        result = check([txn(0, r(X, 7))], name)
        assert result.valid is False, name


def test_models_are_ordered_by_strength() -> None:
    """Each model forbids at least what the weaker ones do."""
    chain = ["read-committed", "snapshot-isolation", "serializable", "strict-serializable"]
    for weaker, stronger in zip(chain, chain[1:], strict=False):
        assert MODELS[weaker].forbids < MODELS[stronger].forbids
    assert AnomalyClass.G2_ITEM not in MODELS["snapshot-isolation"].forbids
    assert AnomalyClass.G_SINGLE in MODELS["snapshot-isolation"].forbids


class StepClock:
    """A fake clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _write_skew_ring(n: int) -> list[Txn]:
    """n transactions in a ring of rw edges (each reads key i empty and appends to key i+1): only G2-item."""
    h = [txn(i, r(i), app((i + 1) % n, 1)) for i in range(n)]
    h.append(txn(n, *[r(i, 1) for i in range(n)]))
    return h


def test_a_search_out_of_time_is_unknown_never_valid() -> None:
    """With the clock past the limit mid-search, the verdict is "unknown" and names what was not ruled out."""
    h = _write_skew_ring(6)
    settled = check(h, "serializable")
    assert settled.valid is False and settled.counts == {"G2-item": 1}
    for limit in range(1, 6):
        result = check(h, "serializable", Deadline(StepClock(), float(limit)))
        assert result.valid == UNKNOWN, limit
        assert "G2-item" in result.incomplete
        assert "time limit" in result.reason


def test_an_expired_search_does_not_hide_a_forbidden_anomaly_found_before() -> None:
    """A non-cycle anomaly found before the deadline still makes the history invalid."""
    h = [*_write_skew_ring(4), txn(5, r(9, 3))]
    result = check(h, "serializable", Deadline(StepClock(), 1.0))
    assert result.valid is False and result.counts == {"garbage-read": 1}


@pytest.mark.parametrize("n", [3, 5, 300])
def test_longer_write_skew_rings_give_the_whole_ring(n: int) -> None:
    """The G2-item cycle of a ring is the ring itself, every edge rw."""
    result = check(_write_skew_ring(n), "serializable")
    (anomaly,) = result.anomalies["G2-item"]
    assert len(anomaly.steps) == n and all(s.edge == "rw" for s in anomaly.steps)


def test_result_serialises_to_json() -> None:
    """to_json carries the verdict, counts and the readable cycle for summary.json."""
    import orjson

    h = [txn(0, r(X), app(Y, 1)), txn(1, r(Y), app(X, 1)), txn(2, r(X, 1), r(Y, 1))]
    data = orjson.loads(orjson.dumps(check(h, "serializable").to_json()))
    assert data["valid"] is False
    assert data["anomaly_counts"] == {"G2-item": 1} and data["forbidden_count"] == 1
    (g2,) = data["anomalies"]["G2-item"]
    assert g2["cycle"].count("-rw(") == 2
    assert set(g2["ops"]) == {"T0", "T1"}


def test_a_closed_walk_is_cut_into_simple_cycles() -> None:
    """T1 -rw-> T0 -ww-> T1 -rw-> T0 -ww-> T1 (a walk through the same cycle twice) is two simple cycles."""
    from holoload.core.isolation.cycles import _simple_pieces
    from holoload.core.isolation.graph import RW, WW

    walk = [(1, 0, RW), (0, 1, WW), (1, 0, RW), (0, 1, WW)]
    assert _simple_pieces(walk) == [[(1, 0, RW), (0, 1, WW)], [(1, 0, RW), (0, 1, WW)]]
    loop = [(0, 1, WW), (1, 2, WW), (2, 1, RW), (1, 0, RW)]
    assert _simple_pieces(loop) == [[(1, 2, WW), (2, 1, RW)], [(0, 1, WW), (1, 0, RW)]]


def test_enumeration_finds_the_shortest_cycle_with_two_rw_edges() -> None:
    """The fallback search: a ww triangle with a two-rw square beside it gives the square."""
    from holoload.core.isolation.cycles import _simple_g2, component_graph, find_cycle
    from holoload.core.isolation.graph import RW, WR, WW

    graph = component_graph(
        [(0, 1, WW), (1, 2, WW), (2, 0, WW), (0, 3, RW), (3, 4, WR), (4, 5, RW), (5, 0, WW), (2, 1, WW)]
    )
    (cycle,) = list(_simple_g2(graph, WW | WR, lambda: None))
    assert {e for e in cycle if e[2] == RW} == {(0, 3, RW), (4, 5, RW)} and len(cycle) == 4
    assert find_cycle(graph, AnomalyClass.G0, lambda: None) in ([(1, 2, WW), (2, 1, WW)], [(2, 1, WW), (1, 2, WW)])


def test_enumeration_ignores_order_edges_the_class_may_not_use() -> None:
    """Two rw edges closed only by a real-time edge: no plain G2-item (was a step of no kind), a G2-item-realtime."""
    from holoload.core.isolation.cycles import component_graph, find_cycle
    from holoload.core.isolation.graph import REALTIME, RW, WW

    graph = component_graph([(0, 1, RW), (1, 2, REALTIME), (2, 0, RW), (2, 3, WW), (3, 2, WW)])
    assert find_cycle(graph, AnomalyClass.G2_ITEM, lambda: None) is None
    cycle = find_cycle(graph, AnomalyClass.G2_ITEM_REALTIME, lambda: None)
    assert cycle is not None and sorted(cycle) == [(0, 1, RW), (1, 2, REALTIME), (2, 0, RW)]


def test_every_anomaly_is_counted_but_only_the_first_hundred_of_a_class_kept() -> None:
    """A history with 250 aborted reads: 250 counted, 100 kept, so a broken history cannot exhaust memory."""
    h = [txn(i, app(X, i), type_="fail") for i in range(250)]
    h.append(txn(250, r(X, *range(250))))
    result = check(h, "read-committed")
    assert result.counts == {"G1a": 250}
    assert len(result.anomalies["G1a"]) == 100
    assert "  ... 247 more G1a" in render_text(result)
