"""Reads scenario and target files (the only place the input files are opened)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from holoload.core.config.profiles import AppliedBudget
from holoload.core.errors import ScenarioError
from holoload.core.model.scenario import Scenario, parse_scenario, parse_scenario_budget
from holoload.core.model.target import Target, parse_target


def read_text(path: str | Path) -> str:
    """Read a UTF-8 input file, turning OS errors into a ScenarioError (exit 2)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(path), [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), [("", f"cannot read: {exc}")]) from None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read and validate a scenario file with `--set` overrides (exit 2 on any problem)."""
    return parse_scenario(read_text(path), str(path), overrides)


def load_scenario_budget(
    path: str | Path, sets: Sequence[str], profile: str, environ: Mapping[str, str]
) -> tuple[Scenario, AppliedBudget]:
    """Read a scenario under a budget: `[profiles.<profile>]`, `HOLOLOAD_GATE_*` of `environ`, then `--set`."""
    return parse_scenario_budget(read_text(path), str(path), profile=profile, environ=environ, sets=sets)


def load_target(path: str | Path) -> Target:
    """Read and validate a target file (exit 2 on any problem)."""
    return parse_target(read_text(path), str(path))
