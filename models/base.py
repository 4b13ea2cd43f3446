"""The recommender interface: batched, deterministic top-n over dense score batches."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from models.kernels.parallel import map_in_order

#: Default score-batch budget: users per batch × items stays under this many floats (128 MB).
BATCH_ELEMENTS = 1 << 25


def as_csr(X) -> sp.csr_matrix:
    """Return ``X`` as a float32 CSR matrix with sorted indices (no copy when already so)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    return X


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices int32, scores float32) of each row's n best, ties by lower index.

    Entries equal to -inf are never returned: they become index -1 / score -inf padding
    at the end of the row. Uses a partition (linear time), never a full sort of a row.
    """
    scores = np.asarray(scores, dtype=np.float32)
    n_rows, n_cols = scores.shape
    m = min(n, n_cols)
    idx = np.full((n_rows, n), -1, dtype=np.int32)
    val = np.full((n_rows, n), -np.inf, dtype=np.float32)
    if m == 0 or n_rows == 0:
        return idx, val
    negated = -scores
    negated.partition(m - 1, axis=1)  # in place, values only: half argpartition's time
    threshold = -negated[:, m - 1 : m]  # each row's m-th largest value
    del negated
    greater = scores > threshold
    equal = scores == threshold
    need = m - greater.sum(axis=1, keepdims=True)
    if not (equal.sum(axis=1, keepdims=True) == need).all():  # ties at the cut: lowest index
        equal &= np.cumsum(equal, axis=1, dtype=np.int32) <= need
    rows, cols = np.nonzero(greater | equal)  # exactly m per row, columns ascending
    cols = cols.reshape(n_rows, m)
    picked = scores[rows, cols.ravel()].reshape(n_rows, m)
    order = np.argsort(-picked, axis=1, kind="stable")  # stable: ties keep index order
    cols = np.take_along_axis(cols, order, axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    finite = picked > -np.inf
    idx[:, :m] = np.where(finite, cols, -1)
    val[:, :m] = np.where(finite, picked, -np.inf)
    return idx, val


def mask_rows(scores: np.ndarray, M: sp.csr_matrix, user_rows: np.ndarray) -> None:
    """Set ``scores[b, j] = -inf`` in place wherever ``M[user_rows[b], j]`` is stored."""
    sub = M[user_rows]
    rows = np.repeat(np.arange(len(user_rows)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf


class ItemSimilarity:
    """Interface of the models that give item neighbours (content_similarity's rows)."""

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices int32, scores float32), each len(item_rows) × n, best first.

        An item is never its own neighbour; rows are padded with -1 / -inf when an item has
        fewer than n neighbours; ties go to the lower index.
        """
        raise NotImplementedError


class Recommender(BaseEstimator):
    """Interface: fit on a users×items CSR matrix, score users, recommend top-n items.

    Subclasses implement ``fit`` and ``score_users``; ``recommend`` is shared. Scoring is a
    fold-in: a user's scores depend only on their row of the X passed at recommend time.
    """

    def __sklearn_tags__(self):
        """Return scikit-learn's tags: X is a sparse, non-negative users×items matrix."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def fit(self, X, y=None):
        """Return self, fitted on the users×items interaction matrix X."""
        raise NotImplementedError

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return dense float32 scores (len(user_rows) × n_items) of the given rows of X."""
        raise NotImplementedError

    def _batch_size(self, n_items: int, batch_size: int | None) -> int:
        if batch_size is not None:
            return max(1, int(batch_size))
        return max(1, min(4096, BATCH_ELEMENTS // max(n_items, 1)))

    def recommend(
        self,
        X,
        user_rows,
        n: int,
        *,
        filter_seen: bool = True,
        exclude=None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (item indices int32, scores float32), each len(user_rows) × n, best first.

        Rows are padded with -1 / -inf when fewer than n items are eligible; ties go to the
        lower item index. ``filter_seen`` drops the items stored in the user's row of X;
        ``exclude`` (a CSR with X's shape) drops more. Users are scored in batches, so memory
        is O(WORKER_THREADS × batch_size × n_items) on top of the model's own state.
        """
        X = as_csr(X)
        user_rows = np.asarray(user_rows, dtype=np.int64)
        exclude = None if exclude is None else as_csr(exclude)
        step = self._batch_size(X.shape[1], batch_size)

        def batch(start: int) -> tuple[np.ndarray, np.ndarray]:
            rows = user_rows[start : start + step]
            scores = np.asarray(self.score_users(X, rows), dtype=np.float32)
            scores[np.isnan(scores)] = -np.inf
            if filter_seen:
                mask_rows(scores, X, rows)
            if exclude is not None:
                mask_rows(scores, exclude, rows)
            return top_n(scores, n)

        parts = map_in_order(batch, range(0, len(user_rows), step))
        if not parts:
            return np.full((0, n), -1, dtype=np.int32), np.full((0, n), -np.inf, dtype=np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
