"""Sparse top-K item-item neighbours: collaborative ItemKNN and neighbour-set helpers."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import all_pairs_knn

from models.base import BATCH_ELEMENTS, ItemSimilarity, Recommender, as_csr, top_n
from models.kernels.parallel import WORKER_THREADS, map_in_order
from models.kernels.ranking import top_per_row

SIMILARITIES = ("cosine", "jaccard")
#: Relative slack below implicit's k-th score when tied rows are recomputed (its float
#: rounding differs from the exact path's by ≈ 1e-7; everything within the slack is kept).
TIE_MARGIN = 1e-4
#: Sort key of an entry that is not a candidate (not positive, padding, self).
NO_KEY = np.iinfo(np.int64).max


def topk_neighbors(sim, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, cols, scores, ranks) of each row's k largest stored entries.

    Ranks run 1..k per row, by score descending then column ascending; output is ordered by
    (row, rank). Entries with score <= 0 are dropped. Works on the stored entries only.
    A CSR whose rows are about equally full (neighbour lists) is ranked row by row in
    padded arrays; anything else by one sort of all entries.
    """
    if sp.issparse(sim) and sim.format == "csr" and _pads_cheaply(sim):
        return _padded_topk(sim, k)
    coo = sp.coo_matrix(sim)
    keep = coo.data > 0
    rows, cols, data = coo.row[keep], coo.col[keep], coo.data[keep].astype(np.float32)
    rows, cols, data, ranks = top_per_row(rows, cols, data, k)
    return rows.astype(np.int64), cols.astype(np.int64), data, ranks.astype(np.int32)


def _pads_cheaply(S: sp.csr_matrix) -> bool:
    """Return True when S as padded rows (rows × widest row) is at most ≈ 4 × its entries."""
    width = int(np.diff(S.indptr).max(initial=0))
    return S.shape[0] * width <= 4 * S.nnz + (1 << 20)


def _padded_topk(S: sp.csr_matrix, k: int):
    """Return what ``topk_neighbors`` returns, ranked row by row in padded arrays."""
    data = np.where(S.data > 0, S.data, -np.inf)
    vals, cols = _padded_rows(S, data)
    top_vals, top_cols = _best_first(vals, cols, max(0, k))
    keep = top_vals > 0  # each row's kept entries come first, best first
    rows = np.broadcast_to(np.arange(S.shape[0])[:, None], keep.shape)[keep]
    ranks = np.broadcast_to(np.arange(1, keep.shape[1] + 1), keep.shape)[keep]
    return rows.astype(np.int64), top_cols[keep], top_vals[keep], ranks.astype(np.int32)


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


def _similarity_rows(X, Xt, norms, items, similarity, shrink, k, floor=None) -> sp.csr_matrix:
    """Return the top-k similarities of the given items to every item (self excluded).

    Dense blocks (popular items) go through a dense argpartition; sparse blocks (the long
    tail) only touch their stored co-occurrences. With ``floor`` (one value per item, at or
    below its k-th best score), lower scores are dropped before the top-k cut.
    """
    co = (Xt[items] @ X).tocoo()
    rows, cols = co.row, co.col
    source = items[rows]
    if similarity == "cosine":
        denom = norms[source] * norms[cols] + shrink
    else:  # jaccard on binary co-occurrence counts
        denom = norms[source] + norms[cols] - co.data + shrink
    data = co.data / np.maximum(denom, 1e-12)
    data[source == cols] = 0.0
    if floor is not None:
        keep = data >= floor[rows]
        rows, cols, data = rows[keep], cols[keep], data[keep]
    return block_topk_csr(rows, cols, data, (len(items), X.shape[1]), k)


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
    """Return the I×I top-k item-item similarity CSR (cosine or jaccard).

    Plain cosine (no shrink, no ``chunk``) runs on implicit's multithreaded ``all_pairs_knn``
    (see ``_cosine_topk``); the rest, and the rows that path cannot settle, run chunk by
    chunk here. Either way: ties by lower column, self excluded, the same neighbours.
    Memory: WORKER_THREADS (2) chunk × I blocks at once (chunk = max(64, 2^22 / I)
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
    exact = _ExactSimilarity(X, norms, similarity, shrink, k)
    if similarity == "cosine" and shrink == 0.0 and chunk is None and X.shape[1]:
        return _cosine_topk(X, norms, k, exact)
    return exact.rows(np.arange(X.shape[1]), chunk)


class _ExactSimilarity:
    """The chunked sparse-product similarity of chosen item rows (the reference path)."""

    def __init__(self, X, norms, similarity: str, shrink: float, k: int):
        self.X, self.norms = X, norms
        self.similarity, self.shrink, self.k = similarity, shrink, k

    @cached_property
    def Xt(self) -> sp.csr_matrix:
        """Return Xᵀ as CSR, built on first use (implicit's path often needs no exact row)."""
        return self.X.T.tocsr()

    def rows(self, items: np.ndarray, chunk: int | None = None, floor=None) -> sp.csr_matrix:
        """Return the top-k CSR (len(items) × I) of the given item rows, two threads.

        ``floor`` (optional, aligned with ``items``): a lower bound on each row's k-th best
        score; scores below it cannot be in the top-k and are dropped before the cut.
        """
        n_items = self.X.shape[1]
        step = chunk or max(1, min(n_items, max(64, BATCH_ELEMENTS // 8 // max(n_items, 1))))
        starts = range(0, len(items), step)

        def block(start: int) -> sp.csr_matrix:
            part = items[start : start + step]
            low = None if floor is None else floor[start : start + step]
            return _similarity_rows(
                self.X, self.Xt, self.norms, part, self.similarity, self.shrink, self.k, low
            )

        blocks = map_in_order(block, starts)  # sparsetools and numpy release the GIL
        if not blocks:
            return sp.csr_matrix((0, n_items), dtype=np.float32)
        return sp.vstack(blocks, format="csr", dtype=np.float32)


def _padded_rows(S: sp.csr_matrix, data=None) -> tuple[np.ndarray, np.ndarray]:
    """Return a CSR's rows as dense (values float32, -inf padded; columns, -1 padded) arrays.

    ``data`` (optional, aligned with S.data) replaces the stored values.
    """
    counts = np.diff(S.indptr)
    width = int(counts.max(initial=0))
    vals = np.full((S.shape[0], width), -np.inf, dtype=np.float32)
    cols = np.full((S.shape[0], width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(S.shape[0]), counts)
    position = np.arange(S.nnz) - S.indptr[rows]
    vals[rows, position] = S.data if data is None else data
    cols[rows, position] = S.indices
    return vals, cols


def _best_first(vals: np.ndarray, cols: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, columns) of each row's k best positive entries, best first, ties by
    lower column; -inf and -1 where a row has fewer.

    One sort of int64 keys per row, the float32 value's bits (ascending with a positive
    float) then the column: no argsort, and the picked keys decode to value and column.
    """
    vals = np.ascontiguousarray(vals, dtype=np.float32)
    key = ((0x7F800000 - vals.view(np.int32).astype(np.int64)) << 32) | np.maximum(cols, 0)
    key[~(vals > 0)] = NO_KEY
    key.sort(axis=1)
    key = key[:, :k]
    missing = key == NO_KEY
    top_vals = (0x7F800000 - (key >> 32)).astype(np.int32).view(np.float32)
    top_vals[missing] = -np.inf
    return top_vals, np.where(missing, -1, key & 0xFFFFFFFF)


def _implicit_rows(S: sp.coo_matrix, order: np.ndarray, want: int):
    """Return implicit's top-``want`` lists as padded (vals, cols) in the items' own rows and
    columns, and each row's count.

    ``all_pairs_knn`` writes row r's list to slots r·want … (r + 1)·want − 1 and leaves the
    slots it does not fill as (0, 0, 0.0): those are dropped here with no CSR built. Another
    layout (a later implicit) goes through a CSR, as it did before.
    """
    n_items = order.size
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    shape = (n_items, want)
    if S.nnz == n_items * want:
        owner, data, col = (a.reshape(shape) for a in (S.row, S.data, S.col))
        real = owner == np.arange(n_items, dtype=owner.dtype)[:, None]
        spare = ~real
        if not (data[spare].any() or col[spare].any()):
            # filled in place: a float64 or int64 copy of implicit's lists is 8 bytes a slot
            vals = data.astype(np.float32)
            vals[spare] = -np.inf
            cols = order[col]
            cols[spare] = -1
            return vals[position], cols[position], real.sum(axis=1)[position]
    S = sp.csr_matrix((S.data, (order[S.row], order[S.col])), shape=(n_items, n_items))
    vals, cols = _padded_rows(S)
    return vals, cols, np.diff(S.indptr)


def _popular_first(unit: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """Return (order, ``unit`` with its columns in that order): most interacted items first.

    implicit sums each item's co-occurrences in a dense array indexed by item: with the
    popular items at its front, the entries touched most share cache lines (all_pairs_knn
    at L: records 7.0 → 6.5 s, tracks 3.3 → 2.9 s). Each sum adds the same terms in the
    same order either way, so the scores mapped back through ``order`` are bitwise equal.
    """
    counts = np.bincount(unit.indices, minlength=unit.shape[1])
    order = np.argsort(-counts, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    permuted = sp.csr_matrix((unit.data, position[unit.indices], unit.indptr), unit.shape)
    permuted.sort_indices()  # each user's items ascending: the sums are swept front to back
    return order, permuted


def _cosine_topk(X, norms, k: int, exact: _ExactSimilarity) -> sp.csr_matrix:
    """Return the cosine top-k CSR through implicit's ``all_pairs_knn`` (C++, threaded).

    implicit keeps each row's k + 1 + k best (self included) but breaks ties its own way;
    a row is settled when its k-th best non-self score is above the lowest score implicit
    kept (everything it dropped is at most that), or that lowest score is not positive, or
    the row was not full. The unsettled rows (ties across the cut) are recomputed exactly,
    so the result equals the chunked path's: ties by lower column. implicit's k-th best
    non-self score is that row's true k-th best up to rounding, so the recomputation drops
    scores more than TIE_MARGIN (relative) below it before the cut: the tied rows are the
    popular ones, with ≈ 10k co-occurring items each at the L profile.
    """

    n_items = X.shape[1]
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit = (sp.csr_matrix(X, dtype=np.float64) @ sp.diags(scale)).tocsr()
    want = 2 * k + 1
    order, popular_first = _popular_first(unit)
    S = all_pairs_knn(popular_first, want, num_threads=WORKER_THREADS, show_progress=False)
    del unit, popular_first
    vals, cols, counts = _implicit_rows(S.tocoo(), order, want)
    del S  # implicit's lists, as large as the padded rows made of them
    low = np.where(np.isfinite(vals), vals, np.inf).min(axis=1, initial=np.inf)
    vals[(cols == np.arange(n_items)[:, None]) | (vals <= 0)] = -np.inf  # self, non-positive
    top_vals, top_cols = _best_first(vals, cols, k)
    kth = top_vals[:, k - 1] if top_vals.shape[1] >= k else np.full(n_items, -np.inf, np.float32)
    unsettled = np.flatnonzero((counts >= want) & (low > 0) & (kth <= low))
    keep = np.isfinite(top_vals)
    keep[unsettled] = False
    indptr = np.concatenate(([0], np.cumsum(keep.sum(axis=1))))
    result = sp.csr_matrix(
        (top_vals[keep], top_cols[keep], indptr), shape=(n_items, n_items), dtype=np.float32
    )
    if unsettled.size:
        floor = kth[unsettled].astype(np.float64) * (1.0 - TIE_MARGIN)
        redo = exact.rows(unsettled, floor=floor).tocoo()
        fix = sp.csr_matrix(
            (redo.data, (unsettled[redo.row], redo.col)), shape=result.shape, dtype=np.float32
        )
        result = (result + fix).tocsr()
    result.sort_indices()
    return result


def similar_from_csr(S: sp.csr_matrix, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, scores) of the n best stored neighbours of each item row of S."""
    sub = S[np.asarray(item_rows, dtype=np.int64)].toarray()
    sub[sub <= 0] = -np.inf
    return top_n(sub, n)


class ItemKNN(Recommender, ItemSimilarity):
    """Collaborative item-item top-k neighbours (cosine or jaccard, with shrinkage).

    Scores are ``X[u] @ S`` with S the sparse top-k similarity. Memory bound: fit
    12·nnz(X) + 16·I + 24·I·(2k + 1) bytes on the cosine path (implicit), plus the exact
    path's 32·C·I (two chunk blocks, C = max(64, 2^22 / I)) for tied rows, jaccard or
    shrinkage; recommend O(B·I + I·k).
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
