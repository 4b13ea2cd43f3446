"""COPY of polars frames over psycopg: PostgreSQL's binary COPY format, encoded by pgpq.

The publish transaction (flows/storage/postgres.py) runs on psycopg because ADBC's COPY cannot
say FREEZE, and a table swapped in by publish needs it: rows COPYed with FREEZE into a table
created in the same transaction are visible to every snapshot, so a reader whose snapshot is
older than the swap's COMMIT (a STABLE API function that waited on the swap's lock, say)
finds the new rows rather than an empty table. Each column is cast as flows/bulk.py casts it
for ADBC (jsonb as its JSON text), then pgpq (Rust, from Arrow) encodes a chunk of rows at a
time; at profile L it spent about half the client CPU of the numpy encoder it replaced
(bench/README). Columns of a type without an encoder here (arrays, numeric) send the frame
through psycopg's row-by-row text COPY instead: fine for the small tables that have them.
Tables with row security active for the role are loaded through a temporary staging table and
one INSERT ... SELECT, as in flows/bulk.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl
import pyarrow as pa

from flows.bulk import BulkError, _json_text, _query, copy_cast, quote_ident

CHUNK_ROWS = 50_000  # rows cast and encoded at a time: a few MB, reused by the allocator
_FIXED = {  # types copy_cast gives the Arrow type that pgpq encodes as this very type
    "bigint",
    "integer",
    "smallint",
    "double precision",
    "real",
    "boolean",
    "date",
    "timestamp with time zone",
    "timestamp without time zone",
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
) -> tuple[pl.Expr, bool] | None:
    """Return (expr, is jsonb) casting `column` to what pgpq encodes as `pg_type`, or None."""
    if pg_type == "jsonb":
        return _json_text(column, dtype).alias(column), True
    cast = copy_cast(column, dtype, pg_type, kind)
    if cast is None:
        return None
    variable = pg_type.startswith(_VARIABLE) and not pg_type.endswith("[]")
    if pg_type in _FIXED or kind == "e" or variable:
        return cast.alias(column), False
    return None


def _arrow(chunk: pl.DataFrame) -> pa.Table:
    """Return the chunk as Arrow: text as string views (no copy), binary as large binary."""
    table = chunk.to_arrow(compat_level=pl.CompatLevel.newest())
    for i, field in enumerate(table.schema):
        if pa.types.is_binary_view(field.type):  # pgpq has no encoder for binary views
            table = table.set_column(i, field.name, table.column(i).cast(pa.large_binary()))
    return table


def _encoder(schema: pa.Schema, jsonb: set[str]):
    """Return a pgpq encoder for `schema`, sending the `jsonb` columns as jsonb."""
    from pgpq import ArrowToPostgresBinaryEncoder, encoders
    from pgpq.schema import Jsonb

    chosen = {
        field.name: encoders.StringViewEncoderBuilder.new_with_output(field, Jsonb())
        if field.name in jsonb
        else ArrowToPostgresBinaryEncoder.infer_encoder(field)
        for field in schema
    }
    return ArrowToPostgresBinaryEncoder.new_with_encoders(schema, chosen)


def binary_stream(df: pl.DataFrame, plan: list[tuple[pl.Expr, bool]]) -> Iterator[bytes]:
    """Yield the whole binary COPY stream of df (pgpq), a chunk of rows cast at a time.

    `plan` holds each column's (cast expression, is jsonb) from binary_column; casting chunk
    by chunk keeps one chunk's copy of the cast columns in memory, not the frame's.
    """
    exprs = [expr for expr, _ in plan]
    jsonb = {name for name, (_, is_jsonb) in zip(df.columns, plan, strict=True) if is_jsonb}
    encoder = None
    for offset in range(0, max(df.height, 1), CHUNK_ROWS):
        table = _arrow(df.slice(offset, CHUNK_ROWS).select(exprs))
        if encoder is None:
            encoder = _encoder(table.schema, jsonb)
            yield encoder.write_header()
        for batch in table.to_batches():
            yield encoder.write_batch(batch)
    yield encoder.finish()


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
            if part:  # pgpq returns b"" until it has a MB to hand over
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
