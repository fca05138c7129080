"""ErrorLog: bounded distinct messages per op and endpoint, merged from workers, rendered for CI readers."""

from __future__ import annotations

import pickle
import xml.etree.ElementTree as ET

from holoload.core.stats.error_log import MAX_MESSAGE, ErrorLog, error_report, messages_event, seen_events
from holoload.core.stats.window import NS_PER_S, Aggregator
from holoload.core.stats.wire import WorkerWindow
from holoload.engine.ledgers import LedgerBook
from holoload.engine.merge import absorb_windows
from holoload.shell import error_messages
from holoload.shell.ci_outputs import junit_xml, summary_markdown

KEY = ("w", "insert", "node1")
MISSING = 'relation "acounts" does not exist'


def test_a_message_is_counted_with_first_and_last_time() -> None:
    """The same (SQLSTATE, message) twice is one sample with count 2, first and last time."""
    log = ErrorLog()
    log.note(KEY, "42P01", "other", MISSING, 2 * NS_PER_S)
    log.note(KEY, "42P01", "other", MISSING, 5 * NS_PER_S)
    (sample,) = log.samples()
    assert (sample.count, sample.first_ns, sample.last_ns) == (2, 2 * NS_PER_S, 5 * NS_PER_S)
    assert sample.to_dict(NS_PER_S) == {
        "workload": "w",
        "op": "insert",
        "endpoint": "node1",
        "sqlstate": "42P01",
        "class": "other",
        "message": MISSING,
        "count": 2,
        "first_s": 1.0,
        "last_s": 4.0,
    }


def test_only_the_first_distinct_messages_are_kept_per_key_and_the_rest_counted() -> None:
    """Past `limit` distinct messages of a key, errors are only counted; other keys have their own room."""
    log = ErrorLog(limit=2)
    for i in range(5):
        log.note(KEY, "23505", "constraint", f"duplicate key {i}", i)
    log.note(KEY, "23505", "constraint", "duplicate key 0", 9)  # a kept one still counts up
    log.note(("w", "insert", "node2"), "23505", "constraint", "duplicate key 4", 1)
    assert [(s.endpoint, s.message, s.count) for s in log.samples()] == [
        ("node1", "duplicate key 0", 2),
        ("node1", "duplicate key 1", 1),
        ("node2", "duplicate key 4", 1),
    ]
    assert log.more() == {KEY: 3}
    assert error_report(log, 0)["more"] == [{"workload": "w", "op": "insert", "endpoint": "node1", "count": 3}]


def test_long_messages_are_cut() -> None:
    """A message is kept up to MAX_MESSAGE characters; the cut text is what makes it distinct."""
    log = ErrorLog()
    log.note(KEY, "XX000", "other", "x" * (MAX_MESSAGE + 100), 0)
    log.note(KEY, "XX000", "other", "x" * (MAX_MESSAGE + 5), 1)
    (sample,) = log.samples()
    assert len(sample.message) == MAX_MESSAGE and sample.count == 2


def test_new_messages_are_announced_once() -> None:
    """take_new/seen_events give each distinct message once, with its time since the origin."""
    log = ErrorLog()
    log.note(KEY, None, "connection", "no connection to node1: refused", 3 * NS_PER_S)
    log.note(KEY, None, "connection", "no connection to node1: refused", 4 * NS_PER_S)
    (event,) = seen_events(log, NS_PER_S, 100.0)
    assert (event.sqlstate, event.error_class, event.at_s, event.kind) == (None, "connection", 2.0, "error_seen")
    assert seen_events(log, NS_PER_S, 101.0) == []
    table = messages_event(log, NS_PER_S, 102.0)
    assert table.to_dict()["messages"][0]["count"] == 2


def test_worker_windows_carry_messages_and_the_coordinator_merges_them_with_clock_offsets() -> None:
    """Two workers' drained logs pickle in their windows and merge by message, times shifted by each offset."""
    workers = [ErrorLog(), ErrorLog()]
    workers[0].note(KEY, "42P01", "other", MISSING, 1 * NS_PER_S)
    workers[0].note(KEY, "42P01", "other", MISSING, 2 * NS_PER_S)
    workers[1].note(KEY, "42P01", "other", MISSING, 1 * NS_PER_S)
    windows = []
    for i, log in enumerate(workers):
        window = WorkerWindow(i)
        window.errors, window.more_errors = log.drain()
        windows.append((pickle.loads(pickle.dumps(window)), i * 10 * NS_PER_S))  # worker 1's clock is 10 s behind
        assert not log and log.drain() == ([], [])  # a drain hands everything over once
    agg = Aggregator(0)
    absorb_windows(windows, aggregator=agg, book=LedgerBook(shared=True), pulses=[], names=[], completed={}, now_ns=0)
    (sample,) = agg.errors.samples()
    assert (sample.count, sample.first_ns, sample.last_ns) == (3, 1 * NS_PER_S, 11 * NS_PER_S)
    assert [s.message for s in agg.errors.take_new()] == [MISSING]


def summary_with_errors() -> dict[str, object]:
    log = ErrorLog(limit=1)
    log.note(KEY, "42P01", "other", MISSING, 2 * NS_PER_S, count=236, last_ns=9 * NS_PER_S)
    log.note(KEY, "42703", "other", 'column "vv" does not exist', 3 * NS_PER_S)
    log.note(("r", "read", "node2"), "57014", "timeout", "canceling statement due to statement timeout", 4 * NS_PER_S)
    return {
        "verdict": "FAIL",
        "scenario": {"name": "s"},
        "gates": [
            {"name": "ins", "expression": "error_rate(insert) <= 1%", "passed": False, "reason": "FAIL: x"},
            {"name": "rd", "expression": "p99(r) <= 1s", "passed": False, "reason": "FAIL: y"},
            {"name": "all", "expression": "errors_total == 0", "passed": False, "reason": "FAIL: z"},
        ],
        "error_messages": error_report(log, NS_PER_S),
    }


def test_summary_md_lists_each_message_with_sqlstate_count_and_times() -> None:
    """summary.md: an Error messages table, then the uncounted rest per op and endpoint."""
    text = summary_markdown(summary_with_errors())
    assert "### Error messages" in text
    assert f"| w.insert | node1 | 42P01 | other | 236 | 1.0 | 8.0 | {MISSING} |" in text
    assert "- w.insert @node1: 1 more errors with other messages" in text


def test_junit_failures_carry_the_messages_of_the_ops_they_read() -> None:
    """A failing gate's text lists the messages of its ops (all of them for a gate reading no op)."""
    suite = ET.fromstring(junit_xml(summary_with_errors()).split("\n", 1)[1])
    texts = {case.get("name"): (case.find("failure").text or "") for case in suite.iter("testcase")}  # type: ignore[union-attr]
    assert "w.insert @node1 42P01 x236 (1.0s..8.0s)" in texts["ins"] and "57014" not in texts["ins"]
    assert "r.read @node2 57014" in texts["rd"] and "42P01" not in texts["rd"]
    assert "42P01" in texts["all"] and "57014" in texts["all"]
    system_err = suite.find("system-err")
    assert system_err is not None and "1 more errors with other messages" in (system_err.text or "")


def test_readers_of_summaries_without_messages_show_nothing() -> None:
    """Canary and older summaries have no `error_messages`: no section, no crash."""
    assert error_messages.all_lines({}) == [] and error_messages.messages({"error_messages": None}) == []
    assert "Error messages" not in summary_markdown({"verdict": "PASS"})
    assert "system-err" not in junit_xml({"verdict": "PASS"})
