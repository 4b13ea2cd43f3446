"""Validation: each quarantine reason, the counting invariant, robustness to any values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from transforms.columns import EVENT_TYPES, PLAY_ACTIONS
from transforms.validate import (
    MAX_DURATION_MS,
    PLATFORM_START,
    PLAY_HISTORY_REASONS,
    USAGE_METRICS_REASONS,
    quarantine_counts,
    validate_play_history,
    validate_usage_metrics,
)

UTC_TS = pl.Datetime("us", "UTC")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
PLAY_SCHEMA = {
    "id": pl.Int64, "user_id": pl.Int64, "track_id": pl.Int64, "action": pl.String,
    "played_at": UTC_TS, "duration_played_ms": pl.Int64, "completion_percentage": pl.Float64,
    "session_id": pl.String, "device_type": pl.String, "source": pl.String, "created_at": UTC_TS,
}  # fmt: skip
USAGE_SCHEMA = {
    "id": pl.Int64, "user_id": pl.Int64, "session_id": pl.String, "event_type": pl.String,
    "entity_type": pl.String, "entity_id": pl.Int64, "properties": pl.String,
    "occurred_at": UTC_TS, "created_at": UTC_TS,
}  # fmt: skip
USERS = pl.DataFrame({"id": [1, 2]}, schema={"id": pl.Int64})
TRACKS = pl.DataFrame({"id": [10, 11]}, schema={"id": pl.Int64})


def play(id: int, **overrides) -> dict:
    row = {
        "id": id, "user_id": 1, "track_id": 10, "action": "play", "played_at": T0,
        "duration_played_ms": 1000 * id, "completion_percentage": 50.0, "session_id": "s1",
        "device_type": "web", "source": "search", "created_at": T0,
    }  # fmt: skip
    return {**row, **overrides}


def event(id: int, **overrides) -> dict:
    row = {
        "id": id, "user_id": 1, "session_id": "s1", "event_type": "page_view",
        "entity_type": "record", "entity_id": id, "properties": "{}", "occurred_at": T0,
        "created_at": T0,
    }  # fmt: skip
    return {**row, **overrides}


def plays(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=PLAY_SCHEMA)


def events(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=USAGE_SCHEMA)


def check_play(frame: pl.DataFrame, **kw):
    return validate_play_history(frame, USERS, TRACKS, now=NOW, **kw)


PLAY_CASES = [
    ("missing_user", {"user_id": None}),
    ("unknown_user", {"user_id": 99}),
    ("missing_track", {"track_id": None}),
    ("unknown_track", {"track_id": 99}),
    ("unknown_action", {"action": None}),
    ("unknown_action", {"action": "rewind"}),
    ("missing_timestamp", {"played_at": None}),
    ("timestamp_in_future", {"played_at": NOW + timedelta(microseconds=1)}),
    ("timestamp_before_platform", {"played_at": PLATFORM_START - timedelta(seconds=1)}),
    ("negative_duration", {"duration_played_ms": -1}),
    ("absurd_duration", {"duration_played_ms": MAX_DURATION_MS + 1}),
    ("completion_out_of_range", {"completion_percentage": -0.5}),
    ("completion_out_of_range", {"completion_percentage": 100.01}),
    ("completion_out_of_range", {"completion_percentage": float("nan")}),
    ("completion_out_of_range", {"completion_percentage": float("inf")}),
    ("completion_out_of_range", {"completion_percentage": float("-inf")}),
]


@pytest.mark.parametrize(("reason", "overrides"), PLAY_CASES)
def test_each_play_history_reason_quarantines_only_the_bad_row(reason, overrides):
    frame = plays(play(1), play(2, user_id=2, track_id=11), play(3, **overrides))
    result = check_play(frame)
    assert result.valid["id"].to_list() == [1, 2]
    assert result.quarantined.select("id", "reason").rows() == [(3, reason)]
    assert result.quarantined.columns == [*PLAY_SCHEMA, "reason"]
    assert result.valid.columns == list(PLAY_SCHEMA)


def test_duplicate_keeps_the_smallest_id_whatever_the_order():
    copy = {"created_at": T0 + timedelta(hours=1), "duration_played_ms": 5000}
    frame = plays(play(7, **copy), play(5, duration_played_ms=5000), play(6), play(9, **copy))
    result = check_play(frame)
    assert result.valid["id"].to_list() == [5, 6]
    assert result.quarantined.select("id", "reason").rows() == [
        (7, "duplicate"),
        (9, "duplicate"),
    ]


def test_rows_differing_in_one_column_are_not_duplicates():
    frame = plays(play(1, duration_played_ms=5), play(2, duration_played_ms=5, session_id="s2"))
    assert check_play(frame).quarantined.is_empty()


def test_first_failing_check_is_the_one_reason():
    bad = play(3, user_id=None, track_id=99, action="x", played_at=NOW + timedelta(days=1))
    result = check_play(plays(play(1), bad))
    assert result.quarantined.select("id", "reason").rows() == [(3, "missing_user")]
    assert PLAY_HISTORY_REASONS[0] == "missing_user" and PLAY_HISTORY_REASONS[-1] == "duplicate"


def test_boundaries_and_nulls_are_valid():
    frame = plays(
        play(1, duration_played_ms=None, completion_percentage=None, session_id=None),
        play(2, played_at=NOW, completion_percentage=100.0, duration_played_ms=MAX_DURATION_MS),
        play(3, played_at=PLATFORM_START, completion_percentage=0.0, duration_played_ms=0),
        play(4, device_type=None, source=None, action="seek"),
    )
    result = check_play(frame)
    assert result.quarantined.is_empty()
    assert result.valid["id"].to_list() == [1, 2, 3, 4]


def test_custom_platform_start_and_max_duration():
    frame = plays(play(1, duration_played_ms=10), play(2, duration_played_ms=11))
    result = check_play(frame, max_duration_ms=10, platform_start=T0 + timedelta(seconds=1))
    assert result.quarantined["reason"].to_list() == ["timestamp_before_platform"] * 2


def test_drifting_dtypes_are_cast():
    frame = plays(play(1), play(2, completion_percentage=120.0)).with_columns(
        pl.col("id", "user_id", "track_id").cast(pl.Int32),
        pl.col("played_at", "created_at").dt.replace_time_zone(None),
        pl.col("completion_percentage").cast(pl.Decimal(10, 2)),
    )
    users = USERS.cast({"id": pl.Int32})
    result = validate_play_history(frame, users, TRACKS, now=NOW)
    assert result.valid.schema == pl.Schema(PLAY_SCHEMA)
    assert result.valid["played_at"].to_list() == [T0]
    assert result.quarantined.select("id", "reason").rows() == [(2, "completion_out_of_range")]


def test_dictionary_coded_text_is_kept_and_judged_as_text():
    frame = plays(play(1), play(2, action="dance"), play(3)).with_columns(
        pl.col("action", "session_id").cast(pl.Categorical)
    )
    result = check_play(frame)
    assert result.valid.schema["action"] == pl.Categorical
    assert result.quarantined.select("id", "reason").rows() == [(2, "unknown_action")]
    assert result.valid["action"].cast(pl.String).to_list() == ["play", "play"]


def test_naive_now_is_utc_and_other_zones_are_converted():
    later_in_local_zone = datetime(2024, 6, 1, 14, 0, tzinfo=UTC).astimezone()  # any zone
    frame = plays(play(1, played_at=datetime(2024, 6, 1, 13, 0, tzinfo=UTC)))
    assert check_play(frame).quarantined["reason"].to_list() == ["timestamp_in_future"]
    ok = validate_play_history(frame, USERS, TRACKS, now=later_in_local_zone)
    assert ok.quarantined.is_empty()
    naive = validate_play_history(frame, USERS, TRACKS, now=datetime(2024, 6, 1, 13, 0))
    assert naive.quarantined.is_empty()


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match=r"play_history: missing column.*played_at"):
        check_play(plays(play(1)).drop("played_at"))


def test_inputs_are_not_mutated():
    frame = plays(play(1), play(2, user_id=None), play(3))
    before = frame.clone()
    check_play(frame)
    assert_frame_equal(frame, before)


USAGE_CASES = [
    ("unknown_user", {"user_id": 99}),
    ("missing_event_type", {"event_type": None}),
    ("unknown_event_type", {"event_type": "teleport"}),
    ("missing_timestamp", {"occurred_at": None}),
    ("timestamp_in_future", {"occurred_at": NOW + timedelta(seconds=1)}),
    ("timestamp_before_platform", {"occurred_at": datetime(2014, 12, 31, 23, 59, tzinfo=UTC)}),
    ("duplicate", {"id": 4, "entity_id": 1, "created_at": NOW}),
]


@pytest.mark.parametrize(("reason", "overrides"), USAGE_CASES)
def test_each_usage_metrics_reason_quarantines_only_the_bad_row(reason, overrides):
    frame = events(event(1), event(2, user_id=None, event_type="search"), {**event(3), **overrides})
    result = validate_usage_metrics(frame, USERS, now=NOW)
    assert result.valid["id"].to_list() == [1, 2]
    bad_id = overrides.get("id", 3)
    assert result.quarantined.select("id", "reason").rows() == [(bad_id, reason)]
    assert result.quarantined.columns == [*USAGE_SCHEMA, "reason"]


def test_anonymous_events_are_valid_but_not_deduplicated_away_when_different():
    frame = events(event(1, user_id=None), event(2, user_id=None, session_id="s2"))
    assert validate_usage_metrics(frame, USERS, now=NOW).quarantined.is_empty()


def test_quarantine_counts_by_table_and_reason():
    p = check_play(plays(play(1), play(2, user_id=None), play(3, user_id=None), play(4, user_id=9)))
    u = validate_usage_metrics(events(event(1), event(2, event_type=None)), USERS, now=NOW)
    clean = validate_usage_metrics(events(event(1)), USERS, now=NOW)
    counts = quarantine_counts(usage_metrics=u, play_history=p, clean=clean)
    assert counts.rows() == [
        ("play_history", "missing_user", 2),
        ("play_history", "unknown_user", 1),
        ("usage_metrics", "missing_event_type", 1),
    ]
    assert counts.schema == pl.Schema({"table": pl.String, "reason": pl.String, "rows": pl.Int64})
    assert quarantine_counts().is_empty()


# Property: validation never raises, and every row is kept or quarantined exactly once ----------


def mostly(sane: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """Return sane values three times out of four so that all checks get exercised."""
    return st.integers(0, 3).flatmap(lambda pick: sane if pick else odd)


SMALL_IDS = st.integers(0, 12)  # the users / tracks ids below: valid references occur
INT64 = mostly(SMALL_IDS, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
FLOATS = mostly(st.floats(0, 100), st.one_of(st.none(), st.floats()))  # NaN, ±inf included
TEXT = mostly(st.sampled_from(["s1", "web", "search"]), st.one_of(st.none(), st.text()))
ACTIONS = mostly(st.sampled_from(PLAY_ACTIONS), st.one_of(st.none(), st.text(max_size=4)))
EVENTS = mostly(st.sampled_from(EVENT_TYPES), st.one_of(st.none(), st.text(max_size=4)))
TIMES = mostly(
    st.sampled_from([T0, NOW, PLATFORM_START]),
    st.one_of(
        st.none(), st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC))
    ),
)
KIND = {pl.Int64: INT64, pl.Float64: FLOATS, pl.String: TEXT, UTC_TS: TIMES}
BY_NAME = {"action": ACTIONS, "event_type": EVENTS, "duration_played_ms": INT64.map(
    lambda v: v * 997 if v is not None and abs(v) < 2**40 else v
)}  # fmt: skip


def rows_of(schema: dict) -> st.SearchStrategy[pl.DataFrame]:
    row = st.fixed_dictionaries(
        {name: BY_NAME.get(name, KIND[dtype]) for name, dtype in schema.items()}
    )
    # Repeat drawn rows (with new ids) so that duplicates are common.
    rows = st.lists(row, max_size=12).flatmap(
        lambda rs: (
            st.lists(st.sampled_from(rs), max_size=6).map(lambda extra: rs + extra)
            if rs
            else st.just(rs)
        )
    )
    return rows.map(lambda rs: pl.DataFrame(rs, schema=schema))


ID_SETS = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=4).map(
    lambda ids: [*ids, *range(2, 13)]
)  # ids 0 and 1 are unknown


def assert_partition(frame: pl.DataFrame, result, reasons) -> None:
    assert len(result.valid) + len(result.quarantined) == len(frame)
    assert set(result.quarantined["reason"].to_list()) <= set(reasons)
    assert result.quarantined["reason"].null_count() == 0
    kept = pl.concat([result.valid, result.quarantined.drop("reason")])
    assert sorted(kept["id"].to_list(), key=repr) == sorted(frame["id"].to_list(), key=repr)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=rows_of(PLAY_SCHEMA), users=ID_SETS, tracks=ID_SETS)
def test_validate_play_history_never_raises_and_partitions(frame, users, tracks):
    users_df = pl.DataFrame({"id": users}, schema={"id": pl.Int64})
    tracks_df = pl.DataFrame({"id": tracks}, schema={"id": pl.Int64})
    result = validate_play_history(frame, users_df, tracks_df, now=NOW)
    assert_partition(frame, result, PLAY_HISTORY_REASONS)
    again = validate_play_history(result.valid, users_df, tracks_df, now=NOW)
    assert again.quarantined.is_empty()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=rows_of(USAGE_SCHEMA), users=ID_SETS)
def test_validate_usage_metrics_never_raises_and_partitions(frame, users):
    users_df = pl.DataFrame({"id": users}, schema={"id": pl.Int64})
    result = validate_usage_metrics(frame, users_df, now=NOW)
    assert_partition(frame, result, USAGE_METRICS_REASONS)
    again = validate_usage_metrics(result.valid, users_df, now=NOW)
    assert again.quarantined.is_empty()


def test_all_null_columns_do_not_raise():
    frame = pl.DataFrame({name: [None, None] for name in PLAY_SCHEMA})
    result = check_play(frame)
    assert result.quarantined["reason"].to_list() == ["missing_user", "missing_user"]


def test_decimal_and_huge_values_do_not_raise():
    frame = plays(play(1, duration_played_ms=2**63 - 1), play(2, completion_percentage=1e308))
    frame = frame.with_columns(completion_percentage=pl.lit(Decimal("1.5")))
    result = check_play(frame)
    assert result.quarantined.select("id", "reason").rows() == [(1, "absurd_duration")]
