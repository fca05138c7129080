"""What checking a list-append history costs: generate a 1,000,000-transaction history, check it, report.

    python bench/check_cost.py                       # 1,000,000 transactions, strict-serializable, 600 s limit
    python bench/check_cost.py --ops 200000 --model serializable --via-file
    python bench/check_cost.py --write /tmp/h.jsonl && python bench/check_cost.py --history /tmp/h.jsonl

The history comes from a simulated strict-serializable executor: several processes, each with at most one
transaction in flight; a transaction takes effect atomically at its completion, so every real-time and
dependency order agrees and the checker must call it valid (the benchmark exits 1 otherwise). 1% of the
transactions fail (no effect) and 0.5% are in doubt (effect applied or not at random). Keys are retired after
``--writes-per-key`` appends, as Elle's generator does, so reads stay short.

Ends with one JSON line: ops_checked_per_s (transactions per second of checking), peak_rss_mb (the whole
process, history included), seconds (checking, wall clock), cpu_seconds (checking, this process's CPU
time: what one core spent, whatever else the machine ran), n_ops (transactions), micro_ops.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from holoload.core.isolation import Deadline, Txn, TxnType, check, dump_history, parse_history  # noqa: E402
from holoload.core.isolation.history import MicroOp  # noqa: E402

OK, FAIL, INFO = TxnType.OK, TxnType.FAIL, TxnType.INFO


def generate(n: int, processes: int, keys: int, writes_per_key: int, seed: int) -> list[Txn]:
    """A strict-serializable history of ``n`` transactions (see the module docstring)."""
    rng = random.Random(seed)
    rand = rng.random
    lists: dict[int, list[int]] = {}
    active = list(range(keys))
    slot_of = {k: k for k in active}  # active key -> its slot in ``active``
    next_key = keys
    written: dict[int, int] = {}
    value = 0
    pending: list[tuple[int, int, list[tuple[str, int]]] | None] = [None] * processes  # (txn id, invoke, plan)
    txns: list[Txn | None] = []
    now = 0
    started = 0
    done = 0
    while done < n:
        now += 1
        p = rng.randrange(processes)
        slot = pending[p]
        if slot is None:
            if started >= n:
                continue
            plan = []
            for _ in range(rng.randint(1, 4)):
                plan.append(("append" if rand() < 0.5 else "r", active[rng.randrange(keys)]))
            pending[p] = (len(txns), now, plan)
            txns.append(None)
            started += 1
            continue
        tid, invoke, plan = slot
        pending[p] = None
        roll = rand()
        kind = FAIL if roll < 0.01 else INFO if roll < 0.015 else OK
        applied = kind is OK or (kind is INFO and rand() < 0.5)
        ops: list[MicroOp] = []
        for f, k in plan:
            if f == "append":
                value += 1
                ops.append(("append", k, value))
                if applied:
                    lists.setdefault(k, []).append(value)
                    count = written.get(k, 0) + 1
                    written[k] = count
                    if count == writes_per_key and k in slot_of:
                        at = slot_of.pop(k)
                        active[at] = next_key
                        slot_of[next_key] = at
                        next_key += 1
            else:
                ops.append(("r", k, tuple(lists.get(k, ())) if kind is OK else None))
        txns[tid] = Txn(tid, p, invoke, now if kind is not INFO else None, kind, tuple(ops))
        done += 1
    return [t for t in txns if t is not None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1_000_000, help="transactions in the history")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--keys", type=int, default=1000, help="keys in use at a time")
    parser.add_argument("--writes-per-key", type=int, default=32)
    parser.add_argument("--model", default="strict-serializable")
    parser.add_argument("--time-limit", type=float, default=600.0, help="the checker's time limit, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--via-file", action="store_true", help="write the history as JSON lines and parse it back")
    parser.add_argument("--write", metavar="PATH", help="only generate the history and write it to PATH")
    parser.add_argument("--history", metavar="PATH", help="check the history in PATH instead of generating one")
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.history:
        with Path(args.history).open("rb") as lines:
            txns = parse_history(lines, args.history)
        print(f"parsed {len(txns)} transactions from {args.history} in {time.perf_counter() - t0:.1f} s", flush=True)
    else:
        txns = generate(args.ops, args.processes, args.keys, args.writes_per_key, args.seed)
        print(f"generated {len(txns)} transactions in {time.perf_counter() - t0:.1f} s", flush=True)
    micro = sum(len(t.ops) for t in txns)
    if args.write:
        with Path(args.write).open("w") as out:
            for line in dump_history(txns):
                out.write(line + "\n")
        print(f"wrote {args.write} ({Path(args.write).stat().st_size / 1e6:.0f} MB)", flush=True)
        return 0
    if args.via_file:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "history.jsonl"
            t0 = time.perf_counter()
            with path.open("w") as out:
                for line in dump_history(txns):
                    out.write(line + "\n")
            size_mb = path.stat().st_size / 1e6
            del txns
            with path.open("rb") as lines:
                txns = parse_history(lines, str(path))
            print(f"wrote and parsed {size_mb:.0f} MB of history in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    result = check(txns, args.model, Deadline(time.monotonic, args.time_limit))
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"checked under {args.model} in {seconds:.1f} s: valid={result.valid} {result.reason}", flush=True)
    print(json.dumps({k: v for k, v in result.stats.items()}), flush=True)
    print(
        json.dumps(
            {
                "ops_checked_per_s": round(len(txns) / seconds),
                "peak_rss_mb": round(peak_mb),
                "seconds": round(seconds, 1),
                "cpu_seconds": round(cpu_seconds, 1),
                "n_ops": len(txns),
                "micro_ops": micro,
                "valid": result.valid,
            }
        )
    )
    return 0 if result.valid is True else 1


if __name__ == "__main__":
    raise SystemExit(main())
