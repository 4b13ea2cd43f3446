"""Threaded sparse products: bitwise the results of their single-threaded references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

import models.kernels.parallel as parallel
from models.kernels.parallel import RowBlocks
from models.linear import gram
from models.lowrank import sparse_randomized_svd
from models.matrix import InteractionMatrix


def _sparse(shape, dtype, seed=1) -> sp.csr_matrix:
    return sp.random(*shape, density=0.03, random_state=seed, format="csr", dtype=dtype)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(900, 300), (200, 700), (6, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_svd_is_sklearns_bit_for_bit(threads, shape, dtype, monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", threads)
    M = _sparse(shape, dtype)
    k = min(4, min(shape) - 1)
    expected = randomized_svd(M, k, n_iter=7, random_state=0)
    got = sparse_randomized_svd(M, k, n_iter=7, random_state=0)
    for want, have in zip(expected, got, strict=True):
        assert have.dtype == want.dtype
        np.testing.assert_array_equal(have, want)


def test_randomized_svd_few_iterations_and_seed(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", 2)
    M = _sparse((400, 120), np.float64, seed=3)
    for n_iter, seed in [(1, 5), (2, 0), (4, 9)]:
        expected = randomized_svd(M, 5, n_iter=n_iter, random_state=seed)
        got = sparse_randomized_svd(M, 5, n_iter=n_iter, random_state=seed)
        for want, have in zip(expected, got, strict=True):
            np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_gram_is_the_single_threaded_product(threads, monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", threads)
    X = _sparse((500, 60), np.float32, seed=4)
    X64 = sp.csr_matrix(X, dtype=np.float64)
    np.testing.assert_array_equal(gram(X), (X64.T.tocsr() @ X64).toarray())


def test_row_blocks_cover_every_row_once(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_THREADS", 3)
    A = _sparse((7, 4), np.float64, seed=2)
    blocks = RowBlocks(A)
    assert sum(block.shape[0] for block in blocks.blocks) == 7
    Q = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(blocks @ Q, A @ Q)


def test_interaction_matrix_codes_sparse_and_negative_ids():
    users = np.array([-5, 10**15, -5, 3])
    m = InteractionMatrix.from_arrays(users, [2, 2, 2, 10**12], all_items=[-1])
    np.testing.assert_array_equal(m.user_ids, [-5, 3, 10**15])
    np.testing.assert_array_equal(m.item_ids, [-1, 2, 10**12])
    np.testing.assert_array_equal(m.matrix.toarray(), [[0, 2, 0], [0, 0, 1], [0, 1, 0]])
