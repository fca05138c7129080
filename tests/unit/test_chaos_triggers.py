"""A fault whose trigger cannot fall inside its phase (after --set too) is exit 2 before any load."""

from __future__ import annotations

from pathlib import Path

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.model.scenario import chaos_trigger_problems, parse_scenario
from holoload.shell.cli import dispatch
from tests.support import REPO

CHAOS = REPO / "scenarios" / "chaos_split_kill.toml"

BASE = """
name = "t"
[[phases]]
name = "warm"
duration = "{warm}"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "op"
sql = "SELECT 1"
[[phases]]
name = "main"
duration = "{main}"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "op"
sql = "SELECT 1"
[[chaos]]
name = "f"
action = "net"
node = 1
net = {{ latency = "5ms" }}
{trigger}
"""


def problems(trigger: str, warm: str = "10s", main: str = "30s", overrides: list[str] | None = None) -> list[str]:
    text = BASE.format(trigger=trigger, warm=warm, main=main)
    try:
        parse_scenario(text, "t.toml", overrides)
    except ScenarioError as exc:
        return [f"{path}: {what}" for path, what in exc.problems]
    return []


@pytest.mark.parametrize(
    ("trigger", "key"),
    [
        ('during = "main"\nat = "42s"', "chaos[0].at"),
        ('during = "main"\nat = "30s"', "chaos[0].at"),  # at the very end: the phase is over
        ('during = "main"\nevery = "31s"', "chaos[0].every"),
        ('during = "main"\nevery = "5s"\nstart = "35s"', "chaos[0].start"),
        ('at = "40s"', "chaos[0].at"),  # no phase: the phases' 40 s together
    ],
)
def test_a_trigger_past_its_frame_is_an_input_error_naming_the_key(trigger: str, key: str) -> None:
    """The problem names the key path and the phase duration that rules it out."""
    found = problems(trigger)
    assert len(found) == 1 and found[0].startswith(f"{key}: 'f' would first fire at ")
    assert "could never fire" in found[0]


@pytest.mark.parametrize(
    "trigger",
    [
        'during = "main"\nat = "29s"',
        'during = "main"',  # fires as the phase starts
        'during = "main"\nevery = "29s"',
        'at = "39s"',
        'at = "42s"\nenabled = false',  # disabled: nothing to fire
    ],
)
def test_a_trigger_inside_its_frame_is_fine(trigger: str) -> None:
    """Firings that fall inside the phase (or the run) pass validation."""
    assert problems(trigger) == []


def test_set_shortening_the_phase_is_checked_after_the_override() -> None:
    """The issue's case: --set phases.1.duration=30s leaves slow_node3 (at 42s) unable to fire."""
    text = CHAOS.read_text()
    assert chaos_trigger_problems(parse_scenario(text, str(CHAOS))) == []
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, str(CHAOS), ['phases.1.duration="30s"'])
    (path, what), *rest = caught.value.problems
    assert rest == [] and path == "chaos[2].at"
    assert "slow_node3" in what and "phases[1].duration" in what and "30s" in what


def test_the_cli_exits_2_before_any_load(tmp_path: Path) -> None:
    """`holoload chaos_split_kill.toml --set phases.1.duration=30s` is exit 2 and leaves no results directory."""
    results = tmp_path / "results"
    code = dispatch([str(CHAOS), "--set", "phases.1.duration=30s", "--results-dir", str(results), "-q"])
    assert code == 2
    assert not results.exists()
