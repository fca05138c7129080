"""Sustained-load gates: parse, type-check, evaluate against an Aggregator, monitor live (fake clock)."""

from __future__ import annotations

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.gates.language import Call, GateSyntaxError, Kind, parse_gate
from holoload.core.gates.load import (
    GateMonitor,
    GateState,
    LoadGateContext,
    gate_during_tags,
    gate_phase_names,
    is_windowed,
    keyword_problems,
)
from holoload.core.gates.verdicts import evaluate
from holoload.core.model.scenario import parse_scenario
from holoload.core.outcome import ErrorClass
from holoload.core.stats.window import NS_PER_S, Aggregator, OpKey

NS_PER_MS = 1_000_000
KEY = OpKey("main", "w", "op", "node1")
KEY2 = OpKey("main", "w", "op", "node2")


def feed(agg: Aggregator, key: OpKey, at_ns: int, n: int, latency_ms: float) -> None:
    """`n` successes of `latency_ms` finishing at `at_ns`."""
    rec = agg.recorder(key, at_ns)
    lat = int(latency_ms * NS_PER_MS)
    for _ in range(n):
        rec.success(at_ns - lat, at_ns - lat, at_ns)


def started(now_ns: int = 0) -> Aggregator:
    agg = Aggregator(now_ns)
    agg.phase_started("main", now_ns)
    agg.recorder(KEY, now_ns)
    return agg


def ctx(agg: Aggregator, now_ns: int, phases: list[str] | None = None) -> LoadGateContext:
    return LoadGateContext(agg, ["main"] if phases is None else phases, now_ns)


def check(text: str, agg: Aggregator, now_ns: int) -> tuple[bool, float | None, str]:
    verdict = evaluate("g", parse_gate(text), ctx(agg, now_ns))
    return verdict.passed, verdict.observed, verdict.reason


@pytest.mark.parametrize(
    ("text", "kind", "keywords"),
    [
        ("p99(op, window=1m) <= 50ms", Kind.DURATION, (("window", "1m"),)),
        ("p99.9(w.op) <= 50ms", Kind.DURATION, ()),
        ("error_rate(op) < 0.1%", Kind.RATIO, ()),
        ("rate(op) >= 1000/s", Kind.RATE, ()),
        ("rate(op, window=10s) >= 1.5k/s", Kind.RATE, (("window", "10s"),)),
        ("errors(op, class=retryable) <= 10", Kind.NUMBER, (("class", "retryable"),)),
        ("max_gap(op) <= 5s", Kind.DURATION, ()),
        ("dropped(op) == 0", Kind.NUMBER, ()),
        ("retries(w, window=30s) <= 100", Kind.NUMBER, (("window", "30s"),)),
    ],
)
def test_load_gates_parse_with_their_kind_and_keywords(text: str, kind: Kind, keywords: tuple[object, ...]) -> None:
    """Every load gate function parses, with the right kind and keywords as written."""
    gate = parse_gate(text)
    assert isinstance(gate.left, Call)
    assert gate.left.kind is kind is gate.right.kind
    assert gate.left.keywords == keywords
    assert keyword_problems(gate) == []
    assert is_windowed(gate) == any(k == "window" for k, _ in keywords)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate(x) >= 5", "rate(x) is a rate; compare it with a rate such as 1000/s, not 5 (a number)"),
        ("rate(x) >= 5%", "rate(x) is a rate"),
        ("error_rate(x) < 5", "error_rate(x) is a ratio; compare it with a ratio such as 1%"),
        ("error_rate(x) < 5ms", "error_rate(x) is a ratio"),
        ("max_gap(x) <= 5", "max_gap(x) is a duration"),
        ("dropped(x) == 0s", "dropped(x) is a number"),
        ("errors(x) <= 1/s", "errors(x) is a number"),
        ("p99(x, window=1m) <= 100", "p99(x, window=1m) is a duration"),
        ("5 <= rate(x)", "rate(x) is a rate; compare it with a rate such as 1000/s, not 5 (a number)"),
    ],
)
def test_kind_mismatches_are_rejected_at_parse_time(text: str, message: str) -> None:
    """Comparing a rate with a plain number (and similar) is a syntax error, not a silent FAIL."""
    with pytest.raises(GateSyntaxError) as info:
        parse_gate(text)
    assert message in info.value.detail


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("max_gap(x, window=1m) <= 5s", "window"),  # documented: max_gap spans the whole phase
        ("count(x, window=1m) >= 10", "window"),
        ("dropped(x, class=retryable) == 0", "class"),
        ("error_rate(x, class=timeout) < 1%", "class"),
        ("p99(x, windw=1m) <= 5s", "windw"),
    ],
)
def test_keywords_a_function_does_not_take_are_rejected(text: str, keyword: str) -> None:
    """A keyword the function does not accept is named in the syntax error."""
    with pytest.raises(GateSyntaxError, match=f"unexpected keyword '{keyword}'"):
        parse_gate(text)


def test_unknown_error_class_is_a_keyword_problem() -> None:
    """`class=flaky` parses, but keyword_problems names it and lists the known classes."""
    problems = keyword_problems(parse_gate("errors(op, class=flaky) <= 10"))
    assert len(problems) == 1
    assert "unknown error class 'flaky'" in problems[0]
    for cls in ErrorClass:
        assert cls.value in problems[0]


@pytest.mark.parametrize("window", ["fast", "1x", "5"])
def test_bad_window_is_a_keyword_problem(window: str) -> None:
    """A window that is not a duration is reported by keyword_problems (not at evaluation)."""
    problems = keyword_problems(parse_gate(f"p99(op, window={window}) <= 50ms"))
    assert len(problems) == 1
    assert problems[0].startswith(f"p99(op, window={window}): window:")


def test_scenario_validation_reports_keyword_problems() -> None:
    """A scenario whose gates have a bad class, a bad window and a bare-number rate fails naming all three."""
    text = """
name = "bad"
[[phases]]
name = "main"
duration = "1s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "op"
sql = "SELECT 1"
[phases.gates]
cls = "errors(op, class=flaky) <= 10"
win = "p99(op, window=soon) <= 1s"
rate = "rate(op) >= 5"
"""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.toml")
    text = str(info.value)
    assert "phases[0].gates.cls" in text and "unknown error class 'flaky'" in text
    assert "phases[0].gates.win" in text and "window" in text
    assert "phases[0].gates.rate" in text and "is a rate" in text


def test_percentile_reads_the_phase_totals() -> None:
    """p99(op) reads the latency histogram of the phase's totals."""
    agg = started()
    feed(agg, KEY, 500 * NS_PER_MS, 99, latency_ms=2)
    feed(agg, KEY2, 500 * NS_PER_MS, 1, latency_ms=200)
    agg.close_window(NS_PER_S)
    passed, observed, reason = check("p99(op) <= 5ms", agg, NS_PER_S)
    assert passed and observed == pytest.approx(0.002, rel=1e-3)
    passed, observed, reason = check("max(op) <= 5ms", agg, NS_PER_S)
    assert not passed and observed == pytest.approx(0.2, rel=1e-3)
    assert reason.startswith("FAIL: max(op) = ")


def test_windowed_percentile_reads_only_recent_windows() -> None:
    """p99(op, window=1s) sees the last window only; the cumulative p99 still sees the old spike."""
    agg = started()
    feed(agg, KEY, 500 * NS_PER_MS, 50, latency_ms=900)
    agg.close_window(NS_PER_S)
    feed(agg, KEY, 1500 * NS_PER_MS, 50, latency_ms=3)
    agg.close_window(2 * NS_PER_S)
    assert check("p99(op, window=1s) <= 10ms", agg, 2 * NS_PER_S)[0]
    assert not check("p99(op) <= 10ms", agg, 2 * NS_PER_S)[0]
    assert not check("p99(op, window=2s) <= 10ms", agg, 2 * NS_PER_S)[0]


def test_error_rate_is_errors_over_attempts() -> None:
    """error_rate = errors / (ok + errors); 1 in 1000 fails `< 0.1%` and passes `<= 0.1%`."""
    agg = started()
    feed(agg, KEY, 500 * NS_PER_MS, 999, latency_ms=1)
    agg.recorder(KEY, 0).failure(ErrorClass.TIMEOUT)
    agg.close_window(NS_PER_S)
    passed, observed, reason = check("error_rate(op) < 0.1%", agg, NS_PER_S)
    assert not passed and observed == pytest.approx(0.001)
    assert reason == "FAIL: error_rate(op) = 0.1% >= 0.1%"
    assert check("error_rate(op) <= 0.1%", agg, NS_PER_S)[0]


def test_error_rate_without_attempts_is_no_data() -> None:
    """No attempt at all: error_rate has no value and the gate fails saying so."""
    agg = started()
    agg.close_window(NS_PER_S)
    passed, observed, reason = check("error_rate(op) < 0.1%", agg, NS_PER_S)
    assert not passed and observed is None
    assert "no samples" in reason


def test_rate_is_ok_operations_per_second_of_the_phase() -> None:
    """rate(op) divides successes by the time the phase has run."""
    agg = started()
    feed(agg, KEY, 900 * NS_PER_MS, 1000, latency_ms=1)
    feed(agg, KEY2, 1900 * NS_PER_MS, 1500, latency_ms=1)
    agg.close_window(2 * NS_PER_S)
    passed, observed, reason = check("rate(op) >= 1000/s", agg, 2 * NS_PER_S)
    assert passed and observed == pytest.approx(1250.0)
    assert reason == "rate(op) = 1250/s >= 1000/s"
    assert not check("rate(op) >= 1.5k/s", agg, 2 * NS_PER_S)[0]


def test_windowed_rate_divides_by_the_time_its_windows_cover() -> None:
    """rate(op, window=10s) two seconds into the run is the rate of those two seconds, not /10."""
    agg = started()
    for second in range(2):
        feed(agg, KEY, second * NS_PER_S + 500 * NS_PER_MS, 2000, latency_ms=1)
        agg.close_window((second + 1) * NS_PER_S)
    passed, observed, _ = check("rate(op, window=10s) >= 1000/s", agg, 2 * NS_PER_S)
    assert observed == pytest.approx(2000.0)
    assert passed


def test_windowed_rate_does_not_overstate_when_windows_overshoot() -> None:
    """window=1.5s over 1 s windows merges two windows (2 s of data) and must divide by 2 s."""
    agg = started()
    for second in range(3):
        feed(agg, KEY, second * NS_PER_S + 500 * NS_PER_MS, 1000, latency_ms=1)
        agg.close_window((second + 1) * NS_PER_S)
    _, observed, _ = check("rate(op, window=1.5s) >= 1/s", agg, 3 * NS_PER_S)
    assert observed == pytest.approx(1000.0)


def test_errors_count_by_class() -> None:
    """errors(op) counts all failures; class= counts one class only (0 when none of it)."""
    agg = started()
    rec = agg.recorder(KEY, 0)
    for cls in [ErrorClass.RETRYABLE] * 12 + [ErrorClass.CONNECTION] * 3:
        rec.failure(cls)
    agg.close_window(NS_PER_S)
    assert check("errors(op) == 15", agg, NS_PER_S)[0]
    passed, observed, _ = check("errors(op, class=retryable) <= 10", agg, NS_PER_S)
    assert not passed and observed == 12
    assert check("errors(op, class=connection) <= 10", agg, NS_PER_S)[0]
    assert check("errors(op, class=constraint) == 0", agg, NS_PER_S)[0]


def test_dropped_and_retries_count() -> None:
    """dropped(op) and retries(op) are plain counters of the phase."""
    agg = started()
    rec = agg.recorder(KEY, 0)
    rec.drop()
    rec.retry()
    rec.retry()
    agg.close_window(NS_PER_S)
    passed, observed, reason = check("dropped(op) == 0", agg, NS_PER_S)
    assert not passed and observed == 1 and reason == "FAIL: dropped(op) = 1 != 0"
    assert check("retries(op) == 2", agg, NS_PER_S)[0]
    feed(agg, KEY2, NS_PER_S + NS_PER_MS, 1, latency_ms=1)
    agg.close_window(2 * NS_PER_S)
    assert check("dropped(w.op, window=1s) == 0", agg, 2 * NS_PER_S)[0]


def test_max_gap_reads_the_open_gap_until_now() -> None:
    """max_gap(op) grows while nothing succeeds and fails once past the limit."""
    agg = started()
    feed(agg, KEY, 1 * NS_PER_S, 1, latency_ms=1)
    passed, observed, _ = check("max_gap(op) <= 5s", agg, 3 * NS_PER_S)
    assert passed and observed == pytest.approx(2.0)
    passed, observed, reason = check("max_gap(op) <= 5s", agg, 7 * NS_PER_S)
    assert not passed and observed == pytest.approx(6.0)
    assert reason == "FAIL: max_gap(op) = 6s > 5s"


def test_gates_of_a_phase_do_not_read_other_phases() -> None:
    """A context limited to one phase ignores data of the others (no data: fails)."""
    agg = started()
    feed(agg, KEY, 500 * NS_PER_MS, 10, latency_ms=1)
    agg.close_window(NS_PER_S)
    assert LoadGateContext(agg, ["warmup"], NS_PER_S).stats("op") is None
    assert LoadGateContext(agg, None, NS_PER_S).stats("op").ok == 10  # type: ignore[union-attr]


# ------------------------------------------------------------------ GateMonitor


def monitor(text: str, *, abort: bool = False, grace_s: float = 0.0) -> GateMonitor:
    return GateMonitor("g", parse_gate(text), ["main"], abort_on_fail=abort, grace_s=grace_s)


def test_monitor_stays_pending_until_there_is_data() -> None:
    """Before the first sample a gate is pending, not failed."""
    agg = started()
    mon = monitor("p99(op) <= 10ms")
    agg.close_window(NS_PER_S)
    verdict = mon.observe(ctx(agg, NS_PER_S))
    assert mon.state == GateState.PENDING and mon.last is None
    assert verdict.observed is None
    assert mon.failing_since_ns is None and not mon.should_abort(NS_PER_S)


def test_monitor_moves_between_pass_and_fail_for_cumulative_gates() -> None:
    """A cumulative gate's state follows its latest evaluation, both ways."""
    agg = started()
    mon = monitor("p50(op) <= 10ms")
    feed(agg, KEY, 500 * NS_PER_MS, 10, latency_ms=1)
    agg.close_window(NS_PER_S)
    mon.observe(ctx(agg, NS_PER_S))
    assert mon.state == GateState.PASS
    feed(agg, KEY, 1500 * NS_PER_MS, 30, latency_ms=50)
    agg.close_window(2 * NS_PER_S)
    mon.observe(ctx(agg, 2 * NS_PER_S))
    assert mon.state == GateState.FAIL and mon.failing_since_ns == 2 * NS_PER_S
    feed(agg, KEY, 2500 * NS_PER_MS, 100, latency_ms=1)
    agg.close_window(3 * NS_PER_S)
    mon.observe(ctx(agg, 3 * NS_PER_S))
    assert mon.state == GateState.PASS and mon.failing_since_ns is None
    final = mon.final(ctx(agg, 3 * NS_PER_S))
    assert final.passed


def test_windowed_gate_fails_for_good_once_a_window_failed() -> None:
    """p99(op, window=1s) that failed in one window stays FAIL, and the final verdict says so."""
    agg = started()
    mon = monitor("p99(op, window=1s) <= 10ms")
    latencies = [1, 80, 1, 1]
    for second, latency_ms in enumerate(latencies):
        feed(agg, KEY, second * NS_PER_S + 500 * NS_PER_MS, 20, latency_ms=latency_ms)
        agg.close_window((second + 1) * NS_PER_S)
        verdict = mon.observe(ctx(agg, (second + 1) * NS_PER_S))
        assert verdict.passed == (latency_ms == 1)
        assert mon.state == (GateState.PASS if second == 0 else GateState.FAIL)
    final = mon.final(ctx(agg, 4 * NS_PER_S))
    assert not final.passed
    assert final.reason.endswith("(in at least one window)")
    assert final.observed == pytest.approx(0.080, rel=1e-2)


def test_abort_waits_for_grace_of_continuous_failure() -> None:
    """abort_on_fail with grace 2s aborts only after 2 s of failing without a pass in between."""
    agg = started()
    mon = monitor("p99(op, window=1s) <= 10ms", abort=True, grace_s=2.0)
    plan = [80, 80, 1, 80, 80, 80]  # fails at 1-2 s, passes at 3 s, fails again from 4 s
    aborts = []
    for second, latency_ms in enumerate(plan):
        now = (second + 1) * NS_PER_S
        feed(agg, KEY, second * NS_PER_S + 500 * NS_PER_MS, 20, latency_ms=latency_ms)
        agg.close_window(now)
        mon.observe(ctx(agg, now))
        aborts.append(mon.should_abort(now))
    assert aborts == [False, False, False, False, False, True]
    assert mon.failing_since_ns == 4 * NS_PER_S


def test_abort_with_zero_grace_is_immediate_and_never_without_abort_on_fail() -> None:
    """grace 0s aborts on the first failing evaluation; a gate without abort_on_fail never aborts."""
    agg = started()
    feed(agg, KEY, 500 * NS_PER_MS, 5, latency_ms=5)
    agg.close_window(NS_PER_S)
    eager = monitor("p50(op) <= 1us", abort=True)
    passive = monitor("p50(op) <= 1us")
    eager.observe(ctx(agg, NS_PER_S))
    passive.observe(ctx(agg, NS_PER_S))
    assert eager.should_abort(NS_PER_S)
    assert passive.state == GateState.FAIL and not passive.should_abort(100 * NS_PER_S)


def test_data_that_disappears_after_a_pass_fails_the_gate() -> None:
    """Once a gate has judged data, a window without data is a failure (a stall is not a pass)."""
    agg = started()
    mon = monitor("p99(op, window=1s) <= 10ms")
    feed(agg, KEY, 500 * NS_PER_MS, 5, latency_ms=1)
    agg.close_window(NS_PER_S)
    mon.observe(ctx(agg, NS_PER_S))
    assert mon.state == GateState.PASS
    agg.close_window(2 * NS_PER_S)  # nothing completed in this window
    verdict = mon.observe(ctx(agg, 2 * NS_PER_S))
    assert not verdict.passed and mon.state == GateState.FAIL


# ------------------------------------------------------------------ during= and phase=


BASE = OpKey("baseline", "w", "op", "node1")


def chaos_run() -> Aggregator:
    """A baseline phase at 5 ms, then a main phase at 2 ms with one split window at 12 ms."""
    agg = Aggregator(0)
    agg.phase_started("baseline", 0)
    feed(agg, BASE, 500 * NS_PER_MS, 100, latency_ms=5)
    agg.close_window(NS_PER_S)
    agg.phase_ended("baseline", NS_PER_S)
    agg.phase_started("main", NS_PER_S)
    feed(agg, KEY, 1500 * NS_PER_MS, 100, latency_ms=2)
    agg.close_window(2 * NS_PER_S)
    feed(agg, KEY, 2500 * NS_PER_MS, 100, latency_ms=12)
    rec = agg.recorder(KEY, 2500 * NS_PER_MS)
    for _ in range(25):
        rec.failure(ErrorClass.CONNECTION)
    agg.close_window(3 * NS_PER_S, ["split-1", "split"])
    feed(agg, KEY, 3500 * NS_PER_MS, 100, latency_ms=2)
    agg.close_window(4 * NS_PER_S)
    return agg


@pytest.mark.parametrize(
    "text",
    [
        "p99(op, during=split) <= 2 * p99(op, phase=baseline)",
        "error_rate(op, during=split) < 1%",
        "errors(op, during=split, class=connection) == 0",
        "dropped(op, phase=main) == 0",
        "retries(w.op, during=kill) <= 5",
        "max_gap(op, phase=baseline) <= 5s",
        "p99(op, during=split, phase=main) <= 10ms",
    ],
)
def test_during_and_phase_keywords_parse(text: str) -> None:
    """during= and phase= are accepted by the functions over an op's stats."""
    gate = parse_gate(text)
    assert keyword_problems(gate) == []
    assert not is_windowed(gate)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("max_gap(op, during=split) <= 5s", "during"),
        ("count(op, phase=main) >= 1", "phase"),
        ("rate(op, during=split) >= 1/s", "during"),
    ],
)
def test_during_and_phase_are_refused_where_they_mean_nothing(text: str, keyword: str) -> None:
    """Functions that cannot read tagged totals (or phases) reject the keyword at parse time."""
    with pytest.raises(GateSyntaxError, match=f"unexpected keyword '{keyword}'"):
        parse_gate(text)


def test_percentile_during_a_tag_reads_only_its_windows() -> None:
    """p99(op, during=split) sees the split window's 12 ms; the phase's p50 stays at 2 ms."""
    agg = chaos_run()
    passed, observed, _ = check("p99(op, during=split) <= 10ms", agg, 4 * NS_PER_S)
    assert not passed and observed == pytest.approx(0.012, rel=1e-2)
    assert check("p50(op) <= 3ms", agg, 4 * NS_PER_S)[0]
    assert check("p99(op, during=split-1) >= 11ms", agg, 4 * NS_PER_S)[0]


def test_percentile_of_another_phase_ignores_the_gates_phases() -> None:
    """phase=baseline reads the baseline phase although the context is limited to main."""
    agg = chaos_run()
    passed, observed, _ = check("p99(op, phase=baseline) <= 6ms", agg, 4 * NS_PER_S)
    assert passed and observed == pytest.approx(0.005, rel=1e-2)
    passed, observed, reason = check("p99(op, phase=nowhere) <= 6ms", agg, 4 * NS_PER_S)
    assert not passed and observed is None and "no samples" in reason


def test_chaos_gate_compares_the_fault_windows_with_twice_the_baseline() -> None:
    """`p99(op, during=split) <= 2 * p99(op, phase=baseline)` fails naming both measured values."""
    agg = chaos_run()
    passed, observed, reason = check("p99(op, during=split) <= 2 * p99(op, phase=baseline)", agg, 4 * NS_PER_S)
    assert not passed and observed == pytest.approx(0.012, rel=1e-2)
    assert reason == "FAIL: p99(op, during=split) = 12ms > 2 * p99(op, phase=baseline) = 2 * 5ms = 10ms"
    assert check("p99(op, during=split) <= 3 * p99(op, phase=baseline)", agg, 4 * NS_PER_S)[0]


def test_error_rate_and_errors_during_a_tag() -> None:
    """Failures of the split window count under during=split and not in the other windows' rate."""
    agg = chaos_run()
    passed, observed, _ = check("error_rate(op, during=split) < 1%", agg, 4 * NS_PER_S)
    assert not passed and observed == pytest.approx(0.2)
    assert check("errors(op, during=split, class=connection) == 25", agg, 4 * NS_PER_S)[0]
    assert check("errors(op, phase=baseline) == 0", agg, 4 * NS_PER_S)[0]
    assert check("dropped(op, during=split) == 0", agg, 4 * NS_PER_S)[0]


def test_during_a_tag_that_never_occurred_is_no_data() -> None:
    """A tag without windows gives no data, so the gate fails saying so instead of passing on zeros."""
    agg = chaos_run()
    passed, observed, reason = check("p99(op, during=kill) <= 1s", agg, 4 * NS_PER_S)
    assert not passed and observed is None
    assert reason == "no evidence: no samples for op 'op' (during=kill)"
    assert check("errors(op, during=kill) == 0", agg, 4 * NS_PER_S)[1] is None


def test_during_respects_the_gates_phases() -> None:
    """A baseline-only context sees nothing of a split that happened during main."""
    agg = chaos_run()
    verdict = evaluate("g", parse_gate("p99(op, during=split) <= 1s"), ctx(agg, 4 * NS_PER_S, ["baseline"]))
    assert verdict.observed is None
    verdict = evaluate("g", parse_gate("p99(op, during=split) <= 1s"), LoadGateContext(agg, None, 4 * NS_PER_S))
    assert verdict.passed


def test_max_gap_of_another_phase() -> None:
    """max_gap(op, phase=baseline) reads that phase's gap trackers only."""
    agg = chaos_run()
    passed, observed, _ = check("max_gap(op, phase=baseline) <= 1s", agg, 4 * NS_PER_S)
    assert passed and observed == pytest.approx(0.5)


def test_window_and_during_together_are_a_keyword_problem() -> None:
    """window= and during= exclude each other; keyword_problems says so (also inside a scaled side)."""
    problems = keyword_problems(parse_gate("p99(op, window=1m, during=split) <= 2 * p99(op, window=x)"))
    assert problems == [
        "p99(op, window=1m, during=split): window= and during= cannot be combined"
        " (during= reads every window the tag was active in)",
        "p99(op, window=x): window: " + problems[1].split("window: ", 1)[1],
    ]


def test_scaled_windowed_gates_are_windowed() -> None:
    """A window= call inside a scaled operand still makes the gate windowed."""
    assert is_windowed(parse_gate("p99(op) <= 2 * p99(op, window=1m)"))


def test_gate_phase_names_and_during_tags_list_keyword_values() -> None:
    """gate_phase_names/gate_during_tags give the names for the scenario validator to check."""
    gate = parse_gate("p99(op, during=split, phase=main) <= 2 * p99(op, phase=baseline)")
    assert gate_phase_names(gate) == {"main", "baseline"}
    assert gate_during_tags(gate) == {"split"}
    assert gate_phase_names(parse_gate("lost == 0")) == set()


def test_longest_window_is_what_the_aggregator_must_keep() -> None:
    from holoload.core.gates.load import longest_window_s

    gates = [
        parse_gate("p99(a, window=1m) <= 5ms"),
        parse_gate("2 * p95(b, window=90s) >= p95(c)"),
        parse_gate("lost == 0"),
    ]
    assert longest_window_s(gates) == 90.0
    assert longest_window_s([parse_gate("p99(a) <= 1s")]) is None
