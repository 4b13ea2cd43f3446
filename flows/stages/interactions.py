"""Interactions and their matrices: the first model stage, shared by every later one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import scipy.sparse as sp

from flows.params import NightlyParams
from flows.stages.extract import Inputs
from models.matrix import InteractionMatrix
from transforms.interactions import (
    InteractionParams,
    record_interactions,
    track_interactions,
    user_history,
    user_track_history,
)
from transforms.recommend.preferences import facet_keys


@dataclass(frozen=True)
class Interactions:
    """Weighted user×item pairs for records and tracks, and what each user has already seen."""

    records: pl.DataFrame  # user_id, item_id, weight, events, last_at
    tracks: pl.DataFrame
    history: pl.DataFrame  # user_id, record_id
    track_history: pl.DataFrame  # user_id, track_id


def weighting(params: NightlyParams) -> InteractionParams:
    """Return the interaction weighting of a run (a half-life of 0: no time decay)."""
    return InteractionParams(half_life_days=params.half_life_days or math.inf)


def build_record_interactions(
    inputs: Inputs, as_of: datetime, params: InteractionParams
) -> pl.DataFrame:
    """Return the weighted user×record interactions of validated inputs."""
    return record_interactions(
        plays=inputs.plays,
        usage=inputs.usage,
        favorites=inputs.favorites,
        collection_items=inputs.collection_items,
        tracks=inputs.tracks,
        collections=inputs.collections,
        as_of=as_of,
        params=params,
    )


def build_interactions(inputs: Inputs, as_of: datetime, params: InteractionParams) -> Interactions:
    """Return the weighted interactions and seen-item history of validated inputs."""
    records = build_record_interactions(inputs, as_of, params)
    tracks = track_interactions(inputs.plays, inputs.favorites, as_of=as_of, params=params)
    history = user_history(
        plays=inputs.plays,
        favorites=inputs.favorites,
        collections=inputs.collections,
        collection_items=inputs.collection_items,
        tracks=inputs.tracks,
    )
    return Interactions(records, tracks, history, user_track_history(inputs.plays))


def to_matrix(pairs: pl.DataFrame, all_items: np.ndarray | None = None) -> InteractionMatrix:
    """Return the user×item matrix of the positive pairs (ID maps travel with it)."""
    positive = pairs.filter(pl.col("weight") > 0)
    return InteractionMatrix.from_arrays(
        positive["user_id"].to_numpy(),
        positive["item_id"].to_numpy(),
        positive["weight"].to_numpy().astype(np.float32),
        all_items=all_items,
    )


def genre_matrix(items: pl.DataFrame, matrix: InteractionMatrix) -> sp.csr_matrix:
    """Return the matrix's items × genres 0/1 matrix from `items` (id, genres: list of text).

    Rows follow the matrix's columns (an item absent from `items` has no genre), columns
    the sorted genre names (``facet_keys``' codes); a genre repeated on an item counts once,
    null or empty ones not at all.
    """
    keys = facet_keys(items, "genres", is_list=True)
    rows = matrix.item_index(keys["item_id"].to_numpy())
    cols = keys["code"].to_numpy().astype(np.int64) - 1
    found = rows >= 0
    return sp.csr_matrix(
        (np.ones(int(found.sum())), (rows[found], cols[found])),
        shape=(matrix.shape[1], int(keys["code"].max() or 0)),
    )
