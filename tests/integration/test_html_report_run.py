"""report.html of a real run on the embedded cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from holoload.shell.html_report import REPORT_NAME, write_report
from tests.support import REPO
from tests.support.html import parse, section, with_class


def test_report_of_a_real_oltp_run(tmp_path: Path) -> None:
    """A real short oltp run on the embedded cluster: every gate, every op and every node of the run is in the report."""
    cmd = [
        sys.executable,
        "-m",
        "holoload",
        str(REPO / "scenarios" / "oltp.toml"),
        "--results-dir",
        str(tmp_path),
        "-q",
    ]
    cmd += [f"--set=phases.{i}.duration={d}" for i, d in enumerate(("1s", "2s", "2s", "2s"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [root] = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = orjson.loads((root / "summary.json").read_bytes())
    assert write_report(root) == []
    doc = parse((root / REPORT_NAME).read_text(encoding="utf-8"))
    assert len(section(doc, "gates").findall(".//tbody/tr")) == len(summary["gates"])
    ops = {op for phase in summary["phases"].values() for op in phase["ops"]}
    assert {c.get("data-op") for c in with_class(section(doc, "latency"), "svg", "latency")} == ops
    [per_node] = with_class(section(doc, "throughput"), "svg", "node-throughput")
    assert [p.get("data-label") for p in per_node.iter("path")] == ["node1", "node2", "node3"]
    assert all(p.get("d", "").count("L") >= 4 for p in per_node.iter("path"))  # a line over the run's windows
    assert with_class(section(doc, "metrics"), "svg", "metric")
    assert with_class(section(doc, "topology"), "svg", "shards")
