"""Shards by user: a run's per-user work split over contiguous ranges of user ids.

Each shard reads the rows of its users (plays, usage events, favourites, collection items,
follows) and, whole, the catalogue, the users and the collections (one user's rows name
others': a page view of a profile or a collection); it validates them and computes partial
results that combine exactly (transforms/daily_metrics.py's partials): users are disjoint
between shards, so a user's rows are all in one. Rows without a user (anonymous usage
events, dangling rows that validation will quarantine) go to the home shard, the first.
One shard covering every id reads with the extract's own queries: the single-process run is
this code with one shard.

On Postgres every shard reads inside one snapshot exported by the run (``ShardSource``), so
the shards agree whatever is written meanwhile; each event row is read by one shard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime

import polars as pl

from flows.params import NightlyParams
from flows.stages.extract import (
    PLAY_CATEGORICAL,
    QUERIES,
    USAGE_CATEGORICAL,
    Inputs,
    read_all,
    window_bounds,
)
from flows.stages.metrics import metric_inputs
from flows.stages.model_inputs import PER_USER, ModelInputs, shard_model_inputs
from flows.stages.validate import Validation, validate_inputs
from flows.storage.base import Storage
from flows.storage.database import Database
from flows.storage.replica import SharedSnapshotStorage
from transforms.daily_metrics import MetricInputs, MetricPartials, metric_columns, metric_partials
from transforms.references import catalogue_ids
from transforms.sizes import frames_size

FIRST_ID, LAST_ID = -(2**63), 2**63 - 1  # bigint's range: the outer shards' open ends
#: Read whole by every shard, their quarantine counted once (the home shard's): the
#: catalogue, and the users and collections, which other users' rows name (page views of a
#: profile or a collection). After validation a shard keeps only its own users (new_users).
SHARED_TABLES = (
    "records",
    "tracks",
    "stores",
    "store_inventory",
    "audio_matches",
    "users",
    "user_collections",
)
#: Per-user tables read by the shard's range of user ids.
USER_TABLES = {
    "favorites": "shard/favorites",
    "collection_items": "shard/user_collection_items",
    "follows": "shard/user_follows",
}


@dataclass(frozen=True)
class UserShard:
    """Users `first` to `last` (inclusive); the home shard also holds rows without a user."""

    index: int
    first: int
    last: int
    home: bool

    @property
    def whole(self) -> bool:
        """Return True for the one shard of a single-shard run (every id, the home)."""
        return self.home and self.first == FIRST_ID and self.last == LAST_ID


def plan_shards(last_ids: list[int]) -> list[UserShard]:
    """Return the shards ending at each of `last_ids` (ascending), the last one open-ended.

    No id is left out: the first shard starts at bigint's smallest, the last ends at its
    largest, so a row naming an unknown user still lands in exactly one shard.
    """
    ends = [*sorted(set(last_ids))[:-1], LAST_ID]
    starts = [FIRST_ID, *(end + 1 for end in ends[:-1])]
    return [
        UserShard(index, first, last, index == 0)
        for index, (first, last) in enumerate(zip(starts, ends, strict=True))
    ]


def shard_plan(storage: Storage, shards: int) -> list[UserShard]:
    """Return `shards` shards of about equal numbers of users (fewer with fewer users)."""
    if shards <= 1:
        return plan_shards([])
    rows = storage.execute("shard/user_bounds", (shards,))
    return plan_shards([int(row[0]) for row in rows])


@dataclass(frozen=True)
class ShardSource:
    """Where a shard reads: a database and, on Postgres, the run's exported snapshot.

    Picklable, so a worker process can open it; the database URL (and its password) goes
    to the worker inside the task, never through its environment or command line.
    """

    db: Database
    snapshot: str | None


@contextlib.contextmanager
def open_source(source: Storage | ShardSource) -> Iterator[Storage]:
    """Yield a storage reading `source`: the run's own (in this process) or a new one inside
    the exported snapshot (the storage is closed after)."""
    if isinstance(source, Storage):
        yield source
        return
    with SharedSnapshotStorage(source.db, source.snapshot, by_index=True) as storage:
        yield storage


def shard_reads(shard: UserShard, window: tuple[datetime, datetime]) -> dict[str, tuple]:
    """Return the named reads (query, parameters, categorical columns) of one shard."""
    if shard.whole:
        tables = {name: (query, (), ()) for name, query in QUERIES.items()}
        return {
            "usage": ("extract/usage_metrics", window, USAGE_CATEGORICAL),
            "plays": ("extract/play_history", window, PLAY_CATEGORICAL),
            **tables,
        }
    span = (shard.first, shard.last, shard.home)
    events = (*window, *span)
    per_user = {name: (query, span, ()) for name, query in USER_TABLES.items()}
    shared = {name: (query, (), ()) for name, query in QUERIES.items() if name not in USER_TABLES}
    return {
        "usage": ("shard/usage_metrics", events, USAGE_CATEGORICAL),
        "plays": ("shard/play_history", events, PLAY_CATEGORICAL),
        **per_user,
        **shared,
    }


@dataclass(frozen=True)
class ShardSummary:
    """What the run records of a shard: its rows read and valid (the tables read whole: the
    home shard's alone), its valid events, quarantine counts and warnings."""

    read: int
    valid: int
    events: int
    counts: pl.DataFrame  # table, reason, rows (the shared tables' only in the home shard's)
    warnings: tuple[str, ...]
    ids: dict[str, pl.Series] | None  # the home shard's: ids an output row may name

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


@dataclass(frozen=True)
class ShardData:
    """What a shard keeps where it ran: its summary, the columns its metrics read (not the
    catalogue every shard reads whole: a copy per shard held on a worker) and, in a nightly
    run, what its model stages read."""

    shard: UserShard
    summary: ShardSummary
    metrics: MetricInputs
    model: ModelInputs | None = None

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def load_shard(
    source: Storage | ShardSource,
    shard: UserShard,
    run_date: date,
    window_days: int,
    now,
    model: NightlyParams | None = None,
) -> ShardData:
    """Return one shard's rows, read in the source's snapshot and validated (as of `now`);
    with a nightly run's `model` parameters, also what its model stages read."""
    window = window_bounds(run_date, window_days)
    with open_source(source) as storage:
        frames = read_all(storage, shard_reads(shard, window))
    read = _rows(frames, shard.home)
    validation = validate_inputs(Inputs(**frames), now)
    del frames
    summary = _summary(shard, validation, read)
    valid = validation.inputs
    models = shard_model_inputs(valid, model, now, shard.home) if model else None
    if not shard.whole:  # every user validated the others' references; its own stay
        valid = valid.replace(
            users=valid.users.filter(pl.col("id").is_between(shard.first, shard.last))
        )
    return ShardData(shard, summary, metric_columns(metric_inputs(valid)), models)


def _rows(frames: dict[str, pl.DataFrame], home: bool) -> int:
    """Return the rows of a shard's frames (by Inputs field), those read whole if `home`."""
    return sum(frame.height for name, frame in frames.items() if home or name in PER_USER)


def _summary(shard: UserShard, validation: Validation, read: int) -> ShardSummary:
    """Return a shard's summary (the shared tables' quarantine and ids: the home shard's)."""
    valid, counts, home = validation.inputs, validation.counts, shard.home
    if not home:
        counts = counts.filter(~pl.col("table").is_in(SHARED_TABLES))
    ids = catalogue_ids(valid.records, valid.tracks, valid.stores, valid.users) if home else None
    frames = {f.name: getattr(valid, f.name) for f in fields(valid)}
    return ShardSummary(
        read,
        _rows(frames, home),
        valid.plays.height + valid.usage.height,
        counts,
        validation.warnings if home else (),
        ids,
    )


def summarize_shard(data: ShardData) -> ShardSummary:
    """Return a shard's summary: small, sent back to the run's process."""
    return data.summary


def shard_model(data: ShardData) -> ModelInputs:
    """Return what a nightly's model stages read of a shard (sent to the run's process)."""
    if data.model is None:
        raise ValueError("the shard was loaded without the nightly's model parameters")
    return data.model


def combined_counts(summaries: list[ShardSummary]) -> pl.DataFrame:
    """Return the quarantine counts of every shard, summed by table and reason."""
    counts = pl.concat([s.counts for s in summaries])
    return counts.group_by("table", "reason", maintain_order=True).agg(pl.col("rows").sum())


def shard_partials(data: ShardData, dates: list[date]) -> MetricPartials:
    """Return one shard's daily-metrics partials of `dates`."""
    return metric_partials(data.metrics, dates)


@contextlib.contextmanager
def shard_source(
    storage: Storage, replica: Database | None, shards: int
) -> Iterator[tuple[Storage | ShardSource, list[UserShard]]]:
    """Yield (where the shards read, the shard plan) for the time of their reads.

    The run's own storage serves one shard on the primary, and every shard of an embedded
    database (one process holds its file). Otherwise (a replica, or several shards on
    Postgres) the run exports a snapshot there and holds it open until the block ends:
    each shard, wherever it runs, reads in it.
    """
    plan = shard_plan(storage, shards)
    on_postgres = storage.db.is_postgres
    if replica is None and (len(plan) == 1 or not on_postgres):
        yield storage, plan
        return
    read_db = replica or storage.db
    with SharedSnapshotStorage(read_db) as holder:
        yield ShardSource(read_db, holder.export_snapshot()), plan
