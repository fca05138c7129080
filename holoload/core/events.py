"""Typed run events: the one-way stream from the engine to aggregator, display and artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

from holoload.core.stats.client_health import WindowHealth


@dataclass(frozen=True, slots=True)
class Event:
    """Base event; `ts` is wall-clock seconds since the epoch, supplied by the emitter."""

    kind: ClassVar[str] = "event"
    ts: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind
        return data


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    scenario: str
    target: str
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PhaseChanged(Event):
    kind: ClassVar[str] = "phase"
    phase: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BaselineTaken(Event):
    kind: ClassVar[str] = "baseline"
    baseline_count: int
    per_node: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BatchStarted(Event):
    kind: ClassVar[str] = "batch_started"
    index: int
    total: int
    op: str
    rows: int
    node: str
    count_before: int


@dataclass(frozen=True, slots=True)
class BatchFinished(Event):
    """A batch ended: status is ok, delta_mismatch or error."""

    kind: ClassVar[str] = "batch_finished"
    index: int
    total: int
    op: str
    label: str
    rows: int
    node: str
    elapsed_s: float
    row_delta: int | None
    status: str
    error: str | None = None
    error_class: str | None = None


@dataclass(frozen=True, slots=True)
class ChaosStarted(Event):
    """A chaos step began: `step` is fire (the action) or heal (undoing a fault)."""

    kind: ClassVar[str] = "chaos_started"
    name: str
    action: str
    trigger: str
    step: str = "fire"
    node: str = ""


@dataclass(frozen=True, slots=True)
class ChaosFinished(Event):
    kind: ClassVar[str] = "chaos_finished"
    name: str
    action: str
    ok: bool
    elapsed_s: float
    detail: str
    output: str = ""
    step: str = "fire"
    node: str = ""


@dataclass(frozen=True, slots=True)
class SnapshotTaken(Event):
    """A raw snapshot; `text` goes to snapshots/, the event log keeps only the name."""

    kind: ClassVar[str] = "snapshot"
    name: str
    source: str
    ok: bool
    text: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = Event.to_dict(self)
        data.pop("text")
        data["bytes"] = len(self.text.encode())
        return data


@dataclass(frozen=True, slots=True)
class FinalCount(Event):
    kind: ClassVar[str] = "final_count"
    final_count: int
    per_node: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunProblem(Event):
    """Something went wrong that the run recorded instead of crashing (dead node, Ctrl-C...)."""

    kind: ClassVar[str] = "problem"
    what: str
    detail: str


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One (workload, op, endpoint) in one window; endpoint "*" is all endpoints merged.

    `total_*` fields are cumulative over the current phase, filled on "*" rows only.
    """

    workload: str
    op: str
    endpoint: str
    ok: int
    errors: dict[str, int]
    dropped: int
    retries: int
    rows: int
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    service_p99_ms: float | None
    lag_p99_ms: float | None
    total_ok: int = 0
    total_errors: int = 0
    total_p50_ms: float | None = None
    total_p95_ms: float | None = None
    total_p99_ms: float | None = None
    total_max_ms: float | None = None


@dataclass(frozen=True, slots=True)
class WindowClosed(Event):
    """A closed aggregation window; goes to the display and timeseries.csv, not events.jsonl."""

    kind: ClassVar[str] = "window"
    phase: str
    index: int
    elapsed_s: float
    seconds: float
    rows: tuple[WindowRow, ...]
    signals: Mapping[str, float] = field(default_factory=dict)
    histograms: tuple[tuple[str, int, str], ...] = ()
    """(hlog tag, max latency in µs, encoded HDR histogram) per op and endpoint with samples."""
    client: WindowHealth | None = None
    """holoload's own health over the window (loop lag, CPU, tick lateness, late drops)."""
    client_strain: tuple[str, ...] = ()
    """Why the client was the bottleneck in this window (empty: it kept up)."""


@dataclass(frozen=True, slots=True)
class GateChanged(Event):
    """A live gate changed state (pending, pass, fail)."""

    kind: ClassVar[str] = "gate"
    name: str
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorSeen(Event):
    """An error message met for the first time by an op on an endpoint (`sqlstate` None: no server answer)."""

    kind: ClassVar[str] = "error_seen"
    workload: str
    op: str
    endpoint: str
    sqlstate: str | None
    error_class: str
    message: str
    at_s: float
    """Seconds since the run's start."""


@dataclass(frozen=True, slots=True)
class ErrorMessages(Event):
    """When the load ends: each kept error message with its count, first and last time (see `error_log`)."""

    kind: ClassVar[str] = "error_messages"
    messages: tuple[Mapping[str, object], ...]
    more: tuple[Mapping[str, object], ...] = ()
    """Per op and endpoint, errors whose message was not kept (only counted)."""


@dataclass(frozen=True, slots=True)
class MetricsSampled(Event):
    """One node's metrics poll: its rows go to metrics.csv (not events.jsonl); an error is kept."""

    kind: ClassVar[str] = "metrics"
    node: str
    ok: bool
    rows: tuple[tuple[float, str, str, str, float | str], ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class TopologyChanged(Event):
    """The topology differs from the previous reading (the first reading counts as a change)."""

    kind: ClassVar[str] = "topology"
    changes: tuple[dict[str, str | None], ...]
    summary: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HealthChanged(Event):
    """A node's /live, /ready, /state answer changed."""

    kind: ClassVar[str] = "health"
    node: str
    ready: bool | None
    state: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class CheckFinished(Event):
    """The acknowledged-write checker read one ledger back through one endpoint."""

    kind: ClassVar[str] = "check"
    table: str
    node: str
    ok: bool
    report: Mapping[str, object]
    ledger: Mapping[str, int]
    queries: int
    elapsed_s: float
    error: str | None = None


class EventSink(Protocol):
    """Anything that takes events (aggregator, display, artifact writer)."""

    def emit(self, event: Event) -> None: ...
