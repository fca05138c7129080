"""List-append isolation checking (Elle's method): histories, version orders, dependency graphs, cycles.

from holoload.core.isolation import HistoryBuilder, append, read, check
b = HistoryBuilder()
t = b.invoke(process=0, invoke_ns=0, ops=[append(1, 10), read(2)])
b.complete(t, "ok", 5, [append(1, 10), read(2, [7])])
result = check(b.build(), "serializable")      # result.valid, result.counts, result.to_json()
"""

from holoload.core.isolation.checker import Deadline, check
from holoload.core.isolation.history import (
    HistoryBuilder,
    HistoryError,
    MicroOp,
    Txn,
    TxnType,
    append,
    dump_history,
    parse_history,
    read,
)
from holoload.core.isolation.models import MODELS, AnomalyClass, ConsistencyModel, model_named
from holoload.core.isolation.result import UNKNOWN, Anomaly, CheckResult, Step, render_text

__all__ = [
    "MODELS",
    "UNKNOWN",
    "Anomaly",
    "AnomalyClass",
    "CheckResult",
    "ConsistencyModel",
    "Deadline",
    "HistoryBuilder",
    "HistoryError",
    "MicroOp",
    "Step",
    "Txn",
    "TxnType",
    "append",
    "check",
    "dump_history",
    "model_named",
    "parse_history",
    "read",
    "render_text",
]
