"""`holoload history` and `--baseline auto` on the command line, without a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from holoload.shell.cli import dispatch
from tests.support import REPO


def _fake_run(base: Path, name: str, verdict: str, started: str) -> Path:
    """A results directory holding only a summary.json, as an older holoload could have left."""
    root = base / name
    root.mkdir(parents=True)
    summary = {
        "holoload_version": "0.0.9",
        "run": {"run_id": name, "started_at": started, "results_dir": str(root)},
        "verdict": verdict,
        "exit_code": 0 if verdict == "PASS" else 1,
        "scenario": {"name": "oltp"},
        "target": {"name": "local", "nodes": ["node1"]},
        "phases": {
            "main": {
                "seconds": 1.0,
                "ops": {
                    "w.read": {
                        "ok": 10,
                        "errors": {},
                        "error_count": 0,
                        "ops_per_s": 10.0,
                        "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0},
                    }
                },
            }
        },
        "gates": [{"name": "g", "expression": "p95(read) <= 5ms", "passed": verdict == "PASS"}],
    }
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def test_history_commands_on_imported_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Import a directory of runs (and a stray non-run directory), then list, show, trend and report."""
    base = tmp_path / "results"
    _fake_run(base, "oltp-a", "PASS", "2026-12-01T10:00:00+00:00")
    _fake_run(base, "oltp-b", "FAIL", "2026-12-01T11:00:00+00:00")
    (base / "not-a-run").mkdir()
    assert dispatch(["history", "import", str(base)]) == 0
    assert "2 run(s) imported, 0 skipped" in capsys.readouterr().out
    assert dispatch(["history", "list", "--results-dir", str(base)]) == 0
    out = capsys.readouterr().out
    assert out.index("oltp-a") < out.index("oltp-b") and "FAIL     g" in out
    assert dispatch(["history", "show", "oltp-b", "--results-dir", str(base)]) == 0
    out = capsys.readouterr().out
    assert "FAIL (exit 1)" in out and "recorded by import" in out
    assert dispatch(["history", "show", "nope", "--results-dir", str(base)]) == 2
    assert dispatch(["history", "trend", "--scenario", "oltp", "--results-dir", str(base)]) == 0
    assert "oltp · env default · target local · main/w.read" in capsys.readouterr().out
    assert dispatch(["history", "report", "--results-dir", str(base), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "rep" / "badge.svg").is_file()


def test_history_without_a_database_or_with_bad_input_exits_2(tmp_path: Path) -> None:
    assert dispatch(["history", "list", "--results-dir", str(tmp_path)]) == 2  # nothing recorded there yet
    assert dispatch(["history", "list", "--history", "none"]) == 2
    assert dispatch(["history", "import", str(tmp_path / "missing")]) == 2


def test_a_broken_run_directory_is_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "results"
    _fake_run(base, "oltp-a", "PASS", "2026-12-01T10:00:00+00:00")
    (base / "torn").mkdir()
    (base / "torn" / "summary.json").write_text("{not json")
    assert dispatch(["history", "import", str(base)]) == 1
    out = capsys.readouterr().out
    assert "skipped" in out and "1 run(s) imported, 1 skipped" in out


def test_baseline_auto_with_history_off_is_an_input_error_before_any_load(tmp_path: Path) -> None:
    scenario = str(REPO / "scenarios" / "oltp.toml")
    args = [scenario, "--baseline", "auto", "--history", "none", "--results-dir", str(tmp_path)]
    assert dispatch(args) == 2
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
