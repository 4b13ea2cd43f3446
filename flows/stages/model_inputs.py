"""What the nightly's model stages read of a shard, computed where the shard ran.

A shard's validated rows become its users' interactions and temporal-holdout pairs (both
per user: a user's rows are all in one shard) and its users' follows. Concatenated in shard
order (contiguous, ascending user ranges) they are the frames the one-shard run computes,
row for row: the raw play and usage events never leave the shard.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import polars as pl

from flows.params import NightlyParams
from flows.stages.evaluation import holdout_pairs
from flows.stages.extract import Inputs
from flows.stages.interactions import Interactions, build_interactions, weighting

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
class CombinedInputs:
    """The model stages' inputs: the catalogue with every user's follows, the interactions,
    and the holdout's (train, test) pairs."""

    inputs: Inputs
    interactions: Interactions
    train: pl.DataFrame
    test: pl.DataFrame


def combined_model_inputs(parts: list[ModelInputs], catalogue: Inputs) -> CombinedInputs:
    """Return the shards' model inputs (home first, then by user range) with the validated
    `catalogue` as one run's."""
    follows = _stacked([p.follows for p in parts]).sort("id")
    names = [f.name for f in fields(Interactions)]
    inter = Interactions(
        **{name: _stacked([getattr(p.interactions, name) for p in parts]) for name in names}
    )
    return CombinedInputs(
        catalogue.replace(follows=follows),
        inter,
        _stacked([p.train for p in parts]),
        _stacked([p.test for p in parts]),
    )
