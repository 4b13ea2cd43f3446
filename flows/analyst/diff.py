"""Diff: compare the outputs of two runs kept in two DuckDB files (base and head).

Both files are ATTACHed read-only to one in-memory DuckDB connection; the comparisons are the
named queries sql/queries/diff/*.sql, and polars only sorts and summarises their results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from flows.analyst.terminal import HIDDEN_PATTERN, REPLACEMENT
from flows.storage.base import load_query
from flows.storage.database import Database

TOLERANCE = 1e-9  # metric values closer than this are the same
STATUSES = ("changed", "only_base", "only_head", "same")


@dataclass(frozen=True)
class RunDiff:
    """Everything `rotation diff` reports, as frames."""

    base: str
    head: str
    metric_date: date | None
    metric_counts: pl.DataFrame  # metric_type, changed, only_base, only_head, same
    top_changes: pl.DataFrame  # the biggest relative changes
    recommendations: pl.DataFrame  # per list_name: users, mean_jaccard, top1_changed_share
    similarity: pl.DataFrame  # per similarity_type, source_type: sources, mean_jaccard, ...
    quality: pl.DataFrame  # metric_name, base/head date and value, delta

    @property
    def changed_metrics(self) -> int:
        """Return the number of daily_metrics rows that differ (changed or on one side only)."""
        counts = self.metric_counts
        if counts.is_empty():
            return 0
        return int(
            counts.select(pl.sum("changed") + pl.sum("only_base") + pl.sum("only_head")).item()
        )

    def as_json(self) -> dict:
        """Return the diff as a JSON-ready dict."""
        return json.loads(
            json.dumps(
                {
                    "base": self.base,
                    "head": self.head,
                    "metric_date": self.metric_date,
                    "changed_metrics": self.changed_metrics,
                    "metric_counts": self.metric_counts.to_dicts(),
                    "top_changes": self.top_changes.to_dicts(),
                    "recommendations": self.recommendations.to_dicts(),
                    "similarity": self.similarity.to_dicts(),
                    "quality": self.quality.to_dicts(),
                },
                default=str,
            )
        )


def _duck_file(db: Database, role: str) -> Path:
    """Return the DuckDB file of `db`, or raise ValueError naming the --base/--head problem."""
    if db.is_postgres or db.path is None:
        raise ValueError(f"--{role} must be duckdb:PATH (take one with `rotation snapshot`)")
    if not db.path.is_file():
        raise FileNotFoundError(f"--{role} {db.path} does not exist")
    return db.path


def _read(conn, query: str, params: list) -> pl.DataFrame:
    """Return the rows of a named diff query as polars."""
    return pl.from_arrow(conn.sql(load_query(query), params=params).to_arrow_table())


def metric_counts(pairs: pl.DataFrame) -> pl.DataFrame:
    """Return, per metric_type, how many rows are changed / only_base / only_head / same."""
    wide = (
        pairs.group_by("metric_type", "status")
        .len()
        .pivot(on="status", index="metric_type", values="len")
    )
    missing = [pl.lit(0, pl.UInt32).alias(s) for s in STATUSES if s not in wide.columns]
    return (
        wide.with_columns(missing).fill_null(0).select("metric_type", *STATUSES).sort("metric_type")
    )


def top_changes(pairs: pl.DataFrame, top: int) -> pl.DataFrame:
    """Return the `top` differing rows, biggest relative change first (from 0: infinite)."""
    return (
        pairs.filter(pl.col("status") != "same")
        .with_columns(
            pl.col("relative_change").abs().fill_null(float("inf")).alias("_order"),
            pl.col("delta").abs().fill_null(float("inf")).alias("_delta"),
        )
        .sort(
            ["_order", "_delta", "metric_type", "entity_id", "metric_name"],
            descending=[True, True, False, False, False],
        )
        .head(top)
        .drop("_order", "_delta")
    )


def diff_runs(
    base: Database, head: Database, metric_date: date | None = None, top: int = 20, k: int = 10
) -> RunDiff:
    """Return the comparison of head's outputs with base's (metrics of `metric_date`)."""
    base_path, head_path = _duck_file(base, "base"), _duck_file(head, "head")
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("ATTACH $1 AS base (READ_ONLY)", [str(base_path)])
        conn.execute("ATTACH $1 AS head (READ_ONLY)", [str(head_path)])
        day = metric_date or _read(conn, "diff/common_date", [])["metric_date"][0]
        pairs = _read(conn, "diff/metrics", [day, TOLERANCE])
        return RunDiff(
            base=base.display,
            head=head.display,
            metric_date=day,
            metric_counts=metric_counts(pairs),
            top_changes=top_changes(pairs, top),
            recommendations=_read(conn, "diff/recommendations", [k]),
            similarity=_read(conn, "diff/similarity", [k]),
            quality=_read(conn, "diff/quality", [day or date.max]),
        )


def _text(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Return `column` as display text: floats to 4 decimals, missing values as '—'."""
    col = pl.col(column)
    if frame.schema[column].is_float():
        col = col.round(4)
    return col.cast(pl.String).str.replace_all(HIDDEN_PATTERN, REPLACEMENT).fill_null("—")


def _table(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """Return `frame`'s columns as aligned text lines (header first)."""
    if frame.is_empty():
        return ["  (none)"]
    cells = frame.select(_text(frame, c) for c in columns)
    widths = [max(len(c), cells[c].str.len_chars().max() or 0) for c in columns]
    header = "  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))
    body = cells.select(
        pl.concat_str(
            [pl.col(c).str.pad_start(w) for c, w in zip(columns, widths, strict=True)],
            separator="  ",
        ).alias("line")
    )["line"]
    return [header, *("  " + body).to_list()]


def format_diff(d: RunDiff) -> str:
    """Return the diff as readable text."""
    lines = [f"base: {d.base}", f"head: {d.head}", ""]
    lines.append(
        f"Daily metrics of {d.metric_date or '— (no common date)'}: "
        f"{d.changed_metrics:,} row(s) differ"
    )
    lines += _table(d.metric_counts, ["metric_type", *STATUSES])
    lines += ["", "Biggest relative changes (head vs base):"]
    lines += _table(
        d.top_changes,
        [
            "metric_type",
            "entity_id",
            "metric_name",
            "base_value",
            "head_value",
            "delta",
            "relative_change",
        ],
    )
    lines += ["", "Recommendation overlap (top-10 per user):"]
    lines += _table(
        d.recommendations,
        ["list_name", "users", "users_in_both", "mean_jaccard", "top1_changed_share"],
    )
    lines += ["", "Similarity overlap (top-10 neighbours per source):"]
    lines += _table(
        d.similarity,
        ["similarity_type", "source_type", "sources", "mean_jaccard", "top1_changed_share"],
    )
    lines += ["", "Model quality (temporal holdout), side by side:"]
    lines += _table(
        d.quality, ["metric_name", "base_date", "base_value", "head_date", "head_value", "delta"]
    )
    return "\n".join(lines)
