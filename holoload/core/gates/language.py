"""Gate expressions such as ``p95(batch_20k) <= 8s``: the table of gate functions, parse and check.

The language's model (kinds, functions, the parsed tree) is `holoload.core.gates.model`; evaluating
a parsed gate against data is `holoload.core.gates.verdicts`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import NamedTuple

from holoload.core.config.units import parse_duration
from holoload.core.gates import chaos as chaos_gates
from holoload.core.gates import isolation as isolation_gates
from holoload.core.gates import load as load_gates
from holoload.core.gates import server as server_gates
from holoload.core.gates.model import (
    FIELD,
    Call,
    Comparison,
    FunctionTable,
    Gate,
    GateContext,
    GateFunction,
    GateRefs,
    GateSyntaxError,
    Kind,
    Measurement,
    NoData,
    Operand,
    Quantity,
    ScalarRef,
    Scaled,
)
from holoload.core.server import staleness
from holoload.core.stats import outage

__all__ = [
    "FIELD",
    "FUNCTIONS",
    "Call",
    "Comparison",
    "FunctionTable",
    "Gate",
    "GateContext",
    "GateFunction",
    "GateRefs",
    "GateSyntaxError",
    "Kind",
    "Measurement",
    "NoData",
    "Operand",
    "Quantity",
    "ScalarRef",
    "Scaled",
    "check_gate",
    "parse_gate",
]

#: Every gate function, by the kind of evidence it reads. Each name is defined once here;
#: `max`, `min` and `rate` take an op selector or a server series and decide by the argument.
FUNCTIONS = FunctionTable(
    [
        # an op selector's latency and counts (the op's histogram, or a sustained run's windows)
        load_gates.MEAN,
        load_gates.COUNT,
        load_gates.ERROR_RATE,
        load_gates.ERRORS,
        load_gates.DROPPED,
        load_gates.RETRIES,
        load_gates.MAX_GAP,
        # an op selector or a sampled series, decided by the argument
        server_gates.MAX,  # a topology series (topology.x, split.x), else the op's latency
        server_gates.MIN,
        server_gates.RATE,  # the op's throughput when the run has that op, else the metric's rate
        # the cluster's sampled metrics and topology series
        server_gates.DELTA,
        server_gates.LAST,
        server_gates.PEAK,
        # chaos faults and standbys
        chaos_gates.CHAOS,
        chaos_gates.RECOVERY,
        outage.OUTAGE,
        staleness.STALENESS,
        # transactional workloads' isolation checks
        isolation_gates.ISOLATION,
    ],
    [load_gates.PERCENTILES],  # p50, p95, p99.9, ...
)


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
# Number suffixes other than durations (us, ms, s, m, h and compounds such as 1h30m).
_SCALES = {"": 1.0, "k": 1e3, "M": 1e6, "%": 0.01}


class _Token(NamedTuple):
    kind: str  # a _TOKEN group name, or "end"
    text: str
    column: int


class _Parser:
    """Recursive-descent parser over the tokens of one gate."""

    def __init__(self, source: str, functions: FunctionTable) -> None:
        self.source, self.position, self.functions = source, 0, functions
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
        if isinstance(left, Quantity) and isinstance(right, Quantity):
            detail = "expected an op or a scalar on one side, got two numbers"
            raise GateSyntaxError(self.source, left_at.column, detail)
        if left.kind is not right.kind:
            subject, other, at = left, right, right_at
            if isinstance(left, Quantity):  # blame the threshold literal, not the measurement
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

    def factor(self, number: Quantity, token: _Token) -> float:
        if number.kind is not Kind.NUMBER:
            detail = f"expected a plain number such as 2 or 0.5 as factor, got {token.text!r} (a {number.kind.value})"
            raise GateSyntaxError(self.source, token.column, detail)
        return number.value

    def term(self, expected: str) -> ScalarRef | Call:
        name = self.take("name", expected=expected)
        if self.tokens[self.position].text != "(":
            return ScalarRef(name.text)
        function = self.functions.lookup(name.text)
        if function is None:
            known = ", ".join(self.functions.hints())
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

    def literal(self, token: _Token) -> Quantity:
        rate = re.fullmatch(r"(\d+(?:\.\d+)?)(k|M|)/s", token.text)
        if rate:
            return Quantity(token.text, float(rate[1]) * _SCALES[rate[2]], Kind.RATE)
        plain = re.fullmatch(r"(\d+(?:\.\d+)?)(k|M|%|)", token.text)
        if plain:
            kind = Kind.RATIO if plain[2] == "%" else Kind.NUMBER
            return Quantity(token.text, float(plain[1]) * _SCALES[plain[2]], kind)
        try:
            return Quantity(token.text, parse_duration(token.text), Kind.DURATION)
        except ValueError:
            units = "us, ms, s, m, h, %, k, M or /s"
            detail = f"expected a number with an optional unit ({units}), got {token.text!r}"
            raise GateSyntaxError(self.source, token.column, detail) from None


def parse_gate(text: str, functions: FunctionTable = FUNCTIONS) -> Gate:
    """Parse a gate expression such as ``p95(batch_20k) <= 8s``.

    Args:
        text: ``<operand> <cmp> <operand>``; an operand is a call ``name(op, key=value)``
            (``name(fault).field`` for functions with fields), a scalar name, or a number with
            optional unit (us/ms/s/m/h, %, k, M); a call or scalar may be multiplied by a plain
            number on either side (``2 * p99(op)``, ``count(op) * 0.5``).
        functions: the gate functions calls may name (default: every function holoload has).

    Returns:
        The parsed gate; both sides are known to be of the same kind.

    Raises:
        GateSyntaxError: not a valid gate; the message gives the column and expectation.
    """
    return _Parser(text, functions).gate()


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
