"""reports/index.html and badge.svg from history records: sections, charts, change points, links."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from holoload.core.history.model import OpRecord, RunEntry
from holoload.shell.history_report import render_badge, render_index, write_history_report
from tests.support.browser import find_browser, run_browser

STEP_AT = 8


def _runs(tmp_path: Path) -> list[RunEntry]:
    """16 ci runs of oltp whose p95 steps up 50 % at run 8 (those FAIL), 3 staging runs, 1 other scenario."""
    runs = []
    for i in range(16):
        p95 = (6.0 if i >= STEP_AT else 4.0) * (1 + 0.02 * ((i * 7) % 5 - 2))
        run_dir = tmp_path / "results" / f"oltp_{i}"
        run_dir.mkdir(parents=True)
        (run_dir / "report.html").write_text("<html></html>")
        runs.append(
            RunEntry(
                run_id=f"oltp-{i:02d}",
                scenario="oltp",
                scenario_hash="h",
                target="t1",
                topology="3 nodes",
                environment="ci",
                verdict="FAIL" if i >= STEP_AT else "PASS",
                started_at="",
                started_ts=1_796_000_000.0 + i * 3600,
                results_dir=str(run_dir),
                ops=(
                    OpRecord("main", "w.read", True, 10.0, 1000, 0, {}, 0, 0, 0, 1000.0, 1.0, p95, p95 * 2, 20.0),
                    OpRecord("warm", "w.read", False, 1.0, 10, 0, {}, 0, 0, 0, 10.0, 1.0, 1.0, 1.0, 1.0),
                ),
            )
        )
    staging = [replace(r, run_id=f"st-{i}", environment="staging", verdict="PASS") for i, r in enumerate(runs[:3])]
    other = replace(runs[0], run_id="canary-1", scenario="sales_facts", verdict="KILLED", results_dir="/elsewhere/x")
    return runs + staging + [other]


def test_index_has_a_section_per_series_with_trend_charts_change_points_and_run_links(tmp_path: Path) -> None:
    runs = _runs(tmp_path)
    out = tmp_path / "reports"
    html = render_index(runs, out)
    sections = re.findall(r'<section class="group" data-env="([^"]+)" data-scenario="([^"]+)">', html)
    assert sections == [("ci", "oltp"), ("staging", "oltp"), ("ci", "sales_facts")]
    assert '<option value="ci">ci</option><option value="staging">staging</option>' in html
    assert html.count('data-op="main/w.read"') == 3 * 2  # latency and throughput per series
    assert 'data-op="warm/w.read"' not in html  # unmeasured phases are not trended
    # the step: one marker per latency figure, at the first FAIL run, in the change table too
    assert html.count('class="change-mark"') == 2
    assert re.search(r'class="mark-label">p95 \+(4[5-9]|5[0-5])%<', html)  # +50 % give or take the noise
    assert html.count("(oltp-08)</td>") == 2
    hrefs = re.findall(r'class="run-link" href="([^"]+)"', html)
    assert len(hrefs) == 20
    assert all((out / h).resolve().is_file() for h in hrefs[:19])  # relative to reports/
    assert "not on this machine" in html  # the run whose directory is elsewhere
    assert "<script>" in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")  # no network


def test_badge_shows_the_latest_verdict_per_scenario_and_environment(tmp_path: Path) -> None:
    badge = render_badge(_runs(tmp_path))
    rows = re.findall(r'font-weight="bold" text-anchor="middle">([A-Z]+)</text>', badge)
    labels = re.findall(r'text-anchor="middle">([^<]+ · [^<]+)</text>', badge)
    assert list(zip(labels, rows, strict=True)) == [
        ("oltp · ci", "FAIL"),
        ("oltp · staging", "PASS"),
        ("sales_facts · ci", "KILLED"),
    ]
    assert "no runs" in render_badge([])


def test_write_history_report_writes_both_files(tmp_path: Path) -> None:
    index, badge = write_history_report(_runs(tmp_path), tmp_path / "out" / "reports")
    assert index.read_text().startswith("<!DOCTYPE html>") and badge.read_text().startswith("<svg")
    assert sorted(p.name for p in index.parent.iterdir()) == ["badge.svg", "index.html"]


def test_the_environment_filter_hides_other_environments_in_chromium(tmp_path: Path) -> None:
    """index.html#env=staging opens with only staging's rows and sections shown (the inline script ran)."""
    browser = find_browser()
    index, _ = write_history_report(_runs(tmp_path), tmp_path / "reports")
    dom = run_browser(browser, ["--dump-dom", index.as_uri() + "#env=staging"], tmp_path).decode()
    shown = re.findall(r'<section class="group" data-env="([^"]+)" data-scenario="([^"]+)">', dom)
    hidden = re.findall(
        r'<section class="group" data-env="([^"]+)" data-scenario="([^"]+)" style="display: none;">', dom
    )
    assert shown == [("staging", "oltp")]
    assert hidden == [("ci", "oltp"), ("ci", "sales_facts")]
