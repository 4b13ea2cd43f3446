"""What the nightly's model stages read of a shard, computed where the shard ran.

A shard's validated rows become its users' interactions and temporal-holdout pairs (both
per user: a user's rows are all in one shard) and its users' follows, kept where the shard
ran. The run gathers what the item models are fitted on (``FitInputs``): stacked in shard
order (contiguous, ascending user ranges) they are the matrices the one-shard run computes,
entry for entry. The raw play and usage events never leave the shard, and its users'
histories and follows stay there for the lists scored where it is.

What a shard sends is coded where it ran: its users' positive pairs as sparse matrices
(8 bytes a pair, where the frames took 36), the holdout's test pairs as ids, and its record
popularity and track listeners as partial sums per item. Its user×track matrix goes to the
task that computes the track neighbours, not to the run's process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import polars as pl

from flows.params import NightlyParams
from flows.stages.evaluation import holdout_pairs
from flows.stages.extract import Inputs
from flows.stages.interactions import Interactions, build_interactions, to_matrix, weighting
from models.matrix import InteractionMatrix
from transforms.recommend.fallback import combined_popularity, record_popularity
from transforms.sizes import arrays_size, frames_size

#: The per-user tables a shard holds of its own users only (the rest: the catalogue's).
PER_USER = ("plays", "usage", "favorites", "collection_items", "follows")


@dataclass(frozen=True)
class ModelInputs:
    """A shard's users' interactions, holdout (train, test) pairs and follows."""

    interactions: Interactions
    train: pl.DataFrame
    test: pl.DataFrame
    follows: pl.DataFrame


def shard_model_inputs(valid: Inputs, params: NightlyParams, as_of: datetime) -> ModelInputs:
    """Return what the model stages read of one shard's validated inputs."""
    train, test = holdout_pairs(valid, params, as_of)
    inter = build_interactions(valid, as_of, weighting(params))
    return ModelInputs(inter, train, test, valid.follows)


@dataclass(frozen=True)
class FitInputs:
    """What the item models' fit and the holdout read of every user: the positive
    user×record matrix, the holdout's train matrix and test pairs, the records' popularity
    (``record_popularity``'s frame) and the tracks' listeners (``track_listeners``')."""

    records: InteractionMatrix
    train: InteractionMatrix
    test: pl.DataFrame  # user_id, item_id: the records first liked in the holdout's days
    popularity: pl.DataFrame
    listeners: pl.DataFrame

    def __sizeof__(self) -> int:
        return frames_size(self) + arrays_size(self)  # what Dask counts (transforms/sizes.py)

    def without_holdout(self) -> FitInputs:
        """Return the inputs without the holdout's (once the evaluation has scored them)."""
        none = InteractionMatrix.from_arrays([], [])
        return replace(self, train=none, test=self.test.clear())


def fit_inputs(model: ModelInputs) -> FitInputs:
    """Return what the fit and the holdout read of a shard's model inputs, coded."""
    inter = model.interactions
    return FitInputs(
        to_matrix(inter.records),
        to_matrix(model.train),
        model.test.select("user_id", "item_id"),
        record_popularity(inter.records),
        track_listeners(track_matrix(model)),
    )


def track_matrix(model: ModelInputs) -> InteractionMatrix:
    """Return the positive user×track matrix of a shard's model inputs."""
    return to_matrix(model.interactions.tracks)


def track_listeners(tracks: InteractionMatrix) -> pl.DataFrame:
    """Return (item_id, listeners): each track's users with a positive interaction (the
    positive user×track matrix's entries in its column)."""
    listeners = np.bincount(tracks.matrix.indices, minlength=tracks.shape[1])
    return pl.DataFrame(
        {"item_id": tracks.item_ids, "listeners": listeners},
        schema={"item_id": pl.Int64, "listeners": pl.UInt32},
    )


def combined_listeners(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Return the track listeners of users split in disjoint groups (by item_id), from each
    group's: a user listens in one group only, so the counts add up."""
    if len(parts) == 1:
        return parts[0]
    stacked = pl.concat(parts).group_by("item_id").agg(pl.col("listeners").sum())
    return stacked.sort("item_id")


def combined_fit_inputs(parts: list[FitInputs]) -> FitInputs:
    """Return the shards' fit inputs (home first, then by user range) as one run's: the
    matrices and pairs the one-shard run computes, entry for entry."""
    if len(parts) == 1:
        return parts[0]
    return FitInputs(
        InteractionMatrix.stacked([p.records for p in parts]),
        InteractionMatrix.stacked([p.train for p in parts]),
        pl.concat([p.test for p in parts], how="vertical_relaxed"),
        combined_popularity([p.popularity for p in parts]),
        combined_listeners([p.listeners for p in parts]),
    )
