"""The nightly holdout scores at most a seeded sample of its users."""

import numpy as np

from flows.stages.evaluation import sample_users


def test_small_sets_are_kept_whole():
    rows = np.array([1, 4, 9])
    assert sample_users(rows, 3) is rows


def test_large_sets_are_sampled_sorted_unique_and_reproducibly():
    rows = np.arange(0, 10_000, 3)
    first, again = sample_users(rows, 500), sample_users(rows, 500)
    assert first.size == 500 and np.all(np.diff(first) > 0)
    assert np.isin(first, rows).all()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, sample_users(rows, 500, seed=1))
