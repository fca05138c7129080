"""Chaos gates: `chaos(NAME).field` counts and `recovery(NAME)` read through a ChaosView stub."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from holoload.core.gates.chaos import CHAOS_FIELDS, ChaosView, chaos_view
from holoload.core.gates.language import Call, GateSyntaxError, Kind, check_gate, parse_gate
from holoload.core.gates.load import LoadGateContext
from holoload.core.gates.verdicts import evaluate
from holoload.core.stats.window import NS_PER_S, Aggregator


@dataclass
class StubChaos:
    """A ChaosView over plain dicts: counts by (name, field) and recoveries by name."""

    counts: dict[tuple[str, str], float] = field(default_factory=dict)
    recoveries: dict[str, float] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def chaos_count(self, name: str, field: str) -> float | None:
        self.asked.append((name, field))
        return self.counts.get((name, field))

    def recovery_s(self, name: str) -> float | None:
        return self.recoveries.get(name)


SPLITS = {("split", "ok"): 3, ("split", "failed"): 1, ("split", "fired"): 4, ("split", "healed"): 0}
CHAOS = StubChaos(counts={**SPLITS, ("kill-2", "healed"): 1}, recoveries={"node_restart": 12.5, "kill": 31.0})


def judge(text: str, chaos: ChaosView | None = CHAOS, scalars: Mapping[str, float] | None = None) -> tuple[bool, str]:
    """Evaluate a gate against an empty run with the given chaos view."""
    ctx = LoadGateContext(Aggregator(0), None, NS_PER_S, scalars, None, chaos)
    verdict = evaluate("g", parse_gate(text), ctx)
    return verdict.passed, verdict.reason


def test_the_stub_is_a_chaos_view_and_the_context_exposes_it() -> None:
    """The Protocol is checked at run time; LoadGateContext keeps it as `chaos` (None by default)."""
    assert isinstance(CHAOS, ChaosView)
    ctx = LoadGateContext(Aggregator(0), None, 0, chaos=CHAOS)
    assert ctx.chaos is CHAOS and chaos_view(ctx) is CHAOS
    assert chaos_view(LoadGateContext(Aggregator(0), None, 0)) is None
    assert chaos_view(object()) is None


@pytest.mark.parametrize("name", sorted(CHAOS_FIELDS))
def test_chaos_fields_parse_as_numbers_naming_faults(name: str) -> None:
    """`chaos(x).<field>` is a number whose argument is a fault, not an op."""
    gate = parse_gate(f"chaos(split).{name} >= 1")
    assert isinstance(gate.left, Call)
    assert (gate.left.kind, gate.left.field) == (Kind.NUMBER, name)
    refs = gate.references()
    assert (refs.ops, refs.faults) == (frozenset(), frozenset({"split"}))


def test_chaos_count_passes_the_field_to_the_view() -> None:
    """`chaos(split).ok >= 3` asks the view for ("split", "ok") and judges the count."""
    stub = StubChaos(counts=dict(SPLITS))
    assert judge("chaos(split).ok >= 3", stub) == (True, "chaos(split).ok = 3 >= 3")
    assert judge("chaos(split).failed == 0", stub) == (False, "FAIL: chaos(split).failed = 1 != 0")
    assert judge("chaos(split).healed >= chaos(split).fired", stub) == (
        False,
        "FAIL: chaos(split).healed = 0 < chaos(split).fired = 4",
    )
    assert stub.asked[:4] == [("split", "fired"), ("split", "ok"), ("split", "fired"), ("split", "failed")]


def test_chaos_of_an_unknown_fault_is_no_data() -> None:
    """A name the view does not know fails the gate with a reason, never a silent zero."""
    assert judge("chaos(net).ok >= 1") == (False, "no evidence: no chaos fault or action kind 'net' in this run")


def test_without_a_chaos_view_the_gates_have_no_data() -> None:
    """A context without chaos results gives no data for chaos() and recovery()."""
    assert judge("chaos(split).ok >= 1", None)[0] is False
    passed, reason = judge("recovery(kill) <= 30s", None)
    assert not passed and reason == "no evidence: no heal of chaos fault 'kill' to recover from"


def test_recovery_is_a_duration() -> None:
    """`recovery(NAME) <= 30s` reads the view's seconds and prints them as a duration."""
    assert judge("recovery(node_restart) <= 30s") == (True, "recovery(node_restart) = 12.5s <= 30s")
    assert judge("recovery(kill) <= 30s") == (False, "FAIL: recovery(kill) = 31s > 30s")
    assert judge("recovery(split) <= 30s") == (False, "no evidence: no heal of chaos fault 'split' to recover from")
    with pytest.raises(GateSyntaxError, match=re.escape("recovery(kill) is a duration")):
        parse_gate("recovery(kill) <= 30")


def test_ledger_scalars_combine_with_chaos_gates() -> None:
    """Ledger figures are plain scalars: `lost == 0`, and `0.01 * acknowledged` scales."""
    scalars = {"lost": 0.0, "acknowledged": 5000.0, "in_doubt_absent": 60.0}
    assert judge("lost == 0", scalars=scalars) == (True, "lost = 0 == 0")
    assert judge("in_doubt_absent <= 0.01 * acknowledged", scalars=scalars) == (
        False,
        "FAIL: in_doubt_absent = 60 > 0.01 * acknowledged = 0.01 * 5000 = 50",
    )


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("chaos(split) >= 3", 14, "expected a field after chaos(split), such as chaos(split).failed"),
        ("chaos(split).succeeded >= 3", 14, "unknown field 'succeeded' of chaos(); expected one of failed, fired"),
        ("recovery(kill).ok <= 1s", 15, "recovery() has no fields"),
        ("chaos(split).ok >= 1s", 20, "chaos(split).ok is a number"),
        ("chaos(split, node=1).ok >= 1", 14, "unexpected keyword 'node' (accepted, once each: none)"),
    ],
)
def test_chaos_gate_errors_say_column_and_expectation(text: str, column: int, expected: str) -> None:
    """Missing or unknown fields, fields on recovery() and kind mismatches are syntax errors."""
    with pytest.raises(GateSyntaxError, match=re.escape(expected)) as info:
        parse_gate(text)
    assert info.value.column == column


def test_fault_names_are_checked_only_against_faults() -> None:
    """check_gate never calls a fault an unknown op; given the scenario's faults it checks them."""
    gate = parse_gate("recovery(node_restart) <= 2 * max_gap(insert)")
    assert gate.references().faults == frozenset({"node_restart"})
    assert check_gate(gate, ["insert"], []) == []
    assert check_gate(gate, ["insert"], [], ["kill-1", "kill"]) == [
        "unknown fault 'node_restart' (known: kill, kill-1)"
    ]
