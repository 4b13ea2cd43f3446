"""Small hand-made rows for the API read-function and pipeline-role tests."""

from __future__ import annotations

import json

import psycopg

CATALOGUE_SQL = """
INSERT INTO users (id, email, username) VALUES
    (1, 'one@example.com', 'one'),
    (2, 'two@example.com', 'two'),
    (3, 'three@example.com', 'three');
INSERT INTO stores (id, name, slug, discogs_username, store_status) VALUES
    (5, 'Active Records', 'active-records', 'active_dg', 'active'),
    (6, 'Closed Records', 'closed-records', 'closed_dg', 'inactive');
INSERT INTO records (id, discogs_release_id, artist, title, genres, styles) VALUES
    (10, 1010, 'Artist A', 'Jazz One', '{Jazz}', '{Bop}'),
    (11, 1011, 'Artist B', 'Jazz Two', '{Jazz,Funk}', '{Soul-Jazz}'),
    (12, 1012, 'Artist C', 'Jazz Three', '{Jazz}', '{Modal}'),
    (20, 2020, 'Artist D', 'Rock One', '{Rock}', '{Punk}'),
    (21, 2021, 'Artist E', 'Rock Two', '{Rock}', '{Indie}'),
    (30, 3030, 'Artist F', 'Electronic One', '{Electronic}', '{Techno}');
INSERT INTO tracks (id, record_id, position, track_index, title) VALUES
    (100, 10, 'A1', 1, 'Jazz one A1'),
    (110, 11, 'A1', 1, 'Jazz two A1'),
    (120, 12, 'A1', 1, 'Jazz three A1'),
    (200, 20, 'A1', 1, 'Rock one A1'),
    (210, 21, 'A1', 1, 'Rock two A1'),
    (300, 30, 'A1', 1, 'Electronic one A1');
"""


def insert_catalogue(conn: psycopg.Connection) -> None:
    """Insert users 1-3, stores 5 (active) / 6 (inactive), Jazz records 10-12, Rock 20-21,
    Electronic 30, and one track per record (id = record id * 10)."""
    conn.execute(CATALOGUE_SQL)


def add_recommendation(
    conn: psycopg.Connection,
    user_id: int,
    list_name: str,
    rank: int,
    *,
    item_id: int | None = None,
    item_key: str | None = None,
    data_type: str = "recommendation",
    item_type: str = "record",
    score: float = 1.0,
    expires_in: str = "1 day",
) -> None:
    """Insert one recommendation_data row expiring `expires_in` from now (negative: expired)."""
    conn.execute(
        """
        INSERT INTO recommendation_data
            (user_id, data_type, list_name, item_type, item_id, item_key, score, confidence,
             rank, reason, model_version, run_id, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, 0.5, %s, %s::jsonb, 'test-v1', 'run-1',
                now() + %s::interval)
        """,
        (
            user_id,
            data_type,
            list_name,
            item_type,
            item_id,
            item_key,
            score,
            rank,
            json.dumps({"kind": "model"}),
            expires_in,
        ),
    )


def add_similarity(
    conn: psycopg.Connection,
    source_id: int,
    target_id: int,
    similarity_type: str,
    rank: int,
    *,
    source_type: str = "record",
    score: float = 0.5,
    expires_in: str | None = None,
) -> None:
    """Insert one content_similarity row (expires_in None: never expires)."""
    conn.execute(
        """
        INSERT INTO content_similarity
            (source_type, source_id, target_type, target_id, similarity_type, score, rank,
             expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, now() + %s::interval)
        """,
        (source_type, source_id, source_type, target_id, similarity_type, score, rank, expires_in),
    )


def add_record_plays(
    conn: psycopg.Connection, record_id: int | str, plays: float, days_ago: int = 1
) -> None:
    """Insert a daily_metrics 'plays' row for a record on the UTC date `days_ago` days back."""
    conn.execute(
        """
        INSERT INTO daily_metrics
            (metric_date, metric_type, entity_type, entity_id, metric_name, metric_value)
        VALUES ((now() AT TIME ZONE 'UTC')::date - %s, 'record', 'record', %s, 'plays', %s)
        """,
        (days_ago, str(record_id), plays),
    )


def add_listing(
    conn: psycopg.Connection, listing_id: int, store_id: int, record_id: int, status: str
) -> None:
    """Insert one store_inventory row with the given record_status."""
    conn.execute(
        """
        INSERT INTO store_inventory (store_id, record_id, discogs_listing_id, price, record_status)
        VALUES (%s, %s, %s, 10.00, %s)
        """,
        (store_id, record_id, listing_id, status),
    )
