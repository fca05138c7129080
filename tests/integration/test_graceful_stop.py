"""Graceful stop of a chaos run: the first signal drains, heals and verifies; a second one stops at once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.runs import events, has_event, holoload_process, only_run_dir, output, summary_json, wait_for

CHAOS = str(REPO / "scenarios" / "chaos_split_kill.toml")
# baseline 2 s, then a long chaos phase in which node2 is killed at 2 s and restarted only at 60 s:
# the stop arrives while the fault is active, so the heal must come from the graceful stop.
ARGS = [
    CHAOS,
    "--set",
    "phases.0.duration=2s",
    "--set",
    "phases.1.duration=120s",
    "--set",
    "chaos.1.at=2s",
    "--set",
    "chaos.1.duration=60s",
    "--set",
    "chaos.0.start=1s",
    "--set",
    "run.stop_grace=40s",
]


def test_first_signal_drains_heals_and_verifies(tmp_path: Path) -> None:
    results = tmp_path / "r"
    with holoload_process(tmp_path, [*ARGS, "--results-dir", str(results)]) as proc:
        wait_for(lambda: has_event(results, "chaos_finished", name="kill_node2"), 90, "the kill", proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("holoload still running 90 s after SIGINT")
        took = time.monotonic() - sent
    out = output(tmp_path)
    assert proc.returncode == 130, out
    run = only_run_dir(results)
    summary = summary_json(run)
    assert summary["verdict"] == "INTERRUPTED"
    assert took < 60, took  # well before the phase's 120 s or the kill's 60 s
    ev = events(run)
    heal = [e for e in ev if e["kind"] == "chaos_finished" and e["name"] == "kill_node2" and e["step"] == "heal"]
    assert heal and heal[0]["ok"], heal  # the stop healed the fault
    checks = [e for e in ev if e["kind"] == "check"]
    assert sorted(e["node"] for e in checks) == ["node1", "node2", "node3"]
    assert all(e["ok"] for e in checks), checks  # nothing acknowledged lost, even when stopped
    assert summary["check"]["complete"] and summary["check"]["counts"]["lost"] == 0
    kinds = [e["kind"] for e in ev]
    assert kinds.index("check") > max(i for i, k in enumerate(kinds) if k == "problem")  # verify after the stop
    assert summary["run"]["stop_signal"] == "SIGINT"
    (stopped,) = summary["run"]["problems"]  # the interrupt is in run.problems, not only in events.jsonl
    assert stopped.startswith("interrupted by SIGINT at ") and "s into the load; " in stopped, stopped


def test_second_signal_stops_at_once_and_still_writes_the_summaries(tmp_path: Path) -> None:
    """A second signal stops at once: faults still heal, the checker still runs, the summaries are written."""
    results = tmp_path / "r"
    with holoload_process(tmp_path, [*ARGS, "--results-dir", str(results)]) as proc:
        wait_for(lambda: has_event(results, "chaos_finished", name="kill_node2"), 90, "the kill", proc)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("holoload still running 60 s after two SIGTERMs")
    out = output(tmp_path)
    assert proc.returncode == 143, out
    run = only_run_dir(results)
    assert summary_json(run)["verdict"] == "INTERRUPTED"
    problems = [e["detail"] for e in events(run) if e["kind"] == "problem" and e["what"] == "interrupted"]
    assert any("stopping at once" in p for p in problems), problems
    (stopped,) = summary_json(run)["run"]["problems"]
    assert "; stopped at once: a second SIGTERM" in stopped, stopped
    # faults are healed even then (shielded), so the embedded cluster stops cleanly
    heal = [e for e in events(run) if e["kind"] == "chaos_finished" and e["step"] == "heal"]
    assert heal, "the kill was not healed"
    # and the checker still ran (it needs no writers, only servers that answer): the ledger gates have values
    checks = [e for e in events(run) if e["kind"] == "check"]
    assert sorted(e["node"] for e in checks) == ["node1", "node2", "node3"], checks
    summary = summary_json(run)
    assert summary["check"]["complete"] and summary["check"]["counts"]["lost"] == 0
    lost = {g["name"]: g for g in summary["gates"]}["lost"]
    assert lost["observed"] == 0, lost


def test_no_chaos_action_starts_after_the_stop(tmp_path: Path) -> None:
    """Ctrl-C while ranges split every second: after "no new work" no chaos step fires (heals still run)."""
    results = tmp_path / "r"
    churn = ["--set", "chaos.0.every=1s", "--set", "chaos.0.jitter=0s"]
    with holoload_process(tmp_path, [*ARGS, *churn, "--results-dir", str(results)]) as proc:
        wait_for(lambda: has_event(results, "chaos_finished", name="kill_node2"), 90, "the kill", proc)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("holoload still running 90 s after SIGINT")
    assert proc.returncode == 130, output(tmp_path)
    ev = events(Path(only_run_dir(results)))
    stop = next(i for i, e in enumerate(ev) if e["kind"] == "problem" and e["what"] == "interrupted")
    fired = [e for e in ev[:stop] if e["kind"] == "chaos_started" and e["name"] == "split_churn"]
    assert fired, "no split before the stop: the test saw no schedule to stop"
    late = [e for e in ev[stop:] if e["kind"] == "chaos_started" and e["step"] == "fire"]
    assert late == [], late
    heals = [e for e in ev[stop:] if e["kind"] == "chaos_finished" and e["step"] == "heal"]
    assert [e["name"] for e in heals] == ["kill_node2"] and heals[0]["ok"], heals
