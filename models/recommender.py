"""The production recommender: denoised linear head + low-rank filter + sparse long tail.

``RotationRecommender`` is what the nightly run uses for record and track recommendations
and what ``rotation evaluate`` scores. Its defaults come from ``bench/tune.py`` (validation
splits carved out of the training part of MovieLens 100k; see that script's docstring).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from models.base import BATCH_ELEMENTS, ItemSimilarity, Recommender, as_csr, top_n
from models.kernels.parallel import map_in_order
from models.kernels.ranking import top_per_row
from models.linear import dlae_weights, gram
from models.lowrank import sparse_randomized_svd
from models.neighbors import ItemKNN

MODEL_VERSION = "rotation-dlae-genres-lowpass3-knn-5"

#: Relative slack of the float64 pre-test on raw kNN sums (see _reachable).
RAW_SLACK = 1e-5

#: Relative spread below which a low-pass or lift term counts as flat in a row (z = 0).
FLAT_TERM = 1e-6

#: Default cap on the dense head's scoring work, nnz(X) · D multiply-adds (see dense_size).
HEAD_WORK = float(2**34)


class HeadGrams(NamedTuple):
    """The head's Gram XᵀX of the scaled head columns, and TᵀT of its genre rows (or None)."""

    items: np.ndarray
    genres: np.ndarray | None


class LowRankTerm(NamedTuple):
    """Scores A @ Q (B × r rows, r × D basis), weighted by prefix: Σ w · z(A[:, :k] @ Q[:k])."""

    A: np.ndarray
    Q: np.ndarray
    prefixes: tuple[tuple[int, float], ...]  # (k, w)


def _seen_prefix_values(term: LowRankTerm, seen: sp.csr_matrix, rows, chunk: int = 1 << 15):
    """Return A[:, :k] @ Q[:k] at seen's entries (``rows``: each entry's row), one column per
    prefix k: nnz × prefixes."""
    ends = np.array([k for k, _ in term.prefixes]) - 1
    out = np.empty((seen.nnz, len(ends)))
    loadings = np.ascontiguousarray(term.Q.T)  # rows gathered whole: 4 × faster than Q's columns
    for start in range(0, seen.nnz, chunk):
        part = slice(start, start + chunk)
        products = term.A[rows[part]]
        products *= loadings[seen.indices[part]]
        out[part] = np.cumsum(products, axis=1)[:, ends]
    return out


def _standardising(term: LowRankTerm, seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Return (c, offset) with Σ w · z(A[:, :k] @ Q[:k]) = (A · c) @ Q − offset, row by row.

    z standardises a row over its unseen columns, as ``_zscore`` does; the sums come from
    Q's row sums and k × k Gram matrix and from the products at the seen entries. c holds
    Σ w / std over the prefixes covering each column, offset Σ w · mean / std. A prefix
    flat over a row's unseen columns (std ≤ FLAT_TERM × their root mean square, as with
    one unseen column) counts 0 there instead of rounding noise divided by ≈ 0.
    """
    counts = np.diff(seen.indptr)
    rows = np.repeat(np.arange(seen.shape[0]), counts)
    unseen = term.Q.shape[1] - counts.astype(np.float64)
    on_seen = _seen_prefix_values(term, seen, rows)
    gram, sums = term.Q @ term.Q.T, term.Q.sum(axis=1)
    coef, offset = np.zeros(term.A.shape), np.zeros(seen.shape[0])
    for i, (k, w) in enumerate(term.prefixes):
        A = term.A[:, :k]
        total = A @ sums[:k] - np.bincount(rows, on_seen[:, i], minlength=seen.shape[0])
        total_sq = np.einsum("ij,ij->i", A @ gram[:k, :k], A)
        total_sq -= np.bincount(rows, on_seen[:, i] ** 2, minlength=seen.shape[0])
        mean, std = _row_stats(total, total_sq, unseen)
        rms = np.sqrt(np.maximum(total_sq, 0.0) / np.maximum(unseen, 1.0))
        scale = np.where(std > FLAT_TERM * rms, w / std, 0.0)
        coef[:, :k] += scale[:, None]
        offset += scale * mean
    return coef, offset


def _add_lowrank_terms(scores: np.ndarray, terms, seen: sp.csr_matrix, block: int = 2048):
    """Add each term's Σ w · z(A[:, :k] @ Q[:k]) to ``scores`` (B × D float32) in place.

    All terms at once as one product [A_t · c_t] @ [Q_t] − Σ offset_t (``_standardising``),
    in float64 blocks of rows: no term is ever B × D, a row's values do not depend on its
    batch.
    """
    if not terms:
        return
    parts = [(term, *_standardising(term, seen)) for term in terms]
    A = np.hstack([term.A * coef for term, coef, _ in parts])
    Q = np.vstack([term.Q for term, _, _ in parts])
    offset = sum(offset for _, _, offset in parts)
    for start in range(0, A.shape[0], block):
        part = slice(start, start + block)
        scores[part] += (A[part] @ Q - offset[part, None]).astype(np.float32)


def _row_stats(total, total_sq, count) -> tuple[np.ndarray, np.ndarray]:
    count = np.maximum(count, 1.0)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean, np.maximum(std, 1e-12)


def _seen_values(ref: np.ndarray, seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(ref.shape[0]), np.diff(seen.indptr))
    return rows, ref[rows, seen.indices].astype(np.float64)


def _zscore(scores: np.ndarray, ref: np.ndarray, seen: sp.csr_matrix | None = None) -> np.ndarray:
    """Return scores standardised per row by the mean / std of ``ref``'s unseen entries.

    ``seen`` (rows × ref columns, optional) marks entries left out of the statistics.
    """
    total = ref.sum(axis=1, dtype=np.float64)
    total_sq = np.square(ref, dtype=np.float64).sum(axis=1)
    count = np.full(ref.shape[0], ref.shape[1], dtype=np.float64)
    if seen is not None and seen.nnz:
        rows, vals = _seen_values(ref, seen)
        total -= np.bincount(rows, vals, minlength=ref.shape[0])
        total_sq -= np.bincount(rows, vals * vals, minlength=ref.shape[0])
        count -= np.diff(seen.indptr)
    mean, std = _row_stats(total, total_sq, count)
    out = scores - mean.astype(np.float32)[:, None]  # float32: no float64 B×I temporaries
    out /= std.astype(np.float32)[:, None]
    return out


def _sparse_stats(K: sp.csr_matrix, seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Return per-row (mean, std) of a sparse B×D block over its columns not in ``seen``.

    Absent entries count as 0; ``seen`` has K's shape. Same statistics as ``_zscore`` would
    take from K densified (float64 sums).
    """
    data = K.data.astype(np.float64)
    rows = np.repeat(np.arange(K.shape[0]), np.diff(K.indptr))
    total = np.bincount(rows, data, minlength=K.shape[0])
    total_sq = np.bincount(rows, data * data, minlength=K.shape[0])
    if seen.nnz:
        srows = np.repeat(np.arange(K.shape[0]), np.diff(seen.indptr))
        # read through a dense copy: K (a product) has unsorted columns, so sampling the
        # sparse matrix would scan a row per seen entry; the B × D copy is the head's size
        on_seen = K.toarray()[srows, seen.indices].astype(np.float64)
        total -= np.bincount(srows, on_seen, minlength=K.shape[0])
        total_sq -= np.bincount(srows, on_seen * on_seen, minlength=K.shape[0])
    count = K.shape[1] - np.diff(seen.indptr).astype(np.float64)
    return _row_stats(total, total_sq, count)


def _item_features(features, n_items: int) -> sp.csr_matrix | None:
    """Return item features as a CSR 0/1 matrix with one row per item, or None for none."""
    if features is None:
        return None
    F = sp.csr_matrix(features, dtype=np.float64)
    if F.shape[0] != n_items:
        raise ValueError(f"item_features has {F.shape[0]} rows; X has {n_items} items")
    F.data = (F.data != 0).astype(np.float64)
    F.eliminate_zeros()
    return None if F.nnz == 0 else F


def dense_item_set(counts: np.ndarray, max_items: int) -> np.ndarray:
    """Return the sorted indices of the ``max_items`` most-interacted items (ties: lower index)."""
    if counts.size <= max_items:
        return np.arange(counts.size)
    order = np.lexsort((np.arange(counts.size), -counts))
    return np.sort(order[:max_items])


def dense_size(n_items: int, nnz: int, max_items: int, head_work: float = HEAD_WORK) -> int:
    """Return D, the number of items the dense linear head covers.

    Rule: D = min(I, max_items, max(1024, head_work / nnz(X))). Scoring every user's history
    against the D×D head weights costs nnz(X)·D multiply-adds (and fitting them O(D³)), so
    the head is as wide as that budget allows: all 1,682 items of MovieLens 100k (75k pairs),
    ≈ 2,960 of 50k items at 5.8M pairs, ≈ 1,720 at 10M pairs; never fewer than 1,024.
    """
    budget = max(1024, int(head_work // max(nnz, 1)))
    return int(min(n_items, max_items, budget))


def genre_lift(features: sp.csr_matrix) -> np.ndarray:
    """Return the genres × items lift weights (float64) of an items × genres 0/1 matrix.

    Item j's weight on genre g is its share of j's genres over g's share of all genre
    labels: a user's genre counts times these weights is how much more than the catalogue
    the user's history leans to the item's genres. Items or genres with no label weigh 0.
    """
    F = sp.csr_matrix(features, dtype=np.float64)
    per_item = np.asarray(F.sum(axis=1)).ravel()
    per_genre = np.asarray(F.sum(axis=0)).ravel()
    share = per_genre / max(per_genre.sum(), 1.0)
    inv_item = np.divide(1.0, per_item, out=np.zeros_like(per_item), where=per_item > 0)
    inv_share = np.divide(1.0, share, out=np.zeros_like(share), where=share > 0)
    return (sp.diags(inv_item) @ F @ sp.diags(inv_share)).T.toarray()


class RotationRecommender(Recommender, ItemSimilarity):
    """DLAE on the head items with genre side information, blended with low-pass filters and
    a genre-lift score, and an ItemKNN long tail.

    Score of user u, item j (each part z-scored per user over the head items' scores, the
    user's own items left out of the statistics; a low-rank part flat over them adds 0):
      head j:  z(x_u · B)_j + Σ_k w_k · z(lowpass_k)_j + genre_weight · z(lift)_j
      tail j:  tail_weight · z(x_u · S)_j
    B = DLAE (Steck 2020) on the D most-interacted items (D from ``dense_size``: the scoring
    work nnz(X)·D is capped by ``head_work``, and D ≤ ``max_dense_items``), fitted on the
    popularity-normalised input X·C^-c (C = item counts, c = ``input_exponent``) with ridge
    λ = l2 and dropout p, scored as (x_u C^-c) B. With ``item_features`` (items × genres,
    0/1) passed to ``fit``, the Gram matrix also holds the genre rows α·Fᵀ C^-c (side
    information as in Jeunen et al. 2020, α² = ``side_weight``) and lift = x_u F L, L from
    ``genre_lift``; without them both parts are left out. lowpass_k = x_u C⁻ᵇ V_k V_kᵀ Cᵇ on
    the head columns, V_k the top k right singular vectors of Du^-½ X C^-b (Du = user
    counts), for each (k, w_k) of ``lowpass``, all from one SVD of the largest k. S =
    ItemKNN cosine top-``tail_k``. Users with no history get popularity.

    ``recommend`` scores the head densely and the tail only through its sparse kNN
    candidates (exactly the same lists as ranking ``score_users``; see ``recommend``).

    Memory bound in bytes (U users, I items, D head items, r = the largest low-pass rank,
    g genres, K = tail_k, B = users per batch with B·D ≤ 2^25, nnz = stored pairs): fit ≈
    20·D² (float64 Gram + inverse in place + float32 weights) + 8·(U + I)·(r + 10) (SVD
    factors) + 36·nnz (SVD: the scaled input, and its row blocks as CSR and, transposed, as
    CSC) + 12·nnz + 8·T·I + 24·I·(2K + 1) (kNN: float64 normalised copy, T = 2 threads'
    accumulators, implicit's top-(2K+1) lists) + 16·g·I (genres and their lift); model kept
    ≈ 4·D² + 8·I·r + 12·I·K + 16·g·I; recommend ≈ T · (7 · 4·B·D (dense head block and
    temporaries, ≤ 0.9 GB) + 16·2048·D (float64 low-pass rows) + 12·B·h·K (sparse kNN
    candidates, h = the batch's mean history)), T = 2 batches scored at once, + the output
    8·len(users)·n. At 100k users × 50k items × 5.8M pairs (D = 2,960, r = 64, K = 50,
    g = 12): fit ≈ 0.18 + 0.09 + 0.21 + 0.19 + 0.01 ≈ 0.7 GB, kept ≈ 0.1 GB.
    """

    def __init__(
        self,
        l2: float = 300.0,
        dropout: float = 0.5,
        input_exponent: float = 0.1,
        lowpass: tuple[tuple[int, float], ...] = ((8, 0.6), (16, 0.2), (64, 0.2)),
        item_exponent: float = 0.3,
        side_weight: float = 10.0,
        genre_weight: float = 0.5,
        max_dense_items: int = 10_000,
        head_work: float = HEAD_WORK,
        tail_k: int = 50,
        tail_weight: float = 1.0,
        random_state: int = 0,
    ):
        self.l2 = l2
        self.dropout = dropout
        self.input_exponent = input_exponent
        self.lowpass = lowpass
        self.item_exponent = item_exponent
        self.side_weight = side_weight
        self.genre_weight = genre_weight
        self.max_dense_items = max_dense_items
        self.head_work = head_work
        self.tail_k = tail_k
        self.tail_weight = tail_weight
        self.random_state = random_state

    def fit(self, X, y=None, item_features=None):
        """Return self with the head weights, low-pass factors and tail neighbours fitted.

        ``item_features``: optional items × genres 0/1 matrix, rows aligned with X's columns.
        """
        X = as_csr(X)
        n_items = X.shape[1]
        features = _item_features(item_features, n_items)
        self.item_counts_ = np.diff(X.tocsc().indptr).astype(np.float64)
        size = dense_size(n_items, X.nnz, self.max_dense_items, self.head_work)
        self.dense_items_ = dense_item_set(self.item_counts_, size)
        self.n_items_ = n_items
        self.input_scale_ = (np.maximum(self.item_counts_, 1.0) ** -self.input_exponent)[
            self.dense_items_
        ].astype(np.float32)
        self._fit_head(X, features)
        self._fit_lowrank(X)
        self.tail_items_ = np.setdiff1d(np.arange(n_items), self.dense_items_)
        self.knn_ = ItemKNN(k=self.tail_k, similarity="cosine").fit(X)
        self.tail_similarity_ = self.knn_.similarity_[:, self.tail_items_].tocsr()
        self.head_similarity_ = self.knn_.similarity_[:, self.dense_items_].tocsr()
        pop = np.log1p(self.item_counts_)
        self.popularity_ = ((pop - pop.mean()) / max(pop.std(), 1e-12)).astype(np.float32)
        return self

    def _fit_head(self, X: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        """Fit the DLAE weights (genre rows added to the Gram) and the genre-lift weights."""
        self.genres_ = self.lift_ = None
        if features is not None:
            self.genres_ = features
            self.lift_ = np.ascontiguousarray(genre_lift(features)[:, self.dense_items_])
        G, side = self._grams(X, features)
        if side is not None:  # in place: no third D × D array beside dlae_weights' copy
            side *= self.side_weight
            G += side
            del side
        self.weights_ = dlae_weights(G, self.l2, self.dropout)

    def _grams(self, X: sp.csr_matrix, features: sp.csr_matrix | None) -> HeadGrams:
        """Return the head's Gram matrix and its genre rows' Gram (None without genres)."""
        scale = sp.diags(self.input_scale_)
        G = gram(X[:, self.dense_items_] @ scale)
        if features is None:
            return HeadGrams(G, None)
        T = (scale @ features[self.dense_items_]).toarray()
        return HeadGrams(G, T @ T.T)

    def head_grams(self, X, item_features=None) -> HeadGrams:
        """Return the fitted head's Gram parts for X: what candidates differing only in l2,
        dropout or side_weight share (``refit_head`` turns them into weights)."""
        return self._grams(as_csr(X), _item_features(item_features, self.n_items_))

    def refit_head(self, grams: HeadGrams) -> RotationRecommender:
        """Return self with the DLAE weights recomputed from ``grams`` under the current l2,
        dropout and side_weight (the rest of the fit is kept; one more D × D array)."""
        G = grams.items if grams.genres is None else grams.items + self.side_weight * grams.genres
        self.weights_ = dlae_weights(G, self.l2, self.dropout)
        return self

    def _fit_lowrank(self, X: sp.csr_matrix) -> None:
        user_counts = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
        item_counts = np.maximum(self.item_counts_, 1.0)
        R = sp.diags(user_counts**-0.5) @ X @ sp.diags(item_counts**-self.item_exponent)
        rank = max(1, min(max(k for k, _ in self.lowpass), min(X.shape) - 1))
        # float32 products: half the bytes gathered per product, 2.1× faster at L (bench/README)
        R = sp.csr_matrix(R, dtype=np.float32)
        _, _, vt = sparse_randomized_svd(R, rank, n_iter=7, random_state=self.random_state)
        vt = vt.astype(np.float64)
        self.item_factors_ = vt.T * (item_counts**-self.item_exponent)[:, None]
        loadings = vt.T * (item_counts**self.item_exponent)[:, None]
        self.head_loadings_ = np.ascontiguousarray(loadings[self.dense_items_].T)

    def _head_block(self, rows: sp.csr_matrix, seen: sp.csr_matrix) -> np.ndarray:
        """Return the blended head scores (len(rows) × D, float32) of CSR user rows."""
        head = np.asarray((seen @ sp.diags(self.input_scale_)) @ self.weights_, dtype=np.float32)
        scores = _zscore(head, head, seen)
        del head
        _add_lowrank_terms(scores, self._lowrank_terms(rows), seen)
        return scores

    def _lowrank_terms(self, rows: sp.csr_matrix) -> list[LowRankTerm]:
        """Return the head score's low-rank parts: the low-pass filters and the genre lift."""
        rank = self.head_loadings_.shape[0]
        prefixes = tuple((min(k, rank), w) for k, w in self.lowpass if w)
        terms = []
        if prefixes:
            terms.append(LowRankTerm(rows @ self.item_factors_, self.head_loadings_, prefixes))
        if self.lift_ is not None and self.genre_weight:
            genres = (rows @ self.genres_).toarray()
            terms.append(LowRankTerm(genres, self.lift_, ((genres.shape[1], self.genre_weight),)))
        return terms

    def _tail_stats(self, rows: sp.csr_matrix, seen: sp.csr_matrix):
        """Return (mean, std) of the rows' kNN scores over their unseen head items."""
        return _sparse_stats(rows @ self.head_similarity_, seen)

    def score_users(self, X, user_rows) -> np.ndarray:
        """Return dense blended scores (len(user_rows) × n_items), float32."""
        rows = as_csr(X)[np.asarray(user_rows, dtype=np.int64)]
        seen = rows[:, self.dense_items_]
        scores = np.zeros((rows.shape[0], self.n_items_), dtype=np.float32)
        scores[:, self.dense_items_] = self._head_block(rows, seen)
        if self.tail_items_.size:
            mean, std = self._tail_stats(rows, seen)
            knn = (rows @ self.tail_similarity_).toarray()
            knn -= mean.astype(np.float32)[:, None]
            knn /= std.astype(np.float32)[:, None]
            scores[:, self.tail_items_] = self.tail_weight * knn
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            scores[empty] = self.popularity_
        return scores

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

        Same lists as ranking ``score_users`` (ties by lower item index), computed without a
        dense users × items block: per batch, the head's top-n from the dense B×D block, then
        only the tail kNN candidates whose score reaches the user's n-th head score (a tail
        item with no kNN score would score tail_weight·z(0): users for whom that reaches the
        n-th head score, or who have no history, are scored densely). Memory O(B·D + B·h·K).
        """
        if not self.tail_items_.size:
            return super().recommend(
                X, user_rows, n, filter_seen=filter_seen, exclude=exclude, batch_size=batch_size
            )
        X = as_csr(X)
        user_rows = np.asarray(user_rows, dtype=np.int64)
        exclude = None if exclude is None else as_csr(exclude)
        n_head = self.dense_items_.size
        step = (
            max(1, int(batch_size))
            if batch_size is not None
            else max(1, min(4096, BATCH_ELEMENTS // n_head))
        )
        starts = range(0, len(user_rows), step)
        parts = map_in_order(
            lambda start: self._recommend_batch(
                X, user_rows[start : start + step], n, filter_seen, exclude
            ),
            starts,
        )
        if not parts:
            return np.full((0, n), -1, dtype=np.int32), np.full((0, n), -np.inf, dtype=np.float32)
        out_idx = np.concatenate([idx for idx, _, _ in parts])
        out_val = np.concatenate([val for _, val, _ in parts])
        fallbacks = zip(starts, (fallback for _, _, fallback in parts), strict=True)
        dense_users = np.concatenate([start + np.flatnonzero(mask) for start, mask in fallbacks])
        if dense_users.size:
            idx, val = super().recommend(
                X,
                user_rows[dense_users],
                n,
                filter_seen=filter_seen,
                exclude=exclude,
                batch_size=batch_size,
            )
            out_idx[dense_users], out_val[dense_users] = idx, val
        return out_idx, out_val

    def _recommend_batch(self, X, batch, n, filter_seen, exclude):
        """Return (idx, val, needs-dense mask) of one batch by the candidate path."""
        rows = X[batch]
        dense = self.dense_items_
        seen = rows[:, dense]
        head = self._head_block(rows, seen)
        head[np.isnan(head)] = -np.inf
        masks = [(rows, seen)] if filter_seen else []  # the batch's own rows: X[batch]
        if exclude is not None:
            masked = exclude[batch]
            masks.append((masked, masked[:, dense]))
        for _, sub in masks:
            head[np.repeat(np.arange(len(batch)), np.diff(sub.indptr)), sub.indices] = -np.inf
        hidx, hval = top_n(head, n)
        del head
        cut = hval[:, n - 1] if n > 0 else np.full(len(batch), np.inf, np.float32)
        mean, std = self._tail_stats(rows, seen)
        mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
        floor = np.float32(self.tail_weight) * ((np.float32(0.0) - mean32) / std32)
        fallback = (np.diff(rows.indptr) == 0) | (floor >= cut)
        r, c, raw = _reachable(rows @ self.tail_similarity_, mean, std, cut, self.tail_weight)
        val = raw - mean32[r]
        val /= std32[r]
        val *= np.float32(self.tail_weight)
        keep = (val >= cut[r]) & ~fallback[r]
        r, c, val = r[keep], self.tail_items_[c[keep]], val[keep]
        for mask, _ in masks:
            if r.size:
                r, c, val = _drop_stored(r, c, val, mask)
        items = np.where(hidx >= 0, dense[np.maximum(hidx, 0)], -1)
        hr = np.repeat(np.arange(len(batch)), n)
        finite = hval.ravel() > -np.inf
        all_r = np.concatenate([hr[finite], r])
        all_c = np.concatenate([items.ravel()[finite], c])
        all_v = np.concatenate([hval.ravel()[finite], val]) + np.float32(0.0)  # -0.0 → 0.0
        all_r, all_c, all_v, rank = top_per_row(all_r, all_c, all_v, n)
        idx = np.full((len(batch), n), -1, dtype=np.int32)
        out = np.full((len(batch), n), -np.inf, dtype=np.float32)
        idx[all_r, rank - 1] = all_c
        out[all_r, rank - 1] = all_v
        return idx, out, fallback

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, scores) of each item's n nearest collaborative (cosine) neighbours."""
        return self.knn_.similar_items(item_rows, n)


def _reachable(K: sp.csr_matrix, mean, std, cut, weight: float):
    """Return (rows, cols, raw kNN sums) of K's entries that may reach their row's cut.

    An entry is kept by the caller when weight · (raw − mean) / std ≥ cut (float32). Here
    the same test runs once on the raw sums, in float64 with a relative slack far above
    float32 rounding, so only the few candidates left are standardised: never an entry
    that the exact test would keep is dropped. Entries come in K's storage order; only the
    kept ones get a row index (K holds tens of millions of entries per batch at L).
    """
    counts = np.diff(K.indptr)
    if weight <= 0:
        return np.repeat(np.arange(K.shape[0], dtype=np.int32), counts), K.indices, K.data
    reach = cut.astype(np.float64) / weight * std
    floor = mean + reach - RAW_SLACK * (np.abs(mean) + np.abs(reach) + std)
    kept = np.flatnonzero(K.data >= np.repeat(floor, counts))
    rows = np.searchsorted(K.indptr, kept, side="right").astype(np.int32) - 1
    return rows, K.indices[kept], K.data[kept]


def _drop_stored(r, c, v, M: sp.csr_matrix):
    """Return (r, c, v) without the entries stored in CSR M (rows of M align with r).

    M's keys row · n_cols + column are ascending (canonical CSR), so a binary search finds
    each candidate: no hash set of M's entries is built.
    """
    if not M.has_sorted_indices:
        M = M.sorted_indices()
    n_cols = M.shape[1]
    stored = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr)) * n_cols
    stored += M.indices
    if stored.size == 0:
        return r, c, v
    keys = r.astype(np.int64) * n_cols + c
    pos = np.minimum(np.searchsorted(stored, keys), stored.size - 1)
    keep = stored[pos] != keys
    return r[keep], c[keep], v[keep]
