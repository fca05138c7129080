"""The sustained-load engine end to end against real PostgreSQL: executors, ids, stalls, kills, retries, gates."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path

import asyncpg

from holoload.adapters.local.cluster import LocalNode
from tests.support.engine import (
    Row,
    Run,
    Sidecar,
    per_node_target,
    problems,
    query,
    run_scenario,
    shared_target,
    wait_for_holoload_query,
)

# ------------------------------------------------------------------ helpers


def inner_windows(windows: list[Row]) -> list[tuple[float, float, Row]]:
    """(start_ts, end_ts, row) of the windows wholly inside the phase.

    The first window's start is not in the file (it opens when the phase starts) and the
    phase ends inside the last window with any ok; windows after it (closing writers) are empty.
    """
    last = max(i for i, r in enumerate(windows) if int(r["ok"]) > 0)
    return [(float(a["ts"]), float(b["ts"]), b) for a, b in zip(windows[:last], windows[1:last], strict=False)]


def assert_window_indexes_increase(run: Run) -> None:
    indexes = [int(r["window"]) for r in run.windows()]
    assert indexes == sorted(set(indexes)), indexes


# ------------------------------------------------------------------ executors


def test_iterations_executor_runs_exactly_n_operations(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """iterations = 250 runs 250 inserts in all (summary and the tables agree), then the phase ends."""
    run = run_scenario(
        tmp_path,
        """
name = "iter"
[setup]
sql = ["DROP TABLE IF EXISTS iter_rows", "CREATE TABLE iter_rows (id bigint PRIMARY KEY, at timestamptz)"]
[[phases]]
name = "main"
[[phases.workloads]]
name = "w"
executor = "iterations"
iterations = 250
concurrency = 3
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO iter_rows VALUES ($1, $2)"
params = [{ gen = "seq" }, { gen = "now" }]
[phases.gates]
all_ok = "count(w) == 250"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0
    op = run.op("w.ins")
    assert (op["ok"], op["error_count"], op["dropped"], op["rows"]) == (250, 0, 0, 250)
    assert sum(query(n.dsn, "SELECT count(*) FROM iter_rows") for n in pg_cluster) == 250
    assert run.seconds < 30
    assert_window_indexes_increase(run)


def test_constant_concurrency_keeps_n_in_flight_per_endpoint(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """concurrency = 3: the server sees at most and mostly 3 active holoload statements per node."""
    samples: list[list[int]] = []

    async def sample(stop: threading.Event) -> None:
        conns = [await asyncpg.connect(n.dsn) for n in pg_cluster]
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'holoload'"
            " AND state = 'active' AND query LIKE 'SELECT pg_sleep(0.05)%'"
        )
        try:
            await wait_for_holoload_query(conns, "SELECT pg_sleep(0.05)%", stop)
            while not stop.is_set():
                samples.append([await c.fetchval(sql) for c in conns])
                await asyncio.sleep(0.03)
        finally:
            for c in conns:
                await c.close()

    with Sidecar(sample) as sidecar:
        run = run_scenario(
            tmp_path,
            """
name = "conc"
[[phases]]
name = "main"
duration = "2s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 3
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.05)"
""",
            per_node_target(tmp_path, pg_cluster),
        )
        sidecar.finish()
    assert run.code == 0
    busy = [s for s in samples if sum(s) > 0]  # the sampler also sees the run's end
    assert len(busy) >= 20
    for node in range(3):
        counts = [s[node] for s in busy]
        assert max(counts) == 3, counts
        assert statistics.median(counts) == 3, counts
    # closed loop: each op takes >= 50 ms, so 9 writers do at most 180 ops/s
    op = run.op("w.nap")
    assert op["error_count"] == 0
    assert 0.75 * 180 <= op["ops_per_s"] <= 180


def test_constant_rate_hits_its_rate_and_reports_schedule_lag(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """rate = 200 for 2 s is 400 +- 5 % inserts, none dropped, with schedule lag reported."""
    run = run_scenario(
        tmp_path,
        """
name = "rate"
window = "500ms"
[setup]
sql = ["DROP TABLE IF EXISTS rate_rows", "CREATE TABLE rate_rows (id bigint PRIMARY KEY)"]
[[phases]]
name = "main"
duration = "2s"
[[phases.workloads]]
name = "w"
executor = "constant-rate"
rate = 200
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO rate_rows VALUES ($1)"
params = [{ gen = "seq" }]
[phases.gates]
rate = "rate(w) >= 180/s"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0
    op = run.op("w.ins")
    assert 380 <= op["ok"] <= 420
    assert op["dropped"] == 0 and op["error_count"] == 0
    assert 190 <= op["ops_per_s"] <= 210
    assert op["schedule_lag_p99_ms"] is not None and 0 <= op["schedule_lag_p99_ms"] < 100
    assert op["service_p99_ms"] is not None
    assert all(r["lag_p99_ms"] != "" for r in run.windows() if int(r["ok"]) > 0)
    per_endpoint = [sum(int(r["ok"]) for r in run.windows(f"node{i}")) for i in (1, 2, 3)]
    assert max(per_endpoint) - min(per_endpoint) <= 3  # round-robin over the endpoints


def test_open_loop_accounts_for_every_intended_arrival(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """100/s for 1 s of 30 ms inserts: each arrival is ok, error or dropped, and each row written is an ok."""
    run = run_scenario(
        tmp_path,
        """
name = "account"
[setup]
sql = ["DROP TABLE IF EXISTS account_rows", "CREATE TABLE account_rows (id bigint PRIMARY KEY)"]
[[phases]]
name = "main"
duration = "1s"
[[phases.workloads]]
name = "w"
executor = "constant-rate"
rate = 100
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO account_rows SELECT $1::bigint FROM pg_sleep(0.03)"
params = [{ gen = "seq" }]
""",
        per_node_target(tmp_path, pg_cluster),
    )
    op = run.op("w.ins")
    written = sum(query(n.dsn, "SELECT count(*) FROM account_rows") for n in pg_cluster)
    assert (op["ok"] + op["error_count"] + op["dropped"], written) == (100, op["ok"]), op


def test_ramping_rate_follows_its_stages(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A linear ramp 0 -> 300/s over 3 s: ~450 ops, window rates climb at ~100/s per second."""
    run = run_scenario(
        tmp_path,
        """
name = "ramprate"
window = "500ms"
[[phases]]
name = "main"
[[phases.workloads]]
name = "w"
executor = "ramping-rate"
start = 0
stages = [{ duration = "3s", target = 300 }]
[[phases.workloads.ops]]
name = "one"
sql = "SELECT 1"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0
    op = run.op("w.one")
    assert 0.93 * 450 <= op["ok"] + op["dropped"] <= 450
    assert op["dropped"] == 0
    assert run.seconds < 20  # the phase has no duration: the stages end it
    inner = inner_windows(run.windows())
    assert len(inner) >= 3
    mids = [(a + b) / 2 for a, b, _ in inner]
    rates = [int(r["ok"]) / (b - a) for a, b, r in inner]
    slope = statistics.linear_regression(mids, rates).slope
    assert 70 <= slope <= 130, list(zip(mids, rates, strict=True))
    assert rates == sorted(rates) or max(rates) > 2 * min(rates)


def test_ramping_concurrency_follows_its_stages(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """1 writer per endpoint for 1.5 s, then a step to 4: window throughput goes from ~60/s to ~240/s."""
    run = run_scenario(
        tmp_path,
        """
name = "rampconc"
window = "500ms"
[[phases]]
name = "main"
[[phases.workloads]]
name = "w"
executor = "ramping-concurrency"
start = 1
stages = [
  { duration = "1500ms", target = 1 },
  { duration = "0s", target = 4 },
  { duration = "1500ms", target = 4 },
]
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.05)"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0
    assert run.seconds < 20
    inner = inner_windows(run.windows())
    rates = [int(r["ok"]) / (b - a) for a, b, r in inner]
    assert len(rates) >= 3, rates
    # at most 1 (then 4) writers x 3 endpoints x 20 ops/s each
    assert 0.6 * 60 <= min(rates) <= 66, rates
    assert 0.6 * 240 <= max(rates) <= 250, rates
    low_until = rates.index(min(rates))
    assert rates.index(max(rates)) > low_until, rates


# ------------------------------------------------------------------ ids


def test_seq_ids_never_collide_across_writers_endpoints_and_workloads(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """12 writers on 3 endpoints of one table, single- and 5-row inserts: no duplicate key, count == rows."""
    run = run_scenario(
        tmp_path,
        """
name = "seqids"
[setup]
sql = ["DROP TABLE IF EXISTS seq_ids", "CREATE TABLE seq_ids (id bigint PRIMARY KEY, src text NOT NULL)"]
[[phases]]
name = "main"
duration = "1500ms"
[[phases.workloads]]
name = "single"
executor = "constant-concurrency"
concurrency = 3
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO seq_ids VALUES ($1, 'single')"
params = [{ gen = "seq" }]
[[phases.workloads]]
name = "multi"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "ins"
rows = 5
sql = "INSERT INTO seq_ids (id, src) VALUES"
params = [{ gen = "seq" }, { gen = "const", value = "multi" }]
[phases.gates]
unique = "errors(ins, class=constraint) == 0"
""",
        shared_target(tmp_path, pg_cluster[0]),
    )
    assert run.code == 0, run.gates()
    single, multi = run.op("single.ins"), run.op("multi.ins")
    assert single["error_count"] == multi["error_count"] == 0
    assert single["ok"] > 50 and multi["ok"] > 10
    dsn = pg_cluster[0].dsn
    assert query(dsn, "SELECT count(*) FROM seq_ids WHERE src = 'single'") == single["ok"]
    assert query(dsn, "SELECT count(*) FROM seq_ids WHERE src = 'multi'") == multi["rows"] == 5 * multi["ok"]
    assert {r["endpoint"] for r in run.windows("ep1") + run.windows("ep2") + run.windows("ep3")} == {
        "ep1",
        "ep2",
        "ep3",
    }


# ------------------------------------------------------------------ faults


def test_stalled_server_shows_in_latency_from_intended_start(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A 1 s table lock under 50 ops/s: p99 latency >= the stall; ops sent after it have low service time."""
    hold_s = 1.0
    marks: dict[str, float] = {}

    async def stall(stop: threading.Event) -> None:
        conns = [await asyncpg.connect(n.dsn) for n in pg_cluster]
        try:
            await wait_for_holoload_query(conns, "UPDATE stall_rows%", stop)
            await asyncio.sleep(0.5)
            txs = [c.transaction() for c in conns]
            for c, tx in zip(conns, txs, strict=True):
                await tx.start()
                await c.execute("LOCK TABLE stall_rows IN ACCESS EXCLUSIVE MODE")
            marks["locked"] = time.time()
            await asyncio.sleep(hold_s)
            for tx in txs:
                await tx.commit()
            marks["released"] = time.time()
        finally:
            for c in conns:
                await c.close()

    with Sidecar(stall) as sidecar:
        run = run_scenario(
            tmp_path,
            """
name = "stall"
window = "500ms"
[setup]
sql = [
  "DROP TABLE IF EXISTS stall_rows",
  "CREATE TABLE stall_rows (id int PRIMARY KEY, v bigint NOT NULL)",
  "INSERT INTO stall_rows SELECT i, 0 FROM generate_series(1, 1000) AS g(i)",
]
[[phases]]
name = "main"
duration = "4s"
[[phases.workloads]]
name = "w"
executor = "constant-rate"
rate = 50
max_inflight = 60
[[phases.workloads.ops]]
name = "upd"
sql = "UPDATE stall_rows SET v = v + 1 WHERE id = $1"
params = [{ gen = "uniform", min = 1, max = 1000 }]
""",
            per_node_target(tmp_path, pg_cluster),
        )
        sidecar.finish()
    assert run.code == 0
    assert marks["released"] - marks["locked"] >= hold_s
    op = run.op("w.upd")
    # 60 writers for ~50 arrivals during the stall: nothing dropped, nothing failed, nothing skipped
    assert op["dropped"] == 0 and op["error_count"] == 0
    assert op["ok"] >= 0.9 * 200
    # the arrival right after the lock waited (almost) the whole stall; latency counts from its intended start
    assert op["latency_ms"]["max"] >= 0.9 * hold_s * 1000
    assert op["latency_ms"]["p99"] >= 0.8 * hold_s * 1000
    windows = inner_windows(run.windows())
    during = [r for a, b, r in windows if a <= marks["released"] <= b]
    assert during and float(during[0]["max_ms"]) >= 0.9 * hold_s * 1000
    after = [r for a, b, r in windows if a >= marks["released"] + 0.3]
    assert after, "no window started after the stall"
    for r in after:
        assert int(r["ok"]) > 0
        assert float(r["service_p99_ms"]) < 0.25 * hold_s * 1000, r
        assert float(r["p99_ms"]) < 0.25 * hold_s * 1000, r


def test_killed_connections_are_counted_and_the_run_goes_on(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """pg_terminate_backend on every holoload backend mid-run: connection errors counted, ok ops continue."""
    marks: dict[str, float] = {}
    killed: list[int] = []

    async def kill(stop: threading.Event) -> None:
        conns = [await asyncpg.connect(n.dsn) for n in pg_cluster]
        try:
            await wait_for_holoload_query(conns, "SELECT pg_sleep(0.02)%", stop)
            await asyncio.sleep(0.8)
            marks["killed"] = time.time()
            for c in conns:
                rows = await c.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'holoload' AND pid <> pg_backend_pid()"
                )
                killed.append(sum(1 for r in rows if r[0]))
        finally:
            for c in conns:
                await c.close()

    with Sidecar(kill) as sidecar:
        run = run_scenario(
            tmp_path,
            """
name = "kill"
window = "500ms"
[[phases]]
name = "main"
duration = "3s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 2
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.02)"
[phases.gates]
saw_kills = "errors(w, class=connection) >= 1"
recovered = "rate(w) >= 20/s"
""",
            per_node_target(tmp_path, pg_cluster),
        )
        sidecar.finish()
    assert all(n >= 2 for n in killed), killed  # at least the 2 writers of each node
    assert run.summary["verdict"] == "PASS", problems(run)
    op = run.op("w.nap")
    assert op["errors"].get("connection", 0) > 0, op
    assert set(op["errors"]) == {"connection"}, op
    after = [(a, r) for a, _b, r in inner_windows(run.windows()) if a >= marks["killed"] + 0.3]
    assert after and all(int(r["ok"]) > 0 for _a, r in after), after
    for node in ("node1", "node2", "node3"):
        late = [r for a, _b, r in inner_windows(run.windows(node)) if a >= marks["killed"] + 0.3]
        assert sum(int(r["ok"]) for r in late) > 0, node
    gates = run.gates()
    assert gates["main.saw_kills"]["passed"] and gates["main.recovered"]["passed"]
    assert run.code == 0  # exit code follows the gates, which held


def test_connections_killed_while_idle_reconnect_without_crashing_the_run(
    tmp_path: Path, pg_cluster: list[LocalNode]
) -> None:
    """Writers idle in think_time when their backends are terminated (5 times): they reconnect, the run PASSes."""
    kills: list[float] = []

    async def kill(stop: threading.Event) -> None:
        conns = [await asyncpg.connect(n.dsn) for n in pg_cluster]
        try:
            await wait_for_holoload_query(conns, "SELECT 1%", stop)
            for _ in range(5):
                await asyncio.sleep(0.3)
                kills.append(time.time())
                for c in conns:
                    await c.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'holoload' AND pid <> pg_backend_pid()"
                    )
        finally:
            for c in conns:
                await c.close()

    with Sidecar(kill) as sidecar:
        run = run_scenario(
            tmp_path,
            """
name = "idlekill"
window = "500ms"
[[phases]]
name = "main"
duration = "3s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 2
think_time = "150ms"
[[phases.workloads.ops]]
name = "one"
sql = "SELECT 1"
[phases.gates]
alive = "rate(w) >= 5/s"
""",
            per_node_target(tmp_path, pg_cluster),
        )
        sidecar.finish()
    assert len(kills) == 5
    assert run.summary["verdict"] == "PASS", problems(run)
    assert run.code == 0
    op = run.op("w.one")
    assert set(op["errors"]) <= {"connection"}, op
    after = [r for a, _b, r in inner_windows(run.windows()) if a >= kills[-1] + 0.3]
    assert after and all(int(r["ok"]) > 0 for r in after)


def test_retryable_errors_are_retried_until_they_succeed(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """A function raising 40001 30 % of the time: with retries every iteration succeeds; without, errors stay."""
    run = run_scenario(
        tmp_path,
        """
name = "retry"
[setup]
sql = [\"\"\"CREATE OR REPLACE FUNCTION holoload_flaky() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF random() < 0.3 THEN
    RAISE EXCEPTION 'flaky' USING ERRCODE = '40001';
  END IF;
  RETURN 1;
END $$\"\"\"]
[[phases]]
name = "main"
[[phases.workloads]]
name = "retried"
executor = "iterations"
iterations = 300
concurrency = 3
[[phases.workloads.ops]]
name = "call"
sql = "SELECT holoload_flaky()"
[phases.workloads.retry]
max_attempts = 20
backoff = "1ms"
max_backoff = "5ms"
budget = 1.0
[[phases.workloads]]
name = "once"
executor = "iterations"
iterations = 200
concurrency = 3
[[phases.workloads.ops]]
name = "call"
sql = "SELECT holoload_flaky()"
[phases.gates]
retried = "retries(retried) >= 1"
retryable = "errors(retried, class=retryable) >= 1"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0, run.gates()
    retried = run.op("retried.call")
    assert retried["ok"] == 300
    assert retried["retries"] > 0
    assert retried["errors"] == {"retryable": retried["retries"]}  # every failed attempt was retried
    assert 0.15 * 300 <= retried["retries"] <= 0.8 * 300  # ~0.43 per iteration expected
    once = run.op("once.call")
    assert once["retries"] == 0
    assert once["ok"] + once["error_count"] == 200
    assert set(once["errors"]) == {"retryable"} and 0.1 * 200 <= once["error_count"] <= 0.5 * 200


# ------------------------------------------------------------------ gates and artifacts


def test_abort_on_fail_stops_a_long_phase_early(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """An impossible abort_on_fail gate with grace 0s ends a 30 s phase within seconds: exit 1, aborted_by."""
    run = run_scenario(
        tmp_path,
        """
name = "abort"
window = "500ms"
[[phases]]
name = "main"
duration = "30s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "one"
sql = "SELECT 1"
[phases.gates]
impossible = { expr = "p50(w) <= 1us", abort_on_fail = true, grace = "0s" }
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 1
    assert run.seconds < 10
    summary = run.summary
    assert summary["aborted_by"] == "main.impossible"
    assert summary["verdict"] == "FAIL"
    assert not run.gates()["main.impossible"]["passed"]
    assert summary["phases"]["main"]["seconds"] < 5
    problems = [e for e in run.events() if e["kind"] == "problem"]
    assert any("main.impossible" in e["detail"] and "abort_on_fail" in e["detail"] for e in problems)


def test_live_gates_are_logged_as_events_and_windows_increase(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Each live gate's state changes appear in events.jsonl as `gate` events; window indexes increase."""
    run = run_scenario(
        tmp_path,
        """
name = "live"
window = "300ms"
[[phases]]
name = "main"
duration = "1500ms"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.005)"
[phases.gates]
clean = "error_rate(w) < 1%"
tight = "p99(w, window=300ms) <= 1us"
[gates]
none_dropped = "dropped == 0"
""",
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 1
    gate_events = [e for e in run.events() if e["kind"] == "gate"]
    by_name: dict[str, list[str]] = {}
    for e in gate_events:
        by_name.setdefault(e["name"], []).append(e["state"])
    assert by_name["main.clean"][0] == "pass"
    assert by_name["main.tight"] == ["fail"]  # windowed: fails once, for good
    assert by_name["none_dropped"][0] == "pass"
    assert all(e["reason"] for e in gate_events)
    gates = run.gates()
    assert gates["main.clean"]["passed"] and gates["none_dropped"]["passed"]
    assert not gates["main.tight"]["passed"]
    assert gates["main.tight"]["reason"].endswith("(in at least one window)")
    assert_window_indexes_increase(run)
    assert len(run.windows()) >= 4
    elapsed = [float(r["elapsed_s"]) for r in run.windows()]
    assert elapsed == sorted(elapsed)


def test_timeseries_windows_add_up_to_each_phase_total(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Summed over timeseries.csv windows, each phase's ok equals its summary ok (no phase tail is lost)."""
    phase = """
[[phases]]
name = "{name}"
duration = "1200ms"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "nap"
sql = "SELECT pg_sleep(0.01)"
"""
    run = run_scenario(
        tmp_path,
        'name = "twophase"\nwindow = "1s"\n' + phase.format(name="one") + phase.format(name="two"),
        per_node_target(tmp_path, pg_cluster),
    )
    assert run.code == 0
    for name in ("one", "two"):
        summed = sum(int(r["ok"]) for r in run.windows(phase=name))
        assert summed == run.op("w.nap", phase=name)["ok"], name
