"""Preference data: each user's genre, style and artist affinities.

Only positive interaction weights count (a skip or an unfavourite says nothing about taste).
A record with several genres (styles) counts fully, with its whole weight and one event, in
each of them: affinities describe what the user listens to, not a distribution, so a
Jazz/Funk record is evidence for both. Per user and key (genre, style or artist):

    affinity   = sum of the user's positive weights on records with that key
    events     = number of positive interaction rows behind it
    records    = distinct records behind it
    score      = affinity / the user's largest affinity in that list (top = 1.0)
    confidence = 1 - exp(-events / 5)          (1 event 0.18, 5 events 0.63, 15 events 0.95)
    rank       = 1..top_n by affinity desc, ties by key asc

Reason: {"kind":"affinity","events":n,"records":m}.
"""

from __future__ import annotations

import polars as pl

from transforms.rec_common import SORT_KEYS, empty_output, to_output

EVENTS_SCALE = 5.0
# list_name -> (records column, whether it holds a list)
_FACETS = {"genres": ("genres", True), "styles": ("styles", True), "artists": ("artist", False)}


def _positive(interactions: pl.DataFrame) -> pl.DataFrame:
    return interactions.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        pl.col("weight").cast(pl.Float64),
    ).filter(pl.col("weight") > 0)


def _facet_affinity(
    interactions: pl.DataFrame, records: pl.DataFrame, column: str, is_list: bool
) -> pl.DataFrame:
    """Return (user_id, key, affinity, events, records) for one records column."""
    dtype = pl.List(pl.String) if is_list else pl.String
    keys = records.select(
        pl.col("id").cast(pl.Int64).alias("item_id"), pl.col(column).cast(dtype).alias("key")
    )
    if is_list:
        keys = keys.explode("key")
    keys = keys.filter(pl.col("key").str.len_chars() > 0).unique()
    joined = _positive(interactions).join(keys, on="item_id", how="inner")
    return joined.group_by(["user_id", "key"]).agg(
        pl.col("weight").sum().alias("affinity"),
        pl.len().cast(pl.Int64).alias("events"),
        pl.col("item_id").n_unique().cast(pl.Int64).alias("records"),
    )


def genre_affinity(interactions: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Return (user_id, genre, affinity, events) per user and genre, by affinity desc."""
    frame = _facet_affinity(interactions, records, "genres", is_list=True)
    return frame.select("user_id", pl.col("key").alias("genre"), "affinity", "events").sort(
        ["user_id", "affinity", "genre"], descending=[False, True, False]
    )


def _preference_list(affinity: pl.DataFrame, list_name: str, top_n: int) -> pl.DataFrame:
    ranked = affinity.sort(["user_id", "affinity", "key"], descending=[False, True, False])
    rank = pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("user_id")
    score = pl.col("affinity") / pl.col("affinity").max().over("user_id")
    confidence = 1.0 - (-pl.col("events").cast(pl.Float64) / EVENTS_SCALE).exp()
    reason = pl.struct(
        kind=pl.lit("affinity"), events=pl.col("events"), records=pl.col("records")
    ).struct.json_encode()
    rows = ranked.with_columns(
        rank.alias("rank"),
        score.alias("score"),
        confidence.alias("confidence"),
        reason.alias("reason"),
        pl.col("key").alias("item_key"),
    )
    return to_output(rows.filter(pl.col("rank") <= top_n), list_name)


def preference_lists(
    interactions: pl.DataFrame, records: pl.DataFrame, *, top_n: int = 10
) -> pl.DataFrame:
    """Return the 'genres', 'styles' and 'artists' preference rows (formula in module doc).

    `interactions` (user_id, item_id, weight) with item_id a record id.
    """
    lists = [
        _preference_list(_facet_affinity(interactions, records, col, is_list), name, top_n)
        for name, (col, is_list) in _FACETS.items()
    ]
    return pl.concat([empty_output(), *lists]).sort(SORT_KEYS)
