"""What the shards send the item models' fit: coded matrices and partial sums that combine
into the one-shard run's, entry for entry."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.stages.interactions import to_matrix
from flows.stages.model_inputs import (
    FitInputs,
    combined_fit_inputs,
    combined_listeners,
    track_listeners,
)
from models.matrix import InteractionMatrix
from transforms.recommend.fallback import combined_popularity, record_popularity


def _pairs(seed: int, users: int = 60, items: int = 40, rows: int = 500) -> pl.DataFrame:
    """Return weighted (user, item) pairs, one row per pair, some not positive."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "user_id": rng.integers(1, users, rows) * 7,
            "item_id": rng.integers(1, items, rows) * 3,
            "weight": rng.choice([-1.0, 0.0, 0.25, 1.0, 2.5], rows),
        }
    )
    return frame.unique(["user_id", "item_id"], keep="first", maintain_order=True)


def _by_user_range(pairs: pl.DataFrame, ends: list[int]) -> list[pl.DataFrame]:
    """Return the pairs split at user ids `ends` (ascending), as shards split them."""
    starts = [-1, *ends]
    return [
        pairs.filter(pl.col("user_id").is_between(lo + 1, hi))
        for lo, hi in zip(starts, [*ends, 2**62], strict=True)
    ]


def _assert_same_matrix(got: InteractionMatrix, want: InteractionMatrix) -> None:
    assert np.array_equal(got.user_ids, want.user_ids)
    assert np.array_equal(got.item_ids, want.item_ids)
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got.matrix, name), getattr(want.matrix, name)), name
    assert got.matrix.dtype == np.float32 and got.matrix.has_sorted_indices


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrices_stacked_by_user_range_are_the_whole_pairs_matrix(seed):
    pairs = _pairs(seed)
    parts = [to_matrix(part) for part in _by_user_range(pairs, [70, 71, 250])]
    assert parts[1].shape[0] == 0  # a shard with no user holding a positive pair
    _assert_same_matrix(InteractionMatrix.stacked(parts), to_matrix(pairs))


def test_matrices_of_overlapping_or_unordered_users_are_refused():
    a = InteractionMatrix.from_arrays([1, 5], [10, 11])
    b = InteractionMatrix.from_arrays([3], [10])
    with pytest.raises(ValueError, match="disjoint and in ascending order"):
        InteractionMatrix.stacked([a, b])


def test_record_popularity_of_disjoint_users_adds_up():
    pairs = _pairs(3)
    parts = [record_popularity(part) for part in _by_user_range(pairs, [100, 200])]
    assert_frame_equal(combined_popularity(parts), record_popularity(pairs))


def test_track_listeners_count_each_tracks_users_with_a_positive_pair():
    pairs = pl.DataFrame(
        {"user_id": [1, 2, 2, 3, 3], "item_id": [9, 9, 4, 4, 8], "weight": [1.0, 2, 1, 0, -1]}
    )
    listeners = track_listeners(to_matrix(pairs))
    assert listeners.to_dict(as_series=False) == {"item_id": [4, 9], "listeners": [1, 2]}


def test_track_listeners_of_disjoint_users_add_up():
    pairs = _pairs(8, items=90)
    parts = [track_listeners(to_matrix(part)) for part in _by_user_range(pairs, [90, 300])]
    assert_frame_equal(combined_listeners(parts), track_listeners(to_matrix(pairs)))


def test_shards_fit_inputs_combine_into_the_one_shard_runs():
    records, tracks, train = _pairs(4), _pairs(5, items=90), _pairs(6)
    test = _pairs(7).filter(pl.col("weight") > 0).select("user_id", "item_id").sort("user_id")
    ends = [120, 300]

    def fit(r, t, tr, te) -> FitInputs:
        return FitInputs(
            to_matrix(r), to_matrix(tr), te, record_popularity(r), track_listeners(to_matrix(t))
        )

    whole = fit(records, tracks, train, test)
    split = [_by_user_range(frame, ends) for frame in (records, tracks, train, test)]
    combined = combined_fit_inputs([fit(*shard) for shard in zip(*split, strict=True)])
    for name in ("records", "train"):
        _assert_same_matrix(getattr(combined, name), getattr(whole, name))
    for name in ("test", "popularity", "listeners"):
        assert_frame_equal(getattr(combined, name), getattr(whole, name))
    gone = combined.without_holdout()
    assert gone.train.matrix.nnz == 0 and gone.test.is_empty()
    assert gone.records is combined.records
