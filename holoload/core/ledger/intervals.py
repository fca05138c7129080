"""Sets of integer ids as sorted, merged, half-open intervals: memory grows with intervals, not ids."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import islice


class IntervalSet:
    """A set of non-negative integer ids stored as sorted, merged, half-open intervals.

    Intervals are kept disjoint and never adjacent (``[1, 3)`` and ``[3, 5)`` become
    ``[1, 5)``), so memory grows with the number of runs of consecutive ids, not with
    the number of ids. Lookups bisect the parallel ``starts``/``ends`` lists (O(log n));
    an insert or removal splices the lists, which is cheap when ids arrive roughly in
    order (the common case: writers take blocks from a ``SeqAllocator``).
    Set operations walk both interval lists once (O(n + m)).
    """

    __slots__ = ("_ends", "_size", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._size = 0

    @classmethod
    def from_intervals(cls, intervals: Iterable[tuple[int, int]]) -> IntervalSet:
        """Build a set from half-open ``(start, end)`` intervals in any order.

        Args:
            intervals: the intervals; they may overlap, touch or be empty.

        Returns:
            The union of the intervals.

        Raises:
            ValueError: an interval has ``start < 0`` or ``end < start``.
        """
        result = cls()
        for start, end in intervals:
            result.add(start, end)
        return result

    @classmethod
    def _from_normalized(cls, starts: list[int], ends: list[int]) -> IntervalSet:
        """Wrap lists that are already sorted, disjoint and non-adjacent."""
        result = cls()
        result._starts = starts
        result._ends = ends
        result._size = sum(end - start for start, end in zip(starts, ends, strict=True))
        return result

    def add(self, start: int, end: int) -> None:
        """Add the ids ``start <= id < end``, merging with overlapping or adjacent intervals.

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start (``start == end`` adds nothing).

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        _check_range(start, end)
        if start == end:
            return
        # Intervals that end at or after `start` and begin at or before `end` touch the new one.
        low = bisect_left(self._ends, start)
        high = bisect_right(self._starts, end)
        if low < high:
            start = min(start, self._starts[low])
            end = max(end, self._ends[high - 1])
            self._size -= sum(self._ends[i] - self._starts[i] for i in range(low, high))
        self._starts[low:high] = [start]
        self._ends[low:high] = [end]
        self._size += end - start

    def remove(self, start: int, end: int) -> None:
        """Remove the ids ``start <= id < end`` (absent ids are ignored), splitting intervals.

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        _check_range(start, end)
        if start == end:
            return
        # Intervals that end after `start` and begin before `end` overlap the removed range.
        low = bisect_right(self._ends, start)
        high = bisect_left(self._starts, end)
        if low >= high:
            return
        first_start, last_end = self._starts[low], self._ends[high - 1]
        self._size -= sum(self._ends[i] - self._starts[i] for i in range(low, high))
        starts: list[int] = []
        ends: list[int] = []
        if first_start < start:
            starts.append(first_start)
            ends.append(start)
        if last_end > end:
            starts.append(end)
            ends.append(last_end)
        self._starts[low:high] = starts
        self._ends[low:high] = ends
        self._size += sum(e - s for s, e in zip(starts, ends, strict=True))

    def within(self, start: int, end: int) -> IntervalSet:
        """The part of this set inside ``[start, end)``, in O(log n + k) for k intervals found.

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Returns:
            A new set.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        _check_range(start, end)
        if start == end:
            return IntervalSet()
        low = bisect_right(self._ends, start)
        high = bisect_left(self._starts, end)
        starts = self._starts[low:high]
        ends = self._ends[low:high]
        if starts:
            starts[0] = max(starts[0], start)
            ends[-1] = min(ends[-1], end)
        return IntervalSet._from_normalized(starts, ends)

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, int):
            return False
        i = bisect_right(self._starts, id_) - 1
        return i >= 0 and id_ < self._ends[i]

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        shown = ", ".join(f"[{s}, {e})" for s, e in islice(self.intervals(), 8))
        more = ", ..." if self.interval_count > 8 else ""
        return f"IntervalSet({shown}{more}; {self._size} ids)"

    def intervals(self) -> Iterator[tuple[int, int]]:
        """Iterate the intervals in increasing order.

        Returns:
            An iterator of half-open ``(start, end)`` tuples.
        """
        return zip(self._starts, self._ends, strict=True)

    def first(self) -> int | None:
        """The smallest id, or None when empty."""
        return self._starts[0] if self._starts else None

    def last(self) -> int | None:
        """The largest id, or None when empty."""
        return self._ends[-1] - 1 if self._ends else None

    @property
    def interval_count(self) -> int:
        """How many disjoint, non-adjacent intervals hold the ids."""
        return len(self._starts)

    def copy(self) -> IntervalSet:
        """An independent copy.

        Returns:
            A new set with the same ids.
        """
        return IntervalSet._from_normalized(list(self._starts), list(self._ends))

    def intersection(self, other: IntervalSet) -> IntervalSet:
        """Ids in both sets.

        Args:
            other: the other set.

        Returns:
            A new set.
        """
        starts: list[int] = []
        ends: list[int] = []
        a_s, a_e, b_s, b_e = self._starts, self._ends, other._starts, other._ends
        i = j = 0
        while i < len(a_s) and j < len(b_s):
            low = max(a_s[i], b_s[j])
            high = min(a_e[i], b_e[j])
            if low < high:
                _append(starts, ends, low, high)
            if a_e[i] <= b_e[j]:
                i += 1
            else:
                j += 1
        return IntervalSet._from_normalized(starts, ends)

    def difference(self, other: IntervalSet) -> IntervalSet:
        """Ids in this set and not in ``other``.

        Args:
            other: the ids to leave out.

        Returns:
            A new set.
        """
        starts: list[int] = []
        ends: list[int] = []
        b_s, b_e = other._starts, other._ends
        j = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            cursor = start
            while j < len(b_s) and b_e[j] <= cursor:
                j += 1
            while j < len(b_s) and b_s[j] < end:
                if b_s[j] > cursor:
                    _append(starts, ends, cursor, b_s[j])
                cursor = max(cursor, b_e[j])
                if cursor >= end:
                    break  # this `other` interval may also cover the next one of ours
                j += 1
            if cursor < end:
                _append(starts, ends, cursor, end)
        return IntervalSet._from_normalized(starts, ends)

    def union(self, other: IntervalSet) -> IntervalSet:
        """Ids in either set.

        Args:
            other: the other set.

        Returns:
            A new set.
        """
        starts: list[int] = []
        ends: list[int] = []
        a_s, a_e, b_s, b_e = self._starts, self._ends, other._starts, other._ends
        i = j = 0
        while i < len(a_s) or j < len(b_s):
            if j >= len(b_s) or (i < len(a_s) and a_s[i] <= b_s[j]):
                _append(starts, ends, a_s[i], a_e[i])
                i += 1
            else:
                _append(starts, ends, b_s[j], b_e[j])
                j += 1
        return IntervalSet._from_normalized(starts, ends)


def _check_range(start: int, end: int) -> None:
    """Refuse negative ids and reversed ranges."""
    if start < 0:
        raise ValueError(f"expected ids >= 0, got start {start}")
    if end < start:
        raise ValueError(f"expected end >= start, got [{start}, {end})")


def _append(starts: list[int], ends: list[int], start: int, end: int) -> None:
    """Append an interval that starts at or after the last one, merging if they touch."""
    if ends and start <= ends[-1]:
        ends[-1] = max(ends[-1], end)
    else:
        starts.append(start)
        ends.append(end)
