"""Benchmark: how exactly holoload's open-loop (constant-rate) executor holds its rate, and how late it starts ops.

    python bench/open_loop_accuracy.py [--seconds 10] [--rates 2000,5000] [--reps 1]

Starts a 1-node local PostgreSQL (127.0.0.1, LocalCluster(1, base_port=58510)) with the
100k-row `bench_accounts` table of bench/vs_pgbench.py, and for each rate runs a one-phase
scenario through the holoload CLI (`python -m holoload SCENARIO --target TARGET
--results-dir TMP -q`): a `constant-rate` workload of point SELECTs with `max_inflight = 32`.
From the run's summary.json it reports the achieved rate (`ops_per_s` = ok / phase
seconds), `schedule_lag_p99_ms` (how late ops started against their intended times),
drops and errors, and cross-checks them: ok / nominal duration, and ok + dropped + errors
against rate x duration (the number of arrivals the schedule holds).

Targets (PASS/MISS; a miss does not change the exit code): achieved rate within 0.5 % of
the target, schedule lag p99 <= 1.5 ms. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_pgbench import (  # noqa: E402  (a sibling script, not a package)
    ACCOUNTS,
    RUN_SLACK_S,
    SETUP_SQL,
    BenchError,
    bounded_int,
    rounded,
    run_child,
    run_sql,
    write_target,
)

from holoload.adapters.cluster import LocalCluster  # noqa: E402

BASE_PORT = 58510
MAX_INFLIGHT = 32
MAX_RATE = 50_000
MAX_REPS = 10
RATE_ERROR_TARGET_PCT = 0.5
LAG_P99_TARGET_MS = 1.5

SCENARIO_TOML = """\
name = "open_loop_{rate}"
description = "bench/open_loop_accuracy.py: constant-rate point SELECTs at {rate}/s"
window = "1s"

[[phases]]
name = "main"
duration = "{seconds}s"

[[phases.workloads]]
name = "point"
executor = "constant-rate"
rate = {rate}
max_inflight = {inflight}

[[phases.workloads.ops]]
name = "select"
sql = "SELECT balance FROM bench_accounts WHERE id = $1"
params = [{{ gen = "uniform", min = 1, max = {accounts} }}]
"""


def parse_rates(text: str) -> list[int]:
    try:
        rates = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates, got {text!r}") from None
    if not rates or any(not 1 <= r <= MAX_RATE for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be 1..{MAX_RATE:,}, got {text!r}")
    return rates


def run_rate(rate: int, seconds: int, target: Path) -> dict[str, Any]:
    """One holoload run at `rate`; its figures from summary.json and timeseries.csv."""
    text = SCENARIO_TOML.format(rate=rate, seconds=seconds, inflight=MAX_INFLIGHT, accounts=ACCOUNTS)
    with tempfile.TemporaryDirectory(prefix="holoload-bench-") as tmp:
        scenario = Path(tmp) / "scenario.toml"
        scenario.write_text(text)
        results = Path(tmp) / "results"
        cmd = [sys.executable, "-m", "holoload", str(scenario), "--target", str(target)]
        cmd += ["--results-dir", str(results), "-q"]
        done, cpu_s, wall_s = run_child(cmd, seconds + RUN_SLACK_S)
        summaries = list(results.glob("*/summary.json"))
        if done.returncode != 0 or len(summaries) != 1:
            raise BenchError(
                f"holoload exited {done.returncode} with {len(summaries)} summary.json; output:\n"
                f"{done.stdout}{done.stderr}"
            )
        summary = json.loads(summaries[0].read_text())
        windows = per_window_rates(summaries[0].parent / "timeseries.csv")
    try:
        phase = summary["phases"]["main"]
        fig = phase["ops"]["point.select"]
    except KeyError as exc:
        raise BenchError("summary.json has no phases.main.ops['point.select']") from exc
    ok, dropped, errors = int(fig["ok"]), int(fig["dropped"]), int(fig["error_count"])
    expected = rate * seconds
    return {
        "rate": rate,
        "ops_per_s": fig["ops_per_s"],
        "rate_error_pct": (fig["ops_per_s"] - rate) / rate * 100,
        "lag_p99_ms": fig["schedule_lag_p99_ms"],
        "dropped": dropped,
        "errors": errors,
        "ok": ok,
        "phase_seconds": phase["seconds"],
        # Cross-checks that do not depend on the engine's phase clock:
        "ok_per_nominal_s": ok / seconds,
        "arrivals_vs_schedule_pct": (ok + dropped + errors - expected) / expected * 100,
        "latency_p50_ms": (fig["latency_ms"] or {}).get("p50"),
        "latency_p99_ms": (fig["latency_ms"] or {}).get("p99"),
        "service_p99_ms": fig["service_p99_ms"],
        "window_ops_per_s_min": min(windows) if windows else None,
        "window_ops_per_s_max": max(windows) if windows else None,
        "client_cpu_s": cpu_s,
        "wall_s": wall_s,
    }


def per_window_rates(path: Path) -> list[float]:
    """ops/s of each full 1 s window of the phase (the all-endpoints '*' rows)."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("endpoint") == "*" and r.get("ops_per_s")]
    return [float(r["ops_per_s"]) for r in rows[:-1]]  # the last window is the partial tail


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-key medians of several runs at one rate (numbers only)."""
    if len(runs) == 1:
        return runs[0]
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        values = [r[key] for r in runs]
        if isinstance(value, (int, float)) and None not in values:
            out[key] = statistics.median(values)
        else:
            out[key] = value
    return out


def report(results: dict[int, dict[str, Any]], seconds: int, reps: int) -> dict[str, Any]:
    label = f"median of {reps} runs" if reps > 1 else "1 run"
    print(f"\nconstant-rate point SELECT, max_inflight {MAX_INFLIGHT}, {seconds} s phase, {label}")
    head = f"  {'target/s':>8} {'achieved/s':>11} {'error %':>8} {'lag p99 ms':>10} {'dropped':>8}"
    print(head + f" {'errors':>6} {'phase s':>8} {'ok/nominal s':>12} {'arrivals vs sched %':>19}")
    for rate, r in results.items():
        lag = "-" if r["lag_p99_ms"] is None else f"{r['lag_p99_ms']:.3f}"
        print(
            f"  {rate:>8,} {r['ops_per_s']:>11,.1f} {r['rate_error_pct']:>+8.3f} {lag:>10} "
            f"{r['dropped']:>8,} {r['errors']:>6,} {r['phase_seconds']:>8.3f} "
            f"{r['ok_per_nominal_s']:>12,.1f} {r['arrivals_vs_schedule_pct']:>+19.3f}"
        )
        print(
            f"  {'':>8} latency p50/p99 {r['latency_p50_ms']:.3f}/{r['latency_p99_ms']:.3f} ms, "
            f"service p99 {r['service_p99_ms']:.3f} ms, 1 s windows "
            f"{r['window_ops_per_s_min']:,.0f}..{r['window_ops_per_s_max']:,.0f} ops/s, "
            f"client CPU {r['client_cpu_s']:.2f} s"
        )
    print(
        "  error %: (ops_per_s - target) / target, ops_per_s = ok / phase seconds (summary.json);\n"
        "  lag: intended start -> a connection took the op (schedule_lag_p99_ms); early starts\n"
        "  record as 0."
    )
    print("\ntargets")
    data: dict[str, Any] = {"bench": "open_loop_accuracy", "seconds": seconds, "reps": reps}
    for rate, r in results.items():
        tag = f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)
        err_ok = abs(r["rate_error_pct"]) <= RATE_ERROR_TARGET_PCT
        lag_ok = r["lag_p99_ms"] is not None and r["lag_p99_ms"] <= LAG_P99_TARGET_MS
        print(
            f"  {verdict(err_ok)} rate_error_pct_{tag:<5} {r['rate_error_pct']:>+8.3f}  "
            f"(target within +-{RATE_ERROR_TARGET_PCT} %)"
        )
        lag = float("nan") if r["lag_p99_ms"] is None else r["lag_p99_ms"]
        print(f"  {verdict(lag_ok)} lag_p99_ms_{tag:<9} {lag:>8.3f}  (target <= {LAG_P99_TARGET_MS} ms)")
        data[f"rate_error_pct_{tag}"] = r["rate_error_pct"]
        data[f"lag_p99_ms_{tag}"] = r["lag_p99_ms"]
        data[f"dropped_{tag}"] = r["dropped"]
        data[f"targets_met_{tag}"] = {"rate_error": err_ok, "lag_p99": lag_ok}
        data[f"raw_{tag}"] = r
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--seconds", type=bounded_int(2, 600), default=10, help="phase duration per run")
    add("--rates", type=parse_rates, default=[2000, 5000], help="target rates, e.g. 2000,5000")
    add("--reps", type=bounded_int(1, MAX_REPS), default=1, help="runs per rate (medians)")
    args = parser.parse_args(argv)

    log: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    runs: dict[int, list[dict[str, Any]]] = {rate: [] for rate in args.rates}
    cluster = LocalCluster(1, base_port=BASE_PORT)
    try:
        node = cluster.start()[0]
        log(f"PostgreSQL {cluster.binaries.version} on 127.0.0.1:{node.port}; {os.cpu_count()} CPUs")
        run_sql(node.dsn, *SETUP_SQL)
        with tempfile.TemporaryDirectory(prefix="holoload-open-loop-") as tmp:
            target = write_target(Path(tmp), node.dsn)
            for rep in range(args.reps):
                order = args.rates if rep % 2 == 0 else args.rates[::-1]
                for rate in order:
                    r = run_rate(rate, args.seconds, target)
                    runs[rate].append(r)
                    lag = r["lag_p99_ms"]
                    log(
                        f"rep {rep + 1}/{args.reps} rate {rate:>6,}/s: {r['ops_per_s']:,.1f} ops/s "
                        f"({r['rate_error_pct']:+.3f} %), lag p99 {lag} ms, dropped {r['dropped']}"
                    )
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()

    results = {rate: median_run(rs) for rate, rs in runs.items()}
    print(json.dumps(rounded(report(results, args.seconds, args.reps))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
