"""seed_matches equals the plain join it replaces, on random data and across user blocks."""

import numpy as np
import polars as pl
import pytest

import transforms.recommend.seeds as rec_seeds
from transforms.recommend.seeds import seed_matches


def _random(seed: int):
    rng = np.random.default_rng(seed)
    todo = pl.DataFrame(
        {"user_id": rng.integers(0, 40, 300), "item_id": rng.integers(100, 160, 300)}
    ).unique()
    pairs = pl.DataFrame(
        {
            "seed_id": rng.integers(100, 170, 400),
            "item_id": rng.integers(100, 160, 400),
            "similarity": rng.random(400),
        }
    ).unique(["seed_id", "item_id"], keep="first")
    liked = pl.DataFrame(
        {
            "user_id": rng.integers(0, 50, 500),
            "seed_id": rng.integers(100, 170, 500),
            "weight": rng.normal(1.0, 1.0, 500),  # some negative: never a seed
        }
    ).unique(["user_id", "seed_id"], keep="first")
    return todo, pairs, liked


def _reference(todo, pairs, liked) -> pl.DataFrame:
    joined = todo.join(pairs, on="item_id").join(liked, on=["user_id", "seed_id"])
    return (
        joined.select("user_id", "item_id", "seed_id", strength=pl.col("similarity") * "weight")
        .filter(pl.col("strength") > 0)
        .sort("user_id", "item_id", "seed_id")
    )


@pytest.mark.parametrize("block_rows", [1 << 15, 7])  # one block, then many small ones
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_equal_the_join(monkeypatch, seed, block_rows):
    monkeypatch.setattr(rec_seeds, "BLOCK_ROWS", block_rows)
    todo, pairs, liked = _random(seed)
    got = seed_matches(todo, pairs, liked)
    expected = _reference(todo, pairs, liked)
    assert got.height > 0
    assert got.equals(expected)


def test_empty_inputs_give_the_schema():
    todo, pairs, liked = _random(0)
    empty = seed_matches(todo.head(0), pairs, liked)
    assert empty.height == 0 and empty.columns == ["user_id", "item_id", "seed_id", "strength"]


@pytest.mark.parametrize("block_rows", [1 << 15, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_top_keeps_each_rows_strongest_seeds(monkeypatch, seed, block_rows):
    monkeypatch.setattr(rec_seeds, "BLOCK_ROWS", block_rows)
    todo, pairs, liked = _random(seed)
    pairs = pairs.with_columns(pl.col("similarity").round(1))  # ties in strength
    liked = liked.with_columns(pl.col("weight").round(0))
    got = seed_matches(todo, pairs, liked, top=2)
    expected = (
        _reference(todo, pairs, liked)
        .sort(["user_id", "item_id", "strength", "seed_id"], descending=[False, False, True, False])
        .filter(pl.int_range(pl.len()).over("user_id", "item_id") < 2)
    )
    assert got.height > 0 and got.equals(expected)


def test_repeated_liked_pairs_are_summed():
    todo, pairs, liked = _random(3)
    repeated = pl.concat([liked, liked.head(100).with_columns(pl.col("weight") * 0.5)])
    summed = repeated.group_by("user_id", "seed_id").agg(pl.col("weight").sum())
    got = seed_matches(todo, pairs, repeated)
    expected = _reference(todo, pairs, summed)
    assert got.select("user_id", "item_id", "seed_id").equals(
        expected.select("user_id", "item_id", "seed_id")
    )
    assert np.allclose(got["strength"].to_numpy(), expected["strength"].to_numpy())


def test_sparse_large_ids_give_the_same_matches():
    todo, pairs, liked = _random(4)
    big = 10**12  # far outside a compact range: coded by np.unique instead of a flag table
    shift = [pl.col(c) + big for c in ("item_id", "seed_id") if c in pairs.columns]
    got = seed_matches(
        todo.with_columns(pl.col("item_id") + big),
        pairs.with_columns(shift),
        liked.with_columns(pl.col("seed_id") + big),
    )
    expected = _reference(todo, pairs, liked).with_columns(
        pl.col("item_id") + big, pl.col("seed_id") + big
    )
    assert got.height > 0 and got.equals(expected)
