"""Tests for holoload.core.stats.histogram: recording, clamping, merge, diff and encoding laws."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.stats.histogram import LatencyHistogram

# Smaller range than the default hour keeps percentile scans fast in property tests.
HIGHEST_US = 60_000_000
values_us = st.lists(st.integers(min_value=1, max_value=HIGHEST_US), min_size=1, max_size=200)
percentiles = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
PROPERTY = settings(max_examples=60, deadline=None)


def fed(values: list[int]) -> LatencyHistogram:
    """A histogram with ``values`` recorded."""
    histogram = LatencyHistogram(highest_us=HIGHEST_US)
    for value in values:
        histogram.record_us(value)
    return histogram


def exact_percentile(values: list[int], p: float) -> int:
    """Nearest-rank percentile of the raw values, using HDR's rank rule."""
    ordered = sorted(values)
    rank = max(int(p * len(ordered) / 100 + 0.5), 1)
    return ordered[min(rank, len(ordered)) - 1]


def test_empty_histogram_has_no_statistics() -> None:
    """An empty histogram answers None rather than a made-up zero."""
    histogram = LatencyHistogram()
    assert histogram.count == 0
    assert histogram.min_us is None
    assert histogram.max_us is None
    assert histogram.mean_us is None
    assert histogram.percentile_us(95) is None


def test_record_tracks_count_extremes_and_mean() -> None:
    """Recorded values show up in count, exact min/max and the mean."""
    histogram = LatencyHistogram()
    histogram.record_us(100)
    histogram.record_us(300, count=3)
    assert histogram.count == 4
    assert (histogram.min_us, histogram.max_us) == (100, 300)
    assert histogram.mean_us == pytest.approx(250, rel=1e-3)


def test_record_s_rounds_to_microseconds() -> None:
    """Seconds are stored as the nearest whole microsecond."""
    histogram = LatencyHistogram()
    histogram.record_s(0.0012346)
    assert histogram.min_us == 1235


def test_record_rejects_count_below_one() -> None:
    """A zero or negative repeat count is a caller bug."""
    with pytest.raises(ValueError, match="count >= 1"):
        LatencyHistogram().record_us(5, count=0)


def test_values_below_lowest_are_clamped_and_counted() -> None:
    """A too-small value is recorded at the lowest bound, counted, and kept as raw min."""
    histogram = LatencyHistogram()
    histogram.record_us(0, count=2)
    histogram.record_us(-3)
    histogram.record_us(50)
    assert histogram.count == 4
    assert histogram.clamped_low == 3
    assert histogram.min_us == -3
    assert histogram.percentile_us(50) == 1


def test_values_above_highest_are_clamped_and_counted() -> None:
    """A too-large value is recorded at the highest bound, counted, and kept as raw max."""
    histogram = LatencyHistogram(highest_us=1_000_000)
    histogram.record_us(5_000_000)
    assert histogram.count == 1
    assert histogram.clamped_high == 1
    assert histogram.max_us == 5_000_000
    assert histogram.percentile_us(100) == pytest.approx(1_000_000, rel=1e-3)


@pytest.mark.parametrize("p", [-0.1, 100.1])
def test_percentile_outside_0_100_is_rejected(p: float) -> None:
    """Percentiles are defined on [0, 100] only."""
    with pytest.raises(ValueError, match="between 0 and 100"):
        fed([1]).percentile_us(p)


@pytest.mark.parametrize("kwargs", [{"lowest_us": 0}, {"highest_us": 1}, {"significant_figures": 6}])
def test_invalid_layout_is_rejected(kwargs: dict[str, int]) -> None:
    """Bounds and precision out of range are refused at construction."""
    with pytest.raises(ValueError, match="expected"):
        LatencyHistogram(**kwargs)


@PROPERTY
@given(values_us, percentiles)
def test_percentile_is_within_hdr_precision_of_exact(values: list[int], p: float) -> None:
    """The HDR percentile is within 0.1% (3 significant figures) of the exact one."""
    result = fed(values).percentile_us(p)
    exact = exact_percentile(values, p)
    assert result is not None
    assert abs(result - exact) <= exact / 1000


@PROPERTY
@given(values_us, percentiles, percentiles)
def test_percentiles_are_monotone_in_p(values: list[int], p: float, q: float) -> None:
    """A higher percentile is never a smaller value."""
    histogram = fed(values)
    low, high = sorted((p, q))
    assert histogram.percentile_us(low) <= histogram.percentile_us(high)  # type: ignore[operator]


@PROPERTY
@given(values_us, values_us)
def test_merge_equals_one_histogram_fed_everything(a: list[int], b: list[int]) -> None:
    """Merging b into a gives the counts, extremes and percentiles of a+b fed at once."""
    merged = fed(a)
    merged.merge(fed(b))
    together = fed(a + b)
    assert merged.count == len(a) + len(b)
    assert (merged.min_us, merged.max_us) == (min(a + b), max(a + b))
    for p in (0, 50, 90, 99, 99.9, 100):
        assert merged.percentile_us(p) == together.percentile_us(p)


@PROPERTY
@given(st.lists(st.integers(min_value=-5, max_value=HIGHEST_US * 2), max_size=50))
def test_clamping_counts_every_out_of_range_value(values: list[int]) -> None:
    """Every value outside the bounds is recorded and counted as clamped, none dropped."""
    histogram = fed(values)
    assert histogram.count == len(values)
    assert histogram.clamped_low == sum(1 for v in values if v < 1)
    assert histogram.clamped_high == sum(1 for v in values if v > HIGHEST_US)


def test_merge_adds_clamp_counters() -> None:
    """Clamp counters survive a merge."""
    a, b = fed([0]), fed([HIGHEST_US + 1, 0])
    a.merge(b)
    assert (a.clamped_low, a.clamped_high) == (2, 1)


def test_merge_rejects_a_different_layout() -> None:
    """Histograms with different bounds cannot be merged without losing precision."""
    with pytest.raises(ValueError, match="different layouts"):
        LatencyHistogram().merge(LatencyHistogram(highest_us=1_000_000))


def test_copy_is_independent() -> None:
    """Recording into a copy leaves the original untouched."""
    original = fed([10, 20])
    clone = original.copy()
    clone.record_us(30)
    assert (original.count, clone.count) == (2, 3)
    assert clone.max_us == 30 and original.max_us == 20


@PROPERTY
@given(values_us, values_us)
def test_diff_is_the_window_since_a_snapshot(before: list[int], after: list[int]) -> None:
    """Cumulative minus an earlier snapshot equals a histogram of the later values only."""
    cumulative = fed(before)
    snapshot = cumulative.copy()
    for value in after:
        cumulative.record_us(value)
    window = cumulative.diff(snapshot)
    alone = fed(after)
    assert window.count == len(after)
    for p in (0, 50, 99, 100):
        assert window.percentile_us(p) == alone.percentile_us(p)


def test_diff_min_max_come_from_buckets() -> None:
    """A window's extremes are bucket values, close to (not exactly) the raw ones."""
    cumulative = fed([5])
    snapshot = cumulative.copy()
    cumulative.record_us(123_456)
    window = cumulative.diff(snapshot)
    assert window.min_us == pytest.approx(123_456, rel=1e-3)
    assert window.max_us == pytest.approx(123_456, rel=1e-3)


def test_diff_of_identical_snapshot_is_empty() -> None:
    """Nothing recorded since the snapshot gives an empty window."""
    cumulative = fed([7, 8])
    window = cumulative.diff(cumulative.copy())
    assert window.count == 0
    assert window.percentile_us(50) is None


def test_diff_subtracts_clamp_counters() -> None:
    """Clamps in the window are those after the snapshot only."""
    cumulative = fed([0])
    snapshot = cumulative.copy()
    cumulative.record_us(0)
    cumulative.record_us(HIGHEST_US + 1)
    window = cumulative.diff(snapshot)
    assert (window.clamped_low, window.clamped_high) == (1, 1)


def test_diff_rejects_a_histogram_that_is_not_a_snapshot() -> None:
    """Subtracting samples that were never recorded is a caller bug."""
    with pytest.raises(ValueError, match="not an earlier snapshot"):
        fed([10]).diff(fed([10, 20]))


def test_encode_decode_round_trips_counts_and_percentiles() -> None:
    """The HDR payload restores count, layout and percentiles; clamp counters are lost."""
    original = fed([0, 150, 2_000, 2_000, 45_000_000])
    restored = LatencyHistogram.decode(original.encode())
    assert isinstance(original.encode(), bytes)
    assert restored.count == original.count
    assert restored.highest_us == HIGHEST_US
    for p in (0, 50, 100):
        assert restored.percentile_us(p) == original.percentile_us(p)
    assert restored.clamped_low == 0
    assert restored.max_us == pytest.approx(45_000_000, rel=1e-3)


def test_decode_rejects_garbage() -> None:
    """A payload that is not HDR raises ValueError."""
    with pytest.raises(ValueError, match="HDR histogram payload"):
        LatencyHistogram.decode(b"not a histogram")


def test_reset_forgets_everything() -> None:
    """After reset the histogram is empty again, counters included."""
    histogram = fed([0, 10, HIGHEST_US + 1])
    histogram.reset()
    assert histogram.count == 0
    assert (histogram.min_us, histogram.clamped_low, histogram.clamped_high) == (None, 0, 0)
    assert histogram.percentile_us(50) is None


sparse_values = st.lists(st.integers(min_value=0, max_value=3_600_000_000), min_size=1, max_size=200)


@settings(max_examples=40, deadline=None)
@given(sparse_values, sparse_values)
def test_adding_bucket_counts_equals_recording_each_bucket(first: list[int], second: list[int]) -> None:
    """add_bucket_counts (also onto a histogram that holds samples) equals record_us of each bucket's low value."""
    from holoload.core.stats.recorder import SparseHistogram, bucket_low

    expected, added = LatencyHistogram(), LatencyHistogram()
    for values in (first, second):
        sparse = SparseHistogram()
        for value in values:
            sparse.record(value)
        for index, n in sparse.counts.items():
            expected.record_us(max(bucket_low(index), 1), n)
        added.add_bucket_counts(sparse.counts)
    assert added.count == expected.count == len(first) + len(second)
    assert (added.min_us, added.max_us) == (expected.min_us, expected.max_us)
    for p in (0.0, 50.0, 99.0, 100.0):
        assert added.percentile_us(p) == expected.percentile_us(p)
    assert (
        LatencyHistogram.decode(added.encode())._hdr.counts[:]
        == LatencyHistogram.decode(expected.encode())._hdr.counts[:]
    )


def test_adding_bucket_counts_rejects_what_no_bucket_holds() -> None:
    """An index outside the layout or a count below one is an error, not a silent skip."""
    histogram = LatencyHistogram()
    with pytest.raises(ValueError, match="outside"):
        histogram.add_bucket_counts({10**9: 1})
    with pytest.raises(ValueError, match="counts >= 1"):
        histogram.add_bucket_counts({5: 0})
