"""Shards by user: a run's per-user work split over contiguous ranges of user ids.

The catalogue, the users and their collections are read and validated once
(``load_catalogue``); each shard gets their valid ids (``References``: one user's rows name
others', a page view of a profile or a collection) and reads the rows of its users (plays,
usage events, favourites, collection items, follows), validates them and computes partial
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
from dataclasses import dataclass
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
from flows.stages.model_inputs import (
    PER_USER,
    FitInputs,
    ModelInputs,
    fit_inputs,
    shard_model_inputs,
    track_matrix,
)
from flows.stages.validate import Validation, validate_catalogue, validate_user_rows
from flows.storage.backends import open_storage
from flows.storage.base import Storage
from flows.storage.database import Database
from flows.storage.replica import SharedSnapshotStorage
from flows.tracking import release_free_memory
from models.matrix import InteractionMatrix
from transforms import coerce as co
from transforms.daily_metrics import MetricInputs, MetricPartials, metric_columns, metric_partials
from transforms.references import catalogue_ids
from transforms.sizes import frames_size

FIRST_ID, LAST_ID = -(2**63), 2**63 - 1  # bigint's range: the outer shards' open ends
#: Per-user tables read by the shard's range of user ids.
USER_TABLES = {
    "favorites": "shard/favorites",
    "collection_items": "shard/user_collection_items",
    "follows": "shard/user_follows",
}
#: What the shards read of the validated catalogue (by Inputs field): ids, and the columns
#: their metrics and interactions read; the settings whole (the platform's start date).
REFERENCE_COLUMNS = {
    "records": ("id",),
    "tracks": tuple(co.TRACKS),
    "stores": ("id",),
    "inventory": tuple(co.INVENTORY),
    "users": tuple(co.USERS),
    "collections": tuple(co.COLLECTIONS),
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


def user_count(db: Database) -> int:
    """Return the users of a database (the default number of shards follows it)."""
    with open_storage(db) as storage:
        return int(storage.execute("shard/user_count")[0][0])


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


def catalogue_reads() -> dict[str, tuple]:
    """Return the named reads (query, parameters, categorical columns) of the catalogue."""
    return {name: (query, (), ()) for name, query in QUERIES.items() if name not in PER_USER}


def shard_reads(shard: UserShard, window: tuple[datetime, datetime]) -> dict[str, tuple]:
    """Return the named reads (query, parameters, categorical columns) of one shard's users."""
    if shard.whole:
        tables = {name: (QUERIES[name], (), ()) for name in USER_TABLES}
        return {
            "usage": ("extract/usage_metrics", window, USAGE_CATEGORICAL),
            "plays": ("extract/play_history", window, PLAY_CATEGORICAL),
            **tables,
        }
    span = (shard.first, shard.last, shard.home)
    events = (*window, *span)
    return {
        "usage": ("shard/usage_metrics", events, USAGE_CATEGORICAL),
        "plays": ("shard/play_history", events, PLAY_CATEGORICAL),
        **{name: (query, span, ()) for name, query in USER_TABLES.items()},
    }


@dataclass(frozen=True)
class ShardSummary:
    """What the run records of a shard (or of the catalogue): its rows read and valid, its
    valid events, quarantine counts and warnings, and the catalogue's ids."""

    read: int
    valid: int
    events: int
    counts: pl.DataFrame  # table, reason, rows
    warnings: tuple[str, ...]
    ids: dict[str, pl.Series] | None  # the catalogue's: ids an output row may name

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def _summary(validation: Validation, read: int, catalogue: bool) -> ShardSummary:
    """Return the summary of a validation of `read` rows (the catalogue's, or a shard's)."""
    valid = validation.inputs
    ids = (
        catalogue_ids(valid.records, valid.tracks, valid.stores, valid.users) if catalogue else None
    )
    own = valid.rows() if catalogue else sum(getattr(valid, name).height for name in PER_USER)
    return ShardSummary(
        read,
        own,
        valid.plays.height + valid.usage.height,
        validation.counts,
        validation.warnings,
        ids,
    )


@dataclass(frozen=True)
class CatalogueData:
    """The catalogue, the users and their collections, read once and validated, and what
    the run records of them."""

    valid: Inputs  # without per-user rows
    summary: ShardSummary

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


@dataclass(frozen=True)
class References:
    """What every shard validates its users' rows against: the valid catalogue's ids (and
    the columns its metrics and interactions read), the users' and the settings."""

    catalogue: Inputs

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def load_catalogue(source: Storage | ShardSource, now) -> CatalogueData:
    """Return the catalogue, the users and their collections, read in the source's snapshot
    and validated (as of `now`)."""
    with open_source(source) as storage:
        frames = read_all(storage, catalogue_reads())
    empty = {name: pl.DataFrame() for name in PER_USER}
    inputs = Inputs(**frames, **empty)
    read = inputs.rows()
    validation = validate_catalogue(inputs, now)  # its per-user frames stay empty
    del frames, inputs
    release_free_memory()  # the read's batches: a worker would carry them to its next task
    return CatalogueData(validation.inputs, _summary(validation, read, True))


def references_of(catalogue: CatalogueData) -> References:
    """Return what the shards read of the validated catalogue (small: sent to every one)."""
    valid = catalogue.valid
    slim = {
        name: getattr(valid, name).select(c for c in columns if c in getattr(valid, name).columns)
        for name, columns in REFERENCE_COLUMNS.items()
    }
    return References(valid.replace(**slim, audio_matches=valid.audio_matches.clear()))


def catalogue_inputs(catalogue: CatalogueData) -> Inputs:
    """Return the validated catalogue (what a nightly's models read of it)."""
    return catalogue.valid


def catalogue_summary(catalogue: CatalogueData) -> ShardSummary:
    """Return what the run records of the catalogue (small: sent to the run's process)."""
    return catalogue.summary


@dataclass(frozen=True)
class ShardData:
    """What a shard keeps where it ran: its summary, the columns its metrics read (a
    backfill's date slices read them in turn) or, in a nightly run, its partials of the run
    date and what its model stages read."""

    shard: UserShard
    summary: ShardSummary
    metrics: MetricInputs | MetricPartials
    model: ModelInputs | None = None
    run_date: date | None = None  # a nightly's: the one date of its partials

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def load_shard(
    source: Storage | ShardSource,
    shard: UserShard,
    references: References,
    run_date: date,
    window_days: int,
    now,
    model: NightlyParams | None = None,
) -> ShardData:
    """Return one shard's users' rows, read in the source's snapshot and validated (as of
    `now`) against the catalogue's `references`; with a nightly run's `model` parameters,
    its partials of the run date and what its model stages read instead of the rows."""
    window = window_bounds(run_date, window_days)
    with open_source(source) as storage:
        frames = read_all(storage, shard_reads(shard, window))
    read = sum(frame.height for frame in frames.values())
    validation = validate_user_rows(references.catalogue.replace(**frames), now)
    del frames
    summary = _summary(validation, read, False)
    valid = validation.inputs
    models = shard_model_inputs(valid, model, now) if model else None
    if not shard.whole:  # the users' ids validated the others' references; its own stay
        own = pl.col("id").is_between(shard.first, shard.last)
        valid = valid.replace(users=valid.users.filter(own))
    if model:  # one date's partials: a fraction of the window's events
        partials = metric_partials(metric_inputs(valid), [run_date])
        data = ShardData(shard, summary, partials, models, run_date)
    else:
        data = ShardData(shard, summary, metric_columns(metric_inputs(valid)))
    del validation, valid
    release_free_memory()  # the shard's read and validation: freed, not handed back
    return data


def summarize_shard(data: ShardData) -> ShardSummary:
    """Return a shard's summary: small, sent back to the run's process."""
    return data.summary


def model_inputs_of(data: ShardData) -> ModelInputs:
    """Return what a nightly's shard holds for the model stages (a backfill's holds none)."""
    if data.model is None:
        raise ValueError("the shard was loaded without the nightly's model parameters")
    return data.model


def shard_fit_inputs(data: ShardData) -> FitInputs:
    """Return what the item models' fit and the holdout read of a nightly's shard (sent to
    the run's process)."""
    return fit_inputs(model_inputs_of(data))


def shard_track_matrix(data: ShardData) -> InteractionMatrix:
    """Return a nightly's shard's positive user×track matrix (sent to the track neighbours'
    task)."""
    return track_matrix(model_inputs_of(data))


def combined_counts(summaries: list[ShardSummary]) -> pl.DataFrame:
    """Return the quarantine counts of the catalogue and every shard, summed by table and
    reason (sorted by both, as one validation's)."""
    counts = pl.concat([s.counts for s in summaries])
    return counts.group_by("table", "reason").agg(pl.col("rows").sum()).sort("table", "reason")


def shard_partials(data: ShardData, dates: list[date]) -> MetricPartials:
    """Return one shard's daily-metrics partials of `dates` (a nightly's: of its run date)."""
    if isinstance(data.metrics, MetricPartials):
        if list(dates) != [data.run_date]:
            raise ValueError(f"a nightly shard holds the partials of {data.run_date} alone")
        return data.metrics
    partials = metric_partials(data.metrics, dates)
    release_free_memory()  # the slice's dated copies, freed on a worker holding its shards
    return partials


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
