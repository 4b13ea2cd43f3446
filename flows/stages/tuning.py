"""The tuning stage: the record model's parameters chosen on the nightly's own data (its last
days held out, as the nightly's holdout), and the nightly's rule for using them.

The tune flow (flows/tune.py) fits on the interactions before the last `holdout_days` days
and validates on the records first liked in them: the same split as the nightly's holdout
(``holdout_pairs``), searched by models/tuning.py. The nightly uses the latest choice while
its data's fingerprint (users, items, interactions, density of the positive user × record
pairs) stays within a factor ``TUNED_DRIFT`` of the tuned data's on each figure; else, or
with no choice recorded, the model's defaults.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from flows.params import TUNED_DRIFT, NightlyParams, TuneParams
from flows.stages.evaluation import holdout_matrices, holdout_pairs
from flows.stages.extract import Inputs
from flows.stages.interactions import build_record_interactions, genre_matrix, to_matrix, weighting
from models.matrix import InteractionMatrix
from models.recommender import MODEL_VERSION, RotationRecommender
from models.tuning import normalised, tune

FINGERPRINT = ("users", "items", "interactions", "density")


def fingerprint(records: InteractionMatrix) -> dict:
    """Return users, items, interactions and density of the positive user × record matrix."""
    (users, items), pairs = records.shape, records.matrix.nnz
    density = pairs / (users * items) if users and items else 0.0
    return {"users": users, "items": items, "interactions": pairs, "density": density}


def drift(tuned: dict, current: dict, factor: float = TUNED_DRIFT) -> str | None:
    """Return why `current` is too far from the `tuned` fingerprint (a figure off by more
    than `factor` either way), or None when the tuned parameters still apply."""
    for name in FINGERPRINT:
        then, now = float(tuned[name]), float(current[name])
        if then <= 0 or now <= 0 or abs(math.log(now / then)) > math.log(factor):
            return f"{name} {then:g} when tuned, {now:g} now (beyond x{factor:g})"
    return None


def tuned_version(params: dict) -> str:
    """Return the model_version of a run with tuned `params`: the model's, with their hash
    (the model's alone when the tuning kept every default)."""
    defaults = normalised(RotationRecommender().get_params())
    if all(defaults.get(name) == value for name, value in normalised(params).items()):
        return MODEL_VERSION
    text = json.dumps(params, sort_keys=True, default=list)
    return f"{MODEL_VERSION}+tuned-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def choose_params(latest: pl.DataFrame, current: dict) -> tuple[dict | None, str, str]:
    """Return (model parameters or None for the defaults, model_version, why) for a run
    whose data has the `current` fingerprint, from the latest model_tuning row (if any)."""
    if latest.height == 0:
        return None, MODEL_VERSION, "defaults: no tuned parameters recorded"
    row = latest.row(0, named=True)
    if row["model_version"] != MODEL_VERSION:
        return None, MODEL_VERSION, f"defaults: parameters tuned for {row['model_version']}"
    far = drift(row, current)
    if far:
        return None, MODEL_VERSION, f"defaults: the data changed since tuning ({far})"
    params = normalised(json.loads(row["params"]))
    return params, tuned_version(params), f"tuned on {row['run_date']} (model_tuning {row['id']})"


@dataclass(frozen=True)
class TuningSplit:
    """What the search reads: the (fit, validation) pairs, the records' genres, and the
    fingerprint of the data the choice is for. No event frame: they can be freed first."""

    splits: list
    genres: object
    fingerprint: dict
    validation_users: int


def holdout_split(inputs: Inputs, params: TuneParams, now: datetime) -> TuningSplit:
    """Return the tuning split of validated inputs: the records first liked in the last
    `holdout_days` days (known users and records only) against the interactions before."""
    nightly = NightlyParams(
        run_date=params.run_date, window_days=params.window_days, holdout_days=params.holdout_days
    )
    train, test = holdout_pairs(inputs, nightly, now)
    current = fingerprint(to_matrix(build_record_interactions(inputs, now, weighting(nightly))))
    matrix, test_csr = holdout_matrices(train, test, unknown_items="drop")
    splits = [(matrix.matrix, test_csr)] if matrix.matrix.nnz and test_csr.nnz else []
    genres = genre_matrix(inputs.records, matrix) if splits else None
    users = int((test_csr.getnnz(axis=1) > 0).sum())
    return TuningSplit(splits, genres, current, users)


def tune_split(split: TuningSplit, params: TuneParams) -> dict:
    """Return the chosen parameters, validation scores and the data's fingerprint."""
    result = tune(
        split.splits,
        item_features=split.genres,
        budget=params.budget,
        max_users=params.max_users,
    )
    return {
        "params": {**result.params, "lowpass": [list(p) for p in result.params["lowpass"]]},
        "validation_ndcg": result.score,
        "default_ndcg": result.default_score,
        "candidates": len(result.trials),
        "validation_users": split.validation_users,
        **split.fingerprint,
    }
