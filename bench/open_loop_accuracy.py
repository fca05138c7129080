"""Benchmark: how exactly holoload's open-loop (constant-rate) executor holds its rate, how late it starts
ops against pgbench -R on the same server, and what an open-loop op costs in client CPU.

    python bench/open_loop_accuracy.py [--seconds 10] [--rates 2000,5000] [--reps 1] [--workers 1,2]

Starts a 1-node local PostgreSQL (127.0.0.1, LocalCluster(1, base_port=58510)) with the
100k-row `bench_accounts` table of bench/vs_pgbench.py. In one invocation, per rep:

- pgbench's closed loop (vs_pgbench.py's select, 8 connections): its CPU per op;
- holoload's closed loop (vs_pgbench.py's select scenario, 8 connections) with `--workers auto`
  and with each count of `--workers` that auto did not pick: ops/s and CPU per op;
- per rate, rotating the order: `pgbench -R RATE` (32 connections, per-transaction log; see
  bench/pgbench_rate.py) and holoload runs of a one-phase scenario through the CLI
  (`python -m holoload SCENARIO --target TARGET --results-dir TMP -q --workers W`): a
  `constant-rate` workload of point SELECTs with `max_inflight = 32`, for `--workers auto`
  and the other counts.

Before the reps, one short run (`--short-seconds`) of every holoload setting, open and closed
loop, gives its start-up CPU: CPU per op "marginal" = (CPU - CPU_short) / (ops - ops_short).

From each holoload run's summary.json: the achieved rate (`ops_per_s` = ok / phase seconds),
`schedule_lag_p99_ms`, drops and errors, and cross-checks (ok / nominal duration; ok + dropped
+ errors against rate x duration). Ratios: `lag_p99_ratio_<rate>` = holoload's lag p99 /
pgbench's in the same rep; `cpu_us_per_op_open_vs_closed` = open-loop marginal CPU per op /
closed-loop marginal CPU per op (`--workers auto`, the worst rate).

Targets (PASS/MISS; a miss does not change the exit code): achieved rate within 0.5 % of
the target, schedule lag p99 <= 1.5 ms, lag ratio <= 1.5, open/closed CPU <= 1.0. Ends with
one JSON line.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgbench_rate import pgbench_rate_sample  # noqa: E402  (a sibling script, not a package)
from vs_pgbench import (  # noqa: E402
    ACCOUNTS,
    PGBENCH_SCRIPTS,
    RUN_SLACK_S,
    SETUP_SQL,
    BenchError,
    bounded_int,
    find_client,
    holoload_sample,
    pgbench_sample,
    rounded,
    run_child,
    run_sql,
    write_target,
)

from holoload.adapters.local.cluster import LocalCluster  # noqa: E402

BASE_PORT = 58510
MAX_INFLIGHT = 32
MAX_RATE = 50_000
MAX_REPS = 10
RATE_ERROR_TARGET_PCT = 0.5
LAG_P99_TARGET_MS = 1.5
LAG_RATIO_TARGET = 1.5  # holoload's lag p99 / pgbench -R's, same server, same invocation
CPU_RATIO_TARGET = 1.0  # open-loop CPU per op / closed-loop CPU per op

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


def run_rate(rate: int, seconds: int, target: Path, workers: str = "auto") -> dict[str, Any]:
    """One holoload run at `rate` over `workers` ('auto' or a count); figures from summary.json and timeseries.csv."""
    text = SCENARIO_TOML.format(rate=rate, seconds=seconds, inflight=MAX_INFLIGHT, accounts=ACCOUNTS)
    with tempfile.TemporaryDirectory(prefix="holoload-bench-") as tmp:
        scenario = Path(tmp) / "scenario.toml"
        scenario.write_text(text)
        results = Path(tmp) / "results"
        cmd = [sys.executable, "-m", "holoload", str(scenario), "--target", str(target)]
        cmd += ["--results-dir", str(results), "-q", "--workers", workers]
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
        "workers": int((summary.get("workers") or {}).get("count") or 1),
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
        "cpu_us_per_op": cpu_s / (ok + errors) * 1e6 if ok + errors else float("nan"),
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


def marginal_us_per_op(long: dict[str, Any], short: dict[str, Any]) -> float | None:
    """Client CPU per op with start-up removed: (CPU_long - CPU_short) / (ops_long - ops_short)."""
    ops = long["ops"] - short["ops"]
    return (long["client_cpu_s"] - short["client_cpu_s"]) / ops * 1e6 if ops > 0 else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def tag_of(rate: int) -> str:
    return f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)


def med(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def closed_run(seconds: int, target: Path, workers: str) -> dict[str, Any]:
    """The closed-loop reference: vs_pgbench.py's select scenario (8 connections) over `workers`."""
    sample = holoload_sample("select", seconds, target, workers)
    return {
        "ops": sample.ops,
        "ops_per_s": sample.ops_per_s,
        "client_cpu_s": sample.cpu_s,
        "cpu_us_per_op": sample.cpu_us_per_op,
        "wall_s": sample.wall_s,
    }


@dataclass
class Measured:
    """Every run of one invocation; configs are worker settings ('auto', '1', '2')."""

    rates: list[int]
    configs: list[str]
    auto_workers: int
    open_runs: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)
    open_short: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    closed_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    closed_short: dict[str, dict[str, Any]] = field(default_factory=dict)
    pgbench_runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pgbench_closed: list[dict[str, Any]] = field(default_factory=list)
    load_avg: list[float] = field(default_factory=list)


def measure(dsn: str, pgbench: str, target: Path, args: argparse.Namespace, log: Callable[[str], None]) -> Measured:
    """Short runs first (start-up cost; they also warm up), then `reps` rounds of every side."""
    short = args.short_seconds
    first = run_rate(args.rates[0], short, target, "auto")
    first["ops"] = first["ok"] + first["errors"]
    auto = first["workers"]
    configs = ["auto"] + [str(n) for n in args.workers if n != auto]
    m = Measured(args.rates, configs, auto, load_avg=[os.getloadavg()[0]])
    log(f"--workers auto runs {auto} process(es) here; also measured: {', '.join(configs[1:]) or 'nothing'}")
    m.open_short[(args.rates[0], "auto")] = first
    for cfg in configs:
        m.closed_short[cfg] = closed_run(short, target, cfg)
        for rate in args.rates:
            if (rate, cfg) not in m.open_short:
                r = run_rate(rate, short, target, cfg)
                r["ops"] = r["ok"] + r["errors"]
                m.open_short[(rate, cfg)] = r
    log(f"start-up runs done ({short} s each, open and closed loop per worker setting)")
    script = target.parent / "select.sql"
    script.write_text(PGBENCH_SCRIPTS["select"])
    for rep in range(args.reps):
        # pgbench's own closed loop (8 connections): its open/closed CPU ratio is the reference
        # for holoload's (every client pays more per op when it sleeps between ops)
        pc = pgbench_sample(pgbench, dsn, "select", args.seconds, script)
        m.pgbench_closed.append({"ops": pc.ops, "ops_per_s": pc.ops_per_s, "cpu_us_per_op": pc.cpu_us_per_op})
        log(f"rep {rep + 1}/{args.reps} closed loop, pgbench     : {pc.ops_per_s:>9,.0f} ops/s CPU {pc.cpu_s:.2f} s")
        for cfg in configs if rep % 2 == 0 else configs[::-1]:
            c = closed_run(args.seconds, target, cfg)
            m.closed_runs.setdefault(cfg, []).append(c)
            log(
                f"rep {rep + 1}/{args.reps} closed loop, workers {cfg:<4}: {c['ops_per_s']:>9,.0f} ops/s "
                f"CPU {c['client_cpu_s']:.2f} s"
            )
        order = args.rates if rep % 2 == 0 else args.rates[::-1]
        for i, rate in enumerate(order):
            sides = ["pgbench", *configs]
            shift = (rep + i) % len(sides)
            for side in sides[shift:] + sides[:shift]:
                if side == "pgbench":
                    g = pgbench_rate_sample(pgbench, dsn, rate, args.seconds, MAX_INFLIGHT)
                    m.pgbench_runs.setdefault(rate, []).append(g)
                    log(
                        f"rep {rep + 1}/{args.reps} rate {rate:>6,}/s pgbench -R        : {g['ops_per_s']:,.1f} "
                        f"ops/s, lag p99 {g['lag_p99_ms']:.3f} ms, CPU {g['client_cpu_s']:.2f} s"
                    )
                    continue
                r = run_rate(rate, args.seconds, target, side)
                r["ops"] = r["ok"] + r["errors"]
                m.open_runs.setdefault((rate, side), []).append(r)
                log(
                    f"rep {rep + 1}/{args.reps} rate {rate:>6,}/s holoload workers {side:<4}: "
                    f"{r['ops_per_s']:,.1f} ops/s ({r['rate_error_pct']:+.3f} %), lag p99 {r['lag_p99_ms']} ms, "
                    f"dropped {r['dropped']}, CPU {r['client_cpu_s']:.2f} s"
                )
        m.load_avg.append(os.getloadavg()[0])
    return m


def figures(m: Measured) -> dict[str, Any]:
    """Per rate and worker setting: medians over reps, and ratios of runs from the same rep."""
    out: dict[str, Any] = {}
    closed: dict[str, dict[str, Any]] = {}
    for cfg in m.configs:
        runs = m.closed_runs[cfg]
        closed[cfg] = median_run(runs)
        closed[cfg]["cpu_us_per_op_marginal"] = med([marginal_us_per_op(r, m.closed_short[cfg]) for r in runs])
    out["closed"] = closed
    out["pgbench_closed"] = median_run(m.pgbench_closed)
    for rate in m.rates:
        pg = m.pgbench_runs[rate]
        per: dict[str, Any] = {"pgbench": median_run(pg)}
        per["pgbench"]["cpu_open_vs_closed"] = ratio(
            per["pgbench"]["cpu_us_per_op"], out["pgbench_closed"]["cpu_us_per_op"]
        )
        for cfg in m.configs:
            runs = m.open_runs[(rate, cfg)]
            r = median_run(runs)
            r["cpu_us_per_op_marginal"] = med([marginal_us_per_op(x, m.open_short[(rate, cfg)]) for x in runs])
            # rep i's holoload and pgbench runs were back to back: pair them
            r["lag_p99_ratio"] = med([ratio(x["lag_p99_ms"], g["lag_p99_ms"]) for x, g in zip(runs, pg, strict=True)])
            r["cpu_open_vs_closed"] = ratio(r["cpu_us_per_op_marginal"], closed[cfg]["cpu_us_per_op_marginal"])
            r["cpu_open_vs_closed_with_startup"] = ratio(r["cpu_us_per_op"], closed[cfg]["cpu_us_per_op"])
            per[cfg] = r
        out[rate] = per
    return out


def wlabel(m: Measured, cfg: str) -> str:
    return f"w{m.auto_workers if cfg == 'auto' else cfg}"


def report(m: Measured, fig: dict[str, Any], seconds: int, reps: int) -> dict[str, Any]:
    label = f"median of {reps} runs" if reps > 1 else "1 run"
    print(
        f"\nconstant-rate point SELECT, max_inflight {MAX_INFLIGHT}, {seconds} s phase, {label}; "
        f"load average (1 min) {', '.join(f'{x:.1f}' for x in m.load_avg)}"
    )
    head = f"  {'target/s':>8} {'client':<14} {'achieved/s':>11} {'error %':>8} {'lag p99 ms':>10} {'lag/pgb':>7}"
    print(head + f" {'dropped':>8} {'CPU us/op':>9} {'marginal':>8} {'open/closed':>11}")
    for rate in m.rates:
        g = fig[rate]["pgbench"]
        print(
            f"  {rate:>8,} {'pgbench -R':<14} {g['ops_per_s']:>11,.1f} {'':>8} {g['lag_p99_ms']:>10.3f} "
            f"{'':>7} {'':>8} {g['cpu_us_per_op']:>9.1f}"
        )
        for cfg in m.configs:
            r = fig[rate][cfg]
            name = f"holoload {wlabel(m, cfg)}" + ("*" if cfg == "auto" else "")
            print(
                f"  {'':>8} {name:<14} {r['ops_per_s']:>11,.1f} {r['rate_error_pct']:>+8.3f} "
                f"{fmt(r['lag_p99_ms'], 10)} {fmt(r['lag_p99_ratio'], 7, 2)} {r['dropped']:>8,} "
                f"{r['cpu_us_per_op']:>9.1f} {fmt(r['cpu_us_per_op_marginal'], 8, 1)} "
                f"{fmt(r['cpu_open_vs_closed'], 11, 2)}"
            )
    for cfg in m.configs:
        c = fig["closed"][cfg]
        print(
            f"  closed loop (8 connections) holoload {wlabel(m, cfg)}: {c['ops_per_s']:,.0f} ops/s, "
            f"CPU {c['cpu_us_per_op']:.1f} us/op, marginal {fmt(c['cpu_us_per_op_marginal'], 0, 1)}"
        )
    print(
        "  * = --workers auto. lag: intended start -> a connection took the op (holoload's\n"
        "  schedule_lag_p99_ms; pgbench's schedule_lag column). CPU us/op: user+sys of the client\n"
        "  process tree / ops; marginal: start-up removed with a short run of the same setting;\n"
        "  open/closed: marginal open-loop CPU per op / marginal closed-loop CPU per op."
    )
    print("\ntargets")
    data: dict[str, Any] = {"bench": "open_loop_accuracy", "seconds": seconds, "reps": reps}
    data["load_avg_1m"] = m.load_avg
    data["workers_auto"] = m.auto_workers
    cpu_ratios = []
    for rate in m.rates:
        tag = tag_of(rate)
        r = fig[rate]["auto"]
        err_ok = abs(r["rate_error_pct"]) <= RATE_ERROR_TARGET_PCT
        lag_ok = r["lag_p99_ms"] is not None and r["lag_p99_ms"] <= LAG_P99_TARGET_MS
        ratio_ok = r["lag_p99_ratio"] is not None and r["lag_p99_ratio"] <= LAG_RATIO_TARGET
        print(
            f"  {verdict(err_ok)} rate_error_pct_{tag:<9} {r['rate_error_pct']:>+8.3f}  "
            f"(target within +-{RATE_ERROR_TARGET_PCT} %)"
        )
        print(f"  {verdict(lag_ok)} lag_p99_ms_{tag:<13} {fmt(r['lag_p99_ms'], 8)}  (target <= {LAG_P99_TARGET_MS} ms)")
        print(
            f"  {verdict(ratio_ok)} lag_p99_ratio_{tag:<10} {fmt(r['lag_p99_ratio'], 8)}  "
            f"(holoload / pgbench -R; target <= {LAG_RATIO_TARGET})"
        )
        data[f"rate_error_pct_{tag}"] = r["rate_error_pct"]
        data[f"lag_p99_ms_{tag}"] = r["lag_p99_ms"]
        data[f"pgbench_lag_p99_ms_{tag}"] = fig[rate]["pgbench"]["lag_p99_ms"]
        data[f"lag_p99_ratio_{tag}"] = r["lag_p99_ratio"]
        data[f"dropped_{tag}"] = r["dropped"]
        data[f"targets_met_{tag}"] = {"rate_error": err_ok, "lag_p99": lag_ok, "lag_p99_ratio": ratio_ok}
        for cfg in m.configs:
            w = wlabel(m, cfg)
            x = fig[rate][cfg]
            data[f"lag_p99_ms_{tag}_{w}"] = x["lag_p99_ms"]
            data[f"lag_p99_ratio_{tag}_{w}"] = x["lag_p99_ratio"]
            data[f"cpu_us_per_op_open_vs_closed_{tag}_{w}"] = x["cpu_open_vs_closed"]
            data[f"raw_{tag}_{w}"] = x
        data[f"raw_{tag}_pgbench"] = fig[rate]["pgbench"]
        cpu_ratios.append(r["cpu_open_vs_closed"])
    kept = [c for c in cpu_ratios if c is not None]
    cpu = max(kept) if kept else None  # the worst rate
    cpu_ok = cpu is not None and cpu <= CPU_RATIO_TARGET
    print(
        f"  {verdict(cpu_ok)} cpu_us_per_op_open_vs_closed {fmt(cpu, 5)}  "
        f"(worst rate, --workers auto, start-up removed; target <= {CPU_RATIO_TARGET})"
    )
    data["cpu_us_per_op_open_vs_closed"] = cpu
    data["targets_met_cpu"] = cpu_ok
    pg_cpu = {tag_of(rate): fig[rate]["pgbench"]["cpu_open_vs_closed"] for rate in m.rates}
    print(
        "  info: pgbench's own open/closed CPU per op (start-up included, it has almost none): "
        + ", ".join(f"{k} {fmt(v, 0, 2)}" for k, v in pg_cpu.items())
        + f"; pgbench closed loop {fig['pgbench_closed']['cpu_us_per_op']:.1f} us/op"
    )
    data["pgbench_cpu_us_per_op_open_vs_closed"] = pg_cpu
    # holoload's open-loop CPU per op (start-up removed) against pgbench -R's at the same rate
    vs_pg = {
        tag_of(rate): ratio(fig[rate]["auto"]["cpu_us_per_op_marginal"], fig[rate]["pgbench"]["cpu_us_per_op"])
        for rate in m.rates
    }
    print(
        "  info: holoload open-loop CPU per op / pgbench -R's: "
        + ", ".join(f"{k} {fmt(v, 0, 2)}" for k, v in vs_pg.items())
    )
    data["cpu_us_per_op_open_vs_pgbench"] = vs_pg
    data["pgbench_closed_cpu_us_per_op"] = fig["pgbench_closed"]["cpu_us_per_op"]
    for cfg in m.configs:
        w = wlabel(m, cfg)
        data[f"closed_ops_per_s_{w}"] = fig["closed"][cfg]["ops_per_s"]
        data[f"closed_cpu_us_per_op_marginal_{w}"] = fig["closed"][cfg]["cpu_us_per_op_marginal"]
    if "1" in m.configs:  # --workers auto against one process (info: single runs are noisy)
        auto_vs_one = {
            f"lag_p99_{tag_of(rate)}": ratio(fig[rate]["auto"]["lag_p99_ms"], fig[rate]["1"]["lag_p99_ms"])
            for rate in m.rates
        }
        auto_vs_one["closed_ops_per_s"] = ratio(fig["closed"]["auto"]["ops_per_s"], fig["closed"]["1"]["ops_per_s"])
        print(
            "  info: --workers auto / one process: " + ", ".join(f"{k} {fmt(v, 0, 3)}" for k, v in auto_vs_one.items())
        )
        data["auto_vs_one_process"] = auto_vs_one
    return data


def fmt(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def parse_workers(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated worker counts, got {text!r}") from None
    if any(not 1 <= n <= 16 for n in counts):
        raise argparse.ArgumentTypeError(f"worker counts must be 1..16, got {text!r}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--seconds", type=bounded_int(2, 600), default=10, help="phase duration per run")
    add("--rates", type=parse_rates, default=[2000, 5000], help="target rates, e.g. 2000,5000")
    add("--reps", type=bounded_int(1, MAX_REPS), default=1, help="runs per rate (medians)")
    add("--workers", type=parse_workers, default=[1, 2], help="worker counts measured besides --workers auto")
    add("--short-seconds", type=bounded_int(1, 10), default=2, help="the start-up-cost runs' phase length")
    args = parser.parse_args(argv)

    log: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    cluster = LocalCluster(1, base_port=BASE_PORT)
    try:
        node = cluster.start()[0]
        pgbench = find_client(cluster.binaries.bindir, "pgbench")
        log(
            f"PostgreSQL {cluster.binaries.version} on 127.0.0.1:{node.port}; {pgbench}; {os.cpu_count()} CPUs; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        run_sql(node.dsn, *SETUP_SQL)
        with tempfile.TemporaryDirectory(prefix="holoload-open-loop-") as tmp:
            target = write_target(Path(tmp), node.dsn)
            measured = measure(node.dsn, pgbench, target, args, log)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()

    print(json.dumps(rounded(report(measured, figures(measured), args.seconds, args.reps))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
