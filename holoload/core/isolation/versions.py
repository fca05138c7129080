"""Per-key version orders inferred from reads, and the anomalies found without a cycle.

A list-append key's reads reveal its version order: each ok read is the list of every value appended so far,
so the longest read is the order and every other read must be a prefix of it (else "incompatible-order").
Alongside: values appended twice within a read (duplicate-elements), values nobody appended (garbage-read),
values of failed transactions (G1a), reads ending at a transaction's non-final append (G1b), and reads that
disagree with their own transaction's earlier read or appends of the key (internal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from holoload.core.isolation.history import HistoryError, Txn, TxnType
from holoload.core.isolation.models import AnomalyClass
from holoload.core.isolation.result import Anomaly, AnomalyLog, describe_txn

__all__ = ["OK", "FAIL", "INFO", "VersionIndex", "index_versions", "statuses"]

OK, FAIL, INFO = 0, 1, 2
_STATUS = {TxnType.OK: OK, TxnType.FAIL: FAIL, TxnType.INFO: INFO}


def statuses(txns: Sequence[Txn]) -> bytearray:
    """One byte per transaction: OK, FAIL or INFO."""
    table = _STATUS
    return bytearray(table[t.type] for t in txns)


@dataclass(slots=True)
class VersionIndex:
    """What the reads and appends tell about each key."""

    writer: dict[int, dict[int, int]]  # key -> appended value -> id of the transaction that appended it
    nonfinal: set[tuple[int, int]]  # (key, value) a transaction appended before appending to the key again
    order: dict[int, tuple[int, ...]]  # key -> version order (only keys whose reads are compatible)
    status: bytearray  # txn id -> OK / FAIL / INFO
    anomalies: AnomalyLog = field(default_factory=AnomalyLog)


def index_versions(txns: Sequence[Txn]) -> VersionIndex:
    """Index appends and reads, infer version orders, and find the non-cycle anomalies.

    Args:
        txns: the history; ``txns[i].id == i``.

    Returns:
        The index, with its anomalies.

    Raises:
        HistoryError: a transaction id out of place, or a value appended twice to one key.
    """
    status = statuses(txns)
    writer: dict[int, dict[int, int]] = {}
    nonfinal: set[tuple[int, int]] = set()
    longest: dict[int, tuple[int, ...]] = {}
    anomalies = AnomalyLog()
    for tid, txn in enumerate(txns):
        if txn.id != tid:
            raise HistoryError(f"transaction at position {tid} has id {txn.id}: ids must be 0, 1, 2... in order")
        ops = txn.ops
        ok = status[tid] == OK
        last_append: dict[int, int] | None = {} if len(ops) > 1 else None
        for op in ops:
            k = op[1]
            if op[0] == "append":
                v = op[2]
                w = writer.get(k)
                if w is None:
                    writer[k] = {v: tid}
                elif v in w:
                    raise HistoryError(
                        f"value {v} appended to key {k} by T{w[v]} and T{tid}; appended values must be unique per key"
                    )
                else:
                    w[v] = tid
                if last_append is not None:
                    prev = last_append.get(k)
                    if prev is not None:
                        nonfinal.add((k, prev))
                    last_append[k] = v
            elif ok:
                values = op[2]
                if values is None:
                    continue
                cur = longest.get(k)
                if cur is None or len(values) > len(cur):
                    longest[k] = values
                if len(values) > 1 and len(set(values)) != len(values):
                    anomalies.add(AnomalyClass.DUPLICATE, partial(_duplicate, txn, k, values))
        if ok and last_append is not None:
            _internal(txn, anomalies)
    index = VersionIndex(writer, nonfinal, {}, status, anomalies)
    _orders(txns, index, longest)
    return index


def _duplicate(txn: Txn, key: int, values: tuple[int, ...]) -> Anomaly:
    twice = sorted(v for v, n in Counter(values).items() if n > 1)
    return Anomaly(
        AnomalyClass.DUPLICATE,
        (txn.id,),
        f"T{txn.id} read key {key} with {', '.join(map(str, twice[:5]))} more than once",
        ops={txn.id: describe_txn(txn)},
    )


def _internal(txn: Txn, log: AnomalyLog) -> None:
    """Reads that do not extend this transaction's previous read of the key, or do not end with the values it
    appended since (both hold under every model: lists only grow, and a transaction sees its own appends)."""
    prior: dict[int, tuple[int, ...]] = {}
    own: dict[int, list[int]] = {}
    for op in txn.ops:
        k = op[1]
        if op[0] == "append":
            own.setdefault(k, []).append(op[2])
            continue
        values = op[2]
        if values is None:
            continue
        before = prior.get(k)
        mine = tuple(own.pop(k, ()))
        problem = ""
        if before is not None and values[: len(before)] != before:
            problem = f"it had read {list(before)} before"
        elif mine and (len(values) < len(before or ()) + len(mine) or values[len(values) - len(mine) :] != mine):
            problem = f"it had appended {list(mine)} since" + ("" if before is None else f" reading {list(before)}")
        if problem:
            text = f"T{txn.id} read key {k} = {list(values)}, but {problem}"
            log.add(AnomalyClass.INTERNAL, partial(_single, AnomalyClass.INTERNAL, txn, text))
        prior[k] = values


def _orders(txns: Sequence[Txn], index: VersionIndex, longest: dict[int, tuple[int, ...]]) -> None:
    """Check every ok read against its key's longest read; keep compatible orders; G1b; then G1a and garbage."""
    status = index.status
    writer = index.writer
    nonfinal = index.nonfinal
    incompatible: dict[int, tuple[int, int]] = {}  # key -> (reader of the longest read, offending reader)
    longest_reader: dict[int, int] = {}
    odd_values: dict[int, set[int]] = {}  # incompatible key -> every value its reads show
    for tid, txn in enumerate(txns):
        if status[tid] != OK:
            continue
        for op in txn.ops:
            if op[0] != "r" or op[2] is None:
                continue
            k = op[1]
            values = op[2]
            lg = longest[k]
            n = len(values)
            if values is lg:
                longest_reader.setdefault(k, tid)
            elif values != lg[:n]:
                incompatible.setdefault(k, (-1, tid))
                odd_values.setdefault(k, set()).update(values)
            if nonfinal and n and (k, values[-1]) in nonfinal:
                w = writer[k].get(values[-1], tid)
                if w != tid:
                    index.anomalies.add(AnomalyClass.G1B, partial(_intermediate, txns[w], txn, k, values[-1]))
    for k, (_, other) in incompatible.items():
        first = longest_reader.get(k, other)
        text = f"key {k}: T{first} read {list(longest[k])} and T{other} read a list that is not a prefix of it"
        index.anomalies.add(
            AnomalyClass.INCOMPATIBLE_ORDER,
            partial(_pair, AnomalyClass.INCOMPATIBLE_ORDER, txns[first], txns[other], text),
        )
    bad: dict[tuple[int, int], AnomalyClass] = {}
    for k, lg in longest.items():
        appended = writer.get(k, {})
        values_seen = odd_values[k] | set(lg) if k in odd_values else lg
        for v in values_seen:
            who = appended.get(v)
            if who is None:
                bad[(k, v)] = AnomalyClass.GARBAGE
            elif status[who] == FAIL:
                bad[(k, v)] = AnomalyClass.G1A
        if k not in incompatible:
            index.order[k] = lg
    if bad:
        _report_bad_values(txns, index, bad)


def _intermediate(writer_txn: Txn, reader: Txn, key: int, value: int) -> Anomaly:
    return Anomaly(
        AnomalyClass.G1B,
        (writer_txn.id, reader.id),
        f"T{reader.id} read key {key} ending at {value}, an intermediate append of T{writer_txn.id} "
        f"(which appended to key {key} again later)",
        ops={writer_txn.id: describe_txn(writer_txn), reader.id: describe_txn(reader)},
    )


def _report_bad_values(txns: Sequence[Txn], index: VersionIndex, bad: dict[tuple[int, int], AnomalyClass]) -> None:
    """One anomaly per aborted or garbage value, naming the first transaction that read it."""
    for tid, txn in enumerate(txns):
        if index.status[tid] != OK or not bad:
            continue
        for op in txn.ops:
            if op[0] != "r" or not op[2]:
                continue
            for v in op[2]:
                kind = bad.pop((op[1], v), None)
                if kind is None:
                    continue
                key = op[1]
                if kind is AnomalyClass.G1A:
                    failed = index.writer[key][v]
                    text = f"T{tid} read value {v} of key {key}, appended by T{failed}, which failed (aborted read)"
                    index.anomalies.add(kind, partial(_pair, kind, txns[failed], txn, text))
                else:
                    text = f"T{tid} read value {v} of key {key}, which no transaction appended"
                    index.anomalies.add(kind, partial(_single, kind, txn, text))


def _single(kind: AnomalyClass, txn: Txn, text: str) -> Anomaly:
    return Anomaly(kind, (txn.id,), text, ops={txn.id: describe_txn(txn)})


def _pair(kind: AnomalyClass, first: Txn, second: Txn, text: str) -> Anomaly:
    return Anomaly(
        kind, (first.id, second.id), text, ops={first.id: describe_txn(first), second.id: describe_txn(second)}
    )
