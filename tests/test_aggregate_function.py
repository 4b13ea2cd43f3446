"""aggregate_daily_metrics(date) and cleanup_old_analytics_data() on hand-made data."""

from __future__ import annotations

import psycopg
import pytest
from pg_helpers import connect, insert_catalogue, scalar

from flows.storage.database import Database
from transforms import columns as c

pytestmark = pytest.mark.postgres

DAY = "2024-03-10"

# Plays of 2024-03-10 (UTC) are rows 1-7 and 10; rows 8, 9 and 11 fall on other UTC dates.
EVENTS_SQL = """
INSERT INTO play_history (id, user_id, track_id, action, played_at, duration_played_ms,
                          session_id, device_type, source) VALUES
    (1, 1, 100, 'play',     '2024-03-10 08:00Z',     60000, 's1', 'mobile',  'recommendation'),
    (2, 1, 100, 'complete', '2024-03-10 08:03Z',    180000, 's1', 'mobile',  'recommendation'),
    (3, 1, 101, 'play',     '2024-03-10 08:05Z',     30000, 's1', 'mobile',  'search'),
    (4, 1, 101, 'skip',     '2024-03-10 08:06Z',      5000, 's1', 'mobile',  'search'),
    (5, 2, 100, 'play',     '2024-03-10 23:59:59Z', 120000, 's2', 'desktop', 'recommendation'),
    (6, 2, 200, 'play',     '2024-03-10 12:00Z',     10000, 's2', 'desktop', 'store'),
    (7, 2, 200, 'pause',    '2024-03-10 12:01Z',         0, NULL, NULL,      NULL),
    (8, 1, 200, 'play',     '2024-03-11 00:00Z',     99999, 's9', 'mobile',  'recommendation'),
    (9, 3, 200, 'play',     '2024-03-09 23:59:59Z',  99999, 's9', 'mobile',  'search'),
    (10, 3, 101, 'seek',    '2024-03-11 01:00+02',    1000, 's3', 'tablet',  'browse'),
    (11, 3, 100, 'play',    '2024-03-10 23:30-05',   99999, 's9', 'tablet',  'search');
INSERT INTO usage_metrics (user_id, event_type, entity_type, entity_id, occurred_at) VALUES
    (1,    'page_view', 'record', 10, '2024-03-10 09:00Z'),
    (NULL, 'page_view', 'record', 10, '2024-03-10 10:00Z'),
    (4,    'page_view', 'store',   5, '2024-03-10 11:00Z'),
    (4,    'search',    'search', NULL, '2024-03-10 11:01Z'),
    (3,    'page_view', 'record', 20, '2024-03-09 11:00Z');
INSERT INTO favorites (user_id, favoritable_type, favoritable_id, created_at) VALUES
    (1, 'record', 20, '2024-03-10 10:00Z'),
    (2, 'track', 100, '2024-03-10 13:00Z'),
    (3, 'record', 10, '2024-03-09 13:00Z');
INSERT INTO user_collections (id, user_id, name) VALUES (1, 1, 'mine');
INSERT INTO user_collection_items (collection_id, record_id, added_at) VALUES
    (1, 10, '2024-03-10 14:00Z'), (1, 20, '2024-03-09 14:00Z');
INSERT INTO user_follows (user_id, store_id, created_at) VALUES
    (1, 5, '2024-03-10 15:00Z'), (2, 5, '2024-03-01 15:00Z');
"""

PLATFORM = {
    "active_users": 4,  # users 1, 2, 3 played; user 4 only browsed
    "listeners": 3,
    "plays": 4,
    "completes": 1,
    "skips": 1,
    "completion_rate": 0.25,
    "skip_rate": 0.25,
    "listening_seconds": 406.0,  # (60000+180000+30000+5000+120000+10000+0+1000) / 1000
    "sessions": 3,
    "avg_session_seconds": 406.0 / 3,
    "new_users": 1,  # user 2; user 4 was created at 01:30 UTC on the 11th
    "favorites": 2,
    "collection_adds": 1,
    "follows": 1,
    "page_views": 3,
}
TRACKS = {
    "100": {"plays": 2, "completes": 1, "skips": 0, "listeners": 2, "listening_seconds": 360.0},
    "101": {"plays": 1, "completes": 0, "skips": 1, "listeners": 2, "listening_seconds": 36.0},
    "200": {"plays": 1, "completes": 0, "skips": 0, "listeners": 1, "listening_seconds": 10.0},
}
RECORDS = {
    "10": {
        "plays": 3,
        "completes": 1,
        "skips": 1,
        "listeners": 3,
        "listening_seconds": 396.0,
        "page_views": 2,
        "favorites": 0,
    },
    "20": {
        "plays": 1,
        "completes": 0,
        "skips": 0,
        "listeners": 1,
        "listening_seconds": 10.0,
        "page_views": 0,
        "favorites": 1,
    },
}
DEVICES = {
    "mobile": {"plays": 2, "completes": 1, "skips": 1, "listeners": 1, "listening_seconds": 275.0},
    "desktop": {"plays": 2, "completes": 0, "skips": 0, "listeners": 1, "listening_seconds": 130.0},
    "tablet": {"plays": 0, "completes": 0, "skips": 0, "listeners": 1, "listening_seconds": 1.0},
}
RECOMMENDATION = {"plays": 2, "completes": 1, "skips": 0, "listeners": 2, "share_of_plays": 0.5}


def _expected() -> dict[tuple[str, str, str, str], float]:
    """Return the hand-computed rows as {(metric_type, entity_type, entity_id, name): value}."""
    rows = {("platform", "platform", "all", k): v for k, v in PLATFORM.items()}
    for kind, entity_type, table in (
        ("track", "track", TRACKS),
        ("record", "record", RECORDS),
        ("device", "device", DEVICES),
    ):
        for entity, metrics in table.items():
            rows |= {(kind, entity_type, entity, k): v for k, v in metrics.items()}
    rows |= {
        ("recommendation", "source", "recommendation", k): v for k, v in RECOMMENDATION.items()
    }
    return rows


def _metrics(conn: psycopg.Connection, day: str = DAY) -> dict[tuple[str, str, str, str], float]:
    """Return the daily_metrics rows of `day` keyed like _expected()."""
    rows = conn.execute(
        "SELECT metric_type, entity_type, entity_id, metric_name, metric_value "
        "FROM daily_metrics WHERE metric_date = %s",
        (day,),
    ).fetchall()
    return {tuple(r[:4]): r[4] for r in rows}


@pytest.fixture
def conn(migrated_pg: Database):
    """Yield an autocommit connection to a migrated database holding the hand-made day."""
    with connect(migrated_pg) as connection:
        insert_catalogue(connection)
        connection.execute(EVENTS_SQL)
        yield connection


def test_the_expected_rows_cover_the_metric_names_of_columns_py() -> None:
    assert set(PLATFORM) == set(c.PLATFORM_METRICS)
    assert {n for m in TRACKS.values() for n in m} == set(c.TRACK_METRICS)
    assert {n for m in RECORDS.values() for n in m} == set(c.RECORD_METRICS)
    assert {n for m in DEVICES.values() for n in m} == set(c.DEVICE_METRICS)
    assert set(RECOMMENDATION) == set(c.RECOMMENDATION_METRICS)


def test_aggregate_daily_metrics_gives_the_hand_computed_rows(conn) -> None:
    expected = _expected()
    assert scalar(conn, "SELECT aggregate_daily_metrics(%s)", (DAY,)) == len(expected) == 64
    got = _metrics(conn)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert scalar(conn, "SELECT array_agg(DISTINCT run_id) FROM daily_metrics") == ["sql"]


def test_running_twice_leaves_the_same_rows(conn) -> None:
    conn.execute("SELECT aggregate_daily_metrics(%s)", (DAY,))
    first = _metrics(conn)
    assert scalar(conn, "SELECT aggregate_daily_metrics(%s)", (DAY,)) == 64
    assert _metrics(conn) == first
    assert scalar(conn, "SELECT count(*) FROM daily_metrics") == 64


def test_a_stale_value_is_overwritten(conn) -> None:
    conn.execute(
        "INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
        "metric_name, metric_value, run_id) "
        "VALUES (%s, 'platform', 'platform', 'all', 'plays', 999, 'old-run')",
        (DAY,),
    )
    conn.execute("SELECT aggregate_daily_metrics(%s)", (DAY,))
    row = conn.execute(
        "SELECT metric_value, run_id FROM daily_metrics "
        "WHERE metric_date = %s AND metric_type = 'platform' AND metric_name = 'plays'",
        (DAY,),
    ).fetchone()
    assert row == (4.0, "sql")


def test_a_quiet_day_gives_zero_platform_rows_only(conn) -> None:
    assert scalar(conn, "SELECT aggregate_daily_metrics('2024-01-01')") == 15
    got = _metrics(conn, "2024-01-01")
    assert {k[0] for k in got} == {"platform"}
    assert set(got.values()) == {0.0}


def test_the_neighbouring_days_count_their_own_plays(conn) -> None:
    conn.execute("SELECT aggregate_daily_metrics('2024-03-11')")
    got = _metrics(conn, "2024-03-11")
    # rows 8 (00:00Z) and 11 (23:30-05 = 04:30Z) are the plays of the 11th
    assert got[("platform", "platform", "all", "plays")] == 2
    assert got[("recommendation", "source", "recommendation", "share_of_plays")] == 0.5
    assert got[("platform", "platform", "all", "new_users")] == 1


# cleanup_old_analytics_data ---------------------------------------------------------------

CLEANUP_SQL = """
DELETE FROM usage_metrics;
INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, metric_name,
                           metric_value)
VALUES ('2024-05-10', 'platform', 'platform', 'all', 'plays', 4);
INSERT INTO usage_metrics (id, user_id, event_type, occurred_at) VALUES
    (1, 1, 'page_view', '2024-03-01 12:00Z'),   -- a month old and aggregated: dropped
    (2, 1, 'page_view', '2024-04-30 23:59Z'),   -- a month old and aggregated: dropped
    (3, 1, 'page_view', '2024-05-01 00:00Z'),   -- its month holds the latest aggregated date
    (4, 1, 'page_view', '2024-05-20 12:00Z'),   -- not aggregated yet: kept
    (5, 1, 'page_view', '2025-05-01 12:00Z');   -- within the retention: kept
-- each month's events moved out of the default partition into their own (0020)
SELECT count(*) FROM ensure_event_partitions('2025-06-01 00:00Z', 0);
INSERT INTO recommendation_data (user_id, data_type, list_name, item_type, item_id, score,
                                 confidence, rank, model_version, expires_at) VALUES
    (1, 'recommendation', 'records', 'record', 10, 0.9, 0.5, 1, 'v1', '2025-05-31Z'),
    (1, 'recommendation', 'records', 'record', 20, 0.8, 0.5, 2, 'v1', '2025-06-02Z');
INSERT INTO content_similarity (source_type, source_id, target_type, target_id,
                                similarity_type, score, rank, expires_at) VALUES
    ('record', 10, 'record', 20, 'content', 0.5, 1, '2025-05-01Z'),
    ('record', 20, 'record', 10, 'content', 0.5, 1, NULL);
INSERT INTO jobs (id, job_type) VALUES (1, 'nightly');
INSERT INTO job_logs (job_id, message, created_at) VALUES
    (1, 'old', '2024-01-01Z'), (1, 'recent', '2025-05-01Z');
INSERT INTO performance_metrics (job_id, stage, started_at, duration_ms, created_at) VALUES
    (1, 'extract', '2024-01-01Z', 1, '2024-01-01Z');
"""
NOW = "2025-06-01 00:00Z"  # with 365 days of retention the cutoff is 2024-06-01


def test_cleanup_deletes_expired_and_old_aggregated_rows(conn) -> None:
    conn.execute(CLEANUP_SQL)
    report = dict(
        conn.execute("SELECT * FROM cleanup_old_analytics_data(365, %s)", (NOW,)).fetchall()
    )
    assert report == {
        "recommendation_data": 1,
        "content_similarity": 1,
        "usage_metrics": 2,
        "job_logs": 1,
        "performance_metrics": 1,
    }
    assert [r[0] for r in conn.execute("SELECT id FROM usage_metrics ORDER BY id")] == [3, 4, 5]
    assert scalar(conn, "SELECT array_agg(rank) FROM recommendation_data") == [2]
    assert scalar(conn, "SELECT array_agg(message) FROM job_logs") == ["recent"]


def test_cleanup_keeps_usage_when_nothing_was_aggregated(conn) -> None:
    conn.execute(CLEANUP_SQL)
    conn.execute("DELETE FROM daily_metrics")
    report = dict(
        conn.execute("SELECT * FROM cleanup_old_analytics_data(p_now => %s)", (NOW,)).fetchall()
    )
    assert report["usage_metrics"] == 0
    assert scalar(conn, "SELECT count(*) FROM usage_metrics") == 5


# parity with the pipeline's transform ------------------------------------------------------

PARITY_QUERIES = {
    "plays": "SELECT id, user_id, track_id, action::text AS action, played_at, "
    "duration_played_ms, completion_percentage, session_id, device_type, source, created_at "
    "FROM play_history",
    "usage": "SELECT id, user_id, session_id, event_type, entity_type, entity_id, occurred_at, "
    "created_at FROM usage_metrics",
    "users": "SELECT id, created_at FROM users",
    "tracks": "SELECT id, record_id FROM tracks",
    "favorites": "SELECT id, user_id, favoritable_type, favoritable_id, created_at FROM favorites",
    "collection_items": "SELECT id, collection_id, record_id, added_at FROM user_collection_items",
    "follows": "SELECT id, user_id, store_id, created_at FROM user_follows",
    "inventory": "SELECT id, store_id, record_id, record_status::text AS record_status "
    "FROM store_inventory",
}


def _frame(conn: psycopg.Connection, sql: str):
    """Return the rows of `sql` as a polars DataFrame (column names from the cursor)."""
    import polars as pl

    cur = conn.execute(sql)
    names = [d.name for d in cur.description]
    return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)


@pytest.mark.parametrize("day", ["2024-03-09", DAY, "2024-03-11"])
def test_the_function_agrees_with_the_pipeline_transform(conn, day: str) -> None:
    from datetime import date

    from transforms.daily_metrics import MetricInputs, daily_metrics

    inputs = MetricInputs(**{k: _frame(conn, q) for k, q in PARITY_QUERIES.items()})
    frame = daily_metrics(inputs, [date.fromisoformat(day)])
    pipeline = {
        (r["metric_type"], r["entity_type"], r["entity_id"], r["metric_name"]): r["metric_value"]
        for r in frame.iter_rows(named=True)
        if r["metric_type"] != "store"  # store metrics are computed by the pipeline only
    }
    conn.execute("SELECT aggregate_daily_metrics(%s)", (day,))
    function = _metrics(conn, day)
    assert function.keys() == pipeline.keys()
    for key, value in pipeline.items():
        assert function[key] == pytest.approx(value), key
