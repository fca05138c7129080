"""Budgets by environment: a scenario's `[profiles.NAME]`, `HOLOLOAD_GATE_<NAME>` variables and `--set`.

All three are key-path overrides of the raw scenario document, applied in this order (so the
command line wins): the selected profile, then the gate variables, then `--set` items. What
was applied is kept as an `AppliedBudget` (profile name and every override with its source)
for the terminal, summary.json/.txt, junit.xml and summary.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from holoload.core.config.validation import parse_override, set_path
from holoload.core.errors import ScenarioError

ENV_VAR = "HOLOLOAD_ENV"
GATE_PREFIX = "HOLOLOAD_GATE_"
DEFAULT = "default"  # no profile chosen (or [profiles.default], when the scenario has one)
PROFILES_KEY = "profiles"


@dataclass(frozen=True, slots=True)
class Override:
    """One key path set by a profile (`profile`), a gate variable (`env`) or the command line (`--set`)."""

    key: str
    value: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class AppliedBudget:
    """Which budget a run used: the profile's name (or "default") and the overrides, in applied order."""

    env: str = DEFAULT
    overrides: tuple[Override, ...] = ()
    labelled_only: bool = False  # the environment named no profile (the scenario has none): a label

    def describe(self) -> str:
        """One line for the terminal, e.g. `profile pr (2 overrides: gates.p95_20k [profile], ...)`."""
        head = DEFAULT if self.env == DEFAULT else f"profile {self.env}"
        if self.labelled_only:
            head = f"environment {self.env}, no profile for it in this scenario"
        if not self.overrides:
            return f"{head} (no overrides)"
        items = ", ".join(f"{o.key} [{o.source}]" for o in self.overrides)
        plural = "s" if len(self.overrides) != 1 else ""
        return f"{head} ({len(self.overrides)} override{plural}: {items})"

    def to_summary(self) -> dict[str, Any]:
        """The top-level summary.json keys `env` (a string) and `overrides` (list of {key, value, source})."""
        return {"env": self.env, "overrides": [o.to_dict() for o in self.overrides]}


def choose_profile(flag: str | None, environ: Mapping[str, str]) -> str:
    """The profile a run asks for: `--env`, else `HOLOLOAD_ENV`, else "default"."""
    for value in (flag, environ.get(ENV_VAR)):
        if value is not None and value.strip():
            return value.strip()
    return DEFAULT


def profile_names(data: Mapping[str, Any]) -> list[str]:
    """The names of a raw document's `[profiles.*]` tables (empty when it has none or they are malformed)."""
    profiles = data.get(PROFILES_KEY)
    return sorted(profiles) if isinstance(profiles, Mapping) else []


def profile_items(data: Mapping[str, Any], name: str, file: str) -> list[tuple[str, Any]] | None:
    """The (key path, value) items of `[profiles.NAME]`, sub-tables flattened into dotted paths.

    Returns:
        None when the scenario has no such profile and `name` is "default", or when the scenario
        has no profiles at all (the name is then only the run's environment label: CI can set
        HOLOLOAD_ENV for every scenario); the items otherwise.

    Raises:
        ScenarioError: a scenario with profiles has none named `name` (a typo must not silently
            run with the default budget; naming the ones there are), or a profile sets `profiles`.
    """
    profiles = data.get(PROFILES_KEY)
    table = profiles.get(name) if isinstance(profiles, Mapping) else None
    if table is None:
        if name == DEFAULT or not profile_names(data):
            return None
        known = profile_names(data)
        hint = difflib.get_close_matches(name, known, n=1)
        msg = f"no profile '{name}' (from --env or {ENV_VAR})"
        if hint:
            msg += f"; did you mean '{hint[0]}'?"
        msg += f"; profiles here: {', '.join(known)} (add a [profiles.{name}] table, even an empty one)"
        raise ScenarioError(file, [(f"{PROFILES_KEY}.{name}", msg)])
    if not isinstance(table, Mapping):
        raise ScenarioError(file, [(f"{PROFILES_KEY}.{name}", "expected a table of key.path = value overrides")])
    items = _flatten(table, "")
    for key, _ in items:
        if key.split(".")[0] == PROFILES_KEY or not all(part.strip() for part in key.split(".")):
            raise ScenarioError(
                file, [(f'{PROFILES_KEY}.{name}."{key}"', "expected a scenario key path such as gates.p95_20k")]
            )
    return items


def _flatten(table: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """`{"gates": {"a": 1}, "run.x": 2}` -> [("gates.a", 1), ("run.x", 2)]: both spellings are one path."""
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items += _flatten(value, path + ".")
        else:
            items.append((path, value))
    return items


def gate_variables(environ: Mapping[str, str], gates: Sequence[str], file: str) -> list[tuple[str, str]]:
    """`HOLOLOAD_GATE_<NAME>` variables as ("gates.<name>", expression), names matched case-insensitively.

    Args:
        environ: the process environment.
        gates: the run-level gate names of the scenario (after its profile).
        file: the scenario file, for error messages.

    Raises:
        ScenarioError: a variable names no gate, or a name matches two gates that differ only in case.
    """
    by_folded: dict[str, list[str]] = {}
    for gate in gates:
        by_folded.setdefault(gate.casefold(), []).append(gate)
    items: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    for var in sorted(v for v in environ if v.startswith(GATE_PREFIX)):
        wanted = var[len(GATE_PREFIX) :]
        matches = by_folded.get(wanted.casefold(), [])
        if len(matches) == 1:
            items.append((f"gates.{matches[0]}", environ[var]))
            continue
        if matches:
            problems.append((var, f"matches gates {', '.join(matches)}, which differ only in case; rename one"))
            continue
        hint = difflib.get_close_matches(wanted.casefold(), list(by_folded), n=1)
        msg = f"names no gate of this scenario ({', '.join(sorted(gates)) or 'it has none'})"
        if hint:
            msg += f"; did you mean {GATE_PREFIX}{hint[0].upper()}?"
        msg += "; unset it, or add the gate with --set gates.<name>=..."
        problems.append((var, msg))
    if problems:
        raise ScenarioError(file, problems)
    return items


def apply_budget(
    data: dict[str, Any],
    file: str,
    *,
    profile: str = DEFAULT,
    environ: Mapping[str, str] | None = None,
    sets: Sequence[str] = (),
) -> AppliedBudget:
    """Apply the profile, then `HOLOLOAD_GATE_*` variables, then `--set` items to a raw document (in place).

    Args:
        data: the parsed TOML of the scenario.
        file: its name, for error messages.
        profile: the chosen profile (see `choose_profile`).
        environ: where `HOLOLOAD_GATE_*` variables are read from (none when omitted).
        sets: `key.path=value` items from the command line.

    Returns:
        The profile name and every override applied, with its source.

    Raises:
        ScenarioError: an unknown profile or gate variable, or a path that cannot be set (exit 2).
    """
    applied: list[Override] = []
    items = profile_items(data, profile, file)
    for key, value in items or []:
        set_path(data, key.split("."), value, file=file, item=f'{PROFILES_KEY}.{profile}."{key}"')
        applied.append(Override(key, value, "profile"))
    gates = data.get("gates")
    names = list(gates) if isinstance(gates, Mapping) else []
    for key, value in gate_variables(environ or {}, names, file):
        data.setdefault("gates", {})[key.split(".", 1)[1]] = value
        applied.append(Override(key, value, "env"))
    for item in sets:
        path, value = parse_override(item)
        set_path(data, path, value, file="--set", item=item)
        applied.append(Override(".".join(path), value, "--set"))
    return AppliedBudget(profile, tuple(applied), labelled_only=items is None and profile != DEFAULT)
