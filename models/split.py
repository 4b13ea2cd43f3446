"""Train/test splits of implicit interactions, per the DESIGN evaluation protocol."""

from __future__ import annotations

import numpy as np


def _eligible(user_idx: np.ndarray, min_interactions: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep mask, per-row count of the row's user)."""
    _, inverse, counts = np.unique(user_idx, return_inverse=True, return_counts=True)
    per_row = counts[inverse]
    return per_row >= min_interactions, per_row


def _test_mask_from_order(
    user_idx: np.ndarray,
    order_key: np.ndarray,
    per_row: np.ndarray,
    keep: np.ndarray,
    test_share: float,
) -> np.ndarray:
    """Return the mask of rows whose rank within their user (by order_key) is in the top share."""
    order = np.lexsort((order_key, user_idx))
    sorted_users = user_idx[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.arange(len(order)) - group_start  # 0 = first in order_key within user
    n_test = np.floor(test_share * per_row[order] + 0.5).astype(np.int64)
    n_test = np.maximum(n_test, 1)
    test_sorted = rank >= per_row[order] - n_test
    test = np.zeros(len(user_idx), dtype=bool)
    test[order] = test_sorted
    return test & keep


def stratified_split(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    *,
    test_share: float = 0.25,
    seed: int = 42,
    min_interactions: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep, test) boolean masks: a per-user random split of the rows.

    Users with fewer than ``min_interactions`` rows are dropped (keep False). Each kept user
    gets ``max(1, floor(test_share * n_u + 0.5))`` test rows drawn uniformly at random with
    ``np.random.default_rng(seed)`` (one uniform key per row, in input order); train is
    ``keep & ~test``. ``item_idx`` only fixes the row count (pairs are assumed unique).
    """
    user_idx = np.asarray(user_idx)
    if len(item_idx) != len(user_idx):
        raise ValueError("user_idx and item_idx differ in length")
    keep, per_row = _eligible(user_idx, min_interactions)
    key = np.random.default_rng(seed).random(len(user_idx))
    return keep, _test_mask_from_order(user_idx, key, per_row, keep, test_share)


def temporal_split(
    user_idx: np.ndarray,
    timestamps: np.ndarray,
    *,
    test_share: float = 0.25,
    min_interactions: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep, test) masks: each kept user's latest ``test_share`` of rows are test.

    Ties in time are broken by row position (later rows count as later).
    """
    user_idx = np.asarray(user_idx)
    timestamps = np.asarray(timestamps)
    keep, per_row = _eligible(user_idx, min_interactions)
    position = np.arange(len(user_idx))
    key = np.lexsort((position, timestamps)).argsort(kind="stable")  # global time rank
    return keep, _test_mask_from_order(user_idx, key, per_row, keep, test_share)
