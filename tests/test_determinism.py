"""Determinism: the same data gives byte-identical output tables; overlapping backfills leave
exactly one row per key, the rows a single backfill over the whole range gives.

Each table is exported ordered by its key, without the columns that name the run or the
moment it ran (id, run_id, computed_at, created_at, expires_at), as CSV bytes, and hashed.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from pipeline_fixtures import (
    BACKENDS,
    OUTPUT_ORDER,
    RUN_COLUMNS,
    RUN_DATE,
    fresh_database,
    generate,
    params,
    query,
)

from flows.backfill import run_backfill
from flows.nightly import run_nightly
from flows.storage.database import Database

OUTPUT_TABLES = tuple(OUTPUT_ORDER)
DAYS = [RUN_DATE - timedelta(days=6 - i) for i in range(7)]  # d1 .. d7


def export(db: Database, table: str, directory: Path) -> bytes:
    """Return `table` as CSV bytes: run columns left out, rows ordered by the table's key."""
    names = query(db, f"SELECT * FROM {table} LIMIT 0").columns
    columns = ", ".join(c for c in names if c not in RUN_COLUMNS)
    select = f"SELECT {columns} FROM {table} ORDER BY {OUTPUT_ORDER[table]}"
    if db.is_postgres:
        import psycopg

        out = io.BytesIO()
        sql = f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)"
        with psycopg.connect(db.url) as conn, conn.cursor() as cur, cur.copy(sql) as copy:
            for chunk in copy:
                out.write(chunk)
        return out.getvalue()
    import duckdb

    path = directory / f"{table}-{db.path.stem}.csv"
    with duckdb.connect(str(db.path)) as conn:
        conn.execute(f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER)")
    return path.read_bytes()


def digests(db: Database, directory: Path) -> dict[str, tuple[str, int]]:
    """Return {table: (sha256 of its export, bytes)} of every output table."""
    result = {}
    for table in OUTPUT_TABLES:
        data = export(db, table, directory)
        result[table] = (hashlib.sha256(data).hexdigest(), len(data))
    return result


def duplicate_keys(db: Database, table: str) -> int:
    """Return how many rows of `table` repeat another row's key."""
    key = OUTPUT_ORDER[table]
    return query(db, f"SELECT count(*) - count(DISTINCT ({key})) AS n FROM {table}")["n"][0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_runs_on_the_same_data_give_byte_identical_tables(backend, request, tmp_path):
    exports = []
    for _ in range(2):  # two databases generated alike, one run each
        with fresh_database(backend, tmp_path, request) as db:
            generate(db)
            result = run_nightly(db, params())
            assert result.published
            exports.append(digests(db, tmp_path))
    first, second = exports
    assert all(size > 1000 for _, size in first.values()), first
    assert first == second


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rerun_on_the_same_database_gives_byte_identical_tables(backend, request, tmp_path):
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        run_nightly(db, params())
        before = digests(db, tmp_path)
        run_nightly(db, params(top_n=5))  # something else in between
        assert digests(db, tmp_path) != before
        run_nightly(db, params())
        assert digests(db, tmp_path) == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_backfills_leave_the_rows_of_one_backfill(backend, request, tmp_path):
    d1, d3, d5, d7 = DAYS[0], DAYS[2], DAYS[4], DAYS[6]
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        run_backfill(db, d7, d7)  # something to replace
        for _ in range(2):
            run_backfill(db, d1, d5)
            run_backfill(db, d3, d7)
        assert duplicate_keys(db, "daily_metrics") == 0
        dates = query(db, "SELECT DISTINCT metric_date FROM daily_metrics ORDER BY 1")
        assert dates["metric_date"].to_list() == DAYS
        overlapping = export(db, "daily_metrics", tmp_path)
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        run_backfill(db, d1, d7)
        single = export(db, "daily_metrics", tmp_path)
    assert len(single) > 1000
    assert overlapping == single
