"""The head's low-rank terms: standardised through Gram forms, equal to the dense z-scores."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.recommender import LowRankTerm, _add_lowrank_terms, _zscore


def _dense_reference(terms, seen) -> np.ndarray:
    out = np.zeros((seen.shape[0], terms[0].Q.shape[1]))
    for term in terms:
        for k, w in term.prefixes:
            product = term.A[:, :k] @ term.Q[:k]
            out += w * _zscore(product, product, seen)
    return out


def test_lowrank_terms_equal_the_dense_zscores():
    rng = np.random.default_rng(3)
    seen = sp.random(40, 30, density=0.2, format="csr", random_state=4, dtype=np.float32)
    terms = [
        LowRankTerm(rng.normal(size=(40, 8)), rng.normal(size=(8, 30)), ((2, 0.6), (8, 0.3))),
        LowRankTerm(rng.random((40, 3)), rng.random((3, 30)), ((3, 0.5),)),
    ]
    scores = np.zeros((40, 30), dtype=np.float32)
    _add_lowrank_terms(scores, terms, seen, block=7)
    np.testing.assert_allclose(scores, _dense_reference(terms, seen), rtol=1e-4, atol=1e-4)


def test_a_row_flat_over_its_unseen_columns_adds_zero():
    rng = np.random.default_rng(5)
    seen = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    term = LowRankTerm(rng.normal(size=(2, 2)), rng.normal(size=(2, 4)), ((2, 1.0),))
    scores = np.zeros((2, 4), dtype=np.float32)
    _add_lowrank_terms(scores, [term], seen)
    assert scores[0, 3] == 0.0  # one unseen column: no spread to standardise by
    product = term.A @ term.Q
    np.testing.assert_allclose(scores[1], _zscore(product, product)[1], rtol=1e-5, atol=1e-5)
