"""The Postgres schema refuses bad rows, naming the constraint, and keeps derived columns."""

from __future__ import annotations

import psycopg
import pytest
from pg_helpers import connect, insert_catalogue, scalar
from psycopg import errors

from flows.storage.database import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def conn(migrated_pg: Database):
    """Yield an autocommit connection to a migrated database holding the tiny catalogue."""
    with connect(migrated_pg) as connection:
        insert_catalogue(connection)
        yield connection


def _refused(conn: psycopg.Connection, sql: str, error: type[Exception]) -> Exception:
    """Run `sql`, assert it raises `error`, and return the exception."""
    with pytest.raises(error) as info:
        conn.execute(sql)
    return info.value


def test_completion_over_100_is_refused_by_name(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO play_history (user_id, track_id, action, completion_percentage) "
        "VALUES (1, 100, 'play', 150)",
        errors.CheckViolation,
    )
    assert exc.diag.constraint_name == "play_history_completion_percentage_check"
    assert "play_history_completion_percentage_check" in str(exc)


def test_completion_bounds_and_negative_duration(conn) -> None:
    conn.execute(
        "INSERT INTO play_history (user_id, track_id, completion_percentage) "
        "VALUES (1, 100, 0), (1, 100, 100), (1, 100, NULL)"
    )
    exc = _refused(
        conn,
        "INSERT INTO play_history (user_id, track_id, duration_played_ms) VALUES (1, 100, -1)",
        errors.CheckViolation,
    )
    assert exc.diag.constraint_name == "play_history_duration_played_ms_check"


def test_a_duplicate_favourite_is_refused_by_name(conn) -> None:
    sql = (
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES (1, 'record', 10)"
    )
    conn.execute(sql)
    exc = _refused(conn, sql, errors.UniqueViolation)
    assert exc.diag.constraint_name == "favorites_user_item_key"
    # the same item of another type, or another user, is a different favourite
    conn.execute(
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
        "VALUES (1, 'track', 10), (2, 'record', 10)"
    )
    assert scalar(conn, "SELECT count(*) FROM favorites") == 3


def test_an_unknown_favoritable_type_is_refused(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES (1, 'album', 10)",
        errors.CheckViolation,
    )
    assert exc.diag.constraint_name == "favorites_favoritable_type_check"


def test_an_unknown_enum_value_is_refused(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO play_history (user_id, track_id, action) VALUES (1, 100, 'rewind')",
        errors.InvalidTextRepresentation,
    )
    assert "play_action" in str(exc) and "rewind" in str(exc)
    exc = _refused(conn, "UPDATE stores SET store_status = 'open' WHERE id = 5", errors.DataError)
    assert "store_status" in str(exc)


def test_an_orphan_track_is_refused_by_name(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO tracks (record_id, track_index, title) VALUES (999, 1, 'orphan')",
        errors.ForeignKeyViolation,
    )
    assert exc.diag.constraint_name == "tracks_record_id_fkey"


def test_a_track_index_is_unique_per_record(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO tracks (record_id, track_index, title) VALUES (10, 1, 'again')",
        errors.UniqueViolation,
    )
    assert exc.diag.constraint_name == "idx_tracks_record_position"


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO audio_matches (track_id, audio_platform, external_id, confidence_score) "
            "VALUES (100, 'youtube', 'x', 1.5)",
            "audio_matches_confidence_score_check",
        ),
        (
            "INSERT INTO store_inventory (store_id, record_id, discogs_listing_id, price) "
            "VALUES (5, 10, 1, -0.01)",
            "store_inventory_price_check",
        ),
        (
            "INSERT INTO jobs (job_type, progress_percent) VALUES ('nightly', 100.5)",
            "jobs_progress_percent_check",
        ),
        (
            "INSERT INTO recommendation_data (user_id, data_type, list_name, item_type, score, "
            "confidence, rank, model_version, expires_at) "
            "VALUES (1, 'recommendation', 'records', 'record', 1, 1.2, 1, 'v1', now())",
            "recommendation_data_confidence_check",
        ),
        (
            "INSERT INTO recommendation_data (user_id, data_type, list_name, item_type, score, "
            "confidence, rank, model_version, expires_at) "
            "VALUES (1, 'recommendation', 'records', 'record', 1, 0.5, 0, 'v1', now())",
            "recommendation_data_rank_check",
        ),
        (
            "INSERT INTO content_similarity (source_type, source_id, target_type, target_id, "
            "similarity_type, score, rank) VALUES ('record', 10, 'record', 20, 'magic', 0.5, 1)",
            "content_similarity_similarity_type_check",
        ),
    ],
)
def test_check_constraints_name_themselves(conn, sql: str, constraint: str) -> None:
    exc = _refused(conn, sql, errors.CheckViolation)
    assert exc.diag.constraint_name == constraint


def test_daily_metrics_platform_rows_cannot_duplicate(conn) -> None:
    sql = (
        "INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
        "metric_name, metric_value) VALUES ('2024-03-10', 'platform', 'platform', 'all', "
        "'plays', 1)"
    )
    conn.execute(sql)
    exc = _refused(conn, sql, errors.UniqueViolation)
    assert exc.diag.constraint_name == "daily_metrics_key"
    _refused(conn, sql.replace("'all'", "NULL"), errors.NotNullViolation)


def test_duplicate_email_and_slug_are_refused(conn) -> None:
    exc = _refused(
        conn,
        "INSERT INTO users (id, email, username) VALUES (50, 'one@example.com', 'someone')",
        errors.UniqueViolation,
    )
    assert exc.diag.constraint_name == "idx_users_email"
    exc = _refused(
        conn,
        "INSERT INTO stores (id, name, slug, discogs_username) "
        "VALUES (50, 'x', 'active-records', 'y')",
        errors.UniqueViolation,
    )
    assert exc.diag.constraint_name == "idx_stores_slug"


def test_sync_identity_sequences_follows_explicit_ids(conn) -> None:
    # insert_catalogue gave explicit ids: users 1-4, stores 5-6, records 10/20, tracks ...200
    moved = scalar(conn, "SELECT sync_identity_sequences()")
    assert moved == 4
    new_id = scalar(conn, "INSERT INTO users (email, username) VALUES ('n@x', 'n') RETURNING id")
    assert new_id == 5
    new_track = scalar(
        conn, "INSERT INTO tracks (record_id, track_index, title) VALUES (20, 2, 't') RETURNING id"
    )
    assert new_track == 201
    assert scalar(conn, "SELECT sync_identity_sequences()") == 0  # never moves a sequence down


def test_deleting_a_job_deletes_its_logs_and_timings(conn) -> None:
    job = scalar(conn, "INSERT INTO jobs (job_type) VALUES ('nightly') RETURNING id")
    conn.execute("INSERT INTO job_logs (job_id, message) VALUES (%s, 'hello')", (job,))
    conn.execute(
        "INSERT INTO performance_metrics (job_id, stage, started_at, duration_ms) "
        "VALUES (%s, 'extract', now(), 1.5)",
        (job,),
    )
    conn.execute("DELETE FROM jobs WHERE id = %s", (job,))
    assert scalar(conn, "SELECT count(*) FROM job_logs") == 0
    assert scalar(conn, "SELECT count(*) FROM performance_metrics") == 0


def test_updated_at_moves_on_update(conn) -> None:
    conn.execute("UPDATE records SET updated_at = '2000-01-01Z' WHERE id = 10")
    conn.execute("UPDATE records SET title = 'Renamed' WHERE id = 10")
    assert scalar(conn, "SELECT updated_at > '2001-01-01Z' FROM records WHERE id = 10") is True


def test_collection_item_count_follows_inserts_and_deletes(conn) -> None:
    conn.execute(
        "INSERT INTO user_collections (id, user_id, name) VALUES (1, 1, 'mine'), (2, 2, 'theirs')"
    )
    conn.execute(
        "INSERT INTO user_collection_items (collection_id, record_id) "
        "VALUES (1, 10), (1, 20), (2, 10)"
    )
    counts = "SELECT array_agg(item_count ORDER BY id) FROM user_collections"
    assert scalar(conn, counts) == [2, 1]
    conn.execute("DELETE FROM user_collection_items WHERE collection_id = 1 AND record_id = 10")
    assert scalar(conn, counts) == [1, 1]
    conn.execute("DELETE FROM user_collection_items")
    assert scalar(conn, counts) == [0, 0]


def test_a_temporary_table_cannot_take_the_collection_count_trigger(conn) -> None:
    conn.execute("INSERT INTO user_collections (id, user_id, name) VALUES (1, 1, 'mine')")
    conn.execute("CREATE TEMPORARY TABLE user_collections (id bigint, item_count integer)")
    conn.execute("INSERT INTO user_collections VALUES (1, 0)")  # the temporary one
    conn.execute("INSERT INTO user_collection_items (collection_id, record_id) VALUES (1, 10)")
    assert scalar(conn, "SELECT item_count FROM public.user_collections WHERE id = 1") == 1
    assert scalar(conn, "SELECT item_count FROM pg_temp.user_collections WHERE id = 1") == 0
