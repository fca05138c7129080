"""Consistency models: which anomaly classes each forbids, and which order edges its graph includes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANOMALY_CLASSES",
    "CYCLE_CLASSES",
    "MODELS",
    "NON_CYCLE_CLASSES",
    "AnomalyClass",
    "ConsistencyModel",
    "model_named",
]


class AnomalyClass(StrEnum):
    """Anomaly classes the list-append checker reports (Adya's names, as Elle uses them)."""

    # Cycles in the dependency graph (a minimal cycle is reported for each).
    G0 = "G0"  # write cycle: ww edges only (dirty write)
    G1C = "G1c"  # circular information flow: ww/wr edges, at least one wr
    G_SINGLE = "G-single"  # exactly one rw edge, the rest ww/wr (read skew, lost update)
    G2_ITEM = "G2-item"  # two or more rw edges (write skew)
    # The same with real-time (strict-serializable) or per-process (strong-session) order edges in the cycle.
    G0_REALTIME = "G0-realtime"
    G1C_REALTIME = "G1c-realtime"
    G_SINGLE_REALTIME = "G-single-realtime"
    G2_ITEM_REALTIME = "G2-item-realtime"
    G0_PROCESS = "G0-process"
    G1C_PROCESS = "G1c-process"
    G_SINGLE_PROCESS = "G-single-process"
    G2_ITEM_PROCESS = "G2-item-process"
    # Found without a cycle.
    G1A = "G1a"  # aborted read: a value appended by a failed transaction was read
    G1B = "G1b"  # intermediate read: a read ends at a transaction's non-final append to the key
    INTERNAL = "internal"  # a read disagrees with its own transaction's earlier read or appends of that key
    DUPLICATE = "duplicate-elements"  # a read shows the same value twice
    INCOMPATIBLE_ORDER = "incompatible-order"  # two reads of a key neither of which is a prefix of the other
    GARBAGE = "garbage-read"  # a read shows a value no transaction appended


CYCLE_CLASSES = (
    AnomalyClass.G0,
    AnomalyClass.G1C,
    AnomalyClass.G_SINGLE,
    AnomalyClass.G2_ITEM,
    AnomalyClass.G0_REALTIME,
    AnomalyClass.G1C_REALTIME,
    AnomalyClass.G_SINGLE_REALTIME,
    AnomalyClass.G2_ITEM_REALTIME,
    AnomalyClass.G0_PROCESS,
    AnomalyClass.G1C_PROCESS,
    AnomalyClass.G_SINGLE_PROCESS,
    AnomalyClass.G2_ITEM_PROCESS,
)
NON_CYCLE_CLASSES = (
    AnomalyClass.G1A,
    AnomalyClass.G1B,
    AnomalyClass.INTERNAL,
    AnomalyClass.DUPLICATE,
    AnomalyClass.INCOMPATIBLE_ORDER,
    AnomalyClass.GARBAGE,
)
ANOMALY_CLASSES = NON_CYCLE_CLASSES + CYCLE_CLASSES

# Broken list semantics: no consistency model allows these.
_ALWAYS = frozenset(
    {
        AnomalyClass.INTERNAL,
        AnomalyClass.DUPLICATE,
        AnomalyClass.INCOMPATIBLE_ORDER,
        AnomalyClass.GARBAGE,
    }
)
_G1 = frozenset({AnomalyClass.G0, AnomalyClass.G1A, AnomalyClass.G1B, AnomalyClass.G1C})


@dataclass(frozen=True, slots=True)
class ConsistencyModel:
    """A model: its name, the anomaly classes it forbids, and the order edges its dependency graph includes."""

    name: str
    forbids: frozenset[AnomalyClass]
    realtime: bool = False
    process: bool = False
    summary: str = ""

    def forbidden(self, anomaly: AnomalyClass) -> bool:
        """True when this model rules ``anomaly`` out."""
        return anomaly in self.forbids


def _with_suffix(classes: frozenset[AnomalyClass], suffix: str) -> frozenset[AnomalyClass]:
    return frozenset(AnomalyClass(f"{c.value}-{suffix}") for c in classes if c in CYCLE_CLASSES[:4])


_RC = _ALWAYS | _G1
_SI = _RC | {AnomalyClass.G_SINGLE}
_SER = _SI | {AnomalyClass.G2_ITEM}

MODELS: dict[str, ConsistencyModel] = {
    m.name: m
    for m in (
        ConsistencyModel(
            "read-committed",
            _RC,
            summary="no dirty writes (G0), aborted (G1a) or intermediate (G1b) reads, no circular information "
            "flow (G1c); read skew (G-single) and write skew (G2-item) allowed",
        ),
        ConsistencyModel(
            "snapshot-isolation",
            _SI,
            summary="read-committed, and no cycle with exactly one anti-dependency (G-single: read skew, lost "
            "update); write skew (G2-item) allowed",
        ),
        ConsistencyModel(
            "serializable",
            _SER,
            summary="no dependency cycle at all (G0, G1c, G-single, G2-item); no real-time order",
        ),
        ConsistencyModel(
            "strong-session-serializable",
            _SER | _with_suffix(_SER, "process"),
            process=True,
            summary="serializable, and each process's transactions take effect in the order it ran them",
        ),
        ConsistencyModel(
            "strict-serializable",
            _SER | _with_suffix(_SER, "realtime"),
            realtime=True,
            summary="serializable, and a transaction that completed before another began precedes it",
        ),
    )
}


def model_named(name: str) -> ConsistencyModel:
    """Look a model up by name.

    Raises:
        KeyError: with the known names, for an unknown one.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown consistency model {name!r}; expected one of {', '.join(MODELS)}") from None
