"""The sparse hot-path histogram agrees with hdrh bucket for bucket."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.stats.recorder import HIGHEST_US, SparseHistogram, bucket_high, bucket_index, bucket_low, merged

values = st.lists(st.integers(min_value=0, max_value=HIGHEST_US), min_size=1, max_size=300)
percentiles = st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=6)


def reference(vals: list[int]) -> HdrHistogram:
    h = HdrHistogram(1, HIGHEST_US, 3)
    for v in vals:
        h.record_value(v)
    return h


@given(st.integers(min_value=0, max_value=HIGHEST_US))
def test_bucket_index_matches_hdrh_and_inverts(value: int) -> None:
    """Our index is hdrh's, and the bucket bounds contain the value."""
    h = HdrHistogram(1, HIGHEST_US, 3)
    index = bucket_index(value)
    assert index == h._counts_index_for(value)
    assert bucket_low(index) <= value <= bucket_high(index)
    assert bucket_low(index) == h.get_lowest_equivalent_value(value)
    assert bucket_high(index) == h.get_highest_equivalent_value(value)


@settings(max_examples=60, deadline=None)
@given(values, percentiles)
def test_percentiles_equal_hdrh(vals: list[int], ps: list[float]) -> None:
    """Every percentile equals hdrh's get_value_at_percentile on the same values."""
    sparse = SparseHistogram()
    for v in vals:
        sparse.record(v)
    ref = reference(vals)
    assert sparse.percentiles_us(ps) == [ref.get_value_at_percentile(p) for p in ps]
    assert (sparse.count, sparse.min_us, sparse.max_us) == (len(vals), min(vals), max(vals))


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_merge_equals_one_histogram_fed_everything(a: list[int], b: list[int]) -> None:
    """Merging two histograms gives the counts and percentiles of one fed all values."""
    ha, hb, hall = SparseHistogram(), SparseHistogram(), SparseHistogram()
    for v in a:
        ha.record(v)
        hall.record(v)
    for v in b:
        hb.record(v)
        hall.record(v)
    m = merged([ha, hb])
    assert m.counts == hall.counts
    assert m.percentiles_us([50, 99, 100]) == hall.percentiles_us([50, 99, 100])
    assert (m.count, m.min_us, m.max_us, m.total_us) == (hall.count, hall.min_us, hall.max_us, hall.total_us)


def test_out_of_range_values_are_clamped_and_counted() -> None:
    """Negative and over-an-hour values are kept (clamped) and counted, never dropped."""
    h = SparseHistogram()
    h.record(-5)
    h.record(HIGHEST_US * 2)
    h.record(10)
    assert h.count == 3 and h.clamped == 2
    assert h.max_us == HIGHEST_US and h.min_us == 0


def test_empty_histogram_has_no_percentiles() -> None:
    """An empty histogram answers None rather than 0."""
    assert SparseHistogram().percentiles_us([50, 99]) == [None, None]


def test_conversion_keeps_percentiles() -> None:
    """to_latency_histogram gives the same percentiles as the sparse one."""
    h = SparseHistogram()
    for v in [120, 130, 5000, 70000, 70001, 2_000_000]:
        h.record(v)
    lat = h.to_latency_histogram()
    assert lat.count == h.count
    for p in (50, 90, 99):
        assert lat.percentile_us(p) == h.percentile_us(p)
