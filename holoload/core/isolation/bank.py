"""The bank checker: conservation of money in every read, no overdraft, every acknowledged transfer applied once.

A bank history holds transfers (with their outcome: acknowledged, failed, in doubt) and read-all results.
The end state is the accounts' final balances and the ids in the transfer log table, written in the same
transaction as each transfer, so that the log says exactly which transfers took effect.

    history = BankHistory()
    history.transfer(Transfer(1, 0, 3, 5), WriteOutcome.ACKNOWLEDGED, process=0, invoke_ns=10, complete_ns=20)
    history.read(7, process=1, invoke_ns=12, complete_ns=18, balances={0: 95, 1: 100, 2: 100, 3: 105})
    result = check_bank(history, initial=spec.initial(), final=FinalState(balances, logged_ids))
    result.valid, result.counts, result.to_json()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from holoload.core.isolation.generate import Transfer
from holoload.core.ledger.book import WriteOutcome

__all__ = [
    "BalanceRead",
    "BankHistory",
    "BankResult",
    "BankViolation",
    "FinalState",
    "TransferRecord",
    "ViolationKind",
    "check_bank",
    "render_bank_text",
]

KEEP = 100  # violations kept per kind (all are counted)
_SHOWN_TRANSFERS = 10  # transfers attached to one violation


class ViolationKind(StrEnum):
    """What the bank checker can find."""

    WRONG_TOTAL = "wrong-total"  # a read's balances do not sum to the initial total
    WRONG_ACCOUNTS = "wrong-accounts"  # a read is missing accounts, or shows accounts that never existed
    NEGATIVE = "negative-balance"  # a balance below zero where overdrafts are not allowed
    LOST = "lost-transfer"  # acknowledged, but not in the transfer log
    FAILED_APPLIED = "failed-transfer-applied"  # failed (rolled back), yet in the transfer log
    DUPLICATE = "duplicate-transfer"  # a transfer id in the log more than once
    UNKNOWN = "unknown-transfer"  # a log id no transfer had
    BALANCE_MISMATCH = "balance-mismatch"  # a final balance differs from initial + the logged transfers


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One transfer and how it ended (``complete_ns`` None: never completed, in doubt)."""

    transfer: Transfer
    outcome: WriteOutcome
    process: int
    invoke_ns: int
    complete_ns: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        t = self.transfer
        return {
            "id": t.id,
            "from": t.src,
            "to": t.dst,
            "amount": t.amount,
            "outcome": self.outcome.value,
            "process": self.process,
            "invoke_ns": self.invoke_ns,
            "complete_ns": self.complete_ns,
        }

    def text(self) -> str:
        """``transfer 12: 5 from 3 to 1 (acknowledged, process 2)``."""
        t = self.transfer
        return f"transfer {t.id}: {t.amount} from {t.src} to {t.dst} ({self.outcome.value}, process {self.process})"


@dataclass(frozen=True, slots=True)
class BalanceRead:
    """A committed read-all: every account's balance as one transaction saw it (``id`` -1: the final state)."""

    id: int
    process: int
    invoke_ns: int
    complete_ns: int
    balances: Mapping[int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (balances keyed by account id as strings, JSON's only key type)."""
        return {
            "id": self.id,
            "process": self.process,
            "invoke_ns": self.invoke_ns,
            "complete_ns": self.complete_ns,
            "balances": {str(k): v for k, v in sorted(self.balances.items())},
            "total": sum(self.balances.values()),
        }

    def text(self) -> str:
        """``read 7 (process 1): total 795; 0=95 1=100 ...``."""
        label = "final state" if self.id < 0 else f"read {self.id} (process {self.process})"
        shown = " ".join(f"{k}={v}" for k, v in sorted(self.balances.items()))
        return f"{label}: total {sum(self.balances.values())}; {shown}"


@dataclass(frozen=True, slots=True)
class FinalState:
    """What the database holds after the run: each account's balance, and the transfer log's ids."""

    balances: Mapping[int, int]
    logged_ids: Sequence[int]


class BankHistory:
    """Records a bank run as it goes: transfers with their outcome, and committed read-alls."""

    def __init__(self) -> None:
        self.transfers: list[TransferRecord] = []
        self.reads: list[BalanceRead] = []

    def transfer(
        self, transfer: Transfer, outcome: WriteOutcome, *, process: int, invoke_ns: int, complete_ns: int | None
    ) -> None:
        """Record a transfer's end: acknowledged (committed), failed (rolled back), or in doubt."""
        self.transfers.append(TransferRecord(transfer, outcome, process, invoke_ns, complete_ns))

    def read(
        self, read_id: int, *, process: int, invoke_ns: int, complete_ns: int, balances: Mapping[int, int]
    ) -> None:
        """Record a committed read-all's balances (failed reads saw nothing: not recorded)."""
        self.reads.append(BalanceRead(read_id, process, invoke_ns, complete_ns, dict(balances)))


@dataclass(frozen=True, slots=True)
class BankViolation:
    """One violated invariant, with the reads and transfers that show it."""

    kind: ViolationKind
    description: str
    reads: tuple[BalanceRead, ...] = ()
    transfers: tuple[TransferRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for summary.json)."""
        return {
            "kind": self.kind.value,
            "description": self.description,
            "reads": [r.to_dict() for r in self.reads],
            "transfers": [t.to_dict() for t in self.transfers],
        }

    def lines(self) -> list[str]:
        """Human-readable lines: the kind and description, then the reads and transfers."""
        return [f"{self.kind.value}: {self.description}", *(f"  {r.text()}" for r in self.reads)] + [
            f"  {t.text()}" for t in self.transfers
        ]


@dataclass(slots=True)
class BankResult:
    """The bank verdict: ``valid`` when no invariant was violated; counts per kind; the first violations."""

    valid: bool
    counts: dict[str, int]
    violations: dict[str, list[BankViolation]]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def violation_count(self) -> int:
        """Violations of every kind (what a gate reads)."""
        return sum(self.counts.values())

    def to_json(self, examples: int = 10) -> dict[str, Any]:
        """Plain JSON-able form for summary.json; at most ``examples`` violations kept per kind."""
        return {
            "workload": "bank",
            "valid": self.valid,
            "violation_counts": dict(self.counts),
            "violation_count": self.violation_count,
            "stats": dict(self.stats),
            "violations": {k: [v.to_dict() for v in found[:examples]] for k, found in self.violations.items() if found},
        }


class _Log:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.kept: dict[str, list[BankViolation]] = {}

    def add(self, violation: BankViolation) -> None:
        name = violation.kind.value
        self.counts[name] = self.counts.get(name, 0) + 1
        kept = self.kept.setdefault(name, [])
        if len(kept) < KEEP:
            kept.append(violation)


def check_bank(
    history: BankHistory,
    *,
    initial: Mapping[int, int],
    allow_negative: bool = False,
    final: FinalState | None = None,
) -> BankResult:
    """Check a bank history.

    Invariants: every read-all (and the final state) shows exactly the initial accounts and sums to the
    initial total; no balance is below zero unless ``allow_negative``; and, given the final state, the
    transfer log holds every acknowledged transfer once and no failed one (in-doubt ones either way), and
    each account's final balance is its initial one plus the logged transfers, each applied once.

    Args:
        history: the recorded transfers and reads.
        initial: each account's starting balance.
        allow_negative: whether balances may go below zero.
        final: the database's end state (None: only the reads are checked).

    Returns:
        The verdict, counts per violation kind, the offending reads and transfers.
    """
    log = _Log()
    total = sum(initial.values())
    accounts = set(initial)
    by_start = sorted(history.transfers, key=lambda r: r.invoke_ns)
    reads = list(history.reads)
    if final is not None:
        end_ns = max([r.complete_ns or r.invoke_ns for r in history.transfers] + [r.complete_ns for r in reads] + [0])
        reads.append(BalanceRead(-1, -1, end_ns, end_ns, dict(final.balances)))
    for r in reads:
        _check_read(r, total, accounts, allow_negative, by_start, log)
    stats = _stats(history, total)
    if final is not None:
        _check_log(history, final, stats, log)
        _check_balances(history, initial, final, log)
    counts = {k: v for k, v in log.counts.items() if v}
    return BankResult(not counts, counts, log.kept, stats)


def _concurrent(r: BalanceRead, by_start: Sequence[TransferRecord]) -> tuple[int, tuple[TransferRecord, ...]]:
    """How many transfers overlapped the read in time (did not end before it began), and the first few."""
    found = [
        t
        for t in by_start
        if t.invoke_ns < r.complete_ns and t.outcome is not WriteOutcome.FAILED
        if t.complete_ns is None or t.outcome is WriteOutcome.IN_DOUBT or t.complete_ns > r.invoke_ns
    ]
    return len(found), tuple(found[:_SHOWN_TRANSFERS])


def _check_read(
    r: BalanceRead,
    total: int,
    accounts: set[int],
    allow_negative: bool,
    by_start: Sequence[TransferRecord],
    log: _Log,
) -> None:
    seen = set(r.balances)
    if seen != accounts:
        missing, extra = sorted(accounts - seen), sorted(seen - accounts)
        log.add(
            BankViolation(ViolationKind.WRONG_ACCOUNTS, f"missing accounts {missing}, unknown accounts {extra}", (r,))
        )
    observed = sum(r.balances.values())
    if observed != total:
        n, shown = _concurrent(r, by_start)
        what = "the final state" if r.id < 0 else f"read {r.id}"
        log.add(
            BankViolation(
                ViolationKind.WRONG_TOTAL,
                f"{what} sums to {observed}, not {total} ({observed - total:+d}); "
                f"{n} transfers were in flight or in doubt during it",
                (r,),
                shown,
            )
        )
    if not allow_negative:
        below = sorted(k for k, v in r.balances.items() if v < 0)
        if below:
            log.add(BankViolation(ViolationKind.NEGATIVE, f"accounts {below} below zero", (r,)))


def _stats(history: BankHistory, total: int) -> dict[str, int]:
    outcomes = Counter(t.outcome for t in history.transfers)
    return {
        "transfers": len(history.transfers),
        "acknowledged": outcomes[WriteOutcome.ACKNOWLEDGED],
        "failed": outcomes[WriteOutcome.FAILED],
        "in_doubt": outcomes[WriteOutcome.IN_DOUBT],
        "reads": len(history.reads),
        "total": total,
    }


def _check_log(history: BankHistory, final: FinalState, stats: dict[str, int], log: _Log) -> None:
    counts = Counter(final.logged_ids)
    by_id: dict[int, TransferRecord] = {}
    for t in history.transfers:
        by_id[t.transfer.id] = t
    for tid, n in sorted(counts.items()):
        if n > 1:
            known = (by_id[tid],) if tid in by_id else ()
            log.add(BankViolation(ViolationKind.DUPLICATE, f"transfer {tid} is in the log {n} times", (), known))
        if tid not in by_id:
            log.add(BankViolation(ViolationKind.UNKNOWN, f"the log holds transfer {tid}, which no client ran"))
    applied = lost = 0
    for tid, t in sorted(by_id.items()):
        present = tid in counts
        if t.outcome is WriteOutcome.ACKNOWLEDGED and not present:
            log.add(
                BankViolation(ViolationKind.LOST, f"transfer {tid} was acknowledged but is not in the log", (), (t,))
            )
        elif t.outcome is WriteOutcome.FAILED and present:
            log.add(
                BankViolation(
                    ViolationKind.FAILED_APPLIED, f"transfer {tid} failed (rolled back) but is in the log", (), (t,)
                )
            )
        elif t.outcome is WriteOutcome.IN_DOUBT:
            applied += present
            lost += not present
    stats["in_doubt_applied"] = applied
    stats["in_doubt_not_applied"] = lost
    stats["logged"] = len(counts)


def _check_balances(history: BankHistory, initial: Mapping[int, int], final: FinalState, log: _Log) -> None:
    """Each account's final balance against its initial one plus the logged transfers (each once)."""
    logged = set(final.logged_ids)
    expected = dict(initial)
    touching: dict[int, list[TransferRecord]] = {}
    seen: set[int] = set()
    for t in history.transfers:
        tr = t.transfer
        if tr.id not in logged or tr.id in seen:
            continue
        seen.add(tr.id)
        expected[tr.src] = expected.get(tr.src, 0) - tr.amount
        expected[tr.dst] = expected.get(tr.dst, 0) + tr.amount
        touching.setdefault(tr.src, []).append(t)
        touching.setdefault(tr.dst, []).append(t)
    for account in sorted(set(expected) | set(final.balances)):
        want, got = expected.get(account), final.balances.get(account)
        if want is None or got is None or want == got:
            continue  # a missing or unknown account is a wrong-accounts violation already
        related = touching.get(account, [])
        log.add(
            BankViolation(
                ViolationKind.BALANCE_MISMATCH,
                f"account {account} holds {got}, but its initial balance and the {len(related)} logged transfers "
                f"touching it give {want} ({got - want:+d})",
                (),
                tuple(related[-_SHOWN_TRANSFERS:]),
            )
        )


def render_bank_text(result: BankResult, examples: int = 3) -> list[str]:
    """The result as terminal lines: verdict, stats, counts per kind, example violations."""
    s = result.stats
    lines = [
        f"{'VALID' if result.valid else 'INVALID'} bank: {s.get('transfers', 0)} transfers "
        f"({s.get('acknowledged', 0)} acknowledged, {s.get('failed', 0)} failed, {s.get('in_doubt', 0)} in doubt), "
        f"{s.get('reads', 0)} reads, total {s.get('total', 0)}"
    ]
    lines += [f"  {kind.value}: {result.counts[kind.value]}" for kind in ViolationKind if kind.value in result.counts]
    for name, found in result.violations.items():
        for violation in found[:examples]:
            lines.append("")
            lines += violation.lines()
        more = result.counts.get(name, 0) - min(examples, len(found))
        if more > 0:
            lines.append(f"  ... {more} more {name}")
    return lines
