"""Budgets by environment: [profiles.NAME], HOLOLOAD_GATE_<NAME> and --set, in that order, and where they show."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from holoload.core.config.profiles import AppliedBudget, Override, choose_profile
from holoload.core.errors import ExitCode, ScenarioError
from holoload.core.model.scenario import parse_scenario, parse_scenario_budget
from holoload.shell.ci_outputs import junit_xml, summary_markdown
from holoload.shell.cli import dispatch
from tests.support import REPO

SALES = (REPO / "scenarios" / "sales_facts.toml").read_text()
PROFILES = """
[profiles.pr]
"gates.p95_20k" = "p95(batch_20k) <= 12s"
"run.stop_grace" = "10s"

[profiles.main.gates]
p95_50k = "p95(batch_50k) <= 15s"
"""


def parse(**kwargs: object) -> tuple[dict[str, str], AppliedBudget]:
    scenario, budget = parse_scenario_budget(SALES + PROFILES, "s.toml", **kwargs)  # type: ignore[arg-type]
    return scenario.active_gates(), budget


def test_profile_pr_replaces_its_gates_and_run_settings() -> None:
    """--env pr applies [profiles.pr]: the gate and run.stop_grace change; other gates stay."""
    gates, budget = parse(profile="pr")
    scenario, _ = parse_scenario_budget(SALES + PROFILES, "s.toml", profile="pr")
    assert gates["p95_20k"] == "p95(batch_20k) <= 12s"
    assert gates["p95_50k"] == "p95(batch_50k) <= 20s"
    assert scenario.run.stop_grace == 10.0
    assert budget.env == "pr"
    assert [o.to_dict() for o in budget.overrides] == [
        {"key": "gates.p95_20k", "value": "p95(batch_20k) <= 12s", "source": "profile"},
        {"key": "run.stop_grace", "value": "10s", "source": "profile"},
    ]


def test_a_profile_written_as_a_sub_table_is_the_same_as_dotted_keys() -> None:
    """[profiles.main.gates] p95_50k = ... sets gates.p95_50k."""
    gates, budget = parse(profile="main")
    assert gates["p95_50k"] == "p95(batch_50k) <= 15s"
    assert budget.overrides == (Override("gates.p95_50k", "p95(batch_50k) <= 15s", "profile"),)


def test_no_profile_chosen_means_default_and_no_overrides() -> None:
    """Without --env or HOLOLOAD_ENV the file's own gates hold, and the budget says "default"."""
    gates, budget = parse()
    assert gates["p95_20k"] == "p95(batch_20k) <= 8s"
    assert budget == AppliedBudget("default", ())
    assert budget.describe() == "default (no overrides)"


def test_flag_wins_over_the_environment_variable() -> None:
    """--env beats HOLOLOAD_ENV; a blank value counts as not given."""
    assert choose_profile("pr", {"HOLOLOAD_ENV": "main"}) == "pr"
    assert choose_profile(None, {"HOLOLOAD_ENV": "main"}) == "main"
    assert choose_profile(None, {"HOLOLOAD_ENV": "  "}) == "default"


def test_unknown_profile_names_the_file_and_the_profiles_there() -> None:
    """--env prr is exit 2 with the file, a did-you-mean and the available profiles."""
    with pytest.raises(ScenarioError) as err:
        parse(profile="prr")
    assert err.value.exit_code == ExitCode.BAD_INPUT
    text = str(err.value)
    assert text.startswith("s.toml: profiles.prr:")
    assert "did you mean 'pr'" in text and "profiles here: main, pr" in text


def test_gate_variable_overrides_one_gate_case_insensitively() -> None:
    """HOLOLOAD_GATE_P95_20K replaces gate p95_20k; an empty value disables a gate."""
    env = {"HOLOLOAD_GATE_P95_20K": "p95(batch_20k) <= 9s", "HOLOLOAD_GATE_split_seen": "", "PATH": "/bin"}
    gates, budget = parse(environ=env)
    assert gates["p95_20k"] == "p95(batch_20k) <= 9s"
    assert "split_seen" not in gates
    assert {(o.key, o.source) for o in budget.overrides} == {("gates.p95_20k", "env"), ("gates.split_seen", "env")}


def test_order_is_profile_then_gate_variable_then_set() -> None:
    """All three set gates.p95_20k: --set wins, and every step is listed in applied order."""
    gates, budget = parse(
        profile="pr",
        environ={"HOLOLOAD_GATE_P95_20K": "p95(batch_20k) <= 9s"},
        sets=["gates.p95_20k=p95(batch_20k) <= 7s"],
    )
    assert gates["p95_20k"] == "p95(batch_20k) <= 7s"
    steps = [(o.value, o.source) for o in budget.overrides if o.key == "gates.p95_20k"]
    assert steps == [
        ("p95(batch_20k) <= 12s", "profile"),
        ("p95(batch_20k) <= 9s", "env"),
        ("p95(batch_20k) <= 7s", "--set"),
    ]
    assert budget.describe().startswith("profile pr (4 overrides: gates.p95_20k [profile], ")


def test_gate_variable_sees_a_gate_the_profile_added() -> None:
    """The profile applies first, so a variable may override a gate only the profile defines."""
    extra = '[profiles.soak]\n"gates.p99_20k" = "p99(batch_20k) <= 30s"\n'
    scenario, _ = parse_scenario_budget(
        SALES + extra, "s.toml", profile="soak", environ={"HOLOLOAD_GATE_P99_20K": "p99(batch_20k) <= 25s"}
    )
    assert scenario.active_gates()["p99_20k"] == "p99(batch_20k) <= 25s"


def test_gate_variable_naming_no_gate_is_exit_2_with_a_hint() -> None:
    """HOLOLOAD_GATE_P95_2K: exit 2, the variable as key path, the closest gate's variable as hint."""
    with pytest.raises(ScenarioError) as err:
        parse(environ={"HOLOLOAD_GATE_P95_2K": "p95(batch_20k) <= 9s"})
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert "s.toml: HOLOLOAD_GATE_P95_2K: names no gate" in str(err.value)
    assert "did you mean HOLOLOAD_GATE_P95_20K?" in str(err.value)


def test_gate_variable_with_a_bad_expression_is_exit_2() -> None:
    """An override is validated like the file: an unknown op in the variable's gate is exit 2."""
    with pytest.raises(ScenarioError, match="gates.p95_20k: unknown op 'batch_2k'"):
        parse(environ={"HOLOLOAD_GATE_P95_20K": "p95(batch_2k) <= 9s"})


def test_a_broken_profile_fails_validation_even_when_not_chosen() -> None:
    """A typo in [profiles.bad] is found on a default run too, and the message names the profile."""
    bad = '[profiles.bad]\n"gates.p95_20k" = "p95(batch_2k) <= 1s"\n'
    with pytest.raises(ScenarioError, match=r"unknown op 'batch_2k'.*\(with \[profiles.bad\] applied\)"):
        parse_scenario(SALES + bad, "s.toml")


def test_a_profile_may_not_set_profiles() -> None:
    """`profiles.x` inside a profile is refused with the profile's key path."""
    with pytest.raises(ScenarioError, match=r'profiles.pr."profiles.main.x"'):
        parse_scenario_budget(SALES + '[profiles.pr]\n"profiles.main.x" = 1\n', "s.toml", profile="pr")


def test_profile_values_through_list_indexes_like_set() -> None:
    """`chaos.0.enabled = false` in a profile addresses list items by index, as --set does."""
    scenario, _ = parse_scenario_budget(
        SALES + '[profiles.pg]\n"chaos.0.enabled" = false\n"gates.split_seen" = ""\n', "s.toml", profile="pg"
    )
    assert scenario.enabled_chaos() == [] and "split_seen" not in scenario.active_gates()


def budget_summary() -> dict[str, object]:
    applied = AppliedBudget(
        "pr",
        (Override("gates.p95_20k", "p95(batch_20k) <= 12s", "profile"), Override("gates.split", "", "env")),
    )
    return {"verdict": "PASS", "scenario": {"name": "sales_facts"}, "run": {}, "gates": [], **applied.to_summary()}


def test_junit_properties_carry_env_and_each_override_with_its_source() -> None:
    """junit.xml: property env=pr and override.<key> = <value> (<source>)."""
    suite = ET.fromstring(junit_xml(budget_summary()).split("\n", 1)[1])
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["env"] == "pr"
    assert props["override.gates.p95_20k"] == '"p95(batch_20k) <= 12s" (profile)'
    assert props["override.gates.split"] == '"" (env)'


def test_markdown_has_a_budget_section() -> None:
    """summary.md names the profile at the top and lists the overrides in a table."""
    text = summary_markdown(budget_summary())
    assert "budget `pr`" in text.splitlines()[2]
    assert "### Budget" in text
    assert '| gates.p95_20k | `"p95(batch_20k) &lt;= 12s"` | profile |' not in text  # code spans are literal
    assert '| gates.p95_20k | `"p95(batch_20k) <= 12s"` | profile |' in text
    assert '| gates.split | `""` | env |' in text


def test_validate_command_applies_env_and_gate_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`holoload validate --env pr` reports the budget; an unknown profile or gate variable is exit 2."""
    path = tmp_path / "s.toml"
    path.write_text(SALES + PROFILES)
    monkeypatch.setenv("HOLOLOAD_GATE_P95_50K", "p95(batch_50k) <= 9s")
    assert dispatch(["validate", "--env", "pr", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "budget profile pr (3 overrides: gates.p95_20k [profile], run.stop_grace [profile], gates.p95_50k [env])" in out
    )
    assert dispatch(["validate", "--env", "nope", str(path)]) == 2
    assert "profiles here: main, pr" in capsys.readouterr().out
    monkeypatch.setenv("HOLOLOAD_GATE_NOPE", "failed_batches == 0")
    assert dispatch(["validate", str(path)]) == 2
    assert "HOLOLOAD_GATE_NOPE: names no gate" in capsys.readouterr().out


def test_run_with_unknown_profile_exits_2_before_any_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """HOLOLOAD_ENV naming no profile: exit 2, no results directory, no cluster started."""
    path = tmp_path / "s.toml"
    path.write_text(SALES + PROFILES)
    monkeypatch.setenv("HOLOLOAD_ENV", "staging")
    assert dispatch([str(path), "--results-dir", str(tmp_path / "r")]) == 2
    assert f"{path}: profiles.staging: no profile 'staging'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_environment_is_only_a_label_for_a_scenario_without_profiles() -> None:
    """HOLOLOAD_ENV=ci set for every scenario in CI: one without [profiles] runs its own budget,
    labelled with the environment; one with profiles must name it (tested above)."""
    scenario, applied = parse_scenario_budget(SALES, "s.toml", profile="ci")
    assert applied.env == "ci" and applied.overrides == () and applied.labelled_only
    assert applied.describe().startswith("environment ci, no profile")
    assert scenario.gates == parse_scenario_budget(SALES, "s.toml")[0].gates


def test_validate_describes_a_phases_scenario_by_phases_and_a_canary_by_batches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 15: a phases scenario used to print `0 batches`."""
    assert (
        dispatch(["validate", str(REPO / "scenarios" / "soak.toml"), str(REPO / "scenarios" / "sales_facts.toml")]) == 0
    )
    out = capsys.readouterr().out
    assert "scenario 'soak', 2 phases, 3 workloads, " in out
    assert "scenario 'sales_facts', 6 batches, " in out
    assert "0 batches" not in out
