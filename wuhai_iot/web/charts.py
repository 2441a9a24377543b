"""Server-rendered charts: SVG bars and lines, and horizontal bars in HTML, nothing fetched, no JavaScript.

Each function returns ``Markup`` to place in a template. SVG charts scale to their container's width
(``viewBox``); horizontal bars are HTML so that long Chinese labels stay readable at any width, a phone's
included. Colours come from CSS classes in ``static/app.css`` so they follow the page's palette.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 24, 34


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 × 10^n at or above ``value`` (the top of the axis)."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _intervals(top: float) -> int:
    """How many grid intervals: whole-number steps where the top allows it (counts are never 0.25)."""
    for count in (4, 5, 2):
        if (top / count).is_integer():
            return count
    return 1 if top.is_integer() else 4


def _number(value: float) -> str:
    return f"{value:g}" if value < 10000 else f"{value / 10000:g}万"


def _frame(title: str, body: list[str], y_top: float, unit: str, height: int) -> Markup:
    plot_height = height - TOP - BOTTOM
    grid: list[str] = []
    intervals = _intervals(float(y_top))
    for i in range(intervals + 1):
        value = y_top * i / intervals
        y = TOP + plot_height - plot_height * i / intervals
        grid.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        grid.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    label = escape(title)
    svg = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{label}</title>'
        + "".join(grid)
        + (f'<text class="axis unit" x="{LEFT - 6}" y="{TOP - 9}" text-anchor="end">{escape(unit)}</text>' if unit else "")
        + "".join(body)
        + "</svg>"
    )
    return Markup(svg)


def _x_labels(labels: Sequence[str], centres: Sequence[float], height: int) -> list[str]:
    """Category labels under the axis, thinned so they never overlap."""
    every = max(1, math.ceil(len(labels) / 12))
    last = len(labels) - 1
    # Counted from the last label, which is always shown (the newest day, today, is the one people look for).
    shown = [(last - i, text, x) for i, (text, x) in enumerate(zip(labels, centres, strict=True))
             if (last - i) % every == 0]  # fmt: skip
    # Every other one is marked "odd": a phone, where the chart is drawn at half size, shows only the others.
    return [
        f'<text class="axis x{" odd" if (back // every) % 2 else ""}" x="{x:.1f}" y="{height - BOTTOM + 16}"'
        f' text-anchor="middle">{escape(text)}</text>'
        for back, text, x in shown
    ]


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    threshold: float | None = None,
    threshold_label: str = "",
    height: int = HEIGHT,
) -> Markup:
    """Vertical bars, one per (label, value). Bars above ``threshold`` are drawn as alerts, and the
    threshold itself as a dashed line (e.g. the 30-minute rescue limit)."""
    if not bars:
        return Markup('<p class="empty">暂无数据</p>')
    top = _nice_ceiling(max([value for _, value in bars] + [threshold or 0]))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = height - TOP - BOTTOM
    slot = plot_width / len(bars)
    bar_width = max(2.0, min(48.0, slot * 0.7))
    body: list[str] = []
    centres: list[float] = []
    for i, (label, value) in enumerate(bars):
        centre = LEFT + slot * (i + 0.5)
        centres.append(centre)
        bar_height = plot_height * value / top
        y = TOP + plot_height - bar_height
        css = "bar alert" if threshold is not None and value > threshold else "bar"
        body.append(
            f'<rect class="{css}" x="{centre - bar_width / 2:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
            f'height="{bar_height:.1f}"><title>{escape(label)}: {_number(value)}{escape(unit)}</title></rect>'
        )
        if len(bars) <= 16 and value:
            body.append(f'<text class="value" x="{centre:.1f}" y="{y - 3:.1f}" text-anchor="middle">{_number(value)}</text>')
    if threshold is not None:
        y = TOP + plot_height - plot_height * threshold / top
        body.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        if threshold_label:
            body.append(f'<text class="threshold-label" x="{WIDTH - RIGHT}" y="{y - 4:.1f}" text-anchor="end">'
                        f"{escape(threshold_label)}</text>")  # fmt: skip
    body += _x_labels([label for label, _ in bars], centres, height)
    return _frame(title, body, top, unit, height)


def line_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    title: str,
    unit: str = "",
    y_max: float | None = None,
    height: int = HEIGHT,
) -> Markup:
    """A line through (label, value) points; a None value breaks the line (no data that day)."""
    if not any(value is not None for _, value in points):
        return Markup('<p class="empty">暂无数据</p>')
    top = y_max if y_max is not None else _nice_ceiling(max(v for _, v in points if v is not None))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = height - TOP - BOTTOM
    step = plot_width / max(1, len(points) - 1) if len(points) > 1 else 0
    centres = [LEFT + step * i if len(points) > 1 else LEFT + plot_width / 2 for i in range(len(points))]
    segments: list[list[str]] = [[]]
    dots: list[str] = []
    for (label, value), x in zip(points, centres, strict=True):
        if value is None:
            segments.append([])
            continue
        y = TOP + plot_height - plot_height * min(value, top) / top
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                    f"<title>{escape(label)}: {_number(round(value, 1))}{escape(unit)}</title></circle>")  # fmt: skip
    body = [f'<polyline class="line" points="{" ".join(s)}"/>' for s in segments if s]
    body += dots
    body += _x_labels([label for label, _ in points], centres, height)
    return _frame(title, body, top, unit, height)


def hbar_chart(bars: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> Markup:
    """Horizontal bars, one row per (label, value), longest first as given: for categories with long
    names (deny reasons, alarm kinds), each label written out beside its bar rather than under it."""
    if not bars:
        return Markup('<p class="empty">暂无数据</p>')
    top = max(value for _, value in bars) or 1
    rows = "".join(
        f'<li><span class="label">{escape(label)}</span><span class="track"><span class="fill" '
        f'style="width:{100 * value / top:.1f}%"></span></span><span class="value">{_number(value)}{escape(unit)}</span></li>'
        for label, value in bars
    )
    return Markup(f'<ul class="hbars" role="img" aria-label="{escape(title)}">{rows}</ul>')


def track_map(
    points: Sequence[tuple[float, float]],
    stations: Sequence[tuple[float, float, str]],
    title: str,
    *,
    width: int = WIDTH,
    height: int = 360,
) -> Markup:
    """A vehicle's track as a line on plain axes (no map tiles), with the licensed filling stations near it
    as labelled squares; ``points`` are (latitude, longitude) in time order, ``stations`` (latitude,
    longitude, name). East is right and north up, with the longitude scaled by cos(latitude)."""
    label = escape(title)
    if not points:
        return Markup(
            f'<svg class="chart track" viewBox="0 0 {width} 60" role="img" aria-label="{label}"><title>{label}</title>'
            f'<text class="axis" x="{width / 2}" y="34" text-anchor="middle">今日无轨迹</text></svg>'
        )
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    margin = 0.005
    south, north = min(lats) - margin, max(lats) + margin
    west, east = min(lons) - margin, max(lons) + margin
    near = [s for s in stations if south - 0.02 <= s[0] <= north + 0.02 and west - 0.02 <= s[1] <= east + 0.02]
    for lat, lon, _ in near:
        south, north, west, east = min(south, lat - margin), max(north, lat + margin), min(west, lon - margin), max(east, lon + margin)
    scale_x = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * scale_x, north - south)
    size = min(width - 2 * 16, height - 2 * 16)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        x = 16 + (lon - west) * scale_x / span * size + (width - 32 - (east - west) * scale_x / span * size) / 2
        y = 16 + (north - lat) / span * size
        return x, y

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, lon) for lat, lon in points))
    body = [f'<polyline class="track-line" fill="none" points="{line}"/>']
    for lat, lon, name in near:
        x, y = xy(lat, lon)
        body.append(f'<rect class="station-mark" x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10"/>'
                    f'<text class="axis" x="{x + 8:.1f}" y="{y + 4:.1f}">{escape(name)}</text>')  # fmt: skip
    (sx, sy), (ex, ey) = xy(*points[0]), xy(*points[-1])
    body.append(f'<circle class="track-start" cx="{sx:.1f}" cy="{sy:.1f}" r="4"/>')
    body.append(f'<circle class="track-end" cx="{ex:.1f}" cy="{ey:.1f}" r="6"/>')
    kilometres = span * 111.2
    body.append(f'<text class="axis" x="{width - 8}" y="{height - 6}" text-anchor="end">图幅约 {kilometres:.1f} km</text>')
    return Markup(
        f'<svg class="chart track" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{label}</title>' + "".join(body) + "</svg>"
    )
