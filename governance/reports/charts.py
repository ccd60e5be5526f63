"""Charts as vector graphics: a chart spec (governance.reports.chart_data) becomes SVG shapes that one template writes
out, for the browser and the PDF alike. Drawn here rather than exported by kaleido: kaleido starts Chromium per export
(seconds each, docs/performance.md), and its SVGs carry random ids, which would make two renders of one snapshot
differ. Pure: no Django; the template escapes every text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WIDTH = 640
FONT = "DejaVu Sans"
INK, MUTED, GRID = "#1f2430", "#5d6675", "#e3e6ee"
SERIES = ["#3b4fd8", "#d9480f", "#167a46", "#9a6200", "#7048e8", "#0b7285", "#c2255c", "#5d6675"]
STATUS_COLORS = {
    "met": "#167a46",
    "partially_met": "#c98a00",
    "not_met": "#b42323",
    "attestation_required": "#7048e8",
    "not_applicable": "#adb5bd",
}
STATUS_NAMES = {
    "met": "met",
    "partially_met": "partially met",
    "not_met": "not met",
    "attestation_required": "attestation required",
    "not_applicable": "not applicable",
}


@dataclass
class Svg:
    """A drawing: its size and its shapes, each {"tag", "attrs", "text"}."""

    title: str
    width: int
    height: int
    shapes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, tag: str, text: str = "", **attrs: Any) -> None:
        self.shapes.append(
            {"tag": tag, "attrs": {k.replace("_", "-"): _fmt(v) for k, v in attrs.items()}, "text": text}
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 10,
        anchor: str = "start",
        fill: str = INK,
        weight: str = "normal",
    ) -> None:
        self.add(
            "text", text, x=x, y=y, font_family=FONT, font_size=size, text_anchor=anchor, fill=fill, font_weight=weight
        )


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return value


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value: float) -> str:
    """Axis labels: 0.002, 0.5, 12, 1.5k, 2M."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:g}k"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    return [10.0**p for p in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


class Scale:
    """Maps data values to pixels, linear or log10."""

    def __init__(self, low: float, high: float, start: float, end: float, *, log: bool = False) -> None:
        self.log = log
        self.low, self.high = (math.log10(low), math.log10(high)) if log else (low, high)
        if self.high == self.low:
            self.high = self.low + 1
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)


def stacked_bars(title: str, data: dict[str, Any]) -> Svg:
    """Horizontal bars, one per row, split by status (the coverage chart)."""
    rows, order = data["rows"], data["order"]
    left, right, top, bar_h, gap = 90, WIDTH - 20, 12, 22, 10
    height = top + len(rows) * (bar_h + gap) + 40
    svg = Svg(title, WIDTH, height)
    total = max((sum(r["counts"].values()) for r in rows), default=1) or 1
    scale = Scale(0, total, left, right)
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        svg.text(left - 8, y + bar_h * 0.68, row["label"], anchor="end", weight="bold")
        x: float = left
        for status in order:
            n = row["counts"].get(status, 0)
            if not n:
                continue
            w = scale(n) - scale(0)
            svg.add("rect", x=x, y=y, width=w, height=bar_h, fill=STATUS_COLORS[status])
            if w >= 16:
                svg.text(x + w / 2, y + bar_h * 0.68, str(n), anchor="middle", fill="#ffffff", weight="bold")
            x += w
    _legend(svg, [(STATUS_NAMES[s], STATUS_COLORS[s]) for s in order], height - 14)
    return svg


def _legend(svg: Svg, entries: Sequence[tuple[str, str]], y: float, x: float = 20) -> None:
    for label, color in entries:
        svg.add("rect", x=x, y=y - 8, width=10, height=10, fill=color)
        svg.text(x + 14, y + 1, label, size=9, fill=MUTED)
        x += 22 + len(label) * 5.6
        if x > WIDTH - 60:
            x, y = 20, y + 14


def log_bars(title: str, data: dict[str, Any]) -> Svg:
    """Horizontal bars on a log axis (parity errors, drift against its threshold), a dotted tick at each bar's
    tolerance; a bar's "text" (else its value) is written beside it."""
    bars = data["bars"]
    left, right, top, bar_h, gap = 230, WIDTH - 20, 10, 14, 6
    plot_bottom = top + len(bars) * (bar_h + gap)
    height = plot_bottom + 34
    svg = Svg(title, WIDTH, height)
    values = [b["value"] for b in bars if b["value"] > 0] + [b["threshold"] for b in bars if b.get("threshold")]
    low = min(values, default=1e-9) / 3
    high = max(values, default=1.0) * 3
    low, high = max(low, 1e-12), max(high, low * 10)
    scale = Scale(low, high, left, right, log=True)
    for tick in log_ticks(low, high):
        if low <= tick <= high:
            x = scale(tick)
            svg.add("line", x1=x, y1=top, x2=x, y2=plot_bottom, stroke=GRID, stroke_width=1)
            svg.text(x, plot_bottom + 12, f"1e{round(math.log10(tick))}", size=8, anchor="middle", fill=MUTED)
    for i, bar in enumerate(bars):
        y = top + i * (bar_h + gap)
        svg.text(left - 6, y + bar_h * 0.78, _short(bar["label"], 40), size=8.5, anchor="end")
        value = max(bar["value"], low)
        color = "#167a46" if bar["ok"] else "#b42323"
        svg.add("rect", x=left, y=y, width=max(scale(value) - left, 1), height=bar_h, fill=color)
        if bar.get("threshold"):
            x = scale(min(max(bar["threshold"], low), high))
            svg.add(
                "line", x1=x, y1=y - 2, x2=x, y2=y + bar_h + 2, stroke=INK, stroke_width=1.2, stroke_dasharray="2,2"
            )
        text = bar.get("text") or f"{bar['value']:.2g}"
        svg.text(min(scale(value) + 4, right - 40), y + bar_h * 0.78, text, size=8, fill=MUTED)
    svg.text((left + right) / 2, height - 6, data.get("unit", ""), size=9, anchor="middle", fill=MUTED)
    return svg


def lines(title: str, data: dict[str, Any]) -> Svg:
    """One line per series (benchmarks against batch size)."""
    series = data["series"]
    left, right, top = 60, WIDTH - 20, 26
    plot_bottom = 214
    height = plot_bottom + 40 + 14 * ((len(series) + 1) // 2)
    svg = Svg(title, WIDTH, height)
    xs = [p[0] for s in series for p in s["points"]]
    ys = [p[1] for s in series for p in s["points"]]
    log_x = data.get("log_x") and min(xs) > 0
    log_y = data.get("log_y") and min(ys) > 0 and max(ys) / min(ys) > 10
    if log_y:
        y_low, y_high = min(ys) / 1.5, max(ys) * 1.5
        y_ticks = [t for t in log_ticks(y_low, y_high) if y_low <= t <= y_high] or [min(ys), max(ys)]
    else:
        y_ticks = nice_ticks(0, max(ys) * 1.05)
        y_low, y_high = y_ticks[0], y_ticks[-1]
    x_low, x_high = (min(xs) / 1.3, max(xs) * 1.3) if log_x else (min(xs), max(xs))
    sx = Scale(x_low, x_high, left, right, log=bool(log_x))
    sy = Scale(y_low, y_high, plot_bottom, top, log=bool(log_y))
    for tick in y_ticks:
        y = sy(tick)
        svg.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID, stroke_width=1)
        svg.text(left - 6, y + 3, number(tick), size=8, anchor="end", fill=MUTED)
    for tick in sorted(set(xs)):
        x = sx(tick)
        svg.add("line", x1=x, y1=plot_bottom, x2=x, y2=plot_bottom + 4, stroke=MUTED, stroke_width=1)
        svg.text(x, plot_bottom + 14, number(tick), size=8, anchor="middle", fill=MUTED)
    svg.add("line", x1=left, y1=plot_bottom, x2=right, y2=plot_bottom, stroke=MUTED, stroke_width=1)
    svg.text((left + right) / 2, plot_bottom + 28, data.get("x_label", ""), size=9, anchor="middle", fill=MUTED)
    svg.text(left - 40, 10, data.get("y_label", ""), size=9, fill=MUTED)
    for i, s in enumerate(series):
        color = SERIES[i % len(SERIES)]
        points = " ".join(f"{_fmt(sx(x))},{_fmt(sy(y))}" for x, y in sorted(s["points"]))
        svg.add("polyline", points=points, fill="none", stroke=color, stroke_width=1.8)
        for x, y in s["points"]:
            svg.add("circle", cx=sx(x), cy=sy(y), r=2.6, fill=color)
    legend_y = plot_bottom + 44
    for i, s in enumerate(series):
        x = 20 + (i % 2) * (WIDTH // 2)
        y = legend_y + (i // 2) * 14
        svg.add("rect", x=x, y=y - 8, width=10, height=10, fill=SERIES[i % len(SERIES)])
        svg.text(x + 14, y + 1, _short(s["name"], 52), size=8.5, fill=MUTED)
    return svg


def _when(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def timeline(title: str, data: dict[str, Any]) -> Svg:
    """Lanes of labelled segments over time (which version held an alias when)."""
    lanes = data["lanes"]
    left, right, top, lane_h, gap = 150, WIDTH - 20, 10, 18, 8
    plot_bottom = top + len(lanes) * (lane_h + gap)
    height = plot_bottom + 26
    svg = Svg(title, WIDTH, height)
    times = [_when(t) for lane in lanes for seg in lane["segments"] for t in (seg["from"], seg["to"])]
    scale = Scale(min(times), max(times), left, right)
    for i, lane in enumerate(lanes):
        y = top + i * (lane_h + gap)
        svg.text(left - 6, y + lane_h * 0.7, _short(lane["label"], 26), size=8.5, anchor="end")
        for j, seg in enumerate(lane["segments"]):
            x1, x2 = scale(_when(seg["from"])), scale(_when(seg["to"]))
            w = max(x2 - x1, 2)
            svg.add(
                "rect",
                x=x1,
                y=y,
                width=w,
                height=lane_h,
                fill=SERIES[j % len(SERIES)],
                stroke="#ffffff",
                stroke_width=1,
            )
            if w > 7 * len(seg["label"]):
                svg.text(x1 + w / 2, y + lane_h * 0.7, seg["label"], size=8.5, anchor="middle", fill="#ffffff")
    for stamp, anchor in ((min(times), "start"), (max(times), "end")):
        svg.text(
            scale(stamp),
            height - 8,
            datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d"),
            size=8,
            anchor=anchor,
            fill=MUTED,
        )
    return svg


def steps_over_time(title: str, data: dict[str, Any]) -> Svg:
    """A value held from one moment to the next (a rollout's traffic share), one stepped line per series, over dates.
    Each series: {"name", "points": [[iso time, value], ...], "until": iso time the last value held to}."""
    series = data["series"]
    left, right, top, plot_bottom = 60, WIDTH - 20, 26, 184
    height = plot_bottom + 40 + 14 * ((len(series) + 1) // 2)
    svg = Svg(title, WIDTH, height)
    times = [_when(p[0]) for s in series for p in s["points"]] + [_when(s["until"]) for s in series if s.get("until")]
    sx = Scale(min(times), max(times), left, right)
    top_value = data.get("y_max") or max((p[1] for s in series for p in s["points"]), default=1) or 1
    y_ticks = nice_ticks(0, top_value)
    sy = Scale(0, y_ticks[-1], plot_bottom, top)
    for tick in y_ticks:
        y = sy(tick)
        svg.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID, stroke_width=1)
        svg.text(left - 6, y + 3, number(tick) + data.get("y_suffix", ""), size=8, anchor="end", fill=MUTED)
    svg.add("line", x1=left, y1=plot_bottom, x2=right, y2=plot_bottom, stroke=MUTED, stroke_width=1)
    for stamp, anchor in ((min(times), "start"), (max(times), "end")):
        label = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")
        svg.text(sx(stamp), plot_bottom + 14, label, size=8, anchor=anchor, fill=MUTED)
    svg.text(left - 40, 10, data.get("y_label", ""), size=9, fill=MUTED)
    for i, s in enumerate(series):
        color = SERIES[i % len(SERIES)]
        corners: list[str] = []
        points = sorted((_when(t), v) for t, v in s["points"])
        for j, (t, v) in enumerate(points):
            if j:
                corners.append(f"{_fmt(sx(t))},{_fmt(sy(points[j - 1][1]))}")
            corners.append(f"{_fmt(sx(t))},{_fmt(sy(v))}")
        if s.get("until") and points:
            corners.append(f"{_fmt(sx(_when(s['until'])))},{_fmt(sy(points[-1][1]))}")
        svg.add("polyline", points=" ".join(corners), fill="none", stroke=color, stroke_width=1.8)
        for t, v in points:
            svg.add("circle", cx=sx(t), cy=sy(v), r=2.6, fill=color)
    legend_y = plot_bottom + 34
    for i, s in enumerate(series):
        x = 20 + (i % 2) * (WIDTH // 2)
        y = legend_y + (i // 2) * 14
        svg.add("rect", x=x, y=y - 8, width=10, height=10, fill=SERIES[i % len(SERIES)])
        svg.text(x + 14, y + 1, _short(s["name"], 52), size=8.5, fill=MUTED)
    return svg


def columns(title: str, data: dict[str, Any]) -> Svg:
    """Vertical bars (audit events per day)."""
    cols = data["columns"]
    left, right, top, plot_bottom = 50, WIDTH - 20, 10, 150
    height = plot_bottom + 30
    svg = Svg(title, WIDTH, height)
    ticks = nice_ticks(0, max(c["value"] for c in cols) * 1.05)
    sy = Scale(0, ticks[-1], plot_bottom, top)
    for tick in ticks:
        y = sy(tick)
        svg.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID, stroke_width=1)
        svg.text(left - 6, y + 3, number(tick), size=8, anchor="end", fill=MUTED)
    slot = (right - left) / len(cols)
    every = max(1, math.ceil(len(cols) / 8))
    for i, col in enumerate(cols):
        x = left + i * slot
        y = sy(col["value"])
        svg.add("rect", x=x + slot * 0.1, y=y, width=max(slot * 0.8, 1), height=plot_bottom - y, fill=SERIES[0])
        if i % every == 0:
            svg.text(x + slot / 2, plot_bottom + 14, col["label"], size=8, anchor="middle", fill=MUTED)
    return svg


DRAW = {
    "stacked_bars": stacked_bars,
    "log_bars": log_bars,
    "lines": lines,
    "timeline": timeline,
    "columns": columns,
    "steps_over_time": steps_over_time,
}


def draw(chart: dict[str, Any]) -> Svg:
    """The SVG for a chart spec; a spec of an unknown type (from a newer Forge) draws as an empty frame."""
    drawer = DRAW.get(chart.get("type", ""))
    if drawer is None:
        svg = Svg(chart.get("title", ""), WIDTH, 40)
        svg.text(20, 24, f"(a chart of type {chart.get('type')!r} this Forge cannot draw)", fill=MUTED)
        return svg
    return drawer(chart.get("title", ""), chart["data"])
