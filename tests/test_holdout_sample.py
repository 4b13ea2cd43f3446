"""The nightly holdout scores at most a sample of its users, drawn by a seeded hash of the
user id: the same users whatever else is in the array (a shard draws what the whole does)."""

import numpy as np

from flows.stages.evaluation import sample_users
from models.kernels.codes import id_hash, smallest_hashes


def test_small_sets_are_kept_whole():
    rows = np.array([1, 4, 9])
    assert sample_users(rows, rows + 100, 3) is rows


def test_large_sets_are_sampled_sorted_unique_and_reproducibly():
    rows = np.arange(0, 10_000, 3)
    ids = rows * 7 + 5
    first, again = sample_users(rows, ids, 500), sample_users(rows, ids, 500)
    assert first.size == 500 and np.all(np.diff(first) > 0)
    assert np.isin(first, rows).all()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, sample_users(rows, ids, 500, seed=1))


def test_a_users_draw_does_not_depend_on_the_others():
    ids = np.arange(1, 20_001) * 13
    whole = set(ids[smallest_hashes(ids, 1000)])
    # two shards, each keeping its 1000 smallest, then the 1000 smallest of their union
    shards = [ids[ids % 2 == 0], ids[ids % 2 == 1]]
    kept = np.concatenate([s[smallest_hashes(s, 1000)] for s in shards])
    assert set(kept[smallest_hashes(kept, 1000)]) == whole
    # and the row order of the array does not matter either
    shuffled = np.random.default_rng(0).permutation(ids)
    assert set(shuffled[smallest_hashes(shuffled, 1000)]) == whole


def test_the_hash_spreads_serial_ids():
    hashes = id_hash(np.arange(100_000))
    assert np.unique(hashes).size == hashes.size
    below = (hashes < np.uint64(2**63)).mean()  # half the ids below the middle of the range
    assert 0.49 < below < 0.51
