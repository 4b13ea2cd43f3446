"""COPY of polars frames over psycopg: PostgreSQL's binary COPY format, encoded with numpy.

The publish transaction (flows/storage/postgres.py) runs on psycopg because ADBC's COPY cannot
say FREEZE, and a table swapped in by publish needs it: rows COPYed with FREEZE into a table
created in the same transaction are visible to every snapshot, so a reader whose snapshot is
older than the swap's COMMIT (a STABLE API function that waited on the swap's lock, say)
finds the new rows rather than an empty table. Each column is cast as flows/bulk.py casts it
for ADBC, then a chunk of rows is laid out in one buffer (field count, then a length and the
big-endian value of each field) column by column, with numpy. Columns of a type without an
encoder here (arrays, numeric) send the frame through psycopg's row-by-row text COPY instead:
fine for the small tables that have them. Tables with row security active for the role are
loaded through a temporary staging table and one INSERT ... SELECT, as in flows/bulk.py.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from flows.bulk import BulkError, _json_text, _query, copy_cast, quote_ident

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
CHUNK_ROWS = 200_000
EPOCH_2000_US = 946_684_800_000_000  # binary timestamps count microseconds from 2000-01-01
EPOCH_2000_DAYS = 10_957
NULL_FIELD = pa.scalar(struct.pack(">i", -1), pa.large_binary())  # a NULL: length -1, no value
_FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "real": ">f4",
    "boolean": "u1",
    "date": ">i4",
    "timestamp with time zone": ">i8",
    "timestamp without time zone": ">i8",
}
_VARIABLE = ("text", "json", "jsonb", "bytea", "character varying", "character(")


def fetch(conn: Any, sql: str, params: tuple = ()) -> list[tuple]:
    """Return all rows of one statement ($1.. placeholders) on a psycopg connection."""
    import psycopg

    cur = psycopg.RawCursor(conn)
    cur.execute(sql, params or None)
    return cur.fetchall() if cur.description else []


def binary_column(
    column: str, dtype: pl.DataType, pg_type: str, kind: str
) -> tuple[pl.Expr, str | None] | None:
    """Return (expr, numpy big-endian type, None for variable width) for binary COPY, or None."""
    cast = copy_cast(column, dtype, pg_type, kind)
    if cast is None:
        return None
    if pg_type in _FIXED:
        if pg_type == "date":
            cast = cast.cast(pl.Int32) - EPOCH_2000_DAYS
        elif pg_type.startswith("timestamp"):
            cast = cast.cast(pl.Int64) - EPOCH_2000_US
        elif pg_type == "boolean":
            cast = cast.cast(pl.UInt8)
        return cast.alias(column), _FIXED[pg_type]
    if kind == "e" or (pg_type.startswith(_VARIABLE) and not pg_type.endswith("[]")):
        return cast.cast(pl.Binary).alias(column), None
    return None


def _fixed_binary(values: np.ndarray) -> pa.Array:
    """Return each fixed-width element of `values` (its bytes as they are) as a binary value."""
    width = values.dtype.itemsize
    buffer = pa.py_buffer(np.ascontiguousarray(values).view(np.uint8))
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(values), [None, buffer])
    return fixed.cast(pa.large_binary())


def _fields(series: pl.Series, np_type: str | None) -> list[pa.Array]:
    """Return one column's COPY fields (a big-endian length, then the value) as binary arrays."""
    nulls = series.is_null().to_numpy()
    if np_type is None:
        values = series.fill_null(b"").to_arrow(compat_level=pl.CompatLevel.oldest())
        lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype(">i4")
        lengths[nulls] = -1
        return [_fixed_binary(lengths), values]
    record = np.empty(len(series), dtype=[("length", ">i4"), ("value", np_type)])
    record["length"] = np.dtype(np_type).itemsize
    record["value"] = series.fill_null(0).to_numpy()
    fields = _fixed_binary(record)
    if nulls.any():
        fields = pc.if_else(pa.array(nulls), NULL_FIELD, fields)
    return [fields]


def encode_rows(chunk: pl.DataFrame, types: list[str | None]) -> pa.Buffer:
    """Return the binary COPY rows of an encoded chunk (no header, no trailer)."""
    count = pa.scalar(struct.pack(">h", len(types)), pa.large_binary())
    parts = [count]
    for series, np_type in zip(chunk.iter_columns(), types, strict=True):
        parts += _fields(series, np_type)
    rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(rows.buffers()[1], np.int64)[rows.offset : rows.offset + len(rows) + 1]
    return rows.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def binary_stream(df: pl.DataFrame, plan: list[tuple[pl.Expr, str | None]]) -> Iterator[memoryview]:
    """Yield the whole binary COPY stream of df, a chunk of rows cast and encoded at a time.

    `plan` holds each column's (cast expression, numpy type) from binary_column; casting
    chunk by chunk keeps one chunk's copy of the text columns in memory, not the frame's.
    """
    exprs, types = [expr for expr, _ in plan], [np_type for _, np_type in plan]
    yield memoryview(HEADER)
    for offset in range(0, df.height, CHUNK_ROWS):
        yield memoryview(encode_rows(df.slice(offset, CHUNK_ROWS).select(exprs), types))
    yield memoryview(TRAILER)


def _target(conn: Any, table: str) -> dict[str, tuple[str, str]]:
    """Return {column: (format_type, typtype)} of an existing table."""
    rows = fetch(conn, _query("bulk_target_columns"), (quote_ident(table),))
    if not rows:
        raise BulkError(f"table {table!r} does not exist")
    return {name: (pg_type, kind) for name, pg_type, kind, _ in rows}


def _copy_binary(conn: Any, sql: str, df: pl.DataFrame, plan: list) -> None:
    """Send df through one binary COPY statement, encoding while the last chunk travels."""
    from psycopg.copy import QueuedLibpqWriter

    cur = conn.cursor()
    with cur.copy(sql, writer=QueuedLibpqWriter(cur)) as copy:
        for part in binary_stream(df, plan):
            copy.write(part)


def _copy_text(conn: Any, sql: str, df: pl.DataFrame, target: Mapping[str, tuple]) -> None:
    """Send df through one text COPY statement, row by row (psycopg adapts each value)."""
    casts = []
    for c in df.columns:
        pg_type, kind = target[c]
        if pg_type in ("json", "jsonb"):
            casts.append(_json_text(c, df.schema[c]).alias(c))
        elif kind == "e" or isinstance(df.schema[c], pl.Categorical | pl.Enum):
            casts.append(pl.col(c).cast(pl.Utf8))
        else:
            casts.append(pl.col(c))
    with conn.cursor().copy(sql) as copy:
        for row in df.select(casts).iter_rows():
            copy.write_row(row)


def _row_security_active(conn: Any, table: str) -> bool:
    """Return True when row-level security applies to this connection's role on `table`."""
    sql = "SELECT row_security_active($1::regclass)"
    return bool(fetch(conn, sql, (quote_ident(table),))[0][0])


def _copy_staged(conn: Any, table: str, df: pl.DataFrame) -> None:
    """COPY df into a temporary copy of `table`'s columns, then INSERT ... SELECT it."""
    stage = quote_ident(f"_publish_stage_{table}")
    cols = ", ".join(quote_ident(c) for c in df.columns)
    conn.execute(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {cols} FROM {quote_ident(table)} WITH NO DATA"
    )
    copy_psycopg(conn, f"_publish_stage_{table}", df, method="direct")
    conn.execute(f"INSERT INTO {quote_ident(table)} ({cols}) SELECT {cols} FROM {stage}")
    conn.execute(f"DROP TABLE {stage}")


def copy_psycopg(
    conn: Any, table: str, df: pl.DataFrame, method: str = "auto", freeze: bool = False
) -> None:
    """COPY df into existing `table` over psycopg (binary where it can), FREEZE if asked."""
    target = _target(conn, table)
    missing = [c for c in df.columns if c not in target]
    if missing:
        raise BulkError(f"{table}: no column(s) {missing}")
    if method == "auto" and _row_security_active(conn, table):
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
