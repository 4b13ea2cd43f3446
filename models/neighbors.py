"""Sparse top-K item-item neighbours: collaborative ItemKNN and neighbour-set helpers."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from models.base import BATCH_ELEMENTS, Recommender, as_csr, top_n

SIMILARITIES = ("cosine", "jaccard")
#: Worker threads for the chunked similarity (memory: this many chunk blocks at once).
SIMILARITY_THREADS = min(2, os.cpu_count() or 1)


def topk_neighbors(sim, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, cols, scores, ranks) of each row's k largest stored entries.

    Ranks run 1..k per row, by score descending then column ascending; output is ordered by
    (row, rank). Entries with score <= 0 are dropped. Works on the stored entries only.
    """
    coo = sp.coo_matrix(sim)
    keep = coo.data > 0
    rows, cols, data = coo.row[keep], coo.col[keep], coo.data[keep].astype(np.float32)
    order = np.lexsort((cols, -data, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    starts = np.searchsorted(rows, rows, side="left")
    ranks = np.arange(len(rows)) - starts + 1
    sel = ranks <= k
    return (
        rows[sel].astype(np.int64),
        cols[sel].astype(np.int64),
        data[sel],
        ranks[sel].astype(np.int32),
    )


def topk_csr(sim, k: int) -> sp.csr_matrix:
    """Return ``sim`` pruned to each row's top-k positive entries, as float32 CSR."""
    rows, cols, scores, _ = topk_neighbors(sim, k)
    return sp.csr_matrix((scores, (rows, cols)), shape=sim.shape, dtype=np.float32)


def dense_topk_csr(block: np.ndarray, k: int) -> sp.csr_matrix:
    """Return a dense block pruned to each row's top-k positive entries, as float32 CSR.

    Ties go to the lower column. A row's k-th largest value is at least the k-th largest of
    its segment maxima (k segments reach it), so only the entries at or above that bound
    (a few per segment) are sorted: a few linear passes instead of a partition of each row.
    """
    block = np.asarray(block, dtype=np.float32)
    n_rows, n_cols = block.shape
    if k <= 0 or n_rows == 0 or n_cols == 0:
        return sp.csr_matrix(block.shape, dtype=np.float32)
    segments = min(n_cols, 4 * k)
    width = -(-n_cols // segments)
    maxima = np.maximum.reduceat(block, np.arange(0, n_cols, width), axis=1)
    m = maxima.shape[1]
    bound = np.partition(maxima, m - min(k, m), axis=1)[:, m - min(k, m)]
    rows, cols = np.nonzero((block >= bound[:, None]) & (block > 0))
    vals = block[rows, cols]
    return topk_csr(sp.coo_matrix((vals, (rows, cols)), shape=block.shape), k)


def _similarity_chunk(X, Xt, norms, start, stop, similarity, shrink, k) -> sp.csr_matrix:
    """Return the top-k similarities of items start:stop to every item (self excluded).

    Dense blocks (popular items) go through a dense argpartition; sparse blocks (the long
    tail) only touch their stored co-occurrences.
    """
    co = (Xt[start:stop] @ X).tocoo()
    rows, cols = co.row, co.col
    if similarity == "cosine":
        denom = norms[rows + start] * norms[cols] + shrink
    else:  # jaccard on binary co-occurrence counts
        denom = norms[rows + start] + norms[cols] - co.data + shrink
    data = co.data / np.maximum(denom, 1e-12)
    data[rows + start == cols] = 0.0
    return block_topk_csr(rows, cols, data, (stop - start, X.shape[1]), k)


def block_topk_csr(rows, cols, data, shape, k: int) -> sp.csr_matrix:
    """Return the row-wise top-k positive entries of a COO block as float32 CSR.

    A block over 5 % full is densified and cut with argpartition; a sparser one is cut by
    sorting its stored entries. Both give the same result (ties: lower column first).
    """
    if len(data) > 0.05 * shape[0] * shape[1]:
        block = np.zeros(shape, dtype=np.float32)
        block[rows, cols] = data
        return dense_topk_csr(block, k)
    return topk_csr(sp.coo_matrix((data, (rows, cols)), shape=shape), k)


def item_similarity_topk(
    X, k: int, *, similarity: str = "cosine", shrink: float = 0.0, chunk: int | None = None
) -> sp.csr_matrix:
    """Return the I×I top-k item-item similarity CSR (cosine or jaccard), chunk by chunk.

    Memory: SIMILARITY_THREADS (2) chunk × I blocks at once (chunk = max(64, 2^22 / I)
    items; dense float32 only when over 5 % full) plus O(I × k) for the result; never a
    dense I×I matrix. Chunks run on two threads and are stacked in order (deterministic).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}")
    X = as_csr(X)
    if similarity == "jaccard":
        X = X.copy()
        X.data[:] = 1.0
        norms = np.asarray(X.sum(axis=0)).ravel().astype(np.float64)
    else:
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel().astype(np.float64))
    Xt = X.T.tocsr()
    n_items = X.shape[1]
    step = chunk or max(1, min(n_items, max(64, BATCH_ELEMENTS // 8 // max(n_items, 1))))
    starts = range(0, n_items, step)

    def chunk_at(start: int) -> sp.csr_matrix:
        stop = min(start + step, n_items)
        return _similarity_chunk(X, Xt, norms, start, stop, similarity, shrink, k)

    if len(starts) > 1 and SIMILARITY_THREADS > 1:  # sparsetools and numpy release the GIL
        with ThreadPoolExecutor(SIMILARITY_THREADS) as pool:
            blocks = list(pool.map(chunk_at, starts))  # in order: deterministic
    else:
        blocks = [chunk_at(start) for start in starts]
    return (
        sp.vstack(blocks, format="csr", dtype=np.float32)
        if blocks
        else sp.csr_matrix((0, 0), dtype=np.float32)
    )


def similar_from_csr(S: sp.csr_matrix, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, scores) of the n best stored neighbours of each item row of S."""
    sub = S[np.asarray(item_rows, dtype=np.int64)].toarray()
    sub[sub <= 0] = -np.inf
    return top_n(sub, n)


def hybrid_neighbors(collab, content, alpha: float = 0.5, k: int | None = None) -> sp.csr_matrix:
    """Return the top-k CSR of ``alpha * collab + (1 - alpha) * content`` neighbour scores.

    Both inputs are I×I top-K neighbour sets (CSR, or (rows, cols, scores) arrays with the
    same shape given as a 4-tuple ending in n_items); missing pairs count as 0. Cosine scores
    share the [0, 1] scale, so the weighted sum is taken as is. ``k`` defaults to the largest
    neighbour count of either input row.
    """
    collab, content = _as_neighbor_csr(collab), _as_neighbor_csr(content)
    mixed = (alpha * collab + (1.0 - alpha) * content).tocsr()
    if k is None:
        k = int(max(np.diff(collab.indptr).max(initial=0), np.diff(content.indptr).max(initial=0)))
    return topk_csr(mixed, k)


def _as_neighbor_csr(neigh) -> sp.csr_matrix:
    if sp.issparse(neigh):
        return sp.csr_matrix(neigh, dtype=np.float32)
    rows, cols, scores, n_items = neigh
    return sp.csr_matrix((scores, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)


class ItemKNN(Recommender):
    """Collaborative item-item top-k neighbours (cosine or jaccard, with shrinkage).

    Scores are ``X[u] @ S`` with S the sparse top-k similarity. Memory bound:
    fit O(nnz(X) + 32·C·I + 12·I·k) bytes (two chunk blocks at once, chunk C =
    max(64, 2^22 / I)); recommend O(B·I + I·k).
    """

    def __init__(self, k: int = 50, shrink: float = 0.0, similarity: str = "cosine"):
        self.k = k
        self.shrink = shrink
        self.similarity = similarity

    def fit(self, X, y=None):
        """Return self with ``similarity_`` (I×I top-k CSR) and ``n_items_`` set."""
        X = as_csr(X)
        self.similarity_ = item_similarity_topk(
            X, self.k, similarity=self.similarity, shrink=self.shrink
        )
        self.n_items_ = X.shape[1]
        return self

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return dense scores: sum of the neighbour scores of each user's items."""
        rows = as_csr(X)[np.asarray(user_rows, dtype=np.int64)]
        return np.asarray((rows @ self.similarity_).toarray(), dtype=np.float32)

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, scores) of each item's n nearest neighbours."""
        return similar_from_csr(self.similarity_, item_rows, n)
