"""The least-privilege pipeline role rotation_pipeline (migration 0009)."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from api_fixtures import add_recommendation, insert_catalogue
from pg_helpers import connect, scalar

DENIED = psycopg.errors.InsufficientPrivilege


def _as_pipeline(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("SET ROLE rotation_pipeline")
    return conn


def _plays(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        INSERT INTO play_history (user_id, track_id, action, played_at, duration_played_ms)
        VALUES (1, 100, 'play', '2024-03-10 10:00Z', 60000),
               (2, 100, 'complete', '2024-03-10 11:00Z', 180000),
               (2, 200, 'play', '2024-03-11 09:00Z', 30000)
        """
    )


def test_role_is_nologin_and_not_privileged(migrated_pg):
    with connect(migrated_pg) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
            "FROM pg_roles WHERE rolname = 'rotation_pipeline'"
        ).fetchone()
    assert row == (False, False, False, False, False)


def test_reads_inputs_through_rls(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _plays(conn)
        conn.execute(
            "INSERT INTO usage_metrics (user_id, event_type) "
            "VALUES (1, 'page_view'), (NULL, 'search')"
        )
        pipe = _as_pipeline(conn)
        assert scalar(pipe, "SELECT count(*) FROM play_history") == 3
        assert scalar(pipe, "SELECT count(*) FROM usage_metrics") == 2
        assert scalar(pipe, "SELECT count(*) FROM users") == 3
        # every store, not only the public (active) ones
        assert scalar(pipe, "SELECT count(*) FROM stores") == 2
        assert scalar(pipe, "SELECT count(*) FROM schema_migrations") >= 9


def test_writes_its_own_tables(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        pipe = _as_pipeline(conn)
        job_id = scalar(
            pipe,
            "INSERT INTO jobs (job_type, job_status) VALUES ('nightly', 'running') RETURNING id",
        )
        pipe.execute("UPDATE jobs SET progress_percent = 50 WHERE id = %s", (job_id,))
        pipe.execute("INSERT INTO job_logs (job_id, message) VALUES (%s, 'started')", (job_id,))
        pipe.execute(
            "INSERT INTO performance_metrics (job_id, stage, started_at, duration_ms) "
            "VALUES (%s, 'extract', now(), 12.5)",
            (job_id,),
        )
        pipe.execute(
            "INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
            "metric_name, metric_value) VALUES ('2024-03-10', 'platform', 'platform', 'all', "
            "'plays', 3)"
        )
        pipe.execute("UPDATE daily_metrics SET metric_value = 4 WHERE metric_name = 'plays'")
        add_recommendation(pipe, 1, "records", 1, item_id=10)
        pipe.execute(
            "INSERT INTO content_similarity (source_type, source_id, target_type, target_id, "
            "similarity_type, score, rank) VALUES ('record', 10, 'record', 11, 'content', 0.5, 1)"
        )
        pipe.execute("DELETE FROM recommendation_data WHERE user_id = 1")
        assert scalar(pipe, "SELECT progress_percent FROM jobs WHERE id = %s", (job_id,)) == 50
        assert scalar(pipe, "SELECT metric_value FROM daily_metrics") == 4
        assert scalar(pipe, "SELECT count(*) FROM recommendation_data") == 0
        assert scalar(pipe, "SELECT count(*) FROM content_similarity") == 1
        assert scalar(pipe, "SELECT count(*) FROM job_logs") == 1
        assert scalar(pipe, "SELECT count(*) FROM performance_metrics") == 1


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO users (email, username) VALUES ('x@example.com', 'x')",
        "UPDATE users SET display_name = 'pwned' WHERE id = 1",
        "DELETE FROM users WHERE id = 1",
        "INSERT INTO records (discogs_release_id, artist, title) VALUES (9, 'A', 'T')",
        "UPDATE records SET title = 'pwned' WHERE id = 10",
        "DELETE FROM records WHERE id = 10",
        "UPDATE play_history SET action = 'skip'",
        "INSERT INTO favorites (user_id, favoritable_type, favoritable_id) "
        "VALUES (1, 'record', 10)",
        "SELECT * FROM feedback",
        "SELECT * FROM settings",
        "CREATE TABLE public.pipeline_scratch (id int)",
    ],
)
def test_cannot_touch_what_it_does_not_own(migrated_pg, sql):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        with pytest.raises(DENIED):
            _as_pipeline(conn).execute(sql)
        conn.execute("RESET ROLE")
        assert scalar(conn, "SELECT title FROM records WHERE id = 10") == "Jazz One"
        assert scalar(conn, "SELECT count(*) FROM users") == 3


def test_cannot_read_a_discogs_tokens_table(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute("CREATE TABLE discogs_tokens (user_id bigint, token text)")
        conn.execute("INSERT INTO discogs_tokens VALUES (1, 'secret')")
        pipe = _as_pipeline(conn)
        with pytest.raises(DENIED):
            pipe.execute("SELECT token FROM discogs_tokens")
        with pytest.raises(DENIED):
            pipe.execute("INSERT INTO discogs_tokens VALUES (2, 'x')")


def test_can_stage_in_a_temporary_table(migrated_pg):
    with connect(migrated_pg) as conn:
        pipe = _as_pipeline(conn)
        pipe.execute(
            "CREATE TEMPORARY TABLE stage AS "
            "SELECT metric_date, metric_type, entity_type, entity_id, metric_name, metric_value "
            "FROM daily_metrics WITH NO DATA"
        )
        with pipe.cursor().copy(
            "COPY stage (metric_date, metric_type, entity_type, entity_id, metric_name, "
            "metric_value) FROM STDIN"
        ) as copy:
            copy.write_row((dt.date(2024, 3, 10), "platform", "platform", "all", "plays", 7.0))
        pipe.execute(
            "INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
            "metric_name, metric_value) SELECT metric_date, metric_type, entity_type, "
            "entity_id, metric_name, metric_value FROM stage"
        )
        assert scalar(pipe, "SELECT metric_value FROM daily_metrics") == 7.0


def test_can_run_the_batch_functions(migrated_pg):
    with connect(migrated_pg) as conn:
        insert_catalogue(conn)
        _plays(conn)
        conn.execute(
            "INSERT INTO usage_metrics (user_id, event_type, occurred_at) VALUES "
            "(1, 'page_view', '2020-01-01Z'), (1, 'page_view', '2024-03-10 12:00Z')"
        )
        add_recommendation(conn, 1, "records", 1, item_id=10, expires_in="-1 day")
        add_recommendation(conn, 1, "records", 2, item_id=11)
        conn.execute(
            "INSERT INTO jobs (id, job_type) VALUES (500, 'nightly')"
        )  # explicit id: the identity sequence is now behind
        pipe = _as_pipeline(conn)
        written = scalar(pipe, "SELECT aggregate_daily_metrics('2024-03-10')")
        assert written > 0
        plays = scalar(
            pipe,
            "SELECT metric_value FROM daily_metrics WHERE metric_date = '2024-03-10' "
            "AND metric_type = 'platform' AND metric_name = 'plays'",
        )
        assert plays == 1
        # the nightly's maintenance: the 2020 event moves out of the default partition
        assert ("usage_metrics", "usage_metrics_p2020_01", 1) in pipe.execute(
            "SELECT * FROM ensure_event_partitions()"
        ).fetchall()
        deleted = dict(pipe.execute("SELECT * FROM cleanup_old_analytics_data(365)").fetchall())
        assert deleted["usage_metrics"] == 1
        assert deleted["recommendation_data"] == 1
        assert scalar(pipe, "SELECT count(*) FROM usage_metrics") == 1
        assert scalar(pipe, "SELECT sync_identity_sequences()") >= 1
        new_id = scalar(pipe, "INSERT INTO jobs (job_type) VALUES ('nightly') RETURNING id")
        assert new_id > 500
