"""After the faults heal: read every ledger back from the cluster and report what was lost."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anyio
import asyncpg

from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg.checker import verify
from holoload.adapters.pg.connect import describe_error
from holoload.core.errors import HololoadError
from holoload.core.events import CheckFinished, EventSink, PhaseChanged, RunProblem
from holoload.core.ledger.acklog import AckLog
from holoload.core.ledger.findings import CheckReport, merge_reports
from holoload.core.model.scenario import RunSettings
from holoload.engine.ledgers import LedgerBook


@dataclass(frozen=True, slots=True)
class Verification:
    """The merged checker report; `complete` is False when some ledger could not be read back."""

    report: CheckReport | None
    complete: bool
    lost_acks: tuple[dict[str, object], ...] = ()  # each lost range: who acknowledged it, and when

    def scalars(self) -> dict[str, float]:
        """Gate scalars: lost, duplicated, partial, unexpected, recovered, in_doubt_absent, untracked.

        Missing (so gates on them fail with 'no data') unless every ledger was checked.
        """
        if self.report is None or not self.complete:
            return {}
        return {name: count for name, count in self.report.counts().items()}  # ints: summary shows 0, not 0.0


async def verify_after_load(
    surfaces: TargetSurfaces,
    book: LedgerBook,
    sink: EventSink,
    run: RunSettings,
    *,
    at_once: bool,
    clock: Callable[[], float] = time.time,
    acks: AckLog | None = None,
    server_names: Mapping[str, str] | None = None,
) -> Verification | None:
    """The checker at the end of a run (None: no ledgers).

    After a stop at once (`at_once`) it still runs, as the servers need no writers for it, but
    only while they answer: nodes reached within 5 s, all of it within `run.stop_grace`; a check
    that runs out of time is a problem on the record and leaves the ledger gates without a value.
    """
    if not book.entries():
        return None
    detail = f"{len(book.entries())} ledgers" + (
        f", after a stop at once, within {run.stop_grace:g}s" if at_once else ""
    )
    sink.emit(PhaseChanged(clock(), "verify", detail))
    found: Verification | None = None
    with anyio.move_on_after(run.stop_grace if at_once else None) as scope:
        found = await verify_ledgers(
            surfaces,
            book,
            sink,
            reconnect_s=min(5.0, run.stop_grace) if at_once else surfaces.target.ready_timeout,
            timeout_s=min(run.statement_timeout, run.stop_grace) if at_once else run.statement_timeout,
            clock=clock,
            acks=acks,
            server_names=server_names,
        )
    if scope.cancelled_caught:
        sink.emit(RunProblem(clock(), "check", f"the checker did not finish within {run.stop_grace:g}s after the stop"))
    return found


async def verify_ledgers(
    surfaces: TargetSurfaces,
    book: LedgerBook,
    sink: EventSink,
    *,
    reconnect_s: float,
    timeout_s: float,
    clock: Callable[[], float] = time.time,
    acks: AckLog | None = None,
    server_names: Mapping[str, str] | None = None,
) -> Verification:
    """Check each ledger through the endpoint owning its data (every endpoint when data is shared).

    A node that cannot be reached within `reconnect_s` is a failed check, reported as such
    (its acknowledged ids count as not verified, never as verified).

    Returns:
        The reports merged, and whether every check ran.
    """
    reports: list[CheckReport] = []
    lost_acks: list[dict[str, object]] = []
    complete = True
    for entry in book.entries():
        writable = surfaces.target.writable()
        # shared data is read back through every endpoint but standbys (a lagging replica is not a loss)
        nodes = [i for i in range(len(surfaces.names)) if writable[i]] if entry.endpoint is None else [entry.endpoint]
        for node in nodes:
            name = surfaces.names[node]
            started = time.perf_counter()
            try:
                await _connect(surfaces, node, reconnect_s)
                async with surfaces.session(node, "checker") as conn:  # cut short: nothing left running
                    report, seen = await verify(conn, entry.table, entry.id_column, entry.ledger, timeout_s=timeout_s)
            except (*DB_ERRORS, HololoadError, TimeoutError) as exc:
                detail = str(describe_error(exc)) if not isinstance(exc, HololoadError) else str(exc)
                sink.emit(RunProblem(clock(), "check", f"{entry.table} through {name}: {detail}"))
                sink.emit(
                    CheckFinished(
                        clock(),
                        entry.table,
                        name,
                        False,
                        {},
                        entry.ledger.summary(),
                        0,
                        time.perf_counter() - started,
                        detail,
                    )
                )
                complete = False
                continue
            reports.append(report)
            if acks is not None and report.lost.count:
                lost = entry.ledger.acknowledged.union(entry.ledger.recovered).difference(seen.present)
                for row in acks.describe(lost.intervals(), names=server_names):
                    lost_acks.append({"table": entry.table, "checked_through": name, **row})
            sink.emit(
                CheckFinished(
                    clock(),
                    entry.table,
                    name,
                    report.ok,
                    report.to_dict(),
                    entry.ledger.summary(),
                    seen.queries,
                    time.perf_counter() - started,
                )
            )
    return Verification(merge_reports(reports) if reports else None, complete, tuple(lost_acks))


async def _connect(surfaces: TargetSurfaces, node: int, within_s: float) -> asyncpg.Connection:
    """Open the node's checker connection, retried while a restarted node comes back."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await surfaces.control(node, "checker")
        except HololoadError:
            if time.monotonic() >= deadline:
                raise
            await anyio.sleep(0.5)
