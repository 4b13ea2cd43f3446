"""Implicit-feedback interactions: one weighted, time-decayed (user, item) row per pair.

Each behaviour row becomes an event with a base weight (see `InteractionParams`):

- play_history: 'complete' → complete_weight; a terminal row ('skip' or 'pause') with
  completion ≥ long_play_min_completion → long_play_weight; a 'skip' with completion <
  early_skip_max_completion → early_skip_weight (a weak negative). Other rows ('play',
  'seek', mid-way skips and pauses) are not events. A null (or NaN) completion counts as 0.
- favorites → favorite_weight; user_collection_items (the user of their collection) →
  collection_weight; usage_metrics 'page_view' events of a record → page_view_weight.

An event's weight is multiplied by 0.5 ** (age_days / half_life_days), age measured from the
event time to `as_of` (future events have age 0). Weights are summed per pair; pairs whose sum
is ≤ min_weight are dropped. Events with a null user, item or time are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from transforms import coerce as co
from transforms.columns import PAGE_VIEW

USER, ITEM, AT, WEIGHT = "user_id", "item_id", "at", "weight"
OUTPUT_SCHEMA = {
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "weight": pl.Float64,
    "events": pl.Int64,
    "last_at": co.UTC_DATETIME,
}
_EVENTS_SCHEMA = {USER: pl.Int64, ITEM: pl.Int64, AT: co.UTC_DATETIME, WEIGHT: pl.Float64}
_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
#: The event columns the interactions read (the rest serve the daily metrics only).
PLAY_COLUMNS_USED = ("user_id", "track_id", "action", "played_at", "completion_percentage")
USAGE_COLUMNS_USED = ("user_id", "event_type", "entity_type", "entity_id", "occurred_at")


@dataclass(frozen=True)
class InteractionParams:
    """Base weights of each kind of event, and the time decay."""

    complete_weight: float = 1.0  # a play that reached the end
    long_play_weight: float = 0.6  # a 'skip' or 'pause' after most of the track
    long_play_min_completion: float = 60.0  # percent
    early_skip_weight: float = -0.3  # a 'skip' near the start: weak negative
    early_skip_max_completion: float = 30.0  # percent (exclusive)
    favorite_weight: float = 3.0
    collection_weight: float = 4.0
    page_view_weight: float = 0.2
    half_life_days: float = 30.0  # an event this old counts half
    min_weight: float = 0.0  # pairs whose summed weight is ≤ this are dropped

    def __post_init__(self) -> None:
        if not self.half_life_days > 0:
            raise ValueError("half_life_days must be > 0")


def _cast(frame: pl.DataFrame, kinds: dict[str, str], used: list[str], table: str):
    co.require_columns(frame, used, table)
    return co.coerce(frame.select(used), {c: kinds[c] for c in used})


def _events(frame: pl.DataFrame, user: str, item: str, at: str, weight: pl.Expr):
    """Return (user_id, item_id, at, weight) events of `frame`, rows with a null dropped."""
    return (
        frame.select(
            pl.col(user).alias(USER),
            pl.col(item).alias(ITEM),
            pl.col(at).alias(AT),
            weight.cast(pl.Float64).alias(WEIGHT),
        )
        .drop_nulls()
        .cast(_EVENTS_SCHEMA)
    )


def _play_weight(params: InteractionParams) -> pl.Expr:
    """Return the base weight of a play_history row (null when the row is not an event)."""
    action = pl.col("action")
    completion = pl.col("completion_percentage").fill_nan(None).fill_null(0.0)
    return (
        pl.when(action == "complete")
        .then(pl.lit(params.complete_weight))
        .when(action.is_in(["skip", "pause"]) & (completion >= params.long_play_min_completion))
        .then(pl.lit(params.long_play_weight))
        .when((action == "skip") & (completion < params.early_skip_max_completion))
        .then(pl.lit(params.early_skip_weight))
        .otherwise(pl.lit(None, dtype=pl.Float64))
    )


def _plays(plays: pl.DataFrame) -> pl.DataFrame:
    return _cast(plays, co.PLAY_HISTORY, list(PLAY_COLUMNS_USED), "play_history")


def _favorites(favorites: pl.DataFrame, kind: str) -> pl.DataFrame:
    used = ["user_id", "favoritable_type", "favoritable_id", "created_at"]
    cast = _cast(favorites, co.FAVORITES, used, "favorites")
    return cast.filter(pl.col("favoritable_type") == kind)


def _track_records(tracks: pl.DataFrame) -> pl.DataFrame:
    """Return (track_id, record_id), one row per track id."""
    cast = _cast(tracks, co.TRACKS, ["id", "record_id"], "tracks")
    return cast.rename({"id": "track_id"}).drop_nulls().unique("track_id", keep="first")


def _collected(collections: pl.DataFrame, collection_items: pl.DataFrame) -> pl.DataFrame:
    """Return (user_id, record_id, added_at) of every collection item."""
    owners = _cast(collections, co.COLLECTIONS, ["id", "user_id"], "user_collections")
    used = ["collection_id", "record_id", "added_at"]
    items = _cast(collection_items, co.COLLECTION_ITEMS, used, "user_collection_items")
    owners = owners.rename({"id": "collection_id"}).drop_nulls().unique("collection_id")
    return items.join(owners, on="collection_id", how="inner")


def _aggregate(events: list[pl.DataFrame], as_of: datetime, params: InteractionParams):
    """Return the decayed, summed (user_id, item_id, weight, events, last_at) pairs."""
    age_days = (
        (pl.lit(co.as_utc(as_of), dtype=co.UTC_DATETIME) - pl.col(AT)).dt.total_microseconds()
        / _MICROSECONDS_PER_DAY
    ).clip(lower_bound=0.0)
    decay = pl.lit(0.5).pow(age_days / params.half_life_days)
    return (
        pl.concat(events)
        .sort(USER, ITEM, AT, WEIGHT)
        .group_by(USER, ITEM, maintain_order=True)
        .agg(
            (pl.col(WEIGHT) * decay).sum().alias("weight"),
            pl.len().cast(pl.Int64).alias("events"),
            pl.col(AT).max().alias("last_at"),
        )
        .filter(pl.col("weight") > params.min_weight)
        .cast(OUTPUT_SCHEMA)
        .sort(USER, ITEM)
    )


def record_interactions(
    plays: pl.DataFrame,
    usage: pl.DataFrame,
    favorites: pl.DataFrame,
    collection_items: pl.DataFrame,
    tracks: pl.DataFrame,
    collections: pl.DataFrame,
    *,
    as_of: datetime,
    params: InteractionParams = InteractionParams(),
) -> pl.DataFrame:
    """Return (user_id, item_id = record_id, weight, events, last_at) sorted by user, item."""
    records = _track_records(tracks)
    played = _plays(plays).join(records, on="track_id", how="inner")
    liked_tracks = _favorites(favorites, "track").join(
        records, left_on="favoritable_id", right_on="track_id", how="inner"
    )
    events = _cast(usage, co.USAGE_METRICS, list(USAGE_COLUMNS_USED), "usage_metrics")
    views = events.filter((pl.col("event_type") == PAGE_VIEW) & (pl.col("entity_type") == "record"))
    collected = _collected(collections, collection_items)
    fav = pl.lit(params.favorite_weight)
    parts = [
        _events(played, "user_id", "record_id", "played_at", _play_weight(params)),
        _events(_favorites(favorites, "record"), "user_id", "favoritable_id", "created_at", fav),
        _events(liked_tracks, "user_id", "record_id", "created_at", fav),
        _events(collected, "user_id", "record_id", "added_at", pl.lit(params.collection_weight)),
        _events(views, "user_id", "entity_id", "occurred_at", pl.lit(params.page_view_weight)),
    ]
    return _aggregate(parts, as_of, params)


def track_interactions(
    plays: pl.DataFrame,
    favorites: pl.DataFrame,
    *,
    as_of: datetime,
    params: InteractionParams = InteractionParams(),
) -> pl.DataFrame:
    """Return (user_id, item_id = track_id, weight, events, last_at) sorted by user, item."""
    fav = pl.lit(params.favorite_weight)
    parts = [
        _events(_plays(plays), "user_id", "track_id", "played_at", _play_weight(params)),
        _events(_favorites(favorites, "track"), "user_id", "favoritable_id", "created_at", fav),
    ]
    return _aggregate(parts, as_of, params)


def user_history(
    plays: pl.DataFrame,
    favorites: pl.DataFrame,
    collections: pl.DataFrame,
    collection_items: pl.DataFrame,
    tracks: pl.DataFrame,
) -> pl.DataFrame:
    """Return the unique, sorted (user_id, record_id) a user played, favourited or collected."""
    records = _track_records(tracks)
    played = _plays(plays).join(records, on="track_id", how="inner")
    liked = _favorites(favorites, "track").join(
        records, left_on="favoritable_id", right_on="track_id", how="inner"
    )
    liked_records = _favorites(favorites, "record").rename({"favoritable_id": "record_id"})
    parts = [
        frame.select(pl.col("user_id"), pl.col("record_id"))
        for frame in (played, liked, liked_records, _collected(collections, collection_items))
    ]
    return _unique_pairs(pl.concat(parts), "record_id")


def user_track_history(plays: pl.DataFrame) -> pl.DataFrame:
    """Return the unique, sorted (user_id, track_id) pairs of every play_history row."""
    return _unique_pairs(_plays(plays).select("user_id", "track_id"), "track_id")


def _unique_pairs(pairs: pl.DataFrame, item: str) -> pl.DataFrame:
    return (
        pairs.cast({"user_id": pl.Int64, item: pl.Int64})
        .drop_nulls()
        .unique()
        .sort("user_id", item)
    )
