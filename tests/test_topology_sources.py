"""Tests for holoload.adapters.topology_sources against the fake holoctl, real PostgreSQL and scripts."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from holoload.adapters import localpg
from holoload.adapters.cluster import LocalNode
from holoload.adapters.holoctl import Holoctl
from holoload.adapters.pg import quote_ident
from holoload.adapters.surfaces import TargetSurfaces
from holoload.adapters.topology_sources import (
    CommandJsonSource,
    HoloctlStateSource,
    HoloctlTableSource,
    SqlPartitionSource,
    SqlQuerySource,
    TopologyReading,
    make_source,
)
from holoload.core.holoctl_state import parse_state
from holoload.core.splitkey import row_v1_split_key, to_hex
from holoload.core.target import local_target
from holoload.core.topology import Topology
from holoload.core.topology_diff import TopologyChange, diff
from holoload.core.topology_io import (
    COCKROACH_COLUMNS,
    check_columns,
    merge_table_records,
    parse_topology_json,
    topology_from_rows,
)
from holoload.core.topology_table import parse_table, render_table

FAKE = Path(__file__).parent / "fakes" / "fake_holoctl.py"
FIXTURES = Path(__file__).parent / "fixtures" / "holofusion"
TARGET = "127.0.0.1:15051"
SPLIT_KEY = row_v1_split_key(100, 50000)


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


def _env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "FAKE_HOLOCTL_STATE_DIR": str(state_dir)}


def _script(path: Path, body: str) -> Path:
    """An executable Python script run by this interpreter."""
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def _holoctl_script(tmp_path: Path, *, state: str, topology: str, timeout_s: float = 20.0) -> Holoctl:
    """A holoctl whose `state`/`topology` run the given Python bodies; "fake" delegates to the fake."""
    delegate = f"import os\nos.execv({sys.executable!r}, [{sys.executable!r}, {str(FAKE)!r}, *sys.argv[1:]])\n"
    bodies = {name: delegate if body == "fake" else body for name, body in (("state", state), ("topology", topology))}
    script = _script(
        tmp_path / "holoctl",
        "import sys\n"
        + "".join(
            f"def {name}():\n" + "".join(f"    {line}\n" for line in body.splitlines()) for name, body in bodies.items()
        )
        + "state() if sys.argv[-1] == 'state' else topology()\n",
    )
    return Holoctl(str(script), TARGET, timeout_s=timeout_s, env=_env(tmp_path))


def _fixture_printer(name: str) -> str:
    return f"sys.stdout.write(open({str(FIXTURES / name)!r}, encoding='utf-8').read())"


@pytest.fixture
def holoctl(tmp_path: Path) -> Holoctl:
    """A Holoctl client driving the fake CLI with its state in tmp_path."""
    return Holoctl(str(FAKE), TARGET, timeout_s=20.0, env=_env(tmp_path))


def _topology(reading: TopologyReading) -> Topology:
    assert reading.error is None, reading.error
    assert reading.topology is not None
    return reading.topology


# --- holoctl ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_state_source_merges_table_counts_into_the_state(holoctl: Holoctl) -> None:
    """Before the split: state rows with the table's counts, identical to the parsed table."""
    reading = await HoloctlStateSource(holoctl).read()
    topology = _topology(reading)
    table = parse_table(_fixture("holoctl_topology_before_split.txt"))
    assert topology.placements == table.placements
    assert topology.split == parse_state(_fixture("holoctl_state_before_split.json")).split
    assert not topology.partial
    assert reading.notes == ()
    assert reading.raw == _fixture("holoctl_state_before_split.json") + _fixture("holoctl_topology_before_split.txt")
    assert render_table(topology) == _fixture("holoctl_topology_before_split.txt")


@pytest.mark.anyio
async def test_state_source_sees_a_split_recorded_through_the_fake(holoctl: Holoctl) -> None:
    """A split made with holoctl switches the reading; diffing the two readings names the split."""
    source = HoloctlStateSource(holoctl)
    before = _topology(await source.read())
    assert (await holoctl.split(to_hex(SPLIT_KEY))).ok
    after = _topology(await source.read())
    assert render_table(after) == _fixture("holoctl_topology_after_split.txt")
    kinds = [(c.kind, c.subject) for c in diff(before, after)]
    assert kinds == [
        ("range_changed", "shard 1"),
        ("shard_added", "shard 2"),
        ("leaseholder_moved", "shard 2"),
        ("replicas_changed", "shard 2"),
        ("split_attempted", "split"),
        ("split_succeeded", "split"),
    ]


@pytest.mark.anyio
async def test_table_source_reads_the_table_before_and_after_a_split(holoctl: Holoctl) -> None:
    """HoloctlTableSource parses `holoctl topology`; raw is its stdout byte for byte."""
    source = HoloctlTableSource(holoctl)
    before = await source.read()
    assert _topology(before) == parse_table(_fixture("holoctl_topology_before_split.txt"))
    assert before.raw == _fixture("holoctl_topology_before_split.txt")
    assert (await holoctl.split(to_hex(SPLIT_KEY))).ok
    after = await source.read()
    assert _topology(after).shard_count == 2
    assert after.raw == _fixture("holoctl_topology_after_split.txt")


@pytest.mark.anyio
async def test_missing_holoctl_binary_is_an_error_reading_not_an_exception(tmp_path: Path) -> None:
    """A holoctl that cannot be started gives error text from both sources."""
    client = Holoctl(str(tmp_path / "no-such-holoctl"), TARGET)
    for source in (HoloctlStateSource(client), HoloctlTableSource(client)):
        reading = await source.read()
        assert reading.topology is None and not reading.ok
        assert reading.error is not None and "cannot run holoctl" in reading.error
        assert reading.raw == ""


@pytest.mark.anyio
async def test_failing_holoctl_reports_exit_code_and_stderr(tmp_path: Path) -> None:
    """Both commands exit 1: the error quotes each command's exit status and stderr."""
    fail = "sys.stderr.write('Error: status: Unavailable\\n'); sys.exit(1)"
    client = _holoctl_script(tmp_path, state=fail, topology=fail)
    reading = await HoloctlStateSource(client).read()
    assert reading.topology is None
    assert reading.error == (
        "holoctl state exited 1: Error: status: Unavailable; holoctl topology exited 1: Error: status: Unavailable"
    )
    table_reading = await HoloctlTableSource(client).read()
    assert table_reading.error == "holoctl topology exited 1: Error: status: Unavailable"


@pytest.mark.anyio
async def test_state_failure_falls_back_to_the_table(tmp_path: Path) -> None:
    """`state` fails, `topology` works: the table is the topology, with a note saying why."""
    client = _holoctl_script(tmp_path, state="sys.stderr.write('boom\\n'); sys.exit(2)", topology="fake")
    reading = await HoloctlStateSource(client).read()
    assert _topology(reading) == parse_table(_fixture("holoctl_topology_before_split.txt"))
    assert reading.raw == _fixture("holoctl_topology_before_split.txt")
    assert reading.notes == ("holoctl state exited 2: boom; topology from the table only",)


@pytest.mark.anyio
async def test_unparseable_state_falls_back_to_the_table(tmp_path: Path) -> None:
    """`state` exits 0 but prints no JSON: the table is used and the parse error noted."""
    client = _holoctl_script(tmp_path, state="print('not json')", topology="fake")
    reading = await HoloctlStateSource(client).read()
    assert _topology(reading).shard_count == 1
    assert reading.notes[0].startswith("holoctl state: cannot parse its output: holoctl state is not JSON")


@pytest.mark.anyio
async def test_table_failure_keeps_the_state_with_unknown_counts(tmp_path: Path) -> None:
    """`topology` fails: the state topology stands, counts n/a and partial, with a note."""
    client = _holoctl_script(tmp_path, state="fake", topology="sys.exit(1)")
    reading = await HoloctlStateSource(client).read()
    topology = _topology(reading)
    assert topology == parse_state(_fixture("holoctl_state_before_split.json"))
    assert topology.partial
    assert reading.notes == ("record counts unknown: holoctl topology exited 1: no output on stderr",)


@pytest.mark.anyio
async def test_state_and_table_from_either_side_of_a_split_leave_moved_counts_unknown(tmp_path: Path) -> None:
    """State after, table before the split: no count is copied onto a row whose range differs."""
    client = _holoctl_script(
        tmp_path,
        state=_fixture_printer("holoctl_state_after_split.json"),
        topology=_fixture_printer("holoctl_topology_before_split.txt"),
    )
    reading = await HoloctlStateSource(client).read()
    topology = _topology(reading)
    assert topology.shard_count == 2
    assert all(p.records is None for p in topology.placements)
    assert topology.partial
    assert reading.notes[0].startswith("record counts unknown for node 1 shard 1, node 1 shard 2, ")


def test_merge_copies_err_cells_and_counts_by_node_and_shard() -> None:
    """merge_table_records keeps ERR text for unreachable rows and counts elsewhere."""
    state = parse_state(_fixture("holoctl_state_after_split.json"))
    table = parse_table(_fixture("holoctl_topology_after_split.txt")).with_records({("3", "2"): "ERR(Timeout)"})
    merged, unmatched = merge_table_records(state, table)
    assert unmatched == []
    assert merged.placements == table.placements
    assert merged.partial


@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_hung_holoctl_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    """A holoctl that sleeps is killed: the reading reports the timeout within seconds."""
    client = _holoctl_script(tmp_path, state="import time; time.sleep(30)", topology="fake", timeout_s=0.5)
    started = time.monotonic()
    reading = await HoloctlStateSource(client).read()
    assert time.monotonic() - started < 5
    assert reading.notes[0].startswith("holoctl state exited -1: timeout: holoctl state did not finish within 0.5s")
    assert _topology(reading).shard_count == 1
    outer = await HoloctlTableSource(
        _holoctl_script(tmp_path, state="fake", topology="import time; time.sleep(30)", timeout_s=20.0),
        timeout_s=0.5,
    ).read()
    assert outer.error == "timeout: holoctl did not answer within 0.5s"


# --- PostgreSQL -----------------------------------------------------------------------------------


@asynccontextmanager
async def _connections(nodes: list[LocalNode]) -> AsyncIterator[list[Any]]:
    conns = [await asyncpg.connect(node.dsn) for node in nodes]
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.close()


def _table_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _drop(conns: list[Any], table: str) -> None:
    for conn in conns:
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        if await conn.fetchval("SELECT to_regclass($1)", localpg.SPLIT_LOG) is not None:
            await conn.execute(f"DELETE FROM {localpg.SPLIT_LOG} WHERE table_name = $1", table)


async def _fill(conn: Any, table: str, first: int, last: int) -> None:
    await conn.execute(
        f"INSERT INTO {quote_ident(table)} SELECT g, 1, 1, 1, 1, 'ok', 100 FROM generate_series($1::bigint, $2) g",
        first,
        last,
    )


@pytest.mark.cluster
@pytest.mark.anyio
async def test_partition_source_reads_each_nodes_layout_and_split_log(pg_cluster: list[LocalNode]) -> None:
    """Split partitions on real nodes: exact layout and split counts, also through a local target's surfaces."""
    table = _table_name("topo_parts")
    async with _connections(pg_cluster) as conns:
        try:
            for conn in conns:
                await localpg.prepare_partitioned_table(conn, table)
            await _fill(conns[0], table, 1, 1000)
            await _fill(conns[1], table, 1, 300)
            await localpg.split_partition(conns[0], table, 500)
            await localpg.split_partition(conns[1], table, 100)
            with pytest.raises(ValueError):
                await localpg.split_partition(conns[1], table, 100)  # already a boundary: logged as failed
            reading = await SqlPartitionSource(conns, table).read()
            topology = _topology(reading)
            target = local_target([node.dsn for node in pg_cluster])
            async with TargetSurfaces(target, connect_timeout_s=10, statement_timeout_s=30) as surfaces:
                through_target = await surfaces.topology_reading(table)
                assert through_target is not None and through_target.topology == topology
            assert reading.raw == render_table(topology)
            assert [(p.node_id, p.shard_id, p.range_text, p.records) for p in topology.placements] == [
                ("1", f"n1.{table}_min_500", "[start, 500)", 499),
                ("1", f"n1.{table}_500_max", "[500, end)", 501),
                ("2", f"n2.{table}_min_100", "[start, 100)", 99),
                ("2", f"n2.{table}_100_max", "[100, end)", 201),
                ("3", f"n3.{table}_min_max", "all_keys", 0),
            ]
            assert {p.role for p in topology.placements} == {"primary"}
            assert topology.split is not None
            assert (topology.split.attempts, topology.split.successes, topology.split.failures) == (3, 2, 1)
            assert topology.split.attempts_by == (("manual", 3),)
        finally:
            await _drop(conns, table)


@pytest.mark.cluster
@pytest.mark.anyio
async def test_partition_split_between_readings_is_a_removed_and_two_added_shards(
    pg_cluster: list[LocalNode],
) -> None:
    """Diffing partition readings around a split: old partition removed, two new ones, split counted."""
    table = _table_name("topo_pdiff")
    async with _connections(pg_cluster[:1]) as conns:
        try:
            await localpg.prepare_partitioned_table(conns[0], table)
            await _fill(conns[0], table, 1, 10)

            async def control() -> Any:
                return conns[0]

            source = SqlPartitionSource([control], table)
            before = _topology(await source.read())
            await localpg.split_partition(conns[0], table, 5)
            after = _topology(await source.read())
            # Text shard ids sort as text: "5_max" < "min_5" < "min_max".
            assert diff(before, after) == [
                TopologyChange("shard_added", f"shard n1.{table}_5_max", None, "[5, end)"),
                TopologyChange("replicas_changed", f"shard n1.{table}_5_max", None, "1"),
                TopologyChange("shard_added", f"shard n1.{table}_min_5", None, "[start, 5)"),
                TopologyChange("replicas_changed", f"shard n1.{table}_min_5", None, "1"),
                TopologyChange("shard_removed", f"shard n1.{table}_min_max", "all_keys", None),
                TopologyChange("replicas_changed", f"shard n1.{table}_min_max", "1", None),
                TopologyChange("split_attempted", "split", "0", "1"),
                TopologyChange("split_succeeded", "split", "0", "1"),
            ]
        finally:
            await _drop(conns, table)


@pytest.mark.cluster
@pytest.mark.anyio
async def test_partition_source_reports_the_failing_node(pg_cluster: list[LocalNode]) -> None:
    """A missing table or a closed connection is an error naming the node, not an exception."""
    async with _connections(pg_cluster[:2]) as conns:
        missing = await SqlPartitionSource(conns, _table_name("topo_missing")).read()
        assert missing.topology is None
        assert missing.error is not None and missing.error.startswith("partitions: node 1: ")
        assert "42P01" in missing.error  # undefined_table, by SQLSTATE
        table = _table_name("topo_closed")
        try:
            for conn in conns:
                await localpg.prepare_partitioned_table(conn, table)
            closed = await asyncpg.connect(pg_cluster[1].dsn)
            await closed.close()
            reading = await SqlPartitionSource([conns[0], closed], table).read()
            assert reading.error is not None and reading.error.startswith("partitions: node 2: ")
        finally:
            await _drop(conns, table)


AFTER_SPLIT_RANGES = """
SELECT * FROM (VALUES
    (1, ''::bytea, $1::bytea, ARRAY[1, 2, 3], 1, 49999::bigint),
    (2, $1::bytea, ''::bytea, ARRAY[3, 2, 1], 2, 40001::bigint)
) AS r(range_id, start_key, end_key, replicas, lease_holder, row_count)
"""


@pytest.mark.cluster
@pytest.mark.anyio
async def test_sql_query_rows_per_range_map_to_the_after_split_table(pg_cluster: list[LocalNode]) -> None:
    """A CockroachDB-shaped VALUES query (plus a row count) maps to the fixture's placements."""
    async with _connections(pg_cluster[:1]) as conns:
        columns = {**COCKROACH_COLUMNS, "records": "row_count"}
        source = SqlQuerySource(conns[0], AFTER_SPLIT_RANGES, columns, args=(SPLIT_KEY,), node_state="Active")
        reading = await source.read()
        topology = _topology(reading)
        assert topology.placements == parse_table(_fixture("holoctl_topology_after_split.txt")).placements
        assert topology.split is None and not topology.partial
        assert reading.raw == render_table(topology)


@pytest.mark.cluster
@pytest.mark.anyio
async def test_sql_query_rows_per_replica_from_a_table(pg_cluster: list[LocalNode]) -> None:
    """One row per replica from a real table: boolean lease flag, node state column, NULL counts."""
    table = _table_name("topo_ranges")
    qt = quote_ident(table)
    async with _connections(pg_cluster[:1]) as conns:
        conn = conns[0]
        try:
            await conn.execute(
                f"CREATE TABLE {qt} (shard text, node int, holds_lease bool, lo bigint, hi bigint, n bigint, st text)"
            )
            await conn.execute(
                f"INSERT INTO {qt} VALUES ('a', 1, true, NULL, 500, 10, 'Active'), ('a', 2, false, NULL, 500, 10, 'Active'),"
                " ('b', 2, true, 500, NULL, 7, 'Active'), ('b', 5, false, 500, NULL, NULL, 'Draining')"
            )
            columns = {
                "shard_id": "shard",
                "node_id": "node",
                "leaseholder": "holds_lease",
                "start_key": "lo",
                "end_key": "hi",
                "records": "n",
                "node_state": "st",
            }

            async def control() -> Any:
                return conn

            reading = await SqlQuerySource(control, f"SELECT * FROM {qt}", columns).read()
            topology = _topology(reading)
            rows = [
                (p.node_id, p.node_state, p.role, p.shard_id, p.range_text, p.records_text) for p in topology.placements
            ]
            assert rows == [
                ("1", "Active", "leaseholder", "a", "[start, 500)", "10"),
                ("2", "Active", "replica", "a", "[start, 500)", "10"),
                ("2", "Active", "leaseholder", "b", "[500, end)", "7"),
                ("5", "Draining", "replica", "b", "[500, end)", "n/a"),
            ]
            assert topology.partial
            assert topology.unique_records == 17
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {qt}")


@pytest.mark.cluster
@pytest.mark.anyio
async def test_sql_query_errors_are_readings(pg_cluster: list[LocalNode]) -> None:
    """A missing column, a SQL error and a slow query each come back as error text."""
    async with _connections(pg_cluster[:1]) as conns:
        conn = conns[0]
        columns = {"shard_id": "range_id", "replicas": "replicas", "leaseholder": "lease_holder"}
        missing = await SqlQuerySource(conn, "SELECT 1 AS range_id, ARRAY[1] AS replicas", columns).read()
        assert missing.error == (
            "sql: row 1: no column 'lease_holder' (mapped from leaseholder); columns: range_id, replicas"
        )
        bad = await SqlQuerySource(conn, "SELECT * FROM no_such_ranges_table", columns).read()
        assert bad.error is not None and "42P01" in bad.error
        started = time.monotonic()
        slow = await SqlQuerySource(conn, "SELECT pg_sleep(10)", columns, timeout_s=0.3).read()
        assert time.monotonic() - started < 5
        assert slow.error == "timeout: sql did not answer within 0.3s"
        assert await conn.fetchval("SELECT 1") == 1  # the cancelled query left the connection usable


def test_rows_with_text_replica_lists_and_hex_keys() -> None:
    """topology_from_rows reads "{1,2,3}" replica text and prints binary keys as holoctl does."""
    rows = [{"id": 7, "lo": b"", "hi": b"\x00\xff", "reps": "{3,1}", "lh": 3}]
    topology = topology_from_rows(
        rows, {"shard_id": "id", "start_key": "lo", "end_key": "hi", "replicas": "reps", "leaseholder": "lh"}
    )
    assert [(p.node_id, p.role, p.range_text, p.records_text) for p in topology.placements] == [
        ("1", "replica", "[start, 0x00ff)", "n/a"),
        ("3", "leaseholder", "[start, 0x00ff)", "n/a"),
    ]
    assert {p.node_state for p in topology.placements} == {"Unknown"}


def test_rows_with_bad_values_name_row_and_column() -> None:
    """A wrongly typed cell and a duplicated replica are ValueErrors with their location."""
    columns = {"shard_id": "id", "replicas": "reps", "records": "n"}
    with pytest.raises(ValueError, match=r"row 2: column 'n' \(records\): expected a non-negative integer or NULL"):
        topology_from_rows([{"id": 1, "reps": [1], "n": 1}, {"id": 2, "reps": [1], "n": 1.5}], columns)
    with pytest.raises(ValueError, match="node 1 holds shard 1 twice"):
        topology_from_rows([{"id": 1, "reps": [1, 1], "n": None}], columns)


def test_column_mappings_are_checked_when_the_source_is_built() -> None:
    """Unknown fields, no shard_id, or both/neither of replicas and node_id are rejected."""
    for columns, message in (
        ({"shard_id": "a", "replicas": "b", "lease": "c"}, "unknown topology column field"),
        ({"replicas": "b"}, "must map 'shard_id'"),
        ({"shard_id": "a"}, "exactly one of 'replicas'"),
        ({"shard_id": "a", "replicas": "b", "node_id": "c"}, "exactly one of 'replicas'"),
        ({"shard_id": "a", "replicas": "b", "range": "r", "end_key": "e"}, "either 'range'"),
    ):
        with pytest.raises(ValueError, match=message):
            check_columns(columns)
    with pytest.raises(ValueError):
        SqlQuerySource(None, "SELECT 1", {"shard_id": "a"})


# --- commands printing JSON -----------------------------------------------------------------------


def _json_command(tmp_path: Path, payload: str, *, exit_code: int = 0, stderr: str = "") -> list[str]:
    data = tmp_path / "topology.json"
    data.write_text(payload, encoding="utf-8")
    script = tmp_path / "print_topology.py"
    script.write_text(
        "import sys\n"
        f"sys.stdout.write(open({str(data)!r}, encoding='utf-8').read())\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({exit_code})\n",
        encoding="utf-8",
    )
    return [sys.executable, str(script)]


@pytest.mark.anyio
async def test_command_source_reads_topology_to_dict_output(tmp_path: Path) -> None:
    """A command printing Topology.to_dict() JSON round-trips to the same Topology."""
    expected = parse_table(_fixture("holoctl_topology_after_split.txt")).with_records({("3", "1"): "ERR(Timeout)"})
    payload = json.dumps(expected.to_dict())
    reading = await CommandJsonSource(_json_command(tmp_path, payload), timeout_s=20).read()
    assert _topology(reading) == expected
    assert reading.raw == payload


@pytest.mark.anyio
async def test_command_source_accepts_the_minimal_shape_and_holoctl_state(tmp_path: Path) -> None:
    """Only node_id and shard_id are required; holoctl state JSON is recognised as such."""
    minimal = await CommandJsonSource(
        _json_command(tmp_path, '{"placements": [{"node_id": 1, "shard_id": 7}, {"node_id": "2", "shard_id": 7}]}')
    ).read()
    topology = _topology(minimal)
    assert topology.node_states == {"1": "Unknown", "2": "Unknown"}
    assert topology.shard_ids == ("7",) and topology.partial and topology.split is None
    state = await CommandJsonSource(_json_command(tmp_path, _fixture("holoctl_state_after_split.json"))).read()
    assert _topology(state) == parse_state(_fixture("holoctl_state_after_split.json"))


@pytest.mark.anyio
async def test_command_source_failures_are_readings(tmp_path: Path) -> None:
    """Exit status, unparseable output and a program that cannot start become error text."""
    failing = await CommandJsonSource(_json_command(tmp_path, "partial", exit_code=3, stderr="no quorum\n")).read()
    assert failing.error == "command: exited 3: no quorum"
    assert failing.raw == "partial"
    malformed = await CommandJsonSource(_json_command(tmp_path, '{"placements": [{"shard_id": 1}]}')).read()
    assert (
        malformed.error
        == "command: cannot parse its output: placements[0].node_id: expected an id (integer or text), got None"
    )
    not_json = await CommandJsonSource(_json_command(tmp_path, "+----+")).read()
    assert not_json.error is not None and not_json.error.startswith("command: cannot parse its output: not JSON")
    missing = await CommandJsonSource([str(tmp_path / "no-such-tool")]).read()
    assert missing.error is not None and missing.error.startswith(f"command: cannot run '{tmp_path / 'no-such-tool'}'")


@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_command_source_kills_a_hung_command(tmp_path: Path) -> None:
    """A command that sleeps is killed after timeout_s and reported as a timeout."""
    script = _script(tmp_path / "hang.py", "import time\ntime.sleep(30)\n")
    started = time.monotonic()
    reading = await CommandJsonSource([sys.executable, str(script)], timeout_s=0.5).read()
    assert time.monotonic() - started < 5
    assert reading.error is not None
    assert reading.error.startswith(f"command: exited -1: timeout: {sys.executable} did not finish within 0.5s")


def test_parse_topology_json_rejects_bad_split_health() -> None:
    """A negative split counter names its path."""
    with pytest.raises(ValueError, match=r"split\.attempts: expected a non-negative integer, got -1"):
        parse_topology_json('{"placements": [], "split": {"attempts": -1}}')


# --- factory ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_make_source_builds_each_kind_by_its_target_file_name(tmp_path: Path, holoctl: Holoctl) -> None:
    """The topology.source names map to the source classes; unknown names are rejected."""
    assert isinstance(make_source("holoctl", holoctl=holoctl), HoloctlTableSource)
    assert isinstance(make_source("holoctl_state", holoctl=holoctl), HoloctlStateSource)
    assert isinstance(make_source("partitions", conns=[object()], table="t"), SqlPartitionSource)
    assert isinstance(make_source("sql", conn=object(), query="SELECT 1", columns=COCKROACH_COLUMNS), SqlQuerySource)
    source = make_source("command", argv=_json_command(tmp_path, '{"placements": []}'), timeout_s=20)
    assert isinstance(source, CommandJsonSource)
    assert _topology(await source.read()).placements == ()
    with pytest.raises(ValueError, match="unknown topology source 'none'"):
        make_source("none")
    with pytest.raises(TypeError):
        make_source("holoctl", holoctl=holoctl, table="t")
