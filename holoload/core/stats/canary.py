"""Pure reducer from run events to the figures gates and reports read (histograms, counts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from holoload.core.events import (
    BaselineTaken,
    BatchFinished,
    ChaosFinished,
    Event,
    FinalCount,
)
from holoload.core.stats.histogram import LatencyHistogram


@dataclass(slots=True)
class BatchStats:
    """One canary op's figures: latency of completed batches, and outcome counts."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    runs: int = 0
    rows: int = 0
    ok: int = 0
    errors: int = 0
    mismatches: int = 0


class CanaryAggregator:
    """Folds canary events into per-op histograms and the scalars the canary gates use.

    Args:
        ops: the op names the scenario defines (so an op with no samples still shows).
        planned_rows: rows all planned batches insert (the expected final count is baseline + this).
        split_expected: how many split actions are enabled.
    """

    def __init__(self, ops: list[str], planned_rows: int, split_expected: int) -> None:
        self.ops: dict[str, BatchStats] = {op: BatchStats() for op in ops}
        self.baseline_count: int | None = None
        self.final_count: int | None = None
        self.planned_rows = planned_rows
        self.failed_batches = 0
        self.batches_done = 0
        self.split_expected = split_expected
        self.split_ok = 0
        self.chaos_failed = 0
        self.failed_batch_indexes: list[int] = []
        self.server: object | None = None  # a ServerView, for gates on sampled cluster signals

    def emit(self, event: Event) -> None:
        """Fold one event in; events of other kinds are ignored."""
        if isinstance(event, BatchFinished):
            self._batch(event)
        elif isinstance(event, BaselineTaken):
            self.baseline_count = event.baseline_count
        elif isinstance(event, FinalCount):
            self.final_count = event.final_count
        elif isinstance(event, ChaosFinished):
            if event.action == "split" and event.ok:
                self.split_ok += 1
            if not event.ok:
                self.chaos_failed += 1

    def _batch(self, event: BatchFinished) -> None:
        stats = self.ops.setdefault(event.op, BatchStats())
        stats.runs += 1
        stats.rows += event.rows
        self.batches_done += 1
        if event.status == "error":
            stats.errors += 1
        else:
            stats.histogram.record_s(event.elapsed_s)
            if event.status == "ok":
                stats.ok += 1
            else:
                stats.mismatches += 1
        if event.status != "ok":
            self.failed_batches += 1
            self.failed_batch_indexes.append(event.index)

    @property
    def expected_final_count(self) -> int | None:
        if self.baseline_count is None:
            return None
        return self.baseline_count + self.planned_rows

    # GateContext
    def histogram(self, op: str) -> LatencyHistogram | None:
        stats = self.ops.get(op)
        return stats.histogram if stats is not None else None

    def scalar(self, name: str) -> float | None:
        values: dict[str, int | None] = {
            "batches": self.batches_done,
            "failed_batches": self.failed_batches,
            "baseline_count": self.baseline_count,
            "final_count": self.final_count,
            "expected_final_count": self.expected_final_count,
            "split_triggered": self.split_ok,
            "split_expected": self.split_expected,
            "chaos_failed": self.chaos_failed,
        }
        value = values.get(name)
        return None if value is None else float(value)
