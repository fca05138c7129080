"""The regression budget of a comparison: effect sizes, minimum absolute changes, confidence; parsed from text.

A figure regresses only when three things hold (see ``core/compare/regression.py``): the change is beyond
the relative budget, beyond the minimum absolute change, and its bootstrap interval at
``confidence`` lies wholly on the bad side of zero. The defaults come from A/A measurements on
the development machines (docs/performance.md, "A/A comparisons").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BUDGET_KEYS", "Budget", "budget_from"]

#: The keys ``budget_from`` (``--budget KEY=VALUE``) accepts.
BUDGET_KEYS = ("latency", "throughput", "latency_min", "throughput_min", "confidence")


@dataclass(frozen=True, slots=True)
class Budget:
    """What a comparison tolerates.

    ``latency=0.10`` lets p95/p99 grow by 10 %, ``throughput=0.10`` lets ops/s fall by 10 %;
    ``latency_min_ms`` and ``throughput_min_ops`` are the smallest absolute changes (ms, ops/s)
    that can count as a regression; ``confidence`` is the two-sided level of the bootstrap
    interval of the change (0.95: a regression needs the whole 95 % interval on the bad side).
    """

    latency: float = 0.10
    throughput: float = 0.10
    latency_min_ms: float = 0.5
    throughput_min_ops: float = 5.0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency) and self.latency >= 0):
            raise ValueError(f"latency budget must be a finite fraction >= 0, got {self.latency!r}")
        if not 0 <= self.throughput <= 1:
            raise ValueError(f"throughput budget must be a fraction from 0 to 1, got {self.throughput!r}")
        for name in ("latency_min_ms", "throughput_min_ops"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be a fraction from 0.5 to below 1, got {self.confidence!r}")


def _fraction(key: str, text: str) -> float:
    """``"15%"``, ``"+15%"``, ``"0.15"`` -> 0.15; a sign must point the metric's bad way."""
    raw = str(text).strip()
    sign = raw[:1] if raw[:1] in "+-" else ""
    body = raw[1:].strip() if sign else raw
    percent = body.endswith("%")
    number_text = body[:-1].strip() if percent else body
    expected = f"compare budget {key}={text!r}: expected a percentage like 10% or a fraction like 0.1"
    try:
        number = float(number_text)
    except ValueError:
        raise ValueError(expected) from None
    if not math.isfinite(number) or number < 0 or number_text.startswith(("+", "-")):
        raise ValueError(expected)
    wrong = "-" if key == "latency" else "+"
    if sign == wrong:
        way = "grow (+)" if key == "latency" else "fall (-)"
        raise ValueError(f"compare budget {key}={text!r}: the {key} budget is how far it may {way}")
    if not percent and number >= 1:
        raise ValueError(
            f"compare budget {key}={text!r}: ambiguous; write {number:g}% or a fraction below 1 (0.1 = 10%)"
        )
    value = number / 100 if percent else number
    if key == "throughput" and value > 1:
        raise ValueError(f"compare budget {key}={text!r}: throughput cannot fall by more than 100%")
    return value


def _amount(key: str, text: str, unit: str) -> float:
    """``"0.5ms"`` / ``"0.5"`` (latency_min, ms) or ``"5/s"`` / ``"5"`` (throughput_min, ops/s)."""
    raw = str(text).strip()
    body = raw[: -len(unit)].strip() if raw.endswith(unit) else raw
    try:
        number = float(body)
    except ValueError:
        number = -1.0
    if not math.isfinite(number) or number < 0 or body.startswith(("+", "-")):
        raise ValueError(f"compare budget {key}={text!r}: expected a number >= 0 like 0.5 or 0.5{unit}")
    return number


def _confidence(text: str) -> float:
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        number = float(raw[:-1] if percent else raw)
    except ValueError:
        number = math.nan
    value = number / 100 if percent else number
    if not (math.isfinite(value) and 0.5 <= value < 1):
        raise ValueError(f"compare budget confidence={text!r}: expected a level like 95% or 0.95 (50% to 99.9%)")
    return value


def budget_from(values: Mapping[str, str]) -> Budget:
    """A budget from text settings; keys left out keep their defaults.

    Args:
        values: e.g. ``{"latency": "15%", "throughput": "0.05", "latency_min": "1ms",
            "throughput_min": "20", "confidence": "99%"}``. ``latency``/``throughput`` are a
            percentage (``15%``, ``+15%`` for latency, ``-5%`` for throughput) or a fraction below
            1; ``latency_min`` is milliseconds (``0.5`` or ``0.5ms``), ``throughput_min`` ops/s
            (``5`` or ``5/s``), ``confidence`` a level (``95%`` or ``0.95``).

    Returns:
        The budget.

    Raises:
        ValueError: an unknown key or a bad value (a message naming the key and value).
    """
    unknown = sorted(set(values) - set(BUDGET_KEYS))
    if unknown:
        raise ValueError(f"compare budget: unknown key(s) {', '.join(unknown)} (expected {', '.join(BUDGET_KEYS)})")
    default = Budget()
    return Budget(
        latency=_fraction("latency", values["latency"]) if "latency" in values else default.latency,
        throughput=_fraction("throughput", values["throughput"]) if "throughput" in values else default.throughput,
        latency_min_ms=(
            _amount("latency_min", values["latency_min"], "ms") if "latency_min" in values else default.latency_min_ms
        ),
        throughput_min_ops=(
            _amount("throughput_min", values["throughput_min"], "/s")
            if "throughput_min" in values
            else default.throughput_min_ops
        ),
        confidence=_confidence(values["confidence"]) if "confidence" in values else default.confidence,
    )
