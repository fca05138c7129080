"""report.html: structure from hand-made and real results directories, robustness, and a real headless Chromium."""

from __future__ import annotations

import csv
import struct
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from holoload.shell.html_report import REPORT_NAME, render_report, write_report
from holoload.shell.svg_charts import LEFT, MAX_POINTS, RIGHT, WIDE
from tests.support.browser import decode_png, find_browser, run_browser
from tests.support.html import parse, section, with_class

T0 = 1_795_000_000.0
OPS = ("ingest.insert", "ingest.read")
TS_HEADER = "ts,elapsed_s,phase,window,workload,op,endpoint,ok,errors,dropped,retries,rows,ops_per_s,p50_ms,p95_ms,p99_ms,max_ms,service_p99_ms,lag_p99_ms"
GATES = [
    {
        "name": "p99",
        "expression": "p99(insert) <= 50ms",
        "passed": True,
        "observed": 0.02,
        "threshold": 0.05,
        "observed_text": "20ms",
        "threshold_text": "50ms",
        "reason": "p99(insert) = 20ms <= 50ms",
    },
    {
        "name": "lost",
        "expression": "lost == 0",
        "passed": False,
        "observed": 2.0,
        "threshold": 0.0,
        "observed_text": "2",
        "threshold_text": "0",
        "reason": "lost = 2 == 0",
    },
    {
        "name": "<b>weird</b>",
        "expression": "errors < 1%",
        "passed": True,
        "observed": 0.0,
        "threshold": 0.01,
        "observed_text": "0%",
        "threshold_text": "1%",
        "reason": "error_rate = 0% < 1%",
    },
]


def _op_figures(errors: dict[str, int]) -> dict[str, Any]:
    latency = {"min": 0.1, "mean": 2.0, "max": 40.0, "p50": 1.0, "p90": 4.0, "p95": 6.0, "p99": 20.0, "p99.9": 35.0}
    return {
        "ok": 1000,
        "rows": 1000,
        "errors": errors,
        "error_count": sum(errors.values()),
        "dropped": 0,
        "retries": 0,
        "ops_per_s": 50.0,
        "latency_ms": latency,
        "service_p99_ms": 20.0,
    }


def make_results(root: Path, windows: int = 30) -> Path:
    """A sustained-load chaos run: two ops, a kill fault (12 s -> 17 s), a split at 14 s, a check."""
    root.mkdir(parents=True, exist_ok=True)
    summary = {
        "verdict": "FAIL",
        "exit_code": 1,
        "aborted_by": None,
        "run": {
            "run_id": "handmade-1",
            "started_at": "2026-11-18T10:00:00+00:00",
            "status": "FAIL",
            "duration_s": 30.0,
            "problems": ["metrics: node2 unreachable for 5s"],
        },
        "scenario": {"name": "handmade <chaos>"},
        "phases": {
            "baseline": {"measured": True, "seconds": 10.0, "ops": {op: _op_figures({}) for op in OPS}},
            "chaos": {
                "measured": True,
                "seconds": 20.0,
                "ops": {
                    OPS[0]: _op_figures({"connection": 7, "serialization": 2}),
                    OPS[1]: _op_figures({"connection": 1}),
                },
            },
        },
        "gates": GATES,
        "chaos": [
            {
                "name": "kill_node2",
                "action": "kill",
                "trigger": "at 2s",
                "fired": 1,
                "ok": 1,
                "failed": 0,
                "healed": 1,
                "heal_failed": 0,
                "skipped": 0,
                "recovery_s": [1.5],
            },
            {
                "name": "split_churn",
                "action": "split",
                "trigger": "at 4s",
                "fired": 1,
                "ok": 1,
                "failed": 0,
                "healed": 0,
                "heal_failed": 0,
                "skipped": 0,
                "recovery_s": [],
            },
        ],
        "check": {
            "ledger": {"acknowledged": 5000, "failed": 10, "in_doubt": 4, "recovered": 2},
            "complete": True,
            "counts": {
                "lost": 2.0,
                "duplicated": 0.0,
                "partial": 0.0,
                "unexpected": 0.0,
                "recovered": 2.0,
                "in_doubt_absent": 2.0,
                "untracked": 0.0,
            },
            "ok": False,
        },
    }
    (root / "summary.json").write_bytes(orjson.dumps(summary))
    with (root / "timeseries.csv").open("w") as fh:
        fh.write(TS_HEADER + "\n")
        for w in range(1, windows + 1):
            phase = "baseline" if w <= 10 else "chaos"
            for i, op in enumerate(OPS):
                workload, name = op.split(".")
                p50, slow = 1.0 + i, 15 <= w <= 17
                for endpoint in ("node1", "*"):
                    fh.write(
                        f"{T0 + w:.3f},{w:.3f},{phase},{w},{workload},{name},{endpoint},50,{3 if slow else 0},0,0,"
                        f"50,50.0,{p50:.3f},{p50 * 4:.3f},{80.0 if slow else p50 * 10:.3f},90.0,,\n"
                    )
    events = [
        {
            "kind": "run_started",
            "ts": T0,
            "run_id": "handmade-1",
            "scenario": "handmade",
            "target": "local",
            "nodes": [],
        },
        {"kind": "phase", "ts": T0 + 0.1, "phase": "baseline", "detail": ""},
        {"kind": "phase", "ts": T0 + 10.0, "phase": "chaos", "detail": ""},
        {
            "kind": "chaos_started",
            "ts": T0 + 12.0,
            "name": "kill_node2",
            "action": "kill",
            "trigger": "at 2s",
            "step": "fire",
            "node": "node2",
        },
        {
            "kind": "chaos_finished",
            "ts": T0 + 12.1,
            "name": "kill_node2",
            "action": "kill",
            "ok": True,
            "elapsed_s": 0.1,
            "detail": "killed",
            "step": "fire",
            "node": "node2",
        },
        {"kind": "health", "ts": T0 + 12.2, "node": "node2", "ready": False, "state": "down", "detail": "ready=False"},
        {
            "kind": "chaos_started",
            "ts": T0 + 14.0,
            "name": "split_churn",
            "action": "split",
            "trigger": "at 4s",
            "step": "fire",
            "node": "",
        },
        {
            "kind": "chaos_finished",
            "ts": T0 + 14.5,
            "name": "split_churn",
            "action": "split",
            "ok": True,
            "elapsed_s": 0.5,
            "detail": "split at 100 <ok>",
            "step": "fire",
            "node": "",
        },
        {
            "kind": "chaos_started",
            "ts": T0 + 16.0,
            "name": "kill_node2",
            "action": "kill",
            "trigger": "2s after firing",
            "step": "heal",
            "node": "node2",
        },
        {
            "kind": "chaos_finished",
            "ts": T0 + 17.0,
            "name": "kill_node2",
            "action": "kill",
            "ok": True,
            "elapsed_s": 1.0,
            "detail": "started",
            "step": "heal",
            "node": "node2",
        },
        {"kind": "health", "ts": T0 + 17.5, "node": "node2", "ready": True, "state": "up", "detail": "ready=True"},
        {"kind": "health", "ts": T0 + 1.0, "node": "node1", "ready": True, "state": "up", "detail": "ready=True"},
        {
            "kind": "check",
            "ts": T0 + 31.0,
            "table": "facts",
            "node": "node1",
            "ok": False,
            "report": {},
            "ledger": {},
            "queries": 12,
            "elapsed_s": 0.2,
            "error": None,
        },
    ]
    (root / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    with (root / "metrics.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["ts", "node", "name", "labels", "value"])
        for s in range(0, windows + 1, 2):
            for node in ("node1", "node2"):
                out.writerow([f"{T0 + s:.3f}", node, "txn_commits", "", 1000 * s])
                out.writerow([f"{T0 + s:.3f}", node, "write_conflicts_total", "kind=ww", 2 * s])
                out.writerow([f"{T0 + s:.3f}", node, "apply_queue_depth", "", s % 5])
                out.writerow([f"{T0 + s:.3f}", node, "sessions", "", (s * 7) % 3])
                out.writerow([f"{T0 + s:.3f}", node, "build", "", "v1.2"])
    topo = [
        {"ts": T0 + 1.0, "kind": "initial", "summary": {"shards": 3}},
        {"ts": T0 + 14.6, "kind": "shard_added", "summary": {"shards": 4}},
    ]
    (root / "topology.jsonl").write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in topo))
    return root


def notes(doc: ET.Element) -> list[str]:
    return ["".join(li.itertext()) for li in doc.iter("li") if li.get("class") == "note"]


def test_gate_table_has_one_row_per_gate_and_marks_the_failing_one(tmp_path: Path) -> None:
    """Gate rows equal summary gates; the failing gate row is class fail and says FAIL; text is escaped."""
    doc = parse(render_report(make_results(tmp_path / "run")))
    gates = section(doc, "gates")
    rows = gates.findall(".//table[@id='gate-table']/tbody/tr")
    assert len(rows) == len(GATES)
    assert [r.get("class") for r in rows] == ["pass", "fail", "pass"]
    cells = ["".join(td.itertext()) for td in rows[1]]
    assert cells[:4] == ["lost", "FAIL", "2", "0"] and cells[4] == "lost == 0"
    assert "".join(rows[2][0].itertext()) == "<b>weird</b>"  # shown as text, not markup
    banner = doc.find(".//header[@id='verdict']")
    assert banner is not None and "FAIL" in (banner.get("class") or "")
    assert "handmade <chaos>" in "".join(banner.itertext())


def test_sections_come_in_reading_order(tmp_path: Path) -> None:
    """Verdict, gates, latency, throughput, errors, metrics, topology, check, chaos."""
    doc = parse(render_report(make_results(tmp_path / "run")))
    ids = [s.get("id") for s in doc.iter("section")]
    assert ids == ["gates", "latency", "throughput", "errors", "metrics", "topology", "check", "chaos"]


def test_one_latency_chart_per_op_with_percentile_lines(tmp_path: Path) -> None:
    """Each op gets one chart (data-op) with p50, p95 and p99 lines, axes labels and phase marks."""
    doc = parse(render_report(make_results(tmp_path / "run")))
    charts = with_class(section(doc, "latency"), "svg", "latency")
    assert [c.get("data-op") for c in charts] == list(OPS)
    for chart in charts:
        assert [p.get("data-label") for p in chart.iter("path")] == ["p50", "p95", "p99"]
        texts = ["".join(t.itertext()) for t in chart.iter("text")]
        assert "seconds since run start" in texts and any(t.startswith("ms") for t in texts)
        assert {"baseline", "chaos"} <= set(texts)  # phase marks
    assert len(with_class(section(doc, "throughput"), "svg", "throughput")) == 1
    assert len(with_class(section(doc, "throughput"), "svg", "errors")) == 1  # errors happened


def test_fault_and_split_spans_are_drawn_where_they_happened(tmp_path: Path) -> None:
    """The kill shades fire -> heal (12 s -> 17 s); the split (14 s) sits inside it; legend names both."""
    doc = parse(render_report(make_results(tmp_path / "run")))
    chart = with_class(section(doc, "latency"), "svg", "latency")[0]
    faults = with_class(chart, "rect", "fault-span")
    splits = with_class(chart, "rect", "split-span")
    assert [f.get("data-name") for f in faults] == ["kill_node2"]
    assert [s.get("data-name") for s in splits] == ["split_churn"]
    fault_x, fault_w = float(faults[0].get("x", 0)), float(faults[0].get("width", 0))
    split_x = float(splits[0].get("x", 0))
    assert fault_x < split_x < fault_x + fault_w
    # 5 s of the op's axis: its phases, 0.1 s (the baseline phase event) to 30 s (its last window)
    assert fault_w == pytest.approx(5 / 29.9 * (WIDE - LEFT - RIGHT), rel=0.01)
    legend = ["".join(t.itertext()) for t in chart.iter("text") if t.get("class") == "legend"]
    assert {"p50", "p95", "p99", "kill_node2", "split_churn"} <= set(legend)


def test_tables_for_errors_check_chaos_and_metrics(tmp_path: Path) -> None:
    """Errors by class, checker counts (lost marked), chaos per action, and the chosen counter rates."""
    doc = parse(render_report(make_results(tmp_path / "run")))
    errors = section(doc, "errors").findall(".//tbody/tr")
    assert sorted(tuple("".join(td.itertext()) for td in r)[1:] for r in errors) == [
        ("ingest.insert", "connection", "7"),
        ("ingest.insert", "serialization", "2"),
        ("ingest.read", "connection", "1"),
    ]
    counts = {r[0].text: r.get("class") for r in section(doc, "check").findall(".//table[@id='check-counts']/tbody/tr")}
    assert counts["lost"] == "fail" and counts["recovered"] == "pass"
    chaos = section(doc, "chaos").findall(".//table[@id='chaos-table']/tbody/tr")
    assert [r[0].text for r in chaos] == ["kill_node2", "split_churn"]
    steps = section(doc, "chaos").findall(".//table[@id='chaos-steps']/tbody/tr")
    outcomes = {r[4].text for r in steps}
    assert steps and outcomes <= {"ok", "FAILED"} and "ok" in outcomes  # words, never True/False
    metrics = [c.get("data-metric") for c in with_class(section(doc, "metrics"), "svg", "metric")]
    assert metrics == ["write_conflicts_total{kind=ww}", "txn_commits"]  # named first; gauges and strings left out
    topo = section(doc, "topology")
    assert len(with_class(topo, "svg", "shards")) == 1
    lanes = with_class(topo, "rect", "health-span")
    assert {r.get("data-name") for r in lanes} == {"node1", "node2"} and with_class(topo, "rect", "not-ready")


def test_only_a_summary_renders_and_names_every_missing_file(tmp_path: Path) -> None:
    """A run killed early: summary.json alone still gives a page that says what is missing."""
    root = make_results(tmp_path / "run")
    for name in ("timeseries.csv", "events.jsonl", "metrics.csv", "topology.jsonl"):
        (root / name).unlink()
    doc = parse(render_report(root))
    said = " ".join(notes(doc))
    for name in ("timeseries.csv", "events.jsonl", "metrics.csv", "topology.jsonl"):
        assert f"{name} is missing" in said
    assert len(section(doc, "gates").findall(".//tbody/tr")) == len(GATES)
    assert not with_class(doc, "svg", "chart")


def test_missing_or_garbage_summary_still_renders(tmp_path: Path) -> None:
    """No summary.json (or not JSON): verdict UNKNOWN and a note, never an exception."""
    root = make_results(tmp_path / "run")
    (root / "summary.json").write_text("{not json")
    doc = parse(render_report(root))
    assert doc.find(".//header[@id='verdict']").get("class") == "verdict UNKNOWN"  # type: ignore[union-attr]
    assert any("summary.json" in n for n in notes(doc))
    assert len(with_class(section(doc, "latency"), "svg", "latency")) == 2
    (root / "summary.json").unlink()
    assert "UNKNOWN" in render_report(root)
    assert "UNKNOWN" in render_report(tmp_path / "does-not-exist")


def test_truncated_timeseries_and_events_still_render(tmp_path: Path) -> None:
    """Half a line at the end of timeseries.csv, events.jsonl and metrics.csv: skipped and noted."""
    root = make_results(tmp_path / "run")
    for name in ("timeseries.csv", "events.jsonl", "metrics.csv"):
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: len(data) - 25])
    with (root / "events.jsonl").open("ab") as fh:
        fh.write(b"\n[1, 2]\n\x00\x00garbage\n")
    doc = parse(render_report(root))
    said = " ".join(notes(doc))
    assert "timeseries.csv: 1 damaged line" in said and "events.jsonl: 3 damaged line" in said
    assert "metrics.csv: 1 damaged line" in said
    assert len(with_class(section(doc, "latency"), "svg", "latency")) == 2
    assert with_class(doc, "rect", "fault-span")


def test_a_fault_never_healed_is_shaded_to_the_end(tmp_path: Path) -> None:
    """The log stops after the kill fired: its span runs to the end of the axis, marked open."""
    root = make_results(tmp_path / "run")
    lines = (root / "events.jsonl").read_bytes().splitlines(keepends=True)
    (root / "events.jsonl").write_bytes(b"".join(lines[:6]))
    doc = parse(render_report(root))
    chart = with_class(section(doc, "latency"), "svg", "latency")[0]
    [span] = with_class(chart, "rect", "fault-span")
    assert "open" in (span.get("class") or "")
    assert float(span.get("x", 0)) + float(span.get("width", 0)) == pytest.approx(WIDE - RIGHT, abs=1)


def test_long_runs_are_downsampled(tmp_path: Path) -> None:
    """10,000 windows: every line keeps at most about MAX_POINTS points and the file stays small."""
    root = make_results(tmp_path / "run", windows=10_000)
    html = render_report(root)
    doc = parse(html)
    for path in with_class(section(doc, "latency"), "path", "line"):
        assert (path.get("d") or "").count("L") <= MAX_POINTS
    assert len(html) < 1_000_000


def test_canary_run_shows_batches_and_batch_times(tmp_path: Path) -> None:
    """A canary: batch table from batch_stats.csv (node and error class from events), a bar chart of batch times."""
    root = tmp_path / "canary"
    root.mkdir()
    batches = [
        {
            "kind": "batch_finished",
            "ts": T0 + i,
            "index": i,
            "total": 4,
            "op": f"batch_{label}",
            "label": label,
            "rows": 10,
            "node": f"node{i}",
            "elapsed_s": 0.1 * i,
            "row_delta": 10 if i != 3 else None,
            "status": "ok" if i != 3 else "error",
            "error": "boom" if i == 3 else None,
            "error_class": "connection" if i == 3 else None,
        }
        for i, label in ((1, "20k"), (2, "20k"), (3, "50k"), (4, "50k"))
    ]
    summary = {
        "verdict": "FAIL",
        "run": {"run_id": "c"},
        "scenario": {"name": "sales"},
        "gates": [
            *GATES[:1],
            {"name": "slo_20k", "expression": "p95(batch_20k) <= 8s", "passed": True, "threshold": 8.0},
            {"name": "slo_50k", "expression": "max(batch_50k) <= 500ms", "passed": True, "threshold": 0.5},
        ],
        "counts": {"baseline": 0, "final": 30, "expected_final": 40, "failed_batches": 1, "failed_batch_indexes": [3]},
        "ops": {
            "batch_20k": {
                "runs": 2,
                "rows": 20,
                "ok": 2,
                "errors": 0,
                "delta_mismatches": 0,
                "latency_ms": {"p50": 100.0, "p95": 200.0, "max": 200.0},
            }
        },
        "batches": batches,
    }
    (root / "summary.json").write_bytes(orjson.dumps(summary))
    (root / "events.jsonl").write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in batches))
    (root / "batch_stats.csv").write_text(
        "index,label,rows,elapsed_ms,row_delta,status\n1,20k,10,100.0,10,ok\n2,20k,10,200.0,10,ok\n3,50k,10,300.0,,error\n4,50k,10,400.0,10,ok\n"
    )
    doc = parse(render_report(root))
    rows = section(doc, "batches").findall(".//table[@id='batch-table']/tbody/tr")
    assert [r.get("class") for r in rows] == ["pass", "pass", "fail", "pass"]
    assert ["".join(td.itertext()) for td in rows[2]][5:8] == ["error", "node3", "connection"]
    [chart] = with_class(section(doc, "latency"), "svg", "batches")
    groups = [g for g in chart.iter("g") if g.get("class") == "bar-group"]
    assert [g.get("data-label") for g in groups] == ["batch_20k", "batch_50k"]
    bars = [[(r.get("data-label"), r.get("data-value"), r.get("fill")) for r in g.iter("rect")] for g in groups]
    assert [[b[:2] for b in group] for group in bars] == [
        [("#1", "100"), ("#2", "200")],
        [("#3", "300"), ("#4", "400")],
    ]
    assert bars[1][0][2] == "#cf222e" and bars[1][1][2] != "#cf222e"  # the failed batch is red
    notes_20k = ["".join(t.itertext()) for t in groups[0].iter("text") if "limit-note" in (t.get("class") or "")]
    assert notes_20k == ["\u2191 SLO p95(batch_20k) <= 8s off scale (40x its tallest bar)"]  # 8 s against 200 ms
    [line] = [x for x in groups[1].iter("line") if x.get("class") == "limit-line"]
    top_bar = float(next(r for r in groups[1].iter("rect") if r.get("data-label") == "#4").get("y", 0))
    assert float(line.get("y1", 0)) < top_bar  # 500 ms drawn above the 400 ms bar
    assert ("batches", "batch_50k", "connection", "1") in [
        tuple("".join(td.itertext()) for td in r) for r in section(doc, "errors").findall(".//tbody/tr")
    ]
    assert not any("timeseries.csv" in n for n in notes(doc))  # a canary never writes one


def test_write_report_writes_the_file_and_returns_errors_instead_of_raising(tmp_path: Path) -> None:
    """report.html lands in the results directory; an unwritable target gives an error string."""
    root = make_results(tmp_path / "run")
    assert write_report(root) == []
    assert (root / REPORT_NAME).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(root.glob("*.tmp"))
    (root / REPORT_NAME).unlink()
    (root / REPORT_NAME).mkdir()  # os.replace onto a directory fails
    errors = write_report(root)
    assert len(errors) == 1 and errors[0].startswith(REPORT_NAME)
    assert write_report(tmp_path / "gone" / "run")[0].startswith(REPORT_NAME)


# ---------------------------------------------------------------- headless Chromium


def test_decode_png_reads_a_png_written_with_every_filter() -> None:
    """The test's own PNG decoder round-trips rows filtered with None, Sub, Up, Average and Paeth."""
    width, bpp = 5, 3
    rows = [bytes((x * 40 + y * 13 + c * 7) % 256 for x in range(width) for c in range(bpp)) for y in range(5)]

    def filtered(kind: int, row: bytes, prior: bytes) -> bytes:
        out = bytearray()
        for i, v in enumerate(row):
            left, up, corner = (row[i - bpp] if i >= bpp else 0), prior[i], (prior[i - bpp] if i >= bpp else 0)
            p = left + up - corner
            paeth = (
                left
                if abs(p - left) <= abs(p - up) and abs(p - left) <= abs(p - corner)
                else up
                if abs(p - up) <= abs(p - corner)
                else corner
            )
            out.append((v - (0, left, up, (left + up) >> 1, paeth)[kind]) & 255)
        return bytes([kind]) + bytes(out)

    raw = b"".join(filtered(k, r, rows[k - 1] if k else bytes(width * bpp)) for k, r in enumerate(rows))
    ihdr = struct.pack(">IIBBBBB", width, 5, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))  # noqa: E731
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    assert decode_png(png) == (width, 5, bpp, rows)


def test_headless_chromium_renders_the_report(tmp_path: Path) -> None:
    """Chromium draws a non-blank page (charts, colors) and its DOM holds the sections, charts and spans."""
    browser = find_browser()
    root = make_results(tmp_path / "run")
    assert write_report(root) == []
    url = (root / REPORT_NAME).as_uri()
    shot = tmp_path / "shot.png"
    started = time.monotonic()
    run_browser(browser, [f"--screenshot={shot}", "--window-size=1280,2000", url], tmp_path)
    dom = run_browser(browser, ["--dump-dom", url], tmp_path).decode()
    elapsed = time.monotonic() - started
    width, height, bpp, rows = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), bpp * 2)]
    inked = sum(p != b"\xff\xff\xff" for p in pixels) / len(pixels)
    colors = set(pixels)
    assert inked > 0.05, f"only {inked:.1%} of the page is not white"
    assert len(colors) > 50, f"only {len(colors)} colors"
    assert b"\xcf\x22\x2e" in colors  # the FAIL banner's red
    for needle in (
        '<section id="gates">',
        'class="chart latency"',
        'data-op="ingest.insert"',
        'class="fault-span"',
        'class="split-span"',
        '<tr class="fail">',
        'id="chaos"',
    ):
        assert needle in dom, needle
    assert elapsed < 120


def test_outages_are_bands_and_lost_ranges_name_who_acknowledged_them(tmp_path: Path) -> None:
    """An episode's outage (from_at -> to_at on the wall clock) is a band; each lost range is a failing row."""
    root = make_results(tmp_path / "run")
    summary = orjson.loads((root / "summary.json").read_bytes())
    summary["chaos"][0]["outages"] = [
        {
            "fault": "kill_node2",
            "action": "kill",
            "episode": 1,
            "start_s": 12.0,
            "end_s": 17.0,
            "outage_s": 6.0,
            "from_at": T0 + 11.5,
            "to_at": T0 + 17.5,
            "ops": {OPS[0]: {"outage_s": 6.0, "from_s": 11.5, "to_s": 17.5}},
        },
    ]
    summary["check"]["lost_ranges"] = [
        {
            "table": "facts",
            "checked_through": "node1",
            "ids": [100, 102],
            "count": 2,
            "acknowledged_by": "127.0.0.1:5",
            "node": "node2",
            "acked_s": [12.0, 12.5],
            "acked_at": [T0 + 12.0, T0 + 12.5],
        },
    ]
    (root / "summary.json").write_bytes(orjson.dumps(summary))
    doc = parse(render_report(root))
    chart = with_class(section(doc, "latency"), "svg", "latency")[0]
    (band,) = with_class(chart, "rect", "outage-span")
    assert band.get("data-name") == "outage kill_node2"
    assert float(band.get("width", 0)) == pytest.approx(6 / 29.9 * (WIDE - LEFT - RIGHT), rel=0.01)
    (row,) = section(doc, "check").findall(".//table[@id='lost-ranges']/tbody/tr")
    assert [("".join(td.itertext())) for td in row][:3] == ["[100, 102]", "2", "node2"] and row.get("class") == "fail"
    (episode,) = section(doc, "chaos").findall(".//table[@id='outages']/tbody/tr")
    assert "".join(episode[4].itertext()) in ("6", "6.0", "6.000")


def test_phase_ops_table_has_a_dropped_column_red_where_drops_failed_a_gate(tmp_path: Path) -> None:
    """Each (phase, op) row shows its drops; those a failed `dropped(...)` gate counted are bold red (drop-fail)."""
    root = make_results(tmp_path / "run")
    summary = orjson.loads((root / "summary.json").read_bytes())
    summary["phases"]["chaos"]["ops"][OPS[0]]["dropped"] = 12
    summary["phases"]["chaos"]["ops"][OPS[1]]["dropped"] = 3
    gate = {"name": "no_drops", "expression": "dropped(insert) == 0", "passed": False, "state": "fail"}
    summary["gates"] = [*GATES, gate]
    (root / "summary.json").write_bytes(orjson.dumps(summary))
    table = section(parse(render_report(root)), "latency").find(".//table[@id='phase-ops']")
    assert table is not None
    heads = ["".join(th.itertext()) for th in table.iter("th")]
    col = heads.index("dropped")
    rows = {tuple("".join(td.itertext()) for td in tr[:2]): tr[col] for tr in table.findall("./tbody/tr")}
    assert "".join(rows[("chaos", OPS[0])].itertext()) == "12" and "drop-fail" in rows[("chaos", OPS[0])].get(
        "class", ""
    )
    assert "".join(rows[("chaos", OPS[1])].itertext()) == "3" and "drop-fail" not in rows[("chaos", OPS[1])].get(
        "class", ""
    )
    assert "".join(rows[("baseline", OPS[0])].itertext()) == "0"
