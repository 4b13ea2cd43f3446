"""The robustness suite's data: variants of MovieLens 100k and synthetic Rotation data, each
split per seed into train, test and a validation pair carved out of train (bench/robustness.py).

Every variant is fixed before any figure is seen: the densities and the ≥ 20 threshold come
from issue #34, the subsample seed is DENSITY_SEED, the taste strengths TASTE_SHARES.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.profiles import DAYS, END, PROFILES
from bench.quality import split_from_pairs
from flows.params import NightlyParams
from flows.stages.evaluation import (
    MAX_HOLDOUT_USERS,
    _before,
    holdout_matrices,
    holdout_pairs,
    sample_users,
)
from flows.stages.extract import day_end, extract_inputs
from flows.stages.interactions import genre_matrix
from flows.stages.validate import validate_inputs
from flows.storage.backends import open_storage
from flows.storage.bulk import write_frames
from flows.storage.database import parse_database
from flows.storage.migrate import migrate
from models.matrix import InteractionMatrix
from models.split import stratified_split
from models.tuning import validation_split
from transforms.synthetic.frames import generate_frames

#: The subsample of the density variants is drawn once with this seed (one data set per
#: variant); the split seeds then vary only the split, as for the full data.
DENSITY_SEED = 0
#: Items with at least this many interactions (in the whole file) form the head variant.
HEAD_MIN = 20
#: ml-100k variants: name → (share of each user's pairs kept, catalogue band).
MOVIELENS_VARIANTS = {
    "ml-100k all": (1.0, None),
    "ml-100k 50 %": (0.5, None),
    "ml-100k 25 %": (0.25, None),
    f"ml-100k items >= {HEAD_MIN}": (1.0, "head"),
    f"ml-100k items < {HEAD_MIN}": (1.0, "tail"),
}
#: Synthetic variants: name → the generator's ``explore_share`` (listens outside the user's
#: favourite genres): its default 0.15 (strong taste) and 0.5 (weak taste, more popularity).
TASTE_SHARES = {"synthetic taste 0.15": 0.15, "synthetic taste 0.50": 0.5}


@dataclass(frozen=True)
class Split:
    """One seed's matrices of a variant, all in train's rows and columns."""

    train: sp.csr_matrix
    test: sp.csr_matrix  # may have more columns than train: test-only items, misses
    fit: sp.csr_matrix  # validation pair, carved out of train
    val: sp.csr_matrix
    genres: sp.csr_matrix | None
    users: np.ndarray  # train rows scored
    keys: np.ndarray  # one key per scored user, the same for the same user in every seed
    pairs: int  # interactions of the variant (train + test, or the generated positives)


@dataclass(frozen=True)
class SyntheticSize:
    """The generated data set's size (default: bench/profiles.py's S)."""

    users: int = PROFILES["S"].users
    tracks: int = PROFILES["S"].tracks
    plays: int = PROFILES["S"].plays
    events: int = PROFILES["S"].events
    days: int = DAYS


def keep_share(pairs: pl.DataFrame, share: float, seed: int = DENSITY_SEED) -> pl.DataFrame:
    """Return `pairs` with n - max(1, round((1 - share)·n)) of each user's n pairs kept (all
    when share is 1): models/split.py's per-user random draw, in (user, item) order."""
    if share >= 1.0:
        return pairs
    pairs = pairs.sort(["user_id", "item_id"])
    _, dropped = stratified_split(
        pairs["user_id"].to_numpy(),
        pairs["item_id"].to_numpy(),
        test_share=1.0 - share,
        seed=seed,
        min_interactions=1,
    )
    return pairs.filter(pl.Series(~dropped))


def item_band(pairs: pl.DataFrame, band: str | None, threshold: int = HEAD_MIN) -> pl.DataFrame:
    """Return the pairs of items with ≥ `threshold` pairs ("head"), < it ("tail"), or all."""
    if band is None:
        return pairs
    counts = pl.col("item_id").count().over("item_id")
    return pairs.filter(counts >= threshold if band == "head" else counts < threshold)


def movielens_variant(pairs: pl.DataFrame, name: str) -> pl.DataFrame:
    """Return the pairs of the ml-100k variant `name` (MOVIELENS_VARIANTS)."""
    share, band = MOVIELENS_VARIANTS[name]
    return keep_share(item_band(pairs, band), share)


def movielens_split(pairs: pl.DataFrame, items: pl.DataFrame | None, seed: int) -> Split:
    """Return the DESIGN protocol split of `pairs` with `seed` (bench/quality.py's path) and
    its validation pair (10 % of each user's train pairs, seed + 1, as bench/quality.py)."""
    matrix, test, _, genres = split_from_pairs(pairs, items, seed)
    fit, val = validation_split(matrix.matrix, seed=seed + 1)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    keys = matrix.user_ids[users]  # the same data every seed: a user is the same id
    return Split(matrix.matrix, test, fit, val, genres, users, keys, pairs.height)


def _coded(matrix: InteractionMatrix, pairs: pl.DataFrame, weights: bool) -> sp.csr_matrix:
    """Return `pairs` (user_id, item_id, weight) as a matrix of `matrix`'s rows and columns
    (pairs of users or items it lacks left out); weight 1 unless `weights`."""
    pairs = pairs.filter(pl.col("weight") > 0)
    rows = matrix.user_index(pairs["user_id"].to_numpy())
    cols = matrix.item_index(pairs["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    data = pairs["weight"].to_numpy()[keep] if weights else np.ones(int(keep.sum()))
    coo = (data.astype(np.float32), (rows[keep], cols[keep]))
    return sp.csr_matrix(coo, shape=matrix.shape)


def synthetic_inputs(seed: int, explore_share: float, size: SyntheticSize, workdir: Path):
    """Return (validated Inputs, run date): generated data loaded into a DuckDB file and read
    back by the nightly's extract and validation, as a run on that file would."""
    db = parse_database(f"duckdb://{workdir / f'synthetic-{seed}-{explore_share}.duckdb'}")
    migrate(db)
    frames = generate_frames(
        size.users,
        size.tracks,
        size.days,
        seed,
        END,
        plays=size.plays,
        events=size.events,
        explore_share=explore_share,
    )
    write_frames(db, frames, replace=True)
    del frames
    run_date = END - timedelta(days=1)
    with open_storage(db) as storage:
        inputs = extract_inputs(storage, run_date, size.days)
    db.path.unlink()
    return validate_inputs(inputs, day_end(run_date)).inputs, run_date


def synthetic_split(seed: int, explore_share: float, size: SyntheticSize) -> Split:
    """Return the generated data's split: test = the nightly's temporal holdout (the last
    `holdout_days` days), validation = the same holdout of the data before them."""
    with tempfile.TemporaryDirectory(prefix="rotation-robustness-") as workdir:
        inputs, run_date = synthetic_inputs(seed, explore_share, size, Path(workdir))
    params = NightlyParams(run_date=run_date, window_days=size.days)
    as_of = day_end(run_date)
    train, test = holdout_pairs(inputs, params, as_of)
    matrix, test_csr = holdout_matrices(train, test, unknown_items="drop")
    # validation: the tune flow's split (its holdout) as of the test's cutoff, nothing after
    cutoff = as_of - timedelta(days=params.holdout_days)
    earlier = NightlyParams(run_date=run_date - timedelta(days=params.holdout_days))
    fit, val = holdout_pairs(_before(inputs, cutoff), earlier, cutoff)
    every = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    users = sample_users(every, matrix.user_ids[every], MAX_HOLDOUT_USERS)  # as holdout_quality
    keys = (seed << 40) + matrix.user_ids[users]  # other data each seed: other users
    positives = int((train["weight"] > 0).sum()) + test.height
    return Split(
        matrix.matrix,
        test_csr,
        _coded(matrix, fit, weights=True),
        _coded(matrix, val, weights=False),
        genre_matrix(inputs.records, matrix),
        users,
        keys,
        positives,
    )
