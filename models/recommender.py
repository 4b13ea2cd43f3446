"""The production recommender: denoised linear head + low-rank filter + sparse long tail.

``RotationRecommender`` is what the nightly run uses for record and track recommendations
and what ``rotation evaluate`` scores. Its defaults come from ``bench/tune.py`` (validation
split carved out of the training part of MovieLens 100k; see that script's docstring).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from models.base import Recommender, as_csr
from models.linear import dlae_weights, gram
from models.neighbors import ItemKNN

MODEL_VERSION = "rotation-dlae-lowpass-knn-1"


def _zscore(scores: np.ndarray, ref: np.ndarray, seen: sp.csr_matrix | None = None) -> np.ndarray:
    """Return scores standardised per row by the mean / std of ``ref``'s unseen entries.

    ``seen`` (rows × ref columns, optional) marks entries left out of the statistics.
    """
    total = ref.sum(axis=1, dtype=np.float64)
    total_sq = np.square(ref, dtype=np.float64).sum(axis=1)
    count = np.full(ref.shape[0], ref.shape[1], dtype=np.float64)
    if seen is not None and seen.nnz:
        rows = np.repeat(np.arange(ref.shape[0]), np.diff(seen.indptr))
        vals = ref[rows, seen.indices].astype(np.float64)
        total -= np.bincount(rows, vals, minlength=ref.shape[0])
        total_sq -= np.bincount(rows, vals * vals, minlength=ref.shape[0])
        count -= np.diff(seen.indptr)
    count = np.maximum(count, 1.0)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    out = scores - mean.astype(np.float32)[:, None]  # float32: no float64 B×I temporaries
    out /= np.maximum(std, 1e-12).astype(np.float32)[:, None]
    return out


def dense_item_set(counts: np.ndarray, max_items: int) -> np.ndarray:
    """Return the sorted indices of the ``max_items`` most-interacted items (ties: lower index)."""
    if counts.size <= max_items:
        return np.arange(counts.size)
    order = np.lexsort((np.arange(counts.size), -counts))
    return np.sort(order[:max_items])


class RotationRecommender(Recommender):
    """DLAE on the head items, blended with a low-rank filter and an ItemKNN long tail.

    Score of user u, item j (each part z-scored per user over the head items' scores,
    the user's own items left out of the statistics):
      head j:  z(x_u · B)_j + lowrank_weight · z(lowpass)_j
      tail j:  tail_weight · z(x_u · S)_j + lowrank_weight · z(lowpass)_j
    B = DLAE (Steck 2020) on the ``max_dense_items`` most-interacted items, fitted on the
    popularity-normalised input X·D^-c (c = ``input_exponent``) with ridge λ = l2 and
    dropout emphasis p, scored as (x_u D^-c) B; lowpass = x_u D⁻ᵇ V Vᵀ Dᵇ with V the top
    ``rank`` right singular vectors of Du^-½ X D^-b (D = item counts, Du = user counts);
    S = ItemKNN cosine top-``tail_k``. Users with no history get popularity.

    Memory bound in bytes (D = min(I, max_dense_items), r = rank, K = tail_k, B = users
    per batch, B·I ≤ 2^25 by default): fit ≈ 20·D² (float64 Gram + system/inverse in place +
    float32 weights) + O(nnz(X)) + 8·(U + I)·(r + 10) (SVD) + 12·I·K + 24·2^22 (kNN chunk);
    model kept ≈ 4·D² + 8·I·r + 12·I·K; recommend adds ≈ 24·B·I (≈ 0.8 GB).
    D = 10,000 gives ≈ 2 GB at fit, 0.4 GB kept.
    """

    def __init__(
        self,
        l2: float = 300.0,
        dropout: float = 0.5,
        input_exponent: float = 0.1,
        rank: int = 16,
        lowrank_weight: float = 0.6,
        item_exponent: float = 0.3,
        max_dense_items: int = 10_000,
        tail_k: int = 50,
        tail_weight: float = 1.0,
        random_state: int = 0,
    ):
        self.l2 = l2
        self.dropout = dropout
        self.input_exponent = input_exponent
        self.rank = rank
        self.lowrank_weight = lowrank_weight
        self.item_exponent = item_exponent
        self.max_dense_items = max_dense_items
        self.tail_k = tail_k
        self.tail_weight = tail_weight
        self.random_state = random_state

    def fit(self, X, y=None):
        """Return self with the head weights, low-rank factors and tail neighbours fitted."""
        X = as_csr(X)
        n_items = X.shape[1]
        self.item_counts_ = np.diff(X.tocsc().indptr).astype(np.float64)
        self.dense_items_ = dense_item_set(self.item_counts_, self.max_dense_items)
        self.n_items_ = n_items
        self.input_scale_ = (np.maximum(self.item_counts_, 1.0) ** -self.input_exponent)[
            self.dense_items_
        ].astype(np.float32)
        G = gram(X[:, self.dense_items_] @ sp.diags(self.input_scale_))
        self.weights_ = dlae_weights(G, self.l2, self.dropout)
        del G
        self._fit_lowrank(X)
        self.tail_items_ = np.setdiff1d(np.arange(n_items), self.dense_items_)
        self.knn_ = ItemKNN(k=self.tail_k, similarity="cosine").fit(X)
        pop = np.log1p(self.item_counts_)
        self.popularity_ = ((pop - pop.mean()) / max(pop.std(), 1e-12)).astype(np.float32)
        return self

    def _fit_lowrank(self, X: sp.csr_matrix) -> None:
        user_counts = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
        item_counts = np.maximum(self.item_counts_, 1.0)
        R = sp.diags(user_counts**-0.5) @ X @ sp.diags(item_counts**-self.item_exponent)
        rank = max(1, min(self.rank, min(X.shape) - 1))
        _, _, vt = randomized_svd(R, rank, n_iter=7, random_state=self.random_state)
        self.item_factors_ = (vt.T * (item_counts**-self.item_exponent)[:, None]).astype(np.float32)
        self.item_loadings_ = (vt.T * (item_counts**self.item_exponent)[:, None]).astype(np.float32)

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return dense blended scores (len(user_rows) × n_items), float32."""
        rows = as_csr(X)[np.asarray(user_rows, dtype=np.int64)]
        dense = self.dense_items_
        low = np.asarray(rows @ self.item_factors_, dtype=np.float32) @ self.item_loadings_.T
        seen = rows[:, dense]
        scores = self.lowrank_weight * _zscore(low, low[:, dense], seen)
        del low
        head = np.asarray((seen @ sp.diags(self.input_scale_)) @ self.weights_, dtype=np.float32)
        scores[:, dense] += _zscore(head, head, seen)
        del head
        if self.tail_items_.size:
            knn = self.knn_.score_users(rows, np.arange(rows.shape[0]))
            tail = self.tail_items_
            scores[:, tail] += self.tail_weight * _zscore(knn[:, tail], knn[:, dense], seen)
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            scores[empty] = self.popularity_
        return scores

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, scores) of each item's n nearest collaborative (cosine) neighbours."""
        return self.knn_.similar_items(item_rows, n)
