"""What the checker returns: anomalies with their cycles and transactions, counts, a verdict; JSON and text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from holoload.core.isolation.history import Txn
from holoload.core.isolation.models import ANOMALY_CLASSES, AnomalyClass

__all__ = ["KEEP", "UNKNOWN", "Anomaly", "AnomalyLog", "CheckResult", "Step", "Validity", "describe_txn", "render_text"]

UNKNOWN: Literal["unknown"] = "unknown"
Validity = bool | Literal["unknown"]

KEEP = 100  # anomalies kept per class (all are counted): a broken history must not exhaust memory
_LIST_SHOWN = 6  # elements of a read's list shown (the last ones: they are what the edges are about)


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of a cycle: ``source`` -``edge``-> ``target``, over ``key`` (None for order edges)."""

    source: int
    edge: str  # ww, wr, rw, process, realtime
    target: int
    key: int | None
    why: str

    def label(self) -> str:
        """``ww(key 3)`` or ``realtime``."""
        return self.edge if self.key is None else f"{self.edge}(key {self.key})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"from": self.source, "edge": self.edge, "to": self.target, "key": self.key, "why": self.why}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly: its class, the transactions involved (rendered), and for a cycle the steps around it."""

    kind: AnomalyClass
    txns: tuple[int, ...]
    description: str
    steps: tuple[Step, ...] = ()
    ops: dict[int, str] = field(default_factory=dict)  # txn id -> "T12 (process 3, ok): append 3 5; r 7 [1 2]"

    def cycle_text(self) -> str:
        """``T12 -ww(key 3)-> T40 -rw(key 7)-> T12``; empty for a non-cycle anomaly."""
        if not self.steps:
            return ""
        parts = [f"T{self.steps[0].source}"]
        parts += [f"-{s.label()}-> T{s.target}" for s in self.steps]
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for summary.json)."""
        out: dict[str, Any] = {"class": self.kind.value, "txns": list(self.txns), "description": self.description}
        if self.steps:
            out["cycle"] = self.cycle_text()
            out["steps"] = [s.to_dict() for s in self.steps]
        out["ops"] = {f"T{k}": v for k, v in self.ops.items()}
        return out

    def lines(self) -> list[str]:
        """Human-readable lines: the class and description, the cycle, each step's reason, the transactions."""
        out = [f"{self.kind.value}: {self.description}"]
        if self.steps:
            out.append(f"  cycle: {self.cycle_text()}")
            out += [f"    T{s.source} -{s.label()}-> T{s.target}: {s.why}" for s in self.steps]
        out += [f"  {text}" for text in self.ops.values()]
        return out


class AnomalyLog:
    """Anomalies by class: every one counted, the first ``keep`` of each class kept (and only those built)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.counts: dict[str, int] = {}
        self.kept: dict[str, list[Anomaly]] = {}

    def add(self, kind: AnomalyClass, build: Callable[[], Anomaly]) -> None:
        """Count one anomaly of ``kind``; call ``build`` for it only while fewer than ``keep`` are kept."""
        name = kind.value
        self.counts[name] = self.counts.get(name, 0) + 1
        kept = self.kept.setdefault(name, [])
        if len(kept) < self.keep:
            kept.append(build())


@dataclass(slots=True)
class CheckResult:
    """The verdict on one history under one model.

    ``valid``: True (no anomaly the model forbids, and the search finished), False (at least one), or
    ``"unknown"`` (the search ran out of its time limit before it could rule a forbidden class out).
    """

    model: str
    valid: Validity
    counts: dict[str, int]
    forbidden_found: tuple[str, ...]
    anomalies: dict[str, list[Anomaly]]
    stats: dict[str, int]
    incomplete: tuple[str, ...] = ()  # classes whose search ran out of time
    reason: str = ""

    @property
    def forbidden_count(self) -> int:
        """How many anomalies of classes the model forbids (what a gate reads)."""
        return sum(self.counts[k] for k in self.forbidden_found)

    def to_json(self, examples: int = 10) -> dict[str, Any]:
        """Plain JSON-able form for summary.json; at most ``examples`` anomalies kept per class."""
        return {
            "model": self.model,
            "valid": self.valid,
            "reason": self.reason,
            "anomaly_counts": dict(self.counts),
            "forbidden_found": list(self.forbidden_found),
            "forbidden_count": self.forbidden_count,
            "incomplete": list(self.incomplete),
            "stats": dict(self.stats),
            "anomalies": {k: [a.to_dict() for a in v[:examples]] for k, v in self.anomalies.items() if v},
        }


def describe_txn(txn: Txn) -> str:
    """``T12 (process 3, ok): append 3 5; r 7 [.. 4 5 6]`` with long lists cut to their last elements."""
    parts: list[str] = []
    for op in txn.ops:
        if op[0] == "append":
            parts.append(f"append {op[1]} {op[2]}")
        else:
            parts.append(f"r {op[1]} {_short(op[2])}")
    return f"T{txn.id} (process {txn.process}, {txn.type.value}): {'; '.join(parts)}"


def _short(values: tuple[int, ...] | None) -> str:
    if values is None:
        return "?"
    shown = " ".join(str(v) for v in values[-_LIST_SHOWN:])
    return f"[.. {shown}]" if len(values) > _LIST_SHOWN else f"[{shown}]"


def render_text(result: CheckResult, examples: int = 3) -> list[str]:
    """The result as terminal lines: verdict, counts per class (forbidden ones marked), example anomalies."""
    verdict = "UNKNOWN" if result.valid == UNKNOWN else ("VALID" if result.valid else "INVALID")
    s = result.stats
    lines = [
        f"{verdict} under {result.model}: {s.get('txns', 0)} transactions ({s.get('ok', 0)} ok, "
        f"{s.get('fail', 0)} fail, {s.get('info', 0)} info), {s.get('edges', 0)} dependency edges, "
        f"{s.get('cyclic_components', 0)} cyclic components"
    ]
    if result.reason:
        lines.append(f"  {result.reason}")
    for name in (c.value for c in ANOMALY_CLASSES):
        count = result.counts.get(name, 0)
        if not count:
            continue
        mark = "forbidden" if name in result.forbidden_found else "allowed by the model"
        lines.append(f"  {name}: {count} ({mark})")
    for name, found in result.anomalies.items():
        for anomaly in found[:examples]:
            lines.append("")
            lines += anomaly.lines()
        more = result.counts.get(name, len(found)) - min(examples, len(found))
        if more > 0:
            lines.append(f"  ... {more} more {name}")
    return lines
