"""Gate expressions such as ``p95(batch_20k) <= 8s``: the language, its functions, parse and check.

Evaluating a parsed gate against data is `holoload.core.verdicts`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Protocol

from holoload.core.units import parse_duration


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


FunctionBuilder = Callable[["re.Match[str]"], "GateFunction | None"]
_REGISTRY: list[tuple[re.Pattern[str], FunctionBuilder, str]] = []


def register_function(pattern: str, build: FunctionBuilder, hint: str = "") -> None:
    """Make gate functions whose names fully match ``pattern`` available to gates.

    Args:
        pattern: a regular expression for the name, such as "count" or "p[0-9]+".
        build: makes the function from the name's match, or returns None to reject it.
        hint: how the name is shown in "unknown function" messages (default: pattern).
    """
    _REGISTRY.append((re.compile(pattern), build, hint or pattern))


def lookup_function(name: str) -> GateFunction | None:
    """Return the gate function called ``name``, or None if there is none.

    Args:
        name: the name as written, such as "p99.9" or "count".

    Returns:
        The function built by the most recent registration whose pattern matches.
    """
    for pattern, build, _hint in reversed(_REGISTRY):
        match = pattern.fullmatch(name)
        if match is not None:
            return build(match)
    return None


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


def _percentile(match: re.Match[str]) -> GateFunction | None:
    p = float(match[1])
    return _from_histogram(match[0], lambda h: h.percentile_us(p)) if p <= 100 else None


register_function("min", lambda m: _from_histogram("min", lambda h: h.min_us))
register_function("max", lambda m: _from_histogram("max", lambda h: h.max_us))
register_function("mean", lambda m: _from_histogram("mean", lambda h: h.mean_us))
register_function("count", lambda m: GateFunction("count", Kind.NUMBER, _count))
register_function(r"p(\d+(?:\.\d+)?)", _percentile, "p<N> (p50, p95, p99.9)")


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
class Literal:
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


Operand = Literal | ScalarRef | Call | Scaled


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

    def operands(self) -> tuple[Literal | ScalarRef | Call, ...]:
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


_TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<number>\d+(?:\.\d+)?(?:[A-Za-zµ%]+(?:\d+(?:\.\d+)?[A-Za-zµ]+)*)?(?:/s)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)
    | (?P<cmp><=|>=|==|!=|<|>)
    | (?P<punct>[(),=.*])""",
    re.VERBOSE,
)
_EXAMPLES = {Kind.DURATION: "8s", Kind.NUMBER: "0", Kind.RATIO: "1%", Kind.RATE: "1000/s"}
_OPERAND_EXPECTED = "expected a function call such as p95(op), a scalar name or a number"
# Literal suffixes other than durations (us, ms, s, m, h and compounds such as 1h30m).
_SCALES = {"": 1.0, "k": 1e3, "M": 1e6, "%": 0.01}


class _Token(NamedTuple):
    kind: str  # a _TOKEN group name, or "end"
    text: str
    column: int


class _Parser:
    """Recursive-descent parser over the tokens of one gate."""

    def __init__(self, source: str) -> None:
        self.source, self.position = source, 0
        self.tokens: list[_Token] = []
        at = 0
        while at < len(source):
            match = _TOKEN.match(source, at)
            if match is None:
                raise GateSyntaxError(source, at + 1, f"unexpected character {source[at]!r}")
            if match.lastgroup != "space":
                self.tokens.append(_Token(match.lastgroup or "", match[0], at + 1))
            at = match.end()
        self.tokens.append(_Token("end", "", len(source) + 1))

    def take(self, *kinds: str, text: str = "", expected: str = "") -> _Token:
        token = self.tokens[self.position]
        if (kinds and token.kind not in kinds) or (text and token.text != text):
            shown = "the end of the gate" if token.kind == "end" else repr(token.text)
            raise GateSyntaxError(self.source, token.column, f"{expected}, got {shown}")
        self.position += 1
        return token

    def gate(self) -> Gate:
        left_at, left = self.tokens[self.position], self.operand()
        symbol = self.take("cmp", expected="expected a comparison operator (<=, <, >=, >, ==, !=)")
        right_at, right = self.tokens[self.position], self.operand()
        self.take("end", expected="expected the end of the gate")
        if isinstance(left, Literal) and isinstance(right, Literal):
            detail = "expected an op or a scalar on one side, got two numbers"
            raise GateSyntaxError(self.source, left_at.column, detail)
        if left.kind is not right.kind:
            subject, other, at = left, right, right_at
            if isinstance(left, Literal):  # blame the threshold literal, not the measurement
                subject, other, at = right, left, left_at
            kind, example = subject.kind.value, _EXAMPLES[subject.kind]
            detail = f"{subject.text} is a {kind}; compare it with a {kind} such as {example}"
            detail += f", not {other.text} (a {other.kind.value})"
            raise GateSyntaxError(self.source, at.column, detail)
        return Gate(self.source, left, Comparison(symbol.text), right)

    def end_column(self) -> int:
        """The column just after the last token taken (0-based end, for slicing the source)."""
        last = self.tokens[self.position - 1]
        return last.column - 1 + len(last.text)

    def operand(self) -> Operand:
        first = self.tokens[self.position]
        if first.kind == "number":
            number = self.literal(self.take())
            if self.tokens[self.position].text != "*":
                return number
            self.take()
            factor = self.factor(number, first)
            expected = f"expected a function call or a scalar name after '{first.text} *'"
            inner = self.term(expected)
            return Scaled(self.source[first.column - 1 : self.end_column()], inner, factor, first.text, True)
        inner = self.term(_OPERAND_EXPECTED)
        if self.tokens[self.position].text != "*":
            return inner
        self.take()
        token = self.take("number", expected=f"expected a number such as 2 or 0.5 after '{inner.text} *'")
        factor = self.factor(self.literal(token), token)
        return Scaled(self.source[first.column - 1 : self.end_column()], inner, factor, token.text, False)

    def factor(self, number: Literal, token: _Token) -> float:
        if number.kind is not Kind.NUMBER:
            detail = f"expected a plain number such as 2 or 0.5 as factor, got {token.text!r} (a {number.kind.value})"
            raise GateSyntaxError(self.source, token.column, detail)
        return number.value

    def term(self, expected: str) -> ScalarRef | Call:
        name = self.take("name", expected=expected)
        if self.tokens[self.position].text != "(":
            return ScalarRef(name.text)
        function = lookup_function(name.text)
        if function is None:
            known = ", ".join(sorted(hint for _pattern, _build, hint in _REGISTRY))
            detail = f"unknown function {name.text!r}; expected one of {known}"
            raise GateSyntaxError(self.source, name.column, detail)
        self.take()
        what = "a fault name" if function.names_fault else "an op name"
        op = self.take("name", expected=f"expected {what} as first argument of {name.text}()")
        keywords: dict[str, str] = {}
        while self.tokens[self.position].text == ",":
            self.take()
            key = self.take("name", expected="expected a keyword argument such as name=value")
            if key.text not in function.keywords or key.text in keywords:
                accepted = ", ".join(sorted(function.keywords)) or "none"
                detail = f"unexpected keyword {key.text!r} (accepted, once each: {accepted})"
                raise GateSyntaxError(self.source, key.column, detail)
            self.take("punct", text="=", expected=f"expected '=' after {key.text}")
            value = self.take("name", "number", expected=f"expected a value for {key.text}")
            keywords[key.text] = value.text
        self.take("punct", text=")", expected="expected ',' or ')'")
        field = self.field(function, self.source[name.column - 1 : self.end_column()])
        text = self.source[name.column - 1 : self.end_column()]
        return Call(text, function, op.text, tuple(keywords.items()), field)

    def field(self, function: GateFunction, call: str) -> str:
        """The `.name` after a call: required by functions with fields, refused by the others."""
        accepted = ", ".join(sorted(function.fields))
        at = self.tokens[self.position]
        if at.text != ".":
            if function.fields:
                example = f"{call}.{min(function.fields)}"
                detail = f"expected a field after {call}, such as {example} (one of {accepted})"
                raise GateSyntaxError(self.source, at.column, detail)
            return ""
        if not function.fields:
            detail = f"{function.name}() has no fields; expected a comparison operator after {call}"
            raise GateSyntaxError(self.source, at.column, detail)
        self.take()
        name = self.take("name", expected=f"expected a field name after '.' (one of {accepted})")
        if name.text not in function.fields:
            detail = f"unknown field {name.text!r} of {function.name}(); expected one of {accepted}"
            raise GateSyntaxError(self.source, name.column, detail)
        return name.text

    def literal(self, token: _Token) -> Literal:
        rate = re.fullmatch(r"(\d+(?:\.\d+)?)(k|M|)/s", token.text)
        if rate:
            return Literal(token.text, float(rate[1]) * _SCALES[rate[2]], Kind.RATE)
        plain = re.fullmatch(r"(\d+(?:\.\d+)?)(k|M|%|)", token.text)
        if plain:
            kind = Kind.RATIO if plain[2] == "%" else Kind.NUMBER
            return Literal(token.text, float(plain[1]) * _SCALES[plain[2]], kind)
        try:
            return Literal(token.text, parse_duration(token.text), Kind.DURATION)
        except ValueError:
            units = "us, ms, s, m, h, %, k, M or /s"
            detail = f"expected a number with an optional unit ({units}), got {token.text!r}"
            raise GateSyntaxError(self.source, token.column, detail) from None


def parse_gate(text: str) -> Gate:
    """Parse a gate expression such as ``p95(batch_20k) <= 8s``.

    Args:
        text: ``<operand> <cmp> <operand>``; an operand is a call ``name(op, key=value)``
            (``name(fault).field`` for functions with fields), a scalar name, or a number with
            optional unit (us/ms/s/m/h, %, k, M); a call or scalar may be multiplied by a plain
            number on either side (``2 * p99(op)``, ``count(op) * 0.5``).

    Returns:
        The parsed gate; both sides are known to be of the same kind.

    Raises:
        GateSyntaxError: not a valid gate; the message gives the column and expectation.
    """
    return _Parser(text).gate()


def check_gate(
    gate: Gate,
    known_ops: Collection[str],
    known_scalars: Collection[str],
    known_faults: Collection[str] | None = None,
) -> list[str]:
    """List what a gate refers to that the scenario does not define.

    Args:
        gate: a parsed gate.
        known_ops: op names the scenario defines.
        known_scalars: scalar names the run will provide.
        known_faults: fault names and action kinds `chaos()`/`recovery()` may name; None: not checked.

    Returns:
        One sentence per problem, such as "unknown op 'batch_2k' (known: batch_20k)".
    """
    refs = gate.references()
    checks = [("op", refs.ops, known_ops), ("scalar", refs.scalars, known_scalars)]
    if known_faults is not None:
        checks.append(("fault", refs.faults, known_faults))
    problems: list[str] = []
    for what, used, known in checks:
        listed = ", ".join(sorted(known)) or "none"
        for name in sorted(set(used) - set(known)):
            problems.append(f"unknown {what} {name!r} (known: {listed})")
    return problems
