"""The report's charts: matplotlib figures drawn by its SVG backend, inlined in the page.

Every chart of a report spans the same days (its x axis is the report's range, a day's bar
or point at the day's middle), labels its ticks and axes, and leaves a missing day empty:
a line breaks there rather than bridging it. The SVG is made to live inside one HTML page
with five others: no XML prolog, no metadata, ids prefixed with the chart's own.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape

import matplotlib as mpl
import matplotlib.dates as mdates
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")
SIZE_IN = (5.6, 2.7)  # 540 × 260 px in the page: two charts side by side at 1200 px
STYLE = {
    "svg.fonttype": "none",  # text stays text: selectable, searchable, in the page's font
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "xtick.color": "#6b7280",
    "ytick.color": "#6b7280",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.autolimit_mode": "round_numbers",  # the y axis ends on a labelled tick
}
#: The plot area inside the figure, the same in every chart: side by side or one above the
#: other, a day sits at the same place in each (room left for labels, legend, last value).
PLOT_AREA = {"left": 0.12, "right": 0.92, "bottom": 0.2, "top": 0.86}
#: ConciseDateFormatter's formats per tick level (years, months, days, hours, minutes,
#: seconds): a day tick reads "Nov 08", not "08"; the offset below the axis is the year.
DATE_FORMATS = {
    "formats": ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"],
    "zero_formats": ["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M"],
    "offset_formats": ["", "%Y", "%Y", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"],
}
DENSE_DAYS = 62  # longer ranges: lines without a marker on every day
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


@dataclass(frozen=True)
class Days:
    """The report's range: the x axis of every chart."""

    first: date
    last: date

    @property
    def count(self) -> int:
        """Return the number of days in the range."""
        return (self.last - self.first).days + 1

    def limits(self) -> tuple[datetime, datetime]:
        """Return the x limits: half a day either side of the first and last days' marks."""
        half = timedelta(hours=12)
        return _day(self.first) - half, _day(self.last) + half


@dataclass(frozen=True)
class YAxis:
    """What a chart's y axis shows: its title and how its ticks read."""

    title: str
    kind: str = "count"  # count (whole numbers), share (percent of 1) or score (0 to 1)


def _day(day: date) -> datetime:
    """Return where a day's mark (point, bar) sits on the x axis: its date's tick."""
    return datetime.combine(day, time())


def _x(days: pl.Series) -> list[datetime]:
    """Return the x positions of a column of dates."""
    return [_day(d) for d in days]


def _axes(days: Days, y: YAxis) -> tuple[Figure, object]:
    """Return a figure and its axes: the shared date axis and the y axis `y` describes."""
    figure = Figure(figsize=SIZE_IN)
    figure.subplots_adjust(**PLOT_AREA)
    ax = figure.add_subplot()
    ax.set_xlim(*days.limits())
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, **DATE_FORMATS)  # every day tick names its month
    )
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel(y.title)
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    if y.kind == "share":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    elif y.kind == "count":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=3))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    return figure, ax


def _isolated(values: pl.Series) -> pl.Series:
    """Return True where a value has no value on either side (a line would not show it)."""
    present = values.is_not_null()
    before = present.shift(1, fill_value=False)
    after = present.shift(-1, fill_value=False)
    return present & ~before & ~after


def _svg(figure: Figure, chart_id: str) -> str:
    """Return the figure as an <svg> element whose ids cannot clash with another chart's."""
    buffer = io.StringIO()
    with mpl.rc_context({**STYLE, "svg.hashsalt": chart_id}):
        figure.savefig(buffer, format="svg", metadata=NO_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # no XML prolog or DOCTYPE inside HTML
    prefix = f"{chart_id}-"
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    return re.sub(r'(href="#|url\(#)', rf"\g<1>{prefix}", svg)


def _figure(chart_id: str, title: str, figure: Figure) -> str:
    """Return the <figure> of a chart: its caption and its SVG."""
    return (
        f'<figure class="chart" id="chart-{escape(chart_id)}">'
        f"<figcaption>{escape(title)}</figcaption>{_svg(figure, chart_id)}</figure>"
    )


def _from_zero(ax) -> None:
    """Start the y axis at zero, its top where the data put it (at least 1 on an empty plot)."""
    ax.set_ylim(0, max(ax.get_ylim()[1], 1e-9) if ax.has_data() else 1)


def _no_data(ax) -> None:
    """Write 'no data in range' across an empty plot."""
    ax.text(0.5, 0.5, "no data in range", transform=ax.transAxes, ha="center", color="#6b7280")


def line_chart(
    frame: pl.DataFrame,
    series: dict[str, str],
    chart_id: str,
    title: str,
    days: Days,
    y: YAxis,
    *,
    label_last: bool = False,
) -> str:
    """Return a line chart of `frame` (one row per day, `metric_date`) for each column of
    `series` (column → legend label); `label_last` writes each line's last value beside it."""
    with mpl.rc_context(STYLE):
        figure, ax = _axes(days, y)
        drawn = [
            column
            for i, column in enumerate(series)
            if _line(ax, frame, column, series[column], PALETTE[i % len(PALETTE)], days, label_last)
        ]
        if not drawn:
            _no_data(ax)
        elif len(series) > 1:
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=len(series), frameon=False)
        _from_zero(ax)
    return _figure(chart_id, title, figure)


def _line(ax, frame, column: str, label: str, colour: str, days: Days, label_last: bool) -> bool:
    """Draw one series (broken where a day has no value); return False when it has none."""
    values = frame[column].cast(pl.Float64)
    if values.is_null().all():
        return False
    marker = "o" if days.count <= DENSE_DAYS else None
    x = _x(frame["metric_date"])
    nan_for_missing = values.fill_null(float("nan")).to_list()
    style = {"color": colour, "markersize": 3}
    (line,) = ax.plot(x, nan_for_missing, linewidth=1.8, marker=marker, label=label, **style)
    line.set_gid(f"series-{column}")
    if marker is None:  # a day alone between missing ones: no line shows it, a dot does
        alone = frame.filter(_isolated(values))
        ax.plot(_x(alone["metric_date"]), alone[column].to_list(), "o", **style)
    if label_last:
        last = frame.filter(values.is_not_null()).tail(1)
        value = float(last[column][0])
        at = (_x(last["metric_date"])[0], value)
        ax.annotate(f"{value:.3f}", at, xytext=(5, 3), textcoords="offset points", color=colour)
    return True


def bar_chart(
    frame: pl.DataFrame, column: str, chart_id: str, title: str, days: Days, y: YAxis
) -> str:
    """Return a bar chart of `frame[column]`, one bar per day with a value."""
    with mpl.rc_context(STYLE):
        figure, ax = _axes(days, y)
        rows = frame.filter(pl.col(column).is_not_null())
        if rows.is_empty():
            _no_data(ax)
        x, heights = _x(rows["metric_date"]), rows[column].to_list()
        bars = ax.bar(x, heights, width=0.7, color=PALETTE[0])
        for day, bar in zip(rows["metric_date"], bars, strict=True):
            bar.set_gid(f"bar-{day}")
        _from_zero(ax)
    return _figure(chart_id, title, figure)
