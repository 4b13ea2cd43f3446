"""The evaluation stage: id pairs split and coded into matrices, scored by models/evaluation.py.

One path for the three users of a quality figure: `rotation evaluate` (the DESIGN protocol
split of an external file), the nightly run's temporal holdout (its last days), and
bench/quality.py (the baselines beside the project's model).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from flows.params import NightlyParams
from flows.stages.extract import Inputs, day_end
from flows.stages.interactions import (
    build_record_interactions,
    genre_matrix,
    to_matrix,
    weighting,
)
from models.evaluation import evaluate
from models.kernels.codes import smallest_hashes
from models.matrix import InteractionMatrix
from models.metrics import at_k
from models.recommender import RotationRecommender
from models.split import stratified_split, temporal_split

PROTOCOLS = ("stratified", "temporal")

#: Holdout users scored at most (a seeded sample beyond): nDCG@10's standard error over
#: 20,000 users is about 0.002, far inside the quality gate's 20 % margin.
MAX_HOLDOUT_USERS = 20_000


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


def holdout_matrices(
    train: pl.DataFrame, test: pl.DataFrame, *, unknown_items: str = "miss"
) -> tuple[InteractionMatrix, sp.csr_matrix]:
    """Return the train matrix of positive (user_id, item_id, weight) pairs and the test matrix.

    The test matrix has the train matrix's rows (test users unknown to train are left out).
    A test item absent from train counts as a miss (``unknown_items="miss"``: a column of
    its own past train's) or is left out (``"drop"``).
    """
    matrix = to_matrix(train)
    return matrix, matrix_of_test_pairs(matrix, test, unknown_items=unknown_items)


def matrix_of_test_pairs(
    matrix: InteractionMatrix, test: pl.DataFrame, *, unknown_items: str = "miss"
) -> sp.csr_matrix:
    """Return the 0/1 matrix of the (user_id, item_id) `test` pairs in the rows of the train
    `matrix`, its unknown items as ``holdout_matrices`` says."""
    users = matrix.user_index(test["user_id"].to_numpy())
    items = matrix.item_index(test["item_id"].to_numpy())
    n_cols = matrix.shape[1]
    if unknown_items == "miss":
        unknown = np.unique(test["item_id"].to_numpy()[items < 0])
        extra = np.searchsorted(unknown, test["item_id"].to_numpy())
        items = np.where(items >= 0, items, n_cols + extra)
        n_cols += unknown.size
    elif unknown_items != "drop":
        raise ValueError(f"unknown_items must be 'miss' or 'drop', not {unknown_items!r}")
    keep = (users >= 0) & (items >= 0)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (users[keep], items[keep])),
        shape=(matrix.shape[0], n_cols),
    )


def sample_users(rows: np.ndarray, user_ids: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Return `rows` (sorted, unique) or the `cap` of them whose users (`user_ids`, one per
    row) have the smallest seeded id hash: a user is drawn or not whatever shard holds him."""
    if rows.size <= cap:
        return rows
    return rows[smallest_hashes(user_ids, cap, seed)]


def model_quality(
    train: pl.DataFrame,
    test: pl.DataFrame,
    items: pl.DataFrame | None,
    k: int = 10,
    *,
    unknown_items: str = "miss",
    n_items: int | None = None,
    max_users: int | None = None,
    model=None,
) -> dict:
    """Return the production model's metrics at k, fitted on `train` and scored on `test`.

    `items` (id, genres) gives the model the items' genres, as records.genres in a run;
    `max_users` caps the users scored (a seeded sample); `users` in the result is how many
    were scored, `test_users` how many had a test item. `model`: the estimator fitted
    (default RotationRecommender(); a TunedRecommender tunes on `train` alone). No timings:
    the figures of the same inputs are the same, byte for byte.
    """
    matrix, test_csr = holdout_matrices(train, test, unknown_items=unknown_items)
    return matrix_quality(
        matrix, test_csr, items, k, n_items=n_items, max_users=max_users, model=model
    )


def matrix_quality(
    matrix: InteractionMatrix,
    test_csr: sp.csr_matrix,
    items: pl.DataFrame | None,
    k: int = 10,
    *,
    n_items: int | None = None,
    max_users: int | None = None,
    model=None,
) -> dict:
    """Return ``model_quality``'s figures of a train matrix and its test matrix."""
    every = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    if every.size == 0:
        return {"users": 0}
    users = matrix.user_ids[every]
    rows = every if max_users is None else sample_users(every, users, max_users)
    genres = None if items is None else genre_matrix(items, matrix)
    figures = evaluate(
        RotationRecommender() if model is None else model,
        matrix.matrix,
        test_csr,
        k,
        users=rows,
        n_items=n_items,
        fit_params={"item_features": genres},
    )
    named = {
        name: value for name, value in at_k(figures, k).items() if not name.endswith("_seconds")
    }
    return {**named, "test_users": int(every.size)}


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


def holdout_pairs(
    inputs: Inputs, params: NightlyParams, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (train, test): the weighted interactions before the last `holdout_days` days,
    and the positive pairs first seen in those days (the nightly's temporal holdout)."""
    cutoff = day_end(params.run_date) - timedelta(days=params.holdout_days)
    weights = weighting(params)
    train = build_record_interactions(_before(inputs, cutoff), cutoff, weights)
    future = build_record_interactions(_after(inputs, cutoff), now, weights)
    positive = train.filter(pl.col("weight") > 0)
    test = future.filter(pl.col("weight") > 0).join(positive, on=["user_id", "item_id"], how="anti")
    return train, test


def holdout_quality(
    train: InteractionMatrix,
    test: pl.DataFrame,
    records: pl.DataFrame,
    k: int = 10,
    max_users: int = MAX_HOLDOUT_USERS,
    model_params: dict | None = None,
) -> dict:
    """Return precision/recall/nDCG@k and coverage of the model on the holdout's pairs.

    `train`: the matrix of ``holdout_pairs``' train pairs, `test`: its test pairs (each
    computed per shard, then stacked); `records`: the
    catalogue's (their genres); `model_params`: the RotationRecommender parameters of the run
    (default: its defaults).

    The model is fitted on the interactions before the holdout and scored on the records
    first liked in it (known to the model: a record or user new in the holdout is left
    out), over up to `max_users` users (seeded sample); `holdout_users` is how many there
    were.
    """
    figures = matrix_quality(
        train,
        matrix_of_test_pairs(train, test, unknown_items="drop"),
        records,
        k,
        max_users=max_users,
        model=RotationRecommender(**(model_params or {})),
    )
    if "test_users" in figures:
        figures["holdout_users"] = figures.pop("test_users")
    return figures
