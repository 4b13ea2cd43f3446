"""Monthly partitions of play_history and usage_metrics on PostgreSQL (migration 0020).

Partitions are made ahead of time, an event that landed in a default partition is moved
into its month's, and the heap that held every event before the migration (the legacy
partition) is split month by month. All of it goes through the migration's SECURITY
DEFINER functions: the pipeline's role owns no table. DuckDB's replay tables are not
partitioned: there is nothing to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from flows.storage.base import Storage
from flows.storage.errors import StorageError

#: The event tables and the event time each is partitioned by.
EVENT_TIME = {"play_history": "played_at", "usage_metrics": "occurred_at"}
EVENT_TABLES = tuple(EVENT_TIME)
#: a swap refused for its lock (a long reader holds the table) is tried again this often
SPLIT_LOCK_ATTEMPTS = 5
SPLIT_RETRY_S = 5.0
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Moved:
    """A partition made, and the rows it took from the default or legacy partition."""

    table: str
    partition: str
    rows: int


def is_partitioned(storage: Storage) -> bool:
    """Whether `storage` holds partitioned event tables (PostgreSQL)."""
    return storage.db.is_postgres


def ensure_partitions(storage: Storage, now: datetime, ahead: int) -> list[Moved]:
    """Make this month's and the `ahead` next months' partitions, and one for every month
    waiting in a default partition; return what was made."""
    if not is_partitioned(storage):
        return []
    rows = storage.execute("maintenance/ensure_partitions", (now, ahead))
    return [Moved(table, partition, int(moved)) for table, partition, moved in rows]


def partitions_for(storage: Storage, frames: Mapping[str, pl.DataFrame]) -> list[Moved]:
    """Make the partition of every month that the event frames hold rows of, before they are
    bulk-loaded: a month without one would land whole in the default partition."""
    if not is_partitioned(storage):
        return []
    made: list[Moved] = []
    for table, column in EVENT_TIME.items():
        if table not in frames or frames[table].is_empty():
            continue
        months = frames[table].select(pl.col(column).dt.truncate("1mo").unique().sort())
        for (month,) in months.drop_nulls().iter_rows():
            moved = storage.execute("maintenance/create_partition", (table, month))[0][0]
            if moved is not None:
                made.append(Moved(table, f"{table}_p{month:%Y_%m}", int(moved)))
    return made


def split_legacy(storage: Storage, say: Callable[[str], None]) -> list[Moved]:
    """Split each table's legacy partition into monthly partitions, online.

    Every month is copied into a table of its own while readers and writers go on (a
    trigger logs what they change meanwhile); then one short transaction applies the log,
    attaches the months and drops legacy. That swap waits 5 s at most for its lock and is
    tried again: it never queues behind a long reader, where it would hold every later
    reader and writer back.
    """
    if not is_partitioned(storage):
        return []
    made: list[Moved] = []
    for table in EVENT_TABLES:
        if not storage.execute("maintenance/split_begin", (table,))[0][0]:
            continue
        while (copied := storage.execute("maintenance/split_copy", (table,))[0][0]) is not None:
            say(f"{table}: a month of {copied:,} rows copied out of its legacy partition")
        started = time.perf_counter()
        for partition, rows in _swap_months(storage, table):
            made.append(Moved(table, partition, int(rows)))
            say(f"{table}: {partition} attached ({rows:,} rows)")
        say(f"{table}: legacy partition dropped, swap {time.perf_counter() - started:.1f} s")
    return made


def _swap_months(storage: Storage, table: str) -> list[tuple]:
    """Swap the copied months in, trying again when the lock is not had in time."""
    for attempt in range(1, SPLIT_LOCK_ATTEMPTS + 1):
        try:
            return storage.execute("maintenance/split_finish", (table,))
        except StorageError as exc:
            if exc.sqlstate != LOCK_NOT_AVAILABLE or attempt == SPLIT_LOCK_ATTEMPTS:
                raise
            time.sleep(SPLIT_RETRY_S)
    raise AssertionError("unreachable")


def partition_rows(storage: Storage) -> list[tuple]:
    """Return (table, partition, lower, upper, is_default, estimated rows) of every partition."""
    if not is_partitioned(storage):
        return []
    return storage.execute("maintenance/partitions")
