"""Tests for holoload.adapters.holofusion.topology_sources against the fake holoctl, real PostgreSQL and scripts."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from holoload.adapters.holofusion.holoctl import Holoctl
from holoload.adapters.holofusion.topology_sources import (
    CommandJsonSource,
    HoloctlStateSource,
    HoloctlTableSource,
    SqlPartitionSource,
    SqlQuerySource,
    make_source,
)
from holoload.core.topology.diff import diff
from holoload.core.topology.holoctl_state import parse_state
from holoload.core.topology.io import (
    COCKROACH_COLUMNS,
    check_columns,
    merge_table_records,
    parse_topology_json,
    topology_from_rows,
)
from holoload.core.topology.splitkey import row_v1_split_key, to_hex
from holoload.core.topology.table import parse_table, render_table
from tests.support import FAKES, FIXTURES, fixture_text
from tests.support.topology import reading_topology

FAKE = FAKES / "fake_holoctl.py"
TARGET = "127.0.0.1:15051"
SPLIT_KEY = row_v1_split_key(100, 50000)


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


# --- holoctl ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_state_source_merges_table_counts_into_the_state(holoctl: Holoctl) -> None:
    """Before the split: state rows with the table's counts, identical to the parsed table."""
    reading = await HoloctlStateSource(holoctl).read()
    topology = reading_topology(reading)
    table = parse_table(fixture_text("holoctl_topology_before_split.txt"))
    assert topology.placements == table.placements
    assert topology.split == parse_state(fixture_text("holoctl_state_before_split.json")).split
    assert not topology.partial
    assert reading.notes == ()
    assert reading.raw == fixture_text("holoctl_state_before_split.json") + fixture_text(
        "holoctl_topology_before_split.txt"
    )
    assert render_table(topology) == fixture_text("holoctl_topology_before_split.txt")


@pytest.mark.anyio
async def test_state_source_sees_a_split_recorded_through_the_fake(holoctl: Holoctl) -> None:
    """A split made with holoctl switches the reading; diffing the two readings names the split."""
    source = HoloctlStateSource(holoctl)
    before = reading_topology(await source.read())
    assert (await holoctl.split(to_hex(SPLIT_KEY))).ok
    after = reading_topology(await source.read())
    assert render_table(after) == fixture_text("holoctl_topology_after_split.txt")
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
    assert reading_topology(before) == parse_table(fixture_text("holoctl_topology_before_split.txt"))
    assert before.raw == fixture_text("holoctl_topology_before_split.txt")
    assert (await holoctl.split(to_hex(SPLIT_KEY))).ok
    after = await source.read()
    assert reading_topology(after).shard_count == 2
    assert after.raw == fixture_text("holoctl_topology_after_split.txt")


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
    assert reading_topology(reading) == parse_table(fixture_text("holoctl_topology_before_split.txt"))
    assert reading.raw == fixture_text("holoctl_topology_before_split.txt")
    assert reading.notes == ("holoctl state exited 2: boom; topology from the table only",)


@pytest.mark.anyio
async def test_unparseable_state_falls_back_to_the_table(tmp_path: Path) -> None:
    """`state` exits 0 but prints no JSON: the table is used and the parse error noted."""
    client = _holoctl_script(tmp_path, state="print('not json')", topology="fake")
    reading = await HoloctlStateSource(client).read()
    assert reading_topology(reading).shard_count == 1
    assert reading.notes[0].startswith("holoctl state: cannot parse its output: holoctl state is not JSON")


@pytest.mark.anyio
async def test_table_failure_keeps_the_state_with_unknown_counts(tmp_path: Path) -> None:
    """`topology` fails: the state topology stands, counts n/a and partial, with a note."""
    client = _holoctl_script(tmp_path, state="fake", topology="sys.exit(1)")
    reading = await HoloctlStateSource(client).read()
    topology = reading_topology(reading)
    assert topology == parse_state(fixture_text("holoctl_state_before_split.json"))
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
    topology = reading_topology(reading)
    assert topology.shard_count == 2
    assert all(p.records is None for p in topology.placements)
    assert topology.partial
    assert reading.notes[0].startswith("record counts unknown for node 1 shard 1, node 1 shard 2, ")


def test_merge_copies_err_cells_and_counts_by_node_and_shard() -> None:
    """merge_table_records keeps ERR text for unreachable rows and counts elsewhere."""
    state = parse_state(fixture_text("holoctl_state_after_split.json"))
    table = parse_table(fixture_text("holoctl_topology_after_split.txt")).with_records({("3", "2"): "ERR(Timeout)"})
    merged, unmatched = merge_table_records(state, table)
    assert unmatched == []
    assert merged.placements == table.placements
    assert merged.partial


@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_hung_holoctl_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    """A holoctl that sleeps is killed: the reading reports the timeout within seconds."""
    # 2 s, not less: the fake `topology` command (a Python start-up) shares this bound and must
    # finish within it on a busy machine, or the reading has no table to fall back to.
    client = _holoctl_script(tmp_path, state="import time; time.sleep(30)", topology="fake", timeout_s=2.0)
    started = time.monotonic()
    reading = await HoloctlStateSource(client).read()
    assert time.monotonic() - started < 10
    assert reading.notes[0].startswith("holoctl state exited -1: timeout: holoctl state did not finish within 2s")
    assert reading_topology(reading).shard_count == 1
    outer = await HoloctlTableSource(
        _holoctl_script(tmp_path, state="fake", topology="import time; time.sleep(30)", timeout_s=20.0),
        timeout_s=0.5,
    ).read()
    assert outer.error == "timeout: holoctl did not answer within 0.5s"


# --- PostgreSQL -----------------------------------------------------------------------------------


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
    expected = parse_table(fixture_text("holoctl_topology_after_split.txt")).with_records({("3", "1"): "ERR(Timeout)"})
    payload = json.dumps(expected.to_dict())
    reading = await CommandJsonSource(_json_command(tmp_path, payload), timeout_s=20).read()
    assert reading_topology(reading) == expected
    assert reading.raw == payload


@pytest.mark.anyio
async def test_command_source_accepts_the_minimal_shape_and_holoctl_state(tmp_path: Path) -> None:
    """Only node_id and shard_id are required; holoctl state JSON is recognised as such."""
    minimal = await CommandJsonSource(
        _json_command(tmp_path, '{"placements": [{"node_id": 1, "shard_id": 7}, {"node_id": "2", "shard_id": 7}]}')
    ).read()
    topology = reading_topology(minimal)
    assert topology.node_states == {"1": "Unknown", "2": "Unknown"}
    assert topology.shard_ids == ("7",) and topology.partial and topology.split is None
    state = await CommandJsonSource(_json_command(tmp_path, fixture_text("holoctl_state_after_split.json"))).read()
    assert reading_topology(state) == parse_state(fixture_text("holoctl_state_after_split.json"))


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
    assert reading_topology(await source.read()).placements == ()
    with pytest.raises(ValueError, match="unknown topology source 'none'"):
        make_source("none")
    with pytest.raises(TypeError):
        make_source("holoctl", holoctl=holoctl, table="t")
