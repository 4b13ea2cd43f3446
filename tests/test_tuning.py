"""Self-tuning (models/tuning.py): a staged search on validation data carved out of train."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from flows.analyst.evaluate import evaluate_pairs
from flows.stages.evaluation import model_quality, split_pairs
from models.recommender import RotationRecommender
from models.tuning import (
    L2_COARSE,
    L2_FINE,
    TUNED,
    TunedRecommender,
    normalised,
    significant_gain,
    tune,
    validation_split,
)

LOWPASS = ((4, 0.6), (8, 0.3))
START = {"l2": 10.0, "lowpass": LOWPASS}


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    """Return 150 users × 60 items with two taste groups and a popularity skew."""
    rng = np.random.default_rng(3)
    group = rng.integers(0, 2, 150)
    popularity = rng.pareto(1.5, 60) + 0.1
    liked = (np.arange(60)[None, :] % 2) == group[:, None]
    p = 0.05 + 0.3 * liked * popularity / popularity.max() + 0.1 * liked
    return sp.csr_matrix((rng.random((150, 60)) < p).astype(np.float32))


def genres(n_items: int) -> sp.csr_matrix:
    """Return n_items × 3 genres: item i has genre i % 3."""
    return sp.csr_matrix((np.ones(n_items), (np.arange(n_items), np.arange(n_items) % 3)))


def test_validation_split_partitions_each_users_pairs(X):
    fit, val = validation_split(X, 0.25, seed=5)
    assert (fit.multiply(val)).nnz == 0
    assert (fit + val != X).nnz == 0
    counts = np.diff(X.indptr)
    held = np.diff(val.indptr)
    assert (held[counts < 4] == 0).all()
    assert (held[counts >= 4] == np.maximum(1, np.floor(0.25 * counts[counts >= 4] + 0.5))).all()


def test_a_shared_gram_gives_the_weights_of_a_fresh_fit(X):
    F = genres(X.shape[1])
    model = RotationRecommender(**START).fit(X, item_features=F)
    grams = model.head_grams(X, F)
    model.set_params(l2=3.0, dropout=0.25, side_weight=40.0).refit_head(grams)
    fresh = RotationRecommender(**START, dropout=0.25, side_weight=40.0)
    fresh.set_params(l2=3.0).fit(X, item_features=F)
    np.testing.assert_allclose(model.weights_, fresh.weights_, rtol=1e-5, atol=1e-6)


def test_the_same_seed_gives_the_same_choice_and_trials(X):
    a = TunedRecommender(start=START, random_state=7).fit(X)
    b = TunedRecommender(start=START, random_state=7).fit(X)
    assert a.best_params_ == b.best_params_ and a.tuning_.trials == b.tuning_.trials
    users = np.arange(X.shape[0])
    np.testing.assert_array_equal(a.recommend(X, users, 5)[0], b.recommend(X, users, 5)[0])


def test_chosen_parameters_come_from_the_grid(X):
    model = TunedRecommender(start=START, random_state=1).fit(X, item_features=genres(60))
    trials = model.tuning_.trials
    assert model.best_params_ in [params for params, _ in trials]
    assert set(model.best_params_) == set(TUNED)
    factors = {1.0, *L2_COARSE} | {a * b for a in (1.0, *L2_COARSE) for b in L2_FINE}
    for params, _ in trials:
        assert any(np.isclose(params["l2"], START["l2"] * f) for f in factors)
        assert params["dropout"] in (0.25, 0.5, 0.75)
        assert params["genre_weight"] in (0.0, 0.25, 0.5, 1.0)
    best = max(score for _, score in trials)
    assert model.tuning_.score >= model.tuning_.default_score
    assert model.tuning_.score <= best
    assert model.model_.get_params()["l2"] == model.best_params_["l2"]


def test_budget_zero_is_the_default_model(X):
    tuned = TunedRecommender(budget=0).fit(X)
    assert tuned.tuning_.trials == [] and tuned.tuning_.score is None
    default = RotationRecommender().fit(X)
    assert tuned.model_.get_params() == default.get_params()
    users = np.arange(X.shape[0])
    expected = default.recommend(X, users, 8)[0]
    np.testing.assert_array_equal(tuned.recommend(X, users, 8)[0], expected)


def test_the_budget_caps_the_candidates_scored(X):
    result = tune([validation_split(X, 0.1, 2)], start=START, budget=3)
    assert len(result.trials) == 1 + 3  # the start, then three candidates


def test_tuning_reads_only_the_splits_it_is_given(X):
    """The validation pairs decide; a change of them changes the trials' scores."""
    fit, val = validation_split(X, 0.2, seed=4)
    once = tune([(fit, val)], start=START, budget=4)
    again = tune([(fit, val)], start=START, budget=4)
    assert once == again
    shuffled = sp.csr_matrix(val[np.random.default_rng(0).permutation(val.shape[0])])
    other = tune([(fit, shuffled)], start=START, budget=4)
    assert [s for _, s in other.trials] != [s for _, s in once.trials]


def test_a_gain_shared_by_the_users_is_significant():
    incumbent = np.random.default_rng(0).uniform(0.3, 0.5, 200)
    assert significant_gain(incumbent + 0.02, incumbent, min_gain=0.005)


def test_the_same_mean_gain_from_a_few_users_is_noise():
    incumbent = np.random.default_rng(0).uniform(0.3, 0.5, 200)
    diff = np.full(200, -0.03)
    diff[:5] = 2.0  # mean +0.02, as above, but five users carry it
    assert not significant_gain(incumbent + diff, incumbent, min_gain=0.005)


def test_a_steady_gain_below_min_gain_does_not_move():
    incumbent = np.full(300, 0.4)
    assert not significant_gain(incumbent + 0.001, incumbent, min_gain=0.005)
    assert significant_gain(incumbent + 0.003, incumbent, min_gain=0.005)


def test_json_round_trip_of_the_chosen_parameters():
    params = {"l2": 3.0, "lowpass": [[8, 0.6], [16, 0.2]]}
    assert normalised(params) == {"l2": 3.0, "lowpass": ((8, 0.6), (16, 0.2))}


def pair_frame(X: sp.csr_matrix) -> pl.DataFrame:
    """Return X's pairs as (user_id, item_id, timestamp) rows, ids from 1."""
    coo = X.tocoo()
    stamps = [datetime(2026, 1, 1) + timedelta(minutes=int(i)) for i in range(coo.nnz)]
    return pl.DataFrame({"user_id": coo.row + 1, "item_id": coo.col + 1, "timestamp": stamps}).cast(
        {"user_id": pl.Int64, "item_id": pl.Int64}
    )


def test_evaluation_never_reads_the_test_split_to_tune(X):
    """Test pairs swapped for others: the same tuning, other figures."""
    train, test = split_pairs(pair_frame(X), "stratified", seed=42)
    train = train.with_columns(pl.lit(1.0).alias("weight"))
    rng = np.random.default_rng(0)
    poisoned = test.with_columns(pl.Series("item_id", rng.permutation(test["item_id"].to_numpy())))
    runs = []
    for pairs in (test, poisoned):
        model = TunedRecommender(budget=5, start=START, random_state=42)
        runs.append((model_quality(train, pairs, None, model=model), model.tuning_))
    assert runs[0][1] == runs[1][1] and runs[0][1].trials
    assert runs[0][0]["ndcg_at_10"] != runs[1][0]["ndcg_at_10"]


def test_evaluate_prints_the_parameters_it_used(X):
    pairs = pair_frame(X)
    tuned = evaluate_pairs(pairs, tune_budget=3)
    assert tuned["tuning"]["tuned"] and tuned["tuning"]["candidates"] == 4
    fixed = evaluate_pairs(pairs, tune_budget=0)
    defaults = RotationRecommender().get_params()
    assert fixed["tuning"]["params"]["l2"] == defaults["l2"] and not fixed["tuning"]["tuned"]
    again = evaluate_pairs(pairs, tune_budget=3)
    assert again == {**tuned, "fit_recommend_seconds": again["fit_recommend_seconds"]}
