"""Inline SVG charts: ticks, downsampling, axes, spans, escaping, well-formed output."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from holoload.shell.svg_charts import (
    LEFT,
    MAX_POINTS,
    RIGHT,
    RIGHT_AXIS,
    WIDTH,
    Bar,
    BarGroup,
    Marker,
    Series,
    Span,
    bar_chart,
    downsample,
    fmt,
    lane_chart,
    line_chart,
    nice_ticks,
)

NS = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    """Steps of 1, 2 or 5 times a power of ten, at most target + 1 ticks, inside the range."""
    assert nice_ticks(0, 30) == [0, 5, 10, 15, 20, 25, 30]
    assert nice_ticks(0, 31) == [0, 10, 20, 30]
    assert nice_ticks(0, 1, 5) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3, 3) == [3]
    assert nice_ticks(0, 12_345, 4) == [0, 5000, 10_000]


def test_fmt_keeps_ticks_short() -> None:
    """Big numbers get k/M, small ones three significant figures."""
    assert [fmt(v) for v in (0, 0.25, 12, 150, 12_000, 2_500_000)] == ["0", "0.25", "12", "150", "12k", "2.5M"]


def test_downsample_keeps_spikes_dips_and_gaps() -> None:
    """10,000 points become at most MAX_POINTS; the single spike, dip and gap survive."""
    points: list[tuple[float, float | None]] = [(float(i), 1.0) for i in range(10_000)]
    points[4321] = (4321.0, 500.0)
    points[777] = (777.0, 0.01)
    points[9000] = (9000.0, None)
    out = downsample(points)
    assert len(out) <= MAX_POINTS + 2
    ys = [y for _, y in out]
    assert 500.0 in ys and 0.01 in ys and None in ys
    assert [x for x, _ in out] == sorted(x for x, _ in out)
    assert downsample(points[:10]) == points[:10]


def test_line_chart_is_well_formed_with_axes_legend_spans_and_marks() -> None:
    """One path per series, a span per interval clipped to the axis, escaped labels."""
    series = [
        Series("p50 <fast>", [(0, 1.0), (5, 2.0), (10, None), (15, 3.0)], "#111"),
        Series("p99", [(0, 10.0), (15, 30.0)], "#222", dashed=True),
    ]
    spans = [Span(4, 8, "kill&heal", "#f00", "fault-span"), Span(12, 40, "split", "#00f", "split-span")]
    text = line_chart(
        series,
        title="op <a>",
        x_range=(0, 20),
        y_label="ms",
        spans=spans,
        markers=[Marker(10, "chaos")],
        attrs={"class": "latency", "data-op": 'w."op"'},
        log_y=False,
    )
    svg = ET.fromstring(text)
    assert svg.get("class") == "chart latency" and svg.get("data-op") == 'w."op"'
    paths = svg.findall(f"{NS}path")
    assert [p.get("data-label") for p in paths] == ["p50 <fast>", "p99"]
    assert paths[0].get("d", "").count("M") == 2  # the None breaks the line
    rects = {r.get("data-name"): r for r in svg.findall(f"{NS}rect") if r.get("data-name")}
    assert rects["kill&heal"].get("class") == "fault-span"
    split = rects["split"]
    assert float(split.get("x", 0)) + float(split.get("width", 0)) == WIDTH - RIGHT  # clipped at 20 s
    texts = ["".join(t.itertext()) for t in svg.iter(f"{NS}text")]
    assert {"op <a>", "chaos", "seconds since run start", "ms", "kill&heal", "split"} <= set(texts)
    assert "30" in texts and "20" in texts  # y ticks up to the max, x ticks to the end


def test_log_axis_is_chosen_when_values_span_decades() -> None:
    """0.3 ms next to 300 ms: a log axis labelled so; a flat series stays linear."""
    wide = line_chart([Series("p99", [(0, 0.3), (1, 300.0)], "#000")], title="t", x_range=(0, 1), y_label="ms")
    flat = line_chart([Series("p99", [(0, 3.0), (1, 4.0)], "#000")], title="t", x_range=(0, 1), y_label="ms")
    assert "ms (log scale)" in wide and "log scale" not in flat
    ticks = ["".join(t.itertext()) for t in ET.fromstring(wide).iter(f"{NS}text") if t.get("text-anchor") == "end"]
    assert ticks[0] == "0.1" and ticks[-1] == "1000"


def test_empty_series_still_draw_axes() -> None:
    """No values at all: axes and title, no path, no exception."""
    svg = ET.fromstring(line_chart([Series("x", [], "#000")], title="empty", x_range=(0, 0), y_label="ms"))
    assert not svg.findall(f"{NS}path")
    assert any("".join(t.itertext()) == "empty" for t in svg.iter(f"{NS}text"))


def test_lane_chart_draws_one_lane_per_node() -> None:
    """Readiness lanes: a rect per state span, named by node, starting at the axis origin."""
    lanes = [
        ("node1", [Span(0, 10, "ready", "#0f0", "health-span ready")]),
        ("node2", [Span(0, 4, "ready", "#0f0", "health-span ready"), Span(4, 10, "not ready", "#f00", "x")]),
    ]
    svg = ET.fromstring(lane_chart(lanes, title="Node readiness", x_range=(0, 10), legend=[("ready", "#0f0")]))
    rects = [r for r in svg.findall(f"{NS}rect") if r.get("data-name")]
    assert [r.get("data-name") for r in rects] == ["node1", "node2", "node2"]
    assert float(rects[0].get("x", 0)) == LEFT


def test_spans_and_marks_outside_the_axis_are_left_out() -> None:
    """A chart over 10-20 s shows neither a fault at 2-5 s nor a phase mark at 3 s (no sliver at the edge)."""
    spans = [Span(2, 5, "early", "#f00", "fault-span"), Span(8, 12, "across", "#00f", "fault-span")]
    text = line_chart(
        [Series("p99", [(10, 1.0), (20, 2.0)], "#000")],
        title="t",
        x_range=(10, 20),
        y_label="ms",
        spans=spans,
        markers=[Marker(3, "early phase"), Marker(15, "late phase")],
    )
    svg = ET.fromstring(text)
    assert [r.get("data-name") for r in svg.findall(f"{NS}rect") if r.get("data-name")] == ["across"]
    texts = ["".join(t.itertext()) for t in svg.iter(f"{NS}text")]
    assert "late phase" in texts and "early phase" not in texts and "early" not in texts


def test_right_axis_series_get_their_own_scale_ticks_and_label() -> None:
    """ops/s on the left up to 10k, writers on the right up to 4: each series is scaled to its own axis."""
    series = [
        Series("ops", [(0, 10_000.0), (10, 10_000.0)], "#000"),
        Series("writers", [(0, 4.0), (10, 4.0)], "#555", step=True, right=True),
    ]
    text = line_chart(series, title="t", x_range=(0, 10), y_label="ops/s", right_label="writers", log_y=False)
    svg = ET.fromstring(text)
    paths = {p.get("data-label"): p.get("d", "") for p in svg.findall(f"{NS}path")}
    y_ops, y_writers = (float(paths[k].split(",")[1].split("H")[0].split("L")[0]) for k in ("ops", "writers"))
    assert y_ops == y_writers  # both at the top of their own axis
    right = [t for t in svg.iter(f"{NS}text") if "right-tick" in (t.get("class") or "")]
    assert ["".join(t.itertext()) for t in right][-1] == "4"
    assert float(right[0].get("x", 0)) == WIDTH - RIGHT_AXIS + 6
    assert "writers" in ["".join(t.itertext()) for t in svg.iter(f"{NS}text")]


def test_bar_chart_draws_limits_to_scale_and_names_those_far_off_it() -> None:
    """A 500 ms SLO over 400 ms bars is a dashed line; an 8 s SLO over 200 ms bars is a note (40x), not a squashed axis."""
    groups = [
        BarGroup("fast", [Bar("#1", 100.0, "#111"), Bar("#2", 200.0, "#111")], 8000.0, "SLO 8s"),
        BarGroup("slow", [Bar("#3", 400.0, "#f00", title="batch <3>")], 500.0, "SLO 500ms"),
        BarGroup("none", []),
    ]
    svg = ET.fromstring(bar_chart(groups, title="Batches", y_label="ms", legend=[("failed", "#f00", "block")]))
    by_group = {g.get("data-label"): g for g in svg.iter(f"{NS}g")}
    assert list(by_group) == ["fast", "slow", "none"]
    bars = {r.get("data-label"): r for r in svg.iter(f"{NS}rect") if "bar" in (r.get("class") or "").split()}
    heights = {k: float(r.get("height", 0)) for k, r in bars.items()}
    assert heights["#2"] == 2 * heights["#1"] and heights["#3"] == 4 * heights["#1"]  # linear from 0
    notes = ["".join(t.itertext()) for t in by_group["fast"].iter(f"{NS}text") if "off-scale" in (t.get("class") or "")]
    assert notes == ["\u2191 SLO 8s off scale (40x its tallest bar)"]
    [limit] = [x for x in by_group["slow"].iter(f"{NS}line") if x.get("class") == "limit-line"]
    top_of_400 = float(bars["#3"].get("y", 0))
    assert float(limit.get("y1", 0)) == top_of_400 - heights["#3"] / 4  # 500 ms: a quarter bar above 400 ms
    assert "batch <3>" in ["".join(t.itertext()) for t in svg.iter(f"{NS}title")]
