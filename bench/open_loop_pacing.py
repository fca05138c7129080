"""Diagnostic: what holoload's open-loop dispatcher costs per arrival, with no database at all.

    python bench/open_loop_pacing.py [--seconds 5] [--rates 2000,5000]

Drives the engine's own `dispatch` (holoload/engine/executors.py) on uvloop with 32 consumer
tasks that take arrivals from the engine's `Handoff` (holoload/engine/handoff.py) and do
nothing else (a no-op "operation"), and compares it with the dispatcher it replaced:

- `engine`: `dispatch` as it is, this process owning every arrival (`--workers 1`): arrivals
  released in batches once per 1 ms timer tick, handed straight to an idle consumer;
- `engine_share2`: `dispatch` as one of two worker processes sees it (`share = (0, 2)`): it walks
  every arrival of the global schedule and keeps every other one;
- `per_arrival_queue`: the dispatcher before issue 15, reproduced here: one sleep per arrival
  (a `sleep(0)` when behind) and a per-endpoint `asyncio.Queue` of the writers' size.

Each variant runs in its own child process (fresh interpreter, uvloop) for `--seconds`; the
child measures its own CPU (`time.process_time`) over the dispatch only, and each arrival's
lag (consumer start - intended; negative = started early). Figures are per arrival the
process owns. Prints a table and one JSON line; the load average is printed because on a
shared machine the lag tail is mostly other processes' CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = 32
NS_PER_S = 1_000_000_000
TICK_NS = 1_000_000  # uvloop/libuv timers: whole milliseconds
VARIANTS = ("engine", "engine_share2", "per_arrival_queue")


class _Recorder:
    def __init__(self) -> None:
        self.drops = 0

    def drop(self) -> None:
        self.drops += 1


def _stub_run(start_ns: int, end_ns: int, share: tuple[int, int]) -> Any:
    """The attributes `dispatch` reads from a WorkloadRun (and its WorkloadPlan)."""
    plan = SimpleNamespace(
        workload=SimpleNamespace(ops=[SimpleNamespace(weight=1.0)]),
        share=share,
        perf_ns=time.perf_counter_ns,
        endpoint_total=lambda endpoint: CONSUMERS,
    )
    run = SimpleNamespace(plan=plan, start_ns=start_ns, skip_before_ns=None, stop_requested=False, late_drops=0)
    run.over = lambda now, end: now >= end_ns
    run.take_iteration = lambda: True
    return run


async def _per_arrival_queue(
    schedule: Any, start: int, end: int, queue: asyncio.Queue[int | None], recorder: Any
) -> None:
    """The dispatcher before issue 15: one sleep per arrival, `asyncio.Queue` hand-off."""
    clock = time.perf_counter_ns
    for offset_s in schedule.intended_times():
        intended = start + int(offset_s * NS_PER_S)
        if intended >= end:
            return
        now = clock()
        if intended > now:
            await asyncio.sleep((intended - now) / NS_PER_S)
        else:
            await asyncio.sleep(0)
        try:
            queue.put_nowait(intended)
        except asyncio.QueueFull:
            recorder.drop()


async def variant(name: str, rate: int, seconds: float) -> dict[str, Any]:
    from holoload.core.pacing.schedule import ArrivalSchedule, WeightedCycle
    from holoload.engine.executors import dispatch
    from holoload.engine.handoff import Handoff

    lags: list[int] = []
    recorder = _Recorder()
    schedule = ArrivalSchedule.constant(rate, None)
    start = time.perf_counter_ns() + NS_PER_S // 10
    end = start + int(seconds * NS_PER_S)
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    if name == "per_arrival_queue":
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=CONSUMERS)

        async def from_queue() -> None:
            while (intended := await queue.get()) is not None:
                lags.append(clock() - intended)

        tasks = [asyncio.create_task(from_queue()) for _ in range(CONSUMERS)]
        await _per_arrival_queue(schedule, start, end, queue, recorder)
        for _ in tasks:
            await queue.put(None)
    else:
        handoff = Handoff(CONSUMERS)

        async def from_handoff() -> None:
            while (intended := await handoff.take()) is not None:
                lags.append(clock() - intended)

        tasks = [asyncio.create_task(from_handoff()) for _ in range(CONSUMERS)]
        share = (0, 2) if name == "engine_share2" else (0, 1)
        run = _stub_run(start, end, share)
        loops = {0: [SimpleNamespace(recorders=[recorder])]}
        await dispatch(run, schedule, WeightedCycle([1.0]), [0], {0: handoff}, loops, None)  # type: ignore[arg-type]
        handoff.close()
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu0
    lags.sort()
    n = len(lags)

    def pct(q: float) -> float:
        return lags[min(n - 1, int(q / 100 * n))] / 1e6 if n else float("nan")

    return {
        "variant": name,
        "rate": rate,
        "arrivals": n,
        "dropped": recorder.drops,
        "cpu_s": cpu,
        "cpu_us_per_arrival": cpu / n * 1e6 if n else float("nan"),
        "lag_p50_ms": pct(50),
        "lag_p99_ms": pct(99),
        "lag_max_ms": lags[-1] / 1e6 if n else float("nan"),
        "early_pct": sum(1 for x in lags if x < 0) / n * 100 if n else float("nan"),
        "lag_min_ms": lags[0] / 1e6 if n else float("nan"),
    }


def child(name: str, rate: int, seconds: float) -> None:
    import uvloop

    print(json.dumps(uvloop.run(variant(name, rate, seconds))))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="2000,5000")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "RATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.seconds <= 60 or not 1 <= args.reps <= 10:
        parser.error("--seconds in (0, 60], --reps 1..10")
    if args.child:
        child(args.child[0], int(args.child[1]), args.seconds)
        return 0
    rates = [int(r) for r in args.rates.split(",")]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    results: dict[str, list[dict[str, Any]]] = {}
    load = [os.getloadavg()[0]]
    for rep in range(args.reps):
        for rate in rates:
            order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
            for name in order:
                cmd = [sys.executable, __file__, "--seconds", str(args.seconds), "--child", name, str(rate)]
                done = subprocess.run(
                    cmd, check=False, capture_output=True, text=True, env=env, timeout=args.seconds + 60
                )
                if done.returncode != 0:
                    print(f"bench failed: {name} at {rate}/s:\n{done.stdout}{done.stderr}", file=sys.stderr)
                    return 1
                r = json.loads(done.stdout.strip().splitlines()[-1])
                results.setdefault(f"{name}_{rate}", []).append(r)
                print(
                    f"rep {rep + 1} {rate:>6,}/s {name:<15} {r['cpu_us_per_arrival']:7.1f} us CPU/arrival  "
                    f"lag p50 {r['lag_p50_ms']:7.3f} p99 {r['lag_p99_ms']:7.3f} max {r['lag_max_ms']:7.3f} ms  "
                    f"early {r['early_pct']:5.1f} %  dropped {r['dropped']}",
                    flush=True,
                )
        load.append(os.getloadavg()[0])
    data: dict[str, Any] = {"bench": "open_loop_pacing", "seconds": args.seconds, "reps": args.reps}
    data["load_avg_1m"] = [round(x, 2) for x in load]
    for key, runs in results.items():
        data[key] = {
            k: round(statistics.median(r[k] for r in runs), 3)
            for k in ("cpu_us_per_arrival", "lag_p50_ms", "lag_p99_ms", "early_pct", "dropped")
        }
    for rate in rates:
        base = data[f"engine_{rate}"]["cpu_us_per_arrival"]
        for name in VARIANTS[1:]:
            data[f"cpu_{name}_vs_engine_{rate}"] = round(data[f"{name}_{rate}"]["cpu_us_per_arrival"] / base, 3)
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
