"""Tests for holoload.core.gates: parsing, kind checks, reference checks and verdicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from holoload.core import gates
from holoload.core.gates import (
    Call,
    Comparison,
    GateContext,
    GateFunction,
    GateSyntaxError,
    Kind,
    Literal,
    ScalarRef,
    check_gate,
    evaluate,
    parse_gate,
)
from holoload.core.histogram import LatencyHistogram

CANARY_GATES = {
    "batch_20k_p95": "p95(batch_20k) <= 8s",
    "batch_50k_p95": "p95(batch_50k) <= 20s",
    "no_failed_batches": "failed_batches == 0",
    "all_rows_present": "final_count == expected_final_count",
    "split_happened": "split_triggered == 1",
}
CANARY_OPS = ["batch_20k", "batch_50k"]
CANARY_SCALARS = ["failed_batches", "final_count", "expected_final_count", "split_triggered"]


@dataclass
class FakeContext:
    """A GateContext over plain dicts."""

    histograms: dict[str, LatencyHistogram] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)

    def histogram(self, op: str) -> LatencyHistogram | None:
        return self.histograms.get(op)

    def scalar(self, name: str) -> float | None:
        return self.scalars.get(name)


def latencies_s(*seconds: float) -> LatencyHistogram:
    """A histogram holding the given latencies."""
    histogram = LatencyHistogram()
    for value in seconds:
        histogram.record_s(value)
    return histogram


@pytest.mark.parametrize("text", CANARY_GATES.values())
def test_canary_gates_parse_and_check_clean(text: str) -> None:
    """Every gate of the canary scenario parses and refers only to known names."""
    gate = parse_gate(text)
    assert gate.source == text
    assert check_gate(gate, CANARY_OPS, CANARY_SCALARS) == []


def test_function_call_gate_has_call_and_duration_literal() -> None:
    """`p95(op) <= 8s` parses into a percentile call compared with 8 seconds."""
    gate = parse_gate("p95(batch_20k) <= 8s")
    assert isinstance(gate.left, Call)
    assert (gate.left.function.name, gate.left.op, gate.left.kind) == (
        "p95",
        "batch_20k",
        Kind.DURATION,
    )
    assert gate.comparison is Comparison.LE
    assert gate.right == Literal("8s", 8.0, Kind.DURATION)


def test_references_list_ops_and_scalars() -> None:
    """references() separates op names read by functions from scalar names."""
    refs = parse_gate("count(batch-20k.v2) >= failed_batches").references()
    assert refs.ops == frozenset({"batch-20k.v2"})
    assert refs.scalars == frozenset({"failed_batches"})


def test_scalar_versus_scalar_is_allowed() -> None:
    """Two bare identifiers are both numbers and may be compared."""
    gate = parse_gate("final_count == expected_final_count")
    assert gate.left == ScalarRef("final_count")
    assert gate.right == ScalarRef("expected_final_count")


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("p50(op) <= 250us", 0.00025, Kind.DURATION),
        ("p50(op) <= 500ms", 0.5, Kind.DURATION),
        ("p50(op) <= 1.5s", 1.5, Kind.DURATION),
        ("p50(op) <= 5m", 300.0, Kind.DURATION),
        ("p50(op) <= 2h", 7200.0, Kind.DURATION),
        ("p50(op) <= 1h30m", 5400.0, Kind.DURATION),
        ("count(op) >= 20k", 20_000.0, Kind.NUMBER),
        ("count(op) >= 1.5M", 1_500_000.0, Kind.NUMBER),
        ("count(op) >= 42", 42.0, Kind.NUMBER),
    ],
)
def test_literal_units_set_value_and_kind(text: str, value: float, kind: Kind) -> None:
    """Time units give seconds (m is minutes), k/M multiply, plain numbers stay numbers."""
    right = parse_gate(text).right
    assert isinstance(right, Literal)
    assert right.value == pytest.approx(value)
    assert right.kind is kind


def test_percent_literal_is_a_ratio_not_a_number() -> None:
    """`1%` is a ratio (0.01), so comparing a numeric scalar with it is refused."""
    with pytest.raises(GateSyntaxError, match=re.escape("not 1% (a ratio)")):
        parse_gate("failed_batches <= 1%")


@pytest.mark.parametrize("name", ["p50", "p90", "p99", "p99.9", "p100", "min", "max", "mean"])
def test_duration_functions_are_built_in(name: str) -> None:
    """Percentiles of any precision and min/max/mean all measure durations."""
    gate = parse_gate(f"{name}(op) < 1s")
    assert isinstance(gate.left, Call)
    assert gate.left.kind is Kind.DURATION


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "p95(batch_20k) <= 8",
            "p95(batch_20k) is a duration; compare it with a duration such as 8s",
        ),
        ("8 >= p95(batch_20k)", "p95(batch_20k) is a duration; compare it with a duration"),
        ("failed_batches == 0s", "failed_batches is a number; compare it with a number such as 0"),
        ("count(op) > 5ms", "count(op) is a number"),
    ],
)
def test_kind_mismatch_is_rejected_at_parse_time(text: str, message: str) -> None:
    """Comparing a duration with a plain number (or vice versa) is a syntax error."""
    with pytest.raises(GateSyntaxError, match=re.escape(message)):
        parse_gate(text)


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("p95(x) foo 8s", 8, "expected a comparison operator"),
        ("p95(x <= 8s", 7, "expected ',' or ')'"),
        ("p95() < 1s", 5, "expected an op name"),
        ("p95(x) <= ", 11, "got the end of the gate"),
        ("p95(x) <= 8s 9", 14, "expected the end of the gate"),
        ("p95(x) <= 8sec", 11, "expected a number with an optional unit"),
        ("p95x(y) < 1s", 1, "unknown function 'p95x'"),
        ("p101(y) < 1s", 1, "unknown function 'p101'"),
        ("p95(x, q=1) < 1s", 8, "unexpected keyword 'q'"),
        ("a ? b", 3, "unexpected character '?'"),
        ("5s < 8s", 1, "got two numbers"),
        ("", 1, "expected a function call such as p95(op)"),
    ],
)
def test_syntax_errors_say_column_and_expectation(text: str, column: int, expected: str) -> None:
    """Each syntax error carries the 1-based column and what was expected there."""
    with pytest.raises(GateSyntaxError, match=re.escape(expected)) as info:
        parse_gate(text)
    assert info.value.column == column
    assert f"column {column}:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_check_gate_reports_unknown_op_with_known_list() -> None:
    """A typo in an op name is reported with the names that do exist."""
    problems = check_gate(parse_gate("p95(batch_2k) <= 8s"), CANARY_OPS, CANARY_SCALARS)
    assert problems == ["unknown op 'batch_2k' (known: batch_20k, batch_50k)"]


def test_check_gate_reports_unknown_scalar() -> None:
    """A typo in a scalar name is reported too."""
    problems = check_gate(parse_gate("failed_batch == 0"), CANARY_OPS, ["failed_batches"])
    assert problems == ["unknown scalar 'failed_batch' (known: failed_batches)"]


def test_evaluate_pass_reports_observed_and_threshold() -> None:
    """A passing gate gives observed/threshold values and a plain sentence."""
    ctx = FakeContext(histograms={"batch_20k": latencies_s(*[1.21] * 20)})
    verdict = evaluate("batch_20k_p95", parse_gate("p95(batch_20k) <= 8s"), ctx)
    assert verdict.passed is True
    assert verdict.observed == pytest.approx(1.21, rel=1e-3)
    assert verdict.threshold == 8.0
    assert (verdict.observed_text, verdict.threshold_text) == ("1.21s", "8s")
    assert verdict.reason == "p95(batch_20k) = 1.21s <= 8s"


def test_evaluate_fail_reason_shows_negated_comparison() -> None:
    """A failing gate says FAIL and the comparison that actually holds."""
    ctx = FakeContext(histograms={"batch_50k": latencies_s(*[21.4] * 20)})
    verdict = evaluate("batch_50k_p95", parse_gate("p95(batch_50k) <= 20s"), ctx)
    assert verdict.passed is False
    assert verdict.reason == "FAIL: p95(batch_50k) = 21.4s > 20s"


@pytest.mark.parametrize("histograms", [{}, {"batch_50k": LatencyHistogram()}])
def test_evaluate_without_samples_fails(histograms: dict[str, LatencyHistogram]) -> None:
    """No histogram, or an empty one, fails the gate with a reason instead of passing."""
    verdict = evaluate("g", parse_gate("p95(batch_50k) <= 20s"), FakeContext(histograms))
    assert verdict.passed is False
    assert verdict.observed is None
    assert verdict.observed_text == "no data"
    assert verdict.reason == "no samples for op 'batch_50k'"


def test_evaluate_missing_scalar_fails() -> None:
    """A scalar the run never published fails the gate."""
    verdict = evaluate("g", parse_gate("split_triggered == 1"), FakeContext())
    assert verdict.passed is False
    assert verdict.reason == "no value for scalar 'split_triggered'"


@pytest.mark.parametrize(
    ("scalars", "passed", "reason"),
    [
        ({"failed_batches": 0}, True, "failed_batches = 0 == 0"),
        ({"failed_batches": 3}, False, "FAIL: failed_batches = 3 != 0"),
    ],
)
def test_evaluate_scalar_gate(scalars: dict[str, float], passed: bool, reason: str) -> None:
    """`failed_batches == 0` passes only at zero; integers print without decimals."""
    verdict = evaluate("g", parse_gate("failed_batches == 0"), FakeContext(scalars=scalars))
    assert (verdict.passed, verdict.reason) == (passed, reason)


def test_evaluate_scalar_against_scalar() -> None:
    """`final_count == expected_final_count` names both observed values on failure."""
    ctx = FakeContext(scalars={"final_count": 19_999, "expected_final_count": 20_000})
    verdict = evaluate("g", parse_gate("final_count == expected_final_count"), ctx)
    assert verdict.passed is False
    assert (verdict.observed, verdict.threshold) == (19_999, 20_000)
    assert verdict.reason == "FAIL: final_count = 19999 != expected_final_count = 20000"


def test_evaluate_split_triggered() -> None:
    """`split_triggered == 1` passes once the split was seen."""
    ctx = FakeContext(scalars={"split_triggered": 1})
    assert evaluate("g", parse_gate("split_triggered == 1"), ctx).passed is True


def test_evaluate_literal_on_the_left_keeps_observed_as_the_measured_side() -> None:
    """With the threshold written first, observed is still the measured value."""
    ctx = FakeContext(histograms={"op": latencies_s(0.5)})
    verdict = evaluate("g", parse_gate("1s >= max(op)"), ctx)
    assert verdict.passed is True
    assert (verdict.observed, verdict.threshold) == (0.5, 1.0)
    assert verdict.reason == "1s >= max(op) = 500ms"


def test_count_of_an_empty_op_is_zero_not_missing() -> None:
    """count() of an op that ran but recorded nothing is an observed 0."""
    ctx = FakeContext(histograms={"op": LatencyHistogram()})
    verdict = evaluate("g", parse_gate("count(op) >= 1k"), ctx)
    assert (verdict.passed, verdict.observed) == (False, 0)
    assert verdict.reason == "FAIL: count(op) = 0 < 1k"


def test_verdict_to_dict_is_json_ready() -> None:
    """to_dict() carries every field under its own name."""
    ctx = FakeContext(histograms={"op": latencies_s(0.002)})
    data = evaluate("fast", parse_gate("mean(op) < 5ms"), ctx).to_dict()
    assert data["name"] == "fast"
    assert data["expression"] == "mean(op) < 5ms"
    assert data["passed"] is True
    assert set(data) == {
        "name",
        "expression",
        "passed",
        "observed",
        "threshold",
        "observed_text",
        "threshold_text",
        "reason",
    }


def test_registered_function_takes_keywords_and_reports_ratios(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A function added through the registry parses keywords and evaluates as a ratio."""
    monkeypatch.setattr(gates, "_REGISTRY", list(gates._REGISTRY))

    def measure(ctx: GateContext, op: str, keywords: Mapping[str, str]) -> float | None:
        return 0.02 if keywords == {"window": "1m"} else None

    function = GateFunction("error_ratio", Kind.RATIO, measure, frozenset({"window"}))
    gates.register_function("error_ratio", lambda match: function)
    gate = parse_gate("error_ratio(batch_20k, window=1m) <= 1%")
    assert gate.references().ops == frozenset({"batch_20k"})
    verdict = evaluate("errors", gate, FakeContext())
    assert verdict.reason == "FAIL: error_ratio(batch_20k, window=1m) = 2% > 1%"
    with pytest.raises(GateSyntaxError, match="unexpected keyword 'window'"):
        parse_gate("error_ratio(batch_20k, window=1m, window=2m) <= 1%")
    with pytest.raises(GateSyntaxError, match="unexpected keyword 'size'"):
        parse_gate("error_ratio(batch_20k, size=3) <= 1%")
