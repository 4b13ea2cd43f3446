"""The recommendations stage: model candidates → lists, preferences, fallbacks and the
popularity list, as recommendation_data rows. Plain functions over frames (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flows.params import NightlyParams
from flows.stages.extract import Inputs
from flows.stages.interactions import Interactions, to_matrix
from flows.stages.model_inputs import FitInputs
from flows.stages.similarity import Similarity, neighbor_frame
from models.kernels.parallel import run_beside
from models.recommender import RotationRecommender
from transforms.columns import PLAYABLE_MATCH_STATUSES
from transforms.content_features import store_stock
from transforms.recommend.explain import explain
from transforms.recommend.fallback import fallback_lists
from transforms.recommend.lists import assemble_recommendations, record_lists, track_list
from transforms.recommend.preferences import genre_affinity, preference_lists
from transforms.recommend.stores import store_list
from transforms.sizes import arrays_size, frames_size

CANDIDATE_FACTOR = 4  # candidates asked of the model per list slot (room for exclusions, caps)
TRACKS_PER_RECORD = 3  # tracks considered per recommended record
#: The catalogue's frames the lists do not read (each shard brings its users' follows).
UNREAD_BY_LISTS = (
    "plays",
    "usage",
    "users",
    "favorites",
    "collections",
    "collection_items",
    "follows",
    "settings",
)


@dataclass(frozen=True)
class ItemSide:
    """What every shard's lists read beyond its own users' rows: the catalogue, the record
    model fitted on every user (its item ids and item-side parts: no user's row), its
    collaborative record neighbours, and the record popularity and track listeners counted
    over every user. Sent once to each worker that scores a shard."""

    inputs: Inputs  # the catalogue; each shard brings its users' follows
    item_ids: np.ndarray  # the model's columns: the records any user has a positive pair with
    model: RotationRecommender | None
    record_neighbors: pl.DataFrame  # source_id, target_id, score (collaborative)
    popularity: pl.DataFrame  # record_popularity over every user
    listeners: pl.DataFrame  # item_id (track), listeners: users with a positive pair

    def __sizeof__(self) -> int:  # what Dask counts (transforms/sizes.py)
        return frames_size(self) + arrays_size(self.model) + self.item_ids.nbytes


def item_side(inputs: Inputs, fit: FitInputs, sim: Similarity) -> ItemSide:
    """Return what the shards' lists share, from the run's catalogue, every user's
    interactions and the similarity stage's fitted model."""
    unread = {name: getattr(inputs, name).clear() for name in UNREAD_BY_LISTS}
    return ItemSide(
        inputs.replace(**unread),
        sim.records.matrix.item_ids,
        sim.records.model,
        sim.record_neighbors,
        fit.popularity,
        fit.listeners,
    )


def model_candidates(
    side: ItemSide, pairs: pl.DataFrame, users: pl.DataFrame, n: int
) -> pl.DataFrame:
    """Return (user_id, item_id, score, rank): the fitted recommender's top-n unseen items
    for `users`, scored on their rows of the positive user×record `pairs`.

    Rank 1..n follows the model's order (score descending, ties by the lower item_id); one
    row per (user_id, item_id) for distinct `users`. A user's row holds his pairs alone,
    in the model's columns: his scores are the same whichever users are scored with him.
    """
    matrix, model = to_matrix(pairs, all_items=side.item_ids), side.model
    rows = matrix.user_index(users["user_id"].to_numpy())
    rows = rows[rows >= 0]
    if rows.size == 0 or model is None:
        schema = {"user_id": pl.Int64, "item_id": pl.Int64, "score": pl.Float64, "rank": pl.Int32}
        return pl.DataFrame(schema=schema)
    indices, scores = model.recommend(matrix.matrix, rows, n)
    frame = neighbor_frame(matrix.user_ids[rows], matrix.item_ids, indices, scores)
    return frame.select(
        pl.col("source_id").alias("user_id"), pl.col("target_id").alias("item_id"), "score", "rank"
    )


def track_candidates(
    record_candidates: pl.DataFrame,
    listeners: pl.DataFrame,
    inputs: Inputs,
    n: int,
    per_record: int = TRACKS_PER_RECORD,
) -> pl.DataFrame:
    """Return (user_id, item_id = track, score): the best playable tracks of recommended records.

    A track scores its record's score × (1 + share) / 2, share = its listeners (as from
    flows/stages/model_inputs.py's track_listeners) over the most listened track of the
    record, so a record's known highlight leads. Bounded: the 2n best-ranked record
    candidates per user (`rank`, as from model_candidates) × `per_record`
    tracks each (never users × all tracks). One row per (user_id, track) when the record
    candidates hold one per (user_id, record): a track id is on one record.
    """
    playable = (
        inputs.audio_matches.filter(pl.col("match_status").is_in(PLAYABLE_MATCH_STATUSES))
        .select(pl.col("track_id").alias("item_id"))
        .unique()
    )
    tracks = (
        inputs.tracks.select(pl.col("id").alias("item_id"), "record_id")
        .join(playable, on="item_id", how="semi")
        .join(listeners, on="item_id", how="left")
        .with_columns(pl.col("listeners").fill_null(0))
    )
    tracks = tracks.with_columns(
        (
            0.5 + 0.5 * pl.col("listeners") / pl.col("listeners").max().over("record_id").clip(1)
        ).alias("factor")
    )
    best = tracks.sort(["record_id", "factor", "item_id"], descending=[False, True, False])
    best = best.group_by("record_id", maintain_order=True).head(per_record)
    top = record_candidates.filter(pl.col("rank") <= 2 * n)
    joined = top.rename({"item_id": "record_id"}).join(best, on="record_id", how="inner")
    return joined.select("user_id", "item_id", (pl.col("score") * pl.col("factor")).alias("score"))


def popularity_rows(
    inputs: Inputs, inter: FitInputs, overall: int = 200, per_genre: int = 100
) -> pl.DataFrame:
    """Return record_popularity rows: the most popular records overall and within each genre.

    Popularity is the pipeline fallback's own ranking (users with a positive interaction in
    the window, then summed weight); `plays` holds that user count. The API's cold-start
    fallback reads these few hundred rows instead of aggregating daily_metrics per call.
    """
    ranked = inter.popularity.with_row_index("position")
    genres = inputs.records.select(pl.col("id").alias("item_id"), "genres")
    ranked = ranked.join(genres, on="item_id", how="left")
    by_genre = (
        ranked.select("item_id", "position", pl.col("genres").alias("genre"))
        .explode("genre")
        .drop_nulls("genre")
        .sort("genre", "position")
        .group_by("genre", maintain_order=True)
        .head(per_genre)
    )
    keep = pl.concat([ranked.head(overall).select("item_id"), by_genre.select("item_id")])
    stock = store_stock(inputs.inventory, inputs.stores).select(
        pl.col("record_id").alias("item_id")
    )
    chosen = ranked.join(keep.unique(), on="item_id", how="semi").sort("position")
    return chosen.select(
        pl.col("item_id").alias("record_id"),
        pl.col("users").cast(pl.Float64).alias("plays"),
        pl.col("genres").fill_null([]),
        pl.col("item_id").is_in(stock["item_id"].implode()).alias("in_stock"),
    )


def split_users(records: pl.DataFrame, min_history: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (users the model serves, users who get the popularity fallback)."""
    counts = records.filter(pl.col("weight") > 0).group_by("user_id").agg(pl.len().alias("n"))
    everyone = records.select("user_id").unique()
    modelled = counts.filter(pl.col("n") >= min_history).select("user_id")
    cold = everyone.join(modelled, on="user_id", how="anti")
    return modelled.sort("user_id"), cold.sort("user_id")


def model_lists(
    side: ItemSide, inter: Interactions, users: pl.DataFrame, params: NightlyParams
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the model's (record lists with their explanations, track list) for `users`."""
    n, cap, inputs = params.top_n, params.max_per_artist, side.inputs
    candidates = model_candidates(side, inter.records, users, n * CANDIDATE_FACTOR)
    records = record_lists(
        candidates,
        inter.history,
        inputs.records,
        inputs.inventory,
        inputs.stores,
        top_n=n,
        max_per_artist=cap,
        distinct_pairs=True,  # model_candidates: one row per (user, record)
    )
    records = explain(records, inter.records, side.record_neighbors, inputs.records)
    tracks = track_list(
        track_candidates(candidates, side.listeners, inputs, n),
        inter.track_history,
        inputs.tracks,
        inputs.audio_matches,
        inputs.records,
        top_n=n,
        max_per_artist=cap,
        distinct_pairs=True,  # track_candidates: one row per (user, track)
    )
    return records, tracks


def compute_recommendations(
    side: ItemSide, inter: Interactions, follows: pl.DataFrame, params: NightlyParams
) -> pl.DataFrame:
    """Return every recommendation_data row (lists and preferences) of the active users of
    `inter` (every user, or one shard's: a user's rows depend on his own and on `side`).

    The store, fallback and preference lists are built beside the model's lists
    (``run_beside``: mostly polars work that keeps the cores only partly busy).
    """
    n, cap, inputs = params.top_n, params.max_per_artist, side.inputs
    modelled, cold = split_users(inter.records, params.min_history)
    (records, tracks), (stores, fallback, preferences) = run_beside(
        lambda: model_lists(side, inter, modelled, params),
        lambda: store_list(
            genre_affinity(inter.records, inputs.records),
            inputs.inventory,
            inputs.stores,
            inputs.records,
            follows,
            top_n=min(n, 10),
        ),
        lambda: fallback_lists(
            cold,
            inter.records,
            inputs.records,
            side.popularity,
            inter.history,
            min_history=params.min_history,
            top_n=n,
            max_per_artist=cap,
            inventory=inputs.inventory,
            stores=inputs.stores,
        ),
        lambda: preference_lists(inter.records, inputs.records),
    )
    return assemble_recommendations(fallback, records, tracks, stores, preferences)
