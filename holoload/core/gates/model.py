"""The gate language's model: kinds, gate functions and their table, and a parsed gate's tree.

Parsing is `holoload.core.gates.language`; evaluating a parsed gate against data is `holoload.core.gates.verdicts`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class GateSyntaxError(ValueError):
    """A gate could not be parsed: ``detail`` says what was expected at 1-based ``column``."""

    def __init__(self, source: str, column: int, detail: str) -> None:
        self.source, self.column, self.detail = source, column, detail
        super().__init__(f"gate {source!r}, column {column}: {detail}")


class Kind(Enum):
    """What a gate operand measures; both sides of a comparison must agree."""

    DURATION, NUMBER, RATIO, RATE = "duration", "number", "ratio", "rate"


class HistogramView(Protocol):
    """What gate functions read from a histogram (LatencyHistogram and SparseHistogram have it)."""

    @property
    def count(self) -> int: ...
    @property
    def min_us(self) -> int: ...
    @property
    def max_us(self) -> int: ...
    @property
    def mean_us(self) -> float: ...
    def percentile_us(self, p: float) -> int | None: ...


class GateContext(Protocol):
    """What gates read: an op's histogram and named scalars, None when there is none."""

    def histogram(self, op: str) -> HistogramView | None: ...

    def scalar(self, name: str) -> float | None: ...


@dataclass(frozen=True, slots=True)
class NoData:
    """What a gate function returns when the evidence it reads was never observed, and why.

    ``at_least`` is a lower bound already known (a recovery still waiting after 40 s is at
    least 40 s): a gate that the bound alone decides (``recovery(x) <= 30s``) fails on it.
    """

    reason: str
    at_least: float | None = None


#: What ``GateFunction.measure`` returns: a value in base units, None (no data, the function's
#: ``missing_reason``) or NoData with a reason of its own.
Measurement = float | NoData | None


#: The key under which ``measure`` receives the field written after a call (``chaos(split).ok``).
#: No keyword can be spelled so, since keyword names start with a letter.
FIELD = "."


@dataclass(frozen=True, slots=True)
class GateFunction:
    """A gate function ``name(op, key=value)``: ``measure`` gives base units, None or NoData (no data).

    A function with ``fields`` must be called with one of them, as in ``chaos(split).ok``;
    ``measure`` then finds it in ``keywords[FIELD]``.
    """

    name: str
    kind: Kind
    measure: Callable[[GateContext, str, Mapping[str, str]], Measurement]
    keywords: frozenset[str] = frozenset()
    missing_reason: str = "no samples for op '{op}'"
    kind_of: Callable[[str], Kind] | None = None  # when the argument decides the kind (max(topology.x))
    server_side: Callable[[str], bool] | None = None  # arguments naming sampled series, not ops
    series_fallback: bool = False  # an argument that is no known op names a sampled series
    fields: frozenset[str] = frozenset()  # `.name` after the call; one is required when any exist
    names_fault: bool = False  # the argument names a chaos fault (or action kind), not an op
    hint: str = ""  # how "unknown function" messages show it (default: the name)


@dataclass(frozen=True, slots=True)
class FunctionFamily:
    """Gate functions named by a pattern (``p95``, ``p99.9``), each built from its name's match.

    ``build`` returns None for a name the pattern matches but that means nothing (``p101``).
    """

    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], GateFunction | None]
    hint: str


class FunctionTable:
    """Every gate function the parser knows, each name defined exactly once.

    Built in one place (`holoload.core.gates.language.FUNCTIONS`) from the functions each module defines;
    nothing registers itself, so what a name means never depends on which module was imported.

    Args:
        functions: functions with a fixed name.
        families: functions named by a pattern.

    Raises:
        ValueError: a name given twice, or a fixed name that a family's pattern also matches.
    """

    def __init__(self, functions: Iterable[GateFunction], families: Iterable[FunctionFamily] = ()) -> None:
        self._families = tuple(families)
        self._named: dict[str, GateFunction] = {}
        for function in functions:
            if function.name in self._named:
                raise ValueError(f"gate function {function.name!r} is defined twice")
            for family in self._families:
                if family.pattern.fullmatch(function.name):
                    raise ValueError(f"gate function {function.name!r} is also a name of {family.hint}")
            self._named[function.name] = function

    def lookup(self, name: str) -> GateFunction | None:
        """The function called ``name`` (such as "count" or "p99.9"), or None if there is none."""
        function = self._named.get(name)
        if function is not None:
            return function
        for family in self._families:
            match = family.pattern.fullmatch(name)
            if match is not None:
                return family.build(match)
        return None

    @property
    def names(self) -> frozenset[str]:
        """The fixed names (without the families' names such as p95)."""
        return frozenset(self._named)

    def hints(self) -> list[str]:
        """Every function as "unknown function" messages list them, sorted."""
        named = [function.hint or function.name for function in self._named.values()]
        return sorted(named + [family.hint for family in self._families])

    def extended(self, *functions: GateFunction) -> FunctionTable:
        """This table with more functions (their names must be new).

        Raises:
            ValueError: as for the constructor.
        """
        return FunctionTable([*self._named.values(), *functions], self._families)


class Comparison(Enum):
    """A comparison operator between the two sides of a gate."""

    LE, LT, GE, GT, EQ, NE = "<=", "<", ">=", ">", "==", "!="

    def holds(self, left: float, right: float) -> bool:
        """Whether ``left <op> right`` is true."""
        # Member names are those of the operator module's functions: LE -> operator.le.
        return bool(getattr(operator, self.name.lower())(left, right))

    @property
    def negated(self) -> Comparison:
        """The operator that holds exactly when this one does not."""
        return Comparison(_NEGATION[self.value])


_NEGATION = {"<=": ">", ">": "<=", "<": ">=", ">=": "<", "==": "!=", "!=": "=="}


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number as written, such as ``8s``, ``1%`` or ``20k``, with its value in base units."""

    text: str
    value: float
    kind: Kind


@dataclass(frozen=True, slots=True)
class ScalarRef:
    """A named scalar such as ``failed_batches``; always a number."""

    text: str
    kind: Kind = Kind.NUMBER


@dataclass(frozen=True, slots=True)
class Call:
    """A function applied to an op, such as ``p95(batch_20k)`` or ``chaos(split).ok``; ``text`` as written."""

    text: str
    function: GateFunction
    op: str
    keywords: tuple[tuple[str, str], ...] = ()
    field: str = ""  # the name after the call (`ok` in `chaos(split).ok`), "" when none

    @property
    def kind(self) -> Kind:
        """The kind of value the function returns (for some functions, decided by the argument)."""
        if self.function.kind_of is not None:
            return self.function.kind_of(self.op)
        return self.function.kind

    @property
    def reads_series(self) -> bool:
        """Whether the argument certainly names a sampled server series rather than an op."""
        return self.function.server_side is not None and self.function.server_side(self.op)


@dataclass(frozen=True, slots=True)
class Scaled:
    """A call or scalar multiplied by a plain number, such as ``2 * p99(insert)``; ``text`` as written.

    Its kind is the operand's (a number factor keeps durations durations).
    """

    text: str
    operand: ScalarRef | Call
    factor: float
    factor_text: str
    factor_first: bool = True  # `2 * x` rather than `x * 2`, for showing values as written

    @property
    def kind(self) -> Kind:
        """The operand's kind."""
        return self.operand.kind


Operand = Quantity | ScalarRef | Call | Scaled


@dataclass(frozen=True, slots=True)
class GateRefs:
    """The op names (read by function calls), scalar names, sampled series and faults a gate reads.

    `maybe_series` are arguments of functions such as `rate()` that read an op when one has that
    name and a sampled server series otherwise; `faults` are arguments of functions such as
    `chaos()` and `recovery()` that name a chaos fault or action kind.
    """

    ops: frozenset[str]
    scalars: frozenset[str]
    series: frozenset[str] = frozenset()
    maybe_series: frozenset[str] = frozenset()
    faults: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Gate:
    """A parsed gate ``left <comparison> right``; ``source`` is the text as written."""

    source: str
    left: Operand
    comparison: Comparison
    right: Operand

    def operands(self) -> tuple[Quantity | ScalarRef | Call, ...]:
        """Both sides, with scaled operands unwrapped (``2 * p99(x)`` gives ``p99(x)``)."""
        return tuple(side.operand if isinstance(side, Scaled) else side for side in (self.left, self.right))

    def calls(self) -> list[Call]:
        """The function calls of both sides, scaled or not."""
        return [side for side in self.operands() if isinstance(side, Call)]

    def references(self) -> GateRefs:
        """Return the op, scalar, series and fault names this gate reads."""
        faults = frozenset(c.op for c in self.calls() if c.function.names_fault)
        calls = [c for c in self.calls() if not c.function.names_fault]
        series = frozenset(c.op for c in calls if c.reads_series)
        maybe = frozenset(c.op for c in calls if not c.reads_series and c.function.series_fallback)
        ops = frozenset(c.op for c in calls if not c.reads_series and not c.function.series_fallback)
        scalars = frozenset(s.text for s in self.operands() if isinstance(s, ScalarRef))
        return GateRefs(ops, scalars, series, maybe, faults)
