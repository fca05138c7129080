"""Inline SVG charts for report.html: time series lines, shaded spans, state lanes and grouped bars, no scripts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape

Point = tuple[float, float | None]  # (x, y); y None breaks the line (a window without a value)

WIDTH = 1100
WIDE = 1800  # report.html's full-width charts (scaled down to the page by CSS)
LEFT, RIGHT, BOTTOM = 70, 20, 42
RIGHT_AXIS = 64  # the right margin when a chart has a second (right) y axis
PLOT_HEIGHT = 190
MAX_POINTS = 2000
_CHAR_PX = 7.0  # average width of a 12px sans-serif character, for legend layout
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
FAULT_PALETTE = ("#e6550d", "#d62728", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f")
SPLIT_COLOR = "#7b3294"


@dataclass(frozen=True, slots=True)
class Series:
    """One line: `step` draws a staircase (counts), `dots` marks each point (sparse data).

    `right` puts it on the chart's second y axis (another unit, such as a target concurrency
    beside ops/s); that axis is linear from 0.
    """

    label: str
    points: Sequence[Point]
    color: str
    css: str = ""
    dashed: bool = False
    step: bool = False
    dots: bool = False
    right: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded interval on the time axis (a chaos fault, a split, a node state)."""

    start: float
    end: float
    label: str
    color: str
    css: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Marker:
    """A labelled vertical line (a phase starting)."""

    x: float
    label: str
    css: str = "phase-mark"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a bar chart (a canary batch): its value, the label under it, its tooltip."""

    label: str
    value: float
    color: str
    css: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class BarGroup:
    """Bars side by side under one label (an op's batches), with an optional limit line across them (an SLO)."""

    label: str
    bars: Sequence[Bar]
    limit: float | None = None
    limit_label: str = ""


#: A limit more than this many times the tallest bar is named, not drawn to scale (the bars would be slivers).
OFF_SCALE = 4.0


def downsample(points: Sequence[Point], max_points: int = MAX_POINTS) -> list[Point]:
    """At most about `max_points` points: each bucket keeps its lowest and highest point, in order.

    Spikes and dips survive (a p99 burst stays visible); a bucket holding a gap keeps the gap.
    """
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, max_points // 2)
    size = len(points) / buckets
    out: list[Point] = []
    for b in range(buckets):
        chunk = points[int(b * size) : int((b + 1) * size)]
        valued = [p for p in chunk if p[1] is not None]
        if len(valued) < len(chunk):
            out.append((chunk[0][0], None))
        if valued:
            low = min(valued, key=lambda p: p[1] or 0.0)
            high = max(valued, key=lambda p: p[1] or 0.0)
            out.extend(sorted({low, high}))
    return out


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt(value: float) -> str:
    """A tick or table number for people: 0.25, 12, 1.5k, 2.3M."""
    mag = abs(value)
    if mag >= 1e6:
        return f"{value / 1e6:.3g}M"
    if mag >= 1e4:
        return f"{value / 1e3:.3g}k"
    if mag >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


class _Scale:
    """Maps data to pixels: linear on x; linear or log10 on y."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        log_y: bool,
        top: float,
        box: tuple[int, int],
        right: int = RIGHT,
    ) -> None:
        self.width, self.height = box
        self.right = right
        self.x0, self.x1 = x_range[0], max(x_range[1], x_range[0] + 1e-9)
        self.log_y = log_y
        lo, hi = (math.log10(y_range[0]), math.log10(y_range[1])) if log_y else y_range
        self.y0, self.y1 = lo, max(hi, lo + 1e-9)
        self.top = top

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (self.width - LEFT - self.right)

    def y(self, value: float) -> float:
        v = math.log10(max(value, 10**self.y0)) if self.log_y else value
        return self.top + self.height - (v - self.y0) / (self.y1 - self.y0) * self.height


def _open(title: str, attrs: Mapping[str, str], width: int, height: int) -> list[str]:
    """The <svg> element, its tooltip title and the visible title; `attrs["class"]` adds to "chart"."""
    css = escape(f"chart {attrs.get('class', '')}".strip())
    extra = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items() if k != "class")
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}"{extra} viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>',
    ]


def _legend(items: Sequence[tuple[str, str, str]], width: int) -> tuple[list[str], int]:
    """Legend swatches (label, color, kind: line/dash/area/block) in rows under the title; returns the plot top."""
    out, x, y = [], float(LEFT), 40
    for label, color, kind in items:
        size = 26 + len(label) * _CHAR_PX
        if x + size > width - RIGHT and x > LEFT:
            x, y = float(LEFT), y + 16
        if kind in ("area", "block"):
            alpha = ' fill-opacity="0.3"' if kind == "area" else ""
            out.append(f'<rect x="{x:.0f}" y="{y - 9}" width="14" height="10" fill="{color}"{alpha}/>')
        else:
            dash = ' stroke-dasharray="4 3"' if kind == "dash" else ""
            out.append(f'<line x1="{x:.0f}" y1="{y - 4}" x2="{x + 14:.0f}" y2="{y - 4}" stroke="{color}"{dash}/>')
        out.append(f'<text x="{x + 18:.0f}" y="{y}" class="legend">{escape(label)}</text>')
        x += size + 12
    return out, y + 12


def _x_axis(scale: _Scale, bottom: float, x_label: str) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{bottom}" x2="{scale.width - scale.right}" y2="{bottom}" class="axis"/>']
    for value in nice_ticks(scale.x0, scale.x1, max(3, scale.width // 110)):
        px = scale.x(value)
        out.append(f'<line x1="{px:.1f}" y1="{bottom}" x2="{px:.1f}" y2="{bottom + 5}" class="axis"/>')
        out.append(f'<text x="{px:.1f}" y="{bottom + 18}" class="tick" text-anchor="middle">{fmt(value)}</text>')
    out.append(
        f'<text x="{(LEFT + scale.width - scale.right) / 2:.0f}" y="{bottom + BOTTOM - 6}" class="axis-label" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    return out


def _span_rect(span: Span, scale: _Scale, y: float, height: float, opacity: str, name: str) -> str:
    x_a, x_b = scale.x(max(span.start, scale.x0)), scale.x(min(span.end, scale.x1))
    return (
        f'<rect class="{escape(span.css)}" data-name="{escape(name)}" x="{x_a:.1f}" y="{y:.1f}" '
        f'width="{max(2.0, x_b - x_a):.1f}" height="{height}" fill="{span.color}"{opacity}>'
        f"<title>{escape(span.title or span.label)}</title></rect>"
    )


def _path(points: Sequence[Point], scale: _Scale, step: bool) -> str:
    parts: list[str] = []
    pen_up = True
    for x, y in points:
        if y is None:
            pen_up = True
            continue
        px, py = scale.x(x), scale.y(y)
        if pen_up:
            parts.append(f"M{px:.1f},{py:.1f}")
        elif step:
            parts.append(f"H{px:.1f}V{py:.1f}")
        else:
            parts.append(f"L{px:.1f},{py:.1f}")
        pen_up = False
    return "".join(parts)


def _y_range(series: Sequence[Series], log_y: bool | None) -> tuple[tuple[float, float], bool]:
    values = [y for s in series for _, y in s.points if y is not None and math.isfinite(y)]
    if not values:
        return (0.0, 1.0), False
    positive = [v for v in values if v > 0]
    hi = max(values)
    if log_y is None:
        log_y = bool(positive) and hi / min(positive) >= 50
    if log_y and positive:
        lo_exp, hi_exp = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
        return (10.0**lo_exp, 10.0 ** max(hi_exp, lo_exp + 1)), True
    lo = min(0.0, min(values))
    ticks = nice_ticks(lo, hi if hi > lo else lo + 1.0, 5)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return (lo, ticks[-1] if ticks[-1] >= hi else ticks[-1] + step), False


def _y_ticks(lo: float, hi: float, log_y: bool) -> list[float]:
    if not log_y:
        return nice_ticks(lo, hi, 5)
    decades = range(round(math.log10(lo)), round(math.log10(hi)) + 1)
    steps = (1, 2, 5) if len(decades) <= 3 else (1,)
    return [m * 10.0**d for d in decades for m in steps if m * 10.0**d <= hi * 1.0001]


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_range: tuple[float, float],
    y_label: str,
    x_label: str = "seconds since run start",
    spans: Iterable[Span] = (),
    markers: Iterable[Marker] = (),
    attrs: Mapping[str, str] | None = None,
    log_y: bool | None = None,
    width: int = WIDTH,
    plot_height: int = PLOT_HEIGHT,
    right_label: str = "",
) -> str:
    """An SVG line chart with axes, ticks, legend, shaded spans and phase markers.

    Args:
        series: the lines; points beyond MAX_POINTS are downsampled, y None leaves a gap; those
            with `right` set are drawn against a second, linear y axis on the right.
        x_range: the time axis (the run's, so the charts of one report line up, or a phase's);
            spans and markers outside it are left out, spans across its ends are clipped.
        log_y: force a log (True) or linear (False) left y axis; None picks log when values span 50x.
        attrs: attributes of the <svg> element (`class` is added to "chart", data-op=...).
        right_label: the right axis's unit (shown only when some series is on the right).

    Returns:
        The <svg> element as text.
    """
    lo_x, hi_x = x_range
    spans = [s for s in spans if s.end >= lo_x and s.start <= hi_x]
    markers = [m for m in markers if lo_x <= m.x <= hi_x]
    series = [replace(s, points=downsample(s.points)) for s in series]
    left = [s for s in series if not s.right]
    second = [s for s in series if s.right]
    items = [(s.label, s.color, "dash" if s.dashed else "line") for s in series]
    items += [(label, color, "area") for label, color in {s.label: s.color for s in spans}.items()]
    legend, top = _legend(items, width)
    (y_lo, y_hi), log = _y_range(left, log_y)
    margin = RIGHT_AXIS if second else RIGHT
    scale = _Scale(x_range, (y_lo, y_hi), log, top, (width, plot_height), margin)
    bottom = top + plot_height
    out = _open(title, attrs or {}, width, bottom + BOTTOM) + legend
    out += [_span_rect(span, scale, top, plot_height, ' fill-opacity="0.22"', span.label) for span in spans]
    for value in _y_ticks(y_lo, y_hi, log):
        py = scale.y(value)
        out.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{width - margin}" y2="{py:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" class="tick" text-anchor="end">{fmt(value)}</text>')
    label_end = 0.0
    for mark in sorted(markers, key=lambda m: m.x):
        px = scale.x(mark.x)
        out.append(f'<line class="{escape(mark.css)}" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}"/>')
        if px > label_end:  # labels of marks closer than their text would overlap: keep the first
            out.append(f'<text x="{px + 3:.1f}" y="{top + 11}" class="mark-label">{escape(mark.label)}</text>')
            label_end = px + 8 + len(mark.label) * 6.0
    out += _x_axis(scale, bottom, x_label)
    out.append(f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" class="axis"/>')
    out += _lines(left, scale)
    if second:
        (r_lo, r_hi), _ = _y_range([replace(s, points=[*s.points, (0.0, 0.0)]) for s in second], False)
        r_scale = _Scale(x_range, (r_lo, r_hi), False, top, (width, plot_height), margin)
        edge = width - margin
        out.append(f'<line x1="{edge}" y1="{top}" x2="{edge}" y2="{bottom}" class="axis right-axis"/>')
        for value in _y_ticks(r_lo, r_hi, False):
            py = r_scale.y(value)
            out.append(f'<text x="{edge + 6}" y="{py + 4:.1f}" class="tick right-tick">{fmt(value)}</text>')
        out += _lines(second, r_scale)
        mid = top + plot_height / 2
        out.append(
            f'<text x="{width - 12}" y="{mid:.0f}" class="axis-label right-label" text-anchor="middle" '
            f'transform="rotate(90 {width - 12} {mid:.0f})">{escape(right_label)}</text>'
        )
    mid = top + plot_height / 2
    out.append(
        f'<text x="14" y="{mid:.0f}" class="axis-label" text-anchor="middle" transform="rotate(-90 14 {mid:.0f})">'
        f"{escape(f'{y_label} (log scale)' if log else y_label)}</text></svg>"
    )
    return "\n".join(out)


def _lines(series: Sequence[Series], scale: _Scale) -> list[str]:
    out = []
    for s in series:
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        path = _path(s.points, scale, s.step)
        if path:
            out.append(
                f'<path class="line {escape(s.css)}" data-label="{escape(s.label)}" d="{path}" fill="none" '
                f'stroke="{s.color}" stroke-width="1.6"{dash}/>'
            )
        if s.dots:
            out += [
                f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="3" fill="{s.color}"/>'
                for x, y in s.points
                if y is not None
            ]
    return out


def lane_chart(
    lanes: Sequence[tuple[str, Sequence[Span]]],
    *,
    title: str,
    x_range: tuple[float, float],
    legend: Sequence[tuple[str, str]] = (),
    attrs: Mapping[str, str] | None = None,
    width: int = WIDTH,
) -> str:
    """One horizontal lane per name (a node), its spans colored by state (ready, not ready...)."""
    items, top = _legend([(label, color, "block") for label, color in legend], width)
    lane_px = 22
    scale = _Scale(x_range, (0.0, 1.0), False, top, (width, lane_px * len(lanes)))
    bottom = top + lane_px * len(lanes)
    out = _open(title, attrs or {}, width, bottom + BOTTOM) + items
    for i, (name, spans) in enumerate(lanes):
        y = top + i * lane_px
        out.append(f'<text x="{LEFT - 6}" y="{y + 15}" class="tick" text-anchor="end">{escape(name)}</text>')
        out += [_span_rect(span, scale, y + 3, lane_px - 6, "", name) for span in spans]
    return "\n".join(out + _x_axis(scale, bottom, "seconds since run start") + ["</svg>"])


def bar_chart(
    groups: Sequence[BarGroup],
    *,
    title: str,
    y_label: str,
    legend: Sequence[tuple[str, str, str]] = (),
    attrs: Mapping[str, str] | None = None,
    width: int = WIDTH,
    plot_height: int = PLOT_HEIGHT,
) -> str:
    """Grouped bars on a linear axis from 0, each group's limit as a dashed line across its bars.

    A limit above OFF_SCALE times the tallest bar is not drawn to scale: the group says
    "<limit label> off scale (Nx its tallest bar)" at the top of the plot instead (N: the limit
    over the group's own tallest bar).

    Args:
        groups: the groups, left to right; a group without bars keeps its label and an empty slot.
        legend: (label, color, kind) swatches; kind is block, line or dash.
        attrs: attributes of the <svg> element (`class` is added to "chart").

    Returns:
        The <svg> element as text.
    """
    tallest = max((b.value for g in groups for b in g.bars if math.isfinite(b.value)), default=0.0)
    drawn = [g.limit for g in groups if g.limit is not None and g.limit <= OFF_SCALE * tallest]
    hi = max([tallest, *drawn]) or 1.0
    ticks = nice_ticks(0.0, hi, 5)
    y_hi = ticks[-1] if ticks[-1] >= hi else ticks[-1] + (ticks[1] - ticks[0] if len(ticks) > 1 else hi)
    items, top = _legend(legend, width)
    top += 14  # room for off-scale notes above the bars
    scale = _Scale((0.0, 1.0), (0.0, y_hi), False, top, (width, plot_height))
    bottom = top + plot_height
    out = _open(title, attrs or {}, width, bottom + BOTTOM + 18) + items
    for value in _y_ticks(0.0, y_hi, False):
        py = scale.y(value)
        out.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{width - RIGHT}" y2="{py:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" class="tick" text-anchor="end">{fmt(value)}</text>')
    slots = sum(max(1, len(g.bars)) + 1 for g in groups) or 1  # a bar's width of gap after each group
    slot_px = (width - LEFT - RIGHT) / slots
    bar_px = min(56.0, slot_px * 0.8)
    x = LEFT + slot_px / 2
    for group in groups:
        first = x
        out.append(f'<g class="bar-group" data-label="{escape(group.label)}">')
        for bar in group.bars:
            y = scale.y(max(0.0, min(bar.value, y_hi)))
            px = x + (slot_px - bar_px) / 2
            out.append(
                f'<rect class="bar {escape(bar.css)}" data-label="{escape(bar.label)}" data-value="{bar.value:g}" '
                f'x="{px:.1f}" y="{y:.1f}" width="{bar_px:.1f}" height="{max(1.0, bottom - y):.1f}" '
                f'fill="{bar.color}"><title>{escape(bar.title or bar.label)}</title></rect>'
            )
            out.append(
                f'<text x="{x + slot_px / 2:.1f}" y="{bottom + 14}" class="tick" text-anchor="middle">'
                f"{escape(bar.label)}</text>"
            )
            x += slot_px
        x += 0 if group.bars else slot_px
        center, end = (first + x) / 2, x
        out.append(
            f'<text x="{center:.1f}" y="{bottom + 32}" class="group-label" text-anchor="middle">'
            f"{escape(group.label)}</text>"
        )
        out += _limit(group, scale, first, end, top, y_hi)
        out.append("</g>")
        x += slot_px
    out.append(f'<line x1="{LEFT}" y1="{bottom}" x2="{width - RIGHT}" y2="{bottom}" class="axis"/>')
    out.append(f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" class="axis"/>')
    mid = top + plot_height / 2
    out.append(
        f'<text x="14" y="{mid:.0f}" class="axis-label" text-anchor="middle" transform="rotate(-90 14 {mid:.0f})">'
        f"{escape(y_label)}</text></svg>"
    )
    return "\n".join(out)


def _limit(group: BarGroup, scale: _Scale, start: float, end: float, top: float, y_hi: float) -> list[str]:
    """A group's limit: a dashed line at its value, or a note when it is off scale."""
    if group.limit is None:
        return []
    label = escape(group.limit_label or f"limit {fmt(group.limit)}")
    if group.limit > y_hi:
        tallest = max((b.value for b in group.bars if math.isfinite(b.value)), default=0.0)
        times = f"{group.limit / tallest:,.0f}x its tallest bar" if tallest > 0 else "no bars"
        return [
            f'<text x="{start:.1f}" y="{top - 4:.1f}" class="limit-note off-scale">'
            f"&#8593; {label} off scale ({times})</text>"
        ]
    py = scale.y(group.limit)
    return [
        f'<line class="limit-line" x1="{start:.1f}" y1="{py:.1f}" x2="{end:.1f}" y2="{py:.1f}" '
        f'stroke="#cf222e" stroke-dasharray="6 4"/>',
        f'<text x="{start:.1f}" y="{py - 4:.1f}" class="limit-note">{label}</text>',
    ]
