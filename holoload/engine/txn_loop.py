"""TxnLoop: one writer's transactions of a list-append or bank workload, with the WriterLoop's interface.

`executors.make_loop` picks it for a workload of `kind = "list_append"` or `"bank"`, so transactions
run under every executor (open and closed loop) and in worker processes. A process keeps one
`TxnBook`: per workload its generators (shared by its writers, so their transactions collide), the
list-append history or bank histories it records into, outcomes and attempts. The coordinator
gathers every worker's book after the load (`TxnBook.records`, merged by `isolation_run`).

Latency is per transaction from its intended start, through every attempt (`TxnRunner`); a
transaction in doubt (connection lost at COMMIT, cut short by the drain) is recorded in doubt,
and its writer continues as a new history process (Elle's rule: an in-doubt process may still be
running that transaction).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio

from holoload.adapters.pg.connect import quote_ident
from holoload.adapters.pg.pool import Writer
from holoload.core.isolation.bank import BankHistory
from holoload.core.isolation.generate import BankGenerator, BankSpec, ListAppendGenerator, ListAppendSpec, ReadAll
from holoload.core.isolation.history import HistoryBuilder
from holoload.core.ledger.book import WriteOutcome
from holoload.core.model.workload import Workload
from holoload.core.outcome import ErrorClass
from holoload.core.stats.window import OpKey, OpRecorder
from holoload.engine.transactions import BankExecutor, IsolationLevel, ListAppendExecutor, TxnRetry, TxnRunner
from holoload.engine.workload_run import WorkloadRun

__all__ = ["KEY_SPAN", "TxnBook", "TxnLoop", "TxnState"]

#: On a per-node target the history numbers node i's list-append keys from i x KEY_SPAN (independent databases:
#: their keys are distinct objects); each node's table uses its own keys from 0, so a split key hits every node.
KEY_SPAN = 1 << 32
_LEVELS = {
    "serializable": IsolationLevel.SERIALIZABLE,
    "repeatable_read": IsolationLevel.REPEATABLE_READ,
    "read_committed": IsolationLevel.READ_COMMITTED,
}


@dataclass
class TxnState:
    """One workload's transactions in one process: generators, histories, counts."""

    kind: str
    history: HistoryBuilder = field(default_factory=HistoryBuilder)
    banks: dict[int, BankHistory] = field(default_factory=dict)  # by data slot (0 on a shared target)
    list_gens: dict[int, ListAppendGenerator] = field(default_factory=dict)
    bank_gens: dict[int, BankGenerator] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    aborted: int = 0


class TxnBook:
    """A process's transactional workloads (by name), and the history process numbers it hands out.

    Args:
        shared: every endpoint sees the same data (else each node is its own database: its own keys and bank).
        endpoints: how many endpoints the target has.
        part: (index, parts) of this process among every worker that may ever run (process numbers, values
            and transfer ids are unique over the fleet: index + parts x n).
        seed: base of the generators' seeds.
    """

    def __init__(self, *, shared: bool, endpoints: int, part: tuple[int, int] = (0, 1), seed: int = 0) -> None:
        self.shared = shared
        self.endpoints = max(1, endpoints)
        self.part = part
        self.seed = seed
        self.states: dict[str, TxnState] = {}
        self._processes = 0

    def state(self, workload: Workload) -> TxnState:
        """The workload's state in this process (made on first use; kept over phases)."""
        found = self.states.get(workload.name)
        if found is None:
            found = self.states[workload.name] = TxnState(workload.kind)
        return found

    def new_process(self) -> int:
        """A history process number no other writer of the fleet uses."""
        index, parts = self.part
        number = index + parts * self._processes
        self._processes += 1
        return number

    def slot(self, endpoint: int) -> int:
        """The data slot of an endpoint: its own on a per-node target, 0 where data is shared."""
        return 0 if self.shared else endpoint

    def _unique(self, slot: int) -> tuple[int, int]:
        """(start, step) of values or ids unique over the fleet's processes and data slots."""
        index, parts = self.part
        n = 1 if self.shared else self.endpoints
        return 1 + index * n + slot, parts * n

    def list_generator(self, workload: Workload, endpoint: int) -> ListAppendGenerator:
        """The process's list-append generator for an endpoint's data (shared by its writers there)."""
        state, slot = self.state(workload), self.slot(endpoint)
        gen = state.list_gens.get(slot)
        if gen is None:
            low, high = workload.ops_range
            spec = ListAppendSpec(workload.keys, low, high, workload.read_share, workload.writes_per_key or None)
            start, step = self._unique(slot)
            rng = random.Random(f"{workload.seed}|{self.seed}|{workload.name}|{slot}|{self.part[0]}")
            gen = state.list_gens[slot] = ListAppendGenerator(
                spec, rng, value_start=start, value_step=step, key_start=slot * KEY_SPAN
            )
        return gen

    def bank_generator(self, workload: Workload, endpoint: int) -> tuple[BankGenerator, BankHistory]:
        """The process's bank generator and history for an endpoint's data."""
        state, slot = self.state(workload), self.slot(endpoint)
        gen = state.bank_gens.get(slot)
        if gen is None:
            start, step = self._unique(slot)
            rng = random.Random(f"{workload.seed}|{self.seed}|{workload.name}|{slot}|{self.part[0]}")
            gen = state.bank_gens[slot] = BankGenerator(bank_spec(workload), rng, id_start=start, id_step=step)
        return gen, state.banks.setdefault(slot, BankHistory())

    def records(self) -> dict[str, dict[str, Any]]:
        """Everything recorded, as plain picklable data (what a worker hands back after the load)."""
        out: dict[str, dict[str, Any]] = {}
        for name, state in self.states.items():
            out[name] = {
                "kind": state.kind,
                "txns": state.history.build(),
                "banks": {slot: (list(b.transfers), list(b.reads)) for slot, b in state.banks.items()},
                "outcomes": dict(state.outcomes),
                "attempts": dict(state.attempts),
                "errors": dict(state.errors),
                "aborted": state.aborted,
            }
        return out


def bank_spec(workload: Workload) -> BankSpec:
    """The bank's shape from a workload's keys."""
    return BankSpec(workload.accounts, workload.initial_balance, workload.max_amount, workload.read_every)


def _lock_first(w: Workload) -> tuple[str, ...]:
    """`lock_first`: the workload's tables locked right after BEGIN, before the transaction's snapshot."""
    if not w.lock_first:
        return ()
    tables = [w.txn_table] + ([f"{w.txn_table}_log"] if w.kind == "bank" else [])
    return (f"LOCK TABLE {', '.join(quote_ident(t) for t in tables)} IN ROW EXCLUSIVE MODE",)


class TxnLoop:
    """One writer's transactions; `execute` runs one (the executors' contract, as `WriterLoop.execute`)."""

    def __init__(self, run: WorkloadRun, writer: Writer, seed: int, book: TxnBook) -> None:
        plan = self.plan = run.plan
        w = self.workload = plan.workload
        self.run = run
        self.writer = writer
        self.perf_ns = plan.perf_ns
        self.book = book
        self.state = book.state(w)
        retry = TxnRetry.from_policy(w.retry) if "retry" in w.model_fields_set else TxnRetry()
        self.runner = TxnRunner(
            writer,
            _LEVELS[w.isolation],
            retry=retry,
            timeout_s=w.txn_timeout,
            rules=plan.rules,
            clock_ns=plan.perf_ns,
            rng=random.Random(seed),
            session_sql=w.session_sql,
            first_sql=_lock_first(w),
        )
        self.pulse = plan.pulses[writer.endpoint] if writer.endpoint < len(plan.pulses) else None
        now = self.perf_ns()
        self.recorders: list[OpRecorder] = [
            plan.aggregator.recorder(OpKey(plan.phase, w.name, op.name, writer.name), now) for op in w.ops
        ]
        process = book.new_process()
        self.bank: BankExecutor | None = None
        self.lists: ListAppendExecutor | None = None
        if w.kind == "bank":
            self.bank_gen, history = book.bank_generator(w, writer.endpoint)
            self.bank = BankExecutor(
                self.runner,
                history,
                process,
                accounts=w.txn_table,
                log=f"{w.txn_table}_log",
                read_then_write=w.transfer == "read_then_write",
                allow_negative=w.allow_negative,
            )
        else:
            self.list_gen = book.list_generator(w, writer.endpoint)
            self.lists = ListAppendExecutor(
                self.runner,
                w.txn_table,
                self.state.history,
                process,
                key_offset=book.slot(writer.endpoint) * KEY_SPAN,
            )

    async def execute(self, intended_ns: int | None = None, *, open_loop: bool = False) -> None:
        """One transaction: latency from `intended_ns` (open loop) or its start, outcome and attempts counted."""
        perf_ns = self.perf_ns
        started = perf_ns()
        op: Any = self.bank_gen.next_op() if self.bank is not None else self.list_gen.next_txn()
        rec = self.recorders[1 if isinstance(op, ReadAll) else 0]
        if open_loop and intended_ns is not None:
            rec.schedule_lag(intended_ns, started)
            intended_ns = min(intended_ns, started)  # an early start counts from when it really began
        intended = started if intended_ns is None else intended_ns
        run = self.run
        run.completed += 1
        run.budget.operations += 1
        try:
            if self.bank is not None:
                result = await self.bank.run(op, intended_ns=intended)
            else:
                assert self.lists is not None
                result = await self.lists.run(op, intended_ns=intended)
        except anyio.get_cancelled_exc_class():
            # cut short by the drain: the runner discarded the connection; whether it committed is unknown
            if self.bank is not None and not isinstance(op, ReadAll):
                self.bank.history.transfer(
                    op, WriteOutcome.IN_DOUBT, process=self.bank.process, invoke_ns=started, complete_ns=None
                )
            self.state.outcomes[WriteOutcome.IN_DOUBT.value] += 1
            rec.failure(ErrorClass.TIMEOUT)
            run.cut_short += 1
            raise
        state = self.state
        state.outcomes[result.outcome.value] += 1
        state.attempts[result.attempts] += 1
        for _ in range(result.attempts - 1):
            rec.retry()
        if result.aborted is not None:
            state.aborted += 1
        if result.outcome is WriteOutcome.ACKNOWLEDGED or result.aborted is not None:
            rec.success(intended, started, result.done_ns, 1, service=True)  # an abort is the body's own decision
            if self.pulse is not None and self.pulse.armed:
                self.pulse.hit(result.done_ns)
            return
        error = result.error
        error_class = error.error_class if error is not None else ErrorClass.OTHER
        rec.failure(error_class)
        if error is not None:
            state.errors[error.sqlstate or error.error_class.value] += 1
            key = rec.key
            self.plan.aggregator.errors.note(
                (key.workload, key.op, key.endpoint), error.sqlstate, error.error_class.value, error.message, perf_ns()
            )
        if result.outcome is WriteOutcome.IN_DOUBT:
            self._new_process()

    def _new_process(self) -> None:
        """After a transaction in doubt this writer is a new history process."""
        number = self.book.new_process()
        if self.bank is not None:
            self.bank.process = number
        elif self.lists is not None:
            self.lists.process = number
