"""List-append histories: typed transactions, a recorder-friendly builder, and the JSON-lines artifact format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any, Literal, NamedTuple, cast

import orjson

from holoload.core.errors import InputError
from holoload.core.ledger.book import WriteOutcome, outcome_of

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Append",
    "HistoryBuilder",
    "HistoryError",
    "MicroOp",
    "Read",
    "Txn",
    "TxnType",
    "append",
    "dump_history",
    "parse_history",
    "read",
    "txn_type_of",
    "validate_history",
]

FORMAT_NAME = "holoload-history"
FORMAT_VERSION = 1
_FIELDS = ("id", "process", "invoke_ns", "complete_ns", "type", "ops")

Append = tuple[Literal["append"], int, int]
"""("append", key, value): append a unique integer to the key's list."""
Read = tuple[Literal["r"], int, "tuple[int, ...] | None"]
"""("r", key, values): read the key's list; values is None when unknown (fail/info transactions)."""
MicroOp = Append | Read


class TxnType(StrEnum):
    """How a transaction ended, in Elle's terms.

    ``ok``: committed, results known. ``fail``: definitely did not commit (rolled back, rejected before
    COMMIT). ``info``: in doubt (the connection was lost at COMMIT, a timeout): its appends may or may not
    have taken effect, and its reads are not trusted.
    """

    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class Txn(NamedTuple):
    """One transaction of the history; ``id`` equals its index in the history.

    ``complete_ns`` is None when the transaction never completed; an ``info`` transaction's completion time
    is never used for ordering. Times are nanoseconds on one monotonic clock of the recorder.
    """

    id: int
    process: int
    invoke_ns: int
    complete_ns: int | None
    type: TxnType
    ops: tuple[MicroOp, ...]


class HistoryError(InputError):
    """A history the checker cannot use (exit 2): malformed line, duplicate append, ids out of order."""


def append(key: int, value: int) -> Append:
    """The micro-op appending ``value`` to ``key``'s list."""
    return ("append", key, value)


def read(key: int, values: Iterable[int] | None = None) -> Read:
    """The micro-op reading ``key``'s list (``values`` None: not known yet, or never)."""
    return ("r", key, None if values is None else tuple(values))


class HistoryBuilder:
    """Records transactions as an engine runs them: ``invoke`` when a transaction starts, ``complete`` when
    it ends. Transactions still open at ``build`` are in doubt (``info``).

    Not thread-safe: ids are assigned here, so one builder records every process of a history.
    """

    def __init__(self) -> None:
        self._txns: list[Txn] = []
        self._open: set[int] = set()

    def __len__(self) -> int:
        return len(self._txns)

    def invoke(self, process: int, invoke_ns: int, ops: Sequence[MicroOp]) -> int:
        """Record the start of a transaction.

        Args:
            process: the logical client (one connection's sequence of transactions).
            invoke_ns: when the transaction began.
            ops: its micro-ops; reads may carry None until the transaction completes.

        Returns:
            The transaction id, to pass to ``complete``.
        """
        txn_id = len(self._txns)
        self._txns.append(Txn(txn_id, process, invoke_ns, None, TxnType.INFO, _normalise_ops(ops)))
        self._open.add(txn_id)
        return txn_id

    def complete(
        self, txn_id: int, type_: TxnType | str, complete_ns: int, ops: Sequence[MicroOp] | None = None
    ) -> None:
        """Record how a transaction ended.

        Args:
            txn_id: the id ``invoke`` returned.
            type_: ``ok``, ``fail``, or ``info`` (in doubt: an ambiguous COMMIT is ``info``, never ``fail``).
            complete_ns: when the outcome was known.
            ops: the micro-ops with their read results (ok transactions); None keeps the invoked ones.

        Raises:
            HistoryError: unknown or already completed id, or ops that do not match the invoked ones.
        """
        if txn_id not in self._open:
            raise HistoryError(f"transaction {txn_id} is not open (never invoked, or completed twice)")
        old = self._txns[txn_id]
        kind = TxnType(type_)
        new_ops = old.ops if ops is None else _normalise_ops(ops)
        if len(new_ops) != len(old.ops) or any(a[:2] != b[:2] for a, b in zip(new_ops, old.ops, strict=True)):
            raise HistoryError(f"transaction {txn_id}: completed ops {new_ops!r} differ from invoked {old.ops!r}")
        self._open.discard(txn_id)
        # An in-doubt transaction keeps the time its outcome was given up on, but the checker never orders
        # anything after it by that time: it may have taken effect at any moment after its invoke.
        self._txns[txn_id] = old._replace(type=kind, complete_ns=complete_ns, ops=new_ops)

    def error(self, txn_id: int, sqlstate: str | None, *, commit_sent: bool, complete_ns: int) -> TxnType:
        """Record a transaction that ended with an error (or a lost connection), deciding fail or info.

        Before COMMIT was sent, any error leaves the transaction uncommitted: ``fail``. After it, the
        SQLSTATE decides (``ledger.outcome_of``): a serialization failure or deadlock rolled back is
        ``fail``; no answer (connection lost at COMMIT), a cancel, a shutdown is ``info``, never ``fail``.

        Args:
            txn_id: the id ``invoke`` returned.
            sqlstate: the server's SQLSTATE, or None when no answer came.
            commit_sent: whether COMMIT had left the client.
            complete_ns: when the error was seen.

        Returns:
            The type recorded.
        """
        kind = txn_type_of(outcome_of(sqlstate, sent=True)) if commit_sent else TxnType.FAIL
        self.complete(txn_id, kind, complete_ns)
        return kind

    def build(self) -> list[Txn]:
        """The history so far; transactions still open are ``info`` (in doubt)."""
        return list(self._txns)


def txn_type_of(outcome: WriteOutcome) -> TxnType:
    """acknowledged -> ok, failed -> fail, in doubt -> info."""
    return {WriteOutcome.ACKNOWLEDGED: TxnType.OK, WriteOutcome.FAILED: TxnType.FAIL}.get(outcome, TxnType.INFO)


def _normalise_ops(ops: Sequence[Any], shared: dict[int, int] | None = None) -> tuple[MicroOp, ...]:
    """Validated micro-ops as tuples; with ``shared``, read values reuse the int objects of the appends
    (a parsed million-transaction history otherwise holds ~20 million separate ints in its reads)."""
    out: list[MicroOp] = []
    for op in ops:
        if not isinstance(op, list | tuple) or len(op) != 3:
            raise HistoryError(f'micro-op {op!r}: expected ["append", key, value] or ["r", key, list|null]')
        f, key, value = op
        if not _is_int(key):
            raise HistoryError(f"micro-op {op!r}: the key must be an integer")
        if f == "append":
            if not _is_int(value):
                raise HistoryError(f"micro-op {op!r}: the appended value must be an integer")
            if shared is not None:
                value = shared.setdefault(value, value)
            out.append(("append", key, value))
        elif f == "r":
            if value is None:
                out.append(("r", key, None))
            elif isinstance(value, list | tuple) and all(type(v) is int for v in value):
                if shared is not None:
                    get = shared.get
                    out.append(("r", key, cast("tuple[int, ...]", tuple([get(v, v) for v in value]))))
                else:
                    out.append(("r", key, tuple(value)))
            else:
                raise HistoryError(f"micro-op {op!r}: a read's result must be a list of integers or null")
        else:
            raise HistoryError(f'micro-op {op!r}: unknown function {f!r} (expected "append" or "r")')
    return tuple(out)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_history(txns: Sequence[Txn]) -> None:
    """Check the invariants the checker relies on.

    Raises:
        HistoryError: a transaction whose id is not its index, or an (key, value) appended twice.
    """
    seen: dict[int, set[int]] = {}
    for index, txn in enumerate(txns):
        if txn.id != index:
            raise HistoryError(f"transaction at position {index} has id {txn.id}: ids must be 0, 1, 2... in order")
        for op in txn.ops:
            if op[0] == "append":
                values = seen.setdefault(op[1], set())
                if op[2] in values:
                    raise HistoryError(
                        f"T{index}: value {op[2]} appended to key {op[1]} twice; appended values must be unique per key"
                    )
                values.add(op[2])


def dump_history(txns: Iterable[Txn]) -> Iterator[str]:
    """The history as JSON lines (no trailing newlines): a header, then one compact array per transaction.

    Header: ``{"format": "holoload-history", "version": 1, "workload": "list-append", "fields": [...]}``;
    each transaction: ``[id, process, invoke_ns, complete_ns|null, "ok"|"fail"|"info", [[f, key, value]...]]``.
    """
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "workload": "list-append", "fields": list(_FIELDS)}
    yield orjson.dumps(header).decode()
    for t in txns:
        yield orjson.dumps([t.id, t.process, t.invoke_ns, t.complete_ns, t.type.value, t.ops]).decode()


def parse_history(lines: Iterable[str | bytes], source: str = "<history>") -> list[Txn]:
    """Parse the JSON-lines format of ``dump_history``.

    Args:
        lines: the file's lines (blank lines are skipped).
        source: the file name, for messages.

    Returns:
        The transactions, validated (``validate_history``).

    Raises:
        HistoryError: (exit 2) with the file, line number and what was expected.
    """
    txns: list[Txn] = []
    shared: dict[int, int] = {}
    header_seen = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise HistoryError(f"{source}:{number}: not valid JSON: {exc}") from None
        if not header_seen:
            _check_header(data, source, number)
            header_seen = True
            continue
        txns.append(_txn_from(data, len(txns), source, number, shared))
    if not header_seen:
        raise HistoryError(f"{source}: empty; expected a {FORMAT_NAME} header line")
    try:
        validate_history(txns)
    except HistoryError as exc:
        raise HistoryError(f"{source}: {exc}") from None
    return txns


def _check_header(data: Any, source: str, number: int) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise HistoryError(
            f"{source}:{number}: not a holoload history (expected a header line "
            f'{{"format": "{FORMAT_NAME}", "version": {FORMAT_VERSION}, ...}})'
        )
    if data.get("version") != FORMAT_VERSION:
        raise HistoryError(
            f"{source}:{number}: history format version {data.get('version')!r}; this holoload reads version "
            f"{FORMAT_VERSION}"
        )
    if data.get("workload", "list-append") != "list-append":
        raise HistoryError(f"{source}:{number}: workload {data.get('workload')!r}; only list-append is checked")


def _txn_from(data: Any, expected_id: int, source: str, number: int, shared: dict[int, int]) -> Txn:
    where = f"{source}:{number}"
    if not isinstance(data, list) or len(data) != len(_FIELDS):
        raise HistoryError(f"{where}: expected [{', '.join(_FIELDS)}]")
    txn_id, process, invoke_ns, complete_ns, type_, ops = data
    if txn_id != expected_id:
        raise HistoryError(f"{where}: id {txn_id!r}; expected {expected_id} (ids are 0, 1, 2... in file order)")
    if not (_is_int(process) and _is_int(invoke_ns) and (complete_ns is None or _is_int(complete_ns))):
        raise HistoryError(f"{where}: process and invoke_ns must be integers, complete_ns an integer or null")
    try:
        kind = TxnType(type_)
    except ValueError:
        raise HistoryError(f"{where}: type {type_!r}; expected ok, fail or info") from None
    if kind is TxnType.OK and complete_ns is None:
        raise HistoryError(f"{where}: an ok transaction needs its complete_ns")
    if complete_ns is not None and complete_ns < invoke_ns:
        raise HistoryError(f"{where}: complete_ns {complete_ns} is before invoke_ns {invoke_ns}")
    if not isinstance(ops, list):
        raise HistoryError(f"{where}: ops must be a list of micro-ops")
    try:
        micro = _normalise_ops(ops, shared)
    except HistoryError as exc:
        raise HistoryError(f"{where}: {exc}") from None
    return Txn(txn_id, process, invoke_ns, complete_ns, kind, micro)
