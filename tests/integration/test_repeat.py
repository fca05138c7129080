"""`holoload run --repeat N`: a set directory, gates over the set, a baseline comparison of the whole set."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from holoload.adapters.local.cluster import LocalNode
from holoload.shell.cli import dispatch
from tests.support.runs import only_run_dir, scenario_file, write_target


def test_repeat_runs_a_set_and_compares_it_with_a_baseline(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    """Two runs into one set directory; gates over the set; a ten-times-faster baseline fails the set everywhere."""
    target = write_target(tmp_path, pg_cluster)
    scenario = scenario_file(tmp_path, "2s")
    first = tmp_path / "first"
    assert dispatch([scenario, "--target", target, "--results-dir", str(first), "-q", "--repeat", "2"]) == 0
    set_dir = only_run_dir(first)
    assert set_dir.name.startswith("rebuild_x2_")
    data = json.loads((set_dir / "set.json").read_text())
    assert data["verdict"] == "PASS" and len(data["runs"]) == 2
    assert all(Path(r["results_dir"]).parent == set_dir and r["verdict"] == "PASS" for r in data["runs"])
    assert [(g["name"], g["passed"], g["passed_runs"]) for g in data["gates"]] == [
        ("p99", True, 2),
        ("client.ok", True, 2),
    ]
    assert (set_dir / "summary.md").read_text().startswith("## holoload rebuild: PASS")

    # a planted baseline ten times as fast as the first run (summary only: the point rule decides)
    run_dir = Path(data["runs"][0]["results_dir"])
    faster = json.loads((run_dir / "summary.json").read_text())
    for op in faster["phases"]["main"]["ops"].values():
        op["latency_ms"] = {k: v / 10 for k, v in op["latency_ms"].items()}
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "summary.json").write_text(json.dumps(faster))
    second = tmp_path / "second"
    args = [scenario, "--target", target, "--results-dir", str(second), "-q", "--repeat", "2"]
    assert dispatch([*args, "--baseline", str(planted)]) == 1
    set_dir = only_run_dir(second)
    data = json.loads((set_dir / "set.json").read_text())
    assert data["verdict"] == "FAIL" and all(
        g["passed"] for g in data["gates"]
    )  # every gate passed: the baseline failed it
    regressed = {(d["op"], d["metric"]) for d in data["baseline"]["deltas"] if d["regression"]}
    assert ("main.w.read", "p99_ms") in regressed or ("main.w.ins", "p99_ms") in regressed, regressed
    assert "### Baseline comparison: FAIL" in (set_dir / "summary.md").read_text()
    suite = ET.fromstring((set_dir / "junit.xml").read_text())
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed and all(name.startswith("main.w.") for name in failed)
    assert '<section id="baseline">' in (set_dir / "report.html").read_text()
    # the first set as a baseline of the second: `holoload compare` reads sets on both sides
    generous = ["--budget", "latency=1000%", "--budget", "throughput=99%"]
    assert dispatch(["compare", str(only_run_dir(first)), str(set_dir), *generous]) == 0


def test_repeat_out_of_range_is_an_input_error(tmp_path: Path) -> None:
    assert dispatch([scenario_file(tmp_path, "1s"), "--repeat", "0"]) == 2
