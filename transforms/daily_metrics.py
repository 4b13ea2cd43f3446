"""Daily metrics: every metric of transforms/columns.py for many dates in one vectorised pass.

Output rows are unique on KEY_COLUMNS and sorted by metric_date, metric_type, entity_type,
entity (ids in numeric order, device types alphabetically), metric_name.

The definitions are the comments of columns.py, read literally (the Postgres function
`aggregate_daily_metrics(date)` implements the same ones and is compared with this):

- A row's date is the UTC calendar date of its event time (played_at, occurred_at,
  created_at, added_at). Rows with a null event time count nowhere.
- 'platform' rows (entity 'platform' / 'all'): every PLATFORM_METRICS name for every
  requested date, 0 when nothing happened. active_users = distinct non-null users with a
  play_history row (any action) or a usage_metrics event; listeners = distinct non-null users
  with a play_history row; plays / completes / skips = rows with that action; rates divide
  by plays (0 without plays); listening_seconds = sum(duration_played_ms, null as 0) / 1000
  over all rows; sessions = distinct non-null session_id; avg_session_seconds =
  listening_seconds / sessions (0 without sessions).
- Entity rows ('track', 'record', 'store', 'device', 'recommendation') exist only for an
  entity with activity that day, i.e. at least one row feeding one of its metrics (any
  play_history row for track, record, device and recommendation play metrics; an action
  'play' row for store plays; a page view, favourite or follow). Such an entity gets ALL the
  metrics of its kind, 0 where nothing happened. entity_id is the id as text (the
  device_type for devices; 'recommendation' for the recommendation row, entity 'source').
  Rows with a null entity id (track_id, record via tracks, device_type, ...) are left out.
- Store plays: action 'play' rows of tracks whose record the store has in store_inventory
  with record_status 'for_sale' (several listings of one record count the play once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
import polars.selectors as cs

from transforms import coerce as co
from transforms.columns import (
    DEVICE_METRICS,
    FOR_SALE,
    PAGE_VIEW,
    PLATFORM,
    PLATFORM_METRICS,
    RECOMMENDATION_METRICS,
    RECOMMENDATION_SOURCE,
    RECORD_METRICS,
    STORE_METRICS,
    TRACK_METRICS,
)
from transforms.sizes import frames_size

DATE = "metric_date"
ENTITY = "entity_id"
OUTPUT_SCHEMA = {
    "metric_date": pl.Date,
    "metric_type": pl.String,
    "entity_type": pl.String,
    "entity_id": pl.String,
    "metric_name": pl.String,
    "metric_value": pl.Float64,
}
KEY_COLUMNS = ["metric_date", "metric_type", "entity_type", "entity_id", "metric_name"]
RECOMMENDATION_ENTITY = ("recommendation", "source", RECOMMENDATION_SOURCE)
_INVENTORY_USED = ["store_id", "record_id", "record_status"]


@dataclass(frozen=True)
class MetricInputs:
    """The tables daily metrics are computed from (columns as in sql/duckdb/schema.sql)."""

    plays: pl.DataFrame  # play_history
    usage: pl.DataFrame  # usage_metrics
    users: pl.DataFrame
    tracks: pl.DataFrame
    favorites: pl.DataFrame
    collection_items: pl.DataFrame  # user_collection_items
    follows: pl.DataFrame  # user_follows
    inventory: pl.DataFrame  # store_inventory


@dataclass(frozen=True)
class _Dated:
    """The inputs cast, each event table with a metric_date column, kept to the wanted days."""

    plays: pl.DataFrame
    usage: pl.DataFrame
    users: pl.DataFrame
    favorites: pl.DataFrame
    collection_items: pl.DataFrame
    follows: pl.DataFrame
    tracks: pl.DataFrame
    inventory: pl.DataFrame


def _dated(frame: pl.DataFrame, kinds: dict, time_column: str, days: pl.DataFrame, table: str):
    """Return `frame` cast, with its UTC metric_date, restricted to `days`."""
    used = [c for c in kinds if c not in ("id", "created_at")]
    co.require_columns(frame, [time_column, *used], table)
    kept = frame.select([c for c in kinds if c in frame.columns])
    cast = co.coerce(kept, kinds).with_columns(co.utc_date(time_column).alias(DATE))
    return cast.join(days, on=DATE, how="semi")


#: The event columns the metrics read: not the ids, creation times, completion percentage
#: or usage sessions (a backfill's shards keep the window's events: these are most of it).
_UNREAD = ("id", "created_at", "completion_percentage")
_PLAYS_READ = {c: kind for c, kind in co.PLAY_HISTORY.items() if c not in _UNREAD}
_USAGE_READ = {c: kind for c, kind in co.USAGE_METRICS.items() if c not in (*_UNREAD, "session_id")}

#: The columns each input's metrics read (the `_prepare` casts), by MetricInputs field.
_COLUMNS = {
    "plays": _PLAYS_READ,
    "usage": _USAGE_READ,
    "users": co.USERS,
    "favorites": co.FAVORITES,
    "collection_items": co.COLLECTION_ITEMS,
    "follows": co.FOLLOWS,
    "tracks": co.TRACKS,
    "inventory": dict.fromkeys(_INVENTORY_USED),
}


def metric_columns(inputs: MetricInputs) -> MetricInputs:
    """Return `inputs` cut to the columns the daily metrics read (what a shard keeps)."""
    return MetricInputs(
        **{
            name: frame.select([c for c in kinds if c in frame.columns])
            for name, kinds in _COLUMNS.items()
            for frame in [getattr(inputs, name)]
        }
    )


def _prepare(inputs: MetricInputs, days: pl.DataFrame) -> _Dated:
    co.require_columns(inputs.tracks, co.TRACKS, "tracks")
    co.require_columns(inputs.inventory, _INVENTORY_USED, "store_inventory")
    tracks = co.coerce(inputs.tracks.select(list(co.TRACKS)), co.TRACKS)
    return _Dated(
        plays=_dated(inputs.plays, _PLAYS_READ, "played_at", days, "play_history"),
        usage=_dated(inputs.usage, _USAGE_READ, "occurred_at", days, "usage_metrics"),
        users=_dated(inputs.users, co.USERS, "created_at", days, "users"),
        favorites=_dated(inputs.favorites, co.FAVORITES, "created_at", days, "favorites"),
        collection_items=_dated(
            inputs.collection_items, co.COLLECTION_ITEMS, "added_at", days, "collection_items"
        ),
        follows=_dated(inputs.follows, co.FOLLOWS, "created_at", days, "user_follows"),
        tracks=tracks.filter(pl.col("id").is_not_null()).unique("id", keep="first"),
        inventory=co.coerce(inputs.inventory.select(_INVENTORY_USED), co.INVENTORY),
    )


def ms_to_seconds(column: str) -> pl.Expr:
    """Return integer milliseconds ÷ 1000, the correctly rounded quotient (as PostgreSQL's).

    polars divides a column by a constant as a product with its reciprocal: one value in
    seven then differs from the true quotient in the last bit, and not always (a one-group
    aggregate divides exactly), so a date's figure depended on the dates computed with it.
    numpy divides exactly.
    """
    return pl.col(column).map_batches(
        lambda s: pl.Series(s.name, s.cast(pl.Float64).to_numpy() / 1000.0),
        return_dtype=pl.Float64,
    )


def _play_counts(plays: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Return plays, completes, skips, listeners and listening_ms per group: figures that add
    up over shards of disjoint users (listening_seconds comes from the summed ms)."""
    action = pl.col("action")
    return plays.group_by(by).agg(
        (action == "play").sum().alias("plays"),
        (action == "complete").sum().alias("completes"),
        (action == "skip").sum().alias("skips"),
        pl.col("user_id").drop_nulls().n_unique().alias("listeners"),
        pl.col("duration_played_ms").fill_null(0).sum().alias("listening_ms"),
    )


def _with_seconds(wide: pl.DataFrame) -> pl.DataFrame:
    """Return `wide` with listening_seconds from its summed listening_ms."""
    return wide.with_columns(ms_to_seconds("listening_ms").alias("listening_seconds"))


def _count(frame: pl.DataFrame, by: list[str], name: str) -> pl.DataFrame:
    """Return the number of rows per group as column `name`."""
    return frame.group_by(by).agg(pl.len().alias(name))


def _additive(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Return `frame` with every figure as Int64: one schema in every shard, sums safe."""
    return frame.with_columns(pl.exclude(keys).cast(pl.Int64))


def _long(wide: pl.DataFrame, kind: tuple[str, str], metrics: Sequence[str]) -> pl.DataFrame:
    """Return the wide per-(date, entity) frame as output rows, in output order.

    Rows come out sorted by date, entity (its native order) and metric name without sorting
    the long frame: the wide frame is sorted and each row exploded into its metrics.
    """
    metric_type, entity_type = kind
    names = sorted(metrics)
    values = pl.concat_list([pl.col(m).cast(pl.Float64).fill_null(0.0) for m in names])
    return (
        wide.sort(DATE, ENTITY)
        .select(
            DATE,
            pl.lit(metric_type).alias("metric_type"),
            pl.lit(entity_type).alias("entity_type"),
            pl.col(ENTITY).cast(pl.String),
            pl.lit(names, dtype=pl.List(pl.String)).alias("metric_name"),
            values.alias("metric_value"),
        )
        .explode("metric_name", "metric_value")
    )


def _outer(frames: list[pl.DataFrame], on: list[str]) -> pl.DataFrame:
    """Return the full outer join of per-(date, entity) frames, missing values as 0."""
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on=on, how="full", coalesce=True)
    return joined.with_columns(cs.numeric().fill_null(0))


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    den = pl.col(denominator).cast(pl.Float64)
    return pl.when(den > 0).then(pl.col(numerator).cast(pl.Float64) / den).otherwise(0.0)


def _page_views(usage: pl.DataFrame, entity_type: str) -> pl.DataFrame:
    views = usage.filter(
        (pl.col("event_type") == PAGE_VIEW)
        & (pl.col("entity_type") == entity_type)
        & pl.col("entity_id").is_not_null()
    )
    return _count(views.rename({"entity_id": ENTITY}), [DATE, ENTITY], "page_views")


def _with_records(plays: pl.DataFrame, tracks: pl.DataFrame) -> pl.DataFrame:
    mapping = tracks.select(pl.col("id").alias("track_id"), "record_id")
    return plays.join(mapping, on="track_id", how="inner").filter(pl.col("record_id").is_not_null())


@dataclass(frozen=True)
class MetricPartials:
    """The daily metrics of one shard of users, as parts that combine exactly.

    Every figure but one is a count (or an integer sum) per (date[, entity]) that adds up
    over shards whose users are disjoint: rows are per user, and a distinct-user count
    (listeners, active users) counts each user in his one shard. The platform's distinct
    sessions do not add up (nothing stops two users' rows from naming one session id), so
    a shard keeps its distinct (date, session_id) pairs and the combination counts their
    union. Rates and seconds are computed once, from the combined figures.
    """

    platform: pl.DataFrame  # metric_date + counts
    sessions: pl.DataFrame  # metric_date, session_id: distinct pairs
    recommendation: pl.DataFrame  # metric_date + play counts of source 'recommendation'
    record: pl.DataFrame  # metric_date, entity_id + counts (likewise below)
    store: pl.DataFrame
    device: pl.DataFrame
    track: pl.DataFrame

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


#: Each part's key columns; the rest are the figures.
PARTIAL_KEYS = {
    "platform": [DATE],
    "sessions": [DATE, "session_id"],
    "recommendation": [DATE],
    "record": [DATE, ENTITY],
    "store": [DATE, ENTITY],
    "device": [DATE, ENTITY],
    "track": [DATE, ENTITY],
}


def _platform_counts(d: _Dated) -> pl.DataFrame:
    users = pl.concat(
        [d.plays.select(DATE, "user_id"), d.usage.select(DATE, "user_id")]
    ).drop_nulls("user_id")
    parts = [
        _play_counts(d.plays, [DATE]),
        users.group_by(DATE).agg(pl.col("user_id").n_unique().alias("active_users")),
        _count(d.users, [DATE], "new_users"),
        _count(d.favorites, [DATE], "favorites"),
        _count(d.collection_items, [DATE], "collection_adds"),
        _count(d.follows, [DATE], "follows"),
        _count(d.usage.filter(pl.col("event_type") == PAGE_VIEW), [DATE], "page_views"),
    ]
    return _outer(parts, [DATE])


def _record_counts(d: _Dated) -> pl.DataFrame:
    plays = _with_records(d.plays, d.tracks).rename({"record_id": ENTITY})
    favorites = d.favorites.filter(
        (pl.col("favoritable_type") == "record") & pl.col("favoritable_id").is_not_null()
    ).rename({"favoritable_id": ENTITY})
    parts = [
        _play_counts(plays, [DATE, ENTITY]),
        _page_views(d.usage, "record"),
        _count(favorites, [DATE, ENTITY], "favorites"),
    ]
    return _outer(parts, [DATE, ENTITY])


def _store_counts(d: _Dated) -> pl.DataFrame:
    for_sale = (
        d.inventory.filter(pl.col("record_status") == FOR_SALE)
        .select("store_id", "record_id")
        .drop_nulls()
        .unique()
    )
    plays = _with_records(d.plays.filter(pl.col("action") == "play"), d.tracks)
    store_plays = plays.join(for_sale, on="record_id", how="inner").rename({"store_id": ENTITY})
    follows = d.follows.filter(pl.col("store_id").is_not_null()).rename({"store_id": ENTITY})
    parts = [
        _count(store_plays, [DATE, ENTITY], "plays"),
        _page_views(d.usage, "store"),
        _count(follows, [DATE, ENTITY], "new_followers"),
    ]
    return _outer(parts, [DATE, ENTITY])


def _entity_plays(plays: pl.DataFrame, column: str) -> pl.DataFrame:
    """Return the play counts per (date, `column`), rows without `column` left out."""
    named = plays.filter(pl.col(column).is_not_null()).rename({column: ENTITY})
    return _play_counts(named, [DATE, ENTITY])


def _days(dates: Sequence[date]) -> pl.DataFrame:
    return pl.DataFrame({DATE: sorted(set(dates))}, schema={DATE: pl.Date})


def metric_partials(inputs: MetricInputs, dates: Sequence[date]) -> MetricPartials:
    """Return the daily metrics of `dates` over `inputs` (one shard's users) as partials."""
    d = _prepare(inputs, _days(dates))
    recommended = d.plays.filter(pl.col("source") == RECOMMENDATION_SOURCE)
    parts = {
        "platform": _platform_counts(d),
        "sessions": d.plays.select(DATE, "session_id").drop_nulls().unique(),
        "recommendation": _play_counts(recommended, [DATE]),
        "record": _record_counts(d),
        "store": _store_counts(d),
        "device": _entity_plays(d.plays, "device_type"),
        "track": _entity_plays(d.plays, "track_id"),
    }
    return MetricPartials(
        **{
            name: frame if name == "sessions" else _additive(frame, PARTIAL_KEYS[name])
            for name, frame in parts.items()
        }
    )


def combine_partials(parts: Sequence[MetricPartials]) -> MetricPartials:
    """Return the partials of the union of shards whose users are disjoint: figures summed
    per key, session pairs united."""
    if not parts:
        raise ValueError("combine_partials needs at least one shard's partials")
    combined = {}
    for name, keys in PARTIAL_KEYS.items():
        frame = pl.concat([getattr(part, name) for part in parts])
        if name == "sessions":
            combined[name] = frame.unique()
        else:
            combined[name] = frame.group_by(keys).agg(pl.all().sum())
    return MetricPartials(**combined)


def _platform(p: MetricPartials, days: pl.DataFrame) -> pl.DataFrame:
    sessions = p.sessions.group_by(DATE).agg(pl.len().alias("sessions"))
    wide = (
        days.join(p.platform, on=DATE, how="left")
        .join(sessions, on=DATE, how="left")
        .with_columns(cs.numeric().fill_null(0))
    )
    wide = _with_seconds(wide).with_columns(
        completion_rate=_ratio("completes", "plays"),
        skip_rate=_ratio("skips", "plays"),
        avg_session_seconds=_ratio("listening_seconds", "sessions"),
        entity_id=pl.lit(PLATFORM[2]),
    )
    return _long(wide, PLATFORM[:2], PLATFORM_METRICS)


def _recommendation(p: MetricPartials) -> pl.DataFrame:
    all_plays = p.platform.select(DATE, pl.col("plays").alias("all_plays"))
    wide = p.recommendation.join(all_plays, on=DATE, how="left").with_columns(
        share_of_plays=_ratio("plays", "all_plays"),
        entity_id=pl.lit(RECOMMENDATION_ENTITY[2]),
    )
    return _long(wide, RECOMMENDATION_ENTITY[:2], RECOMMENDATION_METRICS)


def metrics_from_partials(partials: MetricPartials, dates: Sequence[date]) -> pl.DataFrame:
    """Return the daily_metrics rows of `dates` from (combined) partials."""
    days = _days(dates)
    if days.is_empty():
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    p = partials
    parts = [  # in (metric_type, entity_type) order: a stable sort by date finishes the job
        _long(_with_seconds(p.device), ("device", "device"), DEVICE_METRICS),
        _platform(p, days),
        _recommendation(p),  # 'recommendation' < 'record'
        _long(_with_seconds(p.record), ("record", "record"), RECORD_METRICS),
        _long(p.store, ("store", "store"), STORE_METRICS),
        _long(_with_seconds(p.track), ("track", "track"), TRACK_METRICS),
    ]
    return pl.concat(parts).cast(OUTPUT_SCHEMA).sort(DATE, maintain_order=True)


def daily_metrics(inputs: MetricInputs, dates: Sequence[date]) -> pl.DataFrame:
    """Return the daily_metrics rows (without run_id / computed_at) of every given date:
    the partials of one shard holding every user, combined and finished."""
    if not dates:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    partials = combine_partials([metric_partials(inputs, dates)])
    return metrics_from_partials(partials, dates)
