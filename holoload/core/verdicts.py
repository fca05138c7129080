"""Verdicts: a parsed gate evaluated against measured data, with a reason people can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

from holoload.core.gates import FIELD, Gate, GateContext, Kind, Literal, Operand, ScalarRef, Scaled
from holoload.core.units import format_duration

__all__ = ["Verdict", "evaluate"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one gate; ``observed`` and ``threshold`` are in base units."""

    name: str
    expression: str
    passed: bool
    observed: float | None
    threshold: float | None
    observed_text: str
    threshold_text: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        """Return the verdict as a JSON-ready dict."""
        return asdict(self)


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


def _measure(side: Operand, ctx: GateContext) -> _Measured:
    """The side's value as a float, or None and the reason there is none."""
    if isinstance(side, Literal):
        return _Measured(side.value, side.value, "")
    if isinstance(side, Scaled):
        inner = _measure(side.operand, ctx)
        scaled = None if inner.value is None else inner.value * side.factor
        return _Measured(scaled, inner.value, inner.why)
    if isinstance(side, ScalarRef):
        value, why = ctx.scalar(side.text), f"no value for scalar {side.text!r}"
    else:
        keywords = dict(side.keywords)
        if side.field:
            keywords[FIELD] = side.field
        value = side.function.measure(ctx, side.op, keywords)
        why = side.function.missing_reason.format(op=side.op)
        if side.keywords:  # "no samples for op 'insert' (during=split)": say which slice was empty
            why += f" ({', '.join(f'{k}={v}' for k, v in side.keywords)})"
    value = None if value is None else float(value)
    return _Measured(value, value, why)


def _shown(side: Operand, measured: _Measured, with_name: bool = False) -> str:
    """A side for people: literals as written, measured values formatted, products spelled out."""
    if isinstance(side, Literal):
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


def evaluate(name: str, gate: Gate, ctx: GateContext) -> Verdict:
    """Evaluate a gate against measured data; missing data fails the gate.

    Args:
        name: the gate's name in the scenario, carried into the verdict.
        gate: a parsed gate.
        ctx: where histograms and scalars are read from.

    Returns:
        The verdict; ``observed`` is the side reading data (left if both do), with
        reasons like "p95(a) = 1.21s <= 8s" or "FAIL: p95(b) = 21.4s > 20s".
    """
    left, right = _measure(gate.left, ctx), _measure(gate.right, ctx)
    if left.value is None or right.value is None:
        passed, reason = False, left.why if left.value is None else right.why
    else:
        passed = gate.comparison.holds(left.value, right.value)
        symbol = (gate.comparison if passed else gate.comparison.negated).value
        shown = [_shown(side, m, True) for side, m in ((gate.left, left), (gate.right, right))]
        reason = f"{'' if passed else 'FAIL: '}{shown[0]} {symbol} {shown[1]}"
    pairs = [(left, gate.left), (right, gate.right)]
    if isinstance(gate.left, Literal):  # the measured side is on the right
        pairs.reverse()
    (observed, observed_side), (threshold, threshold_side) = pairs
    observed_text = _shown(observed_side, observed)
    threshold_text = _shown(threshold_side, threshold)
    return Verdict(name, gate.source, passed, observed.value, threshold.value, observed_text, threshold_text, reason)
