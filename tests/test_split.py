"""Train/test splits: proportions, seeds, dropped users, temporal order."""

from __future__ import annotations

import numpy as np
import polars as pl

from flows.stages.evaluation import split_pairs
from models.split import stratified_split, temporal_split


def _data(n_users: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 40, n_users)
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([rng.choice(100, c, replace=False) for c in counts])
    times = rng.integers(0, 10_000, len(users))
    return users, items, times, counts


def test_stratified_proportions_and_dropped_users():
    users, items, _, counts = _data()
    keep, test = stratified_split(users, items)
    assert not (test & ~keep).any()
    for user, n in enumerate(counts):
        rows = users == user
        if n < 4:
            assert not keep[rows].any()
        else:
            assert keep[rows].all()
            assert test[rows].sum() == max(1, int(np.floor(0.25 * n + 0.5)))
    assert abs(test.sum() / keep.sum() - 0.25) < 0.03


def test_stratified_seed_determinism():
    users, items, _, _ = _data()
    a = stratified_split(users, items, seed=42)
    b = stratified_split(users, items, seed=42)
    c = stratified_split(users, items, seed=7)
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[1] != c[1]).any()
    np.testing.assert_array_equal(a[0], c[0])


def test_min_interactions_parameter():
    users = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    keep, test = stratified_split(users, np.arange(8), min_interactions=5)
    np.testing.assert_array_equal(keep, [False] * 3 + [True] * 5)
    assert test[3:].sum() == 1  # floor(1.25 + 0.5)


def test_temporal_split_takes_each_users_latest():
    users, _, times, counts = _data(seed=1)
    keep, test = temporal_split(users, times)
    for user, n in enumerate(counts):
        rows = np.flatnonzero(users == user)
        if n < 4:
            assert not keep[rows].any()
            continue
        held = rows[test[rows]]
        kept = rows[~test[rows]]
        assert len(held) == max(1, int(np.floor(0.25 * n + 0.5)))
        assert times[held].min() >= times[kept].max()


def test_temporal_ties_broken_by_position():
    users = np.zeros(4, dtype=int)
    _, test = temporal_split(users, np.array([5, 5, 5, 5]))
    np.testing.assert_array_equal(test, [False, False, False, True])


def test_protocol_split_ignores_row_order_and_duplicates():
    users, items, times, _ = _data(seed=2)
    pairs = pl.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    train, test = split_pairs(pairs, "stratified")
    perm = np.random.default_rng(0).permutation(len(users))
    doubled = pl.concat([pairs[perm], pairs.head(10)])
    train2, test2 = split_pairs(doubled, "stratified")
    key = ["user_id", "item_id"]
    assert train.select(key).equals(train2.select(key)) and test.select(key).equals(
        test2.select(key)
    )
    assert train.join(test, on=key, how="inner").is_empty()
    assert (
        train.height + test.height == pairs.unique(key).filter(pl.len().over("user_id") >= 4).height
    )
