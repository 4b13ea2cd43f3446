"""Content-based item similarity from metadata tokens (genre, style, artist, label, …)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer

from models.base import ItemSimilarity
from models.neighbors import item_similarity_topk, similar_from_csr, topk_neighbors


def identity_tokens(tokens):
    """Return the item's token list unchanged (the analyzer for pre-tokenised items)."""
    return tokens


class ContentSimilarity(BaseEstimator, ItemSimilarity):
    """Top-k cosine neighbours of items described by token lists, TF-IDF weighted.

    Tokens look like 'genre:jazz', 'style:hard bop', 'artist:x', 'label:y', 'decade:1960s',
    'country:us'; rare tokens (an artist) weigh more than common ones (a genre). Every item
    with at least one token gets neighbours, interactions or not. The top-k is
    ``item_similarity_topk`` on the token×item matrix (implicit's threaded kNN, ties by
    lower index). Memory bound: O(nnz(tokens) + 12·I·(2k + 1)) bytes plus the exact path's
    chunks for tied rows (16·C·I, C = max(64, 2^22 / I)); never a dense I×I matrix.
    """

    def __init__(self, n_neighbors: int = 20, min_score: float = 0.0):
        self.n_neighbors = n_neighbors
        self.min_score = min_score

    def __sklearn_tags__(self):
        """Return scikit-learn's tags: fitted on lists of tokens, not on an array."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fit(self, item_tokens, y=None):
        """Return self with ``vectorizer_``, ``features_`` (I×V) and ``neighbors_`` (I×I) set."""
        docs = [list(tokens) if tokens is not None else [] for tokens in item_tokens]
        self.vectorizer_ = TfidfVectorizer(
            analyzer=identity_tokens, lowercase=False, sublinear_tf=True, dtype=np.float32
        )
        if any(docs):
            self.features_ = self.vectorizer_.fit_transform(docs).tocsr()  # rows L2-normalised
        else:
            self.features_ = sp.csr_matrix((len(docs), 0), dtype=np.float32)
        self.neighbors_ = self._neighbors(self.features_)
        self.n_items_ = len(docs)
        return self

    def _neighbors(self, F: sp.csr_matrix) -> sp.csr_matrix:
        """Return the items' cosine top-k (rows of F are L2-normalised: cosine = F·Fᵀ)."""
        if F.shape[1] == 0:
            return sp.csr_matrix((F.shape[0], F.shape[0]), dtype=np.float32)
        S = item_similarity_topk(F.T.tocsr(), self.n_neighbors)  # items as the columns
        S.data[S.data <= self.min_score] = 0.0
        S.eliminate_zeros()
        return S

    def neighbor_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (rows, cols, scores, ranks) of every item's neighbours, ranks 1..k."""
        return topk_neighbors(self.neighbors_, self.n_neighbors)

    def similar_items(self, item_rows, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, scores) of the n most similar items to each given item."""
        return similar_from_csr(self.neighbors_, item_rows, n)
