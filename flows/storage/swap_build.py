"""Building the <table>_next tables that PostgresStorage.publish swaps in (migrations 0012,
0015, 0016, 0017).

Each table is loaded on a connection of its own, all at once, and committed: publish_prepare,
then the columns holding one value in every row (a run's model_version, run_id, expires_at)
set as column defaults and left out of the COPY, the identity ids reserved in one block
(publish_reserve_ids) and sent in the COPY rather than drawn by nextval row by row, the
columns sent by binary COPY FREEZE, then the table's own defaults back and its Row Level
Security and policies (publish_secure), before the commit shows it to anyone. Rows that come
in parts (flows/storage/base.py's FrameParts) go through those steps part after part, in the
same transaction: each part's constant columns, its block of ids, its COPY. Then the
indexes: a table whose load ends while others still load builds them one at a time
(publish_build), leaving the cores to those loads; the last one to finish builds them at
once, one connection each (publish_build_index), and publish_build attaches its keys and
analyses it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import polars as pl

from flows.storage import bulk
from flows.storage.base import FrameParts, frame_parts, load_query


def _literal(value: Any, dtype: pl.DataType) -> str | None:
    """Return the text PostgreSQL reads back as exactly `value`, or None when unsure."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    zoned = getattr(dtype, "time_zone", None) and getattr(dtype, "time_unit", None) != "ns"
    if isinstance(value, dt.datetime) and zoned:
        return value.isoformat()  # with its offset: read the same in any TimeZone
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return None


def constant_columns(frame: pl.DataFrame) -> dict[str, str]:
    """Return {column: value as text} for the columns holding one non-null value in every row.

    Only text, integer, boolean, date and zoned timestamp columns; when every column is
    constant, the first one stays in the COPY (which needs a column).
    """
    constants: dict[str, str] = {}
    if frame.height < 2:
        return constants
    for name, dtype in frame.schema.items():
        if dtype.is_float() or dtype.is_nested():
            continue
        # an expression, not get_column: a stamped run column is a scalar column, and
        # taking it as a Series would write out its value once per row (0.57 GiB at L)
        column = pl.col(name)
        same = (column == column.first()).all() & (column.null_count() == 0)
        first, constant = frame.select(column.first().alias("first"), same.alias("same")).row(0)
        literal = _literal(first, dtype) if constant else None
        if literal is not None:
            constants[name] = literal
    if len(constants) == frame.width:
        del constants[frame.columns[0]]
    return constants


class LoadsInFlight:
    """How many tables of one publish are still loading (their COPY not committed yet)."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._lock = threading.Lock()

    def finish_one(self) -> bool:
        """Count one load as finished; return True when it was the last one."""
        with self._lock:
            self._count -= 1
            return self._count == 0


def with_ids(frame: pl.DataFrame, reserved: list[tuple[str, int, int]]) -> pl.DataFrame:
    """Return the frame with each reserved (column, first id, step): row i gets first + i·step."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    return frame.with_columns(
        (pl.lit(first, pl.Int64) + index * step).alias(column) for column, first, step in reserved
    )


def _copy_part(conn: Any, table: str, target: str, frame: pl.DataFrame, defaults: bool) -> bool:
    """COPY one frame into <table>_next (`target`), its constant columns as the table's
    defaults meanwhile (`defaults`: some were set for the part before); return True when
    some are set now."""
    constants = constant_columns(frame)
    sent = frame.drop(list(constants))
    if constants or defaults:
        conn.execute(load_query("publish/defaults"), (table, json.dumps(constants)))
    reserved = conn.execute(
        load_query("publish/reserve_ids"), (table, sent.height, sent.columns)
    ).fetchall()
    bulk.copy_frame(conn, target, with_ids(sent, reserved), freeze=True)
    return bool(constants)


def _load_next(conn: Any, table: str, rows: pl.DataFrame | FrameParts) -> int:
    """Create <table>_next and COPY the rows into it (a frame, or each part fetched in turn,
    with its own constant columns) in one committed transaction; return the rows."""
    copied, defaults = 0, False
    with conn.transaction():
        (target,) = conn.execute(load_query("publish/prepare"), (table,)).fetchone()
        for frame in frame_parts(rows):
            defaults = _copy_part(conn, table, target, frame, defaults)
            copied += frame.height
            del frame  # one part held at a time
        if defaults:
            conn.execute(load_query("publish/defaults"), (table, "{}"))
        conn.execute(load_query("publish/secure"), (table,))  # before anyone can see it
    return copied


#: The publish's index builds run without parallel workers: the builds of a table loaded
#: first overlap the other table's COPY, the publish's critical path, and the last table's
#: indexes are built at once, one connection each; workers on top of that only take cores
#: from them. L, 2 cores, alternated with the load anchor: publish 108.2 / 103.7 s with the
#: server's two workers per build, 73.6 / 92.9 s without (bench/README).
SERIAL_BUILDS = "SET max_parallel_maintenance_workers = 0"


def _build_index(connect: Callable[[], Any], table: str, index: str) -> None:
    """Build one index of <table>_next on a connection of its own."""
    conn = connect()
    try:
        conn.execute(SERIAL_BUILDS)
        conn.execute(load_query("publish/build_index"), (table, index))
    finally:
        conn.close()


def _build_indexes_at_once(connect: Callable[[], Any], conn: Any, table: str) -> None:
    """Build every index of <table>_next at once, one connection each; raise the first error."""
    indexes = [row[0] for row in conn.execute(load_query("publish/indexes"), (table,))]
    if len(indexes) < 2:
        return
    with ThreadPoolExecutor(len(indexes), thread_name_prefix=f"index-{table}") as pool:
        futures = [pool.submit(_build_index, connect, table, index) for index in indexes]
        wait(futures)
    for future in futures:
        future.result()


def build_next(
    connect: Callable[[], Any], table: str, frame: pl.DataFrame | FrameParts, loads: LoadsInFlight
) -> int:
    """Load, index and analyse <table>_next, committed; return its rows.

    Not visible under the table's name until publish_swap: readers see the live table.
    """
    conn = connect()
    try:
        conn.execute(SERIAL_BUILDS)
        try:
            rows = _load_next(conn, table, frame)
        finally:
            last = loads.finish_one()
        if last:
            _build_indexes_at_once(connect, conn, table)
        conn.execute(load_query("publish/build"), (table,))
        return rows
    finally:
        conn.close()


def build_all_next(
    connect: Callable[[], Any], frames: dict[str, pl.DataFrame | FrameParts]
) -> dict:
    """Build every <table>_next at once, one thread and connection each; return rows per table.

    The first error is raised after every build has stopped.
    """
    loads = LoadsInFlight(len(frames))
    if len(frames) < 2:
        return {table: build_next(connect, table, f, loads) for table, f in frames.items()}
    with ThreadPoolExecutor(len(frames), thread_name_prefix="publish") as pool:
        futures = {t: pool.submit(build_next, connect, t, f, loads) for t, f in frames.items()}
        wait(futures.values())
    return {table: future.result() for table, future in futures.items()}
