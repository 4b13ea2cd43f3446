"""Ranking metrics on hand-computed cases, and the evaluate() helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.evaluation import evaluate
from models.linear import Popularity
from models.metrics import ranking_metrics


def _test_matrix(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        dense[user, items] = 1.0
    return sp.csr_matrix(dense)


def test_hand_computed_single_user():
    m = ranking_metrics(np.array([[1, 2, 3]]), _test_matrix([[2, 5]], 10), k=3, n_items=10)
    assert m["precision_at_k"] == pytest.approx(1 / 3)
    assert m["recall_at_k"] == pytest.approx(1 / 2)
    g = 1 / math.log2(3)
    assert m["ndcg_at_k"] == pytest.approx(g / (1 + g))
    assert m["map_at_k"] == pytest.approx(0.25)
    assert m["coverage"] == pytest.approx(0.3)
    assert m["users"] == 1


def test_perfect_and_empty_lists():
    test = _test_matrix([[0, 1], [2]], 5)
    perfect = ranking_metrics(np.array([[1, 0, 4], [2, 3, 4]]), test, k=3, n_items=5)
    assert perfect["ndcg_at_k"] == pytest.approx(1.0)
    assert perfect["map_at_k"] == pytest.approx(1.0)
    assert perfect["recall_at_k"] == pytest.approx(1.0)
    assert perfect["precision_at_k"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    empty = ranking_metrics(np.full((2, 3), -1), test, k=3, n_items=5)
    assert empty["ndcg_at_k"] == 0 and empty["precision_at_k"] == 0 and empty["coverage"] == 0


def test_users_without_test_items_are_not_averaged():
    test = _test_matrix([[2], []], 4)
    m = ranking_metrics(np.array([[2, 0], [1, 3]]), test, k=2, n_items=4)
    assert m["users"] == 1
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["ndcg_at_k"] == pytest.approx(1.0)
    assert m["coverage"] == pytest.approx(1.0)  # every list counts for coverage


def test_ap_and_ndcg_reward_earlier_hits():
    test = _test_matrix([[0]], 4)
    early = ranking_metrics(np.array([[0, 1, 2]]), test, k=3, n_items=4)
    late = ranking_metrics(np.array([[1, 2, 0]]), test, k=3, n_items=4)
    assert late["map_at_k"] == pytest.approx(1 / 3)
    assert late["ndcg_at_k"] == pytest.approx(0.5)
    assert early["ndcg_at_k"] > late["ndcg_at_k"]
    assert early["precision_at_k"] == late["precision_at_k"]


def test_ideal_dcg_caps_at_k():
    test = _test_matrix([[0, 1, 2, 3, 4]], 6)
    m = ranking_metrics(np.array([[0, 1]]), test, k=2, n_items=6)
    assert m["ndcg_at_k"] == pytest.approx(1.0)
    assert m["map_at_k"] == pytest.approx(1.0)
    assert m["recall_at_k"] == pytest.approx(2 / 5)


def test_evaluate_fits_scores_and_times():
    train = _test_matrix([[0, 1], [0, 2], [0], [1, 2]], 4)
    test = _test_matrix([[2], [1], [2], []], 4)
    m = evaluate(Popularity(), train, test, k=1)
    # popularity order: 0 (3), 1 (2), 2 (2), 3 (0); seen items removed
    assert m["users"] == 3
    # user 2 gets item 1 (tie with item 2 → lower index): a miss
    assert m["precision_at_k"] == pytest.approx(2 / 3)
    assert m["fit_seconds"] >= 0 and m["recommend_seconds"] >= 0
