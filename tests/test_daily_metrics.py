"""Daily metrics: exact numbers on a hand-computed literal fixture, many dates in one pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.columns import (
    DEVICE_METRICS,
    PLATFORM_METRICS,
    RECOMMENDATION_METRICS,
    RECORD_METRICS,
    STORE_METRICS,
    TRACK_METRICS,
)
from transforms.daily_metrics import KEY_COLUMNS, OUTPUT_SCHEMA, MetricInputs, daily_metrics

D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
UTC_TS = pl.Datetime("us", "UTC")


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def frame(columns: str, rows: list[tuple], schema: dict) -> pl.DataFrame:
    names = columns.split()
    return pl.DataFrame(rows, schema={n: schema[n] for n in names}, orient="row")


TYPES = {
    "id": pl.Int64, "user_id": pl.Int64, "track_id": pl.Int64, "record_id": pl.Int64,
    "store_id": pl.Int64, "entity_id": pl.Int64, "favoritable_id": pl.Int64,
    "collection_id": pl.Int64, "duration_played_ms": pl.Int64,
    "completion_percentage": pl.Float64, "action": pl.String, "session_id": pl.String,
    "device_type": pl.String, "source": pl.String, "event_type": pl.String,
    "entity_type": pl.String, "favoritable_type": pl.String, "record_status": pl.String,
    "played_at": UTC_TS, "occurred_at": UTC_TS, "created_at": UTC_TS, "added_at": UTC_TS,
}  # fmt: skip

PLAYS = frame(
    "id user_id track_id action played_at duration_played_ms completion_percentage "
    "session_id device_type source created_at",
    [
        (1, 1, 10, "play", at(D1, 9), 30000, 10.0, "a", "mobile", "recommendation", at(D1)),
        (2, 1, 10, "complete", at(D1, 9, 5), 180000, 100.0, "a", "mobile", "recommendation",
         at(D1)),
        (3, 2, 11, "play", at(D1, 10), 60000, 40.0, "b", "desktop", "search", at(D1)),
        (4, 2, 11, "skip", at(D1, 10, 1), 5000, 5.0, "b", "desktop", "search", at(D1)),
        (5, 2, 12, "play", at(D1, 23, 59, 59), None, None, None, None, "store", at(D1)),
        (6, 3, 12, "play", at(D2, 8), 10000, 20.0, "c", "web", "recommendation", at(D2)),
        (7, 1, 10, "pause", at(D2, 0), 20000, 50.0, "d", "mobile", "search", at(D2)),
        (8, 1, 10, "play", at(D3, 1), 1000, 1.0, "e", "mobile", "search", at(D3)),
    ],
    TYPES,
)  # fmt: skip
USAGE = frame(
    "id user_id session_id event_type entity_type entity_id occurred_at",
    [
        (1, 1, "a", "page_view", "record", 100, at(D1, 8)),
        (2, None, "x", "page_view", "record", 100, at(D1, 8)),
        (3, 4, "y", "login", None, None, at(D1, 7)),
        (4, None, "z", "page_view", "store", 1, at(D1, 7)),
        (5, 2, "b", "page_view", "store", 2, at(D2, 7)),
        (6, 3, "c", "search", "search", None, at(D2, 7)),
    ],
    TYPES,
)
USERS = frame(
    "id created_at",
    [(1, datetime(2024, 4, 1, tzinfo=UTC)), (2, at(D1, 10)), (3, at(D2, 1)), (4, at(D3))],
    TYPES,
)
TRACKS = frame("id record_id", [(10, 100), (11, 100), (12, 200)], TYPES)
FAVORITES = frame(
    "id user_id favoritable_type favoritable_id created_at",
    [(1, 1, "record", 100, at(D1)), (2, 2, "track", 10, at(D1)), (3, 3, "store", 1, at(D2))],
    TYPES,
)
COLLECTION_ITEMS = frame(
    "id collection_id record_id added_at",
    [(1, 1, 100, at(D1)), (2, 1, 200, at(D2)), (3, 2, 100, at(D2))],
    TYPES,
)
FOLLOWS = frame(
    "id user_id store_id created_at",
    [(1, 1, 2, at(D1)), (2, 2, 1, at(D2)), (3, 3, 1, at(D2))],
    TYPES,
)
INVENTORY = frame(
    "id store_id record_id record_status",
    [(1, 1, 100, "for_sale"), (2, 1, 100, "for_sale"), (3, 2, 100, "sold"),
     (4, 2, 200, "for_sale")],
    TYPES,
)  # fmt: skip
INPUTS = MetricInputs(
    plays=PLAYS, usage=USAGE, users=USERS, tracks=TRACKS, favorites=FAVORITES,
    collection_items=COLLECTION_ITEMS, follows=FOLLOWS, inventory=INVENTORY,
)  # fmt: skip


def values(result: pl.DataFrame, metric_type: str, day: date) -> dict:
    """Return {entity_id: {metric_name: value}} of one metric_type and date."""
    rows = result.filter(pl.col("metric_type") == metric_type, pl.col("metric_date") == day)
    out: dict = {}
    for entity, name, value in rows.select("entity_id", "metric_name", "metric_value").rows():
        out.setdefault(entity, {})[name] = value
    return out


def named(names, *numbers) -> dict:
    return dict(zip(names, map(float, numbers), strict=True))


@pytest.fixture(scope="module")
def result() -> pl.DataFrame:
    return daily_metrics(INPUTS, [D2, D1])


def test_platform_rows(result):
    names = [
        "active_users", "listeners", "plays", "completes", "skips", "completion_rate",
        "skip_rate", "listening_seconds", "sessions", "avg_session_seconds", "new_users",
        "favorites", "collection_adds", "follows", "page_views",
    ]  # fmt: skip
    assert set(names) == set(PLATFORM_METRICS)
    assert values(result, "platform", D1) == {
        "all": named(names, 3, 2, 3, 1, 1, 1 / 3, 1 / 3, 275, 2, 137.5, 1, 2, 1, 1, 3)
    }
    assert values(result, "platform", D2) == {
        "all": named(names, 3, 2, 1, 0, 0, 0, 0, 30, 2, 15, 1, 1, 2, 2, 1)
    }
    platform = result.filter(pl.col("metric_type") == "platform")
    assert set(platform["entity_type"]) == {"platform"}


def test_track_rows(result):
    assert values(result, "track", D1) == {
        "10": named(TRACK_METRICS, 1, 1, 0, 1, 210),
        "11": named(TRACK_METRICS, 1, 0, 1, 1, 65),
        "12": named(TRACK_METRICS, 1, 0, 0, 1, 0),
    }
    assert values(result, "track", D2) == {
        "10": named(TRACK_METRICS, 0, 0, 0, 1, 20),  # a pause alone is activity
        "12": named(TRACK_METRICS, 1, 0, 0, 1, 10),
    }


def test_record_rows(result):
    assert (*TRACK_METRICS, "page_views", "favorites") == RECORD_METRICS
    assert values(result, "record", D1) == {
        "100": named(RECORD_METRICS, 2, 1, 1, 2, 275, 2, 1),  # a track favourite is not counted
        "200": named(RECORD_METRICS, 1, 0, 0, 1, 0, 0, 0),
    }
    assert values(result, "record", D2) == {
        "100": named(RECORD_METRICS, 0, 0, 0, 1, 20, 0, 0),
        "200": named(RECORD_METRICS, 1, 0, 0, 1, 10, 0, 0),
    }


def test_store_rows(result):
    assert STORE_METRICS == ("plays", "page_views", "new_followers")
    assert values(result, "store", D1) == {
        "1": named(STORE_METRICS, 2, 1, 0),  # two listings of record 100: each play once
        "2": named(STORE_METRICS, 1, 0, 1),  # record 100 is sold there, 200 for sale
    }
    assert values(result, "store", D2) == {
        "1": named(STORE_METRICS, 0, 0, 2),
        "2": named(STORE_METRICS, 1, 1, 0),
    }


def test_device_rows(result):
    assert values(result, "device", D1) == {
        "mobile": named(DEVICE_METRICS, 1, 1, 0, 1, 210),
        "desktop": named(DEVICE_METRICS, 1, 0, 1, 1, 65),
    }
    assert values(result, "device", D2) == {
        "mobile": named(DEVICE_METRICS, 0, 0, 0, 1, 20),
        "web": named(DEVICE_METRICS, 1, 0, 0, 1, 10),
    }


def test_recommendation_rows(result):
    assert values(result, "recommendation", D1) == {
        "recommendation": named(RECOMMENDATION_METRICS, 1, 1, 0, 1, 1 / 3)
    }
    assert values(result, "recommendation", D2) == {
        "recommendation": named(RECOMMENDATION_METRICS, 1, 0, 0, 1, 1.0)
    }
    rows = result.filter(pl.col("metric_type") == "recommendation")
    assert set(rows["entity_type"]) == {"source"}


def test_shape_schema_order_and_uniqueness(result):
    assert result.schema == pl.Schema(OUTPUT_SCHEMA)
    assert len(result) == 30 + 25 + 28 + 12 + 20 + 10
    assert result.select(KEY_COLUMNS).is_duplicated().sum() == 0
    assert_frame_equal(result, in_output_order(result))
    assert set(result["metric_date"]) == {D1, D2}  # D3 activity not requested
    assert result["metric_value"].is_finite().all()


def in_output_order(result: pl.DataFrame) -> pl.DataFrame:
    """Return the rows sorted as documented: entity ids numerically, then metric names."""
    numeric_id = pl.col("entity_id").cast(pl.Int64, strict=False)
    return result.sort(
        "metric_date", "metric_type", "entity_type", numeric_id, "entity_id", "metric_name"
    )


def test_entity_ids_are_in_numeric_order():
    tracks = pl.concat([TRACKS, frame("id record_id", [(9, 100)], TYPES)])
    extra = PLAYS.head(1).with_columns(id=pl.lit(99, pl.Int64), track_id=pl.lit(9, pl.Int64))
    plays = pl.concat([PLAYS, extra])
    result = daily_metrics(replace(INPUTS, plays=plays, tracks=tracks), [D1])
    assert_frame_equal(result, in_output_order(result))
    track_rows = result.filter(pl.col("metric_type") == "track")
    track_ids = track_rows["entity_id"].unique(maintain_order=True)
    assert track_ids.to_list() == ["9", "10", "11", "12"]


def test_many_dates_equal_each_date_alone(result):
    alone = pl.concat([daily_metrics(INPUTS, [day]) for day in (D1, D2)])
    assert_frame_equal(result, alone.sort("metric_date", maintain_order=True))
    three = daily_metrics(INPUTS, [D1, D2, D3, D1])
    assert_frame_equal(three.filter(pl.col("metric_date") != D3), result)


def test_listening_seconds_are_the_exact_quotient_whatever_the_dates_computed_with():
    # 16,197,640 ms × 0.001 (polars' division by a constant) is 16197.640000000001
    plays = PLAYS.with_columns(
        pl.when(pl.col("id") == 1).then(15_952_640).otherwise(pl.col("duration_played_ms"))
        .alias("duration_played_ms")
    )  # fmt: skip
    inputs = replace(INPUTS, plays=plays)
    total_ms = 15_952_640 + 180000 + 60000 + 5000  # D1's plays (16,197,640), null as 0
    for dates in ([D1], [D1, D2], [D1, D2, D3]):
        seconds = values(daily_metrics(inputs, dates), "platform", D1)["all"]["listening_seconds"]
        assert seconds == total_ms / 1000, dates  # Python divides exactly, as PostgreSQL


def test_quiet_day_has_zero_platform_rows_only():
    quiet = daily_metrics(INPUTS, [date(2024, 1, 1)])
    assert len(quiet) == len(PLATFORM_METRICS)
    assert set(quiet["metric_type"]) == {"platform"}
    assert quiet["metric_value"].to_list() == [0.0] * len(PLATFORM_METRICS)


def test_no_dates_and_empty_inputs():
    assert daily_metrics(INPUTS, []).schema == pl.Schema(OUTPUT_SCHEMA)
    assert daily_metrics(INPUTS, []).is_empty()
    empty = MetricInputs(*(f.clear() for f in vars(INPUTS).values()))
    out = daily_metrics(empty, [D1])
    assert out["metric_value"].to_list() == [0.0] * len(PLATFORM_METRICS)


def test_drifting_dtypes_and_time_zones_give_the_same_rows(result):
    drifted = replace(
        INPUTS,
        plays=PLAYS.with_columns(
            pl.col("user_id", "track_id").cast(pl.Int32),
            pl.col("played_at").dt.convert_time_zone("America/New_York"),
            pl.col("duration_played_ms").cast(pl.Decimal(18, 0)),
        ),
        usage=USAGE.with_columns(pl.col("occurred_at").dt.replace_time_zone(None)),
        tracks=TRACKS.cast({"id": pl.Int32, "record_id": pl.Int32}),
        inventory=INVENTORY.with_columns(pl.col("record_status").cast(pl.Categorical)),
    )
    assert_frame_equal(daily_metrics(drifted, [D1, D2]), result)


def test_inputs_are_not_mutated_and_output_is_deterministic(result):
    before = {name: f.clone() for name, f in vars(INPUTS).items()}
    again = daily_metrics(INPUTS, [D1, D2])
    for name, f in vars(INPUTS).items():
        assert_frame_equal(f, before[name])
    assert_frame_equal(again, result)
