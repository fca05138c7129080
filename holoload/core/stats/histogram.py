"""Latency histogram in integer microseconds: record, merge, percentiles and window diffs."""

from __future__ import annotations

from collections.abc import Mapping

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["LatencyHistogram"]


class LatencyHistogram:
    """An HDR histogram of latencies in whole microseconds that never drops a sample.

    Values outside ``[lowest_us, highest_us]`` are recorded at the nearest bound and
    counted in ``clamped_low`` / ``clamped_high``; ``min_us`` / ``max_us`` keep the
    exact raw extremes seen before clamping. Percentiles and the mean carry HDR
    precision (``significant_figures`` decimal digits).

    Args:
        lowest_us: the smallest distinguishable value, >= 1.
        highest_us: the largest trackable value, >= 2 * lowest_us (default one hour).
        significant_figures: HDR value precision, 1 to 5.

    Raises:
        ValueError: the bounds or precision are out of range.
    """

    __slots__ = ("_hdr", "_max_us", "_min_us", "clamped_high", "clamped_low")

    def __init__(
        self,
        lowest_us: int = 1,
        highest_us: int = 3_600_000_000,
        significant_figures: int = 3,
    ) -> None:
        if lowest_us < 1:
            raise ValueError(f"expected lowest_us >= 1, got {lowest_us}")
        if highest_us < 2 * lowest_us:
            raise ValueError(f"expected highest_us >= 2 * lowest_us ({2 * lowest_us}), got {highest_us}")
        if not 1 <= significant_figures <= 5:
            raise ValueError(f"expected significant_figures in 1..5, got {significant_figures}")
        self._hdr = HdrHistogram(lowest_us, highest_us, significant_figures)
        self._min_us: int | None = None
        self._max_us: int | None = None
        self.clamped_low = 0
        self.clamped_high = 0

    @property
    def lowest_us(self) -> int:
        """The lowest trackable value this histogram was configured with."""
        return int(self._hdr.lowest_trackable_value)

    @property
    def highest_us(self) -> int:
        """The highest trackable value this histogram was configured with."""
        return int(self._hdr.highest_trackable_value)

    @property
    def significant_figures(self) -> int:
        """The HDR precision this histogram was configured with."""
        return int(self._hdr.significant_figures)

    def record_us(self, value_us: int, count: int = 1) -> None:
        """Record ``count`` samples of ``value_us`` microseconds.

        Args:
            value_us: the latency; out-of-range values are clamped and counted.
            count: how many samples share this value, >= 1.

        Raises:
            ValueError: ``count`` is below 1.
        """
        if count < 1:
            raise ValueError(f"expected count >= 1, got {count}")
        value = int(value_us)
        self._min_us = value if self._min_us is None else min(self._min_us, value)
        self._max_us = value if self._max_us is None else max(self._max_us, value)
        if value < self.lowest_us:
            self.clamped_low += count
            value = self.lowest_us
        elif value > self.highest_us:
            self.clamped_high += count
            value = self.highest_us
        if not self._hdr.record_value(value, count):  # pragma: no cover - in range by now
            raise AssertionError(f"hdrh refused in-range value {value}")

    def record_s(self, seconds: float) -> None:
        """Record one sample given in seconds (rounded to the nearest microsecond).

        Args:
            seconds: the latency in seconds.
        """
        self.record_us(round(seconds * 1_000_000))

    @property
    def count(self) -> int:
        """The number of samples recorded, clamped ones included."""
        return int(self._hdr.get_total_count())

    @property
    def min_us(self) -> int | None:
        """The smallest raw value recorded (before clamping), or None when empty."""
        return self._min_us

    @property
    def max_us(self) -> int | None:
        """The largest raw value recorded (before clamping), or None when empty."""
        return self._max_us

    @property
    def mean_us(self) -> float | None:
        """The mean of the recorded (clamped) values at HDR precision, or None when empty."""
        if self.count == 0:
            return None
        return float(self._hdr.get_mean_value())

    def percentile_us(self, p: float) -> int | None:
        """Return the value at percentile ``p``.

        Args:
            p: the percentile, 0 to 100 (0 is the lowest bucket, 100 the highest).

        Returns:
            The highest value equivalent (at HDR precision) to the sample at ``p``
            (the lowest equivalent value for ``p == 0``), or None when empty.

        Raises:
            ValueError: ``p`` is outside [0, 100].
        """
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"expected a percentile between 0 and 100, got {p}")
        if self.count == 0:
            return None
        return int(self._hdr.get_value_at_percentile(p))

    def add_bucket_counts(self, counts: Mapping[int, int]) -> None:
        """Add counts given per HDR bucket index, as one `record_us` per bucket would.

        Each bucket counts as its lowest value (bucket 0, value 0, as the lowest trackable
        value, like `record_us(0)` on a histogram whose `lowest_us` is 1). It writes the
        counts array directly: ~100x cheaper than `record_us` per bucket (hdrh's
        pure-Python record walks its index math per call), which made the per-window
        encode the largest step of closing a window.

        Args:
            counts: bucket index (hdrh's counts index for this layout) -> count >= 1.

        Raises:
            ValueError: an index outside this layout's counts, or a count below 1.
        """
        if not counts:
            return
        hdr = self._hdr
        array, length = hdr.counts, hdr.counts_len
        floor = hdr._counts_index_for(self.lowest_us)  # bucket 0 holds value 0, below every layout's lowest
        first, last = min(counts), max(counts)
        if first < 0 or last >= length:
            raise ValueError(f"bucket index {first if first < 0 else last} outside 0..{length - 1}")
        if min(counts.values()) < 1:
            raise ValueError(f"expected counts >= 1, got {min(counts.values())}")
        for index, n in counts.items():
            array[index if index else floor] += n
        added = sum(counts.values())
        first, last = first or floor, last or floor
        if hdr.total_count:
            first = min(first, hdr._counts_index_for(hdr.min_value))
            last = max(last, hdr._counts_index_for(hdr.max_value))
        hdr.set_internal_tacking_values(first, last, hdr.total_count + added)
        low = int(hdr.get_value_from_index(first))
        high = int(hdr.get_value_from_index(last))
        self._min_us = low if self._min_us is None else min(self._min_us, low)
        self._max_us = high if self._max_us is None else max(self._max_us, high)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every sample, clamp counter and extreme of ``other`` into this histogram.

        Args:
            other: a histogram with the same bounds and precision.

        Raises:
            ValueError: the two histograms are configured differently.
        """
        self._require_same_layout(other)
        if other.count:
            self._hdr.add(other._hdr)
        self.clamped_low += other.clamped_low
        self.clamped_high += other.clamped_high
        if other._min_us is not None:
            self._min_us = other._min_us if self._min_us is None else min(self._min_us, other._min_us)
        if other._max_us is not None:
            self._max_us = other._max_us if self._max_us is None else max(self._max_us, other._max_us)

    def copy(self) -> LatencyHistogram:
        """Return an independent histogram with the same samples and counters."""
        clone = self._empty_like()
        clone.merge(self)
        return clone

    def diff(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """Return the window of samples recorded since ``earlier`` was copied from this.

        Counts and clamp counters are exact. The window's ``min_us`` / ``max_us`` are
        not: raw extremes cannot be subtracted, so they are taken from the window's
        lowest and highest non-empty buckets (HDR precision, and clamped values show
        as the bound they were clamped to).

        Args:
            earlier: an earlier ``copy()`` of this same cumulative histogram.

        Returns:
            A new histogram holding only the samples recorded after ``earlier``.

        Raises:
            ValueError: the layouts differ, or ``earlier`` holds samples this
                histogram does not (it is not an earlier snapshot of it).
        """
        self._require_same_layout(earlier)
        window = self._empty_like()
        mine, theirs, out = self._hdr.counts, earlier._hdr.counts, window._hdr.counts
        first = last = -1
        total = 0
        for index in range(self._hdr.counts_len):
            delta = mine[index] - theirs[index]
            if delta < 0:
                raise ValueError("earlier is not an earlier snapshot of this histogram")
            if delta:
                out[index] = delta
                total += delta
                last = index
                if first < 0:
                    first = index
        window.clamped_low = self.clamped_low - earlier.clamped_low
        window.clamped_high = self.clamped_high - earlier.clamped_high
        if window.clamped_low < 0 or window.clamped_high < 0:
            raise ValueError("earlier is not an earlier snapshot of this histogram")
        if total:
            window._hdr.set_internal_tacking_values(first, last, total)
            window._sync_extremes_from_buckets()
        return window

    def encode(self) -> bytes:
        """Return the HDR V2 compressed, base64-wrapped payload of this histogram.

        The payload carries the bounds, precision and counts; clamp counters and the
        exact raw ``min_us`` / ``max_us`` are not part of the format and are lost.
        """
        return bytes(self._hdr.encode())

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        """Rebuild a histogram from ``encode()`` output.

        Args:
            data: an HDR V2 base64 payload.

        Returns:
            A histogram with the payload's layout and counts; clamp counters are zero
            and ``min_us`` / ``max_us`` come from the buckets (HDR precision).

        Raises:
            ValueError: ``data`` is not a valid HDR payload.
        """
        try:
            hdr = HdrHistogram.decode(data)
        except Exception as exc:  # hdrh raises TypeError, zlib.error and its own errors
            raise ValueError(f"expected an HDR histogram payload: {exc}") from exc
        histogram = cls(
            int(hdr.lowest_trackable_value),
            int(hdr.highest_trackable_value),
            int(hdr.significant_figures),
        )
        if hdr.get_total_count():
            histogram._hdr.add(hdr)
            histogram._sync_extremes_from_buckets()
        return histogram

    def reset(self) -> None:
        """Forget every sample, counter and extreme."""
        self._hdr.reset()
        self._min_us = None
        self._max_us = None
        self.clamped_low = 0
        self.clamped_high = 0

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self.count}, min_us={self._min_us}, "
            f"max_us={self._max_us}, p50_us={self.percentile_us(50)}, "
            f"clamped_low={self.clamped_low}, clamped_high={self.clamped_high})"
        )

    def _empty_like(self) -> LatencyHistogram:
        """A new empty histogram with this one's layout."""
        return LatencyHistogram(self.lowest_us, self.highest_us, self.significant_figures)

    def _require_same_layout(self, other: LatencyHistogram) -> None:
        """Raise ValueError unless ``other`` has the same bounds and precision."""
        mine = (self.lowest_us, self.highest_us, self.significant_figures)
        theirs = (other.lowest_us, other.highest_us, other.significant_figures)
        if mine != theirs:
            raise ValueError(
                f"cannot combine histograms with different layouts: {mine} vs {theirs} "
                "(lowest_us, highest_us, significant_figures)"
            )

    def _sync_extremes_from_buckets(self) -> None:
        """Set min/max from the non-empty buckets when raw extremes are unknown."""
        # hdrh answers p0 with the lowest and p100 with the highest equivalent value.
        self._min_us = int(self._hdr.get_value_at_percentile(0.0))
        self._max_us = int(self._hdr.get_value_at_percentile(100.0))
