"""Synthetic data through binary COPY into a fresh, migrated PostgreSQL database."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from flows.analyst.generate import generate_into
from flows.storage.bulk import BulkError, connect, copy_frame, write_frames
from transforms.synthetic.frames import generate_frames

pytestmark = pytest.mark.postgres
END = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_frames(200, 2000, 30, seed=9, end=END)


def _counts(db, tables) -> dict[str, int]:
    with psycopg.connect(db.url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_generate_into_a_fresh_database_passes_every_constraint(pg_database, frames):
    lines: list[str] = []
    counts = generate_into(pg_database, 200, 2000, 30, seed=9, end=END, progress=lines.append)
    expected = {name: frame.height for name, frame in frames.items()}
    assert counts == expected
    assert _counts(pg_database, expected) == expected
    assert [line.split()[0] for line in lines] == ["migrated", "generated", "made", "loaded"]
    assert generate_into(pg_database, 200, 2000, 30, seed=9, end=END) == expected
    assert _counts(pg_database, expected) == expected


def test_loaded_rows_read_back_as_generated(migrated_pg, frames):
    write_frames(migrated_pg, frames)
    plays = frames["play_history"]
    with psycopg.connect(migrated_pg.url) as conn:
        by_action = dict(
            conn.execute("SELECT action::text, count(*) FROM play_history GROUP BY 1").fetchall()
        )
        total_ms, last = conn.execute(
            "SELECT sum(duration_played_ms), max(played_at) FROM play_history"
        ).fetchone()
        price = conn.execute("SELECT sum(price) FROM store_inventory").fetchone()[0]
        styles = conn.execute("SELECT styles FROM records WHERE id = 1").fetchone()[0]
        props = conn.execute("SELECT properties FROM usage_metrics WHERE id = 1").fetchone()[0]
        mismatched = conn.execute(
            "SELECT count(*) FROM user_collections AS c WHERE item_count <> "
            "(SELECT count(*) FROM user_collection_items AS i WHERE i.collection_id = c.id)"
        ).fetchone()[0]
        trigger = conn.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'user_collection_items_count_insert'"
        ).fetchone()[0]
        next_id = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('play_history', 'id'))"
        ).fetchone()[0]
    assert by_action == dict(plays.group_by("action").len().iter_rows())
    assert total_ms == plays["duration_played_ms"].sum()
    assert last == plays["played_at"].max()
    assert float(price) == pytest.approx(frames["store_inventory"]["price"].sum(), abs=0.01)
    assert styles == frames["records"]["styles"][0].to_list()
    assert isinstance(props, dict)
    assert mismatched == 0  # the item_count trigger did not count the loaded items twice
    assert trigger == "O"  # ... and is enabled again after the load
    assert next_id == plays.height + 1


def test_direct_and_staged_copies_store_the_same_rows(migrated_pg, frames):
    write_frames(migrated_pg, {k: frames[k] for k in ("users", "stores", "records")})
    subset = frames["records"].select("id", "discogs_release_id", "artist", "title", "images")
    tables = []
    for method in ("direct", "staged"):
        conn = connect(migrated_pg)
        conn.execute("DELETE FROM records")
        assert copy_frame(conn, "records", subset, method=method) == subset.height
        tables.append(
            conn.execute("SELECT id, images::text, genres FROM records ORDER BY id").fetchall()
        )
        conn.rollback()
        conn.close()
    assert tables[0] == tables[1]
    assert tables[0][0][2] == []  # columns left out of the frame take their defaults


def test_a_constraint_violation_rolls_the_whole_write_back(migrated_pg, frames):
    orphan = frames["play_history"].head(5).with_columns(user_id=pl.lit(10_000_000, pl.Int64))
    bad = {"users": frames["users"], "tracks": frames["tracks"], "play_history": orphan}
    bad["records"] = frames["records"]
    with pytest.raises(Exception, match="foreign key"):
        write_frames(migrated_pg, bad)
    assert _counts(migrated_pg, ["users", "records", "play_history"]) == {
        "users": 0,
        "records": 0,
        "play_history": 0,
    }
    conn = connect(migrated_pg)
    try:
        with pytest.raises(BulkError):
            copy_frame(conn, "users", pl.DataFrame({"no_such_column": [1]}))
    finally:
        conn.rollback()
        conn.close()
