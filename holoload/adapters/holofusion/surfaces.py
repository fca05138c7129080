"""One object per run that speaks to every surface of a target: SQL, /metrics, topology, split.

Each node has two connections: a *work* connection for batches and their row counts, and a
*control* connection (opened on first use) for snapshots, splits and chaos SQL, so a chaos
action that races a batch never shares a connection with it.

Every step on a connection runs through `work()` or `session()`: a step that times out, is
cancelled or breaks its connection leaves nothing behind (`pg.discard`: its statement is
cancelled, its transaction rolled back, its connection dropped) and the next step gets a
fresh connection.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import anyio
import asyncpg

from holoload.adapters.holofusion.holoctl import Holoctl, resolve_holoctl
from holoload.adapters.holofusion.metrics_http import fetch_text
from holoload.adapters.holofusion.topology_sources import (
    CommandJsonSource,
    SqlPartitionSource,
    SqlQuerySource,
    TopologyReading,
    TopologySource,
    make_source,
)
from holoload.adapters.pg import localpg
from holoload.adapters.pg.connect import (
    DISCARD_TIMEOUT_S,
    close_quietly,
    connect,
    count_rows,
    describe_error,
    discard,
    flush_stats,
    quote_ident,
    reusable_after,
)
from holoload.core.errors import HololoadError, SetupError
from holoload.core.model.scenario import fill_template
from holoload.core.model.target import Target
from holoload.core.topology.splitkey import row_v1_split_key, to_hex

#: What talking to a node may raise besides our own errors (translated where it is caught).
#: InternalClientError: asyncpg's protocol state after the server killed an idle connection.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class SplitOutcome:
    """What a split did: ok, the key(s) used, and the command/DDL output to keep."""

    ok: bool
    detail: str
    output: str


class TargetSurfaces:
    """Connections and clients for one target; open with `async with`.

    Args:
        target: the validated target.
        connect_timeout_s / statement_timeout_s: applied to every SQL connection.
        control_timeout_s: bound on counts, metrics and topology queries (a hung node fails them).
        env: environment used to resolve HOLOCTL_BIN.
    """

    def __init__(
        self,
        target: Target,
        *,
        connect_timeout_s: float,
        statement_timeout_s: float,
        control_timeout_s: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.names = target.node_names()
        self._connect_timeout_s = connect_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self.control_timeout_s = control_timeout_s
        # cleaning up after a step may take as long as a control read: a hung node costs no more
        self._discard_s = min(DISCARD_TIMEOUT_S, control_timeout_s)
        self._env = dict(os.environ) if env is None else env
        self.conns: list[asyncpg.Connection] = []
        self._control: dict[tuple[int, str], asyncpg.Connection] = {}
        self._control_lock = anyio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._holoctl: Holoctl | None = None

    async def __aenter__(self) -> TargetSurfaces:
        """Connect to every node (in parallel); any failure is a SetupError (exit 3)."""
        if self.target.topology.source.startswith("holoctl") or self.target.split.method == "holoctl":
            binary = resolve_holoctl(self.target.topology.holoctl, self._env)
            self._holoctl = Holoctl(
                binary,
                self.target.topology.holoctl_target,
                timeout_s=self.target.topology.timeout,
                env=self._env,
            )
        slots: list[asyncpg.Connection | None] = [None] * len(self.target.nodes)
        failures: list[SetupError] = []
        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(self.target.nodes)):
                    tg.start_soon(self._open, slots, failures, i)
        finally:
            if failures or None in slots:
                with anyio.CancelScope(shield=True):
                    for conn in slots:
                        await close_quietly(conn)
        if failures:
            raise failures[0]
        self.conns = [c for c in slots if c is not None]
        if any(n.metrics_url for n in self.target.nodes):
            self._http = aiohttp.ClientSession()
        return self

    async def _open(self, slots: list[asyncpg.Connection | None], failures: list[SetupError], i: int) -> None:
        try:
            slots[i] = await self._connect(i)
        except SetupError as exc:
            failures.append(exc)

    async def _connect(self, i: int, purpose: str = "work") -> asyncpg.Connection:
        return await connect(
            self.target.nodes[i].dsn,
            connect_timeout_s=self._connect_timeout_s,
            statement_timeout_s=self._statement_timeout_s,
            name=self.names[i],
            purpose=purpose,
        )

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            for conn in [*self.conns, *self._control.values()]:
                await close_quietly(conn)
            if self._http is not None:
                await self._http.close()

    @property
    def shared(self) -> bool:
        return self.target.data == "shared"

    def data_nodes(self) -> range:
        """Indexes of nodes holding distinct data: just the first when data is shared."""
        return range(1) if self.shared else range(len(self.conns))

    async def control(self, node: int, purpose: str = "control") -> asyncpg.Connection:
        """The node's connection for one purpose, (re)opened when missing or closed.

        Purposes that may run at the same time get their own connection ("control": snapshots and
        topology; "chaos": splits and chaos SQL; "metrics": the SQL metrics poller; "checker").
        Opening is serialised, so two tasks never open (and leak) two connections for one slot.
        """
        async with self._control_lock:
            conn = self._control.get((node, purpose))
            if conn is None or conn.is_closed():
                await close_quietly(conn)
                conn = self._control[(node, purpose)] = await self._connect(node, purpose)
            return conn

    @asynccontextmanager
    async def session(self, node: int, purpose: str = "control") -> AsyncIterator[asyncpg.Connection]:
        """One step on the node's connection for `purpose`.

        A step that ends in a timeout, a cancellation, a broken connection or with a transaction
        left open discards the connection (statement cancelled, transaction rolled back, backend
        gone: `pg.discard`); the next step gets a new one. A plain server error keeps it.
        """
        conn = await self.control(node, purpose)
        try:
            yield conn
            await flush_stats(conn)  # the step's counters show in the SQL metrics now, not 10 s later
        except BaseException as exc:
            if not reusable_after(conn, exc):
                await self.drop(node, purpose, conn)
            raise
        if conn.is_in_transaction():  # a step must not leave a transaction (and its locks) behind
            await self.drop(node, purpose, conn)

    async def drop(self, node: int, purpose: str, conn: asyncpg.Connection | None = None) -> None:
        """Discard the node's connection for `purpose` (shielded, bounded); the next use reopens it.

        With `conn`, only that connection (it is forgotten only if it still holds the slot).
        """
        key = (node, purpose)
        if conn is None:
            conn = self._control.pop(key, None)
        elif self._control.get(key) is conn:
            del self._control[key]
        await discard(conn, self.target.nodes[node].dsn, timeout_s=self._discard_s)

    async def reach(self, node: int, purpose: str) -> None:
        """Open the node's connection for `purpose` (if needed) within the control timeout.

        Raises:
            SetupError: the node refused, or did not accept a connection in time (a hung node).
        """
        try:
            with anyio.fail_after(self.control_timeout_s):
                await self.control(node, purpose)
        except TimeoutError as exc:
            limit = f"{self.control_timeout_s:g}s"
            raise SetupError(f"{self.names[node]} did not accept a connection within {limit}") from exc

    @asynccontextmanager
    async def work(self, node: int) -> AsyncIterator[asyncpg.Connection]:
        """One step on the node's work connection; cut short, the connection is discarded.

        A discarded work connection stays in `conns` closed: `ensure_connected` reopens it.
        """
        conn = self.conns[node]
        try:
            yield conn
            await flush_stats(conn)  # setup SQL, a canary batch: in the SQL metrics within one poll
        except BaseException as exc:
            if not reusable_after(conn, exc):
                await discard(conn, self.target.nodes[node].dsn, timeout_s=self._discard_s)
            raise

    async def prepare_table(self, table: str) -> None:
        """Create (or recreate, when partitioned) and empty the canary table on each data node.

        Raises:
            SetupError: the server refused (permissions, unsupported DDL) or did not answer.
        """
        for i in self.data_nodes():
            try:
                with anyio.fail_after(self._statement_timeout_s):
                    async with self.work(i) as conn:
                        if self.target.table_layout == "range_partitioned":
                            await localpg.prepare_partitioned_table(conn, table)
                        else:
                            await localpg.prepare_plain_table(conn, table)
            except DB_ERRORS as exc:
                raise SetupError(f"cannot prepare table {table} on {self.names[i]}: {describe_error(exc)}") from exc

    async def counts(self, table: str) -> list[int]:
        """Row count on each data node (each bounded by the control timeout)."""
        return [await self.count_on(i, table) for i in self.data_nodes()]

    async def count_on(self, node: int, table: str) -> int:
        """`count(*)` on the node's work connection (reopened if it was lost or discarded), bounded."""
        with anyio.fail_after(self.control_timeout_s):
            await self.ensure_connected(node)
            async with self.work(node) as conn:
                return await count_rows(conn, table)

    async def ensure_connected(self, node: int) -> None:
        """Reconnect to a node whose connection was lost (a restarted node rejoins the run).

        Raises:
            SetupError: the node still cannot be reached.
        """
        if not self.conns[node].is_closed():
            return
        await close_quietly(self.conns[node])
        self.conns[node] = await self._connect(node)

    async def metrics_snapshots(self, table: str) -> list[tuple[str, bool, str]]:
        """(node name, ok, raw text) per node, fetched concurrently, each within the control timeout."""
        out: list[tuple[str, bool, str]] = [(name, False, "") for name in self.names]

        async def one(i: int) -> None:
            node = self.target.nodes[i]
            try:
                with anyio.fail_after(self.control_timeout_s):
                    if node.metrics_url and self._http is not None:
                        text = await fetch_text(self._http, node.metrics_url)
                    else:
                        async with self.session(i) as conn:
                            text = await localpg.metrics_text(conn, table)
                out[i] = (self.names[i], True, text)
            except (*DB_ERRORS, HololoadError) as exc:  # recorded as the snapshot; never fatal
                out[i] = (self.names[i], False, f"ERROR: {describe_error(exc)}\n")

        async with anyio.create_task_group() as tg:
            for i in range(len(self.conns)):
                tg.start_soon(one, i)
        return out

    def _topology_source(self, table: str) -> TopologySource | None:
        """The target's topology source for `table` (None when the target has none)."""
        cfg = self.target.topology
        timeout = self.control_timeout_s
        if cfg.source in ("holoctl", "holoctl_state") and self._holoctl is not None:
            return make_source(cfg.source, holoctl=self._holoctl, timeout_s=timeout)
        if cfg.source == "partitions":
            getters = [functools.partial(self.control, i) for i in self.data_nodes()]
            return SqlPartitionSource(getters, table, timeout_s=timeout, row_counts=cfg.row_counts)
        if cfg.source == "sql":
            assert cfg.query is not None
            query = fill_template(cfg.query, table=quote_ident(table))
            return SqlQuerySource(functools.partial(self.control, 0), query, cfg.columns, timeout_s=timeout)
        if cfg.source == "command":
            return CommandJsonSource(cfg.command, timeout_s=timeout)
        return None

    async def topology_reading(self, table: str) -> TopologyReading | None:
        """One reading of the target's topology (errors are data), or None without a source."""
        source = self._topology_source(table)
        if source is None:
            return None
        reading = await source.read()
        if not reading.ok and isinstance(source, (SqlPartitionSource, SqlQuerySource)):
            # a read cut short by its timeout may still run on a node: start every node afresh
            for i in self.data_nodes() if isinstance(source, SqlPartitionSource) else range(1):
                await self.drop(i, "control")
        return reading

    async def split(
        self, table: str, key: int | str, table_id: int, next_rows: int, *, timeout_s: float | None = None
    ) -> SplitOutcome:
        """Split the range holding `key` (or, for "auto", max(pk) + half the next batch) on each data node.

        The nodes split at the same time, each within `timeout_s` (default: the statement
        timeout + 5 s): a node that fails or times out is reported in the outcome and the others
        are still split. A node's split cut short by its timeout is cancelled and rolled back,
        and its connection discarded, before this returns (up to `pg.DISCARD_TIMEOUT_S` more).
        """
        method = self.target.split.method
        if method == "none":
            return SplitOutcome(False, f"target '{self.target.name}' has no split method", "")
        bound_s = self._statement_timeout_s + 5 if timeout_s is None else timeout_s
        nodes = list(self.data_nodes())
        slots: list[SplitOutcome | None] = [None] * len(nodes)

        async def one(slot: int, i: int) -> None:
            slots[slot] = await self._split_node(method, i, table, key, table_id, next_rows, bound_s)

        async with anyio.create_task_group() as tg:
            for slot, i in enumerate(nodes):
                tg.start_soon(one, slot, i)
        outcomes = [o for o in slots if o is not None]
        ok = len(outcomes) == len(nodes) and all(o.ok for o in outcomes)
        return SplitOutcome(ok, "; ".join(o.detail for o in outcomes), "".join(o.output for o in outcomes))

    async def _split_node(
        self, method: str, i: int, table: str, key: int | str, table_id: int, next_rows: int, bound_s: float
    ) -> SplitOutcome:
        try:
            await self.reach(i, "chaos")
            with anyio.fail_after(bound_s):  # a hung node must not hold up the others
                async with self.session(i, "chaos") as conn:
                    pk = key if isinstance(key, int) else await _auto_key(conn, table, next_rows)
                    return await self._split_one(method, conn, i, table, table_id, pk)
        except TimeoutError:
            return SplitOutcome(False, f"{self.names[i]}: split timed out after {bound_s:g}s (rolled back)", "")
        except (*DB_ERRORS, HololoadError, ValueError) as exc:
            why = exc if isinstance(exc, (HololoadError, ValueError)) else describe_error(exc)
            return SplitOutcome(False, f"{self.names[i]}: split failed: {why}", "")

    async def _split_one(
        self, method: str, conn: asyncpg.Connection, i: int, table: str, table_id: int, pk: int
    ) -> SplitOutcome:
        if method == "holoctl":
            return await self._split_holoctl(table_id, pk)
        if method == "sql":
            assert self.target.split.sql is not None
            sql = fill_template(self.target.split.sql, table=quote_ident(table), key=pk)
            status = str(await conn.execute(sql))
            return SplitOutcome(True, f"{self.names[i]}: {sql}: {status}", status + "\n")
        return await self._split_partition(conn, i, table, pk)

    async def _split_holoctl(self, table_id: int, pk: int) -> SplitOutcome:
        assert self._holoctl is not None
        hex_key = to_hex(row_v1_split_key(table_id, pk))
        result = await self._holoctl.split(hex_key)
        ok = result.returncode == 0
        detail = f"holoctl split at pk {pk} (key {hex_key}): exit {result.returncode}"
        return SplitOutcome(ok, detail, result.stdout + result.stderr)

    async def _split_partition(self, conn: asyncpg.Connection, i: int, table: str, pk: int) -> SplitOutcome:
        done = await localpg.split_partition(conn, table, pk, max_rows=self.target.split.max_rows)
        detail = f"{self.names[i]}: split at {pk} -> {done.describe()}"
        return SplitOutcome(True, detail, detail + "\n")

    async def run_sql(self, node: int, sql: str, *, timeout_s: float | None = None) -> str:
        """Run a statement on the node's chaos connection (safe beside a running batch).

        Bounded by `timeout_s` (default: the statement timeout + 5 s); cut short, it is cancelled
        and rolled back. A statement that leaves a transaction open (`BEGIN; LOCK ...`) is rolled
        back and reported: a step never leaves locks behind.

        Raises:
            SetupError: the node did not accept a connection within the control timeout.
            TimeoutError: it did not finish in time.
            ValueError: it left a transaction open.
        """
        bound_s = self._statement_timeout_s + 5 if timeout_s is None else timeout_s
        await self.reach(node, "chaos")
        with anyio.fail_after(bound_s):
            async with self.session(node, "chaos") as conn:
                status = str(await conn.execute(sql))
                if conn.is_in_transaction():
                    raise ValueError(f"the statement left a transaction open; it was rolled back ({status})")
        return status


async def _auto_key(conn: asyncpg.Connection, table: str, next_rows: int) -> int:
    max_id = await conn.fetchval(f"SELECT COALESCE(MAX(order_id), 0) FROM {quote_ident(table)}")
    return int(max_id) + max(1, next_rows // 2)
