"""Acknowledged-write ledger: id interval sets per write outcome, and the checker against visible ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice

from holoload.core.intervals import IntervalSet

__all__ = ["CheckReport", "Finding", "IntervalSet", "Ledger", "WriteOutcome", "check", "outcome_of"]


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
    """

    __slots__ = ("_acknowledged", "_failed", "_in_doubt", "_recovered")

    def __init__(self) -> None:
        self._acknowledged = IntervalSet()
        self._failed = IntervalSet()
        self._in_doubt = IntervalSet()
        self._recovered = IntervalSet()

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


@dataclass(frozen=True, slots=True)
class Finding:
    """One checker category: how many ids, in how many intervals, and the first few."""

    count: int
    intervals: int
    sample: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, ids: IntervalSet, sample_size: int) -> Finding:
        """Summarize ``ids``.

        Args:
            ids: the ids in this category.
            sample_size: how many leading intervals to keep.

        Returns:
            The finding.
        """
        return cls(len(ids), ids.interval_count, tuple(islice(ids.intervals(), sample_size)))


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` found; ``ok`` when nothing was lost, duplicated or unexpected."""

    lost: Finding
    """Acknowledged (or proven recovered) but missing."""
    unexpected: Finding
    """Recorded as failed but present."""
    recovered: Finding
    """In doubt (or proven recovered) and present."""
    in_doubt_absent: Finding
    """In doubt and absent: the write did not apply, which is allowed."""
    duplicated: Finding
    """Seen more than once."""
    untracked: Finding
    """Present but never recorded by the ledger (another run's rows, or stray writes)."""

    @property
    def ok(self) -> bool:
        """No lost, duplicated or unexpected ids."""
        return self.lost.count == 0 and self.duplicated.count == 0 and self.unexpected.count == 0


def check(
    ledger: Ledger,
    observed: IntervalSet,
    *,
    duplicates: IntervalSet | None = None,
    sample_size: int = 5,
) -> CheckReport:
    """Compare the ledger with the ids visible in the database.

    Ids proven applied by ``duplicate_proof`` are held to the acknowledged standard: missing
    means lost. Cost is linear in the number of intervals, not ids.

    Args:
        ledger: what the writers recorded.
        observed: the ids visible in the database (each id once).
        duplicates: the ids seen more than once, if the query could tell.
        sample_size: how many leading intervals each finding keeps.

    Returns:
        The report.
    """
    applied = ledger.acknowledged.union(ledger.recovered)
    recorded = applied.union(ledger.in_doubt).union(ledger.failed)
    return CheckReport(
        lost=Finding.of(applied.difference(observed), sample_size),
        unexpected=Finding.of(ledger.failed.intersection(observed), sample_size),
        recovered=Finding.of(ledger.in_doubt.union(ledger.recovered).intersection(observed), sample_size),
        in_doubt_absent=Finding.of(ledger.in_doubt.difference(observed), sample_size),
        duplicated=Finding.of(duplicates if duplicates is not None else IntervalSet(), sample_size),
        untracked=Finding.of(observed.difference(recorded), sample_size),
    )
