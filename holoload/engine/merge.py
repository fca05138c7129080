"""The coordinator's merge of worker windows into its aggregator, ledgers, recovery pulses and counts."""

from __future__ import annotations

from collections.abc import Sequence

from holoload.core.ledger.journal import replay
from holoload.core.stats.window import Aggregator
from holoload.core.stats.wire import WorkerWindow
from holoload.engine.ledgers import LedgerBook, Pulse

NS_PER_MS = 1_000_000


def absorb_windows(
    windows: Sequence[tuple[WorkerWindow, int]],
    *,
    aggregator: Aggregator,
    book: LedgerBook,
    pulses: Sequence[Pulse],
    names: Sequence[str],
    completed: dict[str, int],
    now_ns: int,
) -> None:
    """Merge workers' windows, each with its clock offset, as if one process had recorded them.

    Stats go into the open window's recorders; success times of every worker are merged and
    sorted before they reach a gap clock or an armed recovery pulse; ledger journals replay in
    order; iteration counts add up in `completed`; error messages merge into the aggregator's log.
    """
    gaps: dict[tuple[str, str], list[int]] = {}
    endpoints: dict[str, list[int]] = {}
    for window, offset in windows:
        for wire in window.stats:
            aggregator.absorb(wire.op_key(), wire.stats(), now_ns)
        for key, ms in window.successes.items():
            gaps.setdefault(key, []).extend(m * NS_PER_MS + offset for m in ms)
        for name, ms in window.endpoint_successes.items():
            endpoints.setdefault(name, []).extend(m * NS_PER_MS + offset for m in ms)
        for workload, n in window.completed.items():
            completed[workload] = completed.get(workload, 0) + n
        for (table, column, endpoint), records in window.journal.items():
            replay(book.at(table, column, endpoint), records)
        aggregator.errors.absorb(window.errors, window.more_errors, offset)
    for (phase, name), times in gaps.items():
        aggregator.absorb_successes(phase, name, sorted(times))
    for name, times in endpoints.items():
        pulse = pulses[names.index(name)] if name in names else None
        if pulse is None or not pulse.armed:
            continue
        for t in sorted(times):
            pulse.hit(t)
            if not pulse.armed:
                break
