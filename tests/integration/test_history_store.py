"""The run history store: round trips on SQLite and on the session's real PostgreSQL, migrations."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from holoload.adapters.history.schema import MIGRATIONS, latest_version
from holoload.adapters.history.store import open_store
from holoload.adapters.local.cluster import LocalNode
from holoload.core.errors import SetupError
from holoload.core.history.model import GateRecord, OpRecord, RunEntry
from holoload.core.stats.histogram import LatencyHistogram


def _histogram(*values_us: int) -> str:
    h = LatencyHistogram()
    for v in values_us:
        h.record_us(v)
    return h.encode().decode("ascii")


def make_entry(
    run_id: str = "oltp-20261202T100000Z-abc123", *, started_ts: float = 1_796_200_000.0, **kw: object
) -> RunEntry:
    """A run with every field set, gates of both outcomes and ops with and without histograms."""
    entry = RunEntry(
        run_id=run_id,
        scenario="oltp",
        scenario_hash="0123456789abcdef",
        target="session",
        topology="3 nodes, per_node, partitions",
        environment="ci",
        verdict="FAIL",
        started_at="2026-12-02T10:00:00+00:00",
        started_ts=started_ts,
        ended_at="2026-12-02T10:01:00+00:00",
        duration_s=60.5,
        exit_code=1,
        results_dir="/tmp/results/oltp_x",
        holoload_version="0.1.0",
        git_commit="f" * 40,
        git_branch="feature/x",
        host_name="ci-7",
        host_cpus=2,
        host_model="Some CPU @ 2.0GHz",
        host_load1=0.75,
        source="run",
        problems=("run.log stopped: disk full", "a 'quoted' ? problem"),
        gates=(
            GateRecord("p95", "p95(read) <= 5ms", True, "pass", 0.0031, 0.005, "3.1ms", "5ms", "3.1ms <= 5ms"),
            GateRecord("errs", "errors(ins) == 0", False, "fail", 2.0, 0.0, "2", "0", "2 != 0"),
            GateRecord("live", "p99(read) <= 1s", None, "pending", None, None, None, None, None),
        ),
        ops=(
            OpRecord(
                "main",
                "w.read",
                True,
                10.0,
                31_000,
                0,
                {},
                0,
                0,
                0,
                3100.0,
                0.5,
                3.1,
                7.5,
                40.0,
                _histogram(400, 3000, 7000),
            ),
            OpRecord(
                "main",
                "w.ins",
                True,
                10.0,
                9_000,
                2,
                {"conflict": 1, "timeout": 1},
                3,
                4,
                9_000,
                900.0,
                1.0,
                6.0,
                9.0,
                30.0,
                None,
            ),
            OpRecord("warm", "w.ins", False, 1.0, 100, 0, {}, 0, 0, 100, 100.0, None, None, None, None, None),
        ),
    )
    return replace(entry, **kw)  # type: ignore[arg-type]


def _round_trip(location: str) -> None:
    entry = make_entry()
    with open_store(location) as store:
        assert store.schema_version() == latest_version()
        store.record(entry)
        store.record(make_entry("oltp-2", started_ts=entry.started_ts + 60, verdict="PASS", environment="staging"))
        [back] = store.runs(scenario="oltp", environment="ci", target="session", with_histograms=True)
        assert back == entry
        assert store.run("oltp-20261202T100000Z") == entry  # a unique prefix
        assert store.run("oltp-") is None  # ambiguous
        without = store.runs()[0]
        assert [o.histogram for o in without.ops] == [None, None, None]  # histograms only when asked
        merged = LatencyHistogram.decode(back.ops[0].histogram.encode())  # type: ignore[union-attr]
        assert merged.count == 3 and merged.percentile_us(100) == pytest.approx(7000, rel=0.001)
        assert [r.run_id for r in store.runs()] == [entry.run_id, "oltp-2"]  # oldest first
        changed = replace(entry, verdict="KILLED", gates=entry.gates[:1], ops=entry.ops[1:], source="report")
        store.record(changed)  # recording a run again replaces it, gates and ops included
        assert store.run(entry.run_id) == changed
        assert len(store.runs()) == 2


def test_sqlite_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """Every field of a run, its gates (pass, fail, last live state) and ops (with HDR histograms) comes back equal."""
    _round_trip(str(tmp_path / "sub" / "history.sqlite"))


def test_migrations_are_recorded_and_an_old_database_is_brought_up_to_date(tmp_path: Path) -> None:
    """A file at schema 1 (as an earlier holoload left it) gets migration 2 and keeps its runs."""
    path = tmp_path / "h.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE holoload_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for sql in MIGRATIONS[0].statements:
        conn.execute(sql)
    conn.execute("INSERT INTO holoload_schema VALUES (1, 'first', '2026-01-01')")
    conn.commit()
    conn.close()
    with open_store(str(path)) as store:
        assert store.schema_version() == 2
        store.record(make_entry())
    conn = sqlite3.connect(path)
    versions = [row[0] for row in conn.execute("SELECT version FROM holoload_schema ORDER BY version")]
    indexes = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    conn.close()
    assert versions == [1, 2]
    assert "holoload_runs_series" in indexes
    with open_store(str(path)) as store:  # opening again migrates nothing
        assert store.schema_version() == 2 and len(store.runs()) == 1


def test_a_database_from_a_newer_holoload_is_refused(tmp_path: Path) -> None:
    """Schema version beyond what this holoload knows: SetupError naming both versions, nothing written."""
    path = tmp_path / "h.sqlite"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO holoload_schema VALUES (99, 'future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(SetupError, match="schema version 99 is newer"):
        open_store(str(path))


def test_an_unopenable_location_is_a_setup_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SetupError, match="cannot open"):
        open_store(str(tmp_path / "file" / "h.sqlite"))


def test_postgresql_round_trip_keeps_every_field(pg_history_url: str) -> None:
    """The same round trip on a real PostgreSQL server: one schema, one set of statements."""
    _round_trip(pg_history_url)
    with open_store(pg_history_url) as store:  # a second open finds the schema current
        assert store.schema_version() == latest_version()
        assert len(store.runs()) == 2


def test_postgresql_connection_failure_is_a_setup_error_without_the_password(pg_cluster: list[LocalNode]) -> None:
    url = f"postgresql://holoload:s3cret@127.0.0.1:{pg_cluster[0].port + 1000}/nope"
    with pytest.raises(SetupError) as info:
        open_store(url)
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
