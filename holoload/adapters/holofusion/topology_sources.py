"""Topology sources: holoctl, local partitions, any SQL query or JSON command -> one `Topology`.

Every source has a `name` and `async read() -> TopologyReading`. A read never raises for a
failing cluster: a command that exits non-zero, a node that does not answer, output that
does not parse, or a read that outlives its timeout all come back as `error` text, so a
snapshot that cannot be taken is recorded rather than ending the run. Constructors raise
`ValueError` for a bad configuration (that is a mistake in the target file, not the cluster).

`make_source(kind, **kwargs)` maps the target file's `topology.source` to a class:

    "holoctl"       HoloctlTableSource(holoctl=Holoctl(...))   `holoctl topology`, the table
    "holoctl_state" HoloctlStateSource(holoctl=Holoctl(...))   `holoctl state` merged with the table
    "partitions"    SqlPartitionSource(conns=[conn or async getter per data node], table="t")
    "sql"           SqlQuerySource(conn=conn or async getter, query="...", columns={...})
    "command"       CommandJsonSource(argv=["/path/to/tool", "--json"], timeout_s=10)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
import asyncpg

from holoload.adapters.holofusion.holoctl import Holoctl
from holoload.adapters.pg import localpg
from holoload.adapters.pg.connect import describe_error
from holoload.adapters.workers.process import CommandResult, run_command
from holoload.core.errors import HololoadError
from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.io import (
    NODE_STATE_UNKNOWN,
    check_columns,
    merge_table_records,
    parse_topology_json,
    topology_from_rows,
)
from holoload.core.topology.model import (
    Placement,
    SplitHealth,
    Topology,
    format_count,
)
from holoload.core.topology.table import parse_table, render_table

#: The target file's `topology.source` values that have a source (all but "none"), by the same names.
SOURCE_KINDS = ("holoctl", "holoctl_state", "partitions", "sql", "command")
#: Node state of rows whose source does not report membership (SQL queries, minimal JSON).
#: Role of a local PostgreSQL partition: the only copy, no lease.
ROLE_PRIMARY = "primary"
#: Extra time a multi-command read gets over its commands' own timeout (process teardown).
GRACE_S = 5.0

#: Errors of talking to a database or process, described by SQLSTATE where there is one.
IO_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
#: Errors a read turns into `TopologyReading.error` (anything else is a bug and propagates).
READ_ERRORS = (*IO_ERRORS, ValueError, HololoadError)
#: What a partition read that races a split sees: a partition without bound between DETACH and
#: ATTACH, or one dropped between listing and counting. Read again after each pause; only a
#: node still failing after the last is a problem (a table that is really missing, for one).
SPLIT_RACES = (localpg.SplitUnderWay, asyncpg.UndefinedTableError)
RACE_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8)

#: An asyncpg connection, or an async callable returning one (e.g. a node's control connection).
ConnectionGetter = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class TopologyReading:
    """One read of a topology source.

    Args:
        topology: the normalised topology, or None when the read failed.
        raw: what the source printed, kept as the snapshot text. For holoctl sources the
            exact stdout (HoloctlStateSource: the state JSON followed by the table); SQL
            sources print nothing of their own, so theirs is `render_table(topology)`;
            empty when nothing usable came back.
        error: why the read failed, or None.
        notes: degradations of a successful read ("holoctl state failed; topology from the
            table"), for the run's problem list.
    """

    topology: Topology | None
    raw: str
    error: str | None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the read produced a topology."""
        return self.error is None and self.topology is not None


class TopologySource(Protocol):
    """Where topology readings come from; `read` is bounded by a timeout and never raises."""

    name: str

    async def read(self) -> TopologyReading:
        """Take one reading."""
        ...


def failed(error: str, raw: str = "") -> TopologyReading:
    """A reading that produced no topology.

    Args:
        error: why, for people.
        raw: whatever output there was.

    Returns:
        The reading.
    """
    return TopologyReading(None, raw, error)


async def _bounded(name: str, timeout_s: float, read: Callable[[], Awaitable[TopologyReading]]) -> TopologyReading:
    """Run `read`, turning a timeout or a translated error into a failed reading."""
    try:
        with anyio.move_on_after(timeout_s) as scope:
            return await read()
    except READ_ERRORS as exc:
        return failed(f"{name}: {_describe(exc)}")
    assert scope.cancelled_caught
    return failed(f"timeout: {name} did not answer within {timeout_s:g}s")


def _describe(exc: BaseException) -> str:
    """Database and I/O errors by class and SQLSTATE; our own errors (bad output) by message."""
    return str(describe_error(exc)) if isinstance(exc, IO_ERRORS) else str(exc)


# --- holoctl --------------------------------------------------------------------------------


class HoloctlStateSource:
    """`holoctl state` (structured) with record counts merged in from `holoctl topology`.

    Both commands run concurrently. Counts are taken from the table only for rows whose
    (node, shard) and range match the state (a split between the two commands leaves the
    moved rows unknown rather than wrong). When `state` fails or does not parse, the table
    alone is the topology; when the table fails, counts stay unknown ("n/a", partial).

    Args:
        holoctl: the holoctl client (each command bounded by its `timeout_s`).
        timeout_s: bound on the whole read; default: holoctl's timeout plus GRACE_S.
        name: label used in errors and notes.
    """

    def __init__(self, holoctl: Holoctl, *, timeout_s: float | None = None, name: str = "holoctl") -> None:
        self.holoctl = holoctl
        self.timeout_s = holoctl.timeout_s + GRACE_S if timeout_s is None else timeout_s
        self.name = name

    async def read(self) -> TopologyReading:
        """Run state and topology; merge; fall back to the table. Never raises."""
        return await _bounded(self.name, self.timeout_s, self._read)

    async def _read(self) -> TopologyReading:
        results: dict[str, CommandResult | str] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run_holoctl, self.holoctl, "state", results)
            tg.start_soon(_run_holoctl, self.holoctl, "topology", results)
        state, state_error = _parse_output("holoctl state", results["state"], parse_state)
        table, table_error = _parse_output("holoctl topology", results["topology"], parse_table)
        # Commands finish in any order; raw is always state first, then the table.
        outputs = (results["state"], results["topology"])
        raw = "".join(r.stdout for r in outputs if isinstance(r, CommandResult) and r.ok)
        if state is not None:
            if table is None:
                return TopologyReading(state, raw, None, (f"record counts unknown: {table_error}",))
            merged, unmatched = merge_table_records(state, table)
            notes = (f"record counts unknown for {', '.join(unmatched)}: the table disagrees with the state",)
            return TopologyReading(merged, raw, None, notes if unmatched else ())
        if table is not None:
            return TopologyReading(table, raw, None, (f"{state_error}; topology from the table only",))
        return failed(f"{state_error}; {table_error}", raw)


class HoloctlTableSource:
    """`holoctl topology` alone: the ASCII table, parsed.

    Args:
        holoctl: the holoctl client (bounded by its `timeout_s`).
        timeout_s: bound on the read; default: holoctl's timeout plus GRACE_S.
        name: label used in errors.
    """

    def __init__(self, holoctl: Holoctl, *, timeout_s: float | None = None, name: str = "holoctl") -> None:
        self.holoctl = holoctl
        self.timeout_s = holoctl.timeout_s + GRACE_S if timeout_s is None else timeout_s
        self.name = name

    async def read(self) -> TopologyReading:
        """Run and parse `holoctl topology`. Never raises."""
        return await _bounded(self.name, self.timeout_s, self._read)

    async def _read(self) -> TopologyReading:
        results: dict[str, CommandResult | str] = {}
        await _run_holoctl(self.holoctl, "topology", results)
        result = results["topology"]
        topology, error = _parse_output("holoctl topology", result, parse_table)
        raw = result.stdout if isinstance(result, CommandResult) and result.ok else ""
        return TopologyReading(topology, raw, error)


async def _run_holoctl(holoctl: Holoctl, command: str, results: dict[str, CommandResult | str]) -> None:
    """Store the command's result, or the text of why it could not start."""
    try:
        results[command] = await (holoctl.state() if command == "state" else holoctl.topology())
    except HololoadError as exc:
        results[command] = f"holoctl {command}: {exc}"


def _parse_output(
    label: str, result: CommandResult | str, parse: Callable[[str], Topology]
) -> tuple[Topology | None, str | None]:
    if isinstance(result, str):
        return None, result
    if not result.ok:
        detail = result.stderr.strip() or "no output on stderr"
        return None, f"{label} exited {result.returncode}: {detail}"
    try:
        return parse(result.stdout), None
    except ValueError as exc:
        return None, f"{label}: cannot parse its output: {exc}"


# --- local PostgreSQL partitions ----------------------------------------------------------


class SqlPartitionSource:
    """The local PostgreSQL partition layout: each node's range partitions of one table.

    Node ids are 1-based positions in `conns`. Nodes of a per_node cluster hold different
    rows, so each partition is its own shard (`n<node>.<partition>`, role "primary", node
    state "Active"), never a replica of another node's. The SPLIT footer sums every node's
    `holoload_split_log` (reason "manual"). Any node failing fails the reading, naming it.
    The source never closes the connections it is given.

    Args:
        conns: per data node, an asyncpg connection or an async callable returning one
            (TargetSurfaces.control bound to the node, so a closed connection is reopened).
        table: the partitioned table.
        timeout_s: bound on the whole read.
        name: label used in errors.
        row_counts: "exact" (`count(*)` per partition: every poll reads every row) or "estimate"
            (the server's statistics; no table read, so polls leave no trace in tup_returned).
    """

    def __init__(
        self,
        conns: Sequence[Any | ConnectionGetter],
        table: str,
        *,
        timeout_s: float = 30.0,
        name: str = "partitions",
        row_counts: Literal["exact", "estimate"] = "exact",
    ) -> None:
        if not conns:
            raise ValueError("SqlPartitionSource needs at least one connection")
        self.conns = list(conns)
        self.table = table
        self.timeout_s = timeout_s
        self.name = name
        self.row_counts = row_counts

    async def read(self) -> TopologyReading:
        """Read every node's partitions and split log. Never raises."""
        return await _bounded(self.name, self.timeout_s, self._read)

    async def _read(self) -> TopologyReading:
        placements: list[Placement] = []
        attempts = successes = failures = 0
        for i, item in enumerate(self.conns):
            node_id = str(i + 1)
            for delay in (*RACE_RETRY_S, None):
                try:
                    conn = await _connection(item)
                    parts = await localpg.partitions(conn, self.table, counts=self.row_counts)
                    log = await localpg.split_log(conn, self.table)
                    break
                except SPLIT_RACES as exc:  # a split under way: read this node again, quietly
                    if delay is None:
                        return failed(f"{self.name}: node {node_id}: {_describe(exc)}")
                    await anyio.sleep(delay)
                except READ_ERRORS as exc:
                    return failed(f"{self.name}: node {node_id}: {_describe(exc)}")
            placements.extend(partition_placement(node_id, part) for part in parts)
            attempts += log.attempts
            successes += log.successes
            failures += log.failures
        by = (("manual", attempts),) if attempts else ()
        split = SplitHealth(attempts=attempts, successes=successes, failures=failures, attempts_by=by)
        topology = Topology(placements=tuple(placements), split=split, partial=False)
        return TopologyReading(topology, render_table(topology), None)


def partition_placement(node_id: str, part: localpg.Partition) -> Placement:
    """One node's range partition as a placement (shard `n<node>.<partition name>`).

    Args:
        node_id: the node's 1-based id as text.
        part: the partition with its exact row count.

    Returns:
        The placement.
    """
    return Placement(
        node_id=node_id,
        node_state="Active",
        role=ROLE_PRIMARY,
        shard_id=f"n{node_id}.{part.name}",
        range_text=partition_range_text(part.lower, part.upper),
        records=part.rows,
        records_text=format_count(part.rows),
        state="",
    )


def partition_range_text(lower: int | None, upper: int | None) -> str:
    """An integer-key partition's RANGE cell: "all_keys", "[start, 50000)", "[50000, end)".

    Args:
        lower: inclusive lower bound, None for MINVALUE.
        upper: exclusive upper bound, None for MAXVALUE.

    Returns:
        The cell text.
    """
    if lower is None and upper is None:
        return "all_keys"
    lo = "start" if lower is None else str(lower)
    hi = "end" if upper is None else str(upper)
    return f"[{lo}, {hi})"


async def _connection(item: Any | ConnectionGetter) -> Any:
    # An asyncpg connection is not callable; a getter is.
    if callable(item):
        return await item()
    return item


# --- any SQL query --------------------------------------------------------------------------


class SqlQuerySource:
    """A configurable SQL query whose rows describe the topology, mapped to the model by name.

    `columns` maps model fields to result column names. Two row shapes are accepted:

    - one row per shard: `shard_id` and `replicas` (an array of node ids, or text such as
      "{1,2,3}" or "1,2,3"); `leaseholder` is the lease holder's node id; `records`, if
      mapped, is the shard's count and is given to every replica row;
    - one row per replica: `shard_id` and `node_id`; `leaseholder` is either a boolean
      ("this row holds the lease") or the lease holder's node id; `node_state` may be mapped.

    Either shape takes the range from `range` (text used as is) or `start_key`/`end_key`
    (bytes, text or integers, printed like holoctl; NULL or empty is unbounded), and an
    optional `state` (the STATE column). Unmapped: no leaseholder (all rows "replica"),
    records unknown ("n/a", partial), node state `node_state` (default "Unknown").
    There is no split footer (`split` is None).

    CockroachDB example (untested here): `query=COCKROACH_RANGES_QUERY.format(table="t")`,
    `columns=COCKROACH_COLUMNS`, i.e. range_id -> shard_id, start_key/end_key (pretty keys
    such as "…/1/50000" become text bounds), replicas (INT[]) and lease_holder.

    Args:
        conn: an asyncpg connection or an async callable returning one (never closed here).
        query: the SQL text; `args` are its $1.. parameters.
        columns: model field -> result column name.
        timeout_s: bound on the read.
        node_state: membership state given to every node of a per-shard row.
        name: label used in errors.

    Raises:
        ValueError: `columns` names an unknown field, lacks `shard_id`, or has neither or
            both of `replicas` and `node_id`.
    """

    def __init__(
        self,
        conn: Any | ConnectionGetter,
        query: str,
        columns: Mapping[str, str],
        *,
        args: Sequence[Any] = (),
        timeout_s: float = 30.0,
        node_state: str = NODE_STATE_UNKNOWN,
        name: str = "sql",
    ) -> None:
        check_columns(columns)
        self.conn = conn
        self.query = query
        self.columns = dict(columns)
        self.args = tuple(args)
        self.timeout_s = timeout_s
        self.node_state = node_state
        self.name = name

    async def read(self) -> TopologyReading:
        """Run the query and map its rows. Never raises."""
        return await _bounded(self.name, self.timeout_s, self._read)

    async def _read(self) -> TopologyReading:
        conn = await _connection(self.conn)
        records = await conn.fetch(self.query, *self.args)
        topology = topology_from_rows([dict(r.items()) for r in records], self.columns, node_state=self.node_state)
        return TopologyReading(topology, render_table(topology), None)


# --- any command printing JSON --------------------------------------------------------------


class CommandJsonSource:
    """Any command (argv, no shell) that prints a topology as JSON on stdout.

    Accepted shapes (see `parse_topology_json`): `Topology.to_dict()`'s, a minimal one
    (`{"placements": [{"node_id": 1, "shard_id": 7}], "split": null}`), or `holoctl state`
    JSON (detected by its `members` and `shards` keys). The process runs in its own session
    and its whole group is killed when it outlives `timeout_s`.

    Args:
        argv: the program and its arguments.
        timeout_s: bound on the command.
        env: full environment for the child; default: inherit this process's.
        name: label used in errors.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float = 30.0,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "command",
    ) -> None:
        if not argv:
            raise ValueError("CommandJsonSource needs a command (argv is empty)")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.argv = tuple(argv)
        self.timeout_s = timeout_s
        self.env = None if env is None else dict(env)
        self.name = name

    async def read(self) -> TopologyReading:
        """Run the command and parse its stdout. Never raises."""
        return await _bounded(self.name, self.timeout_s + GRACE_S, self._read)

    async def _read(self) -> TopologyReading:
        try:
            result = await run_command(self.argv, timeout_s=self.timeout_s, env=self.env)
        except OSError as exc:
            return failed(f"{self.name}: cannot run {self.argv[0]!r}: {exc}")
        if not result.ok:
            detail = result.stderr.strip() or "no output on stderr"
            return failed(f"{self.name}: exited {result.returncode}: {detail}", result.stdout)
        try:
            topology = parse_topology_json(result.stdout)
        except ValueError as exc:
            return failed(f"{self.name}: cannot parse its output: {exc}", result.stdout)
        return TopologyReading(topology, result.stdout, None)


# --- factory ----------------------------------------------------------------------------------


def make_source(kind: str, **kwargs: Any) -> TopologySource:
    """The source for a target file's `topology.source`.

    Args:
        kind: the target file's `topology.source`: "holoctl" (HoloctlTableSource),
            "holoctl_state" (HoloctlStateSource),
            "partitions" (SqlPartitionSource), "sql" (SqlQuerySource) or "command"
            (CommandJsonSource).
        **kwargs: that class's constructor arguments.

    Returns:
        The source.

    Raises:
        ValueError: unknown kind, or a bad configuration for that kind.
        TypeError: arguments the class does not take.
    """
    factories: dict[str, Callable[..., TopologySource]] = {
        "holoctl": HoloctlTableSource,
        "holoctl_state": HoloctlStateSource,
        "partitions": SqlPartitionSource,
        "sql": SqlQuerySource,
        "command": CommandJsonSource,
    }
    factory = factories.get(kind)
    if factory is None:
        raise ValueError(f"unknown topology source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
    return factory(**kwargs)
