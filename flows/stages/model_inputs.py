"""What the nightly's model stages read of a shard, computed where the shard ran.

A shard's validated rows become its users' interactions and temporal-holdout pairs (both
per user: a user's rows are all in one shard) and its users' follows, kept where the shard
ran. The run gathers what the item models are fitted on (``FitInputs``): concatenated in
shard order (contiguous, ascending user ranges) they are the frames the one-shard run
computes, row for row. The raw play and usage events never leave the shard, and its users'
histories and follows stay there for the lists scored where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import polars as pl

from flows.params import NightlyParams
from flows.stages.evaluation import holdout_pairs
from flows.stages.extract import Inputs
from flows.stages.interactions import Interactions, build_interactions, weighting
from transforms.sizes import frames_size

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


def _stacked(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Return the shards' frames one after the other (an empty shard's types relaxed)."""
    return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]


@dataclass(frozen=True)
class FitInputs:
    """What the item models' fit and the holdout read of every user: the positive
    user×record and user×track pairs, and the holdout's (train, test) pairs."""

    records: pl.DataFrame
    tracks: pl.DataFrame
    train: pl.DataFrame
    test: pl.DataFrame

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)

    def without_holdout(self) -> FitInputs:
        """Return the pairs without the holdout's (once the evaluation has scored them)."""
        return FitInputs(self.records, self.tracks, self.train.clear(), self.test.clear())


def fit_inputs(model: ModelInputs) -> FitInputs:
    """Return what the fit and the holdout read of a shard's model inputs."""
    inter = model.interactions
    return FitInputs(inter.records, inter.tracks, model.train, model.test)


def combined_fit_inputs(parts: list[FitInputs]) -> FitInputs:
    """Return the shards' fit inputs (home first, then by user range) as one run's: the
    frames the one-shard run computes, row for row."""
    names = [f.name for f in fields(FitInputs)]
    return FitInputs(**{name: _stacked([getattr(p, name) for p in parts]) for name in names})
