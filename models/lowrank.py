"""Randomized truncated SVD of a sparse matrix, its products split over the worker threads.

scikit-learn's ``randomized_svd`` (Halko et al. 2011) spends nearly all its time in
sparse × dense products, which scipy runs on one core. ``sparse_randomized_svd`` is the
same algorithm, step for step (same random start, LU-normalised power iterations, QR,
SVD of the small projection, sign flip), with each product cut into row blocks computed
on WORKER_THREADS threads. Every output row is summed in the same order as scipy's own
product, so the result is bitwise that of ``sklearn.utils.extmath.randomized_svd``
(tests/test_lowrank.py checks it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip

from models.kernels.parallel import RowBlocks


def sparse_randomized_svd(
    M, n_components: int, *, n_oversamples: int = 10, n_iter: int = 7, random_state=0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (U, s, Vt) of M's top ``n_components``: sklearn's ``randomized_svd``, threaded.

    Same defaults as sklearn's (power_iteration_normalizer 'auto', transpose 'auto',
    flip_sign True). Memory: M's row blocks as CSR and Mᵀ's as CSC, copies of M's entries
    (2 × 12·nnz bytes in float64), plus O((U + I)·(k + p)).
    """
    M = sp.csr_matrix(M)
    n_samples, n_features = M.shape
    transpose = n_samples < n_features
    if transpose:
        M = M.T.tocsr()
    A, At = RowBlocks(M), RowBlocks(M.T)  # Mᵀ as CSC: scipy's own layout for Mᵀ @ Q
    Q = _range_finder(A, At, M.shape[1], n_components + n_oversamples, n_iter, random_state)
    B = (At @ Q).T  # Qᵀ M, computed as (Mᵀ Q)ᵀ like scipy's own rmatmul
    Uhat, s, Vt = linalg.svd(B, full_matrices=False, lapack_driver="gesdd")
    U = Q @ Uhat
    if transpose:
        U, Vt = svd_flip(U, Vt, u_based_decision=False)
        return Vt[:n_components].T, s[:n_components], U[:, :n_components].T
    U, Vt = svd_flip(U, Vt)
    return U[:, :n_components], s[:n_components], Vt[:n_components]


def _range_finder(A: RowBlocks, At: RowBlocks, n_cols: int, size: int, n_iter: int, seed):
    """Return an orthonormal basis of A's approximate range (sklearn's range finder)."""
    Q = check_random_state(seed).normal(size=(n_cols, size))
    if A.blocks[0].dtype == np.float32:
        Q = Q.astype(np.float32, copy=False)
    if n_iter <= 2:
        normalize = lambda x: x  # noqa: E731
    else:
        normalize = lambda x: linalg.lu(x, permute_l=True, check_finite=False)[0]  # noqa: E731
    for _ in range(n_iter):
        Q = normalize(A @ Q)
        Q = normalize(At @ Q)
    return linalg.qr(A @ Q, mode="economic", check_finite=False)[0]
