"""Scenario model: *what* load to run (the sales_facts ingest canary shape), validated strictly."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from holoload.core.config import validation
from holoload.core.model.chaos import CANARY_ACTIONS, ChaosAction, firings

__all__ = ["CANARY_SCALARS", "LOAD_SCALARS", "ChaosAction", "Scenario", "fill_template", "parse_scenario"]
from holoload.core.config.profiles import DEFAULT, AppliedBudget, apply_budget, profile_names
from holoload.core.errors import ScenarioError
from holoload.core.gates.isolation import anomaly_keyword_problems
from holoload.core.gates.language import GateSyntaxError, check_gate, parse_gate
from holoload.core.gates.load import gate_during_tags, gate_phase_names, keyword_problems
from holoload.core.model.txn import txn_problems
from holoload.core.model.types import Identifier, Label, PositiveSeconds, Rows, Strict
from holoload.core.model.workload import GateValue, Phase, Setup, gate_text, selectors

#: The bash canary's batch statement; `{table}` and `{rows}` are filled in per batch.
CANARY_INSERT_SQL = """\
INSERT INTO {table} (order_id, customer_id, merchant_id, region_id, event_day, status, amount_cents)
WITH base AS (SELECT COALESCE(MAX(order_id), 0) AS max_id FROM {table})
SELECT base.max_id + i,
       100000 + (i % 500000),
       1 + (i % 20000),
       1 + (i % 20),
       1 + ((i - 1) / 86400),
       CASE WHEN i % 10 < 6 THEN 'paid'
            WHEN i % 10 < 8 THEN 'shipped'
            WHEN i % 10 < 9 THEN 'pending'
            ELSE 'cancelled' END,
       100 + ((i * 37) % 20000)
FROM base CROSS JOIN generate_series(1, {rows}) AS g(i)"""


def fill_template(sql: str, **values: object) -> str:
    """Replace `{name}` placeholders (and only those): other braces, e.g. JSON literals, stay."""
    for name, value in values.items():
        sql = sql.replace("{" + name + "}", str(value))
    return sql


class TableSpec(Strict):
    """The table the canary fills (and that splits, topology and SQL metrics refer to)."""

    name: Identifier = "sales_facts"
    create: bool = Field(
        default=False,
        description="sustained load: create the canary-shaped table (range partitioned where the target "
        "splits partitions) before setup; a canary always does",
    )


class BatchGroup(Strict):
    """`count` batches of `rows` rows each, reported as op `batch_<label>`."""

    label: Label
    rows: Rows
    count: int = Field(default=1, ge=1, le=10_000)
    sql: str | None = Field(
        default=None,
        description="statement replacing the canary insert; {table} and {rows} are filled in",
    )

    @property
    def op(self) -> str:
        return f"batch_{self.label}"

    def statement(self, table: str) -> str:
        return fill_template(self.sql or CANARY_INSERT_SQL, table=table, rows=self.rows)


class SnapshotSpec(Strict):
    """Metrics and topology snapshots taken before and after each batch."""

    enabled: bool = True
    timeout: PositiveSeconds = 10.0


class ClusterShape(Strict):
    """The embedded cluster a run starts when no --target is given (ignored with one)."""

    nodes: int | None = Field(default=None, ge=1, le=16, description="servers; default: --nodes (3)")
    replication: Literal["none", "async", "sync"] = Field(
        default="none",
        description="none: independent servers (per_node data); async/sync: one primary and hot standbys by "
        "streaming replication (shared data, endpoints 'primary' and 'standby')",
    )

    @model_validator(mode="after")
    def _enough(self) -> ClusterShape:
        if self.replication != "none" and self.nodes is not None and self.nodes < 2:
            raise ValueError(f"a replicated cluster needs at least 2 nodes, got {self.nodes}")
        return self


class RunSettings(Strict):
    """Per-run limits."""

    statement_timeout: PositiveSeconds = 300.0
    connect_timeout: PositiveSeconds = 10.0
    control_timeout: PositiveSeconds = Field(
        default=30.0, description="row counts, metrics and topology queries: a hung node fails them"
    )
    results_dir: str = "results"
    stop_grace: PositiveSeconds = Field(
        default=30.0,
        description="after Ctrl-C/SIGTERM: how long in-flight work may drain (then faults heal and the "
        "checker runs); a second signal stops at once",
    )
    drain: PositiveSeconds = Field(
        default=10.0,
        description="when a phase's time is up (or a stop is asked): how long operations in flight may finish "
        "before they are cancelled (counted as timeouts, their writes in doubt); at most the statement timeout + 5 s",
    )
    workers: int | Literal["auto"] = Field(
        default="auto",
        description="sustained load: worker processes to split it across ('auto': one per CPU, one "
        "process on machines with 2 CPUs or fewer; 1: all in this process); --workers overrides",
    )
    on_worker_loss: Literal["fail", "restart"] = Field(
        default="fail",
        description="a worker process that dies: fail the run, or start a new one for its share",
    )
    worker_restarts: int = Field(default=3, ge=0, le=100, description="restart: new workers allowed in all")
    client_gate: bool = Field(
        default=True,
        description="sustained load: add the gate client.ok, which fails the run when holoload itself was "
        "the bottleneck (loop lag, late windows, arrivals dropped behind schedule)",
    )

    @model_validator(mode="after")
    def _workers_range(self) -> RunSettings:
        if self.workers != "auto" and not 1 <= self.workers <= 256:
            raise ValueError(f"workers must be 'auto' or 1..256, got {self.workers}")
        return self


class Scenario(Strict):
    """A whole scenario file: either canary `batches` or sustained-load `phases`."""

    name: Identifier
    description: str = ""
    table: TableSpec = TableSpec()
    batches: list[BatchGroup] = []
    setup: Setup = Setup()
    phases: list[Phase] = []
    window: PositiveSeconds = Field(default=1.0, description="aggregation window for live stats and gates")
    chaos: list[ChaosAction] = []
    snapshots: SnapshotSpec = SnapshotSpec()
    run: RunSettings = RunSettings()
    cluster: ClusterShape = ClusterShape()
    gates: dict[Identifier, GateValue] = Field(
        default_factory=dict, description="name -> gate expression; an empty string disables it"
    )
    profiles: dict[Identifier, dict[str, Any]] = Field(
        default_factory=dict,
        description="budgets by environment: name -> key.path overrides, chosen with --env or HOLOLOAD_ENV",
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        if bool(self.batches) == bool(self.phases):
            raise ValueError("give either [[batches]] (an ingest canary) or [[phases]] (sustained load)")
        labels = [b.label for b in self.batches]
        dupes = {label for label in labels if labels.count(label) > 1}
        if dupes:
            raise ValueError(f"batch labels must be unique, repeated: {', '.join(sorted(dupes))}")
        phase_names = [p.name for p in self.phases]
        if len(set(phase_names)) != len(phase_names):
            raise ValueError("phase names must be unique")
        total = self.total_batches
        for action in self.chaos:
            if self.is_canary:
                self._check_canary_chaos(action, total)
            else:
                self._check_load_chaos(action)
        names = [a.name for a in self.chaos]
        if len(set(names)) != len(names):
            raise ValueError("chaos action names must be unique")
        return self

    @staticmethod
    def _check_canary_chaos(action: ChaosAction, total: int) -> None:
        if not action.is_canary:
            raise ValueError(
                f"chaos action '{action.name}': a canary ([[batches]]) fires actions after_batch or during_batch"
            )
        if action.action not in CANARY_ACTIONS:
            raise ValueError(f"chaos action '{action.name}': a canary supports split and sql, not {action.action}")
        if isinstance(action.key, str) and action.key != "auto":
            raise ValueError(f"chaos action '{action.name}': a canary's split key is an integer or auto")
        if action.batch_index > total:
            raise ValueError(
                f"chaos action '{action.name}' refers to batch {action.batch_index}, "
                f"but the scenario has {total} batches"
            )

    def _check_load_chaos(self, action: ChaosAction) -> None:
        if action.is_canary:
            raise ValueError(
                f"chaos action '{action.name}': after_batch/during_batch need [[batches]]; "
                "with [[phases]] use at, every, during or after_iterations"
            )
        phases = [p.name for p in self.phases]
        if action.during is not None and action.during not in phases:
            raise ValueError(
                f"chaos action '{action.name}': during = '{action.during}' is not a phase ({', '.join(phases)})"
            )
        workloads = {w.name for p in self.phases for w in p.workloads}
        if action.workload is not None and action.workload not in workloads:
            raise ValueError(
                f"chaos action '{action.name}': workload '{action.workload}' is not a workload "
                f"({', '.join(sorted(workloads))})"
            )

    @property
    def is_canary(self) -> bool:
        return bool(self.batches)

    @property
    def total_batches(self) -> int:
        return sum(b.count for b in self.batches)

    @property
    def total_rows(self) -> int:
        return sum(b.count * b.rows for b in self.batches)

    @property
    def ops(self) -> list[str]:
        """Op names gates may refer to."""
        if self.is_canary:
            return [b.op for b in self.batches]
        return sorted(selectors(self.phases))

    def active_gates(self) -> dict[str, str]:
        """Run-level gates as name -> expression, without disabled (empty) ones."""
        return {name: gate_text(v) for name, v in self.gates.items() if gate_text(v).strip()}

    def enabled_chaos(self) -> list[ChaosAction]:
        return [a for a in self.chaos if a.enabled]


#: Scalars the canary publishes to gates (see docs/scenarios.md).
CANARY_SCALARS = (
    "batches",
    "failed_batches",
    "baseline_count",
    "final_count",
    "expected_final_count",
    "split_triggered",
    "split_expected",
    "chaos_failed",
)


#: Scalars a sustained-load run publishes to gates.
LOAD_SCALARS = (
    "phases",
    "dropped",
    "errors_total",
    # ledger ids recorded by the writers
    "acknowledged_ids",
    "failed_ids",
    "in_doubt_ids",
    "recovered_ids",
    # the checker's findings (no data unless every ledger was read back)
    "lost",
    "duplicated",
    "partial",
    "unexpected",
    "recovered",
    "in_doubt_absent",
    "untracked",
    # holoload's own health (see core/stats/client_health.py)
    "client_saturated",
    "client_strained_windows",
    "client_late_drops",
)


def parse_scenario(text: str, file: str, overrides: list[str] | None = None) -> Scenario:
    """Parse, override and validate scenario text, including its gate expressions.

    Args:
        text: the TOML document.
        file: its name, for error messages.
        overrides: `key.path=value` items applied before validation.

    Raises:
        ScenarioError: bad TOML, bad keys/values, or bad gates (exit 2).
    """
    return parse_scenario_budget(text, file, sets=overrides or [])[0]


def parse_scenario_budget(
    text: str,
    file: str,
    *,
    profile: str = DEFAULT,
    environ: Mapping[str, str] | None = None,
    sets: Sequence[str] = (),
) -> tuple[Scenario, AppliedBudget]:
    """Parse a scenario under a budget: `[profiles.NAME]`, then `HOLOLOAD_GATE_*`, then `--set`.

    Every profile of the file is checked too (applied alone to the file as written), so a typo
    in the `pr` profile is an error on main as well.

    Args:
        text: the TOML document.
        file: its name, for error messages.
        profile: the profile to apply ("default": none unless the file has `[profiles.default]`).
        environ: the environment `HOLOLOAD_GATE_*` variables are read from.
        sets: `key.path=value` items of the command line (applied last, so they win).

    Returns:
        The validated scenario and the budget that was applied.

    Raises:
        ScenarioError: bad TOML, keys, values, gates, profile or gate variable (exit 2).
    """
    return parse_scenario_data(validation.parse_toml(text, file), file, profile=profile, environ=environ, sets=sets)


def parse_scenario_data(
    raw: Mapping[str, Any],
    file: str,
    *,
    profile: str = DEFAULT,
    environ: Mapping[str, str] | None = None,
    sets: Sequence[str] = (),
) -> tuple[Scenario, AppliedBudget]:
    """`parse_scenario_budget` of a document already parsed (a dict, as TOML would give).

    Raises:
        ScenarioError: bad keys, values, gates, profile or gate variable (exit 2).
    """
    document = copy.deepcopy(dict(raw))
    data = copy.deepcopy(document)
    budget = apply_budget(data, file, profile=profile, environ=environ, sets=sets)
    scenario = _validated(data, file)
    for name in profile_names(document):
        if name != profile:
            _check_profile(document, name, file)
    return scenario, budget


def _validated(data: dict[str, Any], file: str) -> Scenario:
    scenario = validation.validate(Scenario, data, file)
    problems = gate_problems(scenario) + chaos_trigger_problems(scenario) + workload_problems(scenario)
    if problems:
        raise ScenarioError(file, problems)
    return scenario


def _check_profile(raw: dict[str, Any], name: str, file: str) -> None:
    """Apply profile `name` alone to a copy of the file and validate it; problems name the profile."""
    data = copy.deepcopy(raw)
    try:
        apply_budget(data, file, profile=name)
        _validated(data, file)
    except ScenarioError as exc:
        raise ScenarioError(
            file, [(path, f"{what} (with [profiles.{name}] applied)") for path, what in exc.problems]
        ) from None


def workload_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Transactional workloads' keys that do not fit their kind, and a name reused with another kind or table."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, tuple[str, str, str]] = {}
    for p, phase in enumerate(scenario.phases):
        for w, workload in enumerate(phase.workloads):
            where = f"phases[{p}].workloads[{w}]"
            problems += txn_problems(workload, where)
            if not workload.is_txn:
                continue
            shape = (workload.kind, workload.txn_table)
            first = seen.setdefault(workload.name, (*shape, where))
            if first[:2] != shape:
                problems.append(
                    (
                        f"{where}.kind",
                        f"workload '{workload.name}' is {first[0]} on table {first[1]} at {first[2]}: one history per "
                        "workload name, so give it the same kind and table, or another name",
                    )
                )
    return problems


def chaos_trigger_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Enabled time-triggered faults whose first firing cannot fall inside their frame.

    The frame is the `during` phase, or every phase together; an action planned at or past its
    end would silently never fire (and change the verdict for reasons that have nothing to do
    with the database), so it is an input error naming the trigger's key. Checked after `--set`.
    """
    if scenario.is_canary:
        return []
    problems: list[tuple[str, str]] = []
    durations = {p.name: (i, p.duration) for i, p in enumerate(scenario.phases)}
    for i, action in enumerate(scenario.chaos):
        if not action.enabled or action.after_iterations is not None:
            continue
        if action.during is not None:
            index, horizon = durations.get(action.during, (0, None))
            frame = f"phase '{action.during}' lasts {horizon:g}s (phases[{index}].duration)" if horizon else ""
        else:
            lengths = [d for _i, d in durations.values()]
            horizon = None if any(d is None for d in lengths) else sum(d or 0.0 for d in lengths)
            frame = f"the phases last {horizon:g}s together" if horizon else ""
        if horizon is None or next(firings(action, horizon, random.Random(0)), None) is not None:
            continue
        if action.every is not None:
            key = "start" if action.start is not None else "every"
            first = action.start if action.start is not None else action.every
        else:
            key, first = "at", action.at or 0.0
        problems.append(
            (
                f"chaos[{i}].{key}",
                f"'{action.name}' would first fire at {first:g}s, but {frame}: it could never fire; "
                "fire it earlier, lengthen the phase, or disable it (enabled = false)",
            )
        )
    return problems


def gate_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Parse and type-check every active gate against the scenario's ops and scalars."""
    scalars = CANARY_SCALARS if scenario.is_canary else LOAD_SCALARS
    names = _Names(
        phases=frozenset(p.name for p in scenario.phases),
        faults=frozenset(n for a in scenario.chaos for n in (a.name, a.action)),
        txns=frozenset(w.name for p in scenario.phases for w in p.workloads if w.is_txn),
    )
    problems = _check_gates("gates", scenario.active_gates(), scenario.ops, scalars, names)
    for i, phase in enumerate(scenario.phases):
        texts = {name: gate_text(v) for name, v in phase.gates.items() if gate_text(v).strip()}
        problems += _check_gates(f"phases[{i}].gates", texts, sorted(selectors([phase])), scalars, names)
    return problems


@dataclass(frozen=True, slots=True)
class _Names:
    """Phase names and chaos names/kinds that gate arguments may refer to."""

    phases: frozenset[str]
    faults: frozenset[str]
    txns: frozenset[str] = frozenset()  # transactional workloads (what isolation() reads)


def _check_gates(
    where: str, gates: dict[str, str], ops: list[str], scalars: tuple[str, ...], names: _Names
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, text in gates.items():
        try:
            gate = parse_gate(text)
        except GateSyntaxError as exc:
            problems.append((f"{where}.{name}", str(exc)))
            continue
        found = check_gate(gate, ops, scalars, sorted(names.faults)) + keyword_problems(gate)
        found += anomaly_keyword_problems(gate)
        for call in gate.calls():
            if call.function.name == "isolation" and call.op not in names.txns:
                found.append(
                    f'{call.text}: \'{call.op}\' is no transactional workload (kind = "list_append" or "bank"; '
                    f"these are: {_known(names.txns)})"
                )
        for phase in sorted(gate_phase_names(gate) - names.phases):
            found.append(f"phase={phase}: no such phase (phases: {', '.join(sorted(names.phases)) or 'none'})")
        for tag in sorted(gate_during_tags(gate) - names.faults):
            found.append(f"during={tag}: no chaos action or action kind {tag!r} (known: {_known(names.faults)})")
        problems += [(f"{where}.{name}", problem) for problem in found]
    return problems


def _known(values: frozenset[str]) -> str:
    return ", ".join(sorted(values)) or "none"


def dump(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data, for summary.json."""
    return scenario.model_dump(mode="json")
