"""Streaming reads (flows/storage/stream.py) and DuckDB's bounded memory."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pipeline_fixtures import generate

from flows.storage import bulk
from flows.storage.backends import open_storage
from flows.storage.database import parse_database
from flows.storage.errors import BulkError
from flows.storage.migrate import migrate
from flows.storage.stream import consistent_reader


@pytest.fixture
def duck(tmp_path):
    """Return a migrated, empty DuckDB database."""
    db = parse_database(f"duckdb:{tmp_path / 'stream.duckdb'}")
    migrate(db)
    return db


def test_duckdb_memory_is_bounded_by_default_and_by_the_variable(duck, monkeypatch):
    monkeypatch.delenv(bulk.MEMORY_LIMIT_VAR, raising=False)
    with open_storage(duck) as storage:
        assert storage.execute_sql("SELECT current_setting('memory_limit')") == [("953.6 MiB",)]
    monkeypatch.setenv(bulk.MEMORY_LIMIT_VAR, "512MiB")
    with open_storage(duck) as storage:
        assert storage.execute_sql("SELECT current_setting('memory_limit')") == [("512.0 MiB",)]


@pytest.mark.parametrize("value", ["lots", "1 GB; DROP TABLE users", "-1GB", ""])
def test_a_bad_memory_limit_is_one_clear_error(duck, monkeypatch, value):
    monkeypatch.setenv(bulk.MEMORY_LIMIT_VAR, value)
    with pytest.raises(BulkError, match=r"ROTATION_DUCKDB_MEMORY_LIMIT=.*expected a size"):
        bulk.duckdb_connect(duck)


def test_copy_batches_inserts_a_stream_by_column_name(duck):
    schema = pa.schema([("description", pa.string()), ("key", pa.string())])
    batches = (
        pa.record_batch([[f"d{i}"], [f"k{i}"]], schema=schema) for i in range(5)
    )  # a generator: read as DuckDB inserts, never listed first
    conn = bulk.duckdb_connect(duck)
    try:
        reader = pa.RecordBatchReader.from_batches(schema, batches)
        assert bulk.copy_batches(conn, "settings", reader) == 5
        rows = conn.execute("SELECT key, description FROM settings ORDER BY key").fetchall()
    finally:
        conn.close()
    assert rows == [(f"k{i}", f"d{i}") for i in range(5)]  # by name, not by position


@pytest.mark.postgres
def test_a_postgres_read_that_would_buffer_is_refused(pg_database):
    """Text parameters cannot be inlined: bound, libpq would hold the whole result."""
    generate(pg_database)
    with consistent_reader(pg_database) as read:
        with read("snapshot/user_ids", ()) as batches:
            assert batches.read_all().num_rows > 0
        with (
            pytest.raises(ValueError, match="would buffer"),
            read("export/daily_metrics", ("x", "y")),
        ):
            pass


def test_duckdb_reads_come_in_batches(duck):
    generate(duck)
    with consistent_reader(duck) as read, read("snapshot/users", (True, [0])) as batches:
        sizes = [batch.num_rows for batch in batches]
    assert sum(sizes) > 0 and max(sizes) <= 122_880


def test_releasing_duckdbs_cache_closes_it_and_the_next_call_opens_it(duck):
    generate(duck)
    with open_storage(duck) as storage:
        users = storage.read("extract/users")
        storage.release_cache()
        assert storage._conn is None  # the database closed: its cached pages freed
        assert storage.read("extract/users").equals(users)
