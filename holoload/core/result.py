"""A finished run as typed, frozen data, the model of summary.json: `RunSummary.from_json` and `to_json`.

summary.json is written from a `RunSummary` and every reader (reports, CI outputs, compare,
the run history, notifications) reads it back through `RunSummary.from_json`, so its format
lives here once. Each section keeps the JSON keys it was read with (`keys`) and any key this
model does not know (`extra`): a summary read and written again is unchanged, whatever
version of holoload wrote it. Sections whose shape belongs to another module (the scenario,
the checker's report, the baseline comparison) stay plain JSON mappings; treat them as
read-only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import orjson

from holoload.core.errors import ExitCode

__all__ = [
    "BatchOpFigures",
    "ChaosFault",
    "CheckSummary",
    "ClientHealth",
    "GateOutcome",
    "GateState",
    "OpFigures",
    "PhaseResult",
    "RunInfo",
    "RunSummary",
    "RunVerdict",
    "decide_verdict",
]

JSON = Mapping[str, Any]
#: `dropped` in a gate: the run-wide scalar (bare) or the function with its arguments (`dropped(insert, phase=x)`)
_DROPPED = re.compile(r"\bdropped\b(?:\s*\(([^)]*)\))?")


class RunVerdict(StrEnum):
    """How a run ended; `str()` of a member is its JSON value (`PASS`)."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the run could not go on (bad target, set-up failed, an internal error)
    INTERRUPTED = "INTERRUPTED"  # SIGINT/SIGTERM or a stop request
    KILLED = "KILLED"  # a summary `holoload report` rebuilt from what a killed run left on disk
    RUNNING = "RUNNING"  # not decided yet
    UNKNOWN = "UNKNOWN"  # a summary without a verdict this version knows

    @classmethod
    def parse(cls, value: Any) -> RunVerdict:
        """The verdict named by `value` (UNKNOWN for anything else)."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class GateState(StrEnum):
    """A gate's state for people: it held, it failed, or it had no evidence and may say so."""

    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no data"


def decide_verdict(
    *,
    stopped: RunVerdict | None,
    error_exit_code: int | None = None,
    stop_signal: str | None = None,
    gates_failed: bool = False,
    regressed: bool = False,
    enforce: bool = True,
) -> tuple[RunVerdict, int]:
    """The run's verdict and exit code (the one place they are decided).

    Args:
        stopped: ERROR or INTERRUPTED when the run did not go to its end, else None.
        error_exit_code: the exit code of the error that stopped an ERROR run.
        stop_signal: the signal that interrupted the run (SIGTERM: 143, otherwise 130).
        gates_failed: some gate failed (a reported "no data" does not fail).
        regressed: the comparison with a baseline found a regression.
        enforce: whether a FAIL exits 1 (False: the bash canary's ENFORCE_SLO=0, exit 0).

    Returns:
        (verdict, exit code).
    """
    if stopped is RunVerdict.ERROR:
        return RunVerdict.ERROR, int(ExitCode.FAIL if error_exit_code is None else error_exit_code)
    if stopped is RunVerdict.INTERRUPTED:  # 128 + the signal, as shells report it
        return RunVerdict.INTERRUPTED, int(ExitCode.TERMINATED if stop_signal == "SIGTERM" else ExitCode.INTERRUPTED)
    if gates_failed or regressed:
        return RunVerdict.FAIL, int(ExitCode.FAIL if enforce else ExitCode.PASS)
    return RunVerdict.PASS, int(ExitCode.PASS)


# ---------------------------------------------------------------- reading JSON leniently


def _map(value: Any) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> tuple[JSON, ...]:
    return tuple(v for v in value if isinstance(v, Mapping)) if isinstance(value, list | tuple) else ()


def _num(value: Any) -> float | None:
    return None if isinstance(value, bool) or not isinstance(value, int | float) else value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    """JSON-ready: sections as dicts, tuples as lists."""
    if isinstance(value, _Section):
        return value.to_json()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


S = TypeVar("S", bound="_Section")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Section:
    """A JSON object with typed fields; `keys` and `extra` keep what was read, so writing it back loses nothing."""

    keys: tuple[str, ...] = ()  # the JSON keys, in order (what `to_json` writes)
    extra: JSON = field(default_factory=dict)  # keys this model does not know

    #: JSON key -> field name, where they differ
    RENAMES: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def _read(cls: type[S], data: JSON, convert: Mapping[str, Callable[[Any], Any]]) -> S:
        known = {f.name for f in fields(cls)} - {"keys", "extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, raw in data.items():
            name = cls.RENAMES.get(key, key)
            if name in known:
                values[name] = convert[name](raw) if name in convert else raw
            else:
                extra[key] = raw
        return cls(keys=tuple(data), extra=extra, **values)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of JSON key `key` as read (`default` when the section has no such key)."""
        if key in self.extra:
            return self.extra[key]
        if key not in self.keys:
            return default
        return getattr(self, self.RENAMES.get(key, key))

    def to_json(self) -> dict[str, Any]:
        """This section as summary.json has it."""
        out: dict[str, Any] = {}
        for key in self.keys:
            if key in self.extra:
                out[key] = _plain(self.extra[key])
            else:
                out[key] = _plain(getattr(self, self.RENAMES.get(key, key)))
        for key, value in self.extra.items():
            out.setdefault(key, _plain(value))
        return out


# ---------------------------------------------------------------- the sections


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo(_Section):
    """Facts about the run that are not measurements (summary.json `run`)."""

    run_id: str | None = None
    started_at: str | None = None
    results_dir: str | None = None
    pg_url: str | None = None
    topology_target: str | None = None
    status: str | None = None
    enforce: bool | None = None
    exit_code: int | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    problems: tuple[str, ...] = ()
    stop_signal: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> RunInfo:
        return cls._read(
            _map(data),
            {
                "problems": lambda v: tuple(str(p) for p in v) if isinstance(v, list | tuple) else (),
                "duration_s": _num,
                "exit_code": _int,
            },
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOutcome(_Section):
    """One gate's outcome: whether it held, what was observed against what threshold, and why."""

    name: str = ""
    expression: str = ""
    passed: bool = False
    observed: float | None = None
    threshold: float | None = None
    observed_text: str = ""
    threshold_text: str = ""
    reason: str = ""
    no_data: bool = False
    state_text: str | None = None  # as written ("state"); summaries older than it have none

    RENAMES: ClassVar[Mapping[str, str]] = {"state": "state_text"}

    @property
    def state(self) -> GateState:
        """pass, fail or no data (from `passed` for summaries written before `state` existed)."""
        if self.state_text in ("pass", "fail", "no data"):
            return GateState(self.state_text)
        return GateState.PASS if self.passed is True else GateState.FAIL

    @property
    def fails_run(self) -> bool:
        return self.state is GateState.FAIL

    @classmethod
    def from_json(cls, data: Any) -> GateOutcome:
        return cls._read(_map(data), {"observed": _num, "threshold": _num})


@dataclass(frozen=True, slots=True, kw_only=True)
class OpFigures(_Section):
    """One `workload.op` over one phase of sustained load; latencies in milliseconds."""

    ok: int = 0
    rows: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)  # by error class
    error_count: int = 0
    dropped: int = 0
    retries: int = 0
    ops_per_s: float | None = None
    latency_ms: Mapping[str, float] | None = None  # min, mean, max, p50, p90, p95, p99, p99.9
    service_p99_ms: float | None = None
    early_starts: int = 0
    schedule_lag_p99_ms: float | None = None
    clamped: int = 0

    @classmethod
    def from_json(cls, data: Any) -> OpFigures:
        return cls._read(_map(data), {"latency_ms": lambda v: v if isinstance(v, Mapping) else None})

    def percentile_ms(self, name: str) -> float | None:
        """`p95`, `p99`, `max`... in milliseconds, None when nothing was recorded."""
        return _num((self.latency_ms or {}).get(name))


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseResult(_Section):
    """One phase of sustained load: whether it counts, how long it ran, per `workload.op` figures."""

    measured: bool = True
    seconds: float | None = None
    ops: Mapping[str, OpFigures] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> PhaseResult:
        return cls._read(
            _map(data),
            {"ops": lambda v: {str(k): OpFigures.from_json(f) for k, f in _map(v).items()}, "seconds": _num},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOpFigures(_Section):
    """One canary op (`batch_<label>`): batches run, rows, outcomes and latency in milliseconds."""

    runs: int = 0
    rows: int = 0
    ok: int = 0
    errors: int = 0
    delta_mismatches: int = 0
    count: int = 0
    latency_ms: Mapping[str, float] | None = None

    @classmethod
    def from_json(cls, data: Any) -> BatchOpFigures:
        return cls._read(_map(data), {"latency_ms": lambda v: v if isinstance(v, Mapping) else None})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosFault(_Section):
    """One `[[chaos]]` action: how often it fired and healed, recovery times and outages."""

    name: str = ""
    action: str = ""
    fired: int = 0
    ok: int = 0
    failed: int = 0
    healed: int = 0
    heal_failed: int = 0
    recovery_s: tuple[float | None, ...] = ()
    outages: tuple[JSON, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> ChaosFault:
        return cls._read(
            _map(data),
            {
                "recovery_s": lambda v: tuple(_num(r) for r in v) if isinstance(v, list | tuple) else (),
                "outages": _maps,
            },
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSummary(_Section):
    """The ledger checker: ids per outcome, whether it finished, its findings (`check`)."""

    ledger: JSON | None = None
    complete: bool | None = None
    counts: Mapping[str, int] | None = None
    report: JSON | None = None
    ok: bool | None = None
    lost_ranges: tuple[JSON, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> CheckSummary:
        return cls._read(_map(data), {"lost_ranges": _maps})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHealth(_Section):
    """holoload's own health over the run: whether it kept up, and its evidence (`client`)."""

    ok: bool | None = None
    saturated: bool | None = None
    reason: str | None = None
    windows: int | None = None
    judged_windows: int | None = None
    strained_windows: int | None = None
    late_drops: int | None = None
    tick_late_max_s: float | None = None
    ticks: int | None = None
    window_s: float | None = None
    ticked_windows_s: float | None = None
    stretch: float | None = None
    processes: Mapping[str, JSON] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> ClientHealth:
        return cls._read(_map(data), {"processes": lambda v: {str(k): _map(p) for k, p in _map(v).items()}})


# ---------------------------------------------------------------- the whole run


def _sections(cls: Callable[[Any], S]) -> Callable[[Any], tuple[S, ...]]:
    return lambda v: tuple(cls(g) for g in _maps(v))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary(_Section):
    """A finished run: verdict, exit code, gates, figures, chaos, checker, client health (summary.json).

    `phases` holds a sustained-load run's figures, `ops`/`counts`/`batches` a canary's; the
    other kind's are empty. `results_dir` is where the artifacts are (None: never written).
    """

    holoload_version: str | None = None
    run: RunInfo = field(default_factory=RunInfo)
    verdict: RunVerdict = RunVerdict.UNKNOWN
    exit_code: int | None = None
    aborted_by: str | None = None
    workers: JSON | None = None  # count, mode, lost, restarts
    client: ClientHealth | None = None
    chaos: tuple[ChaosFault, ...] = ()
    check: CheckSummary = field(default_factory=CheckSummary)
    staleness: JSON | None = None
    scenario: JSON = field(default_factory=dict)  # the scenario as run, defaults filled in
    target: JSON | None = None
    phases: Mapping[str, PhaseResult] = field(default_factory=dict)
    gates: tuple[GateOutcome, ...] = ()
    error_messages: JSON | None = None  # messages, more
    counts: JSON | None = None  # canary: baseline, final, expected_final, failed_batches...
    split: JSON | None = None  # canary: expected, succeeded, chaos_failed
    ops: Mapping[str, BatchOpFigures] | None = None  # canary, per op
    batches: tuple[JSON, ...] = ()  # canary: the batch_finished events
    env: str | JSON | None = None  # the budget profile that applied (older summaries: {name, ...})
    overrides: tuple[JSON, ...] = ()  # {key, value, source} in applied order
    baseline: JSON | None = None  # --baseline: the comparison
    notify: tuple[JSON, ...] = ()  # --notify: one outcome per webhook
    rebuilt_from_disk: bool = False

    @classmethod
    def from_json(cls, source: str | Path | JSON | RunSummary) -> RunSummary:
        """Read summary.json: a results directory, the file itself, its parsed form (or a RunSummary, as is).

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not JSON, or not a JSON object.
        """
        if isinstance(source, RunSummary):
            return source
        if isinstance(source, str | Path):
            path = Path(source)
            if path.is_dir():
                path = path / "summary.json"
            data = orjson.loads(path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
            source = data
        if not isinstance(source, Mapping):
            raise ValueError("a summary is a JSON object")
        return cls._read(
            source,
            {
                "run": RunInfo.from_json,
                "verdict": RunVerdict.parse,
                "exit_code": _int,
                "aborted_by": _str,
                "workers": lambda v: v if isinstance(v, Mapping) else None,
                "client": lambda v: ClientHealth.from_json(v) if isinstance(v, Mapping) else None,
                "chaos": _sections(ChaosFault.from_json),
                "check": CheckSummary.from_json,
                "scenario": _map,
                "target": lambda v: v if isinstance(v, Mapping) else None,
                "phases": lambda v: {str(k): PhaseResult.from_json(p) for k, p in _map(v).items()},
                "gates": _sections(GateOutcome.from_json),
                "ops": lambda v: (
                    {str(k): BatchOpFigures.from_json(f) for k, f in _map(v).items()}
                    if isinstance(v, Mapping)
                    else None
                ),
                "batches": _maps,
                "overrides": _maps,
                "notify": _maps,
            },
        )

    def with_keys(self, *added: str) -> tuple[str, ...]:
        """`keys` with `added` appended (those not there yet): for sections set after the run."""
        return self.keys + tuple(k for k in added if k not in self.keys)

    # ------------------------------------------------------------ views readers share

    @property
    def scenario_name(self) -> str:
        """The scenario's name (from the run id when the scenario is unknown; "run" without either)."""
        name = self.scenario.get("name")
        if isinstance(name, str) and name:
            return name
        return self.run.run_id.split("-", 1)[0] if self.run.run_id else "run"

    @property
    def status(self) -> str:
        """The verdict as written (`run.status` for a summary without one, UNKNOWN without either)."""
        if self.verdict is not RunVerdict.UNKNOWN:
            return self.verdict.value
        return self.run.status or RunVerdict.UNKNOWN.value

    @property
    def results_dir(self) -> str | None:
        return self.run.results_dir

    @property
    def failed_gates(self) -> tuple[GateOutcome, ...]:
        return tuple(g for g in self.gates if g.fails_run)

    @property
    def is_canary(self) -> bool:
        return not self.phases and self.ops is not None

    def op_figures(self) -> Iterable[tuple[str, str, OpFigures]]:
        """(phase, `workload.op`, figures) of sustained load, in order."""
        for phase, result in self.phases.items():
            for op, figures in result.ops.items():
                yield phase, op, figures

    def measured_phases(self) -> list[str]:
        """Names of the phases whose figures count (sustained load; none for a canary)."""
        return [name for name, phase in self.phases.items() if phase.measured is not False]

    def drops_that_failed(self) -> frozenset[tuple[str, str]]:
        """(phase, `workload.op`) pairs whose drops a failed gate counted: the cells to show in red.

        A failed gate that reads `dropped` marks every op with drops it covers: the bare scalar
        covers every phase and op (it sums them all); `dropped(sel, phase=p)` the ops `sel` picks
        (`workload`, `op` or `workload.op`) in phase `p`, else in the gate's phase (a phase's own
        gate is named `<phase>.<name>`), else in the measured phases.
        """
        marked: set[tuple[str, str]] = set()
        for gate in self.failed_gates:
            own = gate.name.split(".", 1)[0] if "." in gate.name else ""
            scope = [own] if own in self.phases else self.measured_phases()
            for found in _DROPPED.finditer(gate.expression):
                args = [a.strip() for a in (found.group(1) or "").split(",") if a.strip()]
                keywords = dict(a.split("=", 1) for a in args if "=" in a)
                selector = next((a for a in args if "=" not in a), None)
                phases = [keywords["phase"].strip()] if "phase" in keywords else scope if found.group(1) else None
                for phase, op, figures in self.op_figures():
                    if figures.dropped <= 0 or (phases is not None and phase not in phases):
                        continue
                    if selector is None or selector in (op, *op.split(".", 1)):
                        marked.add((phase, op))
        return frozenset(marked)
