"""Benchmark: holoload's closed-loop throughput and client CPU against pgbench, same server, same run.

    python bench/vs_pgbench.py [--seconds 10] [--reps 1] [--warmup 2] [--workers N]

Starts a 1-node local PostgreSQL (127.0.0.1, LocalCluster(1, base_port=58500)), loads
`bench_accounts` with 100k rows, then measures two workloads back to back with three
clients (and the bare driver loop), rotating which goes first, with 8 connections each: holoload in one process
(`--workers 1`), holoload over N worker processes (`--workers N`, default one per CPU) and
pgbench:

- select: `SELECT balance FROM bench_accounts WHERE id = $1`, id uniform in 1..100000;
- insert: one durable single-row `INSERT INTO bench_events (id, v) VALUES ($1, $2)`
  per transaction, unique ids (holoload `gen = "seq"`, pgbench a per-client counter).

holoload runs as `python -m holoload SCENARIO --target TARGET --results-dir TMP -q --workers W`
(a subprocess, exactly as a user runs it) and its ops/s come from the run's summary.json;
pgbench runs as `pgbench -n -M prepared -c 8 -j 2 -T S -f script.sql DSN`. A fourth client,
`bare`, is bench/bare_asyncpg.py in a child process: asyncpg on uvloop, the same statement on
the same 8 connections, prepared once, in a closed loop with nothing else per op: the limit
for a Python client (`engine_overhead_ratio` = holoload ops/s / bare ops/s; `cpu_vs_pgbench` =
holoload's client CPU per op / pgbench's, start-up removed). Client CPU is
user+sys of the finished child process (getrusage(RUSAGE_CHILDREN) deltas) divided by the
operations it completed. Prints a table and ends with one JSON line. Targets are printed
as PASS/MISS; a miss does not change the exit code (1 only when a measurement failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from holoload.adapters.local.cluster import LocalCluster

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_PORT = 58500
ACCOUNTS = 100_000
CLIENTS = 8
PGBENCH_THREADS = 2
SHORT_RUN_S = 1  # the start-up-cost run subtracted for the "marginal" CPU figure
MAX_REPS = 20
MAX_SECONDS = 600
RUN_SLACK_S = 120.0  # subprocess timeout = seconds + this (start-up, connect, summaries)
CONNECT_TIMEOUT_S = 10.0
SIDES = ("holoload", "holoload_workers", "bare", "pgbench")
HOLOLOAD_SIDES = ("holoload", "holoload_workers")
WORKLOADS = ("select", "insert")
TARGETS = {
    "select_ratio": 0.50,
    "select_ratio_workers": 0.60,
    "insert_ratio": 0.70,
    "client_cpu_us_per_op": 25.0,
    "engine_overhead_ratio": 0.90,  # holoload (1 process) ops/s / the bare asyncpg loop's, select
    "cpu_vs_pgbench": 3.0,  # holoload client CPU per op / pgbench's, select, start-up removed
}
BARE_SCRIPT = Path(__file__).resolve().parent / "bare_asyncpg.py"

SETUP_SQL = [
    "DROP TABLE IF EXISTS bench_accounts",
    "DROP TABLE IF EXISTS bench_events",
    "CREATE TABLE bench_accounts (id bigint PRIMARY KEY, balance bigint, filler text)",
    "CREATE TABLE bench_events (id bigint PRIMARY KEY, v bigint)",
    f"INSERT INTO bench_accounts (id, balance, filler) "
    f"SELECT i, 1000 + i % 997, repeat('x', 84) FROM generate_series(1, {ACCOUNTS}) AS g(i)",
    "VACUUM ANALYZE bench_accounts",
    "SELECT sum(balance) FROM bench_accounts",  # pull the heap into shared_buffers
]

# holoload's scenario: the same statements pgbench runs (one phase, closed loop, 8 in flight).
SCENARIO_TOML = """\
name = "vs_pgbench_{workload}"
description = "bench/vs_pgbench.py: {workload}, {clients} connections, closed loop"
window = "1s"

[[phases]]
name = "main"
duration = "{seconds}s"

[[phases.workloads]]
name = "{workload}"
executor = "constant-concurrency"
concurrency = {clients}

[[phases.workloads.ops]]
name = "op"
{op}
"""

HOLOLOAD_OPS = {
    "select": (
        'sql = "SELECT balance FROM bench_accounts WHERE id = $1"\n'
        f'params = [{{ gen = "uniform", min = 1, max = {ACCOUNTS} }}]'
    ),
    "insert": (
        'sql = "INSERT INTO bench_events (id, v) VALUES ($1, $2)"\n'
        'params = [{ gen = "seq" }, { gen = "uniform", min = 1, max = 1000000 }]'
    ),
}

# pgbench variables persist per client across transactions, so :n is a per-client counter
# (started by -D n=1) and :client_id * 10^9 + :n is unique over all clients.
PGBENCH_SCRIPTS = {
    "select": f"\\set id random(1, {ACCOUNTS})\nSELECT balance FROM bench_accounts WHERE id = :id;\n",
    "insert": (
        "\\set id :client_id * 1000000000 + :n\n"
        "\\set n :n + 1\n"
        "\\set v random(1, 1000000)\n"
        "INSERT INTO bench_events (id, v) VALUES (:id, :v);\n"
    ),
}

TARGET_TOML = """\
name = "vs_pgbench"
description = "bench: the 1-node local cluster"
data = "shared"

[[nodes]]
name = "node1"
dsn = "{dsn}"
"""


class BenchError(Exception):
    """A measurement that must not be reported: a client failed, a summary is missing."""


@dataclass
class Sample:
    """One timed run of one client on one workload."""

    ops: int
    ops_per_s: float
    cpu_s: float
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_s / self.ops * 1e6 if self.ops else float("nan")


def children_cpu_s() -> float:
    """user + sys of every finished, waited-for child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(
    cmd: Sequence[str], timeout_s: float, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run a child to completion; returns it, its CPU seconds (user+sys) and wall seconds."""
    cpu0, wall0 = children_cpu_s(), time.perf_counter()
    done = subprocess.run(
        list(cmd),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    return done, children_cpu_s() - cpu0, time.perf_counter() - wall0


# --- holoload -------------------------------------------------------------------------------


def write_target(directory: Path, dsn: str) -> Path:
    path = directory / "target.toml"
    path.write_text(TARGET_TOML.format(dsn=dsn))
    return path


def run_holoload(
    scenario_text: str, target: Path, timeout_s: float, extra_args: Sequence[str] = ()
) -> tuple[dict[str, Any], float, float]:
    """`python -m holoload SCENARIO --target TARGET --results-dir TMP -q [EXTRA]`; its summary.json, CPU, wall."""
    with tempfile.TemporaryDirectory(prefix="holoload-bench-") as tmp:
        scenario = Path(tmp) / "scenario.toml"
        scenario.write_text(scenario_text)
        results = Path(tmp) / "results"
        cmd = [sys.executable, "-m", "holoload", str(scenario), "--target", str(target)]
        cmd += ["--results-dir", str(results), "-q", *extra_args]
        done, cpu_s, wall_s = run_child(cmd, timeout_s)
        summaries = list(results.glob("*/summary.json"))
        if done.returncode != 0 or len(summaries) != 1:
            raise BenchError(
                f"holoload exited {done.returncode} with {len(summaries)} summary.json; output:\n"
                f"{done.stdout}{done.stderr}"
            )
        return json.loads(summaries[0].read_text()), cpu_s, wall_s


def op_figures(summary: dict[str, Any], phase: str, key: str) -> dict[str, Any]:
    try:
        fig: dict[str, Any] = summary["phases"][phase]["ops"][key]
        fig["phase_seconds"] = summary["phases"][phase]["seconds"]
    except (KeyError, TypeError) as exc:
        raise BenchError(f"summary.json has no phases.{phase}.ops[{key!r}]") from exc
    return fig


def holoload_sample(
    workload: str, seconds: int, target: Path, workers: int | str = 1, clients: int = CLIENTS
) -> Sample:
    """One `python -m holoload` run of a workload over `workers` processes; raises BenchError on any error."""
    text = SCENARIO_TOML.format(workload=workload, clients=clients, seconds=seconds, op=HOLOLOAD_OPS[workload])
    summary, cpu_s, wall_s = run_holoload(text, target, seconds + RUN_SLACK_S, ["--workers", str(workers)])
    fig = op_figures(summary, "main", f"{workload}.op")
    if fig["error_count"]:
        raise BenchError(f"holoload {workload}: {fig['error_count']} errors: {fig['errors']}")
    lat = fig["latency_ms"] or {}
    extra = {"p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "phase_s": fig["phase_seconds"]}
    return Sample(int(fig["ok"]), float(fig["ops_per_s"]), cpu_s, wall_s, extra)


# --- pgbench --------------------------------------------------------------------------------


def find_client(bindir: Path, name: str) -> str:
    """A PostgreSQL client program (pgbench, psql) next to the server binaries, else on PATH."""
    beside = bindir / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"no {name} in {bindir} or on PATH (Debian/Ubuntu: apt-get install postgresql)")
    return found


def client_env() -> dict[str, str]:
    # PG* variables (PGOPTIONS, PGHOST...) would make the clients run differently from holoload.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def parse_pgbench(stdout: str) -> tuple[int, float, float | None]:
    """(transactions processed, tps, average latency ms) from pgbench's report."""
    processed, tps, latency = None, None, None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("number of transactions actually processed:"):
            processed = int(line.split(":", 1)[1].split()[0].split("/")[0])
        elif line.startswith("tps = "):
            tps = float(line.split()[2])
        elif line.startswith("latency average = "):
            latency = float(line.split()[3])
    if processed is None or tps is None:
        raise BenchError(f"cannot read pgbench's report:\n{stdout}")
    return processed, tps, latency


def pgbench_sample(pgbench: str, dsn: str, workload: str, seconds: int, script: Path) -> Sample:
    cmd = [pgbench, "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", str(PGBENCH_THREADS)]
    cmd += ["-T", str(seconds), "-f", str(script)]
    if workload == "insert":
        cmd += ["-D", "n=1"]
    cmd.append(dsn)
    done, cpu_s, wall_s = run_child(cmd, seconds + RUN_SLACK_S, env=client_env())
    if done.returncode != 0:
        raise BenchError(f"pgbench exited {done.returncode}:\n{done.stdout}{done.stderr}")
    processed, tps, latency = parse_pgbench(done.stdout)
    return Sample(processed, tps, cpu_s, wall_s, {"latency_avg_ms": latency})


# --- the bare driver loop ---------------------------------------------------------------------


def bare_sample(dsn: str, workload: str, seconds: int) -> Sample:
    """bench/bare_asyncpg.py in a child process: the same statement and connections, nothing else."""
    cmd = [sys.executable, str(BARE_SCRIPT), "--dsn", dsn, "--workload", workload]
    cmd += ["--clients", str(CLIENTS), "--seconds", str(seconds)]
    done, cpu_s, wall_s = run_child(cmd, seconds + RUN_SLACK_S)
    if done.returncode != 0:
        raise BenchError(f"bare asyncpg loop exited {done.returncode}:\n{done.stdout}{done.stderr}")
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"cannot read the bare loop's output:\n{done.stdout}{done.stderr}") from exc
    return Sample(int(out["ops"]), float(out["ops_per_s"]), cpu_s, wall_s, {"seconds": out["seconds"]})


# --- the server side ------------------------------------------------------------------------


async def sql(dsn: str, *statements: str) -> Any:
    """Run statements on a fresh connection; returns the last one's first value."""
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        value = None
        for statement in statements:
            value = await conn.fetchval(statement)
        return value
    finally:
        await conn.close()


def run_sql(dsn: str, *statements: str) -> Any:
    return asyncio.run(sql(dsn, *statements))


# --- the measurement ------------------------------------------------------------------------


@dataclass
class Pair:
    """One rep of one workload: both sides, measured back to back."""

    workload: str
    first: str
    samples: dict[str, Sample]

    def ratio(self, side: str = "holoload", to: str = "pgbench") -> float:
        return self.samples[side].ops_per_s / self.samples[to].ops_per_s


def measure_one(
    side: str,
    workload: str,
    seconds: int,
    dsn: str,
    pgbench: str,
    target: Path,
    scripts: dict[str, Path],
    workers: int,
) -> Sample:
    if workload == "insert":  # every insert run starts from an empty table and a fresh checkpoint
        run_sql(dsn, "TRUNCATE bench_events", "CHECKPOINT")
    if side in HOLOLOAD_SIDES:
        sample = holoload_sample(workload, seconds, target, workers if side == "holoload_workers" else 1)
    elif side == "bare":
        sample = bare_sample(dsn, workload, seconds)
    else:
        sample = pgbench_sample(pgbench, dsn, workload, seconds, scripts[workload])
    if workload == "insert":
        rows = int(run_sql(dsn, "SELECT count(*) FROM bench_events"))
        sample.extra["rows_in_table"] = rows
        if rows != sample.ops:
            print(f"  warning: {side} insert reported {sample.ops} ops, table holds {rows} rows")
    return sample


def measure(
    dsn: str, pgbench: str, seconds: int, reps: int, warmup: int, workers: int, log: Callable[[str], None]
) -> tuple[list[Pair], dict[str, dict[str, Sample]]]:
    """Timed pairs per workload, plus one short run per side and workload (start-up cost)."""
    pairs: list[Pair] = []
    short: dict[str, dict[str, Sample]] = {w: {} for w in WORKLOADS}
    with tempfile.TemporaryDirectory(prefix="holoload-vs-pgbench-") as tmp:
        target = write_target(Path(tmp), dsn)
        scripts = {}
        for workload, text in PGBENCH_SCRIPTS.items():
            scripts[workload] = Path(tmp) / f"{workload}.sql"
            scripts[workload].write_text(text)
        if warmup:
            log(f"warm-up: pgbench select {warmup} s (not recorded)")
            pgbench_sample(pgbench, dsn, "select", warmup, scripts["select"])
        for rep in range(reps):
            for w_index, workload in enumerate(WORKLOADS):
                k = (rep + w_index) % len(SIDES)
                order = SIDES[k:] + SIDES[:k]
                samples = {}
                for side in order:
                    samples[side] = measure_one(side, workload, seconds, dsn, pgbench, target, scripts, workers)
                    s = samples[side]
                    log(
                        f"rep {rep + 1}/{reps} {workload:<6} {side:<16} {s.ops_per_s:>9,.0f} ops/s "
                        f"{s.cpu_us_per_op:>6.1f} us/op CPU ({s.cpu_s:.2f} s CPU, {s.wall_s:.1f} s wall)"
                    )
                pairs.append(Pair(workload, order[0], samples))
        for workload in WORKLOADS:
            for side in SIDES:
                s = measure_one(side, workload, SHORT_RUN_S, dsn, pgbench, target, scripts, workers)
                short[workload][side] = s
                log(
                    f"short {SHORT_RUN_S} s run {workload:<6} {side:<16} {s.ops:>7,} ops "
                    f"{s.cpu_s:.2f} s CPU ({s.wall_s:.1f} s wall)"
                )
    return pairs, short


def marginal_us_per_op(long: Sample, short: Sample) -> float | None:
    """CPU per op with start-up removed: (CPU_long - CPU_short) / (ops_long - ops_short)."""
    ops = long.ops - short.ops
    return (long.cpu_s - short.cpu_s) / ops * 1e6 if ops > 0 else None


def figures(pairs: list[Pair], short: dict[str, dict[str, Sample]]) -> dict[str, Any]:
    """Medians over reps, per workload and side, and the paired ratios."""
    out: dict[str, Any] = {}
    for workload in WORKLOADS:
        mine = [p for p in pairs if p.workload == workload]
        fig: dict[str, Any] = {}
        for side in SIDES:
            samples = [p.samples[side] for p in mine]
            fig[f"{side}_ops_per_s"] = statistics.median(s.ops_per_s for s in samples)
            fig[f"{side}_cpu_us_per_op"] = statistics.median(s.cpu_us_per_op for s in samples)
            margins = [marginal_us_per_op(s, short[workload][side]) for s in samples]
            kept = [m for m in margins if m is not None]
            fig[f"{side}_cpu_us_per_op_marginal"] = statistics.median(kept) if kept else None
            fig[f"{side}_cpu_s"] = statistics.median(s.cpu_s for s in samples)
            fig[f"{side}_ops"] = statistics.median(s.ops for s in samples)
            fig[f"{side}_short_run_cpu_s"] = short[workload][side].cpu_s
            fig[f"{side}_short_run_ops"] = short[workload][side].ops
        fig["holoload_p50_ms"] = statistics.median(p.samples["holoload"].extra["p50_ms"] for p in mine)
        fig["holoload_p99_ms"] = statistics.median(p.samples["holoload"].extra["p99_ms"] for p in mine)
        lat = [p.samples["pgbench"].extra["latency_avg_ms"] for p in mine]
        fig["pgbench_latency_avg_ms"] = statistics.median(lat) if None not in lat else None
        # Pair i's two runs were back to back: their ratio cancels slow drift on a shared box.
        fig["ratio"] = statistics.median(p.ratio() for p in mine)
        fig["ratios"] = [p.ratio() for p in mine]
        fig["ratio_workers"] = statistics.median(p.ratio("holoload_workers") for p in mine)
        fig["ratios_workers"] = [p.ratio("holoload_workers") for p in mine]
        fig["first"] = [p.first for p in mine]
        # the bare asyncpg loop is the limit for a Python client: holoload's engine against it
        fig["engine_overhead_ratio"] = statistics.median(p.ratio("holoload", "bare") for p in mine)
        fig["engine_overhead_ratios"] = [p.ratio("holoload", "bare") for p in mine]
        fig["engine_overhead_ratio_workers"] = statistics.median(p.ratio("holoload_workers", "bare") for p in mine)
        fig["bare_ratio"] = statistics.median(p.ratio("bare") for p in mine)
        # client CPU per op against pgbench's: start-up removed on both sides (pgbench has almost none)
        pg_marginal = fig["pgbench_cpu_us_per_op_marginal"] or fig["pgbench_cpu_us_per_op"]
        for side in ("holoload", "holoload_workers", "bare"):
            mine_marginal = fig[f"{side}_cpu_us_per_op_marginal"]
            key = "cpu_vs_pgbench" + {"holoload": "", "holoload_workers": "_workers", "bare": "_bare"}[side]
            fig[key] = None if mine_marginal is None else mine_marginal / pg_marginal
            fig[key + "_with_startup"] = fig[f"{side}_cpu_us_per_op"] / fig["pgbench_cpu_us_per_op"]
        out[workload] = fig
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def report(fig: dict[str, Any], seconds: int, reps: int, workers: int) -> dict[str, Any]:
    label = "median of " + str(reps) + " reps" if reps > 1 else "1 rep"
    print(f"\n{CLIENTS} connections, {seconds} s per run, {label}, rotating first side; workers = {workers}")
    head = ("workload", "client", "ops/s", "CPU us/op", "marginal", "ratio h/p")
    print(f"  {head[0]:<8} {head[1]:<16} {head[2]:>10} {head[3]:>10} {head[4]:>10} {head[5]:>10}")
    for workload in WORKLOADS:
        f = fig[workload]
        for side in SIDES:
            marginal = f[f"{side}_cpu_us_per_op_marginal"]
            ratio = {
                "holoload": f"{f['ratio']:.3f}",
                "holoload_workers": f"{f['ratio_workers']:.3f}",
                "bare": f"{f['bare_ratio']:.3f}",
            }.get(side, "")
            print(
                f"  {workload:<8} {side:<16} {f[f'{side}_ops_per_s']:>10,.0f} "
                f"{f[f'{side}_cpu_us_per_op']:>10.1f} "
                f"{'-' if marginal is None else f'{marginal:.1f}':>10} {ratio:>10}"
            )
    print(
        "  CPU us/op: user+sys of the whole client process / ops it completed; for holoload this\n"
        "  includes interpreter start-up, imports, connecting and writing results. marginal:\n"
        f"  (CPU - CPU of a {SHORT_RUN_S} s run) / (ops - ops of that run), i.e. start-up removed."
    )
    select, insert = fig["select"], fig["insert"]
    cpu = select["holoload_cpu_us_per_op"]
    checks = [
        (
            "select_ratio",
            select["ratio"],
            f">= {TARGETS['select_ratio']:.2f}x",
            select["ratio"] >= TARGETS["select_ratio"],
        ),
        (
            "select_ratio_workers",
            select["ratio_workers"],
            f">= {TARGETS['select_ratio_workers']:.2f}x",
            select["ratio_workers"] >= TARGETS["select_ratio_workers"],
        ),
        (
            "insert_ratio",
            insert["ratio"],
            f">= {TARGETS['insert_ratio']:.2f}x",
            insert["ratio"] >= TARGETS["insert_ratio"],
        ),
        (
            "client_cpu_us_per_op",
            cpu,
            f"<= {TARGETS['client_cpu_us_per_op']:g} us",
            cpu <= TARGETS["client_cpu_us_per_op"],
        ),
        (
            "engine_overhead_ratio",
            select["engine_overhead_ratio"],
            f">= {TARGETS['engine_overhead_ratio']:.2f}x the bare asyncpg loop",
            select["engine_overhead_ratio"] >= TARGETS["engine_overhead_ratio"],
        ),
        (
            "cpu_vs_pgbench",
            select["cpu_vs_pgbench"],
            f"<= {TARGETS['cpu_vs_pgbench']:.1f}x pgbench's CPU per op, start-up removed",
            select["cpu_vs_pgbench"] is not None and select["cpu_vs_pgbench"] <= TARGETS["cpu_vs_pgbench"],
        ),
    ]
    print("\ntargets")
    for name, value, target, ok in checks:
        shown = "-" if value is None else f"{value:.3f}"
        print(f"  {verdict(ok)} {name:<22} {shown:>8}  (target {target})")
    marginal = select["holoload_cpu_us_per_op_marginal"]
    if marginal is not None:
        print(
            f"  {verdict(marginal <= TARGETS['client_cpu_us_per_op'])} {'(marginal cpu, info)':<22} {marginal:>8.3f}"
            f"  (start-up removed; same target)"
        )
    return {
        "bench": "vs_pgbench",
        "seconds": seconds,
        "reps": reps,
        "clients": CLIENTS,
        "workers": workers,
        "select_ratio": select["ratio"],
        "select_ratio_workers": select["ratio_workers"],
        "insert_ratio": insert["ratio"],
        "insert_ratio_workers": insert["ratio_workers"],
        "client_cpu_us_per_op": cpu,
        "client_cpu_us_per_op_marginal": marginal,
        "engine_overhead_ratio": select["engine_overhead_ratio"],
        "engine_overhead_ratio_insert": insert["engine_overhead_ratio"],
        "cpu_vs_pgbench": select["cpu_vs_pgbench"],
        "cpu_vs_pgbench_with_startup": select["cpu_vs_pgbench_with_startup"],
        "cpu_vs_pgbench_bare": select["cpu_vs_pgbench_bare"],
        "load_avg_1m": [round(x, 2) for x in os.getloadavg()],
        "targets_met": {name: ok for name, _, _, ok in checks},
        "select": select,
        "insert": insert,
    }


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low}..{high}, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--seconds", type=bounded_int(2, MAX_SECONDS), default=10, help="seconds per timed run")
    add("--reps", type=bounded_int(1, MAX_REPS), default=1, help="timed pairs per workload (medians)")
    add("--warmup", type=bounded_int(0, 60), default=2, help="untimed pgbench select seconds first")
    add(
        "--workers",
        type=bounded_int(2, 64),
        default=max(2, os.cpu_count() or 2),
        help="worker processes of the holoload_workers side (default: one per CPU, at least 2)",
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    cluster = LocalCluster(1, base_port=BASE_PORT)
    try:
        node = cluster.start()[0]
        pgbench = find_client(cluster.binaries.bindir, "pgbench")
        log(
            f"PostgreSQL {cluster.binaries.version} on 127.0.0.1:{node.port}; {pgbench}; "
            f"holoload {sys.executable} -m holoload; {os.cpu_count()} CPUs; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        run_sql(node.dsn, *SETUP_SQL)
        pairs, short = measure(node.dsn, pgbench, args.seconds, args.reps, args.warmup, args.workers, log)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()

    data = report(figures(pairs, short), args.seconds, args.reps, args.workers)
    print(json.dumps(rounded(data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
