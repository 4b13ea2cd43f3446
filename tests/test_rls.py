"""Row Level Security: anon and authenticated see public content and their own rows only."""

from __future__ import annotations

import psycopg
import pytest
from pg_helpers import connect, insert_catalogue, scalar
from psycopg import errors

from flows.storage.database import Database

pytestmark = pytest.mark.postgres

ANALYTICS_TABLES = ("daily_metrics", "recommendation_data", "usage_metrics", "jobs")
ALL_TABLES = (
    "users",
    "stores",
    "records",
    "tracks",
    "store_inventory",
    "audio_matches",
    "favorites",
    "user_collections",
    "user_collection_items",
    "play_history",
    "usage_metrics",
    "daily_metrics",
    "recommendation_data",
    "jobs",
    "job_logs",
    "schema_migrations",
)

CONTENT_SQL = """
INSERT INTO store_inventory (store_id, record_id, discogs_listing_id, price, record_status)
VALUES (5, 10, 1, 10.00, 'for_sale'), (5, 20, 2, 12.00, 'sold'), (6, 20, 3, 9.00, 'for_sale');
INSERT INTO audio_matches (track_id, audio_platform, external_id, match_status) VALUES
    (100, 'youtube', 'a', 'verified'), (101, 'spotify', 'b', 'auto_approved'),
    (200, 'youtube', 'c', 'pending'), (200, 'bandcamp', 'd', 'rejected');
INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES
    (1, 'record', 10), (1, 'track', 100), (2, 'record', 20);
INSERT INTO user_collections (id, user_id, name) VALUES (1, 1, 'mine'), (2, 2, 'theirs');
INSERT INTO user_collection_items (collection_id, record_id) VALUES (1, 10), (2, 20);
INSERT INTO play_history (user_id, track_id, action) VALUES (1, 100, 'play');
INSERT INTO usage_metrics (user_id, event_type) VALUES (1, 'page_view');
INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, metric_name,
                           metric_value)
VALUES ('2024-03-10', 'platform', 'platform', 'all', 'plays', 3);
INSERT INTO recommendation_data (user_id, data_type, list_name, item_type, item_id, score,
                                 confidence, rank, model_version, expires_at)
VALUES (1, 'recommendation', 'records', 'record', 20, 0.9, 0.8, 1, 'v1', now() + interval '1 day');
INSERT INTO jobs (id, job_type) VALUES (1, 'nightly');
INSERT INTO job_logs (job_id, message) VALUES (1, 'started');
"""


@pytest.fixture
def conn(migrated_pg: Database):
    """Yield an autocommit connection (as the owner) to a migrated database with content."""
    with connect(migrated_pg) as connection:
        insert_catalogue(connection)
        connection.execute(CONTENT_SQL)
        yield connection


def _as(conn: psycopg.Connection, role: str, sub: str | None = None) -> None:
    """Switch the session to `role`, with the JWT subject claim `sub` (unset when None)."""
    conn.execute("RESET ROLE")
    conn.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (sub or "",))
    conn.execute(f"SET ROLE {role}")


def _ids(conn: psycopg.Connection, sql: str) -> list:
    """Return the first column of every row of `sql`, sorted."""
    return sorted(r[0] for r in conn.execute(sql).fetchall())


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_analytics_tables_are_closed_to_the_public_roles(conn, role: str) -> None:
    _as(conn, role, "1")
    for table in ANALYTICS_TABLES:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {table}")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_a_stray_grant_still_shows_no_analytics_row(conn, role: str) -> None:
    # defence in depth: even with SELECT granted by mistake, RLS shows nothing
    with conn.transaction(force_rollback=True):
        for table in ANALYTICS_TABLES:
            conn.execute(f"GRANT SELECT ON {table} TO {role}")
        conn.execute("SELECT set_config('request.jwt.claim.sub', '1', true)")
        conn.execute(f"SET LOCAL ROLE {role}")
        for table in ANALYTICS_TABLES:
            assert scalar(conn, f"SELECT count(*) FROM {table}") == 0, table


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_public_content_is_readable(conn, role: str) -> None:
    _as(conn, role, "1")
    assert _ids(conn, "SELECT id FROM stores") == [5]
    assert _ids(conn, "SELECT id FROM records") == [10, 20]
    assert _ids(conn, "SELECT id FROM tracks") == [100, 101, 200]
    assert _ids(conn, "SELECT discogs_listing_id FROM store_inventory") == [1]
    assert _ids(conn, "SELECT external_id FROM audio_matches") == ["a", "b"]


def test_anon_sees_no_personal_rows(conn) -> None:
    _as(conn, "anon")
    for table in ("users", "favorites", "user_collections", "user_collection_items"):
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {table}")


def test_a_user_sees_only_their_own_rows(conn) -> None:
    _as(conn, "authenticated", "1")
    assert _ids(conn, "SELECT id FROM users") == [1]
    assert _ids(conn, "SELECT favoritable_id FROM favorites") == [10, 100]
    assert _ids(conn, "SELECT id FROM user_collections") == [1]
    assert _ids(conn, "SELECT record_id FROM user_collection_items") == [10]
    _as(conn, "authenticated", "2")
    assert _ids(conn, "SELECT favoritable_id FROM favorites") == [20]
    _as(conn, "authenticated")  # no subject claim: nobody's rows
    assert _ids(conn, "SELECT id FROM favorites") == []
    assert _ids(conn, "SELECT id FROM users") == []


def test_a_user_manages_their_own_favourites_only(conn) -> None:
    _as(conn, "authenticated", "1")
    conn.execute(
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES (1, 'store', 5)"
    )
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        conn.execute(
            "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
            "VALUES (2, 'store', 5)"
        )
    assert conn.execute("DELETE FROM favorites WHERE user_id = 2").rowcount == 0
    assert conn.execute("DELETE FROM favorites WHERE favoritable_type = 'store'").rowcount == 1
    conn.execute("RESET ROLE")
    assert _ids(conn, "SELECT user_id FROM favorites") == [1, 1, 2]


def test_a_user_adds_only_to_their_own_collections(conn) -> None:
    _as(conn, "authenticated", "1")
    conn.execute("INSERT INTO user_collection_items (collection_id, record_id) VALUES (1, 20)")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        conn.execute("INSERT INTO user_collection_items (collection_id, record_id) VALUES (2, 10)")
    assert scalar(conn, "SELECT item_count FROM user_collections WHERE id = 1") == 2
    conn.execute("RESET ROLE")
    assert scalar(conn, "SELECT item_count FROM user_collections WHERE id = 2") == 1


def test_a_user_follows_and_gives_feedback_as_themselves(conn) -> None:
    _as(conn, "authenticated", "2")
    conn.execute("INSERT INTO user_follows (user_id, store_id) VALUES (2, 5)")
    conn.execute("INSERT INTO feedback (user_id, feedback_type, message) VALUES (2, 'bug', 'x')")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("INSERT INTO user_follows (user_id, store_id) VALUES (1, 5)")
    assert _ids(conn, "SELECT store_id FROM user_follows") == [5]
    _as(conn, "authenticated", "1")
    assert _ids(conn, "SELECT store_id FROM user_follows") == []
    assert _ids(conn, "SELECT id FROM feedback") == []


def test_service_role_reads_everything(conn) -> None:
    expected = {t: scalar(conn, f"SELECT count(*) FROM {t}") for t in ALL_TABLES}
    _as(conn, "service_role")
    seen = {t: scalar(conn, f"SELECT count(*) FROM {t}") for t in ALL_TABLES}
    assert seen == expected
    assert expected["daily_metrics"] == 1 and expected["stores"] == 2


def test_the_batch_functions_are_not_for_the_public_roles(conn) -> None:
    _as(conn, "anon")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT aggregate_daily_metrics('2024-03-10')")
    _as(conn, "service_role")
    assert scalar(conn, "SELECT aggregate_daily_metrics('2024-03-10')") == 15


def test_current_app_user_id_reads_the_claim(conn) -> None:
    _as(conn, "authenticated", "42")
    assert scalar(conn, "SELECT current_app_user_id()") == 42
    _as(conn, "authenticated", "not-a-number")
    assert scalar(conn, "SELECT current_app_user_id()") is None
    _as(conn, "authenticated")
    assert scalar(conn, "SELECT current_app_user_id()") is None


def test_signed_in_users_read_no_sequence_and_still_insert(conn):
    """Sequences would tell a signed-in user the tables' sizes (users_id_seq's last_value)
    and let them burn ids (nextval on jobs_id_seq); identity inserts need neither."""
    conn.execute("SET ROLE authenticated")
    conn.execute("SELECT set_config('request.jwt.claim.sub', '1', false)")
    for sql in ("SELECT last_value FROM users_id_seq", "SELECT nextval('jobs_id_seq')"):
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute(sql)
    conn.execute(
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) VALUES (1, 'record', 20)"
    )
    assert scalar(conn, "SELECT count(*) FROM favorites WHERE user_id = 1") == 3
