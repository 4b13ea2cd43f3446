"""The extract stage: every input of a run, read by named queries into polars (Arrow)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from flows.storage.base import Storage
from flows.storage.database import Database
from flows.storage.replica import SharedSnapshotStorage
from flows.tracking import release_free_memory

ALL_HISTORY_START = datetime(1900, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Inputs:
    """The frames one run reads: events in its window, and the catalogue and social tables."""

    plays: pl.DataFrame
    usage: pl.DataFrame
    users: pl.DataFrame
    stores: pl.DataFrame
    records: pl.DataFrame
    tracks: pl.DataFrame
    inventory: pl.DataFrame
    audio_matches: pl.DataFrame
    favorites: pl.DataFrame
    collections: pl.DataFrame
    collection_items: pl.DataFrame
    follows: pl.DataFrame
    settings: pl.DataFrame  # key, value (JSON text)

    def rows(self) -> int:
        """Return the total number of rows read."""
        return sum(getattr(self, f.name).height for f in fields(self))

    def replace(self, **frames: pl.DataFrame) -> Inputs:
        """Return a copy with some frames replaced."""
        return Inputs(**{f.name: frames.get(f.name, getattr(self, f.name)) for f in fields(self)})


QUERIES = {
    "users": "extract/users",
    "stores": "extract/stores",
    "records": "extract/records",
    "tracks": "extract/tracks",
    "inventory": "extract/store_inventory",
    "audio_matches": "extract/audio_matches",
    "favorites": "extract/favorites",
    "collections": "extract/user_collections",
    "collection_items": "extract/user_collection_items",
    "follows": "extract/user_follows",
    "settings": "extract/settings",
}


def day_end(day: date) -> datetime:
    """Return the first instant after `day` (UTC midnight of the next day)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def window_bounds(run_date: date, window_days: int) -> tuple[datetime, datetime]:
    """Return [start, end) of the event window ending with `run_date`; 0 days = all history."""
    if window_days < 0:
        raise ValueError(f"--window-days must be 0 (all history) or positive, not {window_days}")
    end = day_end(run_date)
    start = ALL_HISTORY_START if window_days == 0 else end - timedelta(days=window_days)
    return start, end


def setting(inputs: Inputs, key: str, default=None):
    """Return the decoded JSON value of a settings row, or `default` when absent.

    A value that is not JSON (a replay file's text column can hold anything) is returned
    as its text: the caller judges it.
    """
    rows = inputs.settings.filter(pl.col("key") == key)["value"]
    if not rows.len() or rows[0] is None:
        return default
    try:
        return json.loads(rows[0])
    except ValueError:
        return rows[0]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Return `frame` ordered by id: queries do not sort, so the order is fixed here.

    A frame that already arrives in id order (a table scanned in insertion order) is
    returned as it is: no second copy of a large event table.
    """
    key = "id" if "id" in frame.columns else frame.columns[0]
    column = frame.get_column(key)
    if column.null_count() == 0 and column.is_sorted():
        return frame.with_columns(column.set_sorted())
    order = column.rechunk().arg_sort()
    # column by column, each read column dropped as its sorted copy is made: the frame is
    # this function's own (just read), and a large event table never exists twice whole.
    # Each column is made one chunk first: a gather across the read's hundred-odd chunks
    # looks up every row's chunk (20M usage rows: 3.7–4.8 s for all columns, against
    # 2.3–2.5 s with the rechunk; bench/README)
    sorted_columns = [frame.drop_in_place(name).rechunk().gather(order) for name in frame.columns]
    return pl.DataFrame(sorted_columns).with_columns(pl.col(key).set_sorted())


#: Repeated text of the event tables, read dictionary-coded (4 bytes a row, not a string).
#: Not session ids: nearly unique per few rows, coding them cost more time and memory than
#: it saved (L profile, 20M usage rows: 31.5 s and 4.6 GB peak coded, 18.3 s and 3.2 GB not).
PLAY_CATEGORICAL = ("action", "device_type", "source")
USAGE_CATEGORICAL = ("event_type", "entity_type")


def _read_sorted(storage: Storage, query: str, params: tuple, categorical: tuple) -> pl.DataFrame:
    return _sorted(storage.read(query, params, categorical))


def _read_unless_stopped(storage: Storage, stop: threading.Event, read: tuple):
    """Return the read's sorted frame, or None once `stop` is set; a failure sets `stop`."""
    if stop.is_set():
        return None
    try:
        return _read_sorted(storage, *read)
    except BaseException:
        stop.set()
        raise


def read_all(storage: Storage, reads: dict[str, tuple]) -> dict[str, pl.DataFrame]:
    """Return each read's frame (query, parameters, categorical columns) in id order.

    ``storage.readers`` reads run at once, in the order given; after a failed read no
    other read starts, and the first error is raised once the running ones have ended.
    """
    if storage.readers <= 1:
        return {name: _read_sorted(storage, *read) for name, read in reads.items()}
    stop = threading.Event()
    with ThreadPoolExecutor(storage.readers, thread_name_prefix="extract") as pool:
        futures = {
            name: pool.submit(_read_unless_stopped, storage, stop, read)
            for name, read in reads.items()
        }
    return {name: future.result() for name, future in futures.items()}


def extract_inputs(storage: Storage, run_date: date, window_days: int) -> Inputs:
    """Return the run's inputs: plays and usage in the window, the other tables whole.

    The two event tables are read first, on two connections at once when the storage
    allows it (Postgres: the server streams one while this process decodes the other).
    """
    window = window_bounds(run_date, window_days)
    reads = {
        "usage": ("extract/usage_metrics", window, USAGE_CATEGORICAL),
        "plays": ("extract/play_history", window, PLAY_CATEGORICAL),
        **{name: (query, (), ()) for name, query in QUERIES.items()},
    }
    frames = read_all(storage, reads)
    release_free_memory()  # the read batches of any table that came unsorted
    return Inputs(**frames)


def extract_replica_inputs(replica: Database, run_date: date, window_days: int) -> Inputs:
    """Return the run's inputs read on a read replica, every table in one shared snapshot.

    The replica replays the primary's writes while it is read: reads in transactions of
    their own could see the tables at different moments (SharedSnapshotStorage).
    """
    with SharedSnapshotStorage(replica) as storage:
        return extract_inputs(storage, run_date, window_days)
