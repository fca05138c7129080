"""Tests for holoload.core.ledger.book: interval sets, write outcomes, the ledger and the checker."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.ledger.book import Ledger, WriteOutcome, outcome_of
from holoload.core.ledger.findings import CheckReport, Finding, check, merge_reports
from holoload.core.ledger.intervals import IntervalSet
from holoload.core.pacing.generators import SeqAllocator

PROPERTY = settings(max_examples=200, deadline=None)
FEWER = settings(max_examples=60, deadline=None)  # the costlier models below

ranges = st.tuples(st.integers(0, 60), st.one_of(st.just(0), st.integers(0, 12))).map(lambda t: (t[0], t[0] + t[1]))
ops = st.lists(st.tuples(st.booleans(), ranges), max_size=30)


def build(ops_: list[tuple[bool, tuple[int, int]]]) -> tuple[IntervalSet, set[int]]:
    """Apply add (True) / remove (False) ops to an IntervalSet and to a reference set."""
    ids = IntervalSet()
    reference: set[int] = set()
    for adding, (start, end) in ops_:
        if adding:
            ids.add(start, end)
            reference |= set(range(start, end))
        else:
            ids.remove(start, end)
            reference -= set(range(start, end))
    return ids, reference


def expand(ids: IntervalSet) -> set[int]:
    """Every id of ``ids``, for comparison with a reference set."""
    return {i for start, end in ids.intervals() for i in range(start, end)}


def assert_normalized(ids: IntervalSet) -> None:
    """Intervals are non-empty, sorted, disjoint and never adjacent; len counts ids."""
    spans = list(ids.intervals())
    assert all(start < end for start, end in spans)
    assert all(prev_end < start for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False))
    assert len(ids) == sum(end - start for start, end in spans)
    assert ids.interval_count == len(spans)


# IntervalSet


@PROPERTY
@given(ops)
def test_interval_set_add_and_remove_match_a_python_set(ops_: list[tuple[bool, tuple[int, int]]]) -> None:
    """Any sequence of adds and removes holds the same ids as a set, in normalized intervals."""
    ids, reference = build(ops_)
    assert_normalized(ids)
    assert expand(ids) == reference
    assert len(ids) == len(reference)
    assert all((i in ids) == (i in reference) for i in range(-1, 80))


@PROPERTY
@given(ops, ops)
def test_interval_set_algebra_matches_a_python_set(
    left: list[tuple[bool, tuple[int, int]]], right: list[tuple[bool, tuple[int, int]]]
) -> None:
    """Intersection, difference and union agree with set operators and stay normalized."""
    a, ref_a = build(left)
    b, ref_b = build(right)
    for result, expected in [
        (a.intersection(b), ref_a & ref_b),
        (a.difference(b), ref_a - ref_b),
        (a.union(b), ref_a | ref_b),
    ]:
        assert_normalized(result)
        assert expand(result) == expected
    assert expand(a) == ref_a and expand(b) == ref_b  # operands untouched


@PROPERTY
@given(ops, ranges)
def test_interval_set_within_clips_to_the_range(
    ops_: list[tuple[bool, tuple[int, int]]], span: tuple[int, int]
) -> None:
    """``within`` keeps exactly the ids inside the half-open range."""
    ids, reference = build(ops_)
    clipped = ids.within(*span)
    assert_normalized(clipped)
    assert expand(clipped) == reference & set(range(*span))


def test_interval_set_merges_adjacent_and_overlapping_ranges() -> None:
    """Touching or overlapping adds become one interval; a gap keeps two."""
    ids = IntervalSet()
    ids.add(0, 10)
    ids.add(10, 20)
    ids.add(5, 15)
    ids.add(25, 30)
    ids.add(20, 21)
    assert list(ids.intervals()) == [(0, 21), (25, 30)]
    assert len(ids) == 26


def test_interval_set_remove_splits_an_interval() -> None:
    """Removing the middle of an interval leaves its two ends."""
    ids = IntervalSet.from_intervals([(0, 100)])
    ids.remove(40, 60)
    assert list(ids.intervals()) == [(0, 40), (60, 100)]
    assert 39 in ids and 40 not in ids and 60 in ids


def test_interval_set_memory_follows_intervals_not_ids() -> None:
    """A million consecutive ids added one block at a time are one interval."""
    ids = IntervalSet()
    for start in range(0, 1_000_000, 1000):
        ids.add(start, start + 1000)
    assert ids.interval_count == 1
    assert len(ids) == 1_000_000


def test_interval_set_empty_range_is_a_no_op() -> None:
    """``start == end`` adds and removes nothing."""
    ids = IntervalSet.from_intervals([(3, 3)])
    assert len(ids) == 0 and ids.interval_count == 0
    ids.add(0, 5)
    ids.remove(2, 2)
    assert list(ids.intervals()) == [(0, 5)]
    assert ids.within(2, 2).interval_count == 0


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 4)])
def test_interval_set_refuses_negative_or_reversed_ranges(start: int, end: int) -> None:
    """Negative ids and ``end < start`` are errors, not silent no-ops."""
    with pytest.raises(ValueError):
        IntervalSet().add(start, end)
    with pytest.raises(ValueError):
        IntervalSet().remove(start, end)


def test_interval_set_contains_refuses_non_integers() -> None:
    """Only ints are members."""
    ids = IntervalSet.from_intervals([(0, 5)])
    assert "1" not in ids
    assert 1.0 not in ids


# outcome_of


@pytest.mark.parametrize(
    ("sqlstate", "sent", "expected"),
    [
        ("40001", True, WriteOutcome.FAILED),
        ("40P01", True, WriteOutcome.FAILED),
        ("40p01", True, WriteOutcome.FAILED),
        ("53300", True, WriteOutcome.FAILED),
        ("57P03", True, WriteOutcome.FAILED),
        ("08001", True, WriteOutcome.FAILED),
        ("08004", True, WriteOutcome.FAILED),
        ("23505", True, WriteOutcome.FAILED),
        ("42P01", True, WriteOutcome.FAILED),
        ("40003", True, WriteOutcome.IN_DOUBT),
        ("57014", True, WriteOutcome.IN_DOUBT),
        ("57P01", True, WriteOutcome.IN_DOUBT),
        ("08006", True, WriteOutcome.IN_DOUBT),
        ("58030", True, WriteOutcome.IN_DOUBT),
        ("XX000", True, WriteOutcome.IN_DOUBT),
        ("4000", True, WriteOutcome.IN_DOUBT),
        (None, True, WriteOutcome.IN_DOUBT),
        (None, False, WriteOutcome.FAILED),
        ("XX000", False, WriteOutcome.FAILED),
        ("57014", False, WriteOutcome.FAILED),
    ],
)
def test_outcome_of_follows_the_documented_table(sqlstate: str | None, sent: bool, expected: WriteOutcome) -> None:
    """Rolled-back and refused writes fail; lost answers, cancels and internal faults are in doubt."""
    assert outcome_of(sqlstate, sent=sent) is expected


def test_write_outcome_values_are_report_strings() -> None:
    """Values serialize as the lowercase names used in reports."""
    assert [o.value for o in WriteOutcome] == ["acknowledged", "failed", "in_doubt"]


# Ledger


def states(ledger: Ledger) -> dict[str, set[int]]:
    """Each state's ids, expanded."""
    return {
        "acknowledged": expand(ledger.acknowledged),
        "failed": expand(ledger.failed),
        "in_doubt": expand(ledger.in_doubt),
        "recovered": expand(ledger.recovered),
    }


def test_ledger_in_doubt_then_acknowledged_is_acknowledged() -> None:
    """A retry that commits settles an in-doubt id."""
    ledger = Ledger()
    ledger.mark_in_doubt(0, 10)
    ledger.acknowledge(0, 10)
    assert states(ledger) == {"acknowledged": set(range(10)), "failed": set(), "in_doubt": set(), "recovered": set()}


def test_ledger_failed_then_in_doubt_is_in_doubt() -> None:
    """A refused attempt then a lost answer leaves the id in doubt."""
    ledger = Ledger()
    ledger.fail(0, 10)
    ledger.mark_in_doubt(5, 10)
    assert states(ledger)["failed"] == set(range(5))
    assert states(ledger)["in_doubt"] == set(range(5, 10))


def test_ledger_later_failure_does_not_undo_doubt_or_acknowledgement() -> None:
    """``fail`` only claims new ids; ``mark_in_doubt`` never takes acknowledged ids."""
    ledger = Ledger()
    ledger.acknowledge(0, 5)
    ledger.mark_in_doubt(5, 10)
    ledger.fail(0, 12)
    ledger.mark_in_doubt(0, 3)
    assert states(ledger) == {
        "acknowledged": set(range(5)),
        "failed": {10, 11},
        "in_doubt": set(range(5, 10)),
        "recovered": set(),
    }


def test_ledger_duplicate_proof_moves_in_doubt_ids_to_recovered_once() -> None:
    """A 23505 on a retry recovers in-doubt ids; a second proof counts nothing again."""
    ledger = Ledger()
    ledger.acknowledge(0, 5)
    ledger.mark_in_doubt(5, 10)
    ledger.fail(10, 15)
    assert ledger.duplicate_proof(0, 15) == 5
    assert ledger.duplicate_proof(0, 15) == 0
    assert states(ledger) == {
        "acknowledged": set(range(5)),
        "failed": set(range(10, 15)),
        "in_doubt": set(),
        "recovered": set(range(5, 10)),
    }
    ledger.mark_in_doubt(5, 10)  # a later lost answer does not undo the proof
    assert states(ledger)["recovered"] == set(range(5, 10))


def test_ledger_record_dispatches_by_outcome() -> None:
    """``record`` is the same as calling the outcome's method."""
    ledger = Ledger()
    ledger.record(WriteOutcome.ACKNOWLEDGED, 0, 3)
    ledger.record(WriteOutcome.IN_DOUBT, 3, 6)
    ledger.record(WriteOutcome.FAILED, 6, 9)
    assert ledger.summary() == {
        "acknowledged": 3,
        "acknowledged_intervals": 1,
        "failed": 3,
        "failed_intervals": 1,
        "in_doubt": 3,
        "in_doubt_intervals": 1,
        "recovered": 0,
        "recovered_intervals": 0,
    }


RANK = {"failed": 0, "in_doubt": 1, "recovered": 2, "acknowledged": 3}
ledger_ops = st.lists(st.tuples(st.sampled_from(["acknowledged", "failed", "in_doubt", "proof"]), ranges), max_size=25)


@PROPERTY
@given(ledger_ops)
def test_ledger_states_partition_ids_by_precedence(ops_: list[tuple[str, tuple[int, int]]]) -> None:
    """Against a per-id model: states stay disjoint and the more certain outcome wins."""
    ledger = Ledger()
    model: dict[int, str] = {}
    for op, (start, end) in ops_:
        if op == "proof":
            ledger.duplicate_proof(start, end)
            model.update({i: "recovered" for i in range(start, end) if model.get(i) == "in_doubt"})
            continue
        {"acknowledged": ledger.acknowledge, "failed": ledger.fail, "in_doubt": ledger.mark_in_doubt}[op](start, end)
        for i in range(start, end):
            if i not in model or RANK[op] >= RANK[model[i]]:
                model[i] = op
    got = states(ledger)
    assert sum(len(ids) for ids in got.values()) == len(model)  # disjoint and complete
    for name, ids in got.items():
        assert ids == {i for i, state in model.items() if state == name}


# check


def test_check_reports_each_category_on_a_hand_made_case() -> None:
    """Lost, unexpected, recovered, in-doubt-absent, duplicated and untracked ids land in their own findings."""
    ledger = Ledger()
    ledger.acknowledge(0, 100)
    ledger.fail(100, 110)
    ledger.mark_in_doubt(110, 130)
    ledger.mark_in_doubt(130, 140)
    ledger.duplicate_proof(130, 140)
    observed = IntervalSet.from_intervals([(0, 40), (50, 100), (105, 107), (110, 120), (130, 135), (500, 502)])
    report = check(ledger, observed, duplicates=IntervalSet.from_intervals([(7, 9)]))

    assert (report.lost.count, report.lost.sample) == (15, ((40, 50), (135, 140)))
    assert (report.unexpected.count, report.unexpected.sample) == (2, ((105, 107),))
    assert (report.recovered.count, report.recovered.sample) == (15, ((110, 120), (130, 135)))
    assert (report.in_doubt_absent.count, report.in_doubt_absent.sample) == (10, ((120, 130),))
    assert (report.duplicated.count, report.duplicated.sample) == (2, ((7, 9),))
    assert (report.untracked.count, report.untracked.sample) == (2, ((500, 502),))
    assert not report.ok


def test_check_is_ok_when_acknowledged_ids_are_all_present_and_failed_absent() -> None:
    """In-doubt ids may be present or absent; neither spoils ``ok``."""
    ledger = Ledger()
    ledger.acknowledge(0, 10)
    ledger.fail(10, 20)
    ledger.mark_in_doubt(20, 30)
    report = check(ledger, IntervalSet.from_intervals([(0, 10), (20, 25)]))
    assert report.ok
    assert (report.recovered.count, report.in_doubt_absent.count, report.duplicated.count) == (5, 5, 0)


@pytest.mark.parametrize(
    ("observed", "duplicates"),
    [
        ([(0, 9)], None),  # one acknowledged id lost
        ([(0, 10), (10, 11)], None),  # one failed id present
        ([(0, 10)], [(3, 4)]),  # one id seen twice
    ],
)
def test_check_fails_on_any_lost_unexpected_or_duplicated_id(
    observed: list[tuple[int, int]], duplicates: list[tuple[int, int]] | None
) -> None:
    """A single bad id is enough to fail the check."""
    ledger = Ledger()
    ledger.acknowledge(0, 10)
    ledger.fail(10, 20)
    dups = IntervalSet.from_intervals(duplicates) if duplicates is not None else None
    assert not check(ledger, IntervalSet.from_intervals(observed), duplicates=dups).ok


def test_check_samples_only_the_first_intervals() -> None:
    """Findings keep ``sample_size`` leading intervals but count all of them."""
    ledger = Ledger()
    ledger.acknowledge(0, 100)
    observed = IntervalSet.from_intervals([(i, i + 1) for i in range(0, 100, 2)])
    report = check(ledger, observed, sample_size=2)
    assert report.lost.count == 50 and report.lost.intervals == 50
    assert report.lost.sample == ((1, 2), (3, 4))


def test_check_scales_to_a_million_ids_in_blocks() -> None:
    """A 1,000,000-id run from four interleaved writers' 1,000-id blocks checks by intervals."""
    allocators = [SeqAllocator(1, 1000, parts=4, index=i) for i in range(4)]
    ledger = Ledger()
    observed = IntervalSet()
    for n in range(1000):
        block = allocators[n % 4].take_block()
        start, end = block.start, block.stop
        if n % 100 == 7:  # lost answer; half of these blocks applied
            ledger.mark_in_doubt(start, end)
            if n % 200 == 7:
                observed.add(start, end)
        elif n % 250 == 3:  # refused before admission
            ledger.fail(start, end)
        else:
            ledger.acknowledge(start, end)
            observed.add(start, end)
    observed.remove(500_001, 500_011)  # plant ten lost rows
    observed.add(3001, 3002)  # and one failed row that is visible

    report = check(ledger, observed)
    assert len(ledger.acknowledged) + len(ledger.in_doubt) + len(ledger.failed) == 1_000_000
    assert ledger.acknowledged.interval_count < 100
    assert report.lost.count == 10 and report.lost.sample == ((500_001, 500_011),)
    assert report.unexpected.count == 1 and report.unexpected.sample == ((3001, 3002),)
    assert report.recovered.count == 5_000 and report.in_doubt_absent.count == 5_000
    assert report.untracked.count == 0
    assert not report.ok


# record_write and multi-row statements

statement = st.lists(ranges, min_size=1, max_size=2)
writes = st.lists(st.tuples(st.sampled_from(list(WriteOutcome)), statement), max_size=20)


@FEWER
@given(writes)
def test_record_write_records_each_interval_like_record(
    writes_: list[tuple[WriteOutcome, list[tuple[int, int]]]],
) -> None:
    """``record_write`` leaves the same states as ``record`` per interval, and remembers only multi-id statements."""
    by_statement, by_interval = Ledger(), Ledger()
    for outcome, intervals in writes_:
        by_statement.record_write(outcome, intervals)
        for start, end in intervals:
            by_interval.record(outcome, start, end)
    assert states(by_statement) == states(by_interval)
    multi = [set().union(*(range(s, e) for s, e in intervals)) for _, intervals in writes_]
    remembered = [{i for s, e in spans for i in range(s, e)} for spans in by_statement.statement_intervals()]
    assert remembered == [ids for ids in multi if len(ids) > 1]
    for spans in by_statement.statement_intervals():
        assert_normalized(IntervalSet.from_intervals(spans))
        assert list(spans) == sorted(spans)


def test_single_row_writes_are_not_remembered() -> None:
    """Memory for statements does not grow with single-row writes (nor empty ones)."""
    ledger = Ledger()
    for i in range(10_000):
        ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(i, i + 1)])
    ledger.record_write(WriteOutcome.IN_DOUBT, [(20_000, 20_000), (20_001, 20_002)])
    ledger.record_write(WriteOutcome.FAILED, [(30_000, 30_001), (30_000, 30_001)])  # the same id twice: one row
    assert ledger.statements == 0 and ledger.statements_untracked == 0
    assert list(ledger.statement_intervals()) == []
    assert len(ledger.acknowledged) == 10_000 and ledger.acknowledged.interval_count == 1


def test_record_write_merges_a_statements_intervals() -> None:
    """A statement's intervals are kept sorted and merged: two touching blocks become one interval."""
    ledger = Ledger()
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(90, 100), (0, 10)])
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(10, 20), (20, 30)])
    assert list(ledger.statement_intervals()) == [((0, 10), (90, 100)), ((10, 30),)]


def test_statements_past_the_cap_are_counted_untracked() -> None:
    """Past ``max_statement_intervals`` whole statements are counted, not stored; their ids are still recorded."""
    ledger = Ledger(max_statement_intervals=3)
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(0, 10), (20, 30)])
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(40, 50), (60, 70)])  # would make 4: untracked
    ledger.record_write(WriteOutcome.IN_DOUBT, [(80, 90)])  # makes 3: fits
    ledger.record_write(WriteOutcome.IN_DOUBT, [(90, 95)])
    assert (ledger.statements, ledger.statements_untracked) == (2, 2)
    assert list(ledger.statement_intervals()) == [((0, 10), (20, 30)), ((80, 90),)]
    assert len(ledger.acknowledged) == 40 and len(ledger.in_doubt) == 15
    report = check(ledger, IntervalSet.from_intervals([(0, 10), (40, 45), (80, 85), (90, 92)]))
    assert (report.partial.count, report.partial.sample) == (2, ((0, 10), (20, 30), (80, 90)))  # the stored ones only


@pytest.mark.parametrize("intervals", [[(0, 5), (7, 3)], [(-1, 3)], [(0, 5), (1, 2**63)]])
def test_record_write_refuses_a_bad_interval_before_recording_anything(intervals: list[tuple[int, int]]) -> None:
    """One bad interval rejects the whole statement; the ledger is untouched."""
    ledger = Ledger()
    with pytest.raises(ValueError):
        ledger.record_write(WriteOutcome.ACKNOWLEDGED, intervals)
    assert len(ledger.acknowledged) == 0 and ledger.statements == 0
    with pytest.raises(ValueError):
        Ledger(max_statement_intervals=-1)


def test_duplicate_proof_recovers_every_interval_of_a_statement() -> None:
    """The proof of each interval of a retried statement moves its in-doubt ids (as the executor does)."""
    ledger = Ledger()
    ledger.record_write(WriteOutcome.IN_DOUBT, [(0, 10), (50, 60)])
    assert sum(ledger.duplicate_proof(start, end) for start, end in [(0, 10), (50, 60)]) == 20
    assert expand(ledger.recovered) == set(range(10)) | set(range(50, 60))


# partial statements

partial_case = st.tuples(
    st.lists(st.tuples(st.sampled_from(list(WriteOutcome)), statement), max_size=15),
    ops,
    st.integers(0, 4),
)


@FEWER
@given(partial_case)
def test_partial_statements_match_a_set_model(
    case: tuple[list[tuple[WriteOutcome, list[tuple[int, int]]]], list[tuple[bool, tuple[int, int]]], int],
) -> None:
    """``partial`` is exactly the multi-id statements, of any outcome, with some but not all ids observed."""
    writes_, observed_ops, sample_size = case
    ledger = Ledger()
    for outcome, intervals in writes_:
        ledger.record_write(outcome, intervals)
    observed, reference = build(observed_ops)

    report = check(ledger, observed, sample_size=sample_size)

    expected = []
    for _, intervals in writes_:
        ids_ = set().union(*(range(s, e) for s, e in intervals))
        if len(ids_) > 1 and 0 < len(ids_ & reference) < len(ids_):
            expected.append(list(IntervalSet.from_intervals(intervals).intervals()))
    assert report.partial.count == len(expected)
    assert report.partial.intervals == sum(len(spans) for spans in expected)
    assert report.partial.sample == tuple(span for spans in expected for span in spans)[:sample_size]
    assert report.ok == (report.partial.count == 0 and report.lost.count == 0 and report.unexpected.count == 0)


def test_partial_alone_fails_the_check() -> None:
    """An in-doubt statement half applied breaks atomicity: not ok, though nothing is lost or unexpected."""
    ledger = Ledger()
    ledger.record_write(WriteOutcome.IN_DOUBT, [(0, 10)])
    report = check(ledger, IntervalSet.from_intervals([(0, 5)]))
    assert report.lost.count == report.unexpected.count == report.duplicated.count == 0
    assert (report.partial.count, report.partial.intervals, report.partial.sample) == (1, 1, ((0, 10),))
    assert not report.ok
    assert check(ledger, IntervalSet.from_intervals([(0, 10)])).ok
    assert check(ledger, IntervalSet()).ok


def test_partial_check_scales_to_a_large_cap() -> None:
    """200,000 remembered statements are checked in one pass, O(log n) each; the next one is counted untracked."""
    ledger = Ledger(max_statement_intervals=200_000)
    for start in range(0, 400_000, 2):
        ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(start, start + 2)])
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(500_000, 500_010)])
    assert (ledger.statements, ledger.statements_untracked) == (200_000, 1)
    observed = IntervalSet.from_intervals([(0, 300_001), (300_003, 400_000)])
    report = check(ledger, observed)
    assert (report.partial.count, report.partial.sample) == (2, ((300_000, 300_002), (300_002, 300_004)))
    assert report.lost.sample == ((300_001, 300_003), (500_000, 500_010))


# reports


def test_report_to_dict_is_plain_json() -> None:
    """Every finding becomes count, intervals and a list-of-lists sample; ``ok`` is included."""
    ledger = Ledger()
    ledger.record_write(WriteOutcome.ACKNOWLEDGED, [(0, 10)])
    report = check(ledger, IntervalSet.from_intervals([(0, 4), (6, 10)]))
    as_dict = report.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["ok"] is False
    assert as_dict["lost"] == {"count": 2, "intervals": 1, "sample": [[4, 6]]}
    assert as_dict["partial"] == {"count": 1, "intervals": 1, "sample": [[0, 10]]}
    assert set(as_dict) == {
        "ok",
        "lost",
        "unexpected",
        "recovered",
        "in_doubt_absent",
        "duplicated",
        "untracked",
        "partial",
    }
    assert report.counts() == {k: v["count"] for k, v in as_dict.items() if k != "ok"}


def test_merge_reports_sums_counts_and_keeps_the_first_samples() -> None:
    """Per-node reports combine by adding counts; samples come from the first reports, up to sample_size."""
    finding = Finding(3, 2, ((1, 2), (5, 7)))
    empty = Finding(0, 0, ())
    a = CheckReport(finding, empty, empty, empty, empty, empty, partial=Finding(1, 1, ((0, 9),)))
    b = CheckReport(Finding(1, 1, ((100, 101),)), finding, empty, empty, empty, empty)
    merged = merge_reports([a, b], sample_size=3)
    assert merged.lost == Finding(4, 3, ((1, 2), (5, 7), (100, 101)))
    assert merged.unexpected == finding and merged.partial == Finding(1, 1, ((0, 9),))
    assert not merged.ok
    nothing = merge_reports([])
    assert nothing.ok and nothing.to_dict()["lost"] == {"count": 0, "intervals": 0, "sample": []}


@FEWER
@given(partial_case, partial_case)
def test_merging_reports_of_disjoint_parts_counts_like_one_check(
    left: tuple[list[tuple[WriteOutcome, list[tuple[int, int]]]], list[tuple[bool, tuple[int, int]]], int],
    right: tuple[list[tuple[WriteOutcome, list[tuple[int, int]]]], list[tuple[bool, tuple[int, int]]], int],
) -> None:
    """Two nodes' ledgers on disjoint ids: the merged per-node reports count what one check of both finds."""
    offset = 1_000
    whole, whole_observed = Ledger(), IntervalSet()
    reports = []
    for shift, (writes_, observed_ops, _) in ((0, left), (offset, right)):
        part = Ledger()
        observed, _ = build(observed_ops)
        for outcome, intervals in writes_:
            part.record_write(outcome, intervals)
            whole.record_write(outcome, [(s + shift, e + shift) for s, e in intervals])
        for s, e in observed.intervals():
            whole_observed.add(s + shift, e + shift)
        reports.append(check(part, observed))
    merged, single = merge_reports(reports), check(whole, whole_observed)
    assert merged.counts() == single.counts()
    assert merged.ok == single.ok


def test_checker_scalars_are_whole_numbers() -> None:
    """Issue 15: counts of ids are ints in summary.json and summary.txt (`check.lost=0`, not `0.0`)."""
    from holoload.engine.verification import Verification

    ledger = Ledger()
    ledger.acknowledge(0, 10)
    report = check(ledger, IntervalSet.from_intervals([(0, 8)]))
    scalars = Verification(report, complete=True).scalars()
    assert scalars["lost"] == 2 and all(type(v) is int for v in scalars.values())
    assert Verification(report, complete=False).scalars() == {}
