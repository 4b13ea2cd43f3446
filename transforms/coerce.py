"""Input normalisation shared by the transforms: cast columns to the table contract's dtypes.

Frames arrive from DuckDB or Postgres through Arrow, but dtypes drift (Int32 ids, Decimal
numbers, naive or non-UTC timestamps, categoricals). Each transform casts its inputs first
with `coerce`, so the rest of the code can rely on: ids and integers Int64, floats Float64,
text Utf8, timestamps Datetime(us, UTC) (naive timestamps are taken to be UTC). Values that
cannot be represented become null instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")

ID, INT, FLOAT, TEXT, TIMESTAMP, BOOL = "id", "int", "float", "text", "timestamp", "bool"

# The columns each transform reads, by kind (a subset of sql/duckdb/schema.sql).
PLAY_HISTORY = {
    "id": ID, "user_id": ID, "track_id": ID, "action": TEXT, "played_at": TIMESTAMP,
    "duration_played_ms": INT, "completion_percentage": FLOAT, "session_id": TEXT,
    "device_type": TEXT, "source": TEXT, "created_at": TIMESTAMP,
}  # fmt: skip
USAGE_METRICS = {
    "id": ID, "user_id": ID, "session_id": TEXT, "event_type": TEXT, "entity_type": TEXT,
    "entity_id": ID, "occurred_at": TIMESTAMP, "created_at": TIMESTAMP,
}  # fmt: skip
USERS = {"id": ID, "created_at": TIMESTAMP}
TRACKS = {"id": ID, "record_id": ID}
FAVORITES = {
    "id": ID, "user_id": ID, "favoritable_type": TEXT, "favoritable_id": ID,
    "created_at": TIMESTAMP,
}  # fmt: skip
COLLECTIONS = {"id": ID, "user_id": ID}
COLLECTION_ITEMS = {"id": ID, "collection_id": ID, "record_id": ID, "added_at": TIMESTAMP}
FOLLOWS = {"id": ID, "user_id": ID, "store_id": ID, "created_at": TIMESTAMP}
INVENTORY = {"id": ID, "store_id": ID, "record_id": ID, "record_status": TEXT}


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC (a naive datetime is taken as UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def require_columns(frame: pl.DataFrame, columns: Iterable[str], table: str) -> None:
    """Return None; raise ValueError naming the columns `table` lacks (a contract breach)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {', '.join(missing)}")


def _timestamp(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            col = col.dt.replace_time_zone("UTC", ambiguous="null", non_existent="null")
        else:
            col = col.dt.convert_time_zone("UTC")
        return col.cast(UTC_DATETIME)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype == pl.String:
        return col.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return col.cast(UTC_DATETIME, strict=False)


def _text(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String or isinstance(dtype, pl.Categorical):
        return pl.col(name)  # categorical: dictionary-coded text, compared as text
    if isinstance(dtype, pl.Enum):
        return pl.col(name).cast(pl.String)
    if dtype == pl.Null or dtype.is_numeric() or dtype == pl.Boolean:
        return pl.col(name).cast(pl.String, strict=False)
    return pl.col(name)  # nested / binary text columns are left as they are


def _cast(name: str, kind: str, dtype: pl.DataType) -> pl.Expr:
    if kind == TIMESTAMP:
        return _timestamp(name, dtype)
    if kind == TEXT:
        return _text(name, dtype)
    target = {ID: pl.Int64, INT: pl.Int64, FLOAT: pl.Float64, BOOL: pl.Boolean}[kind]
    if dtype == target:
        return pl.col(name)
    return pl.col(name).cast(target, strict=False)


def coerce(frame: pl.DataFrame, kinds: Mapping[str, str]) -> pl.DataFrame:
    """Return `frame` with each column named in `kinds` cast to its kind's dtype (others kept)."""
    schema = frame.schema
    exprs = [
        _cast(name, kind, schema[name]).alias(name)
        for name, kind in kinds.items()
        if name in schema
    ]
    return frame.with_columns(exprs) if exprs else frame.clone()


def utc_date(name: str) -> pl.Expr:
    """Return an expression giving the UTC calendar date of timestamp column `name`."""
    return pl.col(name).dt.convert_time_zone("UTC").dt.date()
