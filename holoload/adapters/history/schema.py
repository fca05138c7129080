"""The run history's schema: versioned migrations in SQL that SQLite and PostgreSQL both accept.

Each migration is applied once, in order, in its own transaction, and recorded in
`holoload_schema` (version, description, applied_at). A database whose version is newer than
this holoload knows is refused rather than written with an older idea of the columns.
Portable SQL only: TEXT, INTEGER, BIGINT, DOUBLE PRECISION; booleans as 0/1; times as ISO text
plus epoch seconds; no serial columns (every key is natural).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA_TABLE", "Migration", "latest_version"]

SCHEMA_TABLE = "holoload_schema"

CREATE_SCHEMA_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
    "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, gates and per-phase op figures with HDR histograms",
        (
            """CREATE TABLE holoload_runs (
                run_id TEXT PRIMARY KEY,
                scenario TEXT NOT NULL,
                scenario_hash TEXT NOT NULL,
                target TEXT NOT NULL,
                topology TEXT NOT NULL,
                environment TEXT NOT NULL,
                verdict TEXT NOT NULL,
                started_at TEXT NOT NULL,
                started_ts DOUBLE PRECISION NOT NULL,
                ended_at TEXT,
                duration_s DOUBLE PRECISION,
                exit_code INTEGER,
                results_dir TEXT,
                holoload_version TEXT,
                git_commit TEXT,
                git_branch TEXT,
                host_name TEXT,
                host_cpus INTEGER,
                host_model TEXT,
                host_load1 DOUBLE PRECISION,
                source TEXT NOT NULL,
                problems TEXT NOT NULL,
                recorded_at TEXT NOT NULL
            )""",
            """CREATE TABLE holoload_gates (
                run_id TEXT NOT NULL REFERENCES holoload_runs (run_id),
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                expression TEXT,
                passed INTEGER,
                state TEXT,
                observed DOUBLE PRECISION,
                threshold DOUBLE PRECISION,
                observed_text TEXT,
                threshold_text TEXT,
                reason TEXT,
                PRIMARY KEY (run_id, name)
            )""",
            """CREATE TABLE holoload_ops (
                run_id TEXT NOT NULL REFERENCES holoload_runs (run_id),
                position INTEGER NOT NULL,
                phase TEXT NOT NULL,
                op TEXT NOT NULL,
                measured INTEGER NOT NULL,
                seconds DOUBLE PRECISION,
                ok BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                errors_by_class TEXT NOT NULL,
                dropped BIGINT NOT NULL,
                retries BIGINT NOT NULL,
                row_count BIGINT NOT NULL,
                ops_per_s DOUBLE PRECISION,
                p50_ms DOUBLE PRECISION,
                p95_ms DOUBLE PRECISION,
                p99_ms DOUBLE PRECISION,
                max_ms DOUBLE PRECISION,
                histogram TEXT,
                PRIMARY KEY (run_id, phase, op)
            )""",
        ),
    ),
    Migration(
        2,
        "index runs by series (scenario, environment, target, start time)",
        ("CREATE INDEX holoload_runs_series ON holoload_runs (scenario, environment, target, started_ts)",),
    ),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version
