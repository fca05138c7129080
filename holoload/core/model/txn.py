"""Transactional workloads: `kind = "list_append"` or `"bank"` keys of a phase's workload, and their checks.

A workload of kind `list_append` runs Elle-style list-append transactions, one of kind `bank` runs
transfers and read-alls (docs/isolation.md); the default, `statements`, runs its `ops`. The keys here
are mixed into `Workload`; keys of the other kinds are errors with their key path (`txn_problems`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from holoload.core.model.types import Identifier, PositiveSeconds, Strict

__all__ = [
    "BANK_KEYS",
    "COMMON_KEYS",
    "DEFAULT_MODEL",
    "LIST_APPEND_KEYS",
    "TXN_KINDS",
    "TxnKeys",
    "txn_op_names",
    "txn_problems",
]

Kind = Literal["statements", "list_append", "bank"]
TXN_KINDS = ("list_append", "bank")
Isolation = Literal["serializable", "repeatable_read", "read_committed"]
ModelName = Literal["serializable", "strict-serializable", "snapshot-isolation", "read-committed"]

#: The model a level is checked against unless `model` says otherwise (PostgreSQL's documented guarantees).
DEFAULT_MODEL: dict[str, str] = {
    "serializable": "serializable",
    "repeatable_read": "snapshot-isolation",
    "read_committed": "read-committed",
}

COMMON_KEYS = frozenset({"isolation", "model", "table", "txn_timeout", "check_timeout", "session_sql", "lock_first"})
LIST_APPEND_KEYS = frozenset({"keys", "ops_per_txn", "read_share", "writes_per_key"})
BANK_KEYS = frozenset({"accounts", "initial_balance", "max_amount", "read_every", "allow_negative", "transfer"})

#: The ops a transactional workload reports (gates name them as `workload.op`).
_OPS: dict[str, tuple[str, ...]] = {"list_append": ("txn",), "bank": ("transfer", "read_all")}
_NOT_SQL = "-- holoload transaction ({kind}): not a statement"


def txn_op_names(kind: str) -> tuple[str, ...]:
    """The op names a transactional workload of `kind` records under (empty for statements)."""
    return _OPS.get(kind, ())


class TxnKeys(Strict):
    """The keys of transactional workloads (defaults apply only to their kind)."""

    kind: Kind = Field(default="statements", description="statements (ops), list_append or bank")
    isolation: Isolation = Field(default="serializable", description="the level every transaction begins with")
    model: ModelName | None = Field(
        default=None, description="the consistency model the history is checked against (default: the level's)"
    )
    table: Identifier | None = Field(
        default=None, description="the table (bank: the accounts; its transfer log is <table>_log); default: the name"
    )
    keys: int = Field(default=6, ge=1, le=100_000, description="list_append: keys in use at a time")
    ops_per_txn: int | list[int] = Field(
        default=4, description="list_append: micro-ops per transaction, N or [min, max]"
    )
    read_share: float = Field(default=0.5, ge=0, le=1, description="list_append: share of micro-ops that are reads")
    writes_per_key: int = Field(
        default=64, ge=0, le=1_000_000, description="list_append: appends before a key is retired (0: never)"
    )
    accounts: int = Field(default=8, ge=2, le=1_000_000, description="bank: accounts")
    initial_balance: int = Field(default=100, ge=0, description="bank: each account's balance at the start")
    max_amount: int = Field(default=5, ge=1, description="bank: transfers move 1 .. max_amount")
    read_every: int = Field(default=5, ge=0, description="bank: every n-th transaction reads all balances (0: never)")
    allow_negative: bool = Field(default=False, description="bank: balances may go below zero")
    transfer: Literal["atomic", "read_then_write"] = Field(
        default="atomic", description="bank: atomic UPDATEs, or the deliberately wrong read-then-write"
    )
    txn_timeout: PositiveSeconds = Field(default=10.0, description="bound on one attempt, BEGIN to COMMIT")
    check_timeout: PositiveSeconds = Field(default=60.0, description="bound on the checker after the load")
    session_sql: list[str] = Field(default=[], description="statements run on every new connection")
    lock_first: bool = Field(
        default=False,
        description="LOCK TABLE ... IN ROW EXCLUSIVE MODE right after BEGIN, before the snapshot: a split that "
        "moves rows (not MVCC-safe on plain PostgreSQL) then happens wholly before or after each transaction",
    )

    @model_validator(mode="before")
    @classmethod
    def _txn_ops(cls, data: Any) -> Any:
        """A transactional workload without `ops` gets its fixed ones (what its latencies are recorded as)."""
        if isinstance(data, dict) and data.get("kind") in TXN_KINDS and "ops" not in data:
            kind = data["kind"]
            data = dict(data)
            data["ops"] = [{"name": name, "sql": _NOT_SQL.format(kind=kind)} for name in _OPS[kind]]
        return data

    @property
    def is_txn(self) -> bool:
        """Whether this is a list_append or bank workload."""
        return self.kind in TXN_KINDS

    @property
    def txn_table(self) -> str:
        """The table it uses (bank: the accounts table)."""
        return self.table or str(getattr(self, "name", "txn"))

    @property
    def check_model(self) -> str:
        """The consistency model the history is checked against."""
        return self.model or DEFAULT_MODEL[self.isolation]

    @property
    def ops_range(self) -> tuple[int, int]:
        """(min, max) micro-ops per list-append transaction."""
        if isinstance(self.ops_per_txn, int):
            return 1, self.ops_per_txn
        low, high = self.ops_per_txn
        return low, high


def txn_problems(workload: Any, where: str) -> list[tuple[str, str]]:
    """Keys of a workload that do not fit its kind, and values that do not fit together, with key paths.

    Args:
        workload: a validated `Workload`.
        where: its key path, such as `phases[1].workloads[0]`.

    Returns:
        (key path, problem) pairs; empty when it is consistent.
    """
    given = set(workload.model_fields_set)
    problems: list[tuple[str, str]] = []
    kind = workload.kind
    if kind == "statements":
        for key in sorted(given & (COMMON_KEYS | LIST_APPEND_KEYS | BANK_KEYS)):
            problems.append(
                (f"{where}.{key}", f'{key} applies to transactional workloads: add kind = "list_append" or "bank"')
            )
        return problems
    other = BANK_KEYS if kind == "list_append" else LIST_APPEND_KEYS
    for key in sorted(given & other):
        problems.append((f"{where}.{key}", f'{key} does not apply to kind = "{kind}"; remove it'))
    if "ops" in given and [op.name for op in workload.ops] != list(_OPS[kind]):
        problems.append((f"{where}.ops", f'kind = "{kind}" runs its own transactions: remove ops'))
    if kind == "list_append":
        spec = workload.ops_per_txn
        if isinstance(spec, list) and (len(spec) != 2 or not 1 <= spec[0] <= spec[1] <= 100):
            problems.append(
                (f"{where}.ops_per_txn", f"expected N or [min, max] with 1 <= min <= max <= 100, got {spec}")
            )
        if isinstance(spec, int) and not 1 <= spec <= 100:
            problems.append((f"{where}.ops_per_txn", f"expected 1..100 micro-ops per transaction, got {spec}"))
    return problems
