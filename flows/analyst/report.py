"""The analysts' report: one self-contained HTML file (inline CSS and SVG, no script, no URL)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path

import polars as pl

from flows.analyst.charts import Days, YAxis, bar_chart, line_chart
from flows.storage.backends import open_storage
from flows.storage.database import Database

DEFAULT_DAYS = 30
TOP_ROWS = 10
JOB_ROWS = 12


@dataclass(frozen=True)
class ReportData:
    """What the report shows: the range, the charted series (wide, one row per date), tables."""

    source: str
    first: date
    last: date
    platform: pl.DataFrame  # metric_date, active_users, plays, completion_rate, skip_rate
    recommendation: pl.DataFrame  # metric_date, plays, share_of_plays
    quality: pl.DataFrame  # metric_date, ndcg_at_10, precision_at_10
    top_records: pl.DataFrame
    top_stores: pl.DataFrame
    jobs: pl.DataFrame


def _wide(series: pl.DataFrame, metric_type: str, names: list[str], days: pl.DataFrame):
    """Return one metric_type's series as one row per day of the range, one column per name."""
    rows = series.filter(pl.col("metric_type") == metric_type)
    wide = rows.pivot(on="metric_name", index="metric_date", values="metric_value")
    missing = [pl.lit(None, pl.Float64).alias(n) for n in names if n not in wide.columns]
    wide = wide.with_columns(missing).select("metric_date", *names)
    return days.join(wide, on="metric_date", how="left")


def read_report_data(db: Database, first: date | None = None, last: date | None = None):
    """Return the ReportData of `db` for [first, last] (default: the last 30 days with data)."""
    with open_storage(db) as storage:
        storage.check()
        if last is None:
            last = storage.read("report/last_day")["last_day"][0]
            if last is None:
                raise ValueError(
                    f"{db.display} has no daily metrics yet; run `rotation run backfill` "
                    "or `rotation run nightly` first"
                )
        first = first or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise ValueError(f"--from {first} is after --to {last}")
        series = storage.read("report/series", (first, last)).with_columns(
            pl.col("metric_date").cast(pl.Date), pl.col("metric_value").cast(pl.Float64)
        )
        days = pl.DataFrame({"metric_date": pl.date_range(first, last, eager=True)})
        platform_names = ["active_users", "plays", "completion_rate", "skip_rate"]
        return ReportData(
            source=db.display,
            first=first,
            last=last,
            platform=_wide(series, "platform", platform_names, days),
            recommendation=_wide(series, "recommendation", ["plays", "share_of_plays"], days),
            quality=_wide(series, "model_quality", ["ndcg_at_10", "precision_at_10"], days),
            top_records=_counts(storage.read("report/top_records", (last, TOP_ROWS))),
            top_stores=_counts(storage.read("report/top_stores", (last, TOP_ROWS))),
            jobs=_jobs(storage.read("report/jobs", (JOB_ROWS,))),
        )


def _counts(frame: pl.DataFrame) -> pl.DataFrame:
    """Return a top-N table with its metric columns (all counts) as integers."""
    return frame.with_columns(pl.col(pl.Float64).round().cast(pl.Int64))


def _jobs(jobs: pl.DataFrame) -> pl.DataFrame:
    """Return the jobs with their duration in seconds (running jobs: none yet)."""
    return jobs.with_columns(
        ((pl.col("completed_at") - pl.col("started_at")).dt.total_milliseconds() / 1000)
        .round(1)
        .alias("duration_s"),
        pl.col("started_at").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S UTC"),
    ).select(
        "id",
        "job_type",
        "job_status",
        "started_at",
        "duration_s",
        "items_processed",
        "items_quarantined",
    )


def _escaped(expr: pl.Expr) -> pl.Expr:
    """Return `expr` as HTML-escaped text ('' for missing values)."""
    text = expr.cast(pl.String).fill_null("")
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.str.replace_all(char, entity, literal=True)
    return text


def html_table(frame: pl.DataFrame, caption: str, numeric: tuple[str, ...] = ()) -> str:
    """Return `frame` as an HTML table (numbers right-aligned), every cell escaped."""
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    if frame.is_empty():
        body = f'<tr><td colspan="{len(frame.columns)}">none</td></tr>'
    else:
        cells = [
            pl.concat_str(
                pl.lit('<td class="num">' if c in numeric else "<td>"),
                _escaped(pl.col(c)),
                pl.lit("</td>"),
            )
            for c in frame.columns
        ]
        rows = frame.select(pl.concat_str(pl.lit("<tr>"), *cells, pl.lit("</tr>")).str.join(""))
        body = rows.item()
    return (
        f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _card(label: str, value, percent: bool = False) -> str:
    """Return one headline figure."""
    if value is None:
        shown = "—"
    else:
        shown = f"{value:.1%}" if percent else f"{value:,.0f}" if value >= 10 else f"{value:.3f}"
    return f'<div class="card"><div class="value">{shown}</div><div>{escape(label)}</div></div>'


def _on(frame: pl.DataFrame, day: date, column: str):
    """Return a column's value on `day`, or None."""
    values = frame.filter(pl.col("metric_date") == day)[column].drop_nulls()
    return values[0] if values.len() else None


def _last(frame: pl.DataFrame, column: str):
    """Return the last non-null value of a column, or None."""
    values = frame[column].drop_nulls()
    return values[-1] if values.len() else None


def _cards(data: ReportData) -> str:
    """Return the headline figures: the last day's, and the latest run's quality."""
    p, r, day = data.platform, data.recommendation, data.last
    return "".join(
        [
            _card("active users", _on(p, day, "active_users")),
            _card("plays", _on(p, day, "plays")),
            _card("completion rate", _on(p, day, "completion_rate"), percent=True),
            _card("skip rate", _on(p, day, "skip_rate"), percent=True),
            _card("recommendation share of plays", _on(r, day, "share_of_plays"), percent=True),
            _card("nDCG@10 of the latest run", _last(data.quality, "ndcg_at_10")),
        ]
    )


def _charts(data: ReportData) -> str:
    """Return the six charts, all over the report's days."""
    days = Days(data.first, data.last)
    p, r, q = data.platform, data.recommendation, data.quality
    per_day = YAxis("plays per day")
    rates = {"completion_rate": "completion rate", "skip_rate": "skip rate"}
    quality = {"ndcg_at_10": "nDCG@10", "precision_at_10": "precision@10"}
    return "".join(
        [
            line_chart(
                p,
                {"active_users": "active users"},
                "active-users",
                "Active users",
                days,
                YAxis("users per day"),
            ),
            bar_chart(p, "plays", "plays", "Plays", days, per_day),
            line_chart(
                p,
                rates,
                "rates",
                "Completion and skip rates",
                days,
                YAxis("share of plays", "share"),
            ),
            bar_chart(
                r, "plays", "rec-plays", "Plays started from a recommendation", days, per_day
            ),
            line_chart(
                r,
                {"share_of_plays": "share of plays"},
                "rec-share",
                "Recommendation share of plays",
                days,
                YAxis("share of plays", "share"),
            ),
            line_chart(
                q,
                quality,
                "quality",
                "Model quality on the holdout, per nightly run",
                days,
                YAxis("score (0 to 1)", "score"),
                label_last=True,
            ),
        ]
    )


def render_report(data: ReportData, generated_at: datetime | None = None) -> str:
    """Return the report as one self-contained HTML document."""
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    records = html_table(
        data.top_records,
        f"Top records on {data.last}",
        numeric=("id", "plays", "listeners", "completes", "skips", "favorites"),
    )
    stores = html_table(
        data.top_stores,
        f"Top stores on {data.last}",
        numeric=("id", "plays", "page_views", "new_followers"),
    )
    jobs = html_table(
        data.jobs,
        "Last runs",
        numeric=("id", "duration_s", "items_processed", "items_quarantined"),
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>Rotation report {data.first} to {data.last}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>Rotation analytics</h1><p>{data.first} to {data.last} · "
        f"{escape(data.source)} · generated {generated}</p></header>"
        f"<h2>On {data.last}, the last day of the range</h2>"
        f'<section class="cards">{_cards(data)}</section>'
        f"<h2>Day by day, {data.first} to {data.last}</h2>"
        f'<section class="charts">{_charts(data)}</section>'
        f'<section class="tables">{records}{stores}</section>'
        f"<section>{jobs}</section></body></html>\n"
    )


def write_report(
    db: Database, out: Path, first: date | None = None, last: date | None = None
) -> Path:
    """Return the path of the HTML report of `db` written (atomically) to `out`."""
    html = render_report(read_report_data(db, first, last))
    out = out.expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out.resolve()


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2937;
background:#f8fafc}
header h1{margin:0 0 4px;font-size:24px}header p{margin:0 0 16px;color:#6b7280}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 16px;
min-width:140px}.card .value{font-size:22px;font-weight:600;color:#1d4ed8}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px}
figcaption{font-weight:600;margin:0 0 4px 8px}
figure.chart{width:540px}figure.chart svg{display:block;width:540px;height:auto}
h2{font-size:16px;margin:20px 0 8px}
.tables{display:flex;flex-wrap:wrap;gap:16px;margin-top:16px;align-items:flex-start}
table{border-collapse:collapse;background:#fff;margin-top:16px;font-size:13px}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left}td.num{text-align:right}
th{background:#f1f5f9}
"""
