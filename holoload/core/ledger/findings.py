"""Checker findings: a ledger compared with the ids visible in the database (lost, duplicated, partial...)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from itertools import islice
from typing import Any

from holoload.core.ledger.book import Ledger
from holoload.core.ledger.intervals import IntervalSet

__all__ = ["CheckReport", "Finding", "check", "merge_reports"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One checker category: how many ids (statements, for ``partial``), in how many intervals, and the first few."""

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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form.

        Returns:
            ``{"count": n, "intervals": n, "sample": [[start, end], ...]}``.
        """
        return {"count": self.count, "intervals": self.intervals, "sample": [[s, e] for s, e in self.sample]}


_NO_FINDING = Finding(0, 0, ())


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` found; ``ok`` when nothing was lost, duplicated, unexpected or partly visible."""

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
    partial: Finding = _NO_FINDING
    """Multi-row statements, of any outcome, with some ids present and some absent (atomicity
    broken). ``count`` is statements; ``intervals`` and ``sample`` are their id intervals."""

    @property
    def ok(self) -> bool:
        """No lost, duplicated, unexpected or partly visible ids."""
        return (
            self.lost.count == 0
            and self.duplicated.count == 0
            and self.unexpected.count == 0
            and self.partial.count == 0
        )

    def counts(self) -> dict[str, int]:
        """Each finding's count by field name (``lost``, ..., ``partial``), e.g. as gate scalars.

        Returns:
            ``{"lost": n, "unexpected": n, "recovered": n, "in_doubt_absent": n, "duplicated": n,
            "untracked": n, "partial": n}``.
        """
        return {name: getattr(self, name).count for name in _FINDING_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, for artifacts.

        Returns:
            ``{"ok": bool, "lost": Finding.to_dict(), ...}`` with every finding by field name.
        """
        result: dict[str, Any] = {"ok": self.ok}
        for name in _FINDING_NAMES:
            finding: Finding = getattr(self, name)
            result[name] = finding.to_dict()
        return result


_FINDING_NAMES = tuple(f.name for f in fields(CheckReport))


def merge_reports(reports: Iterable[CheckReport], *, sample_size: int = 5) -> CheckReport:
    """Combine reports of disjoint parts (e.g. one per node of a per-node-data target).

    Counts and interval counts add up (intervals that touch across parts are not merged);
    each finding keeps the first ``sample_size`` sample intervals, in report order.

    Args:
        reports: the reports; none gives an all-zero (ok) report.
        sample_size: how many sample intervals each merged finding keeps.

    Returns:
        The combined report.
    """
    reports = list(reports)
    merged: dict[str, Finding] = {}
    for name in _FINDING_NAMES:
        parts: list[Finding] = [getattr(report, name) for report in reports]
        sample = tuple(islice((span for part in parts for span in part.sample), sample_size))
        merged[name] = Finding(sum(p.count for p in parts), sum(p.intervals for p in parts), sample)
    return CheckReport(**merged)


def check(
    ledger: Ledger,
    observed: IntervalSet,
    *,
    duplicates: IntervalSet | None = None,
    sample_size: int = 5,
) -> CheckReport:
    """Compare the ledger with the ids visible in the database.

    Ids proven applied by ``duplicate_proof`` are held to the acknowledged standard: missing
    means lost. Multi-row statements remembered by ``record_write`` that are partly visible
    land in ``partial`` whatever their outcome (an acknowledged one is then also ``lost``).
    Cost is linear in the number of intervals, not ids, plus O(log n) per remembered
    statement interval.

    The partial check assumes a statement's ids are only ever retried as the whole
    statement: re-inserting a subset of a failed statement's ids in a new statement would
    make the old one look partial.

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
        partial=_partial(ledger, observed, sample_size),
    )


def _partial(ledger: Ledger, observed: IntervalSet, sample_size: int) -> Finding:
    count, intervals, sample = ledger.partial_statements(observed, sample_size)
    return Finding(count, intervals, tuple(sample))
