"""Reads larger than memory: a named query's rows as Arrow record batches, read and released
one at a time, every query of a reader on one view of the database (PostgreSQL: a
REPEATABLE READ, READ ONLY transaction; DuckDB: the file opened read-only).

On PostgreSQL a query streams only without bound parameters (libpq buffers a whole bound
result): its parameters are inlined as typed literals (flows/storage/literals.py), and a
parameter that cannot be is refused rather than buffered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from flows.storage.backends import open_storage
from flows.storage.base import load_query
from flows.storage.bulk import duckdb_connect
from flows.storage.database import Database
from flows.storage.errors import storage_error
from flows.storage.literals import inline
from flows.storage.replica import wait_for_replica

DUCKDB_BATCH_ROWS = 122_880  # DuckDB's own vector-aligned batch (its default for Arrow)

#: read(named_query, params) → a context holding the rows' batch reader.
Batches = contextlib.AbstractContextManager[pa.RecordBatchReader]
BatchReader = Callable[[str, Sequence[Any]], Batches]


@contextlib.contextmanager
def consistent_reader(
    db: Database,
    replica: Database | None = None,
    wait_s: float = 0,
    say: Callable[[str], None] = lambda message: None,
) -> Iterator[BatchReader]:
    """Yield read(named_query, params) giving each query's rows as an Arrow batch reader.

    With a `replica` (a streaming standby of `db`) the rows are read there, once it has
    replayed `db`'s WAL position of now (waiting up to `wait_s` seconds, saying so).
    """
    with open_storage(db) as storage:
        storage.check()  # one clear line when the server or the schema is missing
        if replica is not None:
            wait_for_replica(storage, replica, wait_s, say)
    source = replica or db
    opener = _postgres if source.is_postgres else _duckdb
    with opener(source) as read:
        yield read


@contextlib.contextmanager
def _postgres(db: Database) -> Iterator[BatchReader]:
    """Yield the batch reader of one REPEATABLE READ, READ ONLY transaction (ADBC, COPY)."""
    import adbc_driver_postgresql.dbapi as adbc  # lazy: 0.35 s, for a Postgres source only

    try:
        conn = adbc.connect(db.url, autocommit=False)
    except Exception as exc:
        raise storage_error(exc, db.display) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET LOCAL TIME ZONE 'UTC'")

        @contextlib.contextmanager
        def read(query: str, params: Sequence[Any] = ()) -> Iterator[pa.RecordBatchReader]:
            sql, bound = inline(load_query(query), params)
            if bound:
                raise ValueError(f"{query}: a parameter that cannot be inlined would buffer")
            with conn.cursor() as cur:
                try:
                    cur.execute(sql)
                    reader = cur.fetch_record_batch()
                except Exception as exc:
                    raise storage_error(exc, db.display) from None
                yield _guarded(reader, db.display)

        yield read
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


@contextlib.contextmanager
def _duckdb(db: Database) -> Iterator[BatchReader]:
    """Yield the batch reader of a DuckDB file opened read-only."""
    try:
        conn = duckdb_connect(db, read_only=True)
    except duckdb.Error as exc:
        raise storage_error(exc, db.display) from None

    @contextlib.contextmanager
    def read(query: str, params: Sequence[Any] = ()) -> Iterator[pa.RecordBatchReader]:
        try:
            relation = conn.sql(load_query(query), params=list(params))
            reader = relation.to_arrow_reader(DUCKDB_BATCH_ROWS)
        except duckdb.Error as exc:
            raise storage_error(exc, db.display) from None
        yield _guarded(reader, db.display)

    try:
        yield read
    finally:
        conn.close()


def _guarded(reader: pa.RecordBatchReader, display: str) -> pa.RecordBatchReader:
    """Return `reader` whose driver errors while streaming come out as one-line StorageErrors."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (pa.ArrowException, duckdb.Error, OSError) as exc:
            raise storage_error(exc, display) from None

    return pa.RecordBatchReader.from_batches(reader.schema, batches())
