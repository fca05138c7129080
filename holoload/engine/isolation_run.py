"""Transactional workloads around the load: their tables before it, their histories checked after it.

Before the load, `setup_txn_tables` creates each list-append or bank workload's tables fresh on every
data node (range partitioned on their key where the target splits partitions, so a split action with
`table =` can split them). After it, `check_txn_workloads` merges the workers' records (`TxnBook.records`,
times moved onto the coordinator's clock, transactions renumbered in invoke order) and checks them within
the workload's `check_timeout`: the list-append checker against the workload's model, or the bank
checker against the final balances and transfer log read from each data node (`read_bank_final`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio

from holoload.adapters.holofusion.surfaces import DB_ERRORS, TargetSurfaces
from holoload.adapters.pg.connect import describe_error
from holoload.core.errors import SetupError
from holoload.core.events import EventSink, PhaseChanged
from holoload.core.isolation.bank import BankHistory, BankResult, FinalState, check_bank
from holoload.core.isolation.checker import Deadline, check
from holoload.core.isolation.history import Txn
from holoload.core.isolation.report import make_report
from holoload.core.isolation.result import CheckResult
from holoload.core.model.scenario import Scenario
from holoload.core.model.workload import Workload
from holoload.engine.transactions import create_bank_tables, create_list_append_table, read_bank_final
from holoload.engine.txn_loop import bank_spec

__all__ = ["IsolationRun", "check_txn_workloads", "history_file", "setup_txn_tables", "txn_workloads"]


def txn_workloads(scenario: Scenario) -> dict[str, Workload]:
    """Every transactional workload by name (the first phase's definition; validation keeps them alike)."""
    found: dict[str, Workload] = {}
    for phase in scenario.phases:
        for w in phase.workloads:
            if w.is_txn:
                found.setdefault(w.name, w)
    return found


def history_file(workload: str) -> str:
    """The history artifact's name in the results directory (`holoload check` reads it)."""
    return f"history-{workload}.jsonl.gz"


async def setup_txn_tables(
    scenario: Scenario, surfaces: TargetSurfaces, sink: EventSink, clock: Callable[[], float] = time.time
) -> None:
    """Create every transactional workload's tables fresh on every data node.

    Raises:
        SetupError: the server refused or did not answer (exit 2).
    """
    workloads = txn_workloads(scenario)
    if not workloads:
        return
    partitioned = surfaces.target.table_layout == "range_partitioned"
    sink.emit(PhaseChanged(clock(), "setup", f"transaction tables: {', '.join(sorted(workloads))}"))
    for i in surfaces.data_nodes():
        for w in workloads.values():
            try:
                with anyio.fail_after(scenario.run.statement_timeout + 5):
                    async with surfaces.work(i) as conn:
                        if w.kind == "bank":
                            await create_bank_tables(
                                conn, bank_spec(w), w.txn_table, f"{w.txn_table}_log", partitioned=partitioned
                            )
                        else:
                            await create_list_append_table(conn, w.txn_table, partitioned=partitioned)
            except (*DB_ERRORS, TimeoutError) as exc:
                why = "timed out" if isinstance(exc, TimeoutError) else describe_error(exc)
                raise SetupError(
                    f"creating the tables of workload '{w.name}' on {surfaces.names[i]} failed: {why}"
                ) from exc


@dataclass
class _Merged:
    """One workload's records from every worker, on the coordinator's clock."""

    txns: list[Txn] = field(default_factory=list)
    banks: dict[int, BankHistory] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    aborted: int = 0
    workers: int = 0


def _shift(value: int | None, offset: int) -> int | None:
    return None if value is None else value + offset


def merge_records(records: Sequence[tuple[dict[str, dict[str, Any]], int]]) -> dict[str, _Merged]:
    """Workers' `TxnBook.records` (with their clock offsets) merged per workload; list-append transactions
    renumbered in invoke order (a history's ids are its indexes)."""
    merged: dict[str, _Merged] = {}
    for books, offset in records:
        for name, data in books.items():
            m = merged.setdefault(name, _Merged())
            m.workers += 1
            m.txns += [
                t._replace(invoke_ns=t.invoke_ns + offset, complete_ns=_shift(t.complete_ns, offset))
                for t in data["txns"]
            ]
            for slot, (transfers, reads) in data["banks"].items():
                bank = m.banks.setdefault(slot, BankHistory())
                bank.transfers += [
                    type(t)(t.transfer, t.outcome, t.process, t.invoke_ns + offset, _shift(t.complete_ns, offset))
                    for t in transfers
                ]
                bank.reads += [
                    type(r)(r.id, r.process, r.invoke_ns + offset, r.complete_ns + offset, r.balances) for r in reads
                ]
            for key, target in (("outcomes", m.outcomes), ("attempts", m.attempts), ("errors", m.errors)):
                for k, v in data[key].items():
                    target[k] = target.get(k, 0) + v
            m.aborted += data["aborted"]
    for m in merged.values():
        m.txns.sort(key=lambda t: (t.invoke_ns, t.process))
        m.txns = [t._replace(id=i) for i, t in enumerate(m.txns)]
    return merged


@dataclass
class IsolationRun:
    """The checks of a run's transactional workloads: reports by workload (summary.json `isolation`) and
    the list-append histories (written as artifacts by the shell)."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[Txn]] = field(default_factory=dict)


def _counts(m: _Merged | None) -> dict[str, Any]:
    if m is None:
        return {"txns": {}, "attempts": {}, "errors": {}}
    txns = {k: m.outcomes.get(k, 0) for k in ("acknowledged", "failed", "in_doubt")}
    txns["aborted"] = m.aborted
    return {"txns": txns, "attempts": dict(m.attempts), "errors": dict(m.errors)}


async def check_txn_workloads(
    scenario: Scenario,
    surfaces: TargetSurfaces,
    records: Sequence[tuple[dict[str, dict[str, Any]], int]] | None,
    sink: EventSink,
    *,
    lost_workers: int = 0,
    clock: Callable[[], float] = time.time,
) -> IsolationRun:
    """Check every transactional workload's merged history, each within its `check_timeout`.

    Args:
        scenario: the scenario (its transactional workloads).
        surfaces: the target, for the bank's final state.
        records: the workers' records with clock offsets; None when they could not be gathered.
        sink: where progress goes.
        lost_workers: workers lost during the run (their histories with them: no evidence).
        clock: wall clock for events.

    Returns:
        A report per workload; a workload without a usable history gets a "no evidence" report saying why.
    """
    out = IsolationRun()
    workloads = txn_workloads(scenario)
    if not workloads:
        return out
    merged = merge_records(records or [])
    for name, w in workloads.items():
        m = merged.get(name)
        why = ""
        if records is None:
            why = "the workers' histories could not be gathered (the run was cut short)"
        elif lost_workers:
            why = f"{lost_workers} worker process(es) lost, and their transactions with them: the history is incomplete"
        elif m is None:
            why = "no transaction ran"
        sink.emit(PhaseChanged(clock(), "isolation", f"checking {name} ({w.kind}, {w.isolation})"))
        started = time.monotonic()
        result: CheckResult | BankResult | None = None
        history = None
        if m is not None and not why:
            if w.kind == "list_append":
                out.histories[name] = m.txns
                history = history_file(name)
                result, why = await _check_list_append(m.txns, w)
            else:
                result, why = await _check_bank(surfaces, w, m)
        out.reports[name] = make_report(
            workload=name,
            kind=w.kind,
            isolation=w.isolation,
            model=w.check_model,
            counts=_counts(m),
            result=result,
            why_none=why,
            history=history,
            check_s=time.monotonic() - started,
        )
        sink.emit(PhaseChanged(clock(), "isolation", f"{name}: {out.reports[name]['reason']}"))
    return out


async def _check_list_append(txns: list[Txn], w: Workload) -> tuple[CheckResult | None, str]:
    """The checker in a thread (it is CPU-bound), its cycle search bounded by `check_timeout`."""
    deadline = Deadline(time.monotonic, w.check_timeout)
    try:
        result = await anyio.to_thread.run_sync(check, txns, w.check_model, deadline, abandon_on_cancel=True)
    except Exception as exc:  # noqa: BLE001 - a history the checker refuses is reported, never a pass
        return None, f"the checker refused the history: {exc}"
    return result, ""


async def _check_bank(surfaces: TargetSurfaces, w: Workload, m: _Merged) -> tuple[BankResult | None, str]:
    """Each data node's bank against its final state; the results added up."""
    spec = bank_spec(w)
    results: list[BankResult] = []
    for i in surfaces.data_nodes():
        key = 0 if surfaces.shared else i
        history = m.banks.get(key, BankHistory())
        try:
            with anyio.fail_after(w.check_timeout):
                await surfaces.reach(i, "checker")
                async with surfaces.session(i, "checker") as conn:
                    final: FinalState = await read_bank_final(conn, w.txn_table, f"{w.txn_table}_log")
        except (*DB_ERRORS, TimeoutError, SetupError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            return None, f"the final balances on {surfaces.names[i]} could not be read ({why})"
        checking = partial(check_bank, history, initial=spec.initial(), allow_negative=w.allow_negative, final=final)
        results.append(await anyio.to_thread.run_sync(checking))
    return _sum_bank(results), ""


def _sum_bank(results: list[BankResult]) -> BankResult:
    """Per-node bank results as one (counts and stats added, violations concatenated)."""
    counts: dict[str, int] = {}
    violations: dict[str, list[Any]] = {}
    stats: dict[str, int] = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
        for k, found in r.violations.items():
            violations.setdefault(k, []).extend(found)
        for k, v in r.stats.items():
            stats[k] = stats.get(k, 0) + v
    return BankResult(all(r.valid for r in results), counts, violations, stats)
