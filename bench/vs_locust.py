"""Benchmark: holoload's closed-loop point-SELECT throughput against Locust's, same server, same run.

    python bench/vs_locust.py [--seconds 10] [--reps 1] [--warmup 2] [--users 8] [--processes N]

Starts a 1-node local PostgreSQL (127.0.0.1, LocalCluster(1, base_port=58600)), loads
`bench_accounts` with 100k rows (bench/vs_pgbench.py's set-up), then per rep runs both clients
back to back, alternating which goes first, each with USERS connections over PROCESSES processes
(default: os.cpu_count()), running `SELECT balance FROM bench_accounts WHERE id = <id>` with id
uniform in 1..100000, as fast as possible (closed loop, no think time):

- holoload: vs_pgbench's select scenario (one `constant-concurrency` phase, concurrency = USERS)
  run as `python -m holoload SCENARIO --target TARGET --results-dir TMP -q --workers P`; ops/s
  from summary.json. `--workers` defaults to one process per CPU, so it is passed even for P = 1.
- Locust: a generated locustfile with a psycopg 3 User in the shape Locust's docs give for
  non-HTTP systems (a client that times each call and fires `events.request`), `wait_time =
  constant(0)`, one autocommit connection per user opened in on_start; psycopg prepares the
  statement server-side after 5 executions, as asyncpg does on the holoload side. Run as
  `python -m locust -f FILE --headless -u U -r U -t Ss --reset-stats --only-summary --csv P
  --json-file P [--processes P --master-bind-host 127.0.0.1 ...]`.

Windows: holoload's phase clock starts after its connections are open; `--reset-stats` makes
Locust's start once all users are spawned (each connects in on_start, a few ms), and Locust's
ops/s is its own `total_rps` (requests / (last request - stats start)). Neither excludes the
first second of running otherwise; `--warmup` runs each client untimed before the first rep.
Locust's figures are read from `--json-file` (written at shutdown, after the workers' final
reports); the CSV's Aggregated row is kept as a cross-check, because the CSV is rewritten only
once a second while running and can miss the last second.

gevent and psycopg 3: Locust monkey-patches `select` before it imports the locustfile; psycopg
(3.3.9 here) sees that at import (psycopg.waiting) and waits with the patched, cooperative `poll`
instead of its C `wait_c`, also with psycopg-binary. 8 greenlets running `SELECT pg_sleep(0.5)`
took 0.54 s as installed, 4.03 s with PSYCOPG_WAIT_FUNC=wait_c (one at a time). The locustfile
refuses to run when psycopg picked wait_c, and PSYCOPG_WAIT_FUNC is removed from Locust's env.
Needs: locust (2.47.0 here, with gevent 26.9.0), psycopg and psycopg-binary (3.3.9 here).

With P > 1 each side is a coordinating process plus P load processes (Locust's master and its
forked workers; holoload's coordinator and its workers), and both split the USERS connections
over them. Client CPU is user+sys of the finished client process tree (getrusage(RUSAGE_CHILDREN)
deltas; both parents wait for their workers, and a Locust process outliving its master is killed
and reported) divided by the operations counted, start-up included. Prints a table per rep and a
summary with the target (holoload/Locust ops/s >= 5.0x, median over reps) as PASS/MISS and,
for information, Locust's client CPU per op over holoload's (`cpu_ratio`: what the ops/s ratio
approaches when the clients, not the server sharing their cores, are the bottleneck). Ends with
one JSON line. A miss does not change the exit code; exit 1 only when a measurement failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/ is not a package; the repository root first, as for the `python -m holoload` children (cwd = root).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import vs_pgbench as pgbench_bench  # noqa: E402
from vs_pgbench import (  # noqa: E402
    ACCOUNTS,
    MAX_REPS,
    MAX_SECONDS,
    RUN_SLACK_S,
    SETUP_SQL,
    BenchError,
    Sample,
    bounded_int,
    client_env,
    rounded,
    run_child,
    run_sql,
    verdict,
    write_target,
)

from holoload.adapters.local.cluster import LocalCluster  # noqa: E402
from holoload.adapters.local.server import port_is_free  # noqa: E402

BASE_PORT = 58600
LOCUST_MASTER_PORT = BASE_PORT + 57  # the master's zmq port (Locust's default is 5557); first free one from here
PORT_TRIES = 20
USERS = 8
MAX_USERS = 256
MAX_PROCESSES = 64
SIDES = ("holoload", "locust")
TARGET_RATIO = 5.0

# Read by the locustfile (forked Locust workers inherit the environment).
DSN_VAR, ACCOUNTS_VAR = "VS_LOCUST_DSN", "VS_LOCUST_ACCOUNTS"

LOCUSTFILE = '''\
"""bench/vs_locust.py's Locust side: point SELECTs through psycopg 3, one connection per user."""

import os
import random
import time

import psycopg
import psycopg.waiting
from locust import User, constant, task

DSN = os.environ["VS_LOCUST_DSN"]
ACCOUNTS = int(os.environ["VS_LOCUST_ACCOUNTS"])
SQL = "SELECT balance FROM bench_accounts WHERE id = %s"

if psycopg.waiting.wait.__name__ == "wait_c":  # would block every greenlet of the process
    raise RuntimeError("psycopg waits in C under gevent: select is not monkey-patched or PSYCOPG_WAIT_FUNC is set")


class PostgresClient:
    """Wraps a psycopg connection; every query is reported to Locust as a request."""

    def __init__(self, dsn, request_event):
        self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        self.request_event = request_event

    def query(self, name, sql, params):
        exception, length = None, 0
        start = time.perf_counter()
        try:
            row = self.conn.execute(sql, params).fetchone()
            length = 0 if row is None else 1
        except Exception as exc:  # reported as a failure, like an HTTP error
            exception = exc
        self.request_event.fire(
            request_type="postgres",
            name=name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            exception=exception,
            context={},
        )

    def close(self):
        self.conn.close()


class PostgresUser(User):
    wait_time = constant(0)

    def on_start(self):
        self.client = PostgresClient(DSN, self.environment.events.request)

    def on_stop(self):
        self.client.close()

    @task
    def point_select(self):
        self.client.query("point_select", SQL, (random.randint(1, ACCOUNTS),))
'''


@dataclass(frozen=True)
class Setup:
    """What every run of either side needs."""

    dsn: str
    target: Path
    locustfile: Path
    workdir: Path
    users: int
    processes: int


# --- holoload -------------------------------------------------------------------------------


def holoload_sample(setup: Setup, seconds: int) -> Sample:
    """vs_pgbench's select scenario with USERS connections over --workers PROCESSES."""
    return pgbench_bench.holoload_sample("select", seconds, setup.target, setup.processes, clients=setup.users)


# --- Locust ---------------------------------------------------------------------------------


def free_port(first: int) -> int:
    for port in range(first, first + PORT_TRIES):
        if port_is_free(port):
            return port
    raise BenchError(f"no free port for Locust's master in {first}..{first + PORT_TRIES - 1}")


def locust_env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in client_env().items() if k != "PSYCOPG_WAIT_FUNC"}
    env.update({DSN_VAR: dsn, ACCOUNTS_VAR: str(ACCOUNTS)})
    return env


def stragglers(locustfile: Path) -> list[int]:
    """Pids of Locust processes of this run still alive (a worker its master did not wait for)."""
    mark = str(locustfile).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if mark in Path("/proc", entry, "cmdline").read_bytes():
                    pids.append(int(entry))
            except OSError:
                continue  # gone meanwhile
    return pids


def csv_aggregated(path: Path) -> dict[str, str]:
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") == "Aggregated":
                return row
    raise BenchError(f"no Aggregated row in {path}")


def locust_figures(entries: list[dict[str, Any]]) -> tuple[int, int, float, float]:
    """(requests, failures, window seconds, mean response ms) summed over the --json-file entries."""
    if not entries:
        raise BenchError("Locust's --json-file holds no stats entries: no request completed")
    requests = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    window_s = max(float(e["last_request_timestamp"] or 0) for e in entries) - min(e["start_time"] for e in entries)
    mean_ms = sum(float(e["total_response_time"]) for e in entries) / requests if requests else float("nan")
    return requests, failures, window_s, mean_ms


def locust_sample(setup: Setup, seconds: int) -> Sample:
    with tempfile.TemporaryDirectory(prefix="locust-", dir=setup.workdir) as tmp:
        prefix = str(Path(tmp) / "run")
        argv = [sys.executable, "-m", "locust", "-f", str(setup.locustfile), "--headless"]
        argv += ["-u", str(setup.users), "-r", str(setup.users), "-t", f"{seconds}s", "--reset-stats"]
        argv += ["--only-summary", "--csv", prefix, "--json-file", prefix, "--loglevel", "WARNING"]
        if setup.processes > 1:
            port = str(free_port(LOCUST_MASTER_PORT))
            argv += ["--processes", str(setup.processes), "--master-bind-host", "127.0.0.1"]
            argv += ["--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port]
        try:
            done, cpu_s, wall_s = run_child(argv, seconds + RUN_SLACK_S, env=locust_env(setup.dsn))
        finally:
            left = stragglers(setup.locustfile)
            for pid in left:  # a worker outliving its master: its CPU is missing, and it would load the next run
                os.kill(pid, signal.SIGKILL)
        if done.returncode != 0:
            raise BenchError(f"locust exited {done.returncode}:\n{done.stdout}{done.stderr}")
        try:
            entries = json.loads(Path(prefix + ".json").read_text())
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read Locust's --json-file: {exc}\n{done.stdout}{done.stderr}") from exc
        aggregated = csv_aggregated(Path(prefix + "_stats.csv"))
    requests, failures, window_s, mean_ms = locust_figures(entries)
    if failures:
        raise BenchError(f"locust: {failures} failed requests:\n{done.stderr[-4000:]}")
    if window_s <= 0:
        raise BenchError(f"locust: no measurement window ({requests} requests)")
    extra = {
        "avg_ms": mean_ms,
        "phase_s": window_s,
        "csv_requests": int(aggregated["Request Count"]),
        "csv_rps": float(aggregated["Requests/s"]),
        "stragglers_killed": len(left),
    }
    if left:
        print(f"  warning: killed {len(left)} Locust process(es) left after the master exited; CPU incomplete")
    return Sample(requests, requests / window_s, cpu_s, wall_s, extra)


# --- the measurement ------------------------------------------------------------------------


@dataclass
class Pair:
    """One rep: both sides, measured back to back."""

    first: str
    samples: dict[str, Sample]

    @property
    def ratio(self) -> float:
        return self.samples["holoload"].ops_per_s / self.samples["locust"].ops_per_s


def measure_one(side: str, setup: Setup, seconds: int) -> Sample:
    return holoload_sample(setup, seconds) if side == "holoload" else locust_sample(setup, seconds)


def print_pair(pair: Pair, rep: int, reps: int) -> None:
    print(f"\nrep {rep + 1}/{reps} ({pair.first} first)")
    head = ("client", "ops/s", "ops", "CPU us/op", "CPU s", "wall s", "window s", "latency")
    print(f"  {head[0]:<9} {head[1]:>10} {head[2]:>10} {head[3]:>10} {head[4]:>7} {head[5]:>7} {head[6]:>9}  {head[7]}")
    for side in SIDES:
        s = pair.samples[side]
        if side == "holoload":
            lat = f"p50 {s.extra['p50_ms']:.3f} ms, p99 {s.extra['p99_ms']:.3f} ms"
        else:
            lat = f"mean {s.extra['avg_ms']:.3f} ms (csv: {s.extra['csv_requests']:,} req, {s.extra['csv_rps']:,.0f}/s)"
        print(
            f"  {side:<9} {s.ops_per_s:>10,.0f} {s.ops:>10,} {s.cpu_us_per_op:>10.1f} {s.cpu_s:>7.2f} "
            f"{s.wall_s:>7.1f} {s.extra['phase_s']:>9.2f}  {lat}"
        )
    ok = pair.ratio >= TARGET_RATIO
    print(f"  ratio holoload/locust {pair.ratio:.2f}x  {verdict(ok)} (target >= {TARGET_RATIO:g}x)")


def measure(setup: Setup, seconds: int, reps: int, warmup: int, log: Callable[[str], None]) -> list[Pair]:
    if warmup:
        for side in SIDES[::-1]:
            log(f"warm-up: {side} {warmup} s (not recorded)")
            measure_one(side, setup, warmup)
    pairs = []
    for rep in range(reps):
        order = SIDES if rep % 2 == 0 else SIDES[::-1]
        pair = Pair(order[0], {side: measure_one(side, setup, seconds) for side in order})
        print_pair(pair, rep, reps)
        pairs.append(pair)
    return pairs


def report(pairs: list[Pair], setup: Setup, seconds: int, reps: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bench": "vs_locust",
        "locust_ratio": statistics.median(p.ratio for p in pairs),
        "target_ratio": TARGET_RATIO,
    }
    for side in SIDES:
        samples = [p.samples[side] for p in pairs]
        data[f"{side}_ops_per_s"] = statistics.median(s.ops_per_s for s in samples)
        data[f"{side}_cpu_us_per_op"] = statistics.median(s.cpu_us_per_op for s in samples)
    # Client CPU per op, Locust over holoload: what the ratio of ops/s tends to when the client, not the
    # server, is the bottleneck (on a small box both share the cores with PostgreSQL).
    data["cpu_ratio"] = statistics.median(
        p.samples["locust"].cpu_us_per_op / p.samples["holoload"].cpu_us_per_op for p in pairs
    )
    data["target_met"] = data["locust_ratio"] >= TARGET_RATIO
    data.update(
        processes=setup.processes,
        holoload_processes=setup.processes,
        users=setup.users,
        seconds=seconds,
        reps=reps,
        ratios=[p.ratio for p in pairs],
        first=[p.first for p in pairs],
        holoload_ops_per_s_reps=[p.samples["holoload"].ops_per_s for p in pairs],
        locust_ops_per_s_reps=[p.samples["locust"].ops_per_s for p in pairs],
        holoload_p50_ms=statistics.median(p.samples["holoload"].extra["p50_ms"] for p in pairs),
        locust_avg_ms=statistics.median(p.samples["locust"].extra["avg_ms"] for p in pairs),
    )
    label = f"median of {reps} reps" if reps > 1 else "1 rep"
    print(
        f"\n{setup.users} connections; locust {setup.processes} process(es), holoload {setup.processes}; "
        f"{seconds} s per run, {label}"
    )
    print(f"  {'client':<9} {'ops/s':>10} {'CPU us/op':>10}")
    for side in SIDES:
        print(f"  {side:<9} {data[f'{side}_ops_per_s']:>10,.0f} {data[f'{side}_cpu_us_per_op']:>10.1f}")
    print(f"  client CPU per op, locust/holoload: {data['cpu_ratio']:.2f}x (info)")
    print(
        f"  {verdict(data['target_met'])} locust_ratio {data['locust_ratio']:.2f}x  (target >= {TARGET_RATIO:g}x; "
        f"per rep: {', '.join(f'{r:.2f}' for r in data['ratios'])})"
    )
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--seconds", type=bounded_int(2, MAX_SECONDS), default=10, help="seconds per timed run")
    add("--reps", type=bounded_int(1, MAX_REPS), default=1, help="timed pairs (medians)")
    add("--warmup", type=bounded_int(0, 60), default=2, help="untimed seconds per client before the first rep")
    add("--users", type=bounded_int(1, MAX_USERS), default=USERS, help="connections per client (Locust users)")
    add(
        "--processes",
        type=bounded_int(1, MAX_PROCESSES),
        default=min(os.cpu_count() or 1, MAX_PROCESSES),
        help="client processes per side: Locust --processes, holoload --workers (default: CPUs)",
    )
    args = parser.parse_args(argv)
    if args.users < args.processes:
        parser.error(f"--users {args.users} < --processes {args.processes}: some processes would have no user")

    def log(line: str) -> None:
        print(line, flush=True)

    cluster = LocalCluster(1, base_port=BASE_PORT)
    try:
        with tempfile.TemporaryDirectory(prefix="holoload-vs-locust-") as tmp:
            node = cluster.start()[0]
            workdir = Path(tmp)
            locustfile = workdir / "locustfile_pg.py"
            locustfile.write_text(LOCUSTFILE)
            target = write_target(workdir, node.dsn)
            setup = Setup(node.dsn, target, locustfile, workdir, args.users, args.processes)
            log(
                f"PostgreSQL {cluster.binaries.version} on 127.0.0.1:{node.port}; {os.cpu_count()} CPUs; "
                f"{args.users} users/connections, {args.processes} process(es) per side"
            )
            run_sql(node.dsn, *SETUP_SQL)
            pairs = measure(setup, args.seconds, args.reps, args.warmup, log)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()

    print(json.dumps(rounded(report(pairs, setup, args.seconds, args.reps))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
