"""AckLog (core/ledger/acklog.py): lost id ranges named by the server that acknowledged them, and when."""

from __future__ import annotations

from holoload.core.ledger.acklog import NS_PER_S, AckLog


def test_contiguous_ids_of_one_server_fold_and_lost_ranges_are_cut_by_server() -> None:
    log = AckLog(0, wall_origin_s=1000.0)
    for i in range(100):  # one writer: ids 0..99 one by one on A, 10 ms apart
        log.note([(i, i + 1)], "A", i * NS_PER_S // 100)
    log.note([(100, 150)], "B", 2 * NS_PER_S)  # then a block on B
    assert len(log._runs) == 2
    rows = log.describe([(90, 120), (200, 210)], names={"A": "node1"})
    assert rows == [
        {
            "ids": [90, 100],
            "count": 10,
            "acknowledged_by": "A",
            "node": "node1",
            "acked_s": [0.0, 0.99],
            "acked_at": [1000.0, 1000.99],
        },
        {
            "ids": [100, 120],
            "count": 20,
            "acknowledged_by": "B",
            "node": "B",
            "acked_s": [2.0, 2.0],
            "acked_at": [1002.0, 1002.0],
        },
        {"ids": [200, 210], "count": 10, "acknowledged_by": None, "node": None, "acked_s": None, "acked_at": None},
    ]


def test_a_run_spans_at_most_the_resolution_and_interleaved_writers_keep_their_runs() -> None:
    log = AckLog(0, resolution_ns=NS_PER_S)
    for t in range(5):  # two writers interleaved, each on its own id block, for 5 s
        log.note([(t, t + 1)], "A", t * NS_PER_S)
        log.note([(1000 + t, 1001 + t)], "A", t * NS_PER_S)
    assert len(log._runs) == 6  # each writer: [0 s, 1 s], [2 s, 3 s], [4 s]
    (row,) = log.describe([(0, 5)])
    assert row["ids"] == [0, 5] and row["acked_s"] == [0.0, 4.0]  # adjacent rows of one server join


def test_past_max_runs_acknowledgements_are_counted_not_kept() -> None:
    log = AckLog(0, max_runs=1)
    log.note([(0, 10)], "A", 0)
    log.note([(100, 105)], "A", 0)
    assert log.dropped == 5
    assert log.describe([(100, 105)])[0]["acknowledged_by"] is None
