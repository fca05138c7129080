"""Builds a phase's workload runs and their writers, whole or as one process's share."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from holoload.adapters.pg.pool import Writer
from holoload.core.ledger.acklog import AckLog
from holoload.core.model.scenario import RunSettings
from holoload.core.model.workload import Phase, Workload
from holoload.core.outcome import ErrorRules
from holoload.core.pacing.generators import SeqAllocator
from holoload.core.pacing.schedule import split_weighted
from holoload.core.stats.window import Aggregator
from holoload.engine.ledgers import LedgerBook, Pulse
from holoload.engine.workload_run import WorkloadPlan, WorkloadRun

if TYPE_CHECKING:
    from holoload.engine.txn_loop import TxnBook


def writer_counts(workload: Workload, names: Sequence[str]) -> list[int]:
    """Writers per endpoint over every process (the same split a single process makes)."""
    weights = [1.0 if not workload.endpoints else workload.endpoints.get(n, 0.0) for n in names]
    if workload.open_loop:
        return split_weighted(workload.max_inflight, weights)
    if workload.executor == "iterations":
        return split_weighted(workload.concurrency or 1, weights)
    top = workload.concurrency or int(max([workload.start] + [s.target for s in workload.stages]))
    active = sum(1 for w in weights if w > 0)
    return split_weighted(top * active, weights)


def owned(total: int, share: tuple[int, int]) -> int:
    """How many of an endpoint's `total` writer slots process `share[0]` of `share[1]` owns."""
    index, count = share
    return len(range(index, total, count))


@dataclass
class RunBuilder:
    """What building a phase's runs takes; one per engine (or worker process).

    Args:
        names: endpoint names by index.
        dsns: where writers connect, by endpoint (through a fault proxy when one is in front).
        settings: the scenario's run settings (timeouts).
        rules: the target's error-classification rules.
        aggregator: where the runs record.
        book: ledgers for ledger ops.
        pulses: recovery pulses by endpoint (empty in a worker process).
        share: (this process, how many processes split the load).
        seq_part: (index, parts) of the seq id space.
    """

    names: Sequence[str]
    dsns: Sequence[str]
    settings: RunSettings
    rules: ErrorRules | None
    aggregator: Aggregator
    book: LedgerBook
    pulses: Sequence[Pulse] = ()
    share: tuple[int, int] = (0, 1)
    seq_part: tuple[int, int] = (0, 1)
    perf_ns: Callable[[], int] = time.perf_counter_ns
    seq: dict[int, SeqAllocator] = field(default_factory=dict)
    acks: AckLog | None = None
    txns: TxnBook | None = None  # transactional workloads' generators and histories

    def build(self, phase: Phase, *, stopping: bool = False) -> tuple[list[WorkloadRun], list[Writer]]:
        """The phase's runs (this process's share of each workload) and every writer they use."""
        runs: list[WorkloadRun] = []
        every: list[Writer] = []
        for workload in phase.workloads:
            totals = writer_counts(workload, self.names)
            per_endpoint = self._writers(workload, totals)
            every += [w for ws in per_endpoint for w in ws]
            plan = WorkloadPlan(
                phase.name,
                workload,
                per_endpoint,
                self.aggregator,
                self.seq,
                perf_ns=self.perf_ns,
                rules=self.rules,
                op_timeout_s=self.settings.statement_timeout + 5,
                ledgers=self.book,
                pulses=self.pulses,
                share=self.share,
                seq_part=self.seq_part,
                totals=totals,
                iterations=self._iterations(workload, totals),
                endpoint_names=self.names,
                acks=self.acks,
                drain_s=min(self.settings.drain, self.settings.statement_timeout + 5),
                txns=self.txns,
            )
            runs.append(WorkloadRun(plan, stop_requested=stopping))
        return runs, every

    def _iterations(self, workload: Workload, totals: list[int]) -> int | None:
        """An iterations workload's share: in proportion to the writers each process owns."""
        index, count = self.share
        if workload.iterations is None or count == 1:
            return None
        per_process = [sum(owned(t, (p, count)) for t in totals) for p in range(count)]
        return split_weighted(workload.iterations, per_process)[index]

    def _writers(self, workload: Workload, totals: list[int]) -> list[list[Writer]]:
        """Writers of the owned slots per endpoint; every slot draws its jitter seed, owned or not."""
        settings = self.settings
        rng = random.Random(workload.seed)
        index, count = self.share
        out: list[list[Writer]] = []
        for i, total in enumerate(totals):
            mine: list[Writer] = []
            for slot in range(total):
                seed = rng.random()
                if slot % count == index:
                    mine.append(
                        Writer(
                            i,
                            self.names[i],
                            self.dsns[i],
                            connect_timeout_s=settings.connect_timeout,
                            statement_timeout_s=settings.statement_timeout,
                            rng=random.Random(seed),
                        )
                    )
            out.append(mine)
        return out
