"""flows/storage/bulk.py on DuckDB, and its pure helpers (type casts, FK order, identifiers)."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from flows.analyst.generate import generate_into
from flows.storage.bulk import BulkError, copy_frame, fk_order, quote_ident, write_frames
from flows.storage.casts import binary_column, copy_cast
from transforms.synthetic.frames import generate_frames

END = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_frames(200, 2000, 30, seed=5, end=END)


def _counts(db, tables) -> dict[str, int]:
    with duckdb.connect(str(db.path)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _frame(conn, sql: str) -> pl.DataFrame:
    return pl.from_arrow(conn.sql(sql).to_arrow_table())


def test_fk_order_puts_parents_first_and_keeps_the_rest_stable():
    edges = [("tracks", "records"), ("play_history", "tracks"), ("play_history", "users")]
    order = fk_order(["play_history", "settings", "tracks", "users", "records"], edges)
    assert order == ["records", "tracks", "users", "play_history", "settings"]
    for child, parent in edges:
        assert order.index(parent) < order.index(child)
    assert fk_order(["a", "b"], [("a", "b"), ("b", "a")]) in (["b", "a"], ["a", "b"])


def test_quote_ident_refuses_quotes():
    assert quote_ident("play_history") == '"play_history"'
    with pytest.raises(BulkError):
        quote_ident('x"; DROP TABLE users; --')


def test_copy_cast_maps_postgres_types_to_arrow():
    df = pl.DataFrame({"j": ['{"a": 1}', None], "p": [19.99, 2.675], "n": [1, 2]})
    out = df.select(
        copy_cast("j", pl.Utf8, "jsonb", "b").alias("j"),
        copy_cast("p", pl.Float64, "numeric(10,2)", "b").alias("p"),
        copy_cast("n", pl.Int64, "integer", "b").alias("n"),
    )
    assert out["j"].to_list() == ['{"a": 1}', None]  # jsonb travels as its JSON text
    assert out.schema["p"] == pl.Decimal(38, 2) and str(out["p"][0]) == "19.99"
    assert out.schema["n"] == pl.Int32
    assert copy_cast("u", pl.Utf8, "uuid", "b") is None
    structs = pl.DataFrame({"r": [{"seed": 1}]})
    assert structs.select(copy_cast("r", structs.schema["r"], "jsonb", "b")).to_series()[0] == (
        '{"seed":1}'
    )
    assert binary_column("j", pl.Utf8, "jsonb", "b")[1] is True  # encoded by pgpq as jsonb
    assert binary_column("p", pl.Float64, "numeric(10,2)", "b") is None  # text COPY instead
    assert copy_cast("a", pl.Utf8, "play_action", "e") is not None


def test_duckdb_round_trip_and_replace(migrated_duck, frames):
    counts = write_frames(migrated_duck, frames)
    expected = {name: frame.height for name, frame in frames.items()}
    assert counts == expected
    assert _counts(migrated_duck, frames) == expected
    again = write_frames(migrated_duck, frames, replace=True)
    assert again == expected and _counts(migrated_duck, frames) == expected
    with duckdb.connect(str(migrated_duck.path)) as conn:
        plays = _frame(conn, "SELECT * FROM play_history ORDER BY id")
        records = _frame(conn, "SELECT id, genres, styles FROM records ORDER BY id")
    assert plays.drop("played_at", "created_at").equals(
        frames["play_history"].drop("played_at", "created_at")
    )
    assert (
        plays["played_at"].dt.epoch("us") == frames["play_history"]["played_at"].dt.epoch("us")
    ).all()
    assert records["styles"].to_list() == frames["records"]["styles"].to_list()


def test_failed_write_leaves_the_database_unchanged(migrated_duck, frames):
    write_frames(migrated_duck, {"users": frames["users"]})
    broken = {"users": frames["users"], "stores": frames["stores"].with_columns(nope=pl.lit(1))}
    with pytest.raises(duckdb.Error):
        write_frames(migrated_duck, broken, replace=True)
    assert _counts(migrated_duck, ["users", "stores"]) == {"users": 200, "stores": 0}


def test_copy_frame_appends_a_subset_of_columns_without_committing(migrated_duck):
    conn = duckdb.connect(str(migrated_duck.path))
    conn.execute("BEGIN TRANSACTION")
    df = pl.DataFrame({"key": ["a", "b"], "setting_type": ["string", "json"]})
    assert copy_frame(conn, "settings", df) == 2
    assert conn.execute("SELECT count(*) FROM settings").fetchone()[0] == 2
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM settings").fetchone()[0] == 0
    assert copy_frame(conn, "settings", df.head(0)) == 0
    conn.close()


def test_generate_into_duckdb(duck_database):
    lines: list[str] = []
    counts = generate_into(duck_database, 60, 400, 10, seed=2, end=END, progress=lines.append)
    assert counts["users"] == 60 and counts["tracks"] == 400 and counts["play_history"] > 0
    assert _counts(duck_database, counts) == counts
    assert any(line.startswith("generated") for line in lines)
    assert generate_into(duck_database, 60, 400, 10, seed=2, end=END) == counts
    assert _counts(duck_database, counts) == counts
