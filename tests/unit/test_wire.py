"""What workers send their coordinator: encoded histograms merge exactly; ledger journals replay exactly."""

from __future__ import annotations

import pickle
import random

import pytest

from holoload.core.ledger.book import Ledger, WriteOutcome
from holoload.core.ledger.journal import JournalLedger, replay
from holoload.core.outcome import ErrorClass
from holoload.core.stats.recorder import SparseHistogram
from holoload.core.stats.window import OpKey, OpStats
from holoload.core.stats.wire import WireStats, decode_histogram, encode_histogram

PCTS = (0.0, 1.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)


def test_merged_worker_histograms_have_the_percentiles_of_one_histogram_fed_every_value() -> None:
    rng = random.Random(7)
    single = SparseHistogram()
    merged = SparseHistogram()
    for _worker in range(3):
        mine = SparseHistogram()
        for _ in range(20_000):
            value = int(rng.lognormvariate(7, 1.5))  # microseconds, 1 us .. seconds
            mine.record(value)
            single.record(value)
        merged.merge(decode_histogram(pickle.loads(pickle.dumps(encode_histogram(mine)))))
    assert merged.count == single.count == 60_000
    assert merged.percentiles_us(PCTS) == single.percentiles_us(PCTS)
    assert (merged.min_us, merged.max_us, merged.total_us) == (single.min_us, single.max_us, single.total_us)
    assert merged.counts == single.counts


def test_an_encoded_histogram_is_far_smaller_than_its_samples() -> None:
    hist = SparseHistogram()
    for i in range(100_000):
        hist.record(500 + i % 3000)
    assert len(encode_histogram(hist)) < 100_000 * 8 // 20


def test_empty_and_clamped_histograms_survive_the_trip() -> None:
    assert decode_histogram(encode_histogram(SparseHistogram())).count == 0
    hist = SparseHistogram()
    hist.record(-5)
    hist.record(10**13)
    back = decode_histogram(encode_histogram(hist))
    assert (back.count, back.clamped, back.max_us) == (2, 2, hist.max_us)


@pytest.mark.parametrize("data", [b"garbage", encode_histogram(SparseHistogram()) + b"x"])
def test_bytes_that_are_not_a_histogram_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an encoded histogram"):
        decode_histogram(data)


def test_wire_stats_carry_every_counter() -> None:
    stats = OpStats(ok=5, rows=50, dropped=2, retries=3, early=1, errors={ErrorClass.TIMEOUT: 4})
    stats.latency.record(1200)
    stats.lag.record(30)
    back = pickle.loads(pickle.dumps(WireStats.of(OpKey("p", "w", "op", "node1"), stats)))
    decoded = back.stats()
    assert back.op_key() == OpKey("p", "w", "op", "node1")
    assert (decoded.ok, decoded.rows, decoded.dropped, decoded.retries, decoded.early) == (5, 50, 2, 3, 1)
    assert decoded.errors == {ErrorClass.TIMEOUT: 4}
    assert decoded.latency.counts == stats.latency.counts and decoded.lag.count == 1 and decoded.service.count == 0
    assert not back.empty and WireStats.of(OpKey("p", "w", "op", "n"), OpStats()).empty


def test_a_replayed_journal_builds_the_ledger_a_single_process_would() -> None:
    rng = random.Random(3)
    direct = Ledger()
    journal = JournalLedger()
    coordinator = Ledger()
    outcomes = list(WriteOutcome)
    next_id = 1
    for step in range(5_000):
        kind = rng.random()
        if kind < 0.7:  # single-row writes, mostly adjacent and acknowledged (the folded case)
            start = next_id if rng.random() < 0.9 else rng.randrange(1, next_id + 1)
            intervals = [(start, start + 1)]
        elif kind < 0.9:
            start = rng.randrange(1, next_id + 50)
            intervals = [(start, start + rng.randrange(2, 40))]
        else:
            start = rng.randrange(1, next_id + 50)
            intervals = [(start, start + 3), (start + 10, start + 12)]
        outcome = WriteOutcome.ACKNOWLEDGED if rng.random() < 0.8 else rng.choice(outcomes)
        if rng.random() < 0.05:
            direct.duplicate_proof(*intervals[0])
            journal.duplicate_proof(*intervals[0])
        else:
            direct.record_write(outcome, intervals)
            journal.record_write(outcome, intervals)
        next_id = max(next_id, intervals[-1][1])
        if step % 700 == 0:  # a flush
            replay(coordinator, pickle.loads(pickle.dumps(journal.drain())))
    replay(coordinator, journal.drain())
    for name in ("acknowledged", "failed", "in_doubt", "recovered"):
        assert list(getattr(coordinator, name).intervals()) == list(getattr(direct, name).intervals()), name
    assert list(coordinator.statement_intervals()) == list(direct.statement_intervals())
    assert coordinator.summary() == direct.summary()


def test_runs_of_single_row_acknowledgements_fold_into_one_record() -> None:
    journal = JournalLedger()
    for i in range(1, 10_001):
        journal.record_write(WriteOutcome.ACKNOWLEDGED, [(i, i + 1)])
    assert journal.drain() == [("r", WriteOutcome.ACKNOWLEDGED, 1, 10_001, ())]
