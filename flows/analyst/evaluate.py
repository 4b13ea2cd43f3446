"""`rotation evaluate`: the production model on external data, or the published lists on
held-out pairs, scored through the one evaluation path (flows/stages/evaluation.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from flows.analyst.importer import read_interactions
from flows.stages.evaluation import model_quality, split_pairs
from flows.storage.backends import open_storage
from flows.storage.database import Database
from models.metrics import at_k, ranking_metrics
from models.recommender import MODEL_VERSION
from models.tuning import DEFAULT_BUDGET, TunedRecommender


def evaluate_pairs(
    pairs: pl.DataFrame,
    *,
    protocol: str = "stratified",
    k: int = 10,
    seed: int = 42,
    items: pl.DataFrame | None = None,
    tune_budget: int = DEFAULT_BUDGET,
) -> dict:
    """Return the metrics of the production model on `pairs` (user_id, item_id, timestamp).

    `items` (id, genres): the items' genres, optional, as records.genres in a run. A test
    item that no train pair has is a miss; coverage is over every item of `pairs`. The
    model tunes its parameters on a per-user random validation split of the train part
    (models/tuning.py, seeded with `seed`) within `tune_budget` candidates; 0 = the fixed
    defaults. `tuning` in the result names the parameters used.
    """
    train, test = split_pairs(pairs, protocol, seed=seed)
    model = TunedRecommender(budget=tune_budget, random_state=seed)
    start = time.perf_counter()
    figures = model_quality(
        train.with_columns(pl.lit(1.0).alias("weight")),
        test,
        items,
        k,
        unknown_items="miss",
        n_items=pairs["item_id"].n_unique(),
        model=model,
    )
    seconds = time.perf_counter() - start
    figures.pop("test_users", None)
    figures["tuning"] = tuning_summary(model, tune_budget, k)
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


def tuning_summary(model: TunedRecommender, budget: int, k: int = 10) -> dict:
    """Return the parameters a fitted TunedRecommender used, with its validation scores."""
    result = model.tuning_
    params = {**result.params, "lowpass": [list(p) for p in result.params["lowpass"]]}
    summary = {"tuned": budget > 0, "budget": budget, "params": params}
    if result.score is not None:
        summary |= {
            "candidates": len(result.trials),
            f"validation_ndcg_at_{k}": round(result.score, 4),
            f"default_validation_ndcg_at_{k}": round(result.default_score, 4),
        }
    return summary


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
    return at_k(figures, k)


def evaluate_published(db: Database, test_path: Path, k: int = 10) -> dict:
    """Return the DESIGN metrics of the published 'records' lists against held-out test pairs."""
    test = read_interactions(test_path, "csv").interactions
    with open_storage(db) as storage:
        storage.check()
        lists = storage.read("evaluate/published_record_list", (k,))
        n_items = int(storage.read("evaluate/catalogue_size")["records"][0])
    figures = score_lists(lists, test, k, n_items)
    return {"source": "recommendation_data", "k": k, "test_pairs": test.height, **figures}
