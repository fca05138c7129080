"""Verdicts: a parsed gate evaluated against measured data, with a reason people can read.

A gate whose data was never observed never passes: it fails with "no evidence: <why>", or, when
the scenario opted in for that gate (`no_data = "report"`), it reports "no data: <why>" and
neither passes nor fails the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

from holoload.core.config.units import format_duration
from holoload.core.gates.model import (
    FIELD,
    Comparison,
    Gate,
    GateContext,
    Kind,
    NoData,
    Operand,
    Quantity,
    ScalarRef,
    Scaled,
)

__all__ = ["NO_DATA", "Verdict", "evaluate"]

#: `Verdict.state` of a gate that had no evidence and was allowed to say so.
NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one gate; ``observed`` and ``threshold`` are in base units.

    ``passed`` is True only when the gate held on observed data. ``no_data`` marks a gate that
    had no evidence and whose scenario allowed it to report that (``passed`` is then False, yet
    the gate does not fail the run): see ``state`` and ``fails_run``.
    """

    name: str
    expression: str
    passed: bool
    observed: float | None
    threshold: float | None
    observed_text: str
    threshold_text: str
    reason: str
    no_data: bool = False

    @property
    def state(self) -> str:
        """The state for people: pass, fail or no data."""
        return "pass" if self.passed else NO_DATA if self.no_data else "fail"

    @property
    def fails_run(self) -> bool:
        """Whether this verdict makes the run FAIL (a reported "no data" does not)."""
        return not self.passed and not self.no_data

    def to_dict(self) -> dict[str, object]:
        """Return the verdict as a JSON-ready dict (with its ``state``)."""
        data = asdict(self)
        data["state"] = self.state
        return data


def _format_value(value: float, kind: Kind) -> str:
    """Format a measured value for people: durations with units, ratios in percent."""
    if kind is Kind.RATE:
        return f"{value:.4g}/s"
    if kind is not Kind.NUMBER:
        return format_duration(value) if kind is Kind.DURATION else f"{value * 100:.4g}%"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"


class _Measured(NamedTuple):
    value: float | None  # what is compared (scaled)
    unscaled: float | None  # the operand's own value, before any factor
    why: str  # why there is no value
    at_least: float | None = None  # no value, but a known lower bound of it (scaled)


def _measure(side: Operand, ctx: GateContext) -> _Measured:
    """The side's value as a float, or None and the reason there is none."""
    if isinstance(side, Quantity):
        return _Measured(side.value, side.value, "")
    if isinstance(side, Scaled):
        inner = _measure(side.operand, ctx)
        scaled = None if inner.value is None else inner.value * side.factor
        bound = None if inner.at_least is None or side.factor < 0 else inner.at_least * side.factor
        return _Measured(scaled, inner.value, inner.why, bound)
    if isinstance(side, ScalarRef):
        value, why = ctx.scalar(side.text), f"no value for scalar {side.text!r}"
    else:
        keywords = dict(side.keywords)
        if side.field:
            keywords[FIELD] = side.field
        measured = side.function.measure(ctx, side.op, keywords)
        if isinstance(measured, NoData):
            return _Measured(None, None, measured.reason, measured.at_least)
        value = measured
        why = side.function.missing_reason.format(op=side.op)
        if side.keywords:  # "no samples for op 'insert' (during=split)": say which slice was empty
            why += f" ({', '.join(f'{k}={v}' for k, v in side.keywords)})"
    value = None if value is None else float(value)
    return _Measured(value, value, why)


_MIRROR = {
    Comparison.LE: Comparison.GE,
    Comparison.LT: Comparison.GT,
    Comparison.GE: Comparison.LE,
    Comparison.GT: Comparison.LT,
}


def _bound_fails(comparison: Comparison, bounded: _Measured, other: _Measured, bounded_left: bool) -> Comparison | None:
    """The comparison (bounded side first) a side known only to be >= `at_least` already breaks, or None."""
    if bounded.at_least is None or other.value is None:
        return None
    if not bounded_left:  # `30s >= recovery(x)` is `recovery(x) <= 30s`
        comparison = _MIRROR.get(comparison, comparison)
    if comparison is Comparison.LE and bounded.at_least > other.value:
        return comparison
    if comparison is Comparison.LT and bounded.at_least >= other.value:
        return comparison
    return None


def _shown(side: Operand, measured: _Measured, with_name: bool = False) -> str:
    """A side for people: literals as written, measured values formatted, products spelled out."""
    if isinstance(side, Quantity):
        return side.text
    value = measured.value
    if value is None:
        shown = "no data"
    elif isinstance(side, Scaled) and measured.unscaled is not None:
        inner = _format_value(measured.unscaled, side.kind)
        product = f"{side.factor_text} * {inner}" if side.factor_first else f"{inner} * {side.factor_text}"
        shown = f"{product} = {_format_value(value, side.kind)}"
    else:
        shown = _format_value(value, side.kind)
    return f"{side.text} = {shown}" if with_name else shown


def evaluate(name: str, gate: Gate, ctx: GateContext, *, report_no_data: bool = False) -> Verdict:
    """Evaluate a gate against measured data; missing data never passes.

    Args:
        name: the gate's name in the scenario, carried into the verdict.
        gate: a parsed gate.
        ctx: where histograms and scalars are read from.
        report_no_data: the scenario opted in (`no_data = "report"`): a gate without evidence
            is a "no data" verdict instead of a failure.

    Returns:
        The verdict; ``observed`` is the side reading data (left if both do), with
        reasons like "p95(a) = 1.21s <= 8s", "FAIL: p95(b) = 21.4s > 20s",
        "no evidence: no samples for op 'c'" or (opted in) "no data: no samples for op 'c'".
        A side known only by a lower bound that already breaks the comparison fails
        ("FAIL: recovery(x) >= 41s (no success yet) > 30s").
    """
    left, right = _measure(gate.left, ctx), _measure(gate.right, ctx)
    no_data = False
    bound_measured: _Measured | None = None
    if left.value is None or right.value is None:
        missing, bounded_left = (left, True) if left.value is None else (right, False)
        other = right if bounded_left else left
        passed = False
        broken = _bound_fails(gate.comparison, missing, other, bounded_left)
        if broken is not None and missing.at_least is not None:
            side, other_side = (gate.left, gate.right) if bounded_left else (gate.right, gate.left)
            shown_bound = f"{side.text} >= {_format_value(missing.at_least, side.kind)} ({missing.why})"
            reason = f"FAIL: {shown_bound} {broken.negated.value} {_shown(other_side, other, True)}"
            lower = _Measured(missing.at_least, missing.at_least, missing.why)  # shown as ">= bound"
            left, right = (lower, right) if bounded_left else (left, lower)
            bound_measured = lower
        else:
            no_data = report_no_data
            reason = f"{'no data' if no_data else 'no evidence'}: {missing.why}"
    else:
        passed = gate.comparison.holds(left.value, right.value)
        symbol = (gate.comparison if passed else gate.comparison.negated).value
        shown = [_shown(side, m, True) for side, m in ((gate.left, left), (gate.right, right))]
        reason = f"{'' if passed else 'FAIL: '}{shown[0]} {symbol} {shown[1]}"
    pairs = [(left, gate.left), (right, gate.right)]
    if isinstance(gate.left, Quantity):  # the measured side is on the right
        pairs.reverse()
    (observed, observed_side), (threshold, threshold_side) = pairs
    observed_text = _shown(observed_side, observed)
    threshold_text = _shown(threshold_side, threshold)
    if bound_measured is not None and observed is bound_measured:  # a lower bound decided it: show it as one
        observed_text = ">= " + observed_text
    return Verdict(
        name, gate.source, passed, observed.value, threshold.value, observed_text, threshold_text, reason, no_data
    )
