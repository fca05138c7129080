"""pgbench at a fixed rate (`-R`) with a per-transaction log: the schedule lag of a C client.

Used by bench/open_loop_accuracy.py as the reference for holoload's open-loop lag. pgbench
runs `pgbench -n -M prepared -c C -j J -R RATE -T S -l --log-prefix PREFIX -f select.sql DSN`.
With `-R` and `-l`, each line of PostgreSQL 15's per-transaction log is

    client_id transaction_no time script_no time_epoch time_us schedule_lag

(`time` is the transaction's latency and `schedule_lag` the difference between its scheduled
and actual start, both in microseconds; a `retries` column follows only with `--max-tries`
other than 1, which is not used here, and `time` reads `skipped` only with `--latency-limit`,
not used either). One log file per thread: PREFIX.PID and PREFIX.PID.N.

Note: pgbench draws its schedule from a Poisson process at the given rate (exponential
gaps); holoload spaces arrivals evenly. The Poisson schedule is the harder one to keep.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from vs_pgbench import PGBENCH_SCRIPTS, RUN_SLACK_S, BenchError, client_env, parse_pgbench, run_child

THREADS = 2


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def read_logs(prefix: Path) -> tuple[list[int], list[int]]:
    """(latencies us, schedule lags us) of every transaction in the logs PREFIX.*."""
    latencies: list[int] = []
    lags: list[int] = []
    files = sorted(prefix.parent.glob(prefix.name + ".*"))
    if not files:
        raise BenchError(f"pgbench wrote no per-transaction log {prefix}.*")
    for path in files:
        for line in path.read_text().splitlines():
            cols = line.split()
            if len(cols) < 7:
                raise BenchError(f"{path}: expected 7 columns with -R, got {line!r}")
            if cols[2] == "skipped":
                continue
            latencies.append(int(cols[2]))
            lags.append(int(cols[6]))
    return latencies, lags


def pgbench_rate_sample(pgbench: str, dsn: str, rate: int, seconds: int, clients: int) -> dict[str, Any]:
    """One `pgbench -R` run of the point SELECT; lag and latency percentiles from its log, CPU."""
    with tempfile.TemporaryDirectory(prefix="holoload-pgbench-rate-") as tmp:
        script = Path(tmp) / "select.sql"
        script.write_text(PGBENCH_SCRIPTS["select"])
        prefix = Path(tmp) / "pgbench_log"
        cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(THREADS)]
        cmd += ["-R", str(rate), "-T", str(seconds), "-l", f"--log-prefix={prefix}", "-f", str(script), dsn]
        done, cpu_s, wall_s = run_child(cmd, seconds + RUN_SLACK_S, env=client_env())
        if done.returncode != 0:
            raise BenchError(f"pgbench -R exited {done.returncode}:\n{done.stdout}{done.stderr}")
        processed, tps, _ = parse_pgbench(done.stdout)
        latencies, lags = read_logs(prefix)
    latencies.sort()
    lags.sort()
    return {
        "rate": rate,
        "ops": processed,
        "ops_per_s": tps,
        "logged": len(lags),
        "lag_p50_ms": percentile(lags, 50) / 1000,
        "lag_p99_ms": percentile(lags, 99) / 1000,
        "lag_max_ms": (lags[-1] / 1000) if lags else float("nan"),
        "latency_p50_ms": percentile(latencies, 50) / 1000,
        "latency_p99_ms": percentile(latencies, 99) / 1000,
        "client_cpu_s": cpu_s,
        "cpu_us_per_op": cpu_s / processed * 1e6 if processed else float("nan"),
        "wall_s": wall_s,
    }
