"""Tests for holoload.core.gates.language: parsing, kind checks, reference checks and verdicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from holoload.core.gates import language as gates
from holoload.core.gates.language import (
    Call,
    Comparison,
    GateContext,
    GateFunction,
    GateSyntaxError,
    Kind,
    Quantity,
    ScalarRef,
    Scaled,
    check_gate,
    parse_gate,
)
from holoload.core.gates.verdicts import evaluate
from holoload.core.stats.histogram import LatencyHistogram

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
    assert gate.right == Quantity("8s", 8.0, Kind.DURATION)


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
    assert isinstance(right, Quantity)
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
    assert verdict.reason == "no evidence: no samples for op 'batch_50k'"


def test_evaluate_missing_scalar_fails() -> None:
    """A scalar the run never published fails the gate."""
    verdict = evaluate("g", parse_gate("split_triggered == 1"), FakeContext())
    assert verdict.passed is False
    assert verdict.reason == "no evidence: no value for scalar 'split_triggered'"


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
        "no_data",
        "state",
    }


def test_a_table_extended_with_a_function_parses_its_keywords_and_reports_ratios() -> None:
    """A function added to a copy of the table parses keywords and evaluates as a ratio."""

    def measure(ctx: GateContext, op: str, keywords: Mapping[str, str]) -> float | None:
        return 0.02 if keywords == {"window": "1m"} else None

    function = GateFunction("error_ratio", Kind.RATIO, measure, frozenset({"window"}))
    table = gates.FUNCTIONS.extended(function)
    gate = parse_gate("error_ratio(batch_20k, window=1m) <= 1%", table)
    assert gate.references().ops == frozenset({"batch_20k"})
    verdict = evaluate("errors", gate, FakeContext())
    assert verdict.reason == "FAIL: error_ratio(batch_20k, window=1m) = 2% > 1%"
    with pytest.raises(GateSyntaxError, match="unexpected keyword 'window'"):
        parse_gate("error_ratio(batch_20k, window=1m, window=2m) <= 1%", table)
    with pytest.raises(GateSyntaxError, match="unexpected keyword 'size'"):
        parse_gate("error_ratio(batch_20k, size=3) <= 1%", table)
    with pytest.raises(GateSyntaxError, match="unknown function 'error_ratio'"):
        parse_gate("error_ratio(batch_20k) <= 1%")  # the table everyone else uses is unchanged


# ------------------------------------------------------------------ fields and scaling


@dataclass
class Tally:
    """A table with `tally(name).up|down` reading its field, and what measure received."""

    functions: gates.FunctionTable
    received: dict[str, str]


@pytest.fixture
def with_fields() -> Tally:
    """A table with `tally(name).up|down` added."""
    received: dict[str, str] = {}

    def measure(ctx: GateContext, name: str, keywords: Mapping[str, str]) -> float | None:
        received.update(keywords)
        return {"up": 3.0, "down": 1.0}[keywords[gates.FIELD]]

    function = GateFunction("tally", Kind.NUMBER, measure, fields=frozenset({"up", "down"}), names_fault=True)
    return Tally(gates.FUNCTIONS.extended(function), received)


def test_field_after_a_call_reaches_the_function(with_fields: Tally) -> None:
    """`tally(x).up` parses into a Call with field "up", which measure finds under FIELD."""
    gate = parse_gate("tally(split).up >= 3", with_fields.functions)
    assert isinstance(gate.left, Call)
    assert (gate.left.text, gate.left.op, gate.left.field) == ("tally(split).up", "split", "up")
    verdict = evaluate("g", gate, FakeContext())
    assert verdict.reason == "tally(split).up = 3 >= 3"
    assert with_fields.received == {gates.FIELD: "up"}


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("tally(split) >= 3", 14, "expected a field after tally(split), such as tally(split).down (one of down, up)"),
        ("tally(split).sideways >= 3", 14, "unknown field 'sideways' of tally(); expected one of down, up"),
        ("tally(split). >= 3", 15, "expected a field name after '.' (one of down, up), got '>='"),
        ("p99(x).ok <= 1s", 7, "p99() has no fields; expected a comparison operator after p99(x)"),
        ("tally() >= 3", 7, "expected a fault name as first argument of tally()"),
    ],
)
def test_field_errors_say_column_and_accepted_fields(with_fields: Tally, text: str, column: int, expected: str) -> None:
    """A missing, unknown or unwanted field is a syntax error at its column, listing the accepted fields."""
    with pytest.raises(GateSyntaxError, match=re.escape(expected)) as info:
        parse_gate(text, with_fields.functions)
    assert info.value.column == column


def test_fault_arguments_are_not_ops(with_fields: Tally) -> None:
    """A function naming faults reports its argument in refs.faults, never as an unknown op."""
    gate = parse_gate("tally(split).down <= lost", with_fields.functions)
    refs = gate.references()
    assert (refs.ops, refs.scalars, refs.faults) == (frozenset(), frozenset({"lost"}), frozenset({"split"}))
    assert check_gate(gate, [], ["lost"]) == []
    assert check_gate(gate, [], ["lost"], ["split", "kill1"]) == []
    assert check_gate(gate, [], ["lost"], ["kill1"]) == ["unknown fault 'split' (known: kill1)"]


@pytest.mark.parametrize(
    ("text", "side", "factor", "first", "kind"),
    [
        ("2 * p99(a) >= p99(b)", "left", 2.0, True, Kind.DURATION),
        ("p99(a) <= p99(b) * 2", "right", 2.0, False, Kind.DURATION),
        ("p99(a) <= 0.5 * p99(b)", "right", 0.5, True, Kind.DURATION),
        ("count(a)*1.5k >= 3", "left", 1500.0, False, Kind.NUMBER),
        ("lost <= 0.01 * acknowledged", "right", 0.01, True, Kind.NUMBER),
    ],
)
def test_calls_and_scalars_scale_by_a_number_on_either_side(
    text: str, side: str, factor: float, first: bool, kind: Kind
) -> None:
    """`2 * x` and `x * 2` are Scaled operands keeping the operand's kind and the text as written."""
    gate = parse_gate(text)
    scaled = getattr(gate, side)
    assert isinstance(scaled, Scaled)
    assert scaled.factor == pytest.approx(factor)
    assert (scaled.factor_first, scaled.kind) == (first, kind)
    assert scaled.text in text and "*" in scaled.text


def test_references_see_through_scaling() -> None:
    """Ops and scalars inside scaled operands are still reported."""
    refs = parse_gate("0.5 * count(batch_20k) >= failed_batches * 2").references()
    assert (refs.ops, refs.scalars) == (frozenset({"batch_20k"}), frozenset({"failed_batches"}))
    assert check_gate(parse_gate("2 * p95(batch_2k) <= 8s"), CANARY_OPS, CANARY_SCALARS) == [
        "unknown op 'batch_2k' (known: batch_20k, batch_50k)"
    ]


def test_call_against_call_compares_measurements() -> None:
    """`p99(a) <= p99(b)` reads both sides and names both values."""
    ctx = FakeContext(histograms={"a": latencies_s(*[0.012] * 20), "b": latencies_s(*[0.005] * 20)})
    verdict = evaluate("g", parse_gate("p99(a) <= p99(b)"), ctx)
    assert verdict.passed is False
    assert verdict.reason == "FAIL: p99(a) = 12ms > p99(b) = 5ms"


def test_scaled_evaluation_multiplies_and_shows_both_values() -> None:
    """The reason shows the measured value, the factor and the product of the scaled side."""
    ctx = FakeContext(histograms={"a": latencies_s(*[0.012] * 20), "b": latencies_s(*[0.005] * 20)})
    verdict = evaluate("g", parse_gate("p99(a) <= 2 * p99(b)"), ctx)
    assert verdict.passed is False
    assert verdict.reason == "FAIL: p99(a) = 12ms > 2 * p99(b) = 2 * 5ms = 10ms"
    assert verdict.threshold == pytest.approx(0.010, rel=1e-2)
    assert verdict.threshold_text == "2 * 5ms = 10ms"
    passing = evaluate("g", parse_gate("p99(b) * 3 >= p99(a)"), ctx)
    assert passing.passed is True
    assert passing.reason == "p99(b) * 3 = 5ms * 3 = 15ms >= p99(a) = 12ms"
    assert passing.observed == pytest.approx(0.015, rel=1e-2)


def test_scaled_side_without_data_fails_with_the_operand_reason() -> None:
    """No data inside a scaled operand fails the gate with the operand's own reason."""
    ctx = FakeContext(histograms={"a": latencies_s(0.001)})
    verdict = evaluate("g", parse_gate("p99(a) <= 2 * p99(b)"), ctx)
    assert (verdict.passed, verdict.threshold, verdict.threshold_text) == (False, None, "no data")
    assert verdict.reason == "no evidence: no samples for op 'b'"


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("2 * 3 <= lost", 5, "expected a function call or a scalar name after '2 *', got '3'"),
        ("2s * p99(x) <= 1s", 1, "expected a plain number such as 2 or 0.5 as factor, got '2s' (a duration)"),
        ("p99(x) * 10% <= 1s", 10, "got '10%' (a ratio)"),
        ("p99(x) * p99(y) <= 1s", 10, "expected a number such as 2 or 0.5 after 'p99(x) *', got 'p99'"),
        ("p99(x) * <= 1s", 10, "expected a number such as 2 or 0.5 after 'p99(x) *', got '<='"),
        ("p99(x) * 2 * 3 <= 1s", 12, "expected a comparison operator"),
        ("2 * p99(x) <= 5", 15, "2 * p99(x) is a duration; compare it with a duration such as 8s, not 5 (a number)"),
        ("lost * 2s <= 1", 8, "expected a plain number such as 2 or 0.5 as factor, got '2s' (a duration)"),
    ],
)
def test_scaling_errors_say_column_and_expectation(text: str, column: int, expected: str) -> None:
    """Bad factors, missing operands and kind mismatches of scaled operands carry their column."""
    with pytest.raises(GateSyntaxError, match=re.escape(expected)) as info:
        parse_gate(text)
    assert info.value.column == column
