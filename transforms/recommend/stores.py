"""The 'stores' list: active stores whose for-sale stock fits the user's genre taste.

Score of store s for user u::

    score(u, s) = sum_g  p_u(g) * q_s(g)
    p_u(g) = affinity_u(g) / sum_h affinity_u(h)            (positive affinities only)
    q_s(g) = n_s(g) / (sum_h n_s(h) + stock_prior)

n_s(g) counts the distinct records of genre g for sale at s (a record with several genres
counts in each). p_u is the user's taste as a distribution; q_s the store's genre mix, shrunk
towards zero for small stores by `stock_prior` (a 3-record store does not outrank a
3000-record one with the same mix). The score lies in [0, 1): the chance that a genre drawn
from the user's taste matches a listing drawn from the store. Stores the user follows and
stores with score 0 are left out; ties go to the lower store_id. Reason:
{"kind":"taste_match","genres":[up to 3 genres with the largest p_u(g) * q_s(g), ties by
name]}.
Confidence (common.py) uses the user's summed genre events as history size.

Scale: the dot products run as a dense (users × genres) @ (genres × stores) product in
batches of `batch_size` users (100k users × 500 stores × 12 genres takes about a second and
`batch_size` × stores × 8 bytes of memory); nothing loops over users or rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from transforms.content_features import store_stock
from transforms.recommend.common import SORT_KEYS, to_output, with_model_confidence

REASON_GENRES = 3


def store_genre_shares(
    inventory: pl.DataFrame,
    stores: pl.DataFrame,
    records: pl.DataFrame,
    *,
    stock_prior: float = 10.0,
) -> pl.DataFrame:
    """Return (store_id, genre, listings, share): each active store's for-sale genre mix q_s."""
    genres = (
        records.select(
            pl.col("id").cast(pl.Int64).alias("record_id"),
            pl.col("genres").cast(pl.List(pl.String)).alias("genre"),
        )
        .explode("genre")
        .drop_nulls()
        .unique()
    )
    counts = (
        store_stock(inventory, stores)
        .join(genres, on="record_id", how="inner")
        .group_by(["store_id", "genre"])
        .agg(pl.len().cast(pl.Int64).alias("listings"))
    )
    total = pl.col("listings").sum().over("store_id").cast(pl.Float64) + stock_prior
    return counts.with_columns((pl.col("listings") / total).alias("share")).sort(
        ["store_id", "genre"]
    )


def _taste(genre_affinity: pl.DataFrame) -> pl.DataFrame:
    """Return (user_id, genre, taste): positive affinities normalised to sum 1 per user."""
    positive = genre_affinity.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("genre").cast(pl.String),
        pl.col("affinity").cast(pl.Float64),
    ).filter(pl.col("affinity") > 0)
    taste = pl.col("affinity") / pl.col("affinity").sum().over("user_id")
    return positive.select("user_id", "genre", taste.alias("taste"))


def _index(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    return frame.select(pl.col(column).unique().sort()).with_row_index(name)


def _dense(long: pl.DataFrame, rows: str, cols: str, values: str, shape) -> np.ndarray:
    matrix = np.zeros(shape, dtype=np.float64)
    matrix[long[rows].to_numpy(), long[cols].to_numpy()] = long[values].to_numpy()
    return matrix


def _top_batch(scores: np.ndarray, lo: int, follows: pl.DataFrame, top_n: int) -> pl.DataFrame:
    """Return (u, s, score) of users lo..lo+len: every positive score >= their top_n-th best.

    Ties at the boundary are all kept (ranking by store_id happens afterwards), so the
    selection is exact without a full sort of each row.
    """
    inside = follows.filter(pl.col("u").is_between(lo, lo + len(scores) - 1))
    scores[inside["u"].to_numpy() - lo, inside["s"].to_numpy()] = -np.inf
    scores = np.round(scores, 12)  # ignore float noise so that ties fall to store_id
    k = min(top_n, scores.shape[1])
    if k == 0:
        return pl.DataFrame(schema={"u": pl.UInt32, "s": pl.UInt32, "score": pl.Float64})
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    rows, cols = np.nonzero((scores >= kth) & (scores > 0))
    return pl.DataFrame(
        {
            "u": (rows + lo).astype(np.uint32),
            "s": cols.astype(np.uint32),
            "score": scores[rows, cols],
        }
    )


def _top_stores(
    taste_m: np.ndarray, share_m: np.ndarray, followed: pl.DataFrame, top_n: int, batch: int
) -> pl.DataFrame:
    """Return (u, s, score, rank) of each user's best unfollowed stores (matrix indices)."""
    starts = range(0, taste_m.shape[0], batch)
    parts = [_top_batch(taste_m[lo : lo + batch] @ share_m, lo, followed, top_n) for lo in starts]
    empty = {"u": pl.UInt32, "s": pl.UInt32, "score": pl.Float64}
    top = (pl.concat(parts) if parts else pl.DataFrame(schema=empty)).sort(
        ["u", "score", "s"], descending=[False, True, False]
    )
    rank = pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("u")
    return top.with_columns(rank.alias("rank")).filter(pl.col("rank") <= top_n)


def _reason_genres(top: pl.DataFrame, taste_m, share_m, genre_names: pl.Series) -> pl.Series:
    """Return each (u, s) row's up to REASON_GENRES genres by p_u(g) · q_s(g) (ties: name).

    Computed on the rows × genres contribution matrix, rounded as the scores are so that
    float noise does not break ties; genre indices follow the names' sorted order, so a
    stable sort of the negated contributions breaks ties by name.
    """
    u, s = top["u"].to_numpy(), top["s"].to_numpy()
    contribution = np.round(taste_m[u] * share_m[:, s].T, 12)
    width = min(REASON_GENRES, contribution.shape[1])
    order = np.argsort(-contribution, axis=1, kind="stable")[:, :width]
    positive = np.take_along_axis(contribution, order, axis=1) > 0
    columns = [
        pl.when(pl.Series(positive[:, i])).then(genre_names.gather(order[:, i]))
        for i in range(width)
    ]
    if not columns:
        return pl.Series("genres", [[]] * top.height, dtype=pl.List(pl.String))
    return pl.select(pl.concat_list(columns).list.drop_nulls().alias("genres")).to_series()


def _ranked_stores(taste: pl.DataFrame, shares: pl.DataFrame, follows, top_n: int, batch: int):
    """Return (user_id, store_id, score, rank, reason) of each user's best unfollowed stores."""
    genres = _index(shares, "genre", "g")
    stores = _index(shares, "store_id", "s")
    users = _index(taste, "user_id", "u")
    long_u = taste.join(genres, on="genre").join(users, on="user_id")
    long_s = shares.join(genres, on="genre").join(stores, on="store_id")
    taste_m = _dense(long_u, "u", "g", "taste", (users.height, genres.height))
    share_m = _dense(long_s, "g", "s", "share", (genres.height, stores.height))
    followed = (
        follows.select(pl.col("user_id").cast(pl.Int64), pl.col("store_id").cast(pl.Int64))
        .join(users, on="user_id")
        .join(stores, on="store_id")
    )
    top = _top_stores(taste_m, share_m, followed, top_n, batch)
    genre_names = _reason_genres(top, taste_m, share_m, genres["genre"])
    reason = pl.struct(kind=pl.lit("taste_match"), genres=genre_names).struct.json_encode()
    named = top.with_columns(reason.alias("reason")).join(users, on="u").join(stores, on="s")
    return named.select("user_id", "store_id", "score", "rank", "reason")


def store_list(
    genre_affinity: pl.DataFrame,
    inventory: pl.DataFrame,
    stores: pl.DataFrame,
    records: pl.DataFrame,
    follows: pl.DataFrame,
    *,
    top_n: int = 10,
    stock_prior: float = 10.0,
    batch_size: int = 8192,
) -> pl.DataFrame:
    """Return the 'stores' output rows: each user's top_n unfollowed active stores by taste fit.

    `genre_affinity` (user_id, genre, affinity, events) as from preferences.genre_affinity;
    `follows` (user_id, store_id). Formula in the module docstring.
    """
    taste = _taste(genre_affinity)
    shares = store_genre_shares(inventory, stores, records, stock_prior=stock_prior)
    rows = _ranked_stores(taste, shares, follows, top_n, batch_size)
    sizes = genre_affinity.group_by(pl.col("user_id").cast(pl.Int64)).agg(
        pl.col("events").sum().cast(pl.Int64).alias("history_size")
    )
    rows = with_model_confidence(rows.rename({"store_id": "item_id"}), sizes)
    return to_output(rows, "stores").sort(SORT_KEYS)
