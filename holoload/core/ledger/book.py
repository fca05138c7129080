"""Acknowledged-write ledger: id interval sets per write outcome, and the multi-row statements behind them.

The comparison with the ids visible in the database is `holoload.core.ledger.findings.check`.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from enum import StrEnum

from holoload.core.ledger.intervals import IntervalSet

__all__ = [
    "DEFAULT_MAX_STATEMENT_INTERVALS",
    "Ledger",
    "WriteOutcome",
    "outcome_of",
]

#: Multi-row statement intervals a ledger remembers for partial-visibility checks (24 MB at most).
DEFAULT_MAX_STATEMENT_INTERVALS = 1_000_000
_MAX_ID_END = 2**63 - 1  # statement intervals live in array('q'); ids are int8 in the database anyway


class WriteOutcome(StrEnum):
    """What a write attempt did to the database, as far as the client can know."""

    ACKNOWLEDGED = "acknowledged"
    """The server confirmed the commit."""
    FAILED = "failed"
    """Definitely not applied: rejected before running, or rolled back with an error."""
    IN_DOUBT = "in_doubt"
    """Unknown: the request left but no reliable answer came back."""


# Exact codes first, then SQLSTATE classes, then the default below.
_OUTCOME_BY_CODE: dict[str, WriteOutcome] = {
    "40001": WriteOutcome.FAILED,  # serialization_failure: the transaction was rolled back
    "40P01": WriteOutcome.FAILED,  # deadlock_detected: rolled back
    "53300": WriteOutcome.FAILED,  # too_many_connections: refused before admission
    "57P03": WriteOutcome.FAILED,  # cannot_connect_now: refused before admission
    "08001": WriteOutcome.FAILED,  # unable to establish connection: nothing was sent
    "08004": WriteOutcome.FAILED,  # server rejected the connection: nothing was sent
    "40003": WriteOutcome.IN_DOUBT,  # statement_completion_unknown
    "57014": WriteOutcome.IN_DOUBT,  # query_canceled: the cancel may race the commit
}
_OUTCOME_BY_CLASS: dict[str, WriteOutcome] = {
    "08": WriteOutcome.IN_DOUBT,  # connection exception after the request left
    "57": WriteOutcome.IN_DOUBT,  # operator intervention (shutdown mid-write)
    "58": WriteOutcome.IN_DOUBT,  # system error (I/O) around the commit
    "XX": WriteOutcome.IN_DOUBT,  # internal error, e.g. a storage fault under XX000
}


def outcome_of(sqlstate: str | None, *, sent: bool) -> WriteOutcome:
    """Decide what a failed write did, from its SQLSTATE and whether the request left.

    ================================  ===========  ==========================================
    sqlstate                          outcome      why
    ================================  ===========  ==========================================
    any, with ``sent=False``          FAILED       the request never reached the server
    None (no answer)                  IN_DOUBT     connection lost after the request left
    40001, 40P01                      FAILED       serialization failure / deadlock rolled back
    53300, 57P03, 08001, 08004        FAILED       connection refused before admission
    40003                             IN_DOUBT     statement completion unknown
    57014                             IN_DOUBT     a cancel can race the commit
    class 08, 57, 58, XX (e.g. XX000) IN_DOUBT     connection, shutdown, I/O or internal fault
    malformed code                    IN_DOUBT     nothing reliable to go on
    any other code (e.g. 23505)       FAILED       the server reported an error and rolled back
    ================================  ===========  ==========================================

    A 23505 on a *retry* with the same ids is this attempt's failure, and also proof that
    an earlier in-doubt attempt applied: record it with ``Ledger.duplicate_proof``.

    Args:
        sqlstate: the five-character SQLSTATE (case-insensitive), or None when no server
            answer arrived.
        sent: whether the request left the client (False: refused connect, pool timeout).

    Returns:
        FAILED or IN_DOUBT; never ACKNOWLEDGED (this is for failed writes).
    """
    if not sent:
        return WriteOutcome.FAILED
    if sqlstate is None:
        return WriteOutcome.IN_DOUBT
    code = sqlstate.strip().upper()
    if len(code) != 5 or not code.isascii() or not code.isalnum():
        return WriteOutcome.IN_DOUBT
    exact = _OUTCOME_BY_CODE.get(code)
    if exact is not None:
        return exact
    return _OUTCOME_BY_CLASS.get(code[:2], WriteOutcome.FAILED)


class Ledger:
    """Which ids each write outcome covered, as four disjoint interval sets.

    Every recorded id is in exactly one of ``acknowledged``, ``failed``, ``in_doubt`` and
    ``recovered`` (in doubt, then proven applied by a 23505 on a retry). A later, more
    certain outcome wins: acknowledged > recovered > in doubt > failed, so

    - ``acknowledge`` takes ids from any state;
    - ``in_doubt`` takes failed and new ids; acknowledged and recovered ids stay (a later
      attempt's doubt does not undo an earlier commit);
    - ``fail`` takes only new ids (a later refusal does not undo an earlier attempt that
      may have applied);
    - ``duplicate_proof`` moves in-doubt ids to ``recovered``; other ids stay (a failed id
      proven present shows up as *unexpected* in ``check``, which is the signal wanted).

    The in-doubt recorder is ``mark_in_doubt`` because ``in_doubt`` names the set.

    ``record_write`` also remembers each statement that covered more than one id (its
    intervals, whatever its outcome), so ``check`` can find statements that are only
    partly visible: a multi-row statement is atomic, so some-but-not-all of its rows is
    a violation even when the statement was in doubt or failed. Statements are kept in
    three ``array('q')`` (interval starts, interval ends, and each statement's first
    interval), 8 bytes per statement plus 16 per interval; single-id writes are never
    stored. Past ``max_statement_intervals`` stored intervals, further statements are
    only counted in ``statements_untracked`` and escape the partial check.

    Args:
        max_statement_intervals: how many multi-row statement intervals to remember, >= 0.

    Raises:
        ValueError: ``max_statement_intervals`` is negative.
    """

    __slots__ = (
        "_acknowledged",
        "_failed",
        "_in_doubt",
        "_max_statement_intervals",
        "_recovered",
        "_statement_ends",
        "_statement_firsts",
        "_statement_starts",
        "_statements_untracked",
    )

    def __init__(self, *, max_statement_intervals: int = DEFAULT_MAX_STATEMENT_INTERVALS) -> None:
        if max_statement_intervals < 0:
            raise ValueError(f"expected max_statement_intervals >= 0, got {max_statement_intervals}")
        self._acknowledged = IntervalSet()
        self._failed = IntervalSet()
        self._in_doubt = IntervalSet()
        self._recovered = IntervalSet()
        self._max_statement_intervals = max_statement_intervals
        self._statement_starts = array("q")
        self._statement_ends = array("q")
        self._statement_firsts = array("q")  # index into starts/ends of each statement's first interval
        self._statements_untracked = 0

    @property
    def acknowledged(self) -> IntervalSet:
        """Ids whose write the server confirmed (treat as read-only)."""
        return self._acknowledged

    @property
    def failed(self) -> IntervalSet:
        """Ids whose write definitely did not apply (treat as read-only)."""
        return self._failed

    @property
    def in_doubt(self) -> IntervalSet:
        """Ids whose write may or may not have applied (treat as read-only)."""
        return self._in_doubt

    @property
    def recovered(self) -> IntervalSet:
        """Ids once in doubt, proven applied by a 23505 on a retry (treat as read-only)."""
        return self._recovered

    def acknowledge(self, start: int, end: int) -> None:
        """Record ids whose write the server confirmed.

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        self._failed.remove(start, end)
        self._in_doubt.remove(start, end)
        self._recovered.remove(start, end)
        self._acknowledged.add(start, end)

    def mark_in_doubt(self, start: int, end: int) -> None:
        """Record ids whose write outcome is unknown (acknowledged and recovered ids stay).

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        self._failed.remove(start, end)
        for s, e in self._unclaimed(start, end, self.acknowledged, self.recovered):
            self._in_doubt.add(s, e)

    def fail(self, start: int, end: int) -> None:
        """Record ids whose write definitely did not apply (only ids not recorded before).

        Args:
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        for s, e in self._unclaimed(start, end, self.acknowledged, self.recovered, self.in_doubt):
            self._failed.add(s, e)

    def duplicate_proof(self, start: int, end: int) -> int:
        """Record that a retry with these ids hit 23505: the in-doubt ones had applied.

        Args:
            start: the first id of the retried write, >= 0.
            end: one past its last id, >= start.

        Returns:
            How many ids moved from ``in_doubt`` to ``recovered``.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        proven = self.in_doubt.within(start, end)
        for s, e in proven.intervals():
            self._in_doubt.remove(s, e)
            self._recovered.add(s, e)
        return len(proven)

    def record(self, outcome: WriteOutcome, start: int, end: int) -> None:
        """Record ids under ``outcome`` (dispatches to the methods above).

        Args:
            outcome: what the write did.
            start: the first id, >= 0.
            end: one past the last id, >= start.

        Raises:
            ValueError: ``start < 0`` or ``end < start``.
        """
        if outcome is WriteOutcome.ACKNOWLEDGED:
            self.acknowledge(start, end)
        elif outcome is WriteOutcome.IN_DOUBT:
            self.mark_in_doubt(start, end)
        else:
            self.fail(start, end)

    def record_write(self, outcome: WriteOutcome, intervals: Sequence[tuple[int, int]]) -> None:
        """Record one write statement: its ids under ``outcome``, and the statement if it was multi-row.

        Every interval is recorded as ``record`` would. When the statement covered more than
        one id in total, its intervals (sorted and merged) are also remembered for the
        partial-visibility check, up to ``max_statement_intervals``; past that the statement
        is counted in ``statements_untracked``. Nothing is recorded if any interval is bad.

        Args:
            outcome: what the statement did.
            intervals: the half-open ``(start, end)`` id intervals it wrote (usually one;
                two when an allocator block ran out mid-statement).

        Raises:
            ValueError: an interval has ``start < 0``, ``end < start`` or ``end >= 2**63``.
        """
        if len(intervals) == 1:  # the common case, kept cheap
            start, end = intervals[0]
            _check_id_range(start, end)
            self.record(outcome, start, end)
            if end - start > 1:
                self._remember(((start, end),))
            return
        for start, end in intervals:
            _check_id_range(start, end)
        for start, end in intervals:
            self.record(outcome, start, end)
        spans = tuple(IntervalSet.from_intervals(intervals).intervals())
        if sum(end - start for start, end in spans) > 1:  # a single-row statement is atomic by itself
            self._remember(spans)

    def _remember(self, spans: tuple[tuple[int, int], ...]) -> None:
        """Store a multi-row statement's sorted, merged intervals, or count it past the cap."""
        if len(self._statement_starts) + len(spans) > self._max_statement_intervals:
            self._statements_untracked += 1
            return
        self._statement_firsts.append(len(self._statement_starts))
        for start, end in spans:
            self._statement_starts.append(start)
            self._statement_ends.append(end)

    @property
    def statements(self) -> int:
        """How many multi-row statements are remembered for the partial check."""
        return len(self._statement_firsts)

    @property
    def statements_untracked(self) -> int:
        """Multi-row statements not remembered because ``max_statement_intervals`` was reached."""
        return self._statements_untracked

    def statement_intervals(self) -> Iterator[tuple[tuple[int, int], ...]]:
        """Iterate the remembered multi-row statements in recording order.

        Returns:
            An iterator of each statement's sorted, merged ``(start, end)`` intervals.
        """
        starts, ends, firsts = self._statement_starts, self._statement_ends, self._statement_firsts
        for k, first in enumerate(firsts):
            last = firsts[k + 1] if k + 1 < len(firsts) else len(starts)
            yield tuple(zip(starts[first:last], ends[first:last], strict=True))

    def partial_statements(self, observed: IntervalSet, sample_size: int) -> tuple[int, int, list[tuple[int, int]]]:
        """The remembered multi-row statements with some but not all ids in ``observed``.

        Returns:
            (how many statements, how many intervals they span, the first ``sample_size`` intervals).
        """
        starts: list[int] = []
        ends: list[int] = []
        before: list[int] = []  # observed ids in the intervals before each one: count below x in O(log n)
        total = 0
        for start, end in observed.intervals():
            starts.append(start)
            ends.append(end)
            before.append(total)
            total += end - start
        last = len(starts) - 1

        def visible_below(x: int) -> int:
            i = bisect_right(starts, x) - 1
            return 0 if i < 0 else before[i] + min(x, ends[i]) - starts[i]

        # Read the arrays directly: this loop runs once per remembered statement (up to a million).
        stmt_starts, stmt_ends = self._statement_starts, self._statement_ends
        firsts = self._statement_firsts.tolist()
        firsts.append(len(stmt_starts))
        count = intervals = 0
        sample: list[tuple[int, int]] = []
        for lo, hi in zip(firsts[:-1], firsts[1:], strict=True):
            if hi - lo == 1:
                start, end = stmt_starts[lo], stmt_ends[lo]
                i = bisect_right(starts, start) - 1
                if i >= 0 and end <= ends[i]:
                    continue  # inside one observed interval: all present
                if (i < 0 or start >= ends[i]) and (i == last or end <= starts[i + 1]):
                    continue  # inside one gap: all absent
                spans: tuple[tuple[int, int], ...] = ((start, end),)
            else:
                spans = tuple(zip(stmt_starts[lo:hi], stmt_ends[lo:hi], strict=True))
                size = sum(end - start for start, end in spans)
                present = sum(visible_below(end) - visible_below(start) for start, end in spans)
                if present in (0, size):
                    continue
            count += 1
            intervals += len(spans)
            sample.extend(spans[: max(0, sample_size - len(sample))])
        return count, intervals, sample

    def summary(self) -> dict[str, int]:
        """Counts of ids and intervals per state, for reports.

        Returns:
            ``{"acknowledged": ids, "acknowledged_intervals": n, ...}`` for each state.
        """
        result: dict[str, int] = {}
        for name in ("acknowledged", "failed", "in_doubt", "recovered"):
            ids: IntervalSet = getattr(self, name)
            result[name] = len(ids)
            result[f"{name}_intervals"] = ids.interval_count
        return result

    @staticmethod
    def _unclaimed(start: int, end: int, *claimed: IntervalSet) -> Iterator[tuple[int, int]]:
        """The parts of ``[start, end)`` in none of ``claimed`` (O(log n + k) per set)."""
        free = IntervalSet.from_intervals([(start, end)])
        for ids in claimed:
            free = free.difference(ids.within(start, end))
        return free.intervals()


def _check_id_range(start: int, end: int) -> None:
    """Refuse what ``IntervalSet`` refuses, and ids that do not fit the int8 statement arrays."""
    if start < 0 or end < start or end > _MAX_ID_END:
        raise ValueError(f"expected 0 <= start <= end < 2**63, got [{start}, {end})")
