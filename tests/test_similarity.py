"""Item similarity: collaborative ItemKNN values, top-k helpers, content and hybrid sets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from flows.stages.similarity import hybrid
from models.content import ContentSimilarity
from models.neighbors import ItemKNN, item_similarity_topk, topk_neighbors

ITEMS = [
    ["genre:jazz", "style:hard bop", "artist:art blakey", "label:blue note", "decade:1960s"],
    ["genre:jazz", "style:hard bop", "artist:art blakey", "label:riverside", "decade:1950s"],
    ["genre:rock", "style:punk", "artist:the clash", "label:cbs", "decade:1970s"],
    ["genre:jazz", "style:modal", "artist:miles davis", "label:columbia", "decade:1950s"],
    ["genre:electronic", "style:techno", "artist:basic channel", "country:de"],
    ["genre:rock", "style:punk", "artist:ramones", "label:sire", "decade:1970s"],
]


def test_topk_neighbors_orders_ranks_and_breaks_ties():
    sim = sp.csr_matrix(np.array([[0, 0.5, 0.5, 0.9], [0.2, 0, 0, 0], [0, 0, 0, 0]]))
    rows, cols, scores, ranks = topk_neighbors(sim, 2)
    np.testing.assert_array_equal(rows, [0, 0, 1])
    np.testing.assert_array_equal(cols, [3, 1, 0])
    np.testing.assert_array_equal(ranks, [1, 2, 1])
    np.testing.assert_allclose(scores, [0.9, 0.5, 0.2])


def test_cosine_and_jaccard_values_match_hand_computation():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 0]], dtype=np.float32))
    cos = item_similarity_topk(X, 5, similarity="cosine").toarray()
    assert cos[0, 1] == pytest.approx(2 / (np.sqrt(3) * np.sqrt(3)))
    assert cos[0, 2] == pytest.approx(1 / (np.sqrt(3) * np.sqrt(2)))
    assert (np.diag(cos) == 0).all()
    jac = item_similarity_topk(X, 5, similarity="jaccard").toarray()
    assert jac[0, 1] == pytest.approx(2 / 4)
    assert jac[1, 2] == pytest.approx(2 / 3)
    shrunk = item_similarity_topk(X, 5, similarity="cosine", shrink=3.0).toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (3 + 3))


def test_chunking_does_not_change_similarity():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((80, 30)) < 0.2).astype(np.float32))
    whole = item_similarity_topk(X, 7)
    chunked = item_similarity_topk(X, 7, chunk=4)
    assert abs(whole - chunked).max() == 0
    assert np.diff(whole.indptr).max() <= 7


def test_popularity_order_gives_the_exact_neighbours_with_ties():
    rng = np.random.default_rng(2)
    popularity = np.linspace(0.9, 0.02, 40)  # skewed: implicit sees the items reordered
    dense = (rng.random((120, 40)) < popularity[rng.permutation(40)]).astype(np.float32)
    dense[:, 7] = dense[:, 11] = dense[:, 3]  # identical columns: tied scores across cuts
    X = sp.csr_matrix(dense)
    fast = item_similarity_topk(X, 5)
    exact = item_similarity_topk(X, 5, chunk=8)
    assert (fast != exact).nnz == 0
    np.testing.assert_array_equal(fast.indices, exact.indices)


def test_itemknn_similar_items_are_cooccurring():
    dense = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=float)
    X = sp.csr_matrix(dense)
    idx, _ = ItemKNN(k=3).fit(X).similar_items([0, 2], 1)
    np.testing.assert_array_equal(idx[:, 0], [1, 3])


def test_content_shared_genre_and_artist_is_nearer():
    model = ContentSimilarity(n_neighbors=3).fit(ITEMS)
    sim = model.neighbors_.toarray()
    assert sim[0, 1] > sim[0, 3] > sim[0, 2]
    idx, _ = model.similar_items([0, 2], 1)
    np.testing.assert_array_equal(idx[:, 0], [1, 5])


def test_content_gives_neighbours_without_interactions():
    model = ContentSimilarity(n_neighbors=2).fit(ITEMS)
    rows, cols, scores, ranks = model.neighbor_arrays()
    described = np.arange(len(ITEMS))
    assert set(rows) >= set(described) - {4}  # item 4 shares no token with any other
    assert (rows != cols).all() and (scores > 0).all()
    assert set(ranks) <= {1, 2}


def test_content_item_without_tokens_has_no_neighbours():
    model = ContentSimilarity(n_neighbors=2).fit([*ITEMS, []])
    assert model.neighbors_[len(ITEMS)].nnz == 0
    assert model.neighbors_.shape == (len(ITEMS) + 1, len(ITEMS) + 1)


def _pairs(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    """Return (source_id, target_id, score) neighbour rows."""
    return pl.DataFrame(rows, schema=["source_id", "target_id", "score"], orient="row")


def test_hybrid_weights_both_sets():
    collab = _pairs([(10, 11, 0.9), (11, 10, 0.9)])
    content = _pairs([(10, 12, 0.8), (11, 12, 0.5), (12, 10, 0.8), (12, 11, 0.5)])
    mixed = hybrid(collab, content, alpha=0.5, k=1)
    best = {(r["source_id"], r["target_id"]): r["score"] for r in mixed.iter_rows(named=True)}
    assert best == pytest.approx({(10, 11): 0.45, (11, 10): 0.45, (12, 10): 0.4})  # 0.45 > 0.40
    assert mixed["rank"].to_list() == [1, 1, 1]  # a content-only item still gets a neighbour
    only_collab = hybrid(collab, content, alpha=1.0, k=2).filter(pl.col("score") > 0)
    assert only_collab.select("source_id", "target_id", "score").equals(collab)


@pytest.mark.parametrize("density", [0.01, 0.3])
@pytest.mark.parametrize(
    ("similarity", "chunk", "weighted"),
    [
        ("cosine", 16, False),
        ("jaccard", 16, False),
        ("cosine", None, False),
        ("cosine", None, True),
    ],
)
def test_topk_similarity_matches_brute_force(density, similarity, chunk, weighted):
    """Chunked path and implicit's path (chunk None) both give the exact top-k, ties by column."""
    rng = np.random.default_rng(5)
    dense = (rng.random((300, 120)) < density).astype(np.float64)
    if weighted:
        dense *= rng.integers(1, 4, size=dense.shape)
    co = dense.T @ dense
    n = dense.sum(axis=0) if similarity == "jaccard" else np.square(dense).sum(axis=0)
    if similarity == "cosine":
        full = co / np.maximum(np.sqrt(np.outer(n, n)), 1e-12)
    else:
        full = co / np.maximum(n[:, None] + n[None, :] - co, 1e-12)
    np.fill_diagonal(full, 0)
    got = item_similarity_topk(sp.csr_matrix(dense), 4, similarity=similarity, chunk=chunk)
    for item in range(120):
        order = np.lexsort((np.arange(120), -full[item]))[:4]
        order = order[full[item, order] > 0]
        row = got[item]
        np.testing.assert_array_equal(np.sort(row.indices), np.sort(order))
        np.testing.assert_allclose(row.toarray()[0, order], full[item, order], rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_row_by_row_topk_equals_the_one_sort_topk(seed):
    """A CSR neighbour set is ranked in padded rows; the same entries as COO by one sort."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(-2, 5, size=(60, 40)).astype(np.float64) / 4  # ties, zeros, negatives
    dense[rng.random(dense.shape) < 0.5] = 0
    csr = sp.csr_matrix(dense)
    for k in (1, 3, 40, 55):
        padded = topk_neighbors(csr, k)
        sorted_once = topk_neighbors(csr.tocoo(), k)
        for got, want in zip(padded, sorted_once, strict=True):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype


def test_implicit_layout_and_any_other_layout_give_the_same_lists():
    """implicit's slot layout is read in place; the same entries in another order via a CSR."""
    from implicit.nearest_neighbours import all_pairs_knn

    from models.neighbors import _implicit_rows, _popular_first

    rng = np.random.default_rng(4)
    dense = (rng.random((90, 30)) < 0.15).astype(np.float64)
    dense[:, 5] = 0  # an item no one has: its row's slots stay empty
    order, popular_first = _popular_first(sp.csr_matrix(dense))
    S = all_pairs_knn(popular_first, 7, num_threads=1, show_progress=False).tocoo()
    assert S.nnz == 30 * 7 and (S.data == 0).any()  # the layout read in place, spare slots
    shuffle = rng.permutation(S.nnz)
    other = sp.coo_matrix((S.data[shuffle], (S.row[shuffle], S.col[shuffle])), shape=S.shape)
    fast, slow = _implicit_rows(S, order, 7), _implicit_rows(other, order, 7)
    np.testing.assert_array_equal(fast[2], slow[2])
    for got, want in zip(fast[:2], slow[:2], strict=True):
        np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(want, axis=1))
    assert fast[2][5] == 0 and fast[2].max() == 7
