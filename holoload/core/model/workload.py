"""Sustained-load model: phases of concurrent workloads, each a weighted mix of SQL operations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from holoload.core.model.txn import TxnKeys
from holoload.core.model.types import Identifier, PerSecond, PositiveSeconds, Seconds, Strict
from holoload.core.outcome import ErrorClass


class SeqParam(Strict):
    """Ids unique across all writers and endpoints (block allocator)."""

    gen: Literal["seq"]
    start: int = 1


class UniformParam(Strict):
    """A uniform integer in [min, max]."""

    gen: Literal["uniform"]
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> UniformParam:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class UniformFloatParam(Strict):
    """A uniform float in [min, max) (`max` only through rounding)."""

    gen: Literal["uniform_float"]
    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> UniformFloatParam:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class ZipfParam(Strict):
    """A Zipf-distributed integer in [1, n]: a few hot keys, a long tail."""

    gen: Literal["zipf"]
    n: int = Field(ge=1)
    s: float = Field(default=1.1, gt=0, allow_inf_nan=False)


class ChoiceParam(Strict):
    """One of `values`, optionally weighted."""

    gen: Literal["choice"]
    values: list[Any] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> ChoiceParam:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"weights has {len(self.weights)} items, values has {len(self.values)}")
            if not any(self.weights):
                raise ValueError("weights: at least one must be positive")
        return self


class ConstParam(Strict):
    """Always the same value."""

    gen: Literal["const"]
    value: Any


class NowParam(Strict):
    """The current UTC time (timestamptz)."""

    gen: Literal["now"]


class TextParam(Strict):
    """Random ASCII letters of a fixed length."""

    gen: Literal["text"]
    length: int = Field(ge=0, le=1_000_000)


Param = Annotated[
    SeqParam | UniformParam | UniformFloatParam | ZipfParam | ChoiceParam | ConstParam | NowParam | TextParam,
    Field(discriminator="gen"),
]


class LedgerSpec(Strict):
    """Track this write's ids in the acknowledged-write ledger; the checker reads them back.

    The op's first `seq` param is the id (one per row). `unique = true` says the id column is
    unique (a primary key): only then is an in-doubt write retried, with the same ids, and a
    23505 on that retry proves the earlier attempt applied (recovered, never counted twice).
    """

    table: Identifier
    id_column: Identifier = "id"
    unique: bool = True


class Operation(Strict):
    """One SQL statement of a workload's mix, with generated parameters.

    A single statement (`rows = 1`) reads its result rows and counts them as the op's rows (1
    for a statement that returns none). `rows > 1` makes a multi-row insert: `params` describe
    one row and are drawn per row.
    `insert_mode` says how: a VALUES list (`sql` then ends in `VALUES` and holoload appends the
    tuples), `executemany` of `sql`, or `copy` (COPY into `table`'s `columns`).
    """

    name: Identifier
    sql: str = ""
    weight: float = Field(default=1.0, gt=0)
    params: list[Param] = []
    rows: int = Field(default=1, ge=1, le=100_000)
    insert_mode: Literal["values", "executemany", "copy"] = "values"
    table: str | None = None
    columns: list[str] | None = None
    ledger: LedgerSpec | None = Field(default=None, description="record acknowledged / failed / in-doubt ids")

    @model_validator(mode="before")
    @classmethod
    def _no_fetch(cls, data: Any) -> Any:
        # `fetch` was accepted and ignored: a single statement's result rows are always read
        # (and counted as the op's rows), so no value of it could change anything.
        if isinstance(data, dict) and "fetch" in data:
            raise ValueError(
                "fetch is not a setting (any more): every statement's result rows are read, and a "
                "single statement counts the rows it returned; remove `fetch`"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Operation:
        if self.ledger is not None and self.id_param is None:
            raise ValueError('ledger needs a { gen = "seq" } param: its values are the ids')
        if self.insert_mode == "copy" and self.rows > 1:
            if not self.table or not self.columns:
                raise ValueError("insert_mode 'copy' needs table and columns")
            if len(self.columns) != len(self.params):
                raise ValueError(f"{len(self.columns)} columns but {len(self.params)} params")
        elif not self.sql.strip():
            raise ValueError("sql is required (except for insert_mode 'copy')")
        return self

    @property
    def id_param(self) -> int | None:
        """Index of the first `seq` param (the ledger's id), or None."""
        return next((i for i, p in enumerate(self.params) if isinstance(p, SeqParam)), None)


class RetryPolicy(Strict):
    """Retries of failed operations (only errors of the listed classes)."""

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: Seconds = 0.01
    max_backoff: Seconds = 1.0
    budget: float = Field(default=0.1, ge=0, le=1, description="retries / operations at most")
    on: list[ErrorClass] = [ErrorClass.RETRYABLE]


class RateStage(Strict):
    """A ramp stage: move linearly to `target` over `duration`."""

    duration: Seconds
    target: PerSecond = Field(ge=0)


Executor = Literal["iterations", "constant-concurrency", "ramping-concurrency", "constant-rate", "ramping-rate"]


#: The load-shaping keys each executor reads (docs/scenarios.md, "Executors"); the others are errors.
EXECUTOR_KEYS: dict[str, frozenset[str]] = {
    "iterations": frozenset({"iterations", "concurrency", "think_time"}),
    "constant-concurrency": frozenset({"concurrency", "think_time"}),
    "ramping-concurrency": frozenset({"start", "stages", "think_time"}),
    "constant-rate": frozenset({"rate", "max_inflight", "queue_depth"}),
    "ramping-rate": frozenset({"start", "stages", "max_inflight", "queue_depth"}),
}
_SHAPE_KEYS = frozenset().union(*EXECUTOR_KEYS.values())


class Workload(TxnKeys):
    """A weighted mix of operations (or transactions: `kind`, core/model/txn.py) driven by one executor."""

    name: Identifier
    executor: Executor
    ops: list[Operation] = Field(min_length=1)
    iterations: int | None = Field(default=None, ge=1, description="iterations: total operations")
    concurrency: int | None = Field(default=None, ge=1, le=10_000, description="closed loop: in flight per endpoint")
    think_time: Seconds = 0.0
    rate: PerSecond | None = Field(default=None, gt=0, description="constant-rate: ops/s over all endpoints")
    start: PerSecond = Field(default=0, ge=0, description="ramping-*: value before the first stage")
    stages: list[RateStage] = []
    max_inflight: int = Field(default=64, ge=1, le=10_000, description="open loop: connections in all")
    queue_depth: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="open loop: arrivals that may wait per endpoint while all its connections are busy "
        "(beyond: dropped, counted); default as many as the endpoint's connections",
    )
    endpoints: dict[str, float] | None = Field(default=None, description="node name -> traffic weight")
    retry: RetryPolicy = RetryPolicy()
    seed: int | None = None

    @model_validator(mode="after")
    def _executor_fields(self) -> Workload:
        needs = {
            "iterations": ("iterations",),
            "constant-concurrency": ("concurrency",),
            "ramping-concurrency": ("stages",),
            "constant-rate": ("rate",),
            "ramping-rate": ("stages",),
        }[self.executor]
        missing = [f for f in needs if not getattr(self, f)]
        if missing:
            raise ValueError(f"executor '{self.executor}' needs {', '.join(missing)}")
        takes = EXECUTOR_KEYS[self.executor]
        stray = sorted(self.model_fields_set & (_SHAPE_KEYS - takes))
        if stray:
            raise ValueError(
                f"{', '.join(stray)} does not apply to executor '{self.executor}' "
                f"(it takes {', '.join(sorted(takes))}); remove it or change the executor"
            )
        names = [op.name for op in self.ops]
        if len(set(names)) != len(names):
            raise ValueError(f"op names must be unique within workload '{self.name}'")
        return self

    @property
    def open_loop(self) -> bool:
        return self.executor.endswith("-rate")


class GateSpec(Strict):
    """A gate with options; a plain string in the file means `{ expr = "..." }`."""

    expr: str
    abort_on_fail: bool = False
    grace: Seconds = 0.0
    no_data: Literal["fail", "report"] = Field(
        default="fail",
        description="a gate whose data was never observed: fail (default), or report 'no data' "
        "without failing the run (it never passes either way)",
    )


GateValue = str | GateSpec


class Phase(Strict):
    """Workloads that run together; phases run one after another."""

    name: Identifier
    duration: PositiveSeconds | None = None
    measured: bool = Field(default=True, description="false: excluded from run-level gates (warm-up)")
    workloads: list[Workload] = Field(min_length=1)
    gates: dict[Identifier, GateValue] = {}

    @model_validator(mode="after")
    def _ends(self) -> Phase:
        unbounded = [w.name for w in self.workloads if w.executor != "iterations" and not _staged(w)]
        if self.duration is None and unbounded:
            raise ValueError(f"phase '{self.name}' needs a duration (workloads {', '.join(unbounded)} never end)")
        names = [w.name for w in self.workloads]
        if len(set(names)) != len(names):
            raise ValueError(f"workload names must be unique within phase '{self.name}'")
        return self


def _staged(workload: Workload) -> bool:
    return workload.executor.startswith("ramping") and bool(workload.stages)


class Setup(Strict):
    """Statements run once on every data node before the first phase (DDL, seed data)."""

    sql: list[str] = []


def selectors(phases: list[Phase]) -> set[str]:
    """Op selectors gates may use: `workload`, `op`, `workload.op`."""
    names: set[str] = set()
    for phase in phases:
        for w in phase.workloads:
            names.add(w.name)
            for op in w.ops:
                names.update((op.name, f"{w.name}.{op.name}"))
    return names


def gate_text(value: GateValue) -> str:
    return value if isinstance(value, str) else value.expr


def gate_spec(value: GateValue) -> GateSpec:
    return GateSpec(expr=value) if isinstance(value, str) else value
