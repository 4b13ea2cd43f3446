"""Validation of the raw event tables: split each into valid rows and quarantined rows.

Every input row ends up in exactly one of `Validated.valid` and `Validated.quarantined`, so
`len(valid) + len(quarantined) == len(input)` always. A quarantined row carries exactly one
`reason`: the first check that fails, in the order of the `*_REASONS` tuples below.

Both outputs keep the input's columns (in order), cast to the table contract's dtypes (ids
Int64, timestamps Datetime(us, UTC), naive timestamps taken as UTC; text String, or
Categorical kept dictionary-coded; values that cannot be cast become null and are then judged
like nulls). Row order is the input order.

play_history: a null `duration_played_ms` or `completion_percentage` is valid; downstream
transforms count it as 0. Duplicates are rows equal on every column except `id` and
`created_at`; the one with the smallest id (then the earliest position) is kept. A
`device_type` longer than MAX_KEY_LENGTH characters is refused: it becomes the entity id of
the device metrics, a key of daily_metrics' unique index (whose entries must fit a page).

usage_metrics: an `entity_type` outside ENTITY_TYPES is refused; an event naming a record,
track, store, collection or user that the catalogue lacks is refused when the caller gives
the catalogue's ids (`entities`): its page view would count for an item that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from transforms import coerce as co
from transforms.columns import ENTITY_TYPES, EVENT_TYPES, PLAY_ACTIONS

PLATFORM_START = datetime(2015, 1, 1, tzinfo=UTC)
MAX_DURATION_MS = 6 * 3600 * 1000
#: Longest text accepted where a text becomes a key of an output table (device_type).
MAX_KEY_LENGTH = 64
#: Longest catalogue text copied into the outputs (titles and artists in reasons, artists as
#: preference keys), and the facets kept per record: longer ones are cut, and counted.
MAX_TEXT_LENGTH = 300
MAX_FACETS = 20
_RECORD_TEXTS = ("artist", "title", "label")
_RECORD_FACETS = ("genres", "styles")

PLAY_HISTORY_REASONS = (
    "missing_user",  # user_id is null
    "unknown_user",  # user_id not in users.id
    "missing_track",  # track_id is null
    "unknown_track",  # track_id not in tracks.id
    "unknown_action",  # action null or not in PLAY_ACTIONS
    "missing_timestamp",  # played_at is null
    "timestamp_in_future",  # played_at > now
    "timestamp_before_platform",  # played_at < platform_start
    "negative_duration",  # duration_played_ms < 0
    "absurd_duration",  # duration_played_ms > max_duration_ms
    "completion_out_of_range",  # completion_percentage outside 0..100, NaN or ±inf
    "text_too_long",  # device_type longer than MAX_KEY_LENGTH characters
    "duplicate",  # same values as a row with a smaller id (all columns but id, created_at)
)
USAGE_METRICS_REASONS = (
    "unknown_user",  # user_id not null and not in users.id (null user = anonymous: valid)
    "missing_event_type",  # event_type is null
    "unknown_event_type",  # event_type not in EVENT_TYPES
    "missing_timestamp",  # occurred_at is null
    "timestamp_in_future",  # occurred_at > now
    "timestamp_before_platform",  # occurred_at < platform_start
    "unknown_entity_type",  # entity_type not null and not in ENTITY_TYPES
    "unknown_entity",  # a record/track/store/collection/user id the catalogue lacks
    "duplicate",  # same values as a row with a smaller id (all columns but id, created_at)
)
REASON = "reason"
_DEDUP_IGNORED = ("id", "created_at")
_COUNTS_SCHEMA = {"table": pl.String, "reason": pl.String, "rows": pl.Int64}


@dataclass(frozen=True)
class Validated:
    """The rows kept and the rows rejected (input columns plus `reason`)."""

    valid: pl.DataFrame
    quarantined: pl.DataFrame


def _ids(frame: pl.DataFrame) -> pl.Series:
    """Return the distinct non-null Int64 ids of a reference table, imploded for is_in."""
    ids = co.coerce(frame.select("id"), {"id": co.ID}).get_column("id")
    return ids.drop_nulls().unique().implode()


def _required(kinds: dict[str, str]) -> list[str]:
    """Return the columns validation needs (created_at is optional: it is never checked)."""
    return [c for c in kinds if c != "created_at"]


def _reason(checks: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """Return a when/then chain giving the first failing check's reason (null when valid)."""
    chain = pl.when(checks[0][1].fill_null(False)).then(pl.lit(checks[0][0]))
    for reason, failed in checks[1:]:
        chain = chain.when(failed.fill_null(False)).then(pl.lit(reason))
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias(REASON)


def _first_distinct(frame: pl.DataFrame, keys: list[str]) -> pl.Series:
    """Return a bool Series: is the row the first of its `keys` values, in frame order.

    Rows are hashed first; only rows whose hash repeats (real duplicates, and the rare hash
    collision) get the exact comparison, so a large clean frame costs one hash per row.
    """
    hashed = frame.select(pl.struct(keys).hash(seed=0)).to_series()
    candidates = hashed.is_duplicated()
    first = pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True)
    if not candidates.any():
        return first
    exact = frame.filter(candidates).select(pl.struct(keys).is_first_distinct()).to_series()
    return first.scatter(candidates.arg_true(), exact)


def _first_of_duplicates(frame: pl.DataFrame, keys: list[str]) -> pl.Series:
    """Return a bool Series: is the row the first (smallest id, then position) of its keys."""
    if "id" not in frame.columns:
        return _first_distinct(frame, keys)
    ids = frame.get_column("id")
    if ids.null_count() == 0 and ids.is_sorted():  # extract's order: no sort, no copy
        return _first_distinct(frame, keys)
    order = frame.select(
        pl.arg_sort_by(["id", pl.int_range(pl.len())], nulls_last=True)
    ).to_series()
    first_sorted = _first_distinct(frame[order], keys)
    return first_sorted.scatter(order, first_sorted)  # back to input positions


def split(
    frame: pl.DataFrame, checks: list[tuple[str, pl.Expr]], *, deduplicate: bool = True
) -> Validated:
    """Return the frame split by the checks (and the duplicate check, applied last)."""
    columns = frame.columns
    keys = [c for c in columns if c not in _DEDUP_IGNORED]
    if keys and deduplicate:
        first = _first_of_duplicates(frame, keys)
        checks = [*checks, ("duplicate", ~pl.lit(first))]
    reason = frame.select(_reason(checks)).to_series()
    bad = reason.is_not_null()
    if not bad.any():  # the usual case: no copy of a large clean frame
        return Validated(valid=frame, quarantined=frame.clear().with_columns(reason.clear()))
    valid = frame.filter(~bad)
    quarantined = frame.filter(bad).with_columns(reason.filter(bad).alias(REASON))
    return Validated(valid=valid, quarantined=quarantined)


def _length(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Return the characters of a text column, read from the categories when it is coded."""
    col = pl.col(column)
    if isinstance(frame.schema[column], pl.Categorical):
        return col.cat.len_chars()
    return col.str.len_chars()


def _time_checks(column: str, now: datetime, platform_start: datetime) -> list:
    ts = pl.col(column)
    return [
        ("missing_timestamp", ts.is_null()),
        ("timestamp_in_future", ts > pl.lit(co.as_utc(now), dtype=co.UTC_DATETIME)),
        (
            "timestamp_before_platform",
            ts < pl.lit(co.as_utc(platform_start), dtype=co.UTC_DATETIME),
        ),
    ]


def validate_play_history(
    plays: pl.DataFrame,
    users: pl.DataFrame,
    tracks: pl.DataFrame,
    *,
    now: datetime,
    platform_start: datetime = PLATFORM_START,
    max_duration_ms: int = MAX_DURATION_MS,
) -> Validated:
    """Return play_history split into valid rows and rows quarantined with one reason each."""
    co.require_columns(plays, _required(co.PLAY_HISTORY), "play_history")
    frame = co.coerce(plays, co.PLAY_HISTORY)
    duration = pl.col("duration_played_ms")
    completion = pl.col("completion_percentage")
    checks = [
        ("missing_user", pl.col("user_id").is_null()),
        ("unknown_user", ~pl.col("user_id").is_in(_ids(users))),
        ("missing_track", pl.col("track_id").is_null()),
        ("unknown_track", ~pl.col("track_id").is_in(_ids(tracks))),
        ("unknown_action", pl.col("action").is_null() | ~pl.col("action").is_in(PLAY_ACTIONS)),
        *_time_checks("played_at", now, platform_start),
        ("negative_duration", duration < 0),
        ("absurd_duration", duration > max_duration_ms),
        (
            "completion_out_of_range",
            ~completion.is_finite() | (completion < 0) | (completion > 100),
        ),
        ("text_too_long", _length(frame, "device_type") > MAX_KEY_LENGTH),
    ]
    return split(frame, checks)


def validate_usage_metrics(
    events: pl.DataFrame,
    users: pl.DataFrame,
    *,
    now: datetime,
    platform_start: datetime = PLATFORM_START,
    entities: pl.Expr | None = None,
) -> Validated:
    """Return usage_metrics split into valid rows and rows quarantined with one reason each.

    `entities`: the expression true for the rows naming an unknown catalogue id (built by
    transforms/references.py's typed_reference), or None to leave references unchecked.
    """
    co.require_columns(events, _required(co.USAGE_METRICS), "usage_metrics")
    frame = co.coerce(events, co.USAGE_METRICS)
    event_type = pl.col("event_type")
    checks = [
        ("unknown_user", pl.col("user_id").is_not_null() & ~pl.col("user_id").is_in(_ids(users))),
        ("missing_event_type", event_type.is_null()),
        ("unknown_event_type", ~event_type.is_in(EVENT_TYPES)),
        *_time_checks("occurred_at", now, platform_start),
        (
            "unknown_entity_type",
            pl.col("entity_type").is_not_null() & ~pl.col("entity_type").is_in(ENTITY_TYPES),
        ),
    ]
    if entities is not None:
        checks.append(("unknown_entity", entities))
    return split(frame, checks)


def bounded_records(records: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Return (records with long texts and facet lists cut, how many rows were cut).

    Texts keep their first MAX_TEXT_LENGTH characters; genres and styles their first
    MAX_FACETS entries, each of at most MAX_KEY_LENGTH characters. Nothing else changes.
    """
    texts = [c for c in _RECORD_TEXTS if c in records.columns]
    facets = [c for c in _RECORD_FACETS if c in records.columns]
    too_long = [pl.col(c).str.len_chars() > MAX_TEXT_LENGTH for c in texts]
    too_many = [
        (pl.col(c).list.len() > MAX_FACETS)
        | pl.col(c).list.eval(pl.element().str.len_chars() > MAX_KEY_LENGTH).list.any()
        for c in facets
    ]
    cut = records.select(pl.any_horizontal([*too_long, *too_many]).fill_null(False)).to_series()
    changed = int(cut.sum()) if records.height else 0
    if not changed:
        return records, 0
    bounded = records.with_columns(
        *(pl.col(c).str.slice(0, MAX_TEXT_LENGTH) for c in texts),
        *(
            pl.col(c).list.head(MAX_FACETS).list.eval(pl.element().str.slice(0, MAX_KEY_LENGTH))
            for c in facets
        ),
    )
    return bounded, changed


def quarantine_counts(**named: Validated) -> pl.DataFrame:
    """Return (table, reason, rows) counts of quarantined rows, sorted by table and reason."""
    parts = [
        result.quarantined.group_by(REASON)
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .select(pl.lit(table).alias("table"), pl.col(REASON).alias("reason"), "rows")
        for table, result in named.items()
    ]
    if not parts:
        return pl.DataFrame(schema=_COUNTS_SCHEMA)
    return pl.concat(parts).cast(_COUNTS_SCHEMA).sort("table", "reason")
