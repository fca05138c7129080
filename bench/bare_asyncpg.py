"""The bare-driver limit: a closed loop of one prepared statement per connection, asyncpg on uvloop.

    python bench/bare_asyncpg.py --dsn DSN --workload select|insert --clients 8 --seconds 10

Used by bench/vs_pgbench.py (as a subprocess, so its CPU is the child's resource usage) as the
fastest a Python client can drive the server: the same statements as holoload's scenario, the
same number of connections, each statement prepared once per connection, and nothing else per
operation but drawing the parameters and `await stmt.fetch(...)`. No recording, no retries, no
timeouts, no task per operation. Prints one JSON line: ops, seconds (from the first operation
to the last one's completion), ops_per_s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import asyncpg
import uvloop

ACCOUNTS = 100_000  # bench/vs_pgbench.py's bench_accounts
SQL = {
    "select": "SELECT balance FROM bench_accounts WHERE id = $1",
    "insert": "INSERT INTO bench_events (id, v) VALUES ($1, $2)",
}


async def run(dsn: str, workload: str, clients: int, seconds: float) -> dict[str, float]:
    conns = await asyncio.gather(*(asyncpg.connect(dsn, timeout=10) for _ in range(clients)))
    try:
        stmts = [await c.prepare(SQL[workload]) for c in conns]
        counts = [0] * clients
        start = time.perf_counter()
        end = start + seconds

        async def select(i: int) -> None:
            stmt, rnd, clock, n = stmts[i], random.Random(i), time.perf_counter, 0
            draw = rnd.randint
            while clock() < end:
                await stmt.fetch(draw(1, ACCOUNTS))
                n += 1
            counts[i] = n

        async def insert(i: int) -> None:
            # unique ids per connection, like pgbench's :client_id * 10^9 + :n
            stmt, rnd, clock, n = stmts[i], random.Random(i), time.perf_counter, 0
            base = (i + 1) * 1_000_000_000
            draw = rnd.randint
            while clock() < end:
                await stmt.fetch(base + n, draw(1, 1_000_000))
                n += 1
            counts[i] = n

        loop_fn = select if workload == "select" else insert
        await asyncio.gather(*(loop_fn(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.close(timeout=5) for c in conns), return_exceptions=True)
    ops = sum(counts)
    return {"ops": ops, "seconds": elapsed, "ops_per_s": ops / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--workload", choices=sorted(SQL), default="select")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        parser.error("--clients 1..256, --seconds in (0, 600]")
    result = uvloop.run(run(args.dsn, args.workload, args.clients, args.seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
