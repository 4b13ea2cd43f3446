"""Offline evaluation through the nightly run's model code: split, fit, recommend, score."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import scipy.sparse as sp

from flows.matrices import genre_matrix, to_matrix
from models.metrics import ranking_metrics
from models.recommender import MODEL_VERSION, RotationRecommender
from models.split import stratified_split, temporal_split

PROTOCOLS = ("stratified", "temporal")


def split_pairs(
    pairs: pl.DataFrame,
    protocol: str,
    *,
    seed: int = 42,
    test_share: float = 0.25,
    min_interactions: int = 4,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (train, test) pairs per the DESIGN protocol; pairs ordered by (user, item) first."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; accepted: {', '.join(PROTOCOLS)}")
    pairs = pairs.unique(["user_id", "item_id"], keep="first").sort(["user_id", "item_id"])
    users = pairs["user_id"].to_numpy()
    if protocol == "stratified":
        keep, test = stratified_split(
            users,
            pairs["item_id"].to_numpy(),
            test_share=test_share,
            seed=seed,
            min_interactions=min_interactions,
        )
    else:
        stamps = pairs["timestamp"].dt.epoch("us").to_numpy()
        keep, test = temporal_split(
            users, stamps, test_share=test_share, min_interactions=min_interactions
        )
    return pairs.filter(pl.Series(keep & ~test)), pairs.filter(pl.Series(test))


def top_k(train: pl.DataFrame, k: int, items: pl.DataFrame | None = None) -> pl.DataFrame:
    """Return (user_id, item_id, score, rank): the production model's top-k unseen items.

    `items` (id, genres), when given, are the items' genres, as records.genres in a run.
    """
    matrix = to_matrix(train.with_columns(pl.lit(1.0).alias("weight")))
    rows = np.arange(matrix.matrix.shape[0])
    genres = None if items is None else genre_matrix(items, matrix)
    model = RotationRecommender().fit(matrix.matrix, item_features=genres)
    indices, scores = model.recommend(matrix.matrix, rows, k)
    ranks = np.tile(np.arange(1, k + 1), len(rows))
    keep = indices.ravel() >= 0
    return pl.DataFrame(
        {
            "user_id": np.repeat(matrix.user_ids, k)[keep],
            "item_id": matrix.item_ids[indices.ravel()[keep]],
            "score": scores.ravel()[keep].astype(np.float64),
            "rank": ranks[keep],
        }
    )


def score_lists(lists: pl.DataFrame, test: pl.DataFrame, k: int, n_items: int) -> dict:
    """Return the DESIGN metrics of ranked lists (user_id, item_id, rank) against test pairs."""
    users = np.unique(test["user_id"].to_numpy())
    items = np.unique(np.concatenate([test["item_id"].to_numpy(), lists["item_id"].to_numpy()]))
    row = {int(u): i for i, u in enumerate(users)}
    ranked = lists.filter(pl.col("rank") <= k, pl.col("user_id").is_in(users.tolist()))
    recommended = np.full((len(users), k), -1, dtype=np.int64)
    recommended[ranked["user_id"].replace_strict(row).to_numpy(), ranked["rank"].to_numpy() - 1] = (
        np.searchsorted(items, ranked["item_id"].to_numpy())
    )
    test_csr = sp.csr_matrix(
        (
            np.ones(test.height, np.float32),
            (
                test["user_id"].replace_strict(row).to_numpy(),
                np.searchsorted(items, test["item_id"].to_numpy()),
            ),
        ),
        shape=(len(users), len(items)),
    )
    figures = ranking_metrics(recommended, test_csr, k, len(items))
    figures["coverage"] = ranked["item_id"].n_unique() / n_items if n_items else 0.0
    return {name.replace("_at_k", f"_at_{k}"): value for name, value in figures.items()}


def evaluate_pairs(
    pairs: pl.DataFrame,
    *,
    protocol: str = "stratified",
    k: int = 10,
    seed: int = 42,
    items: pl.DataFrame | None = None,
) -> dict:
    """Return the metrics of the production model on `pairs` (user_id, item_id, timestamp).

    `items` (id, genres): the items' genres, optional (see `top_k`).
    """
    train, test = split_pairs(pairs, protocol, seed=seed)
    start = time.perf_counter()
    lists = top_k(train, k, items)
    seconds = time.perf_counter() - start
    figures = score_lists(lists, test, k, pairs["item_id"].n_unique())
    return {
        "model_version": MODEL_VERSION,
        "protocol": protocol,
        "k": k,
        "seed": seed,
        "train_pairs": train.height,
        "test_pairs": test.height,
        **figures,
        "fit_recommend_seconds": round(seconds, 2),
    }


def evaluate_published(db, test_path, k: int = 10) -> dict:
    """Return the DESIGN metrics of the published 'records' lists against held-out test pairs."""
    from flows.importer import read_interactions
    from flows.storage import open_storage

    test = read_interactions(test_path, "csv").interactions
    with open_storage(db) as storage:
        storage.check()
        lists = storage.read("published_record_list", (k,))
        n_items = int(storage.read("catalogue_size")["records"][0])
    figures = score_lists(lists, test, k, n_items)
    return {"source": "recommendation_data", "k": k, "test_pairs": test.height, **figures}
