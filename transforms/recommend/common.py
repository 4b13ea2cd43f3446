"""Shared pieces of the recommendation lists: output schema, ranking with an artist cap,
confidence, and JSON reasons.

Output rows carry the recommendation_data columns except the four the flow adds
(model_version, run_id, created_at, expires_at).

Confidence of a model row (records, records_in_stock, tracks, stores)::

    confidence = clip(score / top_score_of_user_in_list, 0, 1) * (1 - exp(-history / 10))

where `history` is the number of distinct items behind the user's profile (10 items give
0.63 of the relative score, 30 give 0.95); a user whose top score is <= 0 gets 0. Fallback
rows (popularity lists for cold users) get the fixed FALLBACK_CONFIDENCE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from transforms.columns import RECOMMENDATION_COLUMNS, RECOMMENDATION_LISTS

FLOW_COLUMNS = ("model_version", "run_id", "created_at", "expires_at")
OUTPUT_COLUMNS = tuple(c for c in RECOMMENDATION_COLUMNS if c not in FLOW_COLUMNS)
OUTPUT_SCHEMA = {
    "user_id": pl.Int64,
    # the few names of data types, lists and item types as categoricals (sorted and compared
    # as text): 4 bytes a row instead of a 16-byte string view
    "data_type": pl.Categorical(),
    "list_name": pl.Categorical(),
    "item_type": pl.Categorical(),
    "item_id": pl.Int64,
    "item_key": pl.String,
    "score": pl.Float64,
    "confidence": pl.Float64,
    "rank": pl.Int32,
    # JSON text as a categorical: few distinct reasons behind many rows (at profile L 0.6M
    # among 9.5M rows), kept once each instead of once per row (half the frame as text)
    "reason": pl.Categorical(),
}
assert tuple(OUTPUT_SCHEMA) == OUTPUT_COLUMNS

FALLBACK_CONFIDENCE = 0.2
HISTORY_SCALE = 10.0
MODEL_REASON = '{"kind":"model"}'
SORT_KEYS = ("user_id", "list_name", "rank")


def empty_output() -> pl.DataFrame:
    """Return an empty frame with the output schema."""
    return pl.DataFrame(schema=OUTPUT_SCHEMA)


def to_output(frame: pl.DataFrame, list_name: str) -> pl.DataFrame:
    """Return `frame` as output rows of `list_name`: typed, missing columns null, ordered."""
    data_type, item_type = RECOMMENDATION_LISTS[list_name]
    fixed = {"data_type": data_type, "list_name": list_name, "item_type": item_type}
    columns = []
    for name, dtype in OUTPUT_SCHEMA.items():
        if name in fixed:
            expr = pl.lit(fixed[name])
        elif name in frame.columns:
            expr = pl.col(name)
        else:
            expr = pl.lit(None)
        columns.append(expr.cast(dtype).alias(name))
    return frame.select(columns)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Return `frame` reduced to the output columns with the output dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items())


def clean_candidates(candidates: pl.DataFrame, distinct_pairs: bool = False) -> pl.DataFrame:
    """Return (user_id, item_id, score): typed, finite scores, best score per (user, item).

    `distinct_pairs`: the caller guarantees one row per (user_id, item_id) already (as
    model_candidates and track_candidates give), so the best-score group-by is skipped
    (at L, 1.0 s for 7.7M record candidates and 1.3 s for 11.4M track candidates).
    """
    typed = candidates.lazy().select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        pl.col("score").cast(pl.Float64),
    )
    valid = typed.drop_nulls().filter(pl.col("score").is_finite())
    if distinct_pairs:
        return valid.collect()
    # lazily: the default engine groups millions of pairs several times faster than eager
    return valid.group_by(["user_id", "item_id"]).agg(pl.col("score").max()).collect()


def run_position(*columns: str) -> pl.Expr:
    """Return each row's 0-based position within its run of equal `columns` values."""
    starts = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift()) for c in columns])
    index = pl.int_range(pl.len())
    return index - pl.when(starts).then(index).forward_fill()


def top_with_artist_cap(
    frame: pl.DataFrame,
    *,
    top_n: int,
    max_per_artist: int,
    order: Sequence[str] = ("score",),
    descending: Sequence[bool] = (True,),
) -> pl.DataFrame:
    """Return each user's first `top_n` rows in `order` (ties by item_id) with at most
    `max_per_artist` rows per artist, plus `rank` Int32 1..N.

    `frame` needs user_id, item_id, artist (best as `artist_code`) and the
    `order` columns; (user_id, item_id) unique. The rows are ranked once by (user, order);
    a stable sort of that ranking by (user, artist) then lists each artist's rows in rank
    order, and run positions there mark the rows over the cap: windows over millions of
    (user, artist) groups are several times slower, and so are sorts on artist strings.
    """
    keys, flags = [*order, "item_id"], [*descending, False]
    ranked = frame.sort(["user_id", *keys], descending=[False, *flags])
    by_artist = (
        ranked.select("user_id", "artist")
        .with_row_index("row")
        .sort(["user_id", "artist"], maintain_order=True)
    )
    kept = by_artist.filter(run_position("user_id", "artist") < max_per_artist)["row"]
    mask = np.zeros(ranked.height, dtype=bool)
    mask[kept.to_numpy()] = True
    capped = ranked.filter(pl.Series(mask))
    rank = (run_position("user_id") + 1).cast(pl.Int32)
    return capped.with_columns(rank.alias("rank")).filter(pl.col("rank") <= top_n)


def history_sizes(history: pl.DataFrame, item_column: str) -> pl.DataFrame:
    """Return (user_id, history_size Int64): distinct items per user in `history`."""
    return history.group_by(pl.col("user_id").cast(pl.Int64)).agg(
        pl.col(item_column).n_unique().cast(pl.Int64).alias("history_size")
    )


def model_confidence(score: pl.Expr, history_size: pl.Expr, over: str | list[str]) -> pl.Expr:
    """Return the model-row confidence expression (see the module docstring), in [0, 1]."""
    top = score.max().over(over)
    relative = pl.when(top > 0).then((score / top).clip(0.0, 1.0)).otherwise(0.0)
    familiarity = 1.0 - (-history_size.fill_null(0).cast(pl.Float64) / HISTORY_SCALE).exp()
    return (relative * familiarity).clip(0.0, 1.0)


def with_model_confidence(ranked: pl.DataFrame, sizes: pl.DataFrame) -> pl.DataFrame:
    """Return `ranked` (user_id, score, ...) with `confidence` from the user's history size."""
    joined = ranked.join(sizes, on="user_id", how="left", maintain_order="left")
    confidence = model_confidence(pl.col("score"), pl.col("history_size"), "user_id")
    return joined.with_columns(confidence.alias("confidence")).drop("history_size")


def records_frame(records: pl.DataFrame, *columns: str | pl.Expr) -> pl.DataFrame:
    """Return records as (item_id Int64, *columns)."""
    return records.select(pl.col("id").cast(pl.Int64).alias("item_id"), *columns)


def artist_code() -> pl.Expr:
    """Return the records' artist as a UInt32 code, null staying null (equal artists, equal
    codes): the artist cap then sorts integers, not strings."""
    return pl.col("artist").rank("dense").cast(pl.UInt32).alias("artist")
