"""External implicit-feedback data (MovieLens, CSV): parse lines, report problems by line number,
and map valid interactions onto the Rotation schema. Pure polars: the file is read in flows/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

INT_MAX = 2**31 - 1  # ids must fit PostgreSQL's integer range
#: The last second a timestamp may name (9999-12-31 23:59:59 UTC): later ones overflow.
MAX_EPOCH_SECONDS = 253_402_300_799
FIXED_TIMESTAMP = datetime(2020, 1, 1, tzinfo=UTC)  # for files without timestamps
FORMATS = ("movielens", "csv")


@dataclass(frozen=True)
class Parsed:
    """Valid interactions (user_id, item_id, timestamp, weight) and the rejected lines."""

    interactions: pl.DataFrame
    problems: pl.DataFrame  # line, reason, text

    def counts(self) -> dict[str, int]:
        """Return the number of rejected lines per reason."""
        grouped = self.problems.group_by("reason").len().sort("reason")
        return dict(zip(grouped["reason"], grouped["len"], strict=True))


def _fields(lines: pl.DataFrame, fmt: str) -> tuple[pl.DataFrame, list[str]]:
    """Return the lines split into fields, and the field names of the format."""
    if fmt == "movielens":
        names, sep, body = ["user_id", "item_id", "rating", "timestamp"], "\t", lines
    else:
        first = lines["text"][0] if lines.height else ""
        header = [h.strip().strip('"').strip().lower() for h in first.split(",")] if first else []
        allowed = {"user_id", "item_id", "timestamp", "weight"}
        if header[:2] != ["user_id", "item_id"] or not set(header) <= allowed:
            raise ValueError(
                f"csv header must be user_id,item_id[,timestamp][,weight], not {','.join(header)!r}"
            )
        if len(set(header)) < len(header):
            raise ValueError(f"csv header names a column twice: {','.join(header)!r}")
        names, sep, body = header, ",", lines.slice(1)
    split = body.with_columns(pl.col("text").str.strip_chars().str.split(sep).alias("fields"))
    return split, names


def parse_interactions(lines: pl.DataFrame, fmt: str) -> Parsed:
    """Return the valid interactions of `lines` (columns line, text) and each bad line's reason."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; accepted: {', '.join(FORMATS)}")
    split, names = _fields(lines, fmt)
    split = split.filter(pl.col("text").str.strip_chars() != "")
    wide = split.with_columns(
        pl.col("fields").list.len().alias("n_fields"),
        *[
            pl.col("fields")
            .list.get(i, null_on_oob=True)
            .str.strip_chars()
            .str.strip_prefix('"')  # a quoted field, as a CSV reader reads it
            .str.strip_suffix('"')
            .alias(name)
            for i, name in enumerate(names)
        ],
    )
    typed = wide.with_columns(
        pl.col("user_id").cast(pl.Int64, strict=False).alias("uid"),
        pl.col("item_id").cast(pl.Int64, strict=False).alias("iid"),
        (
            pl.col("timestamp").cast(pl.Int64, strict=False)
            if "timestamp" in names
            else pl.lit(None, pl.Int64)
        ).alias("ts"),
        (
            pl.col("weight").cast(pl.Float64, strict=False) if "weight" in names else pl.lit(1.0)
        ).alias("w"),
    )
    reason = _reason(typed, len(names), "timestamp" in names, "weight" in names)
    judged = typed.with_columns(reason.alias("reason"))
    pair = pl.when(pl.col("reason").is_null()).then(pl.struct("uid", "iid"))
    repeated = pl.col("reason").is_null() & (pl.int_range(pl.len()).over(pair) > 0)
    judged = judged.with_columns(
        pl.when(repeated).then(pl.lit("duplicate_pair")).otherwise(pl.col("reason")).alias("reason")
    )
    problems = judged.filter(pl.col("reason").is_not_null()).select("line", "reason", "text")
    valid = judged.filter(pl.col("reason").is_null()).select(
        pl.col("uid").alias("user_id"),
        pl.col("iid").alias("item_id"),
        pl.when(pl.col("ts").is_not_null())
        .then(pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC"))
        .otherwise(pl.lit(FIXED_TIMESTAMP))
        .dt.cast_time_unit("us")
        .alias("timestamp"),
        pl.col("w").alias("weight"),
    )
    return Parsed(valid, problems.sort("line"))


def _reason(frame: pl.DataFrame, n_names: int, has_ts: bool, has_weight: bool) -> pl.Expr:
    """Return the expression naming the first problem of a line (null when it is valid)."""
    bad_int = lambda raw, typed: pl.col(raw).is_null() | pl.col(typed).is_null()  # noqa: E731
    out_of_range = lambda c: (pl.col(c) < 1) | (pl.col(c) > INT_MAX)  # noqa: E731
    checks = [
        (pl.col("n_fields") != n_names, "malformed_line"),
        (bad_int("user_id", "uid") | bad_int("item_id", "iid"), "malformed_id"),
        (out_of_range("uid") | out_of_range("iid"), "id_out_of_range"),
    ]
    if has_ts:
        checks.append((bad_int("timestamp", "ts"), "malformed_timestamp"))
        ts = pl.col("ts")
        checks.append(((ts < 0) | (ts > MAX_EPOCH_SECONDS), "timestamp_out_of_range"))
    if has_weight:
        checks.append((pl.col("w").is_null() | ~pl.col("w").is_finite(), "malformed_weight"))
    expr = pl.lit(None, pl.Utf8)
    for condition, name in reversed(checks):
        expr = pl.when(condition).then(pl.lit(name)).otherwise(expr)
    return expr


def parse_item_genres(
    lines: pl.DataFrame, fmt: str, genre_names: list[str] | None = None
) -> pl.DataFrame:
    """Return (item_id, title, genres) from MovieLens u.item lines or an item_id,genres csv."""
    if fmt == "movielens":
        parts = lines.with_columns(pl.col("text").str.split("|").alias("f"))
        flags = pl.col("f").list.slice(5)
        names = pl.lit(genre_names or [], dtype=pl.List(pl.Utf8))
        return parts.select(
            pl.col("f").list.get(0).cast(pl.Int64, strict=False).alias("item_id"),
            pl.col("f").list.get(1, null_on_oob=True).alias("title"),
            pl.concat_list(names)
            .list.gather(flags.list.eval(pl.arg_where(pl.element() == "1")), null_on_oob=True)
            .alias("genres"),
        ).drop_nulls("item_id")
    body = lines.slice(1).with_columns(pl.col("text").str.splitn(",", 2).alias("f"))
    return body.select(
        pl.col("f").struct.field("field_0").cast(pl.Int64, strict=False).alias("item_id"),
        pl.lit(None, pl.Utf8).alias("title"),
        pl.col("f").struct.field("field_1").str.strip_chars('" ').str.split("|").alias("genres"),
    ).drop_nulls("item_id")
