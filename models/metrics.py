"""Top-k ranking metrics for implicit feedback (binary relevance)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _hits(recommended: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """Return a bool U×k array: is recommended[u, j] in the user's test set."""
    n_users, k = recommended.shape
    rows = np.repeat(np.arange(n_users), k)
    cols = recommended.ravel()
    valid = cols >= 0
    hit = np.zeros(n_users * k, dtype=bool)
    if valid.any():
        hit[valid] = np.asarray(test[rows[valid], cols[valid]]).ravel() > 0
    return hit.reshape(n_users, k)


def at_k(figures: dict, k: int) -> dict:
    """Return `figures` with each `_at_k` name spelled with its k (precision_at_10, ...)."""
    return {name.replace("_at_k", f"_at_{k}"): value for name, value in figures.items()}


def user_metrics(recommended: np.ndarray, test: sp.csr_matrix, k: int) -> dict[str, np.ndarray]:
    """Return per-user arrays (one value per row of ``test``): precision, recall, nDCG and AP
    at k, and ``active`` (the user has a test item; the others' values are not defined).

    The same arithmetic as ``ranking_metrics``, whose means are these arrays' over active
    users: a paired comparison of two models (bench/robustness.py) reads them.
    """
    recommended = np.asarray(recommended)[:, :k]
    test = sp.csr_matrix(test)
    n_test = np.diff(test.indptr)
    if recommended.shape[0] != test.shape[0]:
        raise ValueError("recommended and test have different numbers of users")
    hit = _hits(recommended, test)
    n_hits = hit.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hit * discounts[: hit.shape[1]]).sum(axis=1)
    ideal_len = np.minimum(n_test, k)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_len]
    precision_at = np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1)
    ap = (precision_at * hit).sum(axis=1)
    return {
        "precision_at_k": n_hits / k,
        "recall_at_k": n_hits / np.maximum(n_test, 1),
        "ndcg_at_k": dcg / np.maximum(idcg, 1e-12),
        "map_at_k": ap / np.maximum(ideal_len, 1),
        "active": n_test > 0,
    }


def ranking_metrics(
    recommended: np.ndarray, test: sp.csr_matrix, k: int, n_items: int
) -> dict[str, float]:
    """Return precision/recall/nDCG/MAP at k averaged over users with a test item, and coverage.

    ``recommended`` is U×(≥k) item indices padded with -1, row u aligned with ``test`` row u.
    Recall = hits / |test|; nDCG uses binary gain and IDCG over min(k, |test|);
    MAP divides AP by min(k, |test|); coverage = distinct recommended items / n_items.
    """
    per_user = user_metrics(recommended, test, k)
    active = per_user.pop("active")
    recs = np.asarray(recommended)[:, :k]
    recs = recs[recs >= 0]

    def mean(values: np.ndarray) -> float:
        return float(values[active].mean()) if active.any() else 0.0

    return {
        **{name: mean(values) for name, values in per_user.items()},
        "coverage": float(np.unique(recs).size / n_items) if n_items else 0.0,
        "users": int(active.sum()),
    }
