"""Gate functions over op selectors, and the live monitor of a sustained run's gates.

Latency and counts of an op's histogram: `pN(op)`, `min(op)`, `max(op)`, `mean(op)`, `count(op)`
(the canary's batches as well as sustained load). Over a sustained run's windows, through
`LoadGateContext`: `pN(op, window=1m)`, `error_rate(op)`, `errors(op, class=retryable)`,
`dropped(op)`, `retries(op)`, `max_gap(op)`, and `measure_rate` behind `rate(op)`. A gate with
`window=` must hold in every window it is evaluated on (the verdict fails if it ever failed).

`during=TAG` (pN, error_rate, errors, dropped, retries) reads only the windows closed with that
tag, such as a chaos fault's name or action kind: `p99(insert, during=split)`. `phase=NAME` (the
same functions and max_gap) reads that phase whatever phases the gate belongs to:
`p99(insert, during=split) <= 2 * p99(insert, phase=baseline)`. `window=` and `during=` exclude
each other. The functions are listed in `holoload.core.gates.language.FUNCTIONS`; `min`, `max` and
`rate` there also read server series (`holoload.core.gates.server`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from holoload.core.config.units import parse_duration
from holoload.core.gates.chaos import ChaosView
from holoload.core.gates.model import (
    FunctionFamily,
    Gate,
    GateContext,
    GateFunction,
    HistogramView,
    Kind,
    Measurement,
    NoData,
)
from holoload.core.gates.verdicts import Verdict, evaluate
from holoload.core.outcome import ErrorClass
from holoload.core.stats.window import NS_PER_S, Aggregator, OpStats


class LoadGateContext:
    """Reads an Aggregator for gates, limited to some phases (None: all of them).

    Args:
        aggregator: the run's aggregator.
        phases: phase names whose data counts.
        now_ns: monotonic now (for rates and open gaps).
        scalars: extra named scalars (ledger figures such as `lost` among them).
        server: the cluster's sampled signals (a ServerView), for server-side gates.
        chaos: the run's chaos results, for `chaos()` and `recovery()`.
    """

    def __init__(
        self,
        aggregator: Aggregator,
        phases: list[str] | None,
        now_ns: int,
        scalars: Mapping[str, float] | None = None,
        server: object | None = None,
        chaos: ChaosView | None = None,
    ) -> None:
        self.server = server
        self.chaos = chaos
        self.agg = aggregator
        self.phases = phases
        self.now_ns = now_ns
        self.scalars = dict(scalars or {})

    def histogram(self, op: str) -> HistogramView | None:
        stats = self.stats(op)
        return None if stats is None else stats.latency

    def scalar(self, name: str) -> float | None:
        return self.scalars.get(name)

    def stats(
        self, op: str, window_s: float | None = None, during: str | None = None, phase: str | None = None
    ) -> OpStats | None:
        """Merged stats of an op selector, or None when it picks nothing.

        Args:
            op: the op selector.
            window_s: only the last `window_s` seconds of closed windows.
            during: only the windows closed with this tag (wins over `window_s`).
            phase: this phase instead of the context's phases.
        """
        phases = self.phases if phase is None else [phase]
        if during is not None:
            return self.agg.tagged_total(op, during, phases)
        if window_s is not None:
            return self.agg.recent_total(op, window_s, phases)
        return self.agg.total(op, phases)

    def elapsed_s(self) -> float:
        return self.agg.elapsed_s(self.phases, self.now_ns)


def _window(keywords: Mapping[str, str]) -> float | None:
    text = keywords.get("window")
    return None if text is None else parse_duration(text)


def _stats(ctx: object, op: str, keywords: Mapping[str, str]) -> OpStats | None:
    if not isinstance(ctx, LoadGateContext):
        return None
    return ctx.stats(op, _window(keywords), keywords.get("during"), keywords.get("phase"))


def _attempts(stats: OpStats) -> int:
    """Operations that were tried at all (succeeded, failed or dropped): the evidence behind a count."""
    return stats.ok + stats.error_count + stats.dropped


def _nothing_tried(op: str, keywords: Mapping[str, str]) -> NoData:
    """No operation of `op` ran in the span a gate reads: a count of 0 there would prove nothing."""
    span = ", ".join(f"{k}={v}" for k, v in keywords.items() if k in STATS_KEYWORDS)
    return NoData(f"no operation of op '{op}' ran" + (f" ({span})" if span else ""))


def _phases(ctx: LoadGateContext, keywords: Mapping[str, str]) -> list[str] | None:
    phase = keywords.get("phase")
    return ctx.phases if phase is None else [phase]


#: Keywords of functions over an op's stats: the last window, windows of a tag, another phase.
STATS_KEYWORDS = frozenset({"window", "during", "phase"})


def _percentile(match: re.Match[str]) -> GateFunction | None:
    p = float(match[1])
    if p > 100:
        return None

    def measure(ctx: object, op: str, keywords: Mapping[str, str]) -> float | None:
        if isinstance(ctx, LoadGateContext):
            stats = _stats(ctx, op, keywords)
            hist: HistogramView | None = None if stats is None else stats.latency
        else:
            hist = ctx.histogram(op)  # type: ignore[attr-defined]
        value = None if hist is None or hist.count == 0 else hist.percentile_us(p)
        return None if value is None else value / 1_000_000

    return GateFunction(match[0], Kind.DURATION, measure, STATS_KEYWORDS)


def _error_rate(ctx: object, op: str, keywords: Mapping[str, str]) -> float | None:
    stats = _stats(ctx, op, keywords)
    if stats is None:
        return None
    attempts = stats.ok + stats.error_count
    return stats.error_count / attempts if attempts else None


def measure_rate(ctx: object, op: str, keywords: Mapping[str, str]) -> Measurement:
    """Successful operations per second of an op selector (over `window=` or the phases' time)."""
    if not isinstance(ctx, LoadGateContext):
        return None
    window, phases = _window(keywords), _phases(ctx, keywords)
    if window is not None:  # divide by the time the windows really cover, not the nominal length
        stats, seconds = ctx.agg.recent(op, window, phases)
    else:
        stats, seconds = ctx.agg.total(op, phases), ctx.agg.elapsed_s(phases, ctx.now_ns)
    if stats is None:
        return None
    if not _attempts(stats):
        return _nothing_tried(op, keywords)
    return stats.ok / seconds if seconds > 0 else None


def _errors(ctx: object, op: str, keywords: Mapping[str, str]) -> Measurement:
    stats = _stats(ctx, op, keywords)
    if stats is None:
        return None
    if not _attempts(stats):
        return _nothing_tried(op, keywords)
    wanted = keywords.get("class")
    if wanted is None:
        return float(stats.error_count)
    return float(stats.errors.get(ErrorClass(wanted), 0))


def _counter(name: str) -> GateFunction:
    def measure(ctx: object, op: str, keywords: Mapping[str, str]) -> Measurement:
        stats = _stats(ctx, op, keywords)
        if stats is None:
            return None
        return float(getattr(stats, name)) if _attempts(stats) else _nothing_tried(op, keywords)

    return GateFunction(name, Kind.NUMBER, measure, STATS_KEYWORDS)


def _max_gap(ctx: object, op: str, keywords: Mapping[str, str]) -> float | None:
    if not isinstance(ctx, LoadGateContext):
        return None
    gap = ctx.agg.max_gap_ns(op, ctx.now_ns, _phases(ctx, keywords))
    return None if gap is None else gap / NS_PER_S


def _from_histogram(name: str, read: Callable[[HistogramView], float | None]) -> GateFunction:
    """A duration function reading microseconds from the op's histogram; empty is no data."""

    def measure(ctx: GateContext, op: str, keywords: Mapping[str, str]) -> float | None:
        histogram = ctx.histogram(op)
        value_us = None if histogram is None or histogram.count == 0 else read(histogram)
        return None if value_us is None else value_us / 1_000_000

    return GateFunction(name, Kind.DURATION, measure)


def _count(ctx: GateContext, op: str, keywords: Mapping[str, str]) -> float | None:
    # An op that exists but recorded nothing has a count of 0, which is an answer.
    histogram = ctx.histogram(op)
    return None if histogram is None else float(histogram.count)


#: `p50(op)`, `p99.9(op, window=1m)`: any percentile up to 100.
PERCENTILES = FunctionFamily(
    re.compile(r"p(\d+(?:\.\d+)?)"), _percentile, "p<N> (p50, p95, p99.9; window=1m, during=split, phase=x)"
)
#: The op's fastest and slowest latency (`min`/`max` in the gate table also read topology series).
OP_MIN = _from_histogram("min", lambda h: h.min_us)
OP_MAX = _from_histogram("max", lambda h: h.max_us)
MEAN = _from_histogram("mean", lambda h: h.mean_us)
COUNT = GateFunction("count", Kind.NUMBER, _count)
ERROR_RATE = GateFunction("error_rate", Kind.RATIO, _error_rate, STATS_KEYWORDS)
ERRORS = GateFunction("errors", Kind.NUMBER, _errors, STATS_KEYWORDS | {"class"}, hint="errors (class=retryable)")
DROPPED = _counter("dropped")
RETRIES = _counter("retries")
MAX_GAP = GateFunction("max_gap", Kind.DURATION, _max_gap, frozenset({"phase"}))


def keyword_problems(gate: Gate) -> list[str]:
    """Keyword values that cannot work (bad window durations, unknown error classes, window= with during=).

    Phase names are checked by the scenario validator (see `gate_phase_names`).
    """
    problems: list[str] = []
    for side in gate.calls():
        keywords = dict(side.keywords)
        if "window" in keywords and "during" in keywords:
            detail = "window= and during= cannot be combined (during= reads every window the tag was active in)"
            problems.append(f"{side.text}: {detail}")
        for key, value in side.keywords:
            if key == "window":
                try:
                    parse_duration(value)
                except ValueError as exc:
                    problems.append(f"{side.text}: window: {exc}")
            if key == "class" and value not in {c.value for c in ErrorClass}:
                known = ", ".join(c.value for c in ErrorClass)
                problems.append(f"{side.text}: unknown error class {value!r} (known: {known})")
    return problems


def longest_window_s(gates: Iterable[Gate]) -> float | None:
    """The longest `window=` any of the gates reads (how much history the aggregator must keep)."""
    spans = [
        parse_duration(value)
        for gate in gates
        for call in gate.calls()
        for key, value in call.keywords
        if key == "window"
    ]
    return max(spans, default=None)


def is_windowed(gate: Gate) -> bool:
    """Whether the gate reads windows (and so must hold in every one)."""
    return any(dict(call.keywords).get("window") for call in gate.calls())


def _keyword_values(gate: Gate, keyword: str) -> set[str]:
    return {value for call in gate.calls() for key, value in call.keywords if key == keyword}


def gate_phase_names(gate: Gate) -> set[str]:
    """The phase names a gate's `phase=` keywords name, for the scenario validator to check."""
    return _keyword_values(gate, "phase")


def gate_during_tags(gate: Gate) -> set[str]:
    """The tags a gate's `during=` keywords name (chaos fault names or action kinds)."""
    return _keyword_values(gate, "during")


class GateState:
    """Live state of one gate: pending until evaluated, then pass/fail."""

    PENDING, PASS, FAIL, NO_DATA = "pending", "pass", "fail", "no data"


@dataclass
class GateMonitor:
    """Evaluates one gate live, window after window, and decides its final verdict.

    A windowed gate fails for good once any evaluation failed; any other gate's verdict is
    its last evaluation. `failing_since_ns` drives abort_on_fail with a grace delay. Without
    evidence a gate stays pending while the run goes and fails at the end, unless
    `report_no_data` (the scenario's `no_data = "report"`) makes it a "no data" verdict.
    """

    name: str
    gate: Gate
    phases: list[str] | None
    abort_on_fail: bool = False
    grace_s: float = 0.0
    state: str = GateState.PENDING
    last: Verdict | None = None
    first_failure: Verdict | None = None
    failing_since_ns: int | None = None
    report_no_data: bool = False
    windowed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.windowed = is_windowed(self.gate)

    def observe(self, ctx: LoadGateContext) -> Verdict:
        """Evaluate now; returns the verdict of this evaluation."""
        verdict = evaluate(self.name, self.gate, ctx, report_no_data=self.report_no_data)
        no_data = verdict.observed is None
        if no_data and self.last is None:
            return verdict  # stays pending until there is something to judge
        self.last = verdict
        if verdict.no_data:
            self.failing_since_ns = None
            if not (self.windowed and self.first_failure is not None):
                self.state = GateState.NO_DATA
            return verdict
        if verdict.passed:
            self.failing_since_ns = None
        else:
            if self.failing_since_ns is None:
                self.failing_since_ns = ctx.now_ns
            if self.first_failure is None:
                self.first_failure = verdict
        if self.windowed:
            self.state = GateState.FAIL if self.first_failure is not None else GateState.PASS
        else:
            self.state = GateState.PASS if verdict.passed else GateState.FAIL
        return verdict

    def should_abort(self, now_ns: int) -> bool:
        if not self.abort_on_fail or self.failing_since_ns is None:
            return False
        return (now_ns - self.failing_since_ns) / NS_PER_S >= self.grace_s

    def final(self, ctx: LoadGateContext) -> Verdict:
        """The verdict for the summary.

        A cumulative gate is evaluated once more on the final figures. A windowed gate keeps
        what its live evaluations found (its windows are over once its phase ended); it is
        evaluated now only if it never was. A gate still pending at the end had no evidence.
        """
        verdict = self.last if self.windowed and self.last is not None else self.observe(ctx)
        if self.state == GateState.PENDING:  # never judged on data: the end decides (fail, or no data)
            self.state = GateState.NO_DATA if verdict.no_data else GateState.FAIL
        if self.windowed and self.first_failure is not None:
            first = self.first_failure
            return Verdict(
                self.name,
                first.expression,
                False,
                first.observed,
                first.threshold,
                first.observed_text,
                first.threshold_text,
                f"{first.reason} (in at least one window)",
            )
        return verdict
