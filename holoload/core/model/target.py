"""Target model: *where* the load goes (endpoints, metrics, topology source, chaos capabilities)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from holoload.core.config import validation
from holoload.core.model.types import PositiveSeconds, Strict
from holoload.core.outcome import ErrorClass, ErrorRules

DataSharing = Literal["shared", "per_node"]
NodeRole = Literal["any", "primary", "standby"]


def _postgres_dsn(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ValueError("expected a DSN such as postgresql://user@127.0.0.1:55432/dbname")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL such as http://127.0.0.1:18081/metrics")
    return value


Dsn = Annotated[str, AfterValidator(_postgres_dsn)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Node(Strict):
    """One PostgreSQL-wire endpoint and its optional HTTP surfaces."""

    name: str = Field(default="", description="display name; defaults to node<N>")
    dsn: Dsn
    metrics_url: HttpUrl | None = Field(
        default=None, description="GET returns name=value lines or Prometheus text; omitted: SQL metrics"
    )
    health_url: HttpUrl | None = Field(
        default=None, description="base URL serving /live, /ready, /state (HoloFusion: http://host:18081)"
    )
    role: NodeRole = Field(
        default="any",
        description="standby: read-only (a replica); workloads without `endpoints` and the checker skip it",
    )


class TopologySource(Strict):
    """Where the topology snapshots come from."""

    source: Literal["holoctl", "holoctl_state", "partitions", "sql", "command", "none"] = Field(
        default="none",
        description="holoctl: the topology table (snapshots keep it byte for byte); holoctl_state: state JSON "
        "merged with the table's counts; partitions: local PostgreSQL; sql: `query` mapped by `columns`; "
        "command: argv printing topology JSON",
    )
    holoctl: str | None = Field(default=None, description="holoctl binary; HOLOCTL_BIN overrides")
    holoctl_target: str = "127.0.0.1:15051"
    timeout: PositiveSeconds = 30.0
    interval: PositiveSeconds = Field(default=5.0, description="topology polling during sustained load")
    row_counts: Literal["estimate", "exact"] = Field(
        default="estimate",
        description="partitions: per-partition rows from the server's statistics (no table read) or by "
        "count(*) (exact, but every poll reads every row and shows in the server's tup_returned)",
    )
    query: str | None = Field(default=None, description="sql: the query ({table} is filled in)")
    columns: dict[str, str] = Field(default={}, description="sql: model field -> result column")
    command: list[str] = Field(default=[], description="command: argv (no shell)")

    @model_validator(mode="after")
    def _needs(self) -> TopologySource:
        if self.source == "sql" and (not self.query or not self.columns):
            raise ValueError("topology.source 'sql' needs query and columns")
        if self.source == "command" and not self.command:
            raise ValueError("topology.source 'command' needs command (an argv list)")
        return self


class SplitCapability(Strict):
    """How a `split` chaos action is carried out on this target."""

    method: Literal["holoctl", "partition", "sql", "none"] = "none"
    sql: str | None = Field(default=None, description="sql: the split statement; {table} and {key} are filled in")
    max_rows: int = Field(
        default=1_000_000,
        ge=0,
        description="partition: most rows one split may move (the smaller side of the key); a split that "
        "would move more is skipped, logged and counted as failed",
    )

    @model_validator(mode="after")
    def _sql_given(self) -> SplitCapability:
        if self.method == "sql" and not self.sql:
            raise ValueError("split.method 'sql' needs split.sql, e.g. ALTER TABLE {table} SPLIT AT VALUES ({key})")
        return self


class ErrorRule(Strict):
    """Reclassify errors whose message matches `pattern` (and whose SQLSTATE is `sqlstate`)."""

    sqlstate: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{5}$")
    pattern: str
    error_class: ErrorClass = Field(alias="class")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Target(Strict):
    """A whole target file."""

    name: str
    description: str = ""
    data: DataSharing = Field(
        default="shared",
        description="shared: every endpoint sees one table; per_node: each node is its own database",
    )
    table_layout: Literal["plain", "range_partitioned"] = "plain"
    nodes: list[Node] = Field(min_length=1, max_length=64)
    topology: TopologySource = TopologySource()
    split: SplitCapability = SplitCapability()
    error_rules: list[ErrorRule] = Field(default=[], description="message-pattern rules, tried in order")
    metrics_interval: PositiveSeconds = Field(default=1.0, description="metrics and health polling interval")
    ready_timeout: PositiveSeconds = Field(default=60.0, description="wait for /ready of every node before load")
    control: dict[Literal["kill", "stop", "start", "restart", "pause", "resume"], list[str]] = Field(
        default={},
        description="argv per node action for chaos on remote clusters ({node} is the node's name; no shell)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if self.split.method == "partition" and self.table_layout != "range_partitioned":
            raise ValueError("split.method 'partition' needs table_layout = 'range_partitioned'")
        empty = [action for action, argv in self.control.items() if not argv]
        if empty:
            raise ValueError(f"control.{empty[0]} is an empty command")
        if self.split.method == "holoctl" and not self.topology.source.startswith("holoctl"):
            raise ValueError("split.method 'holoctl' needs topology.source = 'holoctl' (its target)")
        return self

    def rules(self) -> ErrorRules:
        return ErrorRules([(r.sqlstate, r.pattern, r.error_class) for r in self.error_rules])

    def node_names(self) -> list[str]:
        return [n.name or f"node{i}" for i, n in enumerate(self.nodes, start=1)]

    def writable(self) -> list[bool]:
        """Per endpoint: whether writes, setup and the checker may go there (every role but standby)."""
        return [n.role != "standby" for n in self.nodes]


def parse_target(text: str, file: str) -> Target:
    """Parse and validate target text.

    Raises:
        ScenarioError: bad TOML or bad keys/values (exit 2).
    """
    return validation.validate(Target, validation.parse_toml(text, file), file)


def local_target(dsns: list[str]) -> Target:
    """The target describing the embedded local cluster holoload starts itself."""
    return Target(
        name="local",
        description="embedded throwaway PostgreSQL cluster on 127.0.0.1",
        data="per_node",
        table_layout="range_partitioned",
        nodes=[Node(name=f"node{i}", dsn=dsn) for i, dsn in enumerate(dsns, start=1)],
        topology=TopologySource(source="partitions"),
        split=SplitCapability(method="partition"),
    )


def replicated_target(writer_dsn: str, standby_dsn: str, replication: str, nodes: int) -> Target:
    """The target of the embedded replicated cluster: two endpoints over the same data.

    Args:
        writer_dsn: every node, `target_session_attrs=read-write` (follows the primary).
        standby_dsn: every node, `target_session_attrs=prefer-standby` (reads from a standby).
        replication: "async" or "sync", for the description.
        nodes: how many servers.
    """
    return Target(
        name="local-replicated",
        description=f"embedded PostgreSQL: 1 primary + {nodes - 1} {replication} streaming-replication standby(s)",
        data="shared",
        table_layout="plain",
        nodes=[
            Node(name="primary", dsn=writer_dsn, role="primary"),
            Node(name="standby", dsn=standby_dsn, role="standby"),
        ],
    )
