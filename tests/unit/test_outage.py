"""Outage per fault episode (core/stats/outage.py): the longest gap in successes across each episode."""

from __future__ import annotations

from holoload.core.gates.language import parse_gate
from holoload.core.model.scenario import gate_problems, parse_scenario
from holoload.core.stats.outage import NS_PER_S, OutageBook

NS_PER_MS = 1_000_000


def _feed(book: OutageBook, op: str, times_ms: list[int]) -> None:
    clock = book.clock(op, 0)
    for t in times_ms:
        clock.success(t * NS_PER_MS)


def test_an_episode_spans_from_the_last_success_before_to_the_first_after() -> None:
    """Successes every 10 ms, none from 1000 to 3500 ms while a fault ran 1005-3000 ms: outage 2.5 s."""
    book = OutageBook()
    clock = book.clock("w.insert", 0)
    for t in range(0, 1001, 10):
        clock.success(t * NS_PER_MS)
    ep = book.started("blackhole", "net", 1005 * NS_PER_MS)
    book.ended(ep, 3000 * NS_PER_MS)
    for t in range(3500, 4001, 10):
        clock.success(t * NS_PER_MS)
    assert ep.gaps["w.insert"].from_ns == 1000 * NS_PER_MS and ep.gaps["w.insert"].to_ns == 3500 * NS_PER_MS
    assert book.stat_s("blackhole", "max", 5000 * NS_PER_MS) == 2.5
    assert book.stat_s("net", "p50", 5000 * NS_PER_MS) == 2.5  # by action kind too


def test_an_op_that_never_came_back_counts_up_to_now() -> None:
    book = OutageBook()
    _feed(book, "w.insert", [0, 100, 200])
    ep = book.started("failover", "failover", 250 * NS_PER_MS)
    book.ended(ep, 400 * NS_PER_MS)
    assert ep.gaps["w.insert"].to_ns is None
    assert book.stat_s("failover", "max", 1200 * NS_PER_MS) == 1.0  # 200 ms .. now


def test_successes_after_the_episode_do_not_widen_it() -> None:
    """A later gap (after the first success past the episode's end) belongs to no episode."""
    book = OutageBook()
    _feed(book, "w.read", [0, 10, 20])
    ep = book.started("kill", "kill", 25 * NS_PER_MS)
    book.ended(ep, 30 * NS_PER_MS)
    _feed(book, "w.read", [40, 50, 5000])
    assert book.stat_s("kill", "max", 6000 * NS_PER_MS) == 0.02  # 20 -> 40 ms


def test_the_worst_op_decides_and_stats_go_over_episodes() -> None:
    book = OutageBook()
    reads, writes = book.clock("w.read", 0), book.clock("w.write", 0)
    for n, (down_ms, back_ms) in enumerate([(1000, 2000), (5000, 8000), (10000, 10500)]):
        reads.success(down_ms * NS_PER_MS)
        writes.success(down_ms * NS_PER_MS)
        ep = book.started("failover", "failover", (down_ms + 1) * NS_PER_MS)
        reads.success((down_ms + 5) * NS_PER_MS)  # reads keep going
        book.ended(ep, (down_ms + 2) * NS_PER_MS)
        reads.success((down_ms + 10) * NS_PER_MS)
        writes.success(back_ms * NS_PER_MS)
        assert ep.index == n + 1
    now = 20 * NS_PER_S
    assert book.stat_s("failover", "max", now) == 3.0
    assert book.stat_s("failover", "p50", now) == 1.0
    assert book.stat_s("failover", "min", now) == 0.5
    assert book.stat_s("other", "max", now) is None
    rows = book.summary(now)
    assert [r["outage_s"] for r in rows] == [1.0, 3.0, 0.5]
    assert rows[0]["ops"]["w.read"]["outage_s"] == 0.005


def test_outage_gate_is_known_and_checked_against_the_chaos_names() -> None:
    assert parse_gate("outage(failover).max <= 10s") is not None
    text = """
name = "t"
[[phases]]
name = "p"
duration = "5s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
ops = [{ name = "q", sql = "SELECT 1" }]
[[chaos]]
name = "fo"
action = "failover"
at = "1s"
[gates]
ok = "outage(fo).max <= 10s"
bad = "outage(nothing).p50 <= 1s"
"""
    problems = gate_problems(parse_scenario(text.replace('bad = "outage(nothing).p50 <= 1s"', ""), "t.toml"))
    assert problems == []
    try:
        parse_scenario(text, "t.toml")
    except Exception as exc:  # noqa: BLE001 - the message names the gate
        assert "gates.bad" in str(exc) and "nothing" in str(exc)
    else:
        raise AssertionError("an outage gate naming no chaos action must be rejected")


def test_staleness_samples_give_nearest_rank_percentiles_per_node() -> None:
    from holoload.core.server.staleness import StalenessSamples

    samples = StalenessSamples(max_samples=1000)
    for i in range(1, 101):
        samples.add("node2", i / 1000)
    samples.timed_out("node2")
    assert samples.stat_s("node2", "p50") == 0.05
    assert samples.stat_s("node2", "p99") == 0.099
    assert samples.stat_s("node2", "max") == 0.1
    assert samples.stat_s("node3", "p99") is None  # no samples: the gate has no data
    assert samples.summary()["node2"] == {"samples": 100, "timeouts": 1, "p50_s": 0.05, "p99_s": 0.099, "max_s": 0.1}


def test_workloads_without_endpoints_go_to_writable_endpoints_only() -> None:
    from holoload.core.model.replicas import route_to_writable

    text = """
name = "t"
[[phases]]
name = "p"
duration = "1s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
ops = [{ name = "q", sql = "SELECT 1" }]
[[phases.workloads]]
name = "r"
executor = "constant-concurrency"
concurrency = 1
endpoints = { standby = 1 }
ops = [{ name = "q", sql = "SELECT 1" }]
"""
    scenario = parse_scenario(text, "t.toml")
    routed = route_to_writable(scenario, ["primary", "standby"], [True, False])
    assert [w.endpoints for w in routed.phases[0].workloads] == [{"primary": 1.0}, {"standby": 1.0}]
    assert route_to_writable(scenario, ["node1", "node2"], [True, True]) is scenario


def test_p99_back_is_the_first_whole_window_after_the_episode_at_the_pre_fault_level() -> None:
    """Pre-fault p99 10 ms; after the heal at 5 s windows show 80, 12 (within 10 %: no, 12 > 11), 10.5 ms."""
    book = OutageBook()
    book.clock("w.q", 0).success(0)
    book.window("w.q", 0, 1 * NS_PER_S, 10.0)
    ep = book.started("slow", "net", 2 * NS_PER_S)
    book.window("w.q", 1 * NS_PER_S, 2 * NS_PER_S, 50.0)  # during: ignored for the level
    book.ended(ep, 5 * NS_PER_S)
    book.window("w.q", 4 * NS_PER_S, 5 * NS_PER_S, 9.0)  # started before the end: does not count
    book.window("w.q", 5 * NS_PER_S, 6 * NS_PER_S, 80.0)
    book.window("w.q", 6 * NS_PER_S, 7 * NS_PER_S, 12.0)
    book.window("w.q", 7 * NS_PER_S, 8 * NS_PER_S, 10.5)
    book.window("w.q", 8 * NS_PER_S, 9 * NS_PER_S, 1.0)
    (row,) = book.summary(10 * NS_PER_S)
    assert row["ops"]["w.q"]["pre_p99_ms"] == 10.0
    assert row["ops"]["w.q"]["p99_back_s"] == 3.0  # the 7-8 s window: 8 s - 5 s
