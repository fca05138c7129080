"""Streaming windows: recorders swap into windows, windows fold into totals, gaps and lags (fake clock)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.outcome import ErrorClass
from holoload.core.stats.window import NS_PER_S, Aggregator, GapTracker, OpKey, OpStats

NS_PER_MS = 1_000_000

READ_N1 = OpKey("p", "mixed", "read", "node1")
READ_N2 = OpKey("p", "mixed", "read", "node2")
WRITE_N1 = OpKey("p", "mixed", "write", "node1")
OTHER_READ = OpKey("p", "scan", "read", "node1")
LATER_READ = OpKey("q", "mixed", "read", "node1")


def ok(agg: Aggregator, key: OpKey, at_ns: int, n: int = 1, latency_ns: int = NS_PER_MS) -> None:
    """`n` closed-loop successes of `latency_ns` each, finishing at `at_ns`."""
    rec = agg.recorder(key, at_ns)
    for _ in range(n):
        rec.success(at_ns - latency_ns, at_ns - latency_ns, at_ns)


def test_close_window_swaps_recorders_out_and_folds_them_into_totals() -> None:
    """A closed window holds what was recorded since the last close; totals keep the sum."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 100 * NS_PER_MS, n=3)
    first = agg.close_window(1 * NS_PER_S)
    assert (first.index, first.start_ns, first.end_ns, first.seconds) == (0, 0, NS_PER_S, 1.0)
    assert first.stats[READ_N1].ok == 3
    assert agg.recorder(READ_N1, NS_PER_S).stats.ok == 0  # the open window starts empty
    assert agg.totals[READ_N1].ok == 3

    ok(agg, READ_N1, 1500 * NS_PER_MS, n=2)
    second = agg.close_window(2 * NS_PER_S)
    assert (second.index, second.start_ns, second.end_ns) == (1, NS_PER_S, 2 * NS_PER_S)
    assert second.stats[READ_N1].ok == 2
    assert agg.totals[READ_N1].ok == 5
    assert agg.totals[READ_N1].latency.count == 5


def test_recorder_is_created_once_per_key() -> None:
    """Asking twice for a key's recorder gives the same recorder (workers share it)."""
    agg = Aggregator(0)
    assert agg.recorder(READ_N1, 0) is agg.recorder(READ_N1, 5 * NS_PER_MS)
    assert agg.recorder(READ_N1, 0) is not agg.recorder(READ_N2, 0)


def test_empty_window_still_lists_every_known_key() -> None:
    """A window with no outcomes has zeroed stats for known keys (a stall shows as zeros)."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 10 * NS_PER_MS)
    agg.close_window(NS_PER_S)
    quiet = agg.close_window(2 * NS_PER_S)
    assert quiet.stats[READ_N1].ok == 0 and quiet.stats[READ_N1].latency.count == 0


outcome = st.tuples(
    st.sampled_from([READ_N1, READ_N2, WRITE_N1, OTHER_READ]),
    st.sampled_from(["ok", "error", "drop", "retry", "late", "early"]),
    st.integers(min_value=0, max_value=50_000),
)


def record(agg: Aggregator, base: int, events: list[tuple[OpKey, str, int]]) -> None:
    """Record drawn outcomes into the open window that starts at `base`."""
    for key, what, us in events:
        rec = agg.recorder(key, base)
        if what == "ok":
            rec.success(base, base + 1000, base + 1000 + us * 1000, rows=2)
        elif what == "error":
            rec.failure(ErrorClass.RETRYABLE if us % 2 else ErrorClass.TIMEOUT)
        elif what == "drop":
            rec.drop()
        elif what == "retry":
            rec.retry()
        elif what == "late":
            rec.schedule_lag(base, base + us * 1000)
        else:
            rec.schedule_lag(base + 1000, base)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(outcome, max_size=40), min_size=1, max_size=6))
def test_totals_equal_the_sum_of_the_windows(windows: list[list[tuple[OpKey, str, int]]]) -> None:
    """Whatever is recorded, per-key totals equal the merge of every closed window."""
    agg = Aggregator(0, window_s=1.0, ring_s=60.0)
    closed = []
    for i, events in enumerate(windows):
        base = i * NS_PER_S
        record(agg, base, events)
        closed.append(agg.close_window(base + NS_PER_S))
    for key, total in agg.totals.items():
        expected = OpStats()
        for window in closed:
            expected.merge(window.stats.get(key, OpStats()))
        assert (total.ok, total.rows, total.errors, total.dropped, total.retries, total.early) == (
            expected.ok,
            expected.rows,
            expected.errors,
            expected.dropped,
            expected.retries,
            expected.early,
        )
        for mine, theirs in ((total.latency, expected.latency), (total.service, expected.service)):
            assert mine.counts == theirs.counts and mine.count == theirs.count
        assert total.lag.counts == expected.lag.counts
        assert total.latency.percentile_us(99) == expected.latency.percentile_us(99)


def test_selectors_pick_workload_op_or_workload_dot_op() -> None:
    """`read` picks the op in every workload, `mixed` every op of the workload, `mixed.read` one pair."""
    agg = Aggregator(0)
    ok(agg, READ_N1, NS_PER_MS, n=1)
    ok(agg, READ_N2, NS_PER_MS, n=2)
    ok(agg, WRITE_N1, NS_PER_MS, n=4)
    ok(agg, OTHER_READ, NS_PER_MS, n=8)
    agg.close_window(NS_PER_S)

    def total_ok(selector: str) -> int | None:
        stats = agg.total(selector)
        return None if stats is None else stats.ok

    assert total_ok("read") == 1 + 2 + 8
    assert total_ok("mixed") == 1 + 2 + 4
    assert total_ok("mixed.read") == 1 + 2
    assert total_ok("scan.read") == 8
    assert total_ok("write") == 4
    assert total_ok("scan.write") is None
    assert total_ok("node1") is None  # endpoints are not selectors
    assert set(agg.keys("mixed.read")) == {READ_N1, READ_N2}


def test_totals_and_keys_respect_the_phase_filter() -> None:
    """A phase list limits totals to those phases; None means every phase."""
    agg = Aggregator(0)
    ok(agg, READ_N1, NS_PER_MS, n=2)
    ok(agg, LATER_READ, NS_PER_MS, n=5)
    agg.close_window(NS_PER_S)
    assert agg.total("read").ok == 7  # type: ignore[union-attr]
    assert agg.total("read", ["p"]).ok == 2  # type: ignore[union-attr]
    assert agg.total("read", ["q"]).ok == 5  # type: ignore[union-attr]
    assert agg.total("read", ["warmup"]) is None
    assert agg.keys("mixed.read", ["q"]) == [LATER_READ]


def test_recent_total_covers_the_last_n_seconds_of_closed_windows() -> None:
    """recent_total(sel, N) merges the newest windows until they cover N seconds."""
    agg = Aggregator(0, window_s=1.0)
    assert agg.recent_total("read", 5.0) is None  # nothing closed yet
    for i, n in enumerate([1, 10, 100, 1000]):
        ok(agg, READ_N1, i * NS_PER_S + 500 * NS_PER_MS, n=n)
        agg.close_window((i + 1) * NS_PER_S)
    assert agg.recent_total("read", 1.0).ok == 1000  # type: ignore[union-attr]
    assert agg.recent_total("read", 2.0).ok == 1100  # type: ignore[union-attr]
    assert agg.recent_total("read", 2.5).ok == 1110  # type: ignore[union-attr]
    assert agg.recent_total("read", 60.0).ok == 1111  # type: ignore[union-attr]
    ok(agg, READ_N1, 4 * NS_PER_S + 500 * NS_PER_MS, n=7)  # still in the open window: not counted
    assert agg.recent_total("read", 1.0).ok == 1000  # type: ignore[union-attr]


def test_recent_total_filters_phases_and_selectors() -> None:
    """Only keys of the wanted phases and the selector are merged from the recent windows."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 100 * NS_PER_MS, n=3)
    ok(agg, LATER_READ, 100 * NS_PER_MS, n=4)
    ok(agg, WRITE_N1, 100 * NS_PER_MS, n=5)
    agg.close_window(NS_PER_S)
    assert agg.recent_total("read", 1.0, ["q"]).ok == 4  # type: ignore[union-attr]
    assert agg.recent_total("mixed", 1.0, ["p"]).ok == 8  # type: ignore[union-attr]


def test_ring_keeps_only_ring_seconds_of_windows() -> None:
    """Memory is bounded: the ring holds ring_s / window_s (+1) windows, oldest dropped."""
    agg = Aggregator(0, window_s=1.0, ring_s=3.0)
    for i in range(10):
        ok(agg, READ_N1, i * NS_PER_S + NS_PER_MS)
        agg.close_window((i + 1) * NS_PER_S)
    assert [w.index for w in agg.recent_windows] == [6, 7, 8, 9]
    assert agg.totals[READ_N1].ok == 10  # totals never forget


def test_gap_tracker_keeps_the_longest_stretch_without_success() -> None:
    """Gaps are measured between successes, from the tracker's start, and an open one counts."""
    gaps = GapTracker(0)
    gaps.success(1 * NS_PER_S)
    gaps.success(4 * NS_PER_S)  # a 3 s gap
    gaps.success(5 * NS_PER_S)
    assert gaps.max_gap_ns == 3 * NS_PER_S
    assert gaps.gap_ns(6 * NS_PER_S) == 3 * NS_PER_S
    assert gaps.gap_ns(10 * NS_PER_S) == 5 * NS_PER_S  # open since 5 s: now the longest
    gaps.success(2 * NS_PER_S)  # a late, out-of-order completion never shortens anything
    assert gaps.last_ok_ns == 5 * NS_PER_S and gaps.max_gap_ns == 3 * NS_PER_S


def test_max_gap_counts_an_open_gap_while_the_phase_runs() -> None:
    """With the phase still running, the time since the last success is a gap."""
    agg = Aggregator(0)
    agg.phase_started("p", 0)
    agg.recorder(READ_N1, 0)
    ok(agg, READ_N1, 1 * NS_PER_S)
    ok(agg, READ_N1, 3 * NS_PER_S)
    assert agg.max_gap_ns("read", 3 * NS_PER_S) == 2 * NS_PER_S
    assert agg.max_gap_ns("mixed.read", 9 * NS_PER_S) == 6 * NS_PER_S
    assert agg.max_gap_ns("mixed", 9 * NS_PER_S) == 6 * NS_PER_S
    assert agg.max_gap_ns("nothing", 9 * NS_PER_S) is None


def test_max_gap_freezes_when_the_phase_ends() -> None:
    """After phase_ended, the gap up to the phase end is kept and later time is not a gap."""
    agg = Aggregator(0)
    agg.phase_started("p", 0)
    agg.recorder(READ_N1, 0)
    ok(agg, READ_N1, 1 * NS_PER_S)
    agg.phase_ended("p", 4 * NS_PER_S)  # 3 s without success before the end
    assert agg.max_gap_ns("read", 4 * NS_PER_S) == 3 * NS_PER_S
    assert agg.max_gap_ns("read", 100 * NS_PER_S) == 3 * NS_PER_S
    assert agg.max_gap_ns("read", 100 * NS_PER_S, ["p"]) == 3 * NS_PER_S
    assert agg.max_gap_ns("read", 100 * NS_PER_S, ["q"]) is None


def test_gaps_are_per_phase() -> None:
    """A later phase's gap tracker starts fresh and does not inherit the earlier phase's gap."""
    agg = Aggregator(0)
    agg.phase_started("p", 0)
    agg.recorder(READ_N1, 0)  # workers take their recorders when the phase starts
    ok(agg, READ_N1, 5 * NS_PER_S)
    agg.phase_ended("p", 5 * NS_PER_S)
    agg.phase_started("q", 5 * NS_PER_S)
    agg.recorder(LATER_READ, 5 * NS_PER_S)
    ok(agg, LATER_READ, 5 * NS_PER_S + 100 * NS_PER_MS)
    assert agg.max_gap_ns("read", 5 * NS_PER_S + 300 * NS_PER_MS, ["q"]) == 200 * NS_PER_MS
    assert agg.max_gap_ns("read", 5 * NS_PER_S + 300 * NS_PER_MS, ["p"]) == 5 * NS_PER_S
    assert agg.max_gap_ns("read", 5 * NS_PER_S + 300 * NS_PER_MS) == 5 * NS_PER_S


def test_error_classes_are_counted_separately() -> None:
    """Each failure counts under its class; error_count is their sum and merges add up."""
    agg = Aggregator(0)
    rec = agg.recorder(READ_N1, 0)
    for cls in (ErrorClass.RETRYABLE, ErrorClass.RETRYABLE, ErrorClass.CONNECTION, ErrorClass.CONSTRAINT):
        rec.failure(cls)
    agg.recorder(READ_N2, 0).failure(ErrorClass.RETRYABLE)
    window = agg.close_window(NS_PER_S)
    assert window.stats[READ_N1].errors == {
        ErrorClass.RETRYABLE: 2,
        ErrorClass.CONNECTION: 1,
        ErrorClass.CONSTRAINT: 1,
    }
    assert window.stats[READ_N1].error_count == 4
    merged = agg.total("read")
    assert merged is not None
    assert merged.errors[ErrorClass.RETRYABLE] == 3 and merged.error_count == 5
    assert merged.ok == 0 and merged.latency.count == 0  # failures are not latencies


def test_drops_retries_and_early_starts_are_counted() -> None:
    """Dropped arrivals, retries and early starts are counted, never hidden."""
    agg = Aggregator(0)
    rec = agg.recorder(READ_N1, 0)
    rec.drop()
    rec.drop()
    rec.retry()
    rec.schedule_lag(10 * NS_PER_MS, 9 * NS_PER_MS)  # started 1 ms early (timer granularity)
    rec.schedule_lag(10 * NS_PER_MS, 10 * NS_PER_MS + 250_000)  # 250 µs late
    stats = agg.close_window(NS_PER_S).stats[READ_N1]
    assert (stats.dropped, stats.retries, stats.early) == (2, 1, 1)
    assert stats.lag.count == 2
    assert stats.lag.min_us == 0  # an early start is a lag of 0, not negative
    assert stats.lag.max_us == 250


def test_latency_counts_from_intended_start_and_service_from_send() -> None:
    """Open loop: latency = done - intended (queueing included); service = done - sent."""
    agg = Aggregator(0)
    rec = agg.recorder(READ_N1, 0)
    rec.success(intended_ns=0, sent_ns=300 * NS_PER_MS, done_ns=302 * NS_PER_MS, rows=5)
    stats = agg.close_window(NS_PER_S).stats[READ_N1]
    assert stats.latency.count == 1 and stats.service.count == 1
    assert 301_000 <= stats.latency.max_us <= 302_000  # 3 significant digits
    assert stats.service.max_us == 2_000
    assert stats.rows == 5


def test_closed_loop_success_records_latency_once() -> None:
    """Closed loop without retries (service=False): the latency is the service time, no service sample."""
    agg = Aggregator(0)
    agg.recorder(READ_N1, 0).success(5 * NS_PER_MS, 5 * NS_PER_MS, 8 * NS_PER_MS, service=False)
    stats = agg.close_window(NS_PER_S).stats[READ_N1]
    assert stats.latency.count == 1 and stats.latency.max_us == 3_000
    assert stats.service.count == 0


def test_elapsed_sums_phase_spans() -> None:
    """elapsed_s of phases adds their spans (an open phase counts up to now)."""
    agg = Aggregator(0)
    agg.phase_started("p", 1 * NS_PER_S)
    agg.phase_ended("p", 3 * NS_PER_S)
    agg.phase_started("q", 4 * NS_PER_S)
    assert agg.elapsed_s(["p"], 10 * NS_PER_S) == 2.0
    assert agg.elapsed_s(["p", "q"], 10 * NS_PER_S) == 8.0
    assert agg.elapsed_s(["never"], 10 * NS_PER_S) == 0.0
    assert agg.elapsed_s(None, 10 * NS_PER_S) == 10.0


def test_tagged_windows_fold_into_per_tag_totals() -> None:
    """A window closed with tags is merged into each tag's totals; untagged windows are not."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 500 * NS_PER_MS, n=1)
    agg.close_window(NS_PER_S)  # no fault active
    ok(agg, READ_N1, 1500 * NS_PER_MS, n=10, latency_ns=80 * NS_PER_MS)
    ok(agg, WRITE_N1, 1500 * NS_PER_MS, n=2)
    window = agg.close_window(2 * NS_PER_S, ["split-1", "split"])
    assert window.tags == frozenset({"split-1", "split"})
    ok(agg, READ_N1, 2500 * NS_PER_MS, n=100)
    agg.close_window(3 * NS_PER_S, ["kill-2", "kill", "split"])

    split = agg.tagged_total("read", "split")
    assert split is not None and split.ok == 110
    first = agg.tagged_total("mixed.read", "split-1")
    assert first is not None and first.ok == 10 and first.latency.min_us >= 79_000
    kill = agg.tagged_total("mixed", "kill")
    assert kill is not None and (kill.ok, kill.latency.count) == (100, 100)
    assert agg.total("read").ok == 111  # type: ignore[union-attr]
    assert set(agg.tagged) == {"split-1", "split", "kill-2", "kill"}
    assert set(agg.tagged["split"]) == {READ_N1, WRITE_N1}  # bounded by tags x keys


def test_tagged_total_is_none_for_an_unknown_tag_or_selector() -> None:
    """A tag that never occurred, or a selector it never saw, gives None (gates say "no data")."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 500 * NS_PER_MS, n=3)
    agg.close_window(NS_PER_S, ["net"])
    assert agg.tagged_total("read", "split") is None
    assert agg.tagged_total("write", "net") is None
    quiet = agg.tagged_total("read", "net")
    assert quiet is not None and quiet.ok == 3


def test_tagged_total_respects_phases_and_keeps_a_key_that_saw_nothing() -> None:
    """Phases filter the tagged keys; a key idle during the tag has zero stats, not None."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 500 * NS_PER_MS, n=3)
    agg.recorder(LATER_READ, 0)
    agg.close_window(NS_PER_S, ("split",))
    assert agg.tagged_total("read", "split", ["p"]).ok == 3  # type: ignore[union-attr]
    idle = agg.tagged_total("read", "split", ["q"])
    assert idle is not None and idle.ok == 0 and idle.latency.count == 0
    assert agg.tagged_total("read", "split", ["warmup"]) is None


def test_repeated_tags_in_one_window_count_once() -> None:
    """A tag listed twice for one window (a fault and its kind alike named) merges the window once."""
    agg = Aggregator(0)
    ok(agg, READ_N1, 500 * NS_PER_MS, n=4)
    agg.close_window(NS_PER_S, ["split", "split"])
    assert agg.tagged_total("read", "split").ok == 4  # type: ignore[union-attr]


def _fresh_merge(agg: Aggregator, selector: str, seconds: float, phases: list[str] | None) -> OpStats | None:
    """What `recent` must return, merged from scratch over the ring (the definition)."""
    wanted = None if phases is None else set(phases)
    picked: list[OpStats] = []
    covered = 0.0
    for window in reversed(agg.recent_windows):
        if covered >= seconds - 1e-9:
            break
        if wanted is not None and not any(agg._ran_during(p, window) for p in wanted):
            continue
        covered += window.seconds
        picked += [s for k, s in window.stats.items() if (wanted is None or k.phase in wanted) and k.matches(selector)]
    if not picked:
        return None
    out = OpStats()
    for s in picked:
        out.merge(s)
    return out


def _same(a: OpStats | None, b: OpStats | None) -> bool:
    if a is None or b is None:
        return a is b
    hists = [(x.counts, x.count, x.total_us, x.min_us, x.max_us, x.clamped) for x in (a.latency, a.service, a.lag)]
    theirs = [(x.counts, x.count, x.total_us, x.min_us, x.max_us, x.clamped) for x in (b.latency, b.service, b.lag)]
    fields = (a.ok, a.rows, a.errors, a.dropped, a.retries, a.early)
    return hists == theirs and fields == (b.ok, b.rows, b.errors, b.dropped, b.retries, b.early)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(outcome, max_size=25), min_size=1, max_size=14),
    st.sampled_from([1.0, 2.5, 4.0]),
    st.sampled_from([None, ["p"], ["q"]]),
    st.integers(min_value=0, max_value=14),
)
def test_recent_kept_as_a_sliding_sum_equals_a_fresh_merge_after_every_window(
    windows: list[list[tuple[OpKey, str, int]]], seconds: float, phases: list[str] | None, end_at: int
) -> None:
    """The running sum (new window added, evicted one subtracted) never drifts from the definition.

    Asked after every close, with a short ring (windows evicted), phase p ending part-way (its
    later windows stop counting) and values that move min/max out of the span as it slides.
    """
    agg = Aggregator(0, window_s=1.0, ring_s=3.0)
    agg.phase_started("p", 0)
    agg.phase_started("q", 0)
    for i, events in enumerate(windows):
        base = i * NS_PER_S
        record(agg, base, events)
        agg.close_window(base + NS_PER_S)
        if i == end_at:
            agg.phase_ended("p", base + NS_PER_S)
        for selector in ("read", "mixed", "write"):
            got, _ = agg.recent(selector, seconds, phases)
            assert _same(got, _fresh_merge(agg, selector, seconds, phases)), (i, selector)
            if got is not None:  # a copy: what a caller does with it cannot corrupt the sum
                got.ok += 1000
                got.latency.record(7)
