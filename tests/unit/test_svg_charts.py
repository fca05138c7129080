"""Inline SVG charts: ticks, downsampling, axes, spans, escaping, well-formed output."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from holoload.shell.svg_charts import (
    LEFT,
    MAX_POINTS,
    RIGHT,
    WIDTH,
    Marker,
    Series,
    Span,
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
