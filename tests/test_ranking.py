"""Top entries per row: the sort-free pass for (row, column)-ordered entries equals the sort."""

from __future__ import annotations

import numpy as np
import pytest

from models.kernels.ranking import top_per_row, top_per_sorted_row


def _sorted_entries(seed: int, n_rows: int = 300, n_cols: int = 40, dtype=np.float64):
    """Return (rows, cols, values) of a random sparse matrix in (row, column) order, with
    many tied values and rows of every length (empty ones too)."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, (n_rows, n_cols)).astype(dtype) / 4
    dense[rng.random(dense.shape) < rng.random((n_rows, 1))] = 0  # row densities vary
    rows, cols = np.nonzero(dense)
    return rows, cols, dense[rows, cols]


@pytest.mark.parametrize("k", [1, 3, 8, 50])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_sorted_rows_pass_equals_the_sort(k, dtype):
    rows, cols, values = _sorted_entries(seed=k, dtype=dtype)
    got = top_per_sorted_row(rows, cols, values, k)
    want = top_per_row(rows, cols, values, k)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert got[2].dtype == dtype  # the values' dtype is kept


def test_ties_go_to_the_lower_column_and_ranks_count_from_one():
    rows = np.array([0, 0, 0, 0, 2, 2])
    cols = np.array([1, 4, 6, 9, 0, 3])
    values = np.array([0.5, 0.9, 0.5, 0.9, 0.2, 0.2])
    r, c, v, rank = top_per_sorted_row(rows, cols, values, 3)
    np.testing.assert_array_equal(r, [0, 0, 0, 2, 2])
    np.testing.assert_array_equal(c, [4, 9, 1, 0, 3])
    np.testing.assert_array_equal(v, [0.9, 0.9, 0.5, 0.2, 0.2])
    np.testing.assert_array_equal(rank, [1, 2, 3, 1, 2])


def test_entries_out_of_row_column_order_take_the_sort():
    rows, cols, values = _sorted_entries(seed=5)
    shuffled = np.random.default_rng(0).permutation(rows.size)
    got = top_per_sorted_row(rows[shuffled], cols[shuffled], values[shuffled], 3)
    for g, w in zip(got, top_per_row(rows, cols, values, 3), strict=True):
        np.testing.assert_array_equal(g, w)


def test_non_finite_values_and_empty_input_take_the_sort():
    rows, cols = np.array([0, 0, 1]), np.array([0, 1, 0])
    values = np.array([-np.inf, 1.0, np.nan])
    for g, w in zip(
        top_per_sorted_row(rows, cols, values, 2), top_per_row(rows, cols, values, 2), strict=True
    ):
        np.testing.assert_array_equal(g, w)
    empty = np.array([], dtype=np.int64)
    assert all(a.size == 0 for a in top_per_sorted_row(empty, empty, empty.astype(float), 3))
