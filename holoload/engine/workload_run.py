"""A workload's share of a phase: its frozen plan (configuration, share) and its run (timing, counters)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from holoload.adapters.pg.pool import Writer
from holoload.core.ledger.acklog import AckLog
from holoload.core.model.workload import Workload
from holoload.core.outcome import ErrorRules
from holoload.core.pacing.generators import SeqAllocator
from holoload.core.stats.window import Aggregator
from holoload.engine.ledgers import LedgerBook, Pulse

if TYPE_CHECKING:
    from holoload.engine.txn_loop import TxnBook


@dataclass
class RetryBudget:
    """Retries allowed so far: at most `fraction` of operations, plus a small head start."""

    fraction: float
    operations: int = 0
    retries: int = 0

    def allow(self) -> bool:
        if self.retries < 10 + self.fraction * self.operations:
            self.retries += 1
            return True
        return False


@dataclass(frozen=True)
class WorkloadPlan:
    """What one process runs of a workload in a phase: fixed once built.

    Args:
        phase: phase name (part of every recorder key).
        workload: the validated workload.
        writers: writers per endpoint (index = endpoint), only endpoints with weight > 0 have any.
        aggregator: where outcomes go.
        seq: id allocators by start value (shared by the process's runs, made on first use).
        perf_ns: monotonic clock.
        rules: the target's error-classification rules.
        op_timeout_s: client-side timeout of one statement.
        ledgers: where ledger ops record their ids.
        pulses: recovery pulses by endpoint (empty in a worker process).
        share: (this process's number, how many processes share the workload). Writer slot s of
            an endpoint belongs to process s % count, and so do that slot's open-loop arrivals.
        seq_part: (index, parts) of the seq id space this process allocates from.
        totals: writers per endpoint over all processes (None: just this one's).
        iterations: this process's share of an iterations workload (None: all of them).
        endpoint_names: endpoint names by index (for endpoint weights when this process has no
            writer on some endpoint).
        acks: chaos runs in one process: who acknowledged which ids, and when.
        drain_s: once the phase's time is up or a stop was asked, how long operations in flight
            may finish before they are cancelled.
        txns: the process's transactional workloads (list_append, bank): generators and histories.
    """

    phase: str
    workload: Workload
    writers: list[list[Writer]]
    aggregator: Aggregator
    seq: dict[int, SeqAllocator]
    perf_ns: Callable[[], int] = time.perf_counter_ns
    rules: ErrorRules | None = None
    op_timeout_s: float | None = None
    ledgers: LedgerBook | None = None
    pulses: Sequence[Pulse] = ()
    share: tuple[int, int] = (0, 1)
    seq_part: tuple[int, int] = (0, 1)
    totals: list[int] | None = None
    iterations: int | None = None
    endpoint_names: Sequence[str] = ()
    acks: AckLog | None = None
    drain_s: float = 10.0
    txns: TxnBook | None = None

    def endpoint_total(self, endpoint: int) -> int:
        """Writers on an endpoint over every process."""
        return len(self.writers[endpoint]) if self.totals is None else self.totals[endpoint]

    def slots(self, endpoint: int) -> list[int]:
        """The writer slots of an endpoint this process owns (their writers, in order)."""
        index, count = self.share
        return [s for s in range(self.endpoint_total(endpoint)) if s % count == index]

    def seq_allocator(self, start: int) -> SeqAllocator:
        """The allocator of ids from `start` (this process's partition of that id space)."""
        allocator = self.seq.get(start)
        if allocator is None:
            index, parts = self.seq_part
            allocator = self.seq[start] = SeqAllocator.partition(start, parts, index)
        return allocator


@dataclass
class WorkloadRun:
    """A plan while its phase runs: when it starts and ends, and what it has done so far.

    Args:
        plan: the frozen configuration and share.
        stop_requested: a graceful stop was asked (no new operation starts).
        start_at_ns: when the workload's schedule starts (None: when its executor starts).
        phase_end_ns: when the phase's duration runs out (None: no limit).
        skip_before_ns: open loop, a restarted worker process: arrivals intended before this
            belonged to the dead one and are skipped.
        completed: operations started (the chaos `iterations` trigger counts them).
        cut_short: operations cancelled by the drain (counted as timeouts, writes in doubt).
        late_drops: open loop, drops of arrivals whose dispatcher was already more than
            `LATE_DROP_MS` behind their intended time (the client's lateness, not the server's).
    """

    plan: WorkloadPlan
    stop_requested: bool = False
    start_at_ns: int | None = None
    phase_end_ns: int | None = None
    skip_before_ns: int | None = None
    completed: int = 0
    cut_short: int = 0
    late_drops: int = 0
    start_ns: int = 0
    remaining: int | None = field(init=False)
    budget: RetryBudget = field(init=False)

    def __post_init__(self) -> None:
        workload = self.plan.workload
        self.budget = RetryBudget(workload.retry.budget)
        if workload.executor != "iterations":
            self.remaining = None
        else:
            self.remaining = self.plan.iterations if self.plan.iterations is not None else workload.iterations

    def begin(self) -> int:
        """Mark the executor's start: the shared start time when one was given."""
        self.start_ns = self.start_at_ns if self.start_at_ns is not None else self.plan.perf_ns()
        return self.start_ns

    def take_iteration(self) -> bool:
        """Iterations executor: claim one iteration; False when they are all claimed."""
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def over(self, now_ns: int, schedule_end_ns: int | None) -> bool:
        if self.stop_requested:
            return True
        if self.phase_end_ns is not None and now_ns >= self.phase_end_ns:
            return True
        return schedule_end_ns is not None and now_ns >= schedule_end_ns
