"""Tiny inline-SVG charts (line and bar) for the HTML report: no script, no external file.

Coordinates are computed column-wise with polars expressions and joined into one path or a
run of <rect> marks; every text that reaches the markup is HTML-escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import polars as pl

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


@dataclass(frozen=True)
class Frame:
    """The chart's geometry: SVG size and the plot area inside the margins."""

    width: int = 540
    height: int = 220
    left: int = 56
    right: int = 16
    top: int = 16
    bottom: int = 30

    @property
    def plot_w(self) -> float:
        """Return the plot area's width."""
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        """Return the plot area's height."""
        return self.height - self.top - self.bottom


def nice_ceiling(value: float) -> float:
    """Return the smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is >= value."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(power * step for step in (1, 2, 2.5, 5, 10) if power * step >= value * 0.9999)


def _label(value: float, percent: bool) -> str:
    """Return an axis label: a percentage, or a number with thousands separators."""
    if percent:
        return f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def _scales(
    frame: pl.DataFrame, x: str, series: list[str], g: Frame, percent: bool, pad: float = 0.0
):
    """Return (x expression, y expression factory, axis markup); `pad` insets the x range."""
    first, last = frame[x].min(), frame[x].max()
    span = max((last - first).days, 1) if first is not None else 1
    top_value = frame.select(pl.max_horizontal(pl.col(series).max())).item() or 0.0
    y_max = nice_ceiling(float(top_value) * 1.05)
    offset = 0.5 if first == last else 0.0  # one date: in the middle
    width = g.plot_w - 2 * pad
    x_expr = g.left + pad + ((pl.col(x) - pl.lit(first)).dt.total_days() / span + offset) * width

    def y_expr(column: str) -> pl.Expr:
        return g.top + g.plot_h - pl.col(column).cast(pl.Float64) / y_max * g.plot_h

    return x_expr, y_expr, _axes(first, last, y_max, g, percent)


def _axes(first, last, y_max: float, g: Frame, percent: bool) -> str:
    """Return the gridlines, y labels and first/last x labels."""
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = g.top + g.plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{g.left}" y1="{y:.1f}" x2="{g.width - g.right}" '
            f'y2="{y:.1f}"/><text class="tick" x="{g.left - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(_label(y_max * fraction, percent))}</text>'
        )
    base = g.height - 10
    if first is not None:
        parts.append(f'<text class="tick" x="{g.left}" y="{base}">{first}</text>')
        if last != first:
            parts.append(
                f'<text class="tick" x="{g.width - g.right}" y="{base}" '
                f'text-anchor="end">{last}</text>'
            )
    return "".join(parts)


def _legend(series: list[str]) -> str:
    """Return the legend: one coloured label per series (none for a single series)."""
    items = [
        f'<span class="legend" style="color:{PALETTE[i % len(PALETTE)]}">{escape(name)}</span>'
        for i, name in enumerate(series)
    ]
    return "".join(items) if len(series) > 1 else ""


def _svg(chart_id: str, title: str, body: str, g: Frame, legend: str = "") -> str:
    """Return the <figure> holding the chart's <svg>."""
    return (
        f'<figure class="chart" id="chart-{escape(chart_id)}"><figcaption>{escape(title)}'
        f"{legend}</figcaption>"
        f'<svg viewBox="0 0 {g.width} {g.height}" width="{g.width}" '
        f'height="{g.height}" role="img" aria-label="{escape(title)}">{body}</svg></figure>'
    )


def _empty(chart_id: str, title: str, g: Frame) -> str:
    """Return a chart that says there is no data."""
    body = f'<text class="tick" x="{g.width / 2}" y="{g.height / 2}">no data in range</text>'
    return _svg(chart_id, title, body, g)


def line_chart(
    frame: pl.DataFrame,
    x: str,
    series: list[str],
    chart_id: str,
    title: str,
    percent: bool = False,
    g: Frame | None = None,
) -> str:
    """Return an SVG line chart (one path and dots per series) of `frame` (dates in `x`)."""
    g = g or Frame()
    frame = frame.select(x, *series).sort(x)
    if frame.select(pl.col(series).is_not_null().any()).row(0) == (False,) * len(series):
        return _empty(chart_id, title, g)
    x_expr, y_expr, axes = _scales(frame, x, series, g, percent)
    marks = []
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = frame.filter(pl.col(name).is_not_null()).select(
            x_expr.round(1).alias("px"), y_expr(name).round(1).alias("py")
        )
        path = points.select(pl.format("{},{}", "px", "py").str.join(" ")).item()
        dots = points.select(
            pl.format(
                '<circle cx="{}" cy="{}" r="3" fill="{}"/>', "px", "py", pl.lit(colour)
            ).str.join("")
        ).item()
        marks.append(
            f'<path class="series" d="M{path}" fill="none" stroke="{colour}" '
            f'stroke-width="2"/>{dots}'
        )
    return _svg(chart_id, title, axes + "".join(marks), g, _legend(series))


def bar_chart(
    frame: pl.DataFrame,
    x: str,
    y: str,
    chart_id: str,
    title: str,
    percent: bool = False,
    g: Frame | None = None,
) -> str:
    """Return an SVG bar chart (one <rect> per date) of column `y` over dates `x`."""
    g = g or Frame()
    frame = frame.select(x, y).filter(pl.col(y).is_not_null()).sort(x)
    if frame.is_empty():
        return _empty(chart_id, title, g)
    days = (frame[x].max() - frame[x].min()).days + 1
    slot = g.plot_w / days
    x_expr, y_expr, axes = _scales(frame, x, [y], g, percent, pad=slot / 2)
    bar = max(slot * 0.7, 1.0)
    bottom = g.top + g.plot_h
    rects = frame.select(
        pl.format(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
            (x_expr - bar / 2).clip(lower_bound=g.left).round(1),
            y_expr(y).round(1),
            pl.lit(round(bar, 1)),
            (bottom - y_expr(y)).round(1),
            pl.lit(PALETTE[0]),
            pl.col(x),
            pl.col(y).round(4),
        ).str.join("")
    ).item()
    return _svg(chart_id, title, axes + rects, g)
