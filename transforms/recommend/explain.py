"""Explanations of recommended records: which of the user's own records led to each one.

A seed of a recommended record r for user u is a record s that u interacted with positively
and that is a collaborative neighbour of r in either direction ((s → r) or (r → s) in the
top-K `neighbors`, the larger score if both). Seeds are ordered by neighbour score × the
user's weight on s (ties by seed id) and the first `max_seeds` kept, with their titles:
{"kind":"similar_to","seeds":[12,40],"seed_titles":["…","…"]}. A record without seeds is
explained by its genres: {"kind":"popular_in_genre","genres":["Jazz"]}.

Cost: the seed matches come from transforms/recommend/seeds.py (sparse lookups, users in blocks,
never a rows × K × liked join); the result is sorted with full tie-breaks.
"""

from __future__ import annotations

import polars as pl

from transforms.recommend.common import MODEL_REASON, OUTPUT_SCHEMA
from transforms.recommend.seeds import seed_matches

_KEY = ["user_id", "item_id"]


def _pairs(neighbors: pl.DataFrame) -> pl.DataFrame:
    """Return (seed_id, item_id, similarity): neighbour pairs in both directions, max score."""
    source = pl.col("source_id").cast(pl.Int64)
    target = pl.col("target_id").cast(pl.Int64)
    score = pl.col("score").cast(pl.Float64).alias("similarity")
    both = pl.concat(
        [
            neighbors.select(source.alias("seed_id"), target.alias("item_id"), score),
            neighbors.select(target.alias("seed_id"), source.alias("item_id"), score),
        ]
    )
    return (
        both.drop_nulls()
        .filter(pl.col("seed_id") != pl.col("item_id"))
        .group_by(["seed_id", "item_id"])
        .agg(pl.col("similarity").max())
    )


def _liked(interactions: pl.DataFrame) -> pl.DataFrame:
    """Return (user_id, seed_id, weight): the positive interactions (seed_matches sums repeats)."""
    return interactions.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64).alias("seed_id"),
        pl.col("weight").cast(pl.Float64),
    ).filter(pl.col("weight") > 0)


def _seed_reasons(
    todo: pl.DataFrame, pairs: pl.DataFrame, liked: pl.DataFrame, titles: pl.DataFrame, k: int
) -> pl.DataFrame:
    matches = seed_matches(todo, pairs, liked, top=k)  # by (user, item, strength desc, seed)
    seeds = (
        matches.join(titles, on="seed_id", how="left", maintain_order="left")
        .group_by(_KEY, maintain_order=True)
        .agg(pl.col("seed_id").alias("seeds"), pl.col("title").alias("seed_titles"))
    )
    reason = pl.struct(
        kind=pl.lit("similar_to"), seeds=pl.col("seeds"), seed_titles=pl.col("seed_titles")
    ).struct.json_encode()
    return seeds.select(*_KEY, reason.alias("new_reason"))


def _genre_reasons(todo: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    genres = records.select(
        pl.col("id").cast(pl.Int64).alias("item_id"),
        pl.col("genres").cast(pl.List(pl.String)),
    )
    no_genres = pl.lit([], dtype=pl.List(pl.String))
    reason = pl.struct(
        kind=pl.lit("popular_in_genre"), genres=pl.col("genres").fill_null(no_genres)
    ).struct.json_encode()
    joined = todo.join(genres, on="item_id", how="left", maintain_order="left")
    return joined.select(*_KEY, reason.alias("new_reason"))


def explain(
    lists: pl.DataFrame,
    interactions: pl.DataFrame,
    neighbors: pl.DataFrame,
    records: pl.DataFrame,
    *,
    max_seeds: int = 3,
) -> pl.DataFrame:
    """Return `lists` (output rows, same order) with reasons filled in for model record rows.

    Rows with item_type 'record' whose reason is null or {"kind":"model"} get a similar_to
    or popular_in_genre reason (module docstring); every other row is returned unchanged.
    `interactions` (user_id, item_id, weight), `neighbors` (source_id, target_id, score).
    """
    to_fill = (pl.col("item_type") == "record") & (
        pl.col("reason").is_null() | (pl.col("reason") == MODEL_REASON)
    )
    todo = lists.filter(to_fill).select(*_KEY).unique().sort(_KEY)
    titles = records.select(pl.col("id").cast(pl.Int64).alias("seed_id"), pl.col("title"))
    seeded = _seed_reasons(todo, _pairs(neighbors), _liked(interactions), titles, max_seeds)
    by_genre = _genre_reasons(todo.join(seeded, on=_KEY, how="anti"), records)
    reasons = pl.concat([seeded, by_genre])
    filled = lists.join(reasons, on=_KEY, how="left", maintain_order="left")
    reason = pl.when(to_fill).then(pl.col("new_reason")).otherwise(pl.col("reason"))
    return filled.with_columns(reason.cast(OUTPUT_SCHEMA["reason"]).alias("reason")).drop(
        "new_reason"
    )
