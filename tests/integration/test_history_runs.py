"""Real runs into the run history: recorded at the end, after `holoload report` of a killed run,
by `history import`; the history commands; `--baseline auto`; reports/index.html in Chromium."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from holoload.adapters.history.store import open_store
from holoload.adapters.local.cluster import LocalNode
from holoload.core.stats.histogram import LatencyHistogram
from holoload.shell.cli import dispatch
from tests.support import REPO
from tests.support.browser import decode_png, find_browser, run_browser
from tests.support.runs import holoload_process, main_windows, only_run_dir, scenario_file, wait_for, write_target


def _run(tmp_path: Path, target: str, results: Path, *extra: str) -> Path:
    """One short run (1 s warm-up, 1 s measured); returns its results directory."""
    before = set(results.iterdir()) if results.exists() else set()
    code = dispatch([scenario_file(tmp_path, "1s"), "--target", target, "--results-dir", str(results), "-q", *extra])
    [run] = [p for p in results.iterdir() if p.is_dir() and p not in before]
    assert code == 0, (run / "summary.json").read_text()
    return run


def test_every_run_is_recorded_and_history_commands_show_it(
    tmp_path: Path,
    pg_cluster: list[LocalNode],
    pg_history_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two runs land in results/history.sqlite with context and per-op histograms; list, show and
    trend print them; `--baseline auto` compares with the last passing run; imported into
    PostgreSQL they come back equal; a history that cannot be written is a recorded problem and
    leaves the verdict alone."""
    monkeypatch.setenv("HOLOLOAD_ENV", "ci")
    monkeypatch.setenv("GITHUB_SHA", "c0ffee" * 6 + "beef")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    results = tmp_path / "r"
    target = write_target(tmp_path, pg_cluster)
    capsys.readouterr()
    first = _run(tmp_path, target, results, "--baseline", "auto")
    assert "no passing run of scenario rebuild, target session, environment ci" in capsys.readouterr().out
    # wide budgets: this test is about which baseline is found; 1 s runs on a busy machine vary a lot
    second = _run(
        tmp_path, target, results, "--baseline", "auto", "--budget", "latency=1000%", "--budget", "throughput=99%"
    )
    assert f"baseline (auto): {first}" in capsys.readouterr().out
    assert json.loads((second / "summary.json").read_text())["baseline"]["results_dir"] == str(first)

    with open_store(str(results / "history.sqlite")) as store:
        runs = store.runs(with_histograms=True)
    assert [r.results_dir for r in runs] == [str(first.resolve()), str(second.resolve())]
    run = runs[1]
    summary = json.loads((second / "summary.json").read_text())
    assert (run.run_id, run.verdict, run.environment, run.target, run.source) == (
        summary["run"]["run_id"],
        "PASS",
        "ci",
        "session",
        "run",
    )
    assert (run.git_commit, run.git_branch) == ("c0ffee" * 6 + "beef", "main")
    assert run.host_cpus and run.host_load1 is not None and run.holoload_version
    assert [g.name for g in run.gates] == ["p99", "client.ok"]  # client.ok: every sustained-load run's default gate
    assert all(g.passed is True for g in run.gates)
    read = run.op("main", "w.read")
    assert read is not None and read.histogram is not None
    want = summary["phases"]["main"]["ops"]["w.read"]
    assert read.ok == want["ok"] > 0 and read.p99_ms == want["latency_ms"]["p99"]
    merged = LatencyHistogram.decode(read.histogram.encode())  # every endpoint and window of the phase
    assert merged.count == want["ok"]  # successes only, as the run's own percentiles
    assert merged.percentile_us(99) / 1000 == pytest.approx(want["latency_ms"]["p99"], rel=0.002)

    assert dispatch(["history", "list", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert runs[0].run_id in out and runs[1].run_id in out and "c0ffeec0ff" in out
    assert dispatch(["history", "show", run.run_id[:-3], "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "p99(read) <= 10s" in out and "w.read" in out and "chars" in out
    assert (
        dispatch(["history", "trend", "--op", "main/w.read", "--metric", "p95_ms", "--results-dir", str(results)]) == 0
    )
    out = capsys.readouterr().out
    assert "rebuild · env ci · target session · main/w.read" in out and out.count("PASS") == 2

    # the same runs in a team's PostgreSQL history: imported, then listed through the URL
    assert dispatch(["history", "import", str(first), str(second), "--history", pg_history_url]) == 0
    with open_store(pg_history_url) as store:
        assert store.runs(with_histograms=True) == [replace(r, source="import") for r in runs]
    assert dispatch(["history", "list", "--history", pg_history_url]) == 0
    assert runs[1].run_id in capsys.readouterr().out

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    third = _run(tmp_path, target, results, "--history", str(blocker / "h.sqlite"))
    problems = json.loads((third / "summary.json").read_text())["run"]["problems"]
    assert any("run history not recorded" in p for p in problems), problems


def test_a_killed_run_is_recorded_by_holoload_report(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """SIGKILL mid-run: nothing recorded; `holoload report` rebuilds the summary and records the run
    as KILLED with its context (taken at start) and the histograms of the windows it closed."""
    results = tmp_path / "r"
    target = write_target(tmp_path, pg_cluster)
    args = [scenario_file(tmp_path, "60s"), "--target", target, "--results-dir", str(results), "-q"]
    with holoload_process(tmp_path, args) as proc:
        wait_for(lambda: main_windows(results) >= 4, 60, "four windows of phase main", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    run_dir = only_run_dir(results)
    assert not (results / "history.sqlite").exists()
    assert (run_dir / "context.json").exists()
    proc2 = subprocess.run(
        [sys.executable, "-m", "holoload", "report", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    with open_store(str(results / "history.sqlite")) as store:
        [run] = store.runs(with_histograms=True)
    rebuilt = json.loads((run_dir / "summary.json").read_text())
    assert (run.run_id, run.verdict, run.source, run.exit_code) == (rebuilt["run"]["run_id"], "KILLED", "report", None)
    assert run.host_cpus and run.started_ts > 0
    ins = run.op("main", "w.ins")
    assert ins is not None and ins.ok == rebuilt["phases"]["main"]["ops"]["w.ins"]["ok"] > 0
    assert ins.histogram is not None
    # latency.hlog is appended right after timeseries.csv for each window: a kill between the two
    # leaves the histogram one window short of the counts, never ahead of them
    assert 0 < LatencyHistogram.decode(ins.histogram.encode()).count <= ins.ok
    assert [g.name for g in run.gates] == [g["name"] for g in rebuilt["gates"]]
    assert all(g.passed is None for g in run.gates)  # last live states, never verdicts


def test_history_import_and_the_index_page_in_chromium(
    tmp_path: Path, pg_cluster: list[LocalNode], capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs made with `--history none` (one then stripped of its summary, as if killed) are imported;
    `history report` writes index.html with trend charts, verdict dots and links to each run's
    report.html, and badge.svg; Chromium draws the page (not blank) with those charts and links."""
    results = tmp_path / "r"
    target = write_target(tmp_path, pg_cluster)
    runs = [_run(tmp_path, target, results, "--history", "none") for _ in range(3)]
    assert not (results / "history.sqlite").exists()
    (runs[1] / "summary.json").unlink()
    assert dispatch(["history", "import", str(results)]) == 0
    assert "3 run(s) imported, 0 skipped" in capsys.readouterr().out
    with open_store(str(results / "history.sqlite")) as store:
        stored = store.runs()
    assert [r.verdict for r in stored] == ["PASS", "KILLED", "PASS"] and {r.source for r in stored} == {"import"}
    assert dispatch(["history", "import", str(runs[0])]) == 0  # again: replaced, not duplicated
    with open_store(str(results / "history.sqlite")) as store:
        assert len(store.runs()) == 3

    out = tmp_path / "reports"
    assert dispatch(["history", "report", "--results-dir", str(results), "--out", str(out)]) == 0
    html = (out / "index.html").read_text()
    hrefs = re.findall(r'class="run-link" href="([^"]+)"', html)
    assert len(hrefs) == 3 and all((out / h).resolve().is_file() for h in hrefs)  # report.html of each run
    badge = (out / "badge.svg").read_text()
    assert "rebuild · default" in badge and ">PASS<" in badge

    browser = find_browser()
    url = (out / "index.html").as_uri()
    shot = tmp_path / "shot.png"
    run_browser(browser, [f"--screenshot={shot}", "--window-size=1280,1800", url], tmp_path)
    dom = run_browser(browser, ["--dump-dom", url], tmp_path).decode()
    for op in ("main/w.ins", "main/w.read"):
        assert f'data-op="{op}"' in dom
    assert (
        dom.count('class="chart trend-chart latency"') == 2 and dom.count('class="chart trend-chart throughput"') == 2
    )
    assert dom.count('class="run-link"') == 3 and 'class="line verdict-dots KILLED"' in dom
    width, height, bpp, rows = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 1800)
    pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), bpp * 2)]
    inked = sum(p != b"\xff\xff\xff" for p in pixels) / len(pixels)
    colors = set(pixels)
    assert inked > 0.03, f"only {inked:.1%} of the page is not white"
    assert len(colors) > 30, f"only {len(colors)} colors"
    assert b"\x1a\x7f\x37" in colors  # PASS green: verdict badges and dots
