"""Dense linear item-item models (EASE, denoising DLAE) and the popularity baseline."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from models.base import ItemSimilarity, Recommender, as_csr, top_n
from models.kernels.parallel import RowBlocks


def gram(X) -> np.ndarray:
    """Return the dense float64 item-item Gram matrix XᵀX of a sparse X."""
    X = sp.csr_matrix(X, dtype=np.float64)
    return RowBlocks(X.T.tocsr()).dense_product(X)


def _symmetrize_upper(M: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle of M onto its lower triangle, in place, block by block."""
    n = M.shape[0]
    for s in range(0, n, block):
        e = min(s + block, n)
        M[s:e, :s] = M[:s, s:e].T
        diag = M[s:e, s:e]
        diag[...] = np.triu(diag) + np.triu(diag, 1).T


def spd_inverse(A: np.ndarray) -> np.ndarray:
    """Return the inverse of a symmetric positive definite matrix, computed in A's memory."""
    if A.shape[0] == 0:
        return A
    a = A.T  # symmetric, and Fortran-ordered: LAPACK works in place without a copy
    factor, info = lapack.dpotrf(a, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (potrf info {info})")
    inv, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (potri info {info})")
    _symmetrize_upper(inv)
    return inv


def ease_weights(G: np.ndarray, l2: float) -> np.ndarray:
    """Return EASE's zero-diagonal I×I weights (float32) from the Gram matrix G."""
    A = G.copy()
    A[np.diag_indices_from(A)] += l2
    P = spd_inverse(A)
    P /= -np.diag(P).copy()[None, :]
    np.fill_diagonal(P, 0.0)
    return P.astype(np.float32)


def dlae_weights(G: np.ndarray, l2: float, dropout: float) -> np.ndarray:
    """Return DLAE weights (float32): (G + Λ)⁻¹G with Λ = l2 + p/(1-p)·diag(G).

    The dropout-denoising autoencoder of Steck (2020); written as I - (G + Λ)⁻¹Λ.
    Peak memory: G plus one more float64 I×I array plus the float32 result (20·I² bytes).
    """
    lam = l2 + dropout / (1.0 - dropout) * np.diag(G)
    A = G.copy()
    A[np.diag_indices_from(A)] += lam
    P = spd_inverse(A)
    P *= -lam[None, :]
    P[np.diag_indices_from(P)] += 1.0
    return P.astype(np.float32)


def dense_similar(B: np.ndarray, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, scores) of the n largest off-diagonal weights in rows of B."""
    item_rows = np.asarray(item_rows, dtype=np.int64)
    sub = np.array(B[item_rows], dtype=np.float32)
    sub[np.arange(len(item_rows)), item_rows] = -np.inf
    return top_n(sub, n)


class EASE(Recommender, ItemSimilarity):
    """EASE (Steck 2019): closed-form ridge item-item model with a zero diagonal.

    Memory bound: fit O(I²) float64 (three I×I arrays at peak, ≈ 24·I² bytes);
    recommend O(I² + B·I). Use only for I up to a few tens of thousands.
    """

    def __init__(self, l2: float = 500.0):
        self.l2 = l2

    def fit(self, X, y=None):
        """Return self with ``weights_`` (I×I float32) set."""
        self.weights_ = ease_weights(gram(X), self.l2)
        self.n_items_ = self.weights_.shape[0]
        return self

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return dense scores X[user_rows] @ weights_."""
        rows = as_csr(X)[np.asarray(user_rows, dtype=np.int64)]
        return np.asarray(rows @ self.weights_, dtype=np.float32)

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, scores) of the items with the largest weights from each item."""
        return dense_similar(self.weights_, item_rows, n)


class Popularity(Recommender):
    """Most-interacted items first (same list for every user). Memory bound: O(I + B·I)."""

    def fit(self, X, y=None):
        """Return self with ``item_counts_`` (stored interactions per item) set."""
        X = as_csr(X)
        self.item_counts_ = np.diff(X.tocsc().indptr).astype(np.float32)
        return self

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return the item counts repeated for each requested user."""
        return np.broadcast_to(self.item_counts_, (len(user_rows), self.item_counts_.size)).copy()
