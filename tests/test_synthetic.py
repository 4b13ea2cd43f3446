"""The synthetic generator: deterministic, schema-shaped, consistent and realistic."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from flows.storage.queries import sql_text
from transforms import columns as C
from transforms.schemas import INPUT_SCHEMAS
from transforms.synthetic.frames import default_counts, generate_frames, window_us

END = dt.date(2026, 1, 1)
DAYS = 30
OUTPUT_TABLES = {
    "schema_migrations", "daily_metrics", "content_similarity", "recommendation_data", "jobs",
    "job_logs", "performance_metrics",
}  # fmt: skip


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_frames(200, 2000, DAYS, seed=11, end=END)


@pytest.fixture(scope="module")
def schema_columns(tmp_path_factory) -> dict[str, list[tuple[str, str]]]:

    conn = duckdb.connect(str(tmp_path_factory.mktemp("schema") / "s.duckdb"))
    conn.execute(sql_text("duckdb", "schema.sql"))
    rows = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, []).append((column, dtype))
    return out


def test_same_seed_same_frames_and_other_seed_differs(frames):
    again = generate_frames(200, 2000, DAYS, seed=11, end=END)
    other = generate_frames(200, 2000, DAYS, seed=12, end=END)
    assert list(again) == list(frames)
    for name, frame in frames.items():
        assert again[name].equals(frame), name
    differing = [n for n in ("play_history", "usage_metrics", "records", "favorites")
                 if not other[n].equals(frames[n])]  # fmt: skip
    assert differing == ["play_history", "usage_metrics", "records", "favorites"]


def test_one_frame_per_input_table_with_the_schema_columns(frames, schema_columns):
    assert set(frames) == set(schema_columns) - OUTPUT_TABLES
    assert list(frames) == list(INPUT_SCHEMAS)
    assert {name: frame.schema for name, frame in frames.items()} == INPUT_SCHEMAS
    for name, frame in frames.items():
        assert frame.columns == [c for c, _ in schema_columns[name]], name


def test_dtypes_fit_the_schema(frames, schema_columns):
    for name, frame in frames.items():
        for column, sql_type in schema_columns[name]:
            dtype = frame.schema[column]
            if sql_type == "BIGINT":
                assert dtype == pl.Int64, (name, column)
            elif sql_type == "TIMESTAMP WITH TIME ZONE":
                assert dtype == pl.Datetime("us", "UTC"), (name, column)
            elif sql_type == "VARCHAR[]":
                assert dtype == pl.List(pl.Utf8), (name, column)
            elif sql_type in ("VARCHAR", "JSON"):
                assert dtype == pl.Utf8, (name, column)
            elif sql_type == "DOUBLE" or sql_type.startswith("DECIMAL"):
                assert dtype == pl.Float64, (name, column)
    for name, frame in frames.items():
        if "id" in frame.columns:
            assert frame["id"].to_list() == list(range(1, frame.height + 1)), name


def test_enum_values_come_from_columns(frames):
    checks = {
        ("play_history", "action"): C.PLAY_ACTIONS,
        ("play_history", "source"): C.PLAY_SOURCES,
        ("play_history", "device_type"): C.DEVICE_TYPES,
        ("usage_metrics", "event_type"): C.EVENT_TYPES,
        ("usage_metrics", "entity_type"): C.ENTITY_TYPES,
        ("users", "role"): C.USER_ROLES,
        ("stores", "store_status"): C.STORE_STATUSES,
        ("store_inventory", "record_status"): C.RECORD_STATUSES,
        ("store_inventory", "record_condition"): C.RECORD_CONDITIONS,
        ("store_inventory", "sleeve_condition"): C.SLEEVE_CONDITIONS,
        ("audio_matches", "audio_platform"): C.AUDIO_PLATFORMS,
        ("audio_matches", "match_status"): C.MATCH_STATUSES,
        ("favorites", "favoritable_type"): C.FAVORITABLE_TYPES,
        ("feedback", "feedback_type"): C.FEEDBACK_TYPES,
        ("settings", "setting_type"): C.SETTING_TYPES,
    }
    for (table, column), allowed in checks.items():
        values = set(frames[table][column].drop_nulls().unique())
        assert values and values <= set(allowed), (table, column, values - set(allowed))


def test_exact_row_counts_and_defaults():
    small = generate_frames(50, 300, 7, seed=3, end=END, plays=1234, events=567)
    assert small["play_history"].height == 1234
    assert small["usage_metrics"].height == 567
    assert default_counts(2000, 90) == (200_000, 100_000)


def test_timestamps_inside_the_window_and_after_signup(frames):
    start_us, end_us = window_us(END, DAYS)
    end = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for name, frame in frames.items():
        for column, dtype in frame.schema.items():
            if isinstance(dtype, pl.Datetime):
                assert frame[column].max() < end, (name, column)
    for table, column in (("play_history", "played_at"), ("usage_metrics", "occurred_at")):
        us = frames[table][column].dt.epoch("us")
        assert us.min() >= start_us and us.max() < end_us
    users = frames["users"].select(pl.col("id").alias("user_id"), "created_at")
    for table, column in (("play_history", "played_at"), ("usage_metrics", "occurred_at"),
                          ("favorites", "created_at"), ("user_follows", "created_at")):  # fmt: skip
        joined = frames[table].join(users, on="user_id", suffix="_user")
        created = "created_at_user" if column == "created_at" else "created_at"
        assert joined.filter(pl.col(column) < pl.col(created)).height == 0, table


def _ids(frames, table: str) -> set[int]:
    return set(frames[table]["id"])


def test_every_reference_exists(frames):
    refs = [
        ("play_history", "user_id", "users"), ("play_history", "track_id", "tracks"),
        ("usage_metrics", "user_id", "users"), ("tracks", "record_id", "records"),
        ("store_inventory", "store_id", "stores"), ("store_inventory", "record_id", "records"),
        ("audio_matches", "track_id", "tracks"), ("store_managers", "store_id", "stores"),
        ("store_managers", "user_id", "users"), ("favorites", "user_id", "users"),
        ("user_collections", "user_id", "users"), ("user_follows", "store_id", "stores"),
        ("user_collection_items", "collection_id", "user_collections"),
        ("user_collection_items", "record_id", "records"), ("user_follows", "user_id", "users"),
        ("feedback", "user_id", "users"),
    ]  # fmt: skip
    for table, column, parent in refs:
        assert set(frames[table][column].drop_nulls()) <= _ids(frames, parent), (table, column)
    fav = frames["favorites"]
    for kind, parent in (("record", "records"), ("track", "tracks"), ("store", "stores")):
        targets = set(fav.filter(pl.col("favoritable_type") == kind)["favoritable_id"])
        assert targets and targets <= _ids(frames, parent), kind


def test_unique_keys_hold(frames):
    keys = {
        "users": [["email"], ["username"]], "stores": [["slug"], ["discogs_username"]],
        "records": [["discogs_release_id"]], "tracks": [["record_id", "track_index"]],
        "store_inventory": [["discogs_listing_id"]], "store_managers": [["store_id", "user_id"]],
        "audio_matches": [["track_id", "audio_platform", "external_id"]],
        "favorites": [["user_id", "favoritable_type", "favoritable_id"]],
        "user_collection_items": [["collection_id", "record_id"]],
        "user_follows": [["user_id", "store_id"]], "settings": [["key"]],
    }  # fmt: skip
    for table, key_sets in keys.items():
        for key in key_sets:
            frame = frames[table]
            assert frame.select(key).is_duplicated().sum() == 0, (table, key)


def test_listens_are_a_play_row_then_a_terminal_row(frames):
    plays = frames["play_history"]
    starts = plays.filter(pl.col("action") == "play")
    assert starts["duration_played_ms"].max() == 0 and starts["completion_percentage"].max() == 0
    complete = plays.filter(pl.col("action") == "complete")["completion_percentage"]
    skip = plays.filter(pl.col("action") == "skip")["completion_percentage"]
    assert complete.min() >= 90 and complete.max() <= 100
    assert skip.max() < 30 and skip.min() >= 0
    assert complete.len() + skip.len() == starts.height
    assert plays["completion_percentage"].is_between(0, 100).all()
    share = (plays["source"] == C.RECOMMENDATION_SOURCE).mean()
    assert 0.08 < share < 0.18


def _primary_genre_plays(frames) -> pl.DataFrame:
    tracks = frames["tracks"].select(pl.col("id").alias("track_id"), "record_id")
    records = frames["records"].select(
        pl.col("id").alias("record_id"), pl.col("genres").list.first().alias("genre")
    )
    return frames["play_history"].join(tracks, on="track_id").join(records, on="record_id")


def test_complete_rate_higher_in_taste_than_out_of_taste(frames):
    plays = _primary_genre_plays(frames)
    starts = plays.filter(pl.col("action") == "play")
    share = (
        starts.group_by("user_id", "genre")
        .len()
        .with_columns(
            share=pl.col("len") / pl.col("len").sum().over("user_id"),
            listens=pl.col("len").sum().over("user_id"),
        )
    )
    terminal = plays.filter(pl.col("action").is_in(["complete", "skip"])).join(
        share.filter(pl.col("listens") >= 20), on=["user_id", "genre"]
    )
    rate = lambda df: (df["action"] == "complete").mean()  # noqa: E731
    in_taste = rate(terminal.filter(pl.col("share") >= 0.25))
    out_of_taste = rate(terminal.filter(pl.col("share") < 0.08))
    assert in_taste > out_of_taste + 0.2, (in_taste, out_of_taste)


def test_record_popularity_is_heavy_tailed(frames):
    plays = _primary_genre_plays(frames).filter(pl.col("action") == "play")
    per_record = plays.group_by("record_id").len().sort("len", descending=True)["len"]
    top = per_record.head(frames["records"].height // 10).sum()
    assert top / per_record.sum() > 0.4


def test_user_activity_is_heavy_tailed(frames):
    per_user = frames["play_history"].group_by("user_id").len().sort("len", descending=True)
    assert per_user["len"].head(20).sum() / per_user["len"].sum() > 0.3  # top 10 % of 200


def test_json_columns_parse_and_collection_counts_match(frames):
    for table, column in (("records", "images"), ("records", "videos"), ("tracks", "artists"),
                          ("usage_metrics", "properties"), ("settings", "value")):  # fmt: skip
        for text in frames[table][column].drop_nulls().unique():
            json.loads(text)
    items = frames["user_collection_items"].group_by("collection_id").len()
    joined = frames["user_collections"].join(
        items, left_on="id", right_on="collection_id", how="left"
    )
    assert (joined["item_count"] == joined["len"].fill_null(0)).all()
    anonymous = frames["usage_metrics"].filter(pl.col("user_id").is_null())
    assert 0 < anonymous.height < frames["usage_metrics"].height // 4


def test_catalogue_ratios(frames):
    records, tracks = frames["records"], frames["tracks"]
    assert records.height == 200 and tracks.height == 2000
    assert records["genres"].list.len().is_between(1, 2).all()
    assert records["styles"].list.len().is_between(1, 3).all()
    assert records["release_year"].is_between(1955, 2025).all()
    matched = frames["audio_matches"]["track_id"].n_unique() / tracks.height
    assert 0.6 < matched < 0.8
    for_sale = (frames["store_inventory"]["record_status"] == "for_sale").mean()
    assert for_sale > 0.6
    assert frames["stores"].height >= 3
