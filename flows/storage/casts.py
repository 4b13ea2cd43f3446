"""Frames cast for PostgreSQL's binary COPY, and the COPY stream itself (encoded by pgpq).

Each frame column is cast to the Arrow type whose binary COPY form the target column's
receive function accepts (int32 for integer, decimal for numeric, Utf8 for enums, jsonb
as its JSON text, ...), then pgpq (Rust, from Arrow) encodes a chunk of rows at a time;
at profile L it spent about half the client CPU of the numpy encoder it replaced
(bench/README). Columns of a type without an encoder here (arrays, numeric) make
flows/storage/bulk.py send the frame through psycopg's row-by-row text COPY instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder, encoders
from pgpq.schema import Jsonb

CHUNK_ROWS = 50_000  # rows cast and encoded at a time: a few MB, reused by the allocator
UNCONSTRAINED_NUMERIC_SCALE = 6
_NUMERIC = re.compile(r"^numeric(?:\((\d+),(\d+)\))?$")
_SIMPLE: dict[str, pl.DataType] = {
    "bigint": pl.Int64(),
    "integer": pl.Int32(),
    "smallint": pl.Int16(),
    "double precision": pl.Float64(),
    "real": pl.Float32(),
    "boolean": pl.Boolean(),
    "text": pl.Utf8(),
    "date": pl.Date(),
    "bytea": pl.Binary(),
    "text[]": pl.List(pl.Utf8),
    "character varying[]": pl.List(pl.Utf8),
    "bigint[]": pl.List(pl.Int64),
    "integer[]": pl.List(pl.Int32),
    "double precision[]": pl.List(pl.Float64),
}
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


def _timestamp(column: str, dtype: pl.DataType, tz: str | None) -> pl.Expr:
    """Return `column` as Datetime('us', tz); naive input is taken as UTC."""
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None and tz is not None:
        expr = expr.dt.replace_time_zone("UTC")
    return expr.cast(pl.Datetime("us", tz))


def json_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """Return `column` as JSON text (structs are encoded, strings taken as JSON already)."""
    if isinstance(dtype, pl.Struct):
        return pl.col(column).struct.json_encode()
    return pl.col(column).cast(pl.Utf8)


def copy_cast(column: str, dtype: pl.DataType, pg_type: str, kind: str) -> pl.Expr | None:
    """Return `column` cast to the polars type matching `pg_type`, or None if unsupported."""
    col = pl.col(column)
    numeric = _NUMERIC.match(pg_type)
    if kind == "e" or pg_type.startswith(("character varying", "character(")):
        return None if pg_type.endswith("[]") else col.cast(pl.Utf8)
    if pg_type in ("json", "jsonb"):
        return json_text(column, dtype)
    if pg_type in _SIMPLE:
        return col.cast(_SIMPLE[pg_type])
    if pg_type == "timestamp with time zone":
        return _timestamp(column, dtype, "UTC")
    if pg_type == "timestamp without time zone":
        return _timestamp(column, dtype, None)
    if numeric:
        scale = int(numeric.group(2) or UNCONSTRAINED_NUMERIC_SCALE)
        return col.cast(pl.Float64).round(scale).cast(pl.Decimal(38, scale))
    return None


def binary_column(
    column: str, dtype: pl.DataType, pg_type: str, kind: str
) -> tuple[pl.Expr, bool] | None:
    """Return (expr, is jsonb) casting `column` to what pgpq encodes as `pg_type`, or None."""
    cast = copy_cast(column, dtype, pg_type, kind)
    if cast is None:
        return None
    variable = pg_type.startswith(_VARIABLE) and not pg_type.endswith("[]")
    if pg_type in _FIXED or kind == "e" or variable:
        return cast.alias(column), pg_type == "jsonb"
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
