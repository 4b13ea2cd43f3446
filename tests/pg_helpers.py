"""Helpers for the PostgreSQL schema tests: connections and a tiny hand-made catalogue."""

from __future__ import annotations

import psycopg

from flows.storage.database import Database


def connect(db: Database) -> psycopg.Connection:
    """Return an autocommit psycopg connection to `db` (close it with a with-block)."""
    return psycopg.connect(db.url, autocommit=True, connect_timeout=10)


def scalar(conn: psycopg.Connection, sql: str, params: tuple = ()) -> object:
    """Return the first column of the first row of `sql`."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


CATALOGUE_SQL = """
INSERT INTO users (id, email, username, created_at) VALUES
    (1, 'one@example.com', 'one', '2024-03-01 12:00Z'),
    (2, 'two@example.com', 'two', '2024-03-10 05:00Z'),
    (3, 'three@example.com', 'three', '2024-02-01 00:00Z'),
    (4, 'four@example.com', 'four', '2024-03-10 23:30-02:00');
INSERT INTO stores (id, name, slug, discogs_username, store_status) VALUES
    (5, 'Active Records', 'active-records', 'active_dg', 'active'),
    (6, 'Closed Records', 'closed-records', 'closed_dg', 'inactive');
INSERT INTO records (id, discogs_release_id, artist, title, genres, styles) VALUES
    (10, 1010, 'Artist A', 'Album A', '{Jazz}', '{Bop}'),
    (20, 2020, 'Artist B', 'Album B', '{Rock}', '{Punk}');
INSERT INTO tracks (id, record_id, position, track_index, title) VALUES
    (100, 10, 'A1', 1, 'A one'),
    (101, 10, 'A2', 2, 'A two'),
    (200, 20, 'A1', 1, 'B one');
"""


def insert_catalogue(conn: psycopg.Connection) -> None:
    """Insert users 1-4, stores 5 (active) and 6 (inactive), records 10 and 20, 3 tracks."""
    conn.execute(CATALOGUE_SQL)
