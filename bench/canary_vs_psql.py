"""Benchmark: one canary batch timed the bash canary's way (psql process) vs holoload's way (asyncpg).

    python bench/canary_vs_psql.py [--reps N] [--rows 20000,50000] [--warmup N] [--no-canary]

Both sides run the exact statement holoload runs (CANARY_INSERT_SQL) against the same
1-node embedded cluster in the same run, alternating which side goes first, so the
ratio holoload/psql is about the two ways of timing, not about the machine. Then one
whole `python -m holoload scenarios/sales_facts.toml` run is timed end to end.
Prints one table per batch size and ends with one JSON line of figures.
Exit 0 when every batch inserted exactly its rows and the canary run passed, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_pgbench import BenchError, bounded_int, client_env, find_client  # noqa: E402  (a sibling script)

from holoload.adapters.local.cluster import LocalCluster  # noqa: E402
from holoload.adapters.pg.connect import close_quietly, connect, count_rows
from holoload.adapters.pg.localpg import prepare_plain_table
from holoload.core.model.scenario import CANARY_INSERT_SQL

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = REPO_ROOT / "scenarios" / "sales_facts.toml"
BASE_PORT = 58432
TABLE = "sales_facts"
MAX_REPS = 100
MAX_ROWS = 1_000_000
PSQL_TIMEOUT_S = 120.0
CANARY_TIMEOUT_S = 300.0
STATEMENT_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 10.0
SIDES = ("psql", "holoload")


@dataclass
class SizeResult:
    """Timed samples (ms) of one batch size, per side, plus the psql no-op baseline."""

    rows: int
    samples_ms: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    psql_select1_ms: list[float] = field(default_factory=list)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (with 5 samples it is the largest one)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# --- the two ways of running a batch -------------------------------------------------------


def run_psql_ms(psql: str, dsn: str, sql: str) -> float:
    """The bash canary's way: wall clock around one whole psql process (start, connect, run, exit)."""
    cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql]
    started = time.perf_counter()
    done = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        timeout=PSQL_TIMEOUT_S,
        env=client_env(),
        stdin=subprocess.DEVNULL,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise BenchError(f"psql exited {done.returncode}: {(done.stderr or done.stdout).strip()}")
    return elapsed_ms


async def run_asyncpg_ms(conn: asyncpg.Connection, sql: str) -> float:
    """holoload's way (holoload/engine/canary.py `_execute`): perf_counter around execute()."""
    started = time.perf_counter()
    await conn.execute(sql)
    return (time.perf_counter() - started) * 1000


async def checked(conn: asyncpg.Connection, side: str, rows: int, batch: Callable[[], Awaitable[float]]) -> float:
    """Run one batch and fail loudly unless the table grew by exactly `rows`."""
    before = await count_rows(conn, TABLE)
    elapsed_ms = await batch()
    delta = await count_rows(conn, TABLE) - before
    if delta != rows:
        raise BenchError(f"{side}: batch of {rows} rows changed the row count by {delta}")
    return elapsed_ms


# --- the measurement loop -------------------------------------------------------------------


async def measure(dsn: str, psql: str, sizes: Sequence[int], reps: int, warmup: int) -> list[SizeResult]:
    """Time every batch size on both sides, alternating which side goes first."""
    conn = await connect(dsn, connect_timeout_s=CONNECT_TIMEOUT_S, statement_timeout_s=STATEMENT_TIMEOUT_S)
    try:
        await prepare_plain_table(conn, TABLE)
        results = []
        for rows in sizes:
            sql = CANARY_INSERT_SQL.format(table=TABLE, rows=rows)

            async def by_psql(sql: str = sql) -> float:
                return await asyncio.to_thread(run_psql_ms, psql, dsn, sql)

            async def by_holoload(sql: str = sql) -> float:
                return await run_asyncpg_ms(conn, sql)

            sides: dict[str, Callable[[], Awaitable[float]]] = {"psql": by_psql, "holoload": by_holoload}
            result = SizeResult(rows)
            for rep in range(-warmup, reps):  # negative reps are warm-up, not recorded
                order = SIDES if rep % 2 == 0 else SIDES[::-1]
                for side in order:
                    elapsed_ms = await checked(conn, side, rows, sides[side])
                    if rep >= 0:
                        result.samples_ms[side].append(elapsed_ms)
            # What a psql process costs with (almost) no statement: start-up + connect + exit.
            for _ in range(reps):
                result.psql_select1_ms.append(await asyncio.to_thread(run_psql_ms, psql, dsn, "SELECT 1"))
            results.append(result)
        return results
    finally:
        await close_quietly(conn)


# --- the whole canary, end to end -----------------------------------------------------------


def run_canary() -> dict[str, Any]:
    """Time `python -m holoload scenarios/sales_facts.toml -q` and read its own p95s."""
    with tempfile.TemporaryDirectory(prefix="holoload-bench-") as tmp:
        cmd = [sys.executable, "-m", "holoload", str(SCENARIO), "--results-dir", tmp, "-q"]
        started = time.perf_counter()
        done = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=CANARY_TIMEOUT_S,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
        )
        wall_s = time.perf_counter() - started
        summaries = list(Path(tmp).glob("*/summary.json"))
        if done.returncode != 0 or len(summaries) != 1:
            raise BenchError(
                f"canary run exited {done.returncode} with {len(summaries)} summary.json; output:\n"
                f"{done.stdout}{done.stderr}"
            )
        summary = json.loads(summaries[0].read_text())
    p95s = {op: stats["latency_ms"]["p95"] for op, stats in summary["ops"].items()}
    return {"wall_s": wall_s, "verdict": summary["verdict"], "p95_ms": p95s}


# --- report ---------------------------------------------------------------------------------


def figures(result: SizeResult) -> dict[str, float]:
    """The JSON figures of one batch size."""
    psql, holo = result.samples_ms["psql"], result.samples_ms["holoload"]
    out = {
        "psql_p50_ms": statistics.median(psql),
        "psql_p95_ms": p95(psql),
        "holoload_p50_ms": statistics.median(holo),
        "holoload_p95_ms": p95(holo),
        "psql_select1_p50_ms": statistics.median(result.psql_select1_ms),
    }
    out["ratio_p50"] = out["holoload_p50_ms"] / out["psql_p50_ms"]
    out["ratio_p95"] = out["holoload_p95_ms"] / out["psql_p95_ms"]
    # Rep i's two batches ran back to back: their ratio cancels drift from other load on the box.
    out["ratio_paired_p50"] = statistics.median(h / p for h, p in zip(holo, psql, strict=True))
    return {k: round(v, 3) for k, v in out.items()}


def print_table(result: SizeResult, fig: dict[str, float], reps: int) -> None:
    print(f"\nrows={result.rows:,}  ({reps} reps per side, alternating first side)")
    lines = [
        ("side", "median ms", "p95 ms"),
        ("psql -c (process wall clock)", f"{fig['psql_p50_ms']:.1f}", f"{fig['psql_p95_ms']:.1f}"),
        ("holoload (asyncpg execute)", f"{fig['holoload_p50_ms']:.1f}", f"{fig['holoload_p95_ms']:.1f}"),
        ("ratio holoload/psql", f"{fig['ratio_p50']:.3f}", f"{fig['ratio_p95']:.3f}"),
        ("ratio, median of per-rep pairs", f"{fig['ratio_paired_p50']:.3f}", ""),
        ("psql -c SELECT 1 (overhead only)", f"{fig['psql_select1_p50_ms']:.1f}", ""),
    ]
    for name, median, tail in lines:
        print(f"  {name:<34} {median:>10} {tail:>10}".rstrip())


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated row counts, got {text!r}") from None
    if not sizes or any(not 1 <= n <= MAX_ROWS for n in sizes):
        raise argparse.ArgumentTypeError(f"row counts must be 1..{MAX_ROWS:,}, got {text!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--reps", type=bounded_int(1, MAX_REPS), default=20, help="timed batches per side per size")
    add("--rows", type=parse_sizes, default=[20_000, 50_000], help="batch sizes, e.g. 20000,50000")
    add("--warmup", type=bounded_int(0, 10), default=1, help="untimed batches per side per size")
    add("--no-canary", action="store_true", help="skip the end-to-end canary run")
    args = parser.parse_args(argv)

    cluster = LocalCluster(1, base_port=BASE_PORT)
    try:
        node = cluster.start()[0]
        psql = find_client(cluster.binaries.bindir, "psql")
        print(f"PostgreSQL {cluster.binaries.version} on 127.0.0.1:{node.port}; psql {psql}; asyncpg on uvloop")
        results = uvloop.run(measure(node.dsn, psql, args.rows, args.reps, args.warmup))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()

    report: dict[str, Any] = {"bench": "canary_vs_psql", "reps": args.reps}
    for result in results:
        fig = figures(result)
        print_table(result, fig, args.reps)
        report[f"rows_{result.rows}"] = fig
    if not args.no_canary:
        try:
            canary = run_canary()
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
        p95s = "  ".join(f"{op} p95 {ms:.1f} ms" for op, ms in canary["p95_ms"].items())
        print(
            f"\nholoload canary end to end (3-node cluster, 6 batches, split): "
            f"{canary['wall_s']:.2f} s wall, {canary['verdict']}; {p95s}"
        )
        report["canary_wall_s"] = round(canary["wall_s"], 3)
        report["canary_verdict"] = canary["verdict"]
        report["canary_p95_ms"] = canary["p95_ms"]
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
