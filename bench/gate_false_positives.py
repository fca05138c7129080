"""Benchmark: false positives and detections of `holoload compare` over real short runs on one machine.

    python bench/gate_false_positives.py [--pairs 20] [--duration 15] [--extra-ms 1] [--keep DIR]
    python bench/gate_false_positives.py --reuse DIR [--budget latency=15% ...]   # re-judge kept runs

Starts a 1-node embedded cluster and runs one short scenario (a ~5 ms aggregate over 200k
rows and a sub-millisecond point read, each in its own closed loop) 2 x pairs + 1 times,
alternating unchanged runs A and planted runs B: A0 B0 A1 B1 ... A<pairs>. The planted runs
add ``pg_sleep(extra_ms)`` to the aggregate (about +20 %). Then:

- A/A: A_i against A_(i+1), ``pairs`` comparisons: any regression is a false positive;
- planted: A_i against B_i, ``pairs`` comparisons: a regression of the aggregate is a detection.

Both use ``compare_runs`` with the default budget (or ``--budget``), exactly what
``holoload compare`` does. The old rule (each run's summary p95/p99/ops/s, 10 %, no minimum, no
noise) is judged on the same pairs for reference. Prints the A/A spread of every figure and
ends with one JSON line: ``false_positive_rate``, ``detection_rate``, the planted effect, the
run length and the A/A figures behind the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import holoload  # noqa: E402
from holoload.adapters.local.cluster import LocalCluster  # noqa: E402
from holoload.core.compare.regression import Budget, RunFigures, compare, compare_runs  # noqa: E402
from holoload.shell.compare_cmd import budget_from_env, load_runs  # noqa: E402

BASE_PORT = 59432
SLOW_OP = "main.rw.read"  # the planted op

SCENARIO = """
name = "gfp"
window = "1s"
[setup]
sql = [
  "CREATE TABLE IF NOT EXISTS gfp_t (id BIGINT PRIMARY KEY, region INT NOT NULL, balance BIGINT NOT NULL)",
  "INSERT INTO gfp_t SELECT i, i % 40, 1000 FROM generate_series(1, 100000) AS g(i) ON CONFLICT DO NOTHING",
]
[[phases]]
name = "warm"
duration = "WARMUPs"
measured = false
[[phases.workloads]]
name = "warm"
executor = "constant-concurrency"
concurrency = 2
[[phases.workloads.ops]]
name = "read"
sql = "SELECT balance, pg_sleep(BASE) FROM gfp_t WHERE id = $1"
params = [{ gen = "uniform", min = 1, max = 100000 }]
[[phases]]
name = "main"
duration = "DURATIONs"
[[phases.workloads]]
name = "rw"
executor = "constant-concurrency"
concurrency = 2
[[phases.workloads.ops]]
name = "read"
sql = "SELECT balance, pg_sleep(SLEEP) FROM gfp_t WHERE id = $1"
params = [{ gen = "uniform", min = 1, max = 100000 }]
[gates]
errors = "error_rate(read) < 1%"
"""


def scenario_text(duration_s: int, warmup_s: int, base_ms: float, extra_ms: float) -> str:
    text = SCENARIO.replace("DURATION", str(duration_s)).replace("WARMUP", str(warmup_s))
    return text.replace("BASE", f"{base_ms / 1000:g}").replace("SLEEP", f"{(base_ms + extra_ms) / 1000:g}")


def run_once(scenario: Path, target: Path, out: Path, timeout_s: float) -> Path:
    """One run through the Python API (in this process, quietly); returns its results directory.

    A run longer than `timeout_s` is stopped (verdict INTERRUPTED), which fails the bench.
    """
    result = asyncio.run(_run_bounded(scenario, target, out, timeout_s))
    if result.exit_code != 0 or result.results_dir is None:
        problems = "\n".join(result.run.problems)
        raise SystemExit(f"bench failed: run into {out} ended {result.verdict} (exit {result.exit_code})\n{problems}")
    return Path(result.results_dir)


async def _run_bounded(scenario: Path, target: Path, out: Path, timeout_s: float) -> holoload.RunSummary:
    control = holoload.RunControl()
    loop = asyncio.get_running_loop()
    deadline = loop.call_later(timeout_s, control.stop_now, f"bench: still running after {timeout_s:g}s")
    try:
        return await holoload.run_async(scenario, target, results_dir=out, control=control)
    finally:
        deadline.cancel()


def lag1(values: Sequence[float]) -> float | None:
    x = np.asarray(values, dtype=float)
    if len(x) < 4 or float(np.std(x)) == 0:
        return None
    x = x - x.mean()
    return float(np.dot(x[:-1], x[1:]) / np.dot(x, x))


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.abs(np.asarray(values))
    return {k: round(float(np.quantile(arr, q)), 4) for k, q in (("p50", 0.5), ("p90", 0.9), ("max", 1.0))}


def judge(pairs: list[tuple[list[RunFigures], list[RunFigures]]], budget: Budget) -> list[dict[str, Any]]:
    out = []
    for base, cur in pairs:
        comparison = compare_runs(base, cur, budget)
        old = compare(base[0].summary, cur[0].summary, Budget(latency_min_ms=0, throughput_min_ops=0))
        out.append(
            {
                "baseline": base[0].label,
                "current": cur[0].label,
                "regressions": [f"{d.op} {d.metric}" for d in comparison.regressions],
                "old_rule_regressions": [f"{d.op} {d.metric}" for d in old.regressions],
                "deltas": [d for d in comparison.deltas if not d.note],
            }
        )
    return out


def spread(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure over A/A pairs: |change| of window medians, interval half-width, abs change, significance."""
    by: dict[str, dict[str, list[float]]] = {}
    for r in results:
        for d in r["deltas"]:
            f = by.setdefault(f"{d.op} {d.metric}", {"change": [], "half": [], "abs": [], "sig": []})
            if d.change is not None:
                f["change"].append(d.change)
            if d.low is not None and d.high is not None:
                f["half"].append((d.high - d.low) / 2)
            if d.baseline is not None and d.current is not None:
                f["abs"].append(d.current - d.baseline)
            f["sig"].append(1.0 if d.significant else 0.0)
    return {
        name: {
            "abs_change": quantiles(f["change"]),
            "interval_half_width": quantiles(f["half"]),
            "abs_difference": quantiles(f["abs"]),
            "interval_excludes_0": round(statistics.fmean(f["sig"]), 3) if f["sig"] else None,
        }
        for name, f in by.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20, help="A/A comparisons and planted comparisons (each)")
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds per run")
    parser.add_argument("--base-ms", type=float, default=4.0, help="pg_sleep of the statement in every run")
    parser.add_argument("--extra-ms", type=float, default=1.0, help="pg_sleep added in the planted runs")
    parser.add_argument("--keep", metavar="DIR", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--reuse", metavar="DIR", help="judge the runs kept in DIR again; run nothing")
    parser.add_argument("--per-side", type=int, default=1, help="runs per side of each comparison (with --reuse)")
    parser.add_argument("--budget", action="append", default=[], metavar="KEY=VALUE", help="as holoload --budget")
    args = parser.parse_args(argv)
    if not 1 <= args.pairs <= 100 or not 2 <= args.duration <= 600:
        parser.error("--pairs 1..100, --duration 2..600")
    budget = budget_from_env(os.environ, dict(item.split("=", 1) for item in args.budget))
    started = time.monotonic()
    work = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="holoload-gfp-"))
    if args.reuse:
        meta = json.loads((work / "bench.json").read_text())
        args.pairs, args.duration, args.extra_ms = meta["pairs"], meta["duration"], meta["extra_ms"]
        args.base_ms = meta.get("base_ms", args.base_ms)
        a_dirs = [Path(p) for p in meta["a"]]
        b_dirs = [Path(p) for p in meta["b"]]
    else:
        work.mkdir(parents=True, exist_ok=True)
        a_dirs, b_dirs = [], []
        cluster = LocalCluster(1, base_port=BASE_PORT)
        try:
            node = cluster.start()[0]
            target = work / "target.toml"
            target.write_text(f'name = "gfp"\ndata = "per_node"\n[[nodes]]\ndsn = "{node.dsn}"\n')
            plain, planted = work / "a.toml", work / "b.toml"
            plain.write_text(scenario_text(args.duration, args.warmup, args.base_ms, 0))
            planted.write_text(scenario_text(args.duration, args.warmup, args.base_ms, args.extra_ms))
            timeout = args.duration + args.warmup + 120
            for i in range(args.pairs + 1):
                a_dirs.append(run_once(plain, target, work / f"A{i:02d}", timeout))
                print(f"A{i:02d} {a_dirs[-1].name}", flush=True)
                if i < args.pairs:
                    b_dirs.append(run_once(planted, target, work / f"B{i:02d}", timeout))
                    print(f"B{i:02d} {b_dirs[-1].name}", flush=True)
        finally:
            cluster.stop()
        meta = {"pairs": args.pairs, "duration": args.duration, "extra_ms": args.extra_ms, "base_ms": args.base_ms}
        meta |= {"a": [str(p) for p in a_dirs], "b": [str(p) for p in b_dirs]}
        (work / "bench.json").write_text(json.dumps(meta))
    a_runs = [load_runs(p)[0] for p in a_dirs]
    b_runs = [load_runs(p)[0] for p in b_dirs]
    k = args.per_side  # runs per side: A/A compares A[i:i+k] with A[i+k:i+2k], planted A[i:i+k] with B[i:i+k]
    aa = judge([(a_runs[i : i + k], a_runs[i + k : i + 2 * k]) for i in range(len(a_runs) - 2 * k + 1)], budget)
    planted_results = judge([(a_runs[i : i + k], b_runs[i : i + k]) for i in range(len(b_runs) - k + 1)], budget)
    false_positives = [r for r in aa if r["regressions"]]
    detected = [r for r in planted_results if any(x.startswith(SLOW_OP + " ") for x in r["regressions"])]
    effects = [
        d.change
        for r in planted_results
        for d in r["deltas"]
        if d.op == SLOW_OP and d.metric == "p95_ms" and d.change is not None
    ]
    autocorrelation = {
        f"{op} {metric}": round(statistics.median(v), 3)
        for op in (SLOW_OP,)
        for metric in ("p95_ms", "p99_ms", "ops_per_s")
        if (v := [x for r in a_runs if (x := lag1(r.windows.get(op, {}).get(metric, []))) is not None])
    }
    window_cv = {
        f"{op} p95_ms": round(statistics.median(statistics.pstdev(s) / statistics.fmean(s) for s in series), 3)
        for op in (SLOW_OP,)
        if (series := [s for r in a_runs if len(s := r.windows.get(op, {}).get("p95_ms", [])) > 1])
    }
    print(f"\nA/A comparisons ({len(aa)}): false positives {len(false_positives)}")
    for r in false_positives:
        print(f"  {Path(r['baseline']).parent.name} -> {Path(r['current']).parent.name}: {r['regressions']}")
    print(f"planted +{args.extra_ms:g} ms comparisons ({len(planted_results)}): detected {len(detected)}")
    for r in planted_results:
        if r not in detected:
            print(f"  missed {Path(r['baseline']).parent.name} -> {Path(r['current']).parent.name}")
    old_fp = sum(1 for r in aa if r["old_rule_regressions"])
    print(f"old rule (summary figures, 10 %, no minimum, no noise): A/A false positives {old_fp} of {len(aa)}")
    aa_spread = spread(aa)
    print("A/A spread per figure (|change| of window medians; interval half-width; |difference|; share significant):")
    for name, fig in aa_spread.items():
        print(f"  {name}: {fig}")
    print(f"lag-1 autocorrelation of the windows (median over A runs): {autocorrelation}")
    print(f"window-to-window coefficient of variation of p95 (median over A runs): {window_cv}")
    report = {
        "bench": "gate_false_positives",
        "false_positive_rate": round(len(false_positives) / len(aa), 4),
        "detection_rate": round(len(detected) / len(planted_results), 4),
        "aa_comparisons": len(aa),
        "planted_comparisons": len(planted_results),
        "planted_effect": {
            "op": SLOW_OP,
            "statement": f"SELECT balance, pg_sleep(...) FROM gfp_t WHERE id = $1, {args.base_ms:g} ms sleep",
            "extra_ms": args.extra_ms,
            "p95_change_median": round(statistics.median(effects), 4) if effects else None,
            "p95_change_min": round(min(effects), 4) if effects else None,
        },
        "run_length_s": args.duration,
        "runs_per_side": k,
        "window_s": 1,
        "budget": {k: getattr(budget, k) for k in budget.__slots__},  # type: ignore[attr-defined]
        "old_rule_false_positive_rate": round(old_fp / len(aa), 4),
        "aa_spread": aa_spread,
        "lag1_autocorrelation": autocorrelation,
        "window_cv": window_cv,
        "bench_time_s": round(time.monotonic() - started, 1),
        "runs_dir": str(work),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
