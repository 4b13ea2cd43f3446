"""The model stages: interactions → matrices → similarity and recommendation rows, and the
temporal holdout. Plain functions over frames (no I/O), called by the flows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from flows.extract import Inputs, day_end
from flows.pipeline import NightlyParams
from models.content import ContentSimilarity
from models.matrix import InteractionMatrix
from models.metrics import ranking_metrics
from models.neighbors import ItemKNN, topk_neighbors
from models.recommender import MODEL_VERSION, RotationRecommender
from transforms.columns import PLAYABLE_MATCH_STATUSES
from transforms.content_features import record_tokens, store_stock
from transforms.interactions import (
    InteractionParams,
    record_interactions,
    track_interactions,
    user_history,
    user_track_history,
)
from transforms.preferences import genre_affinity, preference_lists
from transforms.rec_explain import explain
from transforms.rec_fallback import fallback_lists, record_popularity
from transforms.rec_stores import store_list
from transforms.recommendations import assemble_recommendations, record_lists, track_list

__all__ = ["MODEL_VERSION"]
CANDIDATE_FACTOR = 4  # candidates asked of the model per list slot (room for exclusions, caps)
TRACKS_PER_RECORD = 3  # tracks considered per recommended record


@dataclass(frozen=True)
class Interactions:
    """Weighted user×item pairs for records and tracks, and what each user has already seen."""

    records: pl.DataFrame  # user_id, item_id, weight, events, last_at
    tracks: pl.DataFrame
    history: pl.DataFrame  # user_id, record_id
    track_history: pl.DataFrame  # user_id, track_id


@dataclass(frozen=True)
class Similarity:
    """content_similarity rows, and the record neighbours that explain recommendations."""

    rows: pl.DataFrame
    record_neighbors: pl.DataFrame  # source_id, target_id, score (collaborative)


def build_interactions(inputs: Inputs, as_of: datetime, params: InteractionParams) -> Interactions:
    """Return the weighted interactions and seen-item history of validated inputs."""
    records = record_interactions(
        plays=inputs.plays,
        usage=inputs.usage,
        favorites=inputs.favorites,
        collection_items=inputs.collection_items,
        tracks=inputs.tracks,
        collections=inputs.collections,
        as_of=as_of,
        params=params,
    )
    tracks = track_interactions(inputs.plays, inputs.favorites, as_of=as_of, params=params)
    history = user_history(
        plays=inputs.plays,
        favorites=inputs.favorites,
        collections=inputs.collections,
        collection_items=inputs.collection_items,
        tracks=inputs.tracks,
    )
    return Interactions(records, tracks, history, user_track_history(inputs.plays))


def to_matrix(pairs: pl.DataFrame, all_items: np.ndarray | None = None) -> InteractionMatrix:
    """Return the user×item matrix of the positive pairs (ID maps travel with it)."""
    positive = pairs.filter(pl.col("weight") > 0)
    return InteractionMatrix.from_arrays(
        positive["user_id"].to_numpy(),
        positive["item_id"].to_numpy(),
        positive["weight"].to_numpy().astype(np.float32),
        all_items=all_items,
    )


def neighbor_frame(
    source_ids: np.ndarray, target_ids: np.ndarray, indices: np.ndarray, scores: np.ndarray
) -> pl.DataFrame:
    """Return (source_id, target_id, score, rank) from a model's top-K arrays (-1 = none)."""
    k = indices.shape[1]
    rows = np.repeat(np.arange(indices.shape[0]), k)
    flat, flat_scores = indices.ravel(), scores.ravel()
    keep = (flat >= 0) & np.isfinite(flat_scores)
    return pl.DataFrame(
        {
            "source_id": source_ids[rows[keep]].astype(np.int64),
            "target_id": target_ids[flat[keep]].astype(np.int64),
            "score": flat_scores[keep].astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), indices.shape[0])[keep],
        }
    )


def sparse_neighbor_frame(ids: np.ndarray, arrays: tuple) -> pl.DataFrame:
    """Return (source_id, target_id, score, rank) from sparse top-K (rows, cols, scores, ranks)."""
    rows, cols, scores, ranks = arrays
    return pl.DataFrame(
        {
            "source_id": ids[rows].astype(np.int64),
            "target_id": ids[cols].astype(np.int64),
            "score": scores.astype(np.float64),
            "rank": ranks.astype(np.int32),
        }
    )


def typed(frame: pl.DataFrame, source_type: str, target_type: str, kind: str) -> pl.DataFrame:
    """Return neighbour rows labelled as content_similarity rows of one kind."""
    return frame.select(
        pl.lit(source_type).alias("source_type"),
        "source_id",
        pl.lit(target_type).alias("target_type"),
        "target_id",
        pl.lit(kind).alias("similarity_type"),
        "score",
        "rank",
    )


def hybrid(collab: pl.DataFrame, content: pl.DataFrame, alpha: float, k: int) -> pl.DataFrame:
    """Return the top-k of alpha × collaborative + (1 − alpha) × content over both pair sets."""
    key = ["source_id", "target_id"]
    joined = collab.select(*key, pl.col("score").alias("c")).join(
        content.select(*key, pl.col("score").alias("t")), on=key, how="full", coalesce=True
    )
    scored = joined.select(
        *key,
        (alpha * pl.col("c").fill_null(0) + (1 - alpha) * pl.col("t").fill_null(0)).alias("score"),
    )
    ranked = scored.sort(["source_id", "score", "target_id"], descending=[False, True, False])
    ranked = ranked.with_columns(pl.int_range(pl.len()).over("source_id").alias("rank") + 1)
    return ranked.filter(pl.col("rank") <= k).with_columns(pl.col("rank").cast(pl.Int32))


def collaborative_neighbors(matrix: InteractionMatrix, k: int) -> pl.DataFrame:
    """Return item-item collaborative top-k neighbours (cosine) of every item with interactions."""
    model = ItemKNN(k=k).fit(matrix.matrix)
    return sparse_neighbor_frame(matrix.item_ids, topk_neighbors(model.similarity_, k))


def content_neighbors(records: pl.DataFrame, k: int) -> pl.DataFrame:
    """Return record-record content neighbours from metadata (every record, played or not)."""
    tokens = record_tokens(records).sort("record_id")
    model = ContentSimilarity(n_neighbors=k).fit(tokens["tokens"].to_list())
    return sparse_neighbor_frame(tokens["record_id"].to_numpy(), model.neighbor_arrays())


def store_neighbors(inputs: Inputs, k: int) -> pl.DataFrame:
    """Return store-store neighbours by what they stock (cosine over for-sale records)."""
    stock = store_stock(inputs.inventory, inputs.stores)
    if stock.height == 0:
        return collaborative_neighbors(
            to_matrix(
                pl.DataFrame(
                    {"user_id": [], "item_id": [], "weight": []},
                    schema={"user_id": pl.Int64, "item_id": pl.Int64, "weight": pl.Float64},
                )
            ),
            k,
        )
    pairs = stock.select(
        pl.col("record_id").alias("user_id"),
        pl.col("store_id").alias("item_id"),
        pl.lit(1.0).alias("weight"),
    )
    return collaborative_neighbors(to_matrix(pairs), k)


def compute_similarity(inputs: Inputs, inter: Interactions, params: NightlyParams) -> Similarity:
    """Return every content_similarity row: collaborative, content and hybrid; stores too."""
    k = params.similar_k
    record_collab = collaborative_neighbors(to_matrix(inter.records), k)
    record_content = content_neighbors(inputs.records, k)
    rows = pl.concat(
        [
            typed(record_collab, "record", "record", "collaborative"),
            typed(record_content, "record", "record", "content"),
            typed(
                hybrid(record_collab, record_content, params.hybrid_alpha, k),
                "record",
                "record",
                "hybrid",
            ),
            typed(
                collaborative_neighbors(to_matrix(inter.tracks), k),
                "track",
                "track",
                "collaborative",
            ),
            typed(store_neighbors(inputs, k), "store", "store", "collaborative"),
        ]
    )
    return Similarity(
        rows=rows, record_neighbors=record_collab.select("source_id", "target_id", "score")
    )


def model_candidates(pairs: pl.DataFrame, users: pl.DataFrame, n: int) -> pl.DataFrame:
    """Return (user_id, item_id, score): the recommender's top-n unseen items for `users`."""
    matrix = to_matrix(pairs)
    rows = matrix.user_index(users["user_id"].to_numpy())
    rows = rows[rows >= 0]
    if rows.size == 0 or matrix.matrix.nnz == 0:
        return pl.DataFrame(schema={"user_id": pl.Int64, "item_id": pl.Int64, "score": pl.Float64})
    model = RotationRecommender().fit(matrix.matrix)
    indices, scores = model.recommend(matrix.matrix, rows, n)
    frame = neighbor_frame(matrix.user_ids[rows], matrix.item_ids, indices, scores)
    return frame.select(
        pl.col("source_id").alias("user_id"), pl.col("target_id").alias("item_id"), "score"
    )


def track_candidates(
    record_candidates: pl.DataFrame,
    track_pairs: pl.DataFrame,
    inputs: Inputs,
    n: int,
    per_record: int = TRACKS_PER_RECORD,
) -> pl.DataFrame:
    """Return (user_id, item_id = track, score): the best playable tracks of recommended records.

    A track scores its record's score × (1 + share) / 2, share = its listeners over the most
    listened track of the record, so a record's known highlight leads. Bounded: the top 2n
    record candidates per user × `per_record` tracks each (never users × all tracks).
    """
    listeners = (
        track_pairs.filter(pl.col("weight") > 0)
        .group_by("item_id")
        .agg(pl.col("user_id").n_unique().alias("listeners"))
    )
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
    top = record_candidates.sort(["user_id", "score", "item_id"], descending=[False, True, False])
    top = top.group_by("user_id", maintain_order=True).head(2 * n)
    joined = top.rename({"item_id": "record_id"}).join(best, on="record_id", how="inner")
    return joined.select("user_id", "item_id", (pl.col("score") * pl.col("factor")).alias("score"))


def popularity_rows(
    inputs: Inputs, inter: Interactions, overall: int = 200, per_genre: int = 100
) -> pl.DataFrame:
    """Return record_popularity rows: the most popular records overall and within each genre.

    Popularity is the pipeline fallback's own ranking (users with a positive interaction in
    the window, then summed weight); `plays` holds that user count. The API's cold-start
    fallback reads these few hundred rows instead of aggregating daily_metrics per call.
    """
    ranked = record_popularity(inter.records).with_row_index("position")
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


def compute_recommendations(
    inputs: Inputs, inter: Interactions, sim: Similarity, params: NightlyParams
) -> pl.DataFrame:
    """Return every recommendation_data row (lists and preferences) of the active users."""
    n, cap = params.top_n, params.max_per_artist
    modelled, cold = split_users(inter.records, params.min_history)
    candidates = model_candidates(inter.records, modelled, n * CANDIDATE_FACTOR)
    records = record_lists(
        candidates,
        inter.history,
        inputs.records,
        inputs.inventory,
        inputs.stores,
        top_n=n,
        max_per_artist=cap,
    )
    records = explain(records, inter.records, sim.record_neighbors, inputs.records)
    tracks = track_list(
        track_candidates(candidates, inter.tracks, inputs, n),
        inter.track_history,
        inputs.tracks,
        inputs.audio_matches,
        inputs.records,
        top_n=n,
        max_per_artist=cap,
    )
    affinity = genre_affinity(inter.records, inputs.records)
    stores = store_list(
        affinity, inputs.inventory, inputs.stores, inputs.records, inputs.follows, top_n=min(n, 10)
    )
    fallback = fallback_lists(
        cold,
        inter.records,
        inputs.records,
        record_popularity(inter.records),
        inter.history,
        min_history=params.min_history,
        top_n=n,
        max_per_artist=cap,
        inventory=inputs.inventory,
        stores=inputs.stores,
    )
    preferences = preference_lists(inter.records, inputs.records)
    return assemble_recommendations(fallback, records, tracks, stores, preferences)


def _before(inputs: Inputs, cutoff: datetime) -> Inputs:
    """Return the inputs as they were at `cutoff` (events and social actions before it)."""
    return inputs.replace(
        plays=inputs.plays.filter(pl.col("played_at") < cutoff),
        usage=inputs.usage.filter(pl.col("occurred_at") < cutoff),
        favorites=inputs.favorites.filter(pl.col("created_at") < cutoff),
        collection_items=inputs.collection_items.filter(pl.col("added_at") < cutoff),
    )


def _after(inputs: Inputs, cutoff: datetime) -> Inputs:
    """Return the inputs' events and social actions at or after `cutoff`."""
    return inputs.replace(
        plays=inputs.plays.filter(pl.col("played_at") >= cutoff),
        usage=inputs.usage.filter(pl.col("occurred_at") >= cutoff),
        favorites=inputs.favorites.filter(pl.col("created_at") >= cutoff),
        collection_items=inputs.collection_items.filter(pl.col("added_at") >= cutoff),
    )


def holdout_quality(inputs: Inputs, params: NightlyParams, now: datetime, k: int = 10) -> dict:
    """Return precision/recall/nDCG@k and coverage of the model on the last holdout days."""
    cutoff = day_end(params.run_date) - timedelta(days=params.holdout_days)
    ip = params.interactions
    train = build_interactions(_before(inputs, cutoff), cutoff, ip).records
    future = build_interactions(_after(inputs, cutoff), now, ip).records
    matrix = to_matrix(train)
    test = future.filter(pl.col("weight") > 0).join(
        train.filter(pl.col("weight") > 0), on=["user_id", "item_id"], how="anti"
    )
    users = matrix.user_index(test["user_id"].to_numpy())
    items = matrix.item_index(test["item_id"].to_numpy())
    keep = (users >= 0) & (items >= 0)
    if not keep.any():
        return {"users": 0}
    import scipy.sparse as sp

    rows = np.unique(users[keep])
    test_csr = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=matrix.matrix.shape
    )[rows]
    model = RotationRecommender().fit(matrix.matrix)
    recommended, _ = model.recommend(matrix.matrix, rows, k)
    figures = ranking_metrics(recommended, test_csr, k, matrix.matrix.shape[1])
    return {name.replace("_at_k", f"_at_{k}"): value for name, value in figures.items()}
