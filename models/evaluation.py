"""Offline evaluation: the DESIGN protocol split and one call that fits, recommends, scores."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from models.base import as_csr
from models.metrics import ranking_metrics
from models.split import stratified_split


def pairs_to_csr(user_idx, item_idx, shape) -> sp.csr_matrix:
    """Return a binary float32 CSR of the given (user, item) index pairs (duplicates → 1)."""
    data = np.ones(len(user_idx), dtype=np.float32)
    X = sp.csr_matrix((data, (user_idx, item_idx)), shape=shape, dtype=np.float32)
    X.data[:] = 1.0
    X.sort_indices()
    return X


def protocol_split(
    user_idx,
    item_idx,
    *,
    shape=None,
    test_share: float = 0.25,
    seed: int = 42,
    min_interactions: int = 4,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return (train, test) binary CSR matrices of unique pairs split per the DESIGN protocol."""
    user_idx = np.asarray(user_idx, dtype=np.int64)
    item_idx = np.asarray(item_idx, dtype=np.int64)
    if shape is None:
        shape = (int(user_idx.max()) + 1, int(item_idx.max()) + 1)
    pairs = np.unique(user_idx * shape[1] + item_idx)  # each (user, item) pair once
    users, items = pairs // shape[1], pairs % shape[1]
    keep, test = stratified_split(
        users, items, test_share=test_share, seed=seed, min_interactions=min_interactions
    )
    train = pairs_to_csr(users[keep & ~test], items[keep & ~test], shape)
    return train, pairs_to_csr(users[test], items[test], shape)


def evaluate(model, train, test, k: int = 10) -> dict:
    """Return ranking metrics at k plus fit_seconds and recommend_seconds for ``model``.

    The model is fitted on ``train``; users with at least one test item get k
    recommendations with their train items removed.
    """
    train, test = as_csr(train), as_csr(test)
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    start = time.perf_counter()
    recommended, _ = model.recommend(train, users, k, filter_seen=True)
    recommend_seconds = time.perf_counter() - start
    result = ranking_metrics(recommended, test[users], k, train.shape[1])
    result.update(fit_seconds=fit_seconds, recommend_seconds=recommend_seconds)
    return result
