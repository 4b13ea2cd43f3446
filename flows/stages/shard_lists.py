"""A nightly shard's lists: scored where the shard is, checked against the catalogue there,
and kept there until the publish fetches them one shard at a time.

The run's process gets each shard's summary (rows, users, rows dropped) for its checks and
progress, and then its rows, stamped with the run's columns, one shard after the other,
for the cache and the publish (flows/storage/base.py's FrameParts): at no time more than
one shard's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from flows.params import NightlyParams
from flows.stages import recommendations
from flows.stages.publish import drop_dangling, stamp_recommendations
from flows.stages.shards import ShardData, model_inputs_of
from flows.tracking import release_free_memory
from transforms.sizes import frames_size

TABLE = "recommendation_data"


@dataclass(frozen=True)
class ListsSummary:
    """What the run records of a shard's lists: rows, users with a list, rows dropped."""

    rows: int
    users: int
    dropped: int  # rows naming an id absent from the catalogue, left out


@dataclass(frozen=True)
class ShardLists:
    """A shard's recommendation_data rows, checked, and their summary."""

    rows: pl.DataFrame
    summary: ListsSummary

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def shard_lists(
    data: ShardData,
    side: recommendations.ItemSide,
    params: NightlyParams,
    ids: dict[str, pl.Series],
) -> ShardLists:
    """Return the recommendation_data rows of a nightly's shard's users, scored where the
    shard is with the item side the run fitted (`side`, sent once to each worker), without
    rows naming an id absent from the catalogue (`ids`)."""
    model = model_inputs_of(data)
    rows = recommendations.compute_recommendations(side, model.interactions, model.follows, params)
    kept, dropped = drop_dangling({TABLE: rows}, ids)
    rows = kept[TABLE]
    release_free_memory()  # the scoring's blocks, freed on a worker holding its shards
    summary = ListsSummary(rows.height, rows["user_id"].n_unique(), dropped.get(TABLE, 0))
    return ShardLists(rows, summary)


def lists_summary(lists: ShardLists) -> ListsSummary:
    """Return a shard's lists' summary (small: sent to the run's process)."""
    return lists.summary


def stamped_lists(
    lists: ShardLists, run_id: str, now: datetime, version: str, expires: datetime
) -> pl.DataFrame:
    """Return a shard's lists stamped with the run's columns, in the lookup index's order
    (shards hold ascending user ranges: in shard order, the whole table's order)."""
    return stamp_recommendations(lists.rows, run_id, now, version, expires)
