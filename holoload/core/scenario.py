"""Scenario model: *what* load to run (the sales_facts ingest canary shape), validated strictly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from holoload.core import (
    server_gates,  # noqa: F401 - registers delta(), rate(), max(topology.x)...
    validation,
)
from holoload.core.errors import ScenarioError
from holoload.core.gates import GateSyntaxError, check_gate, parse_gate
from holoload.core.load_gates import keyword_problems
from holoload.core.model_types import Identifier, Label, PositiveSeconds, Rows, Strict
from holoload.core.workload import GateValue, Phase, Setup, gate_text, selectors

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
    """The table the canary fills."""

    name: Identifier = "sales_facts"


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


class ChaosAction(Strict):
    """One chaos action fired between (or during) batches."""

    name: Identifier
    action: Literal["split", "sql"]
    enabled: bool = True
    after_batch: int | None = Field(default=None, ge=1, description="fire after this 1-based batch")
    during_batch: int | None = Field(
        default=None, ge=1, description="fire while this 1-based batch runs (after its before-count)"
    )
    key: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | Literal["auto"] = Field(
        default="auto",
        description="split key (primary key value); auto = max(order_id) + half the next batch",
    )
    table_id: int = Field(default=100, ge=0, le=2**64 - 1, description="HoloFusion table id for the split key")
    sql: str | None = Field(default=None, description="statement for action = 'sql'; {table} filled in")
    timeout: PositiveSeconds = 60.0

    @model_validator(mode="after")
    def _one_trigger(self) -> ChaosAction:
        if (self.after_batch is None) == (self.during_batch is None):
            raise ValueError("give exactly one of after_batch or during_batch")
        if self.action == "sql" and not self.sql:
            raise ValueError("action 'sql' needs a sql statement")
        return self

    @property
    def batch_index(self) -> int:
        return self.after_batch if self.after_batch is not None else self.during_batch or 0


class SnapshotSpec(Strict):
    """Metrics and topology snapshots taken before and after each batch."""

    enabled: bool = True
    timeout: PositiveSeconds = 10.0


class RunSettings(Strict):
    """Per-run limits."""

    statement_timeout: PositiveSeconds = 300.0
    connect_timeout: PositiveSeconds = 10.0
    control_timeout: PositiveSeconds = Field(
        default=30.0, description="row counts, metrics and topology queries: a hung node fails them"
    )
    results_dir: str = "results"


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
    gates: dict[Identifier, GateValue] = Field(
        default_factory=dict, description="name -> gate expression; an empty string disables it"
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
        if self.phases and self.chaos:
            raise ValueError(
                "chaos actions fire around batches (after_batch/during_batch); "
                "scenarios with [[phases]] cannot use them yet"
            )
        total = self.total_batches
        for action in self.chaos:
            if action.batch_index > total:
                raise ValueError(
                    f"chaos action '{action.name}' refers to batch {action.batch_index}, "
                    f"but the scenario has {total} batches"
                )
        return self

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
LOAD_SCALARS = ("phases", "dropped", "errors_total")


def parse_scenario(text: str, file: str, overrides: list[str] | None = None) -> Scenario:
    """Parse, override and validate scenario text, including its gate expressions.

    Args:
        text: the TOML document.
        file: its name, for error messages.
        overrides: `key.path=value` items applied before validation.

    Raises:
        ScenarioError: bad TOML, bad keys/values, or bad gates (exit 2).
    """
    data = validation.parse_toml(text, file)
    validation.apply_overrides(data, overrides or [])
    scenario = validation.validate(Scenario, data, file)
    problems = gate_problems(scenario)
    if problems:
        raise ScenarioError(file, problems)
    return scenario


def gate_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """Parse and type-check every active gate against the scenario's ops and scalars."""
    scalars = CANARY_SCALARS if scenario.is_canary else LOAD_SCALARS
    problems = _check_gates("gates", scenario.active_gates(), scenario.ops, scalars)
    for i, phase in enumerate(scenario.phases):
        texts = {name: gate_text(v) for name, v in phase.gates.items() if gate_text(v).strip()}
        problems += _check_gates(f"phases[{i}].gates", texts, sorted(selectors([phase])), scalars)
    return problems


def _check_gates(where: str, gates: dict[str, str], ops: list[str], scalars: tuple[str, ...]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, text in gates.items():
        try:
            gate = parse_gate(text)
        except GateSyntaxError as exc:
            problems.append((f"{where}.{name}", str(exc)))
            continue
        for problem in check_gate(gate, ops, scalars) + keyword_problems(gate):
            problems.append((f"{where}.{name}", problem))
    return problems


def dump(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain data, for summary.json."""
    return scenario.model_dump(mode="json")
