"""latency.hlog: the standard HdrHistogram interval log, read back with hdrh's own log reader."""

from __future__ import annotations

import json
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from holoload.adapters.local.cluster import LocalNode
from holoload.core.stats import hlog
from holoload.core.stats.histogram import LatencyHistogram
from holoload.shell.cli import dispatch
from tests.support.runs import only_run_dir, write_target

SCENARIO = """
name = "hlog"
window = "500ms"
[setup]
sql = ["DROP TABLE IF EXISTS hlog_t", "CREATE TABLE hlog_t (id BIGINT PRIMARY KEY)"]
[[phases]]
name = "main"
duration = "3s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 2
[[phases.workloads.ops]]
name = "ins"
sql = "INSERT INTO hlog_t (id) VALUES ($1)"
params = [{ gen = "seq" }]
"""


def read_all(path: Path) -> list[HdrHistogram]:
    reference = LatencyHistogram()._hdr  # the layout holoload records with
    reader = HistogramLogReader(str(path), reference)
    out = []
    while (h := reader.get_next_interval_histogram()) is not None:
        out.append(h)
    reader.close()
    return out


def test_header_and_lines_follow_the_format() -> None:
    text = hlog.header(1795312887.389)
    assert text.splitlines()[0] == "#[Histogram log format version 1.3]"
    assert "#[StartTime: 1795312887.389 (seconds since epoch), 2026-" in text
    assert hlog.tag("p", "w", "op", "node 1,x") == "p.w.op@node_1_x"  # no commas or spaces in tags
    assert hlog.interval_line("t", 1.5, 1.0, 4095, "HISTF") == "Tag=t,1.500,1.000,4.095,HISTF\n"


def test_latency_hlog_reads_back_to_the_summary_percentiles(tmp_path: Path, pg_cluster: list[LocalNode]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    results = tmp_path / "r"
    code = dispatch(
        [str(scenario), "--target", write_target(tmp_path, pg_cluster), "--results-dir", str(results), "-q"]
    )
    assert code == 0
    run = only_run_dir(results)
    histograms = read_all(run / "latency.hlog")
    tags = {h.get_tag() for h in histograms}
    assert tags == {"main.w.ins@node1", "main.w.ins@node2", "main.w.ins@node3"}
    merged = LatencyHistogram()._hdr
    for h in histograms:
        merged.add(h)
    summary = json.loads((run / "summary.json").read_text())
    fig = summary["phases"]["main"]["ops"]["w.ins"]
    assert merged.get_total_count() == fig["ok"]
    for p in ("50", "95", "99"):
        ours = fig["latency_ms"][f"p{p}"]
        theirs = merged.get_value_at_percentile(float(p)) / 1000
        assert abs(ours - theirs) <= max(0.002, ours * 0.002), (p, ours, theirs)  # same buckets
