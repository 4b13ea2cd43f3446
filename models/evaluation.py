"""Offline evaluation: fit a model on a train matrix, recommend, score against a test matrix.

The one scoring path of the project: `rotation evaluate`, the nightly run's temporal
holdout and bench/quality.py all end here (flows/stages/evaluation.py codes their id pairs
into the matrices).
"""

from __future__ import annotations

import time

import numpy as np

from models.base import as_csr
from models.metrics import ranking_metrics, user_metrics


def evaluate(
    model,
    train,
    test,
    k: int = 10,
    *,
    users=None,
    n_items: int | None = None,
    fit_params: dict | None = None,
) -> dict:
    """Return ranking metrics at k plus fit_seconds and recommend_seconds for ``model``.

    The model is fitted on ``train`` (users × items; ``fit_params`` passed to ``fit``). The
    ``users`` rows (default: every row with a test item) get k recommendations with their
    train items removed. ``test`` has train's rows; it may have more columns than train:
    test items the model cannot know, which count as misses. Coverage is over ``n_items``
    (default: train's columns).
    """
    train = as_csr(train)
    start = time.perf_counter()
    model.fit(train, **(fit_params or {}))
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = score_fitted(model, train, test, k, users=users, n_items=n_items)
    result.update(fit_seconds=fit_seconds, recommend_seconds=time.perf_counter() - start)
    return result


def score_fitted(model, train, test, k: int = 10, *, users=None, n_items: int | None = None):
    """Return the ranking metrics at k of an already fitted ``model`` (as ``evaluate``'s)."""
    train = as_csr(train)
    test = as_csr(test)
    if users is None:
        users = np.flatnonzero(np.diff(test.indptr) > 0)
    recommended, _ = model.recommend(train, users, k, filter_seen=True)
    return ranking_metrics(recommended, test[users], k, n_items or train.shape[1])


def score_users(model, train, test, k: int = 10, *, users=None) -> dict[str, np.ndarray]:
    """Return per-user metrics at k of a fitted ``model`` (``user_metrics``' arrays, one per
    scored user) with ``users``, the train rows scored (default: every row with a test item).

    Their means are ``score_fitted``'s figures for the same users: a paired comparison of
    two models on one split reads these.
    """
    train = as_csr(train)
    test = as_csr(test)
    if users is None:
        users = np.flatnonzero(np.diff(test.indptr) > 0)
    recommended, _ = model.recommend(train, users, k, filter_seen=True)
    return {"users": np.asarray(users), **user_metrics(recommended, test[users], k)}
