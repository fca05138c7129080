"""A ledger that only writes down what happened, for a worker process to ship to its coordinator.

Workers do not judge ledgers: the coordinator holds the real `Ledger` per (table, id column,
endpoint) and replays each worker's records into it, in the order they were made, so its
state is the one a single process would have built. Runs of single-id writes with the same
outcome and adjacent ids fold into one record, which keeps a window of single-row inserts
to a handful of tuples.
"""

from __future__ import annotations

from collections.abc import Sequence

from holoload.core.ledger.book import Ledger, WriteOutcome

# One record: (kind, outcome, start, end, intervals). Kinds: "r" single-id writes with one
# outcome over [start, end), folded into a run; "w" a statement's intervals; "d" a duplicate
# proof of [start, end) (outcome None).
Record = tuple[str, WriteOutcome | None, int, int, tuple[tuple[int, int], ...]]


class JournalLedger(Ledger):
    """Takes `record_write` and `duplicate_proof` like a Ledger, and keeps only the records."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        super().__init__(max_statement_intervals=0)
        self.records: list[Record] = []

    def record_write(self, outcome: WriteOutcome, intervals: Sequence[tuple[int, int]]) -> None:
        records = self.records
        if len(intervals) == 1:
            start, end = intervals[0]
            if end - start == 1:
                last = records[-1] if records else None
                if last is not None and last[0] == "r" and last[1] is outcome and last[3] == start:
                    records[-1] = ("r", outcome, last[2], end, ())
                else:
                    records.append(("r", outcome, start, end, ()))
                return
        records.append(("w", outcome, 0, 0, tuple(intervals)))

    def duplicate_proof(self, start: int, end: int) -> int:
        self.records.append(("d", None, start, end, ()))
        return 0

    def drain(self) -> list[Record]:
        """The records since the last drain."""
        out, self.records = self.records, []
        return out


def replay(ledger: Ledger, records: Sequence[Record]) -> None:
    """Apply a worker's records to the coordinator's ledger, in order.

    Raises:
        ValueError: a record is not one `JournalLedger` makes, or its ids are out of range.
    """
    for kind, outcome, start, end, intervals in records:
        if kind == "r" and outcome is not None:
            ledger.record(outcome, start, end)  # single-id writes: what record_write does for each
        elif kind == "w" and outcome is not None:
            ledger.record_write(outcome, intervals)
        elif kind == "d":
            ledger.duplicate_proof(start, end)
        else:
            raise ValueError(f"unknown ledger record {kind!r}")
