"""Snapshot: copy every table the pipeline reads from a database into a new DuckDB replay file.

Columnar end to end and streamed: each table's rows come as Arrow record batches (ADBC's
COPY stream on Postgres, inside one REPEATABLE READ, READ ONLY transaction so every table
is seen at the same instant: flows/storage/stream.py) and DuckDB inserts them by name as
they arrive, within its memory limit, so a table of any size is copied in bounded memory.
The file is built at PATH.tmp-<pid> and moved over PATH with os.replace, so a reader sees
the old snapshot or the new one, never a half-written file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from flows.params import REPLICA_WAIT_S
from flows.stages.extract import ALL_HISTORY_START, day_end
from flows.storage.base import load_query
from flows.storage.bulk import connect, copy_batches
from flows.storage.database import Database, parse_database
from flows.storage.migrate import migrate
from flows.storage.queries import sql_text
from flows.storage.stream import BatchReader, consistent_reader

ALL_HISTORY_END = datetime(9999, 1, 1, tzinfo=UTC)
# Parents first. "catalogue": copied whole; "owned": rows of the kept users; "events": rows of
# the kept users inside the window.
TABLES: dict[str, str] = {
    "users": "owned",
    "stores": "catalogue",
    "store_managers": "owned",
    "records": "catalogue",
    "tracks": "catalogue",
    "store_inventory": "catalogue",
    "audio_matches": "catalogue",
    "settings": "catalogue",
    "favorites": "owned",
    "user_collections": "owned",
    "user_collection_items": "owned",
    "user_follows": "owned",
    "play_history": "events",
    "usage_metrics": "events",
}


@dataclass(frozen=True)
class SnapshotSpec:
    """What to copy: the event window (inclusive dates) and an optional user sample."""

    since: date | None = None
    until: date | None = None
    sample_fraction: float | None = None
    seed: int = 42
    replica_wait: float = REPLICA_WAIT_S  # with a read replica: seconds it may take to catch up

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"--since {self.since} is after --until {self.until}")
        if self.sample_fraction is not None and not 0 < self.sample_fraction <= 1:
            raise ValueError(f"--sample-users must be in (0, 1], not {self.sample_fraction}")

    def bounds(self) -> tuple[datetime, datetime]:
        """Return the [start, end) instants of the event window (all history when open)."""
        start = (
            datetime.combine(self.since, datetime.min.time(), tzinfo=UTC)
            if self.since
            else ALL_HISTORY_START
        )
        return start, day_end(self.until) if self.until else ALL_HISTORY_END


@dataclass
class SnapshotResult:
    """What a snapshot wrote: the file, rows per table, the sampled users and the time taken."""

    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    sampled_users: int | None = None
    seconds: float = 0.0


def sample_mask(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Return a boolean mask: True for the ids whose splitmix64(id, seed) falls below fraction.

    Membership depends on the id and seed only, so a user sampled today stays sampled when
    new users arrive, and the same seed gives the same sample on any machine.
    """
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 < fraction


def _params(kind: str, spec: SnapshotSpec, every: bool, ids: list[int]) -> tuple:
    """Return the named query's parameters for a table of `kind`."""
    if kind == "catalogue":
        return ()
    if kind == "owned":
        return (every, ids)
    return (*spec.bounds(), every, ids)


def _sample(read: BatchReader, spec: SnapshotSpec) -> tuple[bool, list[int], int | None]:
    """Return (every user kept, the kept ids, how many were sampled: None without a sample)."""
    if spec.sample_fraction is None:
        return True, [0], None
    with read("snapshot/user_ids", ()) as batches:
        ids = batches.read_all().column("id").to_numpy()
    kept = np.sort(ids[sample_mask(ids, spec.sample_fraction, spec.seed)])
    return False, kept.tolist() or [0], len(kept)  # [0]: a typed list matching no user


def _build(
    source: Database,
    target: Database,
    spec: SnapshotSpec,
    say: Callable[[str], None],
    replica: Database | None,
) -> SnapshotResult:
    """Fill the (new) DuckDB file `target` from `source` (read on its `replica` when given);
    return what was copied."""
    started = time.perf_counter()
    migrate(target)
    result = SnapshotResult(path=Path(target.path))
    conn = connect(target)
    try:
        conn.execute(sql_text("duckdb", "snapshot_info.sql"))
        with consistent_reader(source, replica, spec.replica_wait, say) as read:
            every, ids, result.sampled_users = _sample(read, spec)
            for table, kind in TABLES.items():
                tick = time.perf_counter()
                with read(f"snapshot/{table}", _params(kind, spec, every, ids)) as batches:
                    result.rows[table] = copy_batches(conn, table, batches)
                seconds = time.perf_counter() - tick
                say(f"{table:<24}{result.rows[table]:>12,} rows {seconds:7.2f} s")
        result.seconds = time.perf_counter() - started
        conn.execute(
            load_query("snapshot/insert_info"),
            [
                source.display,
                datetime.now(UTC),
                spec.since,
                spec.until,
                spec.sample_fraction,
                spec.seed if spec.sample_fraction is not None else None,
                result.sampled_users,
                json.dumps(result.rows),
            ],
        )
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
    return result


def take_snapshot(
    source: Database,
    path: Path | str,
    spec: SnapshotSpec | None = None,
    progress: Callable[[str], None] | None = None,
    replica: Database | None = None,
) -> SnapshotResult:
    """Return what was copied after replacing the DuckDB file `path` with a snapshot of source
    (read on `replica`, a streaming standby of source, when given)."""
    spec = spec or SnapshotSpec()
    final = Path(str(path).removeprefix("duckdb:")).expanduser().resolve()
    if source.path is not None and Path(source.path).expanduser().resolve() == final:
        raise ValueError(f"--to {final} is the source database itself")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    say = progress or (lambda line: None)
    via = f" (read on the replica {replica.display})" if replica else ""
    say(f"snapshot {source.display}{via} -> {final}")
    try:
        result = _build(source, parse_database(f"duckdb:{tmp}"), spec, say, replica)
        _remove(Path(f"{final}.wal"))  # a stale log of the old file must not replay on the new
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
    result.path = final
    say(f"wrote {sum(result.rows.values()):,} rows to {final} in {result.seconds:.1f} s")
    return result


def _remove(path: Path) -> None:
    """Delete `path` and its DuckDB write-ahead log, when present."""
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)


def snapshot_info(path: Path | str) -> dict:
    """Return the snapshot_info row of a snapshot file (row_counts decoded)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        row = pl.from_arrow(conn.sql("SELECT * FROM snapshot_info").to_arrow_table()).to_dicts()[0]
    row["row_counts"] = json.loads(row["row_counts"])
    return row
