"""in_order: a frame already in key order is returned as it is, any other one is sorted."""

import numpy as np
import polars as pl
import pytest

from flows.stages.publish import in_order, is_sorted_by

KEYS = ("a", "b", "c")


def _frame(seed: int, n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "a": rng.integers(0, 5, n),
            "b": rng.choice(["x", "y", "z"], n),
            "c": rng.integers(0, 3, n),
            "payload": np.arange(n),
        }
    )
    nulls = rng.random(n) < 0.1
    return frame.with_columns(pl.when(pl.lit(nulls)).then(None).otherwise("b").alias("b"))


@pytest.mark.parametrize("seed", range(5))
def test_matches_a_stable_sort(seed):
    frame = _frame(seed)
    expected = frame.sort(KEYS, maintain_order=True)
    assert not is_sorted_by(frame, KEYS)
    assert in_order(frame, KEYS).equals(expected)
    assert is_sorted_by(expected, KEYS)
    assert in_order(expected, KEYS) is expected  # no copy


@pytest.mark.parametrize("seed", range(5))
def test_one_swapped_pair_is_noticed(seed):
    ordered = _frame(seed).sort(KEYS)
    rows = ordered.to_dicts()
    i = next(
        i
        for i in range(1, len(rows))
        if [rows[i][k] for k in KEYS] != [rows[i - 1][k] for k in KEYS]
    )
    rows[i - 1], rows[i] = rows[i], rows[i - 1]
    swapped = pl.DataFrame(rows, schema=ordered.schema)
    assert not is_sorted_by(swapped, KEYS)
    assert is_sorted_by(swapped.head(1), KEYS) and is_sorted_by(swapped.head(0), KEYS)
