"""Bulk writes of polars frames into existing tables: binary COPY (Postgres) or Arrow (DuckDB).

Postgres, over psycopg: each column is cast as flows/storage/casts.py says and the frame is
sent by one binary COPY (encoded by pgpq), which can say FREEZE for a table created in the
same transaction (the publish swap needs it: such rows are visible to every snapshot, so a
reader whose snapshot predates the swap's COMMIT finds the new rows, not an empty table).
A column of a type without a binary encoder here (arrays, numeric, uuid, ...) sends the
frame through psycopg's row-by-row text COPY instead: fine for the small tables that have
them. A table with row security active for the role is loaded through a temporary staging
table and one INSERT ... SELECT, which honours the policies (COPY FROM refuses such tables).
DuckDB: `INSERT INTO t BY NAME SELECT * FROM <registered Arrow table>`.

Table and column names come from the frames the pipeline builds and are checked against the
catalogue, never from user input.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import duckdb
import polars as pl
import psycopg
import pyarrow as pa
from psycopg.copy import QueuedLibpqWriter

from flows.storage.base import load_query
from flows.storage.casts import binary_column, binary_stream, json_text
from flows.storage.database import Database
from flows.storage.errors import BulkError

METHODS = ("auto", "direct", "staged")


DUCKDB_SLICE_ROWS = 500_000
MEMORY_LIMIT_VAR = "ROTATION_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"


def quote_ident(name: str) -> str:
    """Return `name` as a double-quoted SQL identifier (names with quotes or NULs refused)."""
    if not name or '"' in name or "\0" in name:
        raise BulkError(f"unsafe SQL identifier {name!r}")
    return f'"{name}"'


def connect(db: Database):
    """Return a psycopg connection (Postgres, a transaction open) or a DuckDB connection."""
    if db.is_postgres:
        return psycopg.connect(db.url, cursor_factory=psycopg.RawCursor)
    return duckdb_connect(db)


def duckdb_memory_limit() -> str:
    """Return the memory DuckDB may hold (ROTATION_DUCKDB_MEMORY_LIMIT, else 1GB).

    DuckDB's own default is 80 % of the machine's memory, taken as a cache beside the run's
    frames; bounded, it spills to the file's .tmp folder instead.
    """
    value = os.environ.get(MEMORY_LIMIT_VAR, DEFAULT_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value, re.IGNORECASE):
        raise BulkError(f"{MEMORY_LIMIT_VAR}={value!r}: expected a size such as 1GB or 512MiB")
    return value


def duckdb_connect(db: Database, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Return a DuckDB connection to `db`'s file with the bounded memory and no progress bar."""
    limit = duckdb_memory_limit()
    # SET, not connect(config=…): DuckDB refuses a second connection to a file open in this
    # process with another configuration; the limit is the database instance's, shared
    conn = duckdb.connect(str(db.path), read_only=read_only)
    conn.execute(f"SET memory_limit = '{limit}'")
    conn.execute("SET enable_progress_bar = false")  # else drawn on the terminal
    return conn


def _is_postgres(conn: Any) -> bool:
    """Return True for a psycopg connection, False for a DuckDB one."""
    return isinstance(conn, psycopg.Connection)


def fetch(conn: Any, sql: str, params: tuple = ()) -> list[tuple]:
    """Return all rows of one statement ($1.. placeholders) on a psycopg connection."""
    cur = psycopg.RawCursor(conn)
    cur.execute(sql, params or None)
    return cur.fetchall() if cur.description else []


def target_columns(conn: Any, table: str) -> dict[str, tuple[str, str]]:
    """Return {column: (format_type, typtype)} of an existing Postgres table."""
    rows = fetch(conn, load_query("bulk/target_columns"), (quote_ident(table),))
    if not rows:
        raise BulkError(f"table {table!r} does not exist")
    return {name: (pg_type, kind) for name, pg_type, kind, _ in rows}


def row_security_active(conn: Any, table: str) -> bool:
    """Return True when row-level security applies to this connection's role on `table`."""
    sql = "SELECT row_security_active($1::regclass)"
    return bool(fetch(conn, sql, (quote_ident(table),))[0][0])


def _copy_binary(conn: Any, sql: str, df: pl.DataFrame, plan: list) -> None:
    """Send df through one binary COPY statement, encoding while the last chunk travels."""
    cur = conn.cursor()
    with cur.copy(sql, writer=QueuedLibpqWriter(cur)) as copy:
        for part in binary_stream(df, plan):
            if part:  # pgpq returns b"" until it has a MB to hand over
                copy.write(part)


def _copy_text(conn: Any, sql: str, df: pl.DataFrame, target: Mapping[str, tuple]) -> None:
    """Send df through one text COPY statement, row by row (psycopg adapts each value)."""
    casts = []
    for c in df.columns:
        pg_type, kind = target[c]
        if pg_type in ("json", "jsonb"):
            casts.append(json_text(c, df.schema[c]).alias(c))
        elif kind == "e" or isinstance(df.schema[c], pl.Categorical | pl.Enum):
            casts.append(pl.col(c).cast(pl.Utf8))
        else:
            casts.append(pl.col(c))
    with conn.cursor().copy(sql) as copy:
        for row in df.select(casts).iter_rows():
            copy.write_row(row)


def _copy_staged(conn: Any, table: str, df: pl.DataFrame) -> None:
    """COPY df into a temporary copy of `table`'s columns, then INSERT ... SELECT it."""
    stage = f"_bulk_stage_{table}"
    cols = ", ".join(quote_ident(c) for c in df.columns)
    conn.execute(
        f"CREATE TEMPORARY TABLE {quote_ident(stage)} ON COMMIT DROP AS "
        f"SELECT {cols} FROM {quote_ident(table)} WITH NO DATA"
    )
    _copy_postgres(conn, stage, df, method="direct")
    conn.execute(
        f"INSERT INTO {quote_ident(table)} ({cols}) SELECT {cols} FROM {quote_ident(stage)}"
    )
    conn.execute(f"DROP TABLE {quote_ident(stage)}")


def _copy_postgres(
    conn: Any, table: str, df: pl.DataFrame, method: str = "auto", freeze: bool = False
) -> None:
    """COPY df into existing `table` over psycopg (binary where it can), FREEZE if asked."""
    target = target_columns(conn, table)
    missing = [c for c in df.columns if c not in target]
    if missing:
        raise BulkError(f"{table}: no column(s) {missing}")
    if method == "auto" and row_security_active(conn, table):
        if freeze:
            raise BulkError(f"{table}: COPY FREEZE into a table with row security active")
        method = "staged"  # COPY FROM refuses RLS tables; INSERT … SELECT honours the policies
    if method == "staged":
        _copy_staged(conn, table, df)
        return
    plan = [binary_column(c, df.schema[c], *target[c]) for c in df.columns]
    copy = f"COPY {quote_ident(table)} ({', '.join(quote_ident(c) for c in df.columns)}) FROM STDIN"
    if all(p is not None for p in plan):
        _copy_binary(conn, f"{copy} (FORMAT binary{', FREEZE' if freeze else ''})", df, plan)
    else:
        _copy_text(conn, f"{copy} (FREEZE)" if freeze else copy, df, target)


def _copy_duckdb(conn: Any, table: str, df: pl.DataFrame) -> None:
    """Insert df into existing DuckDB `table` by column name, a slice at a time.

    Each slice becomes Arrow (text columns are copied in the conversion) only when DuckDB
    reads it: a frame of millions of rows is never converted whole.
    """
    schema = df.head(0).to_arrow().schema
    slices = (
        batch
        for part in df.iter_slices(DUCKDB_SLICE_ROWS)
        for batch in part.to_arrow().cast(schema).to_batches()
    )
    copy_batches(conn, table, pa.RecordBatchReader.from_batches(schema, slices))


def copy_batches(conn: Any, table: str, batches: pa.RecordBatchReader) -> int:
    """Return the rows appended to existing DuckDB `table` (by column name) from a stream of
    Arrow batches, which DuckDB reads as it inserts them: never all in memory at once."""
    name = f"_bulk_stream_{table}"
    conn.register(name, batches)
    try:
        sql = f"INSERT INTO {quote_ident(table)} BY NAME SELECT * FROM {quote_ident(name)}"
        return int(conn.execute(sql).fetchone()[0])
    finally:
        _unregister(conn, name)


def _unregister(conn: Any, name: str) -> None:
    """Drop a registered Arrow view; on an aborted transaction DuckDB refuses, and the error
    that aborted it is the one to raise, not this one (the view goes with the connection)."""
    with contextlib.suppress(duckdb.TransactionException):
        conn.unregister(name)


def copy_frame(
    conn: Any, table: str, df: pl.DataFrame, method: str = "auto", freeze: bool = False
) -> int:
    """Return the rows appended to existing `table` from df (same column names); no commit.

    `method` (Postgres): "auto" stages the rows when row security applies, "direct" COPYs,
    "staged" goes through a staging table. `freeze` COPYs with FREEZE (Postgres only), for
    a table created in the same transaction.
    """
    if method not in METHODS:
        raise BulkError(f"unknown copy method {method!r}")
    if df.height == 0:
        return 0
    if _is_postgres(conn):
        _copy_postgres(conn, table, df, method, freeze)
    elif freeze:
        raise BulkError("COPY FREEZE needs a PostgreSQL connection")
    else:
        _copy_duckdb(conn, table, df)
    return df.height


def fk_order(tables: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Return `tables` with every parent before its children (stable otherwise)."""
    tables = list(tables)
    wanted = set(tables)
    parents: dict[str, list[str]] = {t: [] for t in tables}
    for child, parent in edges:
        if child in wanted and parent in wanted:
            parents[child].append(parent)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in order or table in visiting:
            return
        visiting.add(table)
        for parent in parents[table]:
            visit(parent)
        order.append(table)

    for table in tables:
        visit(table)
    return order


def _set_triggers(conn: Any, triggers: list[tuple[str, str]], action: str) -> None:
    """ENABLE or DISABLE the given (table, trigger) pairs."""
    for table, trigger in triggers:
        conn.execute(f"ALTER TABLE {quote_ident(table)} {action} TRIGGER {quote_ident(trigger)}")


def _after_load(conn: Any, tables: list[str]) -> None:
    """Move identity sequences past the loaded ids and ANALYZE the tables."""
    conn.autocommit = True  # ANALYZE of each table on its own
    for table in tables:
        for column, sequence in fetch(conn, load_query("bulk/identity_columns"), (table,)):
            conn.execute(
                f"SELECT setval($1::regclass, coalesce(max({quote_ident(column)}), 0) + 1,"
                f" false) FROM {quote_ident(table)}",
                (sequence,),
            )
        conn.execute(f"ANALYZE {quote_ident(table)}")


def _write_postgres(conn: Any, frames: Mapping[str, pl.DataFrame], replace: bool) -> dict:
    """Write frames in one transaction on a psycopg connection; return rows per table."""
    order = fk_order(frames, fetch(conn, load_query("bulk/fk_edges")))
    try:
        triggers = [
            (t, name)
            for t in order
            for (name,) in fetch(conn, load_query("bulk/row_triggers"), (t,))
        ]
        _set_triggers(conn, triggers, "DISABLE")
        if replace:
            for table in reversed(order):
                conn.execute(f"DELETE FROM {quote_ident(table)}")
        counts = {t: copy_frame(conn, t, frames[t]) for t in order}
        _set_triggers(conn, triggers, "ENABLE")
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    _after_load(conn, order)
    return counts


def _write_duckdb(conn: Any, frames: Mapping[str, pl.DataFrame], replace: bool) -> dict:
    """Write frames in one DuckDB transaction; return rows per table."""
    order = list(frames)
    conn.execute("BEGIN TRANSACTION")
    try:
        if replace:
            for table in reversed(order):
                conn.execute(f"DELETE FROM {quote_ident(table)}")
        counts = {t: copy_frame(conn, t, frames[t]) for t in order}
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return counts


def write_frames(
    db: Database,
    frames: Mapping[str, pl.DataFrame],
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Return rows written per table: all frames in one transaction, parents first.

    Frames are written verbatim: on Postgres the tables' own INSERT/DELETE triggers (such as
    the collection item_count trigger) are disabled for the load, since the frames already
    hold the derived values. `replace` deletes the existing rows first (children first).
    """
    conn = connect(db)
    try:
        if progress:
            progress(f"writing {len(frames)} tables into {db.display}")
        if db.is_postgres:
            return _write_postgres(conn, frames, replace)
        return _write_duckdb(conn, frames, replace)
    finally:
        conn.close()
