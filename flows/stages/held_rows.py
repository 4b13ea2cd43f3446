"""Output rows kept where they were computed (a shard's lists), checked against the
catalogue there, until the publish fetches them one part at a time; and the track
neighbours, a task of their own.

The run's process gets each part's summary (rows, users, rows dropped) for its checks and
progress, and then its rows, stamped with the run's columns, one part after the other, for
the cache and the publish (flows/storage/base.py's FrameParts): at no time more than one
part's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from flows.params import NightlyParams
from flows.stages import recommendations
from flows.stages.publish import drop_dangling
from flows.stages.shards import ShardData, model_inputs_of
from flows.stages.similarity import collaborative_neighbors, typed
from flows.tracking import release_free_memory
from models.matrix import InteractionMatrix
from transforms.sizes import frames_size

LISTS, NEIGHBOURS = "recommendation_data", "content_similarity"


@dataclass(frozen=True)
class RowsSummary:
    """What the run records of held rows: rows, users they name (lists), rows dropped."""

    rows: int
    users: int
    dropped: int  # rows naming an id absent from the catalogue, left out


@dataclass(frozen=True)
class HeldRows:
    """Rows of an output table, checked, and their summary."""

    rows: pl.DataFrame
    summary: RowsSummary

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def checked_rows(table: str, rows: pl.DataFrame, ids: dict[str, pl.Series]) -> HeldRows:
    """Return `table`'s rows without those naming an id absent from the catalogue (`ids`)."""
    kept, dropped = drop_dangling({table: rows}, ids)
    rows = kept[table]
    users = rows["user_id"].n_unique() if "user_id" in rows.columns else 0
    return HeldRows(rows, RowsSummary(rows.height, users, dropped.get(table, 0)))


def shard_lists(
    data: ShardData,
    side: recommendations.ItemSide,
    params: NightlyParams,
    ids: dict[str, pl.Series],
) -> HeldRows:
    """Return the recommendation_data rows of a nightly's shard's users, scored where the
    shard is with the item side the run fitted (`side`, sent once to each worker), checked."""
    model = model_inputs_of(data)
    rows = recommendations.compute_recommendations(side, model.interactions, model.follows, params)
    release_free_memory()  # the scoring's blocks, freed on a worker holding its shards
    return checked_rows(LISTS, rows, ids)


def track_neighbours(k: int, *parts: InteractionMatrix) -> dict[str, np.ndarray]:
    """Return the tracks' collaborative top-k neighbours (source_id, target_id, score, rank
    as arrays: sent without a copy, where a frame is serialised whole), from the shards'
    user×track matrices (in shard order: every user's, stacked)."""
    matrix = InteractionMatrix.stacked(list(parts))
    del parts
    rows = collaborative_neighbors(matrix, k)
    del matrix
    release_free_memory()  # the kNN's lists, not carried into the worker's next task
    return {name: rows[name].to_numpy() for name in rows.columns}


def track_rows(arrays: dict[str, np.ndarray]) -> pl.DataFrame:
    """Return ``track_neighbours``' arrays as content_similarity rows."""
    return typed(pl.DataFrame(arrays), "track", "track", "collaborative")


def rows_summary(held: HeldRows) -> RowsSummary:
    """Return held rows' summary (small: sent to the run's process)."""
    return held.summary


def stamped(held: HeldRows, stamp: Callable[..., pl.DataFrame], *args) -> pl.DataFrame:
    """Return held rows stamped by `stamp(rows, *args)` (the run's columns, in the table's
    order: parts in order then make the whole table's)."""
    return stamp(held.rows, *args)
