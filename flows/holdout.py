"""The nightly run's own evaluation: the model on a temporal holdout of the last days."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from flows.extract import Inputs, day_end
from flows.matrices import build_record_interactions, genre_matrix, to_matrix
from flows.pipeline import NightlyParams
from models.metrics import ranking_metrics
from models.recommender import RotationRecommender


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


#: Holdout users scored at most (a seeded sample beyond): nDCG@10's standard error over
#: 20,000 users is about 0.002, far inside the quality gate's 20 % margin.
MAX_HOLDOUT_USERS = 20_000


def sample_users(rows: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Return `rows` (sorted, unique) or a seeded sorted sample of `cap` of them."""
    if rows.size <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


def holdout_quality(
    inputs: Inputs,
    params: NightlyParams,
    now: datetime,
    k: int = 10,
    max_users: int = MAX_HOLDOUT_USERS,
) -> dict:
    """Return precision/recall/nDCG@k and coverage of the model on the last holdout days.

    Users with a holdout item are scored, up to `max_users` of them (seeded sample);
    `users` in the result is how many were scored, `holdout_users` how many there were.
    """
    cutoff = day_end(params.run_date) - timedelta(days=params.holdout_days)
    ip = params.interactions
    train = build_record_interactions(_before(inputs, cutoff), cutoff, ip)
    future = build_record_interactions(_after(inputs, cutoff), now, ip)
    matrix = to_matrix(train)
    test = future.filter(pl.col("weight") > 0).join(
        train.filter(pl.col("weight") > 0), on=["user_id", "item_id"], how="anti"
    )
    users = matrix.user_index(test["user_id"].to_numpy())
    items = matrix.item_index(test["item_id"].to_numpy())
    keep = (users >= 0) & (items >= 0)
    if not keep.any():
        return {"users": 0}
    every = np.unique(users[keep])
    rows = sample_users(every, max_users)
    test_csr = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=matrix.matrix.shape
    )[rows]
    genres = genre_matrix(inputs.records, matrix)
    model = RotationRecommender().fit(matrix.matrix, item_features=genres)
    recommended, _ = model.recommend(matrix.matrix, rows, k)
    figures = ranking_metrics(recommended, test_csr, k, matrix.matrix.shape[1])
    named = {name.replace("_at_k", f"_at_{k}"): value for name, value in figures.items()}
    return {**named, "holdout_users": int(every.size)}
