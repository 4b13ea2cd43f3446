"""Daily metrics of shards of users: each shard's partials combine into the rows of one shard
holding everyone, exactly (the scale-out's reduce, issue 29)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, timedelta

import polars as pl
import pytest
from dask.sizeof import sizeof
from polars.testing import assert_frame_equal

from transforms.daily_metrics import (
    MetricInputs,
    combine_partials,
    daily_metrics,
    metric_columns,
    metric_partials,
    metrics_from_partials,
)
from transforms.synthetic.frames import generate_frames

END = date(2024, 6, 30)
DATES = [END - timedelta(days=n) for n in range(20)]
DAY = END - timedelta(days=2)  # a full day of the generated window (it ends before END)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_frames(150, 400, 20, seed=11, end=END)


def metric_inputs(frames: dict[str, pl.DataFrame]) -> MetricInputs:
    return MetricInputs(
        plays=frames["play_history"],
        usage=frames["usage_metrics"],
        users=frames["users"],
        tracks=frames["tracks"],
        favorites=frames["favorites"],
        collection_items=frames["user_collection_items"],
        follows=frames["user_follows"],
        inventory=frames["store_inventory"],
    )


def sharded(inputs: MetricInputs, owners: pl.DataFrame, shards: int) -> list[MetricInputs]:
    """Split every per-user table by user id modulo `shards` (anonymous usage in shard 0,
    collection items by their collection's owner); the catalogue whole in each shard."""
    items = inputs.collection_items.join(owners, on="collection_id", how="left")

    def of(frame: pl.DataFrame, column: str, k: int) -> pl.DataFrame:
        home = pl.col(column).is_null() if k == 0 else pl.lit(False)
        return frame.filter((pl.col(column) % shards == k) | home)

    return [
        replace(
            inputs,
            plays=of(inputs.plays, "user_id", k),
            usage=of(inputs.usage, "user_id", k),
            users=of(inputs.users, "id", k),
            favorites=of(inputs.favorites, "user_id", k),
            collection_items=of(items, "owner", k).drop("owner"),
            follows=of(inputs.follows, "user_id", k),
        )
        for k in range(shards)
    ]


def owners(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return frames["user_collections"].select(
        pl.col("id").alias("collection_id"), pl.col("user_id").alias("owner")
    )


def from_shards(shards: list[MetricInputs], dates=DATES) -> pl.DataFrame:
    return metrics_from_partials(
        combine_partials([metric_partials(s, dates) for s in shards]), dates
    )


@pytest.mark.parametrize("shards", [2, 5])
def test_shards_combine_into_the_one_shard_rows_exactly(frames, shards):
    inputs = metric_inputs(frames)
    assert inputs.usage["user_id"].null_count() > 0  # anonymous events have a home shard
    parts = sharded(inputs, owners(frames), shards)
    assert sum(p.plays.height for p in parts) == inputs.plays.height
    assert_frame_equal(from_shards(parts), daily_metrics(inputs, DATES), check_exact=True)


def test_one_date_from_shards_equals_one_date_alone(frames):
    inputs = metric_inputs(frames)
    parts = sharded(inputs, owners(frames), 3)
    expected = daily_metrics(inputs, [END])
    assert_frame_equal(from_shards(parts, [END]), expected, check_exact=True)


def sessions(rows: pl.DataFrame, day: date) -> float:
    return rows.filter(
        (pl.col("metric_date") == day)
        & (pl.col("metric_type") == "platform")
        & (pl.col("metric_name") == "sessions")
    )["metric_value"].item()


def test_a_session_named_by_users_of_two_shards_counts_once(frames):
    inputs = metric_inputs(frames)
    plays = inputs.plays.filter(pl.col("played_at").dt.date() == DAY).sort("id")
    first = plays.filter(pl.col("user_id") % 2 == 0).row(0, named=True)
    other = plays.filter(
        (pl.col("user_id") % 2 == 1) & (pl.col("session_id") != first["session_id"])
    ).row(0, named=True)
    shared = inputs.plays.with_columns(
        pl.when(pl.col("id") == other["id"])
        .then(pl.lit(first["session_id"]))
        .otherwise(pl.col("session_id"))
        .alias("session_id")
    )
    inputs = replace(inputs, plays=shared)
    parts = sharded(inputs, owners(frames), 2)
    whole = daily_metrics(inputs, [DAY])
    assert_frame_equal(from_shards(parts, [DAY]), whole, check_exact=True)
    per_shard = sum(sessions(daily_metrics(p, [DAY]), DAY) for p in parts)
    assert per_shard == sessions(whole, DAY) + 1  # a plain sum would count it twice


def test_the_order_of_shards_and_an_empty_shard_change_nothing(frames):
    inputs = metric_inputs(frames)
    parts = sharded(inputs, owners(frames), 3)
    empty = replace(
        inputs, **{f.name: getattr(inputs, f.name).clear() for f in fields(MetricInputs)}
    )
    empty = replace(empty, tracks=inputs.tracks, inventory=inputs.inventory)
    expected = daily_metrics(inputs, DATES)
    assert_frame_equal(from_shards([*reversed(parts), empty]), expected, check_exact=True)


def test_combining_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        combine_partials([])


def test_the_columns_a_shard_keeps_give_the_same_rows(frames):
    inputs = metric_inputs(frames)
    kept = metric_columns(inputs)
    assert kept.tracks.columns != inputs.tracks.columns  # the catalogue's other columns go
    assert kept.tracks.estimated_size() < inputs.tracks.estimated_size()
    assert_frame_equal(daily_metrics(kept, DATES), daily_metrics(inputs, DATES), check_exact=True)


def test_partials_tell_dask_the_bytes_of_their_frames(frames):
    parts = metric_partials(metric_inputs(frames), DATES)
    held = sum(getattr(parts, f.name).estimated_size() for f in fields(parts))
    assert held > 10_000
    assert held <= sizeof(parts) <= held + 10_000  # sys.getsizeof adds the GC header
