"""Run history records: one run's facts, gates and per-op figures, built from its summary.json.

Pure: the caller reads files, git and the host, and passes what it found (`RunContext`, the
encoded per-op histograms). The same records go into SQLite and PostgreSQL
(`adapters/history_store.py`) and come back for trends (`series`, `latest_verdicts`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from holoload.core.histogram import LatencyHistogram

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


def environment_of(summary: Mapping[str, Any], context: RunContext, fallback: str | None) -> str:
    """The environment label: the summary's `env` (a name, or a profile with a `name`), then the
    context's, then `fallback` (HOLOLOAD_ENV), then "default"."""
    for holder in (summary, summary.get("run") if isinstance(summary.get("run"), Mapping) else {}):
        value = holder.get("env") if isinstance(holder, Mapping) else None
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


def _rebuilt(summary: Mapping[str, Any]) -> bool:
    """A summary `holoload report` rebuilt from a killed run's files: its gates are live states."""
    return summary.get("rebuilt_from_disk") is True or summary.get("verdict") == "KILLED"


def _gates(raw: Any, *, rebuilt: bool) -> tuple[GateRecord, ...]:
    """Gates as judged; a rebuilt (killed) run's are last live states (`passed` None), not verdicts."""
    out = []
    for g in raw if isinstance(raw, list) else []:
        if not isinstance(g, Mapping) or not g.get("name"):
            continue
        state = g.get("state")
        passed = g.get("passed") if not rebuilt and isinstance(g.get("passed"), bool) else None
        text = {k: g.get(k) if isinstance(g.get(k), str) else None for k in ("expression", "observed_text")}
        out.append(
            GateRecord(
                name=str(g["name"]),
                expression=text["expression"],
                passed=passed,
                state=str(state) if state is not None else ("pass" if passed else "fail"),
                observed=_num(g.get("observed")),
                threshold=_num(g.get("threshold")),
                observed_text=text["observed_text"],
                threshold_text=g.get("threshold_text") if isinstance(g.get("threshold_text"), str) else None,
                reason=g.get("reason") if isinstance(g.get("reason"), str) else None,
            )
        )
    return tuple(out)


def _op(
    phase: str, name: str, fig: Mapping[str, Any], measured: bool, seconds: float | None, hist: str | None
) -> OpRecord:
    lat = fig.get("latency_ms") if isinstance(fig.get("latency_ms"), Mapping) else {}
    assert isinstance(lat, Mapping)
    by_class = fig.get("errors")
    if isinstance(by_class, Mapping):  # sustained load: errors by class, error_count the total
        classes = {str(k): _int(v) for k, v in by_class.items()}
        errors = _int(fig["error_count"]) if "error_count" in fig else sum(classes.values())
    else:  # a canary op (a count, its classes from the batches) or a rebuilt one (error_count only)
        classes = dict(fig.get("error_classes") or {})
        errors = _int(fig["error_count"]) if "error_count" in fig else _int(by_class)
    return OpRecord(
        phase=phase,
        op=name,
        measured=measured,
        seconds=seconds,
        ok=_int(fig.get("ok")),
        errors=errors,
        errors_by_class=classes,
        dropped=_int(fig.get("dropped")),
        retries=_int(fig.get("retries")),
        rows=_int(fig.get("rows")),
        ops_per_s=_num(fig.get("ops_per_s")),
        p50_ms=_num(lat.get("p50")),
        p95_ms=_num(lat.get("p95")),
        p99_ms=_num(lat.get("p99")),
        max_ms=_num(lat.get("max")),
        histogram=hist,
    )


def _ops(summary: Mapping[str, Any], histograms: Mapping[tuple[str, str], str]) -> tuple[OpRecord, ...]:
    out: list[OpRecord] = []
    phases = summary.get("phases")
    for phase, body in phases.items() if isinstance(phases, Mapping) else []:
        if not isinstance(body, Mapping) or not isinstance(body.get("ops"), Mapping):
            continue
        seconds = _num(body.get("seconds"))
        measured = body.get("measured", True) is not False
        for name, fig in body["ops"].items():
            if isinstance(fig, Mapping):
                out.append(_op(str(phase), str(name), fig, measured, seconds, histograms.get((str(phase), str(name)))))
    canary = summary.get("ops")
    if isinstance(canary, Mapping) and not out:
        classes = _canary_error_classes(summary.get("batches"))
        for name, fig in canary.items():
            if isinstance(fig, Mapping):
                fig = {**fig, "error_classes": classes.get(str(name), {})}
                out.append(_op(CANARY_PHASE, str(name), fig, True, None, histograms.get((CANARY_PHASE, str(name)))))
    return tuple(out)


def _canary_error_classes(batches: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for b in batches if isinstance(batches, list) else []:
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
    summary: Mapping[str, Any],
    *,
    context: RunContext,
    histograms: Mapping[tuple[str, str], str],
    source: str = "run",
    environment_fallback: str | None = None,
) -> RunEntry:
    """The history record of a run from its summary.json.

    Args:
        summary: summary.json (a finished run's, or one `holoload report` rebuilt).
        context: git, host and environment facts captured when the run started (empty if unknown).
        histograms: encoded HDR histogram per (phase, op).
        source: how it got into history: `run`, `report` or `import`.
        environment_fallback: the environment when neither the summary nor the context names one.

    Raises:
        ValueError: the summary has no run id.
    """
    run = summary.get("run") if isinstance(summary.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    if not run.get("run_id"):
        raise ValueError("summary.json has no run.run_id")
    scenario = summary.get("scenario") if isinstance(summary.get("scenario"), Mapping) else {}
    target = summary.get("target") if isinstance(summary.get("target"), Mapping) else {}
    assert isinstance(scenario, Mapping) and isinstance(target, Mapping)
    started_at, started_ts = _timestamp(run.get("started_at"))
    exit_code = summary.get("exit_code", run.get("exit_code"))
    problems = run.get("problems") if isinstance(run.get("problems"), list) else []
    assert isinstance(problems, list)
    return RunEntry(
        run_id=str(run["run_id"]),
        scenario=str(scenario.get("name") or "?"),
        scenario_hash=scenario_hash(scenario),
        target=str(target.get("name") or "?"),
        topology=_topology(target),
        environment=environment_of(summary, context, environment_fallback),
        verdict=str(summary.get("verdict") or run.get("status") or "UNKNOWN"),
        started_at=started_at,
        started_ts=started_ts,
        ended_at=str(run["ended_at"]) if run.get("ended_at") else None,
        duration_s=_num(run.get("duration_s")),
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        results_dir=str(run["results_dir"]) if run.get("results_dir") else None,
        holoload_version=str(summary["holoload_version"]) if summary.get("holoload_version") else None,
        git_commit=context.git_commit,
        git_branch=context.git_branch,
        host_name=context.host_name,
        host_cpus=context.host_cpus,
        host_model=context.host_model,
        host_load1=context.host_load1,
        source=source,
        problems=tuple(str(p) for p in problems),
        gates=_gates(summary.get("gates"), rebuilt=_rebuilt(summary)),
        ops=_ops(summary, histograms),
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
