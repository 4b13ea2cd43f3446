"""Cold-start lists: popular records for users with too little history for the model.

A user with fewer than `min_history` distinct interacted records is cold. Their 'records'
list is the most popular records (most distinct positive users, then summed weight, then
lower id) among the genres of the records they liked ("known genres"), padded with the
overall most popular records when the genre list runs short; a user with no known genre gets
overall popularity only. History is excluded and the artist cap applies as for model lists.
'records_in_stock' is the same restricted to records for sale at active stores.

score = (1 + p) / 2 for genre-scoped rows and p / 2 for overall rows, where p = the record's
distinct users / the most popular record's, so scores descend with rank (genre rows come
first) and lie in (0, 1];
confidence = FALLBACK_CONFIDENCE (0.2); reason {"kind":"fallback","scope":"genres",
"genres":[the user's known genres the record has]} or {"kind":"fallback","scope":"overall"}.

Only a bounded pool per genre (and overall) is joined to users (see `_pools`); it provably
gives the same lists as scanning every record, and grows with the longest history H among
the cold users (about top_n (cap + H) / cap records per genre).
"""

from __future__ import annotations

import polars as pl

from transforms.content_features import store_stock
from transforms.recommend.common import (
    FALLBACK_CONFIDENCE,
    SORT_KEYS,
    artist_code,
    empty_output,
    records_frame,
    to_output,
    top_with_artist_cap,
)

OVERALL_REASON = '{"kind":"fallback","scope":"overall"}'
_ORDER = ("priority", "position")


def record_popularity(interactions: pl.DataFrame) -> pl.DataFrame:
    """Return (item_id, users, weight) per record from positive interactions, most popular first.

    users = distinct users with a positive weight, weight = their summed weight; sorted by
    users desc, weight desc, item_id asc.
    """
    positive = interactions.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        pl.col("weight").cast(pl.Float64),
    ).filter(pl.col("weight") > 0)
    counts = positive.group_by("item_id").agg(
        pl.col("user_id").n_unique().cast(pl.Int64).alias("users"), pl.col("weight").sum()
    )
    return _most_popular_first(counts)


def combined_popularity(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Return the record popularity of users split in disjoint groups from each group's
    (``record_popularity``'s frames): distinct users add up, as do weights."""
    if len(parts) == 1:
        return parts[0]
    counts = pl.concat(parts).group_by("item_id").agg(pl.col("users").sum(), pl.col("weight").sum())
    return _most_popular_first(counts)


def _most_popular_first(counts: pl.DataFrame) -> pl.DataFrame:
    return counts.sort(["users", "weight", "item_id"], descending=[True, True, False])


def _popular_records(popularity: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Return (item_id, artist code, genres, position, score) of popular known records."""
    ordered = popularity.sort(["users", "weight", "item_id"], descending=[True, True, False])
    ranked = ordered.with_row_index("position").select(
        pl.col("item_id").cast(pl.Int64),
        pl.col("position").cast(pl.Int64),
        (pl.col("users") / pl.col("users").max()).cast(pl.Float64).alias("score"),
    )
    details = records_frame(records, artist_code(), pl.col("genres").cast(pl.List(pl.String)))
    return ranked.join(details, on="item_id", how="inner").sort("position")


def _cold_users(users: pl.DataFrame, interactions: pl.DataFrame, min_history: int):
    counts = interactions.group_by(pl.col("user_id").cast(pl.Int64)).agg(
        pl.col("item_id").n_unique().alias("n")
    )
    every = users.select(pl.col("user_id").cast(pl.Int64)).drop_nulls().unique()
    cold = every.join(counts, on="user_id", how="left")
    return cold.filter(pl.col("n").fill_null(0) < min_history).select("user_id").sort("user_id")


def _known_genres(cold: pl.DataFrame, interactions: pl.DataFrame, records: pl.DataFrame):
    liked = interactions.filter(pl.col("weight") > 0).select(
        pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64)
    )
    genres = records_frame(records, pl.col("genres").cast(pl.List(pl.String)).alias("genre"))
    known = liked.join(cold, on="user_id", how="semi").join(genres, on="item_id")
    return known.explode("genre").select("user_id", "genre").drop_nulls().unique()


def _pools(popular: pl.DataFrame, top_n: int, cap: int, longest: int):
    """Return (genre pool, overall pool): the records a cold user's list can come from.

    With H = `longest` history, a record with cap + H more popular records of its artist (in
    its genre), or behind ceil(top_n (cap + H) / cap) + H records that pass that filter,
    can never make a list: enough of those ahead survive the history and the cap.
    """
    per_artist = cap + longest
    size = -(-top_n * (cap + longest) // cap) + longest
    by_genre = (
        popular.rename({"genres": "genre"})
        .explode("genre")
        .drop_nulls("genre")
        .unique(["genre", "item_id"])
        .sort(["genre", "position"])
        .filter(pl.int_range(pl.len()).over(["genre", "artist"]) < per_artist)
        .filter(pl.int_range(pl.len()).over("genre") < size)
    )
    ordered = popular.sort("position")
    overall = ordered.filter(pl.int_range(pl.len()).over("artist") < per_artist).head(size)
    return by_genre, overall.drop("genres")


def _candidates(cold, known, popular, history, top_n, max_per_artist) -> pl.DataFrame:
    seen = history.join(popular.select("item_id"), on="item_id", how="semi")
    longest = int(seen.group_by("user_id").len().get_column("len").max() or 0)
    by_genre, overall = _pools(popular, top_n, max_per_artist, longest)
    matched = (
        known.join(by_genre, on="genre")
        .group_by(["user_id", "item_id"])
        .agg(
            pl.col("genre").sort().alias("genres"),
            pl.col("artist", "position", "score").first(),
            pl.lit(0).alias("priority"),
        )
    )
    padding = cold.join(overall, how="cross").with_columns(
        pl.lit(None, dtype=pl.List(pl.String)).alias("genres"), pl.lit(1).alias("priority")
    )
    columns = ["user_id", "item_id", "artist", "position", "score", "priority", "genres"]
    both = pl.concat([matched.select(columns), padding.select(columns)])
    both = both.sort(["user_id", "item_id", "priority"]).unique(
        ["user_id", "item_id"], keep="first", maintain_order=True
    )
    return both.join(history, on=["user_id", "item_id"], how="anti")


def _fallback_list(cold, known, popular, history, list_name, top_n, max_per_artist):
    pool = _candidates(cold, known, popular, history, top_n, max_per_artist)
    ranked = top_with_artist_cap(
        pool, top_n=top_n, max_per_artist=max_per_artist, order=_ORDER, descending=(False, False)
    )
    genre_reason = pl.struct(
        kind=pl.lit("fallback"), scope=pl.lit("genres"), genres=pl.col("genres")
    ).struct.json_encode()
    reason = pl.when(pl.col("priority") == 0).then(genre_reason).otherwise(pl.lit(OVERALL_REASON))
    confidence = pl.lit(FALLBACK_CONFIDENCE).alias("confidence")
    score = ((1 - pl.col("priority")) + pl.col("score")) / 2
    rows = ranked.with_columns(reason.alias("reason"), confidence, score.alias("score"))
    return to_output(rows, list_name)


def fallback_lists(
    users: pl.DataFrame,
    interactions: pl.DataFrame,
    records: pl.DataFrame,
    popularity: pl.DataFrame,
    history: pl.DataFrame,
    *,
    min_history: int = 3,
    top_n: int = 20,
    max_per_artist: int = 2,
    inventory: pl.DataFrame | None = None,
    stores: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return 'records' (and, given inventory and stores, 'records_in_stock') popularity rows
    for the cold users among `users` (user_id); see the module docstring.

    `interactions` (user_id, item_id, weight); `popularity` as from record_popularity;
    `history` (user_id, record_id) is excluded.
    """
    cold = _cold_users(users, interactions, min_history)
    if cold.is_empty():
        return empty_output()
    known = _known_genres(cold, interactions, records)
    seen = history.select(
        pl.col("user_id").cast(pl.Int64), pl.col("record_id").cast(pl.Int64).alias("item_id")
    ).join(cold, on="user_id", how="semi")
    popular = _popular_records(popularity, records)
    lists = [_fallback_list(cold, known, popular, seen, "records", top_n, max_per_artist)]
    if inventory is not None and stores is not None:
        stocked = store_stock(inventory, stores).select(pl.col("record_id").alias("item_id"))
        in_stock = popular.join(stocked.unique(), on="item_id", how="semi")
        in_stock_rows = _fallback_list(
            cold, known, in_stock, seen, "records_in_stock", top_n, max_per_artist
        )
        lists.append(in_stock_rows)
    return pl.concat(lists).sort(SORT_KEYS)
