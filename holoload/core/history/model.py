"""Run history records: one run's facts, gates and per-op figures, built from its summary.json.

Pure: the caller reads files, git and the host, and passes what it found (`RunContext`, the
encoded per-op histograms). The same records go into SQLite and PostgreSQL
(`adapters/history/store.py`) and come back for trends (`series`, `latest_verdicts`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from holoload.core.result import BatchOpFigures, GateOutcome, OpFigures, RunSummary, RunVerdict
from holoload.core.stats.histogram import LatencyHistogram

__all__ = [
    "CANARY_PHASE",
    "METRICS",
    "GateRecord",
    "OpRecord",
    "RunContext",
    "RunEntry",
    "canary_histograms",
    "entry_from_summary",
    "environment_of",
    "latest_verdicts",
    "op_keys",
    "scenario_hash",
    "series",
]

#: The phase name canary batch ops are filed under (a canary has no phases).
CANARY_PHASE = "batches"
DEFAULT_ENVIRONMENT = "default"


@dataclass(frozen=True, slots=True)
class RunContext:
    """Facts about where and from what a run ran, gathered by the shell when it started."""

    git_commit: str | None = None
    git_branch: str | None = None
    environment: str | None = None
    host_name: str | None = None
    host_cpus: int | None = None
    host_model: str | None = None
    host_load1: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunContext:
        """Read back `to_dict` output; unknown keys are ignored, wrong types dropped."""
        strs = ("git_commit", "git_branch", "environment", "host_name", "host_model")
        out: dict[str, Any] = {k: data[k] for k in strs if isinstance(data.get(k), str)}
        if isinstance(data.get("host_cpus"), int):
            out["host_cpus"] = data["host_cpus"]
        out["host_load1"] = _num(data.get("host_load1"))
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class GateRecord:
    """A gate as the run judged it (`passed` None: a killed run's last live state, not a verdict)."""

    name: str
    expression: str | None
    passed: bool | None
    state: str | None
    observed: float | None
    threshold: float | None
    observed_text: str | None
    threshold_text: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One op's figures over one phase; `histogram` is the phase's HDR histogram, encoded (V2, base64)."""

    phase: str
    op: str
    measured: bool
    seconds: float | None
    ok: int
    errors: int
    errors_by_class: Mapping[str, int]
    dropped: int
    retries: int
    rows: int
    ops_per_s: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    histogram: str | None = None


@dataclass(frozen=True, slots=True)
class RunEntry:
    """Everything the history keeps about one run."""

    run_id: str
    scenario: str
    scenario_hash: str
    target: str
    topology: str
    environment: str
    verdict: str
    started_at: str
    started_ts: float
    ended_at: str | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    results_dir: str | None = None
    holoload_version: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    host_name: str | None = None
    host_cpus: int | None = None
    host_model: str | None = None
    host_load1: float | None = None
    source: str = "run"
    problems: tuple[str, ...] = ()
    gates: tuple[GateRecord, ...] = ()
    ops: tuple[OpRecord, ...] = field(default_factory=tuple)

    def op(self, phase: str, op: str) -> OpRecord | None:
        return next((o for o in self.ops if o.phase == phase and o.op == op), None)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _int(value: Any) -> int:
    number = _num(value)
    return int(number) if number is not None else 0


def scenario_hash(scenario: Mapping[str, Any]) -> str:
    """A short content hash of the scenario as run (after overrides): equal files, equal hashes."""
    text = json.dumps(scenario, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def environment_of(summary: RunSummary | Mapping[str, Any], context: RunContext, fallback: str | None) -> str:
    """The environment label: the summary's `env` (a name, or a profile with a `name`), then the
    context's, then `fallback` (HOLOLOAD_ENV), then "default"."""
    result = RunSummary.from_json(summary)
    for value in (result.env, result.run.extra.get("env")):
        if isinstance(value, Mapping):
            value = value.get("name")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return context.environment or fallback or DEFAULT_ENVIRONMENT


def _timestamp(value: Any) -> tuple[str, float]:
    """(ISO text, epoch seconds) of a start time given as ISO text or epoch seconds."""
    number = _num(value)
    if number is not None:
        return datetime.fromtimestamp(number, UTC).isoformat(), number
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC).isoformat(), parsed.timestamp()
    return "", 0.0


def _topology(target: Mapping[str, Any]) -> str:
    nodes = target.get("nodes")
    parts = [f"{len(nodes)} nodes" if isinstance(nodes, list) else None, target.get("data"), target.get("topology")]
    return ", ".join(str(p) for p in parts if p)


def _rebuilt(summary: RunSummary) -> bool:
    """A summary `holoload report` rebuilt from a killed run's files: its gates are live states."""
    return summary.rebuilt_from_disk is True or summary.verdict is RunVerdict.KILLED


def _gates(gates: Iterable[GateOutcome], *, rebuilt: bool) -> tuple[GateRecord, ...]:
    """Gates as judged; a rebuilt (killed) run's are last live states (`passed` None), not verdicts."""
    out = []
    for g in gates:
        if not g.name:
            continue
        passed = g.passed if not rebuilt and isinstance(g.passed, bool) and "passed" in g.keys else None
        out.append(
            GateRecord(
                name=str(g.name),
                expression=_written_text(g, "expression"),
                passed=passed,
                state=str(g.state_text) if g.state_text is not None else ("pass" if passed else "fail"),
                observed=_num(g.observed),
                threshold=_num(g.threshold),
                observed_text=_written_text(g, "observed_text"),
                threshold_text=_written_text(g, "threshold_text"),
                reason=_written_text(g, "reason"),
            )
        )
    return tuple(out)


def _written_text(gate: GateOutcome, key: str) -> str | None:
    """A gate's text field as the summary had it (None: absent or not text)."""
    value = getattr(gate, key)
    return value if isinstance(value, str) and key in gate.keys else None


def _op(
    phase: str,
    name: str,
    fig: OpFigures | BatchOpFigures,
    measured: bool,
    seconds: float | None,
    hist: str | None,
    canary_classes: Mapping[str, int] | None = None,
) -> OpRecord:
    lat = fig.latency_ms or {}
    count = _int(fig.extra["error_count"]) if "error_count" in fig.extra else None
    if isinstance(fig, OpFigures) and isinstance(fig.errors, Mapping) and "errors" in fig.keys:
        classes = {str(k): _int(v) for k, v in fig.errors.items()}  # sustained load: by class, error_count the total
        errors = _int(fig.error_count) if "error_count" in fig.keys else sum(classes.values())
    elif isinstance(fig, OpFigures):  # a rebuilt op (error_count only)
        classes = {}
        errors = _int(fig.error_count) if "error_count" in fig.keys else 0
    else:  # a canary op: a count, its classes from the batches
        classes = dict(canary_classes or {})
        errors = count if count is not None else _int(fig.errors)
    return OpRecord(
        phase=phase,
        op=name,
        measured=measured,
        seconds=seconds,
        ok=_int(fig.ok),
        errors=errors,
        errors_by_class=classes,
        dropped=_int(fig.dropped) if isinstance(fig, OpFigures) else 0,
        retries=_int(fig.retries) if isinstance(fig, OpFigures) else 0,
        rows=_int(fig.rows),
        ops_per_s=_num(fig.ops_per_s) if isinstance(fig, OpFigures) else _num(fig.extra.get("ops_per_s")),
        p50_ms=_num(lat.get("p50")),
        p95_ms=_num(lat.get("p95")),
        p99_ms=_num(lat.get("p99")),
        max_ms=_num(lat.get("max")),
        histogram=hist,
    )


def _ops(summary: RunSummary, histograms: Mapping[tuple[str, str], str]) -> tuple[OpRecord, ...]:
    out: list[OpRecord] = []
    for phase, body in summary.phases.items():
        if "ops" not in body.keys:
            continue
        for name, fig in body.ops.items():
            hist = histograms.get((phase, name))
            out.append(_op(phase, name, fig, body.measured is not False, _num(body.seconds), hist))
    if summary.ops is not None and not out:
        classes = _canary_error_classes(summary.batches)
        for name, batch_fig in summary.ops.items():
            hist = histograms.get((CANARY_PHASE, name))
            out.append(_op(CANARY_PHASE, name, batch_fig, True, None, hist, classes.get(name, {})))
    return tuple(out)


def _canary_error_classes(batches: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for b in batches:
        if isinstance(b, Mapping) and b.get("status") == "error":
            by_class = out.setdefault(str(b.get("op")), {})
            key = str(b.get("error_class") or "unknown")
            by_class[key] = by_class.get(key, 0) + 1
    return out


def canary_histograms(batches: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """A canary's per-op histograms rebuilt from its batches (what its aggregator recorded:
    every batch that did not fail, its statement time), encoded."""
    hists: dict[str, LatencyHistogram] = {}
    for b in batches:
        elapsed = _num(b.get("elapsed_s"))
        if b.get("status") == "error" or elapsed is None or not b.get("op"):
            continue
        hists.setdefault(str(b["op"]), LatencyHistogram()).record_s(elapsed)
    return {(CANARY_PHASE, op): h.encode().decode("ascii") for op, h in hists.items()}


def entry_from_summary(
    summary: RunSummary | Mapping[str, Any],
    *,
    context: RunContext,
    histograms: Mapping[tuple[str, str], str],
    source: str = "run",
    environment_fallback: str | None = None,
) -> RunEntry:
    """The history record of a run from its summary.

    Args:
        summary: a finished run's summary, or one `holoload report` rebuilt (or its parsed summary.json).
        context: git, host and environment facts captured when the run started (empty if unknown).
        histograms: encoded HDR histogram per (phase, op).
        source: how it got into history: `run`, `report` or `import`.
        environment_fallback: the environment when neither the summary nor the context names one.

    Raises:
        ValueError: the summary has no run id.
    """
    result = RunSummary.from_json(summary)
    run = result.run
    if not run.run_id:
        raise ValueError("summary.json has no run.run_id")
    target = result.target or {}
    started_at, started_ts = _timestamp(run.started_at)
    exit_code = result.exit_code if "exit_code" in result.keys else run.exit_code
    return RunEntry(
        run_id=str(run.run_id),
        scenario=str(result.scenario.get("name") or "?"),
        scenario_hash=scenario_hash(result.scenario),
        target=str(target.get("name") or "?"),
        topology=_topology(target),
        environment=environment_of(result, context, environment_fallback),
        verdict=result.status,
        started_at=started_at,
        started_ts=started_ts,
        ended_at=str(run.ended_at) if run.ended_at else None,
        duration_s=_num(run.duration_s),
        exit_code=exit_code,
        results_dir=str(run.results_dir) if run.results_dir else None,
        holoload_version=str(result.holoload_version) if result.holoload_version else None,
        git_commit=context.git_commit,
        git_branch=context.git_branch,
        host_name=context.host_name,
        host_cpus=context.host_cpus,
        host_model=context.host_model,
        host_load1=context.host_load1,
        source=source,
        problems=run.problems,
        gates=_gates(result.gates, rebuilt=_rebuilt(result)),
        ops=_ops(result, histograms),
    )


METRICS = ("p95_ms", "p99_ms", "ops_per_s")


def series(runs: Iterable[RunEntry], phase: str, op: str, metric: str) -> list[tuple[RunEntry, float]]:
    """One figure of one op over runs (in start order), runs without it left out.

    Raises:
        ValueError: `metric` is not one of p50_ms, p95_ms, p99_ms, max_ms, ops_per_s.
    """
    if metric not in ("p50_ms", *METRICS, "max_ms"):
        raise ValueError(f"unknown metric {metric!r}")
    out = []
    for run in sorted(runs, key=lambda r: r.started_ts):
        record = run.op(phase, op)
        value = None if record is None else getattr(record, metric)
        if isinstance(value, float) and math.isfinite(value):
            out.append((run, value))
    return out


def op_keys(runs: Iterable[RunEntry]) -> list[tuple[str, str]]:
    """Every measured (phase, op) seen in `runs`, in first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for run in sorted(runs, key=lambda r: r.started_ts):
        for o in run.ops:
            if o.measured:
                seen.setdefault((o.phase, o.op), None)
    return list(seen)


def latest_verdicts(runs: Iterable[RunEntry]) -> dict[tuple[str, str], RunEntry]:
    """The newest run per (scenario, environment)."""
    out: dict[tuple[str, str], RunEntry] = {}
    for run in sorted(runs, key=lambda r: r.started_ts):
        out[(run.scenario, run.environment)] = run
    return out
