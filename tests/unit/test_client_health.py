"""The client-health rule with injected figures: when holoload itself was the bottleneck, and when not."""

from __future__ import annotations

import asyncio
import pickle
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.model.scenario import parse_scenario
from holoload.core.stats.client_health import (
    ClientHealthBook,
    ClientLimits,
    LagSamples,
    ProcessHealth,
    WindowHealth,
    strain,
)
from holoload.core.stats.wire import WorkerWindow
from holoload.engine.client_probe import ClientWatch, LoopProbe, client_gate_enabled

NS_PER_MS = 1_000_000
LIMITS = ClientLimits()


def proc(
    lag_ms: float | None = 2.0, *, probes: int = 40, cpu_s: float = 0.3, drops: int = 0, load: bool = True
) -> ProcessHealth:
    return ProcessHealth(lag_ms, lag_ms, probes if lag_ms is not None else 0, cpu_s, 1.0, drops, load)


def window(
    index: int = 0, *, late_s: float | None = 0.002, actual_s: float = 1.0, **procs: ProcessHealth
) -> WindowHealth:
    processes = tuple((name.replace("_", " "), p) for name, p in procs.items()) or (("coordinator", proc()),)
    return WindowHealth(index, 1.0, actual_s, late_s, processes)


# ------------------------------------------------------------------ one window


def test_a_window_that_kept_up_has_no_strain() -> None:
    """Small lag, a tick on time and no late drop: nothing to say."""
    assert strain(window(coordinator=proc(12.0), worker_0=proc(70.0)), LIMITS) == ()


def test_a_late_tick_and_a_lagging_loop_each_strain_a_window() -> None:
    """Each kind of evidence is named with its figure."""
    kinds = dict(strain(window(late_s=0.6, coordinator=proc(400.0), worker_1=proc(3.0)), LIMITS))
    assert set(kinds) == {"tick", "lag:coordinator"}
    assert kinds["tick"].startswith("window closed 0.60s late (60% of 1s)")
    assert kinds["lag:coordinator"] == "coordinator loop lag p99 400ms at 30% CPU"


def test_late_drops_alone_do_not_strain_a_window_but_are_told() -> None:
    """A server-bound run's drops during a client hiccup count as late, yet the client kept up."""
    assert strain(window(worker_0=proc(30.0, drops=12)), LIMITS) == ()
    book = ClientHealthBook()
    for i in range(10):
        book.add(window(i, late_s=0.7, worker_0=proc(3.0, drops=2)))
    assert "; 20 arrivals dropped while the client was behind schedule" in book.verdict().reason


def test_the_lag_of_a_coordinator_that_drives_no_load_does_not_strain() -> None:
    """With workers, the coordinator only merges: its lateness counts through the tick, not its loop lag."""
    assert strain(window(coordinator=proc(900.0, load=False), worker_0=proc(5.0)), LIMITS) == ()
    assert strain(window(late_s=0.6, coordinator=proc(900.0, load=False)), LIMITS)[0][0] == "tick"


def test_a_window_closed_at_a_phase_boundary_is_not_judged_by_its_tick() -> None:
    """No grid time (a phase boundary): a short or long window says nothing about the ticker."""
    assert strain(window(late_s=None, actual_s=0.1), LIMITS) == ()


def test_limits_are_strict_bounds() -> None:
    """Exactly at a limit is still healthy; just above strains."""
    at = window(late_s=LIMITS.tick_late_fraction * 1.0, coordinator=proc(LIMITS.lag_p99_ms))
    above = window(late_s=LIMITS.tick_late_fraction + 0.001, coordinator=proc(LIMITS.lag_p99_ms + 0.1))
    assert strain(at, LIMITS) == ()
    assert {k for k, _ in strain(above, LIMITS)} == {"tick", "lag:coordinator"}


# ------------------------------------------------------------------ the run


def feed(book: ClientHealthBook, strained: int, healthy: int) -> None:
    """Strained windows closed 0.7 s late, each followed (on the grid) by a window 0.7 s shorter."""
    for i in range(strained):
        book.add(window(i, late_s=0.7, actual_s=1.7))
    for i in range(healthy):
        book.add(window(strained + i, actual_s=0.3 if i < strained else 1.0))


def test_no_judged_window_is_no_evidence_and_fails() -> None:
    """A gate with no evidence fails: no window measured anything."""
    book = ClientHealthBook()
    book.add(window(late_s=None, coordinator=proc(None)))
    verdict = book.verdict()
    assert book.saturated is None and verdict.passed is False
    assert verdict.observed_text == "no data" and verdict.reason == "no client health measured"


def test_a_few_slow_windows_never_fail_a_run() -> None:
    """Two strained windows of two judged: below min_strained, so the client kept up."""
    book = ClientHealthBook()
    feed(book, strained=2, healthy=0)
    assert book.saturated is False and book.verdict().passed is True


def test_a_saturated_client_fails_with_the_reason_and_the_first_example() -> None:
    """Strained windows above the share fail client.ok and say what strained them."""
    book = ClientHealthBook()
    feed(book, strained=10, healthy=40)
    verdict = book.verdict()
    assert verdict.passed is False and book.saturated is True
    assert verdict.observed_text == "10 of 50 windows strained (20.0%), windows 1.00x their length"
    assert verdict.reason == (
        "client saturated, results not valid: 10 of 50 windows strained (20.0%), windows 1.00x their length: "
        "window closed 0.70s late (70% of 1s) (10 windows); no holoload process used more than 30% of a CPU "
        "in any window: it was waiting for a CPU (or the GIL), not busy with its own work"
    )
    summary = book.summary()
    assert summary["ok"] is False and summary["strained_by"] == {"tick": 10}
    assert summary["ticked_windows_s"] == pytest.approx(50.0) and summary["ticks"] == 50
    assert summary["stretch"] == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(strained=st.integers(0, 300), healthy=st.integers(0, 3000))
def test_the_run_verdict_follows_the_share_of_strained_windows(strained: int, healthy: int) -> None:
    """Saturated exactly when strained >= min_strained and strained > strained_fraction of judged windows."""
    book = ClientHealthBook()
    feed(book, strained, healthy)
    judged = strained + healthy
    if judged == 0:
        assert book.saturated is None
        return
    expected = strained >= LIMITS.min_strained and strained > LIMITS.strained_fraction * judged
    if healthy < strained:  # too few healthy windows to catch up: the windows lasted longer than set
        expected = expected or (strained >= LIMITS.min_strained and book.stretch is not None and book.stretch > 1.1)
    assert book.saturated is expected
    assert book.verdict().passed is (not expected)


@settings(max_examples=100, deadline=None)
@given(
    lags=st.lists(st.floats(0, 140), min_size=20, max_size=200),
    late=st.lists(st.floats(0, 0.49), min_size=20, max_size=200),
)
def test_healthy_figures_within_the_limits_never_fire(lags: list[float], late: list[float]) -> None:
    """Any mix of lag under the limit and ticks under half a window late passes, however long the run."""
    book = ClientHealthBook()
    for i, (lag, late_s) in enumerate(zip(lags, late, strict=False)):
        book.add(window(i, late_s=late_s, coordinator=proc(lag * 3, load=False), worker_0=proc(lag)))
    assert book.verdict().passed is True


def test_process_totals_keep_medians_worsts_and_cpu_share() -> None:
    """Per process: the median and worst per-window p99, the largest lag, CPU time and share."""
    book = ClientHealthBook()
    for i, lag in enumerate((1.0, 2.0, 3.0, 50.0)):
        book.add(window(i, worker_0=proc(lag, cpu_s=0.5 if i else 0.9)))
    figures = book.summary()["processes"]["worker 0"]  # type: ignore[index]
    assert figures["windows"] == 4 and figures["lag_max_ms"] == 50.0
    assert figures["lag_p99_ms_median"] == pytest.approx(2.0, rel=0.01)
    assert figures["lag_p99_ms_worst"] == pytest.approx(50.0, rel=0.01)
    assert figures["cpu_s"] == pytest.approx(2.4) and figures["cpu_share_max"] == pytest.approx(0.9)


# ------------------------------------------------------------------ samples, merges, transport


def test_lag_samples_give_the_nearest_rank_p99_and_start_over() -> None:
    samples = LagSamples()
    for ms in range(1, 101):
        samples.record(ms * NS_PER_MS)
    samples.record(-5)  # an early wake-up counts as no lag
    assert samples.take() == (101, 99.0, 100.0)
    assert samples.take() == (0, None, None)


def test_two_flushes_of_a_late_worker_merge_into_one_window() -> None:
    merged = proc(3.0, drops=1).merged(proc(200.0, probes=10, drops=2))
    assert (merged.lag_p99_ms, merged.probes, merged.late_drops, merged.wall_s) == (200.0, 50, 3, 2.0)
    assert proc(None).merged(proc(4.0)).lag_p99_ms == 4.0


def test_worker_health_survives_the_wire() -> None:
    """A worker's window pickles with its health (workers and Ray actors pickle their windows)."""
    sent = WorkerWindow(3, health=proc(7.5, drops=2))
    assert pickle.loads(pickle.dumps(sent)).health == sent.health


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0
        self.cpu = 0.0

    def perf_ns(self) -> int:
        return self.ns

    def cpu_s(self) -> float:
        return self.cpu


def test_the_coordinator_watch_records_its_probe_workers_and_late_drops() -> None:
    """ClientWatch.close: the coordinator's span since the last close, the workers heard from, merged."""
    clock, drops = FakeClock(), [0]
    probe = LoopProbe(lambda: drops[0], perf_ns=clock.perf_ns, cpu_s=clock.cpu_s)
    watch = ClientWatch(ClientHealthBook(), probe, 1.0)
    probe.samples.record(300 * NS_PER_MS)
    clock.ns, clock.cpu, drops[0] = 2_000_000_000, 0.5, 4
    watch.worker(1, proc(5.0))
    watch.worker(0, proc(1.0))
    watch.worker(1, proc(9.0))
    health, why = watch.close(0, 1.0, 0.0)
    names = [n for n, _ in health.processes]
    assert names == ["coordinator", "worker 0", "worker 1"]
    coordinator = health.processes[0][1]
    assert (coordinator.lag_p99_ms, coordinator.cpu_s, coordinator.wall_s, coordinator.late_drops) == (
        300.0,
        0.5,
        2.0,
        4,
    )
    assert health.processes[2][1].lag_p99_ms == 9.0 and health.processes[2][1].probes == 80
    assert why == ("coordinator loop lag p99 300ms at 25% CPU",) and health.late_drops == 4
    again, _ = watch.close(1, 1.0, 0.0)
    assert [n for n, _ in again.processes] == ["coordinator"] and again.late_drops == 0


@pytest.mark.anyio
async def test_the_probe_measures_a_blocked_loop() -> None:
    """A callback that blocks the loop for 120 ms shows as that much lag (the probe's own sleep excluded)."""
    probe = LoopProbe(interval_s=0.01)
    task = asyncio.ensure_future(probe.run())
    await asyncio.sleep(0.03)
    time.sleep(0.12)  # the planted block: nothing else runs meanwhile
    await asyncio.sleep(0.03)
    task.cancel()
    health = probe.take()
    assert health.probes >= 2 and health.lag_max_ms is not None and health.lag_max_ms >= 100


# ------------------------------------------------------------------ the default gate


BASE = """
name = "s"
[[phases]]
name = "p"
duration = "1s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "q"
sql = "SELECT 1"
"""


@pytest.mark.parametrize(
    ("overrides", "enabled"),
    [
        ([], True),
        (["run.client_gate=false"], False),
        (['gates.client_ok=""'], False),
        (["gates.client_ok=client_saturated == 0"], False),  # the scenario's own expression replaces it
    ],
)
def test_client_ok_is_a_default_gate_unless_the_scenario_turns_it_off(overrides: list[str], enabled: bool) -> None:
    scenario = parse_scenario(BASE, "s.toml", overrides)
    assert client_gate_enabled(scenario) is enabled


# ------------------------------------------------------------------ the live view


def test_the_live_view_names_a_strained_client() -> None:
    """The client row (terminal) and the progress line (no terminal) say when holoload was the bottleneck."""
    from rich.console import Console

    from holoload.core.events import WindowClosed
    from holoload.shell.live_load import LoadDisplay, client_row

    health = window(late_s=0.6, coordinator=proc(400.0, cpu_s=0.99))
    event = WindowClosed(0.0, "p", 3, 4.0, 1.6, (), {}, (), health, ("coordinator loop lag p99 400ms",))
    row = client_row(event)
    assert "coordinator lag p99 400ms cpu 99%" in row.plain and "closed 600ms late" in row.plain
    assert "STRAINED: coordinator loop lag p99 400ms" in row.plain and row.style == "bold red"
    calm = client_row(WindowClosed(0.0, "p", 3, 4.0, 1.0, (), {}, (), window(), ()))
    assert "STRAINED" not in calm.plain and calm.style == "dim"
    display = LoadDisplay(Console(force_terminal=False, width=300), parse_scenario(BASE, "s.toml"))
    line = display._window_line(event)
    assert line.endswith("client STRAINED (holoload is the bottleneck): coordinator loop lag p99 400ms")


# ------------------------------------------------------------------ client_health.csv


def test_client_health_csv_rebuilds_the_client_section(tmp_path: Path) -> None:
    """What ClientHealthWriter appends is enough to rebuild summary.json's client section (a killed run)."""
    from holoload.core.events import WindowClosed
    from holoload.shell.artifacts import ClientHealthWriter
    from holoload.shell.client_report import client_from_csv

    book = ClientHealthBook()
    writer = ClientHealthWriter(tmp_path / "client_health.csv")
    for i in range(30):
        late = 0.6 if i % 4 == 0 else (None if i == 29 else 0.003)
        health = window(
            i,
            late_s=late,
            coordinator=proc(500.0 if i % 7 == 0 else 20.0, load=False),
            worker_0=proc(3.0 + i, drops=int(i % 5 == 1)),
        )
        why = book.add(health)
        writer.emit(WindowClosed(1000.0 + i, "p", i, float(i), 1.0, (), {}, (), health, why))
    writer.close()
    want = book.summary()
    got = client_from_csv(tmp_path, {"run": {"client_gate": True}, "gates": {}})
    assert got is not None
    for key in (
        "ok",
        "saturated",
        "windows",
        "judged_windows",
        "strained_windows",
        "strained_by",
        "reason",
        "late_drops",
    ):
        assert got[key] == want[key], key
    assert got["tick_late_max_s"] == pytest.approx(want["tick_late_max_s"], abs=1e-3)
    for name in ("coordinator", "worker 0"):
        for key, value in want["processes"][name].items():  # type: ignore[index]
            assert got["processes"][name][key] == pytest.approx(value, rel=0.01, abs=1e-3), (name, key)
    assert client_from_csv(tmp_path / "nothing", {}) is None


def test_windows_stretched_for_good_fail_even_when_each_was_only_a_little_late() -> None:
    """Issue 13: 755 windows of 1 s in 1,223 s. Each closed 0.4 s late (under the per-window bar), yet the
    ticker lost that time for good: client.ok fails and says how long the windows lasted."""
    book = ClientHealthBook()
    for i in range(755):
        book.add(window(i, late_s=0.4, actual_s=1223 / 755))
    assert book.strained == 0 and book.stretch == pytest.approx(1.62, abs=0.01)
    verdict = book.verdict()
    assert verdict.passed is False
    assert "windows of 1s lasted 1.62s on average (755 in 1223s)" in verdict.reason
    assert verdict.observed_text == "0 of 755 windows strained (0.0%), windows 1.62x their length"


def test_late_closes_that_the_grid_catches_up_do_not_stretch() -> None:
    """A coordinator starved now and then: 4 of 69 windows closed late, the next ones shorter; 1.0x in all."""
    book = ClientHealthBook()
    for i in range(69):
        late = 0.6 if i % 17 == 0 else 0.02
        book.add(window(i, late_s=late, actual_s=1.0 + late - (0.6 if i % 17 == 1 else 0.02)))
    assert book.stretch == pytest.approx(1.0, abs=0.02) and book.strained == 5
    assert book.verdict().passed is True


# ------------------------------------------------------------------ summary.md, junit.xml, report.html


def saturated_summary() -> dict[str, object]:
    book = ClientHealthBook()
    for i in range(20):
        book.add(window(i, late_s=0.7, actual_s=1.7, coordinator=proc(400.0, load=False), worker_0=proc(220.0)))
    return {
        "scenario": {"name": "s"},
        "verdict": "FAIL",
        "exit_code": 1,
        "run": {"run_id": "s-1", "started_at": "2026-12-02T15:00:00+00:00", "duration_s": 30.0},
        "gates": [book.verdict().to_dict()],
        "client": book.summary(),
    }


def test_ci_outputs_say_the_client_was_saturated() -> None:
    """summary.md: a bold line under the facts and a Client section; junit.xml: the gate's failure and a property."""
    import xml.etree.ElementTree as ET

    from holoload.shell.ci_outputs import junit_xml, summary_markdown

    summary = saturated_summary()
    markdown = summary_markdown(summary)
    assert "**client saturated, results not valid**: windows of 1s lasted 1.70s on average" in markdown
    assert "holoload SATURATED: results not valid: 20 of 20 windows strained" in markdown
    assert "20 windows of 1 s took 34 s (1.7x;" in markdown
    assert "| worker 0 | 220 | 220 | 220 |" in markdown and "| coordinator | 400 |" in markdown
    suite = ET.fromstring(junit_xml(summary).split("\n", 1)[1])
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["client_ok"] == "False"
    (failure,) = suite.iter("failure")
    assert failure.get("message", "").startswith("client saturated, results not valid")


def test_the_report_has_a_client_section_with_its_chart(tmp_path: Path) -> None:
    """report.html: the reason in the banner, the table per process, and the loop-lag/lateness chart."""
    import json

    from holoload.core.events import WindowClosed
    from holoload.shell.artifacts import ClientHealthWriter
    from holoload.shell.html_report import render_report

    writer = ClientHealthWriter(tmp_path / "client_health.csv")
    for i in range(5):
        health = window(i, late_s=0.7, actual_s=1.7, worker_0=proc(220.0))
        writer.emit(WindowClosed(1796227200.0 + i, "p", i, float(i), 1.7, (), {}, (), health, ("worker 0 lag",)))
    writer.close()
    (tmp_path / "summary.json").write_text(json.dumps(saturated_summary()))
    html = render_report(tmp_path)
    assert (
        "client saturated, results not valid: windows of 1s lasted"
        in html.split('id="verdict"')[1].split("</header>")[0]
    )
    section = html.split('<section id="client">')[1].split("</section>")[0]
    assert 'id="client-table"' in section and 'class="chart client"' in section
    assert "worker 0 loop lag p99" in section and "window closed late by" in section


def test_the_reason_tells_a_starved_client_from_a_busy_one() -> None:
    """Lagging at 30 % CPU: it waited (for a CPU or the GIL); lagging at 99 %: holoload's own work."""
    starved, busy = ClientHealthBook(), ClientHealthBook()
    for i in range(5):
        starved.add(window(i, worker_0=proc(300.0, cpu_s=0.3)))
        busy.add(window(i, worker_0=proc(300.0, cpu_s=0.99)))
    assert "it was waiting for a CPU (or the GIL), not busy with its own work" in starved.verdict().reason
    assert "worker 0 loop lag p99 300ms at 99% CPU (5 windows)" in busy.verdict().reason
    assert "waiting for a CPU" not in busy.verdict().reason
