"""The nightly flow: extract → validate → daily metrics → interactions → evaluation →
similarity → recommendations → publish → retention, for one date, on either backend.

The extract is by shards of users (flows/sharded.py; one by default): each shard validates
its rows and computes its daily-metrics partials, its users' interactions and holdout pairs
where it ran, so the raw play and usage events never reach the model stages. The item
models are fitted here on the pairs the shards send, coded (the holdout's too); each
shard's users are then scored and listed where the shard is, with the item side sent once
to each worker (flows/stages/recommendations.py's ItemSide), and checked there; the cache
and the publish fetch them one shard at a time (flows/stages/held_rows.py), in one
transaction. The track neighbours are a task of their own, on a worker."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

import polars as pl
from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows.artifacts import publish_artifacts
from flows.cluster import ADDRESS_ENV, cluster_options, default_shards, task_runner
from flows.params import NightlyParams, flow_docstring, flow_signature
from flows.runner import StageRunner, direct, logs_to_prefect, prefect_task
from flows.sharded import ReadShards, ShardRead, read_shards, record_quarantine
from flows.stages import evaluation, recommendations, similarity, tuning
from flows.stages.cache import CacheStep, cache_deadline
from flows.stages.extract import Inputs, day_end, extract_inputs, extract_replica_inputs
from flows.stages.held_rows import (
    LISTS,
    NEIGHBOURS,
    RowsSummary,
    checked_rows,
    rows_summary,
    shard_lists,
    stamped,
    track_neighbours,
    track_rows,
)
from flows.stages.metrics import (
    MODEL_QUALITY,
    metrics_slice,
    publish_metrics_slice,
    quality_rows,
)
from flows.stages.model_inputs import FitInputs, combined_fit_inputs
from flows.stages.publish import (
    Candidate,
    LastPublished,
    drop_dangling,
    gate,
    skip_reason,
    stamp_metrics,
    stamp_popularity,
    stamp_recommendations,
    stamp_similarity,
)
from flows.stages.recommendations import ItemSide
from flows.stages.shards import (
    ShardSummary,
    shard_fit_inputs,
    shard_partials,
    shard_track_matrix,
    user_count,
)
from flows.stages.validate import Validation
from flows.storage.backends import open_storage
from flows.storage.base import FrameParts, Replacement, Storage
from flows.storage.cache.target import CacheTarget, check_cache_backend, resolve_cache
from flows.storage.database import Database
from flows.storage.partitions import ensure_partitions
from flows.storage.replica import wait_for_replica
from flows.storage.secrets import resolve_database, resolve_replica
from flows.tracking import (
    JobTracker,
    RunResult,
    StageTiming,
    log_quarantine,
    release_free_memory,
    tracked_run,
    utcnow,
)
from models.recommender import MODEL_VERSION
from transforms.interactions import PLAY_COLUMNS_USED, USAGE_COLUMNS_USED

KEPT = "the published lists are kept (--force-publish overrides)"
POPULARITY = "record_popularity"
#: A table's rows in parts, in the table's order (each part a frame of its own).
Parts = tuple[pl.DataFrame, ...]


def valid_inputs(tracker: JobTracker, result: RunResult, validation: Validation) -> Inputs:
    """Return the validated inputs after recording the quarantine on the job and result."""
    tracker.processed = validation.inputs.plays.height + validation.inputs.usage.height
    tracker.quarantined = validation.rejected
    result.quarantine = log_quarantine(tracker, validation.counts)
    for warning in validation.warnings:
        tracker.log("warning", "validate", warning)
    return validation.inputs


def log_dropped(tracker: JobTracker, result: RunResult, dropped: dict[str, int]) -> None:
    """Log and count the output rows left out for naming ids absent from the catalogue."""
    for table, rows in dropped.items():
        message = f"dropped {rows} {table} rows naming ids absent from the catalogue"
        tracker.log("warning", "references", message, details={"table": table, "rows": rows})
        result.dangling[table] = result.dangling.get(table, 0) + rows


def checked(
    tracker: JobTracker, result: RunResult, frames: dict[str, pl.DataFrame], ids: dict
) -> dict[str, pl.DataFrame]:
    """Return the output frames without dangling rows; a dropped row is logged and counted."""
    kept, dropped = drop_dangling(frames, ids)
    log_dropped(tracker, result, dropped)
    return kept


def model_events(inputs: Inputs) -> Inputs:
    """Return the inputs with the play and usage frames cut to the columns the models read."""
    return inputs.replace(
        plays=inputs.plays.select(PLAY_COLUMNS_USED),
        usage=inputs.usage.select(USAGE_COLUMNS_USED),
    )


def run_payload(db: Database, replica: Database | None, params_payload: dict) -> dict:
    """Return a run's job payload: where it writes (and reads, with a replica), its parameters."""
    where = {"database": db.display} | ({"replica": replica.display} if replica else {})
    return where | params_payload


def read_inputs(
    storage: Storage,
    replica: Database | None,
    stage: Callable[..., object],
    run_date,
    window_days: int,
    replica_wait: int,
    say: Callable[[str], None],
    percent: float = 10,
) -> Inputs:
    """Return a run's inputs: read on `storage`, or on `replica` once it has replayed what the
    primary had written when the run started (the wait is a stage of its own, `replica_wait`).

    `stage(name, percent_after, fn, *args, **options)` runs each step as the flow's stage.
    """
    if replica is None:
        read, source = extract_inputs, storage
    else:
        stage("replica_wait", percent / 2, wait_for_replica, storage, replica, replica_wait, say)
        read, source = extract_replica_inputs, replica
    return stage(
        "extract", percent, read, source, run_date, window_days, retry=True, rows_out=Inputs.rows
    )


@dataclass(frozen=True)
class HeldParts:
    """An output table's rows in parts, in the table's order, and each part's summary: the
    futures of HeldRows kept where they were computed (a shard's lists).

    Never a Prefect task's argument: Prefect fetches the futures it finds in those."""

    read: ReadShards
    parts: list[Any]
    summaries: list[RowsSummary]

    @property
    def rows(self) -> int:
        """Return the rows of every part."""
        return sum(s.rows for s in self.summaries)

    @property
    def users(self) -> int:
        """Return the users the rows name (a shard's lists each: disjoint users)."""
        return sum(s.users for s in self.summaries)

    def stamped(self, stamp: Callable[..., pl.DataFrame], *args: Any) -> FrameParts:
        """Return the rows as FrameParts, each part stamped by `stamp(rows, *args)` where it
        is and fetched when the publish or the cache reads it."""
        # the publish fetches from its own threads: they submit in the flow's context
        context = contextvars.copy_context()

        def submit(part: Any) -> pl.DataFrame:
            task = self.read.submit("fetch_rows", stamped, part, stamp, *args)
            return task.result()  # the future let go: its rows held by the caller alone

        def fetch(index: int) -> pl.DataFrame:
            return context.copy().run(submit, self.parts[index])

        return FrameParts(tuple(s.rows for s in self.summaries), fetch)


class NightlyRun:
    """One nightly run: its stages in order, each timed, logged and tracked on the job row."""

    def __init__(
        self,
        storage: Storage,
        params: NightlyParams,
        runner: StageRunner,
        tracker: JobTracker,
        result: RunResult,
        replica: Database | None = None,
        cache: CacheTarget | None = None,
    ) -> None:
        self.storage, self.params, self.run = storage, params, runner
        self.cache = cache  # the Redis the published lists are warmed into, if any
        self.replica = replica  # where the extract reads, when not the database itself
        self.tracker, self.result = tracker, result
        self.now = utcnow()  # stamps and expiry only: results depend on the run date alone
        self.as_of = min(self.now, day_end(params.run_date))  # the run's reference instant
        self.version = MODEL_VERSION  # the record model's, tuned parameters' hash appended

    def _stage(
        self,
        name: str,
        percent: float,
        fn: Callable,
        *args,
        retry: bool = False,
        rows_in: int | None = None,
        rows_out: Callable | None = None,
    ):
        with self.tracker.stage(name, percent) as timing:
            value = self.run(name, fn, *args, retry=retry)
            timing.rows_in = rows_in
            timing.rows_out = rows_out(value) if rows_out else None
            release_free_memory()  # what the stage freed, not carried into the next one
        self.result.stages.append(timing.row())
        return value

    def execute(self) -> RunResult:
        """Run every stage; publish atomically unless the quality gate refuses."""
        p = self.params
        replica = self.replica and (self.replica, p.replica_wait)
        load = ShardRead(p.run_date, p.window_days, self.as_of, p)
        shards = p.shards or 1
        with read_shards(
            self.storage, self.tracker, self.result, self.run, replica, shards, load, 10
        ) as read:  # open until the publish has fetched the lists: a lost shard is read again
            self._validated(read.summaries)
            self.ids = read.home.ids
            self._daily_metrics(read)
            quality, neighbours, lists, popular = self._models(read)
            release_free_memory()  # every shard's rows read here, if they were
            neighbours, popular = self._stage(
                "references",
                90,
                self._checked,
                neighbours,
                popular,
                rows_in=sum(part.height for part in neighbours) + popular.height,
            )
            self._publish(neighbours, lists, quality, popular)
            del neighbours, lists, popular
        release_free_memory()  # every shard's rows (here, or on the workers that held them)
        self._stage(
            "partitions",
            97,
            ensure_partitions,
            self.storage,
            self.now,
            p.partitions_ahead,
            retry=True,
            rows_out=len,
        )
        self._stage(
            "retention",
            98,
            self.storage.cleanup,
            p.usage_retention_days,
            self.now,
            p.play_retention_days,
            retry=True,
        )
        return self.result

    @contextlib.contextmanager
    def _timed(self, name: str, percent: float) -> Iterator[StageTiming]:
        """Time a stage run here (its tasks, if any, submitted from it) as `_stage` does."""
        with self.tracker.stage(name, percent) as timing:
            yield timing
            release_free_memory()
        self.result.stages.append(timing.row())

    def _models(self, read: ReadShards) -> tuple[dict, Parts, HeldParts, pl.DataFrame]:
        """Fit and evaluate the item models on the shards' pairs, score every shard's users
        where it is; return (holdout quality, neighbours, the shards' lists, popularity)."""
        p, valid = self.params, read.catalogue
        fit = self._fit_inputs(read)
        tracks = read.submit(  # on a worker while this process fits the record models
            "track_neighbours",
            track_neighbours,
            p.similar_k,
            *read.each("track_matrix", shard_track_matrix),
        )
        model_params = self._model_params(fit)
        quality = self._stage(
            "evaluation",
            50,
            evaluation.holdout_quality,
            fit.train,
            fit.test,
            valid.records,
            10,
            evaluation.MAX_HOLDOUT_USERS,
            model_params,
        )
        self.result.quality = quality
        fit = fit.without_holdout()
        sim = self._stage(
            "similarity",
            60,
            similarity.compute_similarity,
            valid,
            fit,
            p,
            model_params,
            rows_out=lambda s: s.height,
        )
        side = recommendations.item_side(valid, fit, sim)
        popular = recommendations.popularity_rows(valid, fit)
        records = sim.parts
        del sim, fit  # the user×record pairs (the shards get the model's item side)
        release_free_memory()
        # fetched once the model is fitted and its pairs freed: not on top of this
        # process's peak, and not kept on a worker that scores shards meanwhile
        neighbours = (*records, track_rows(tracks.result()))
        del tracks
        return quality, neighbours, self._recommendations(read, side), popular

    def _fit_inputs(self, read: ReadShards) -> FitInputs:
        """Gather what the item models are fitted on from the shards (the interactions
        stage: each shard computed its users' pairs where it was read)."""
        with self._timed("interactions", 45) as timing:
            fit = combined_fit_inputs(read.gather("fit_inputs", shard_fit_inputs))
            timing.rows_in = self.result.events
            timing.rows_out = fit.records.matrix.nnz
        return fit

    def _recommendations(self, read: ReadShards, side: ItemSide) -> HeldParts:
        """Score, list and check every shard's users where the shard is, with the item side
        sent once to each worker; return the lists, kept there, and their summaries."""
        with self._timed("recommendations", 75) as timing:
            shared = read.share("item_side", side)
            args = (shared, self.params, read.share("catalogue_ids", self.ids))
            lists = read.each("recommendations", shard_lists, *args)
            read.let_go()  # the shards' last tasks: a worker then holds their lists alone
            summaries = [read.submit("lists_summary", rows_summary, f) for f in lists]
            lists = HeldParts(read, lists, read.fetch(summaries, 75, "shards scored"))
            timing.rows_out = lists.rows
        dropped = sum(s.dropped for s in lists.summaries)
        log_dropped(self.tracker, self.result, {LISTS: dropped} if dropped else {})
        return lists

    def _validated(self, summaries: list[ShardSummary]) -> None:
        """Record what the shards' validation quarantined (it ran where each shard was read)."""
        with self._timed("validate", 20) as timing:
            record_quarantine(self.tracker, self.result, summaries)
            timing.rows_in = sum(s.read for s in summaries)
            timing.rows_out = sum(s.valid for s in summaries)

    def _daily_metrics(self, read: ReadShards) -> None:
        """Compute the run date's event metrics from the shards' partials and publish them."""
        day, run_id = [self.params.run_date], self.tracker.run_id
        with self._timed("daily_metrics", 30) as timing:
            partials = read.each("metric_partials", shard_partials, day)
            task = read.submit(
                "daily_metrics", metrics_slice, day, self.ids, run_id, self.now, *partials
            )
            metrics = task.result()
            timing.rows_in, timing.rows_out = self.result.events, metrics.frame.height
        rows, dropped = self._stage(
            "publish_metrics",
            35,
            publish_metrics_slice,
            self.storage,
            metrics,
            day,
            retry=True,
            rows_in=metrics.frame.height,
        )
        log_dropped(self.tracker, self.result, dropped)
        self.result.rows["daily_metrics"] = rows

    def _model_params(self, inter: FitInputs) -> dict | None:
        """Return the record model's parameters for this run: the tune flow's latest, unless
        none is recorded or the data drifted from it (then None: the defaults)."""
        latest = self.storage.read("tuning/latest")
        params, self.version, why = tuning.choose_params(latest, tuning.fingerprint(inter.records))
        self.result.model = {"model_version": self.version, "params": params, "source": why}
        self.tracker.log("info", "model", f"record model {self.version}: {why}")
        return params

    def _checked(self, neighbours: Parts, popular: pl.DataFrame) -> tuple[Parts, pl.DataFrame]:
        """Return the neighbours' parts and the popularity rows without rows naming ids absent
        from the catalogue (the lists were checked where each shard was scored).

        Frames only: a Prefect task's arguments are searched for futures, which it fetches."""
        parts = [checked_rows(NEIGHBOURS, part, self.ids) for part in neighbours]
        dropped = sum(held.summary.dropped for held in parts)
        log_dropped(self.tracker, self.result, {NEIGHBOURS: dropped} if dropped else {})
        kept = checked(self.tracker, self.result, {POPULARITY: popular}, self.ids)
        return tuple(held.rows for held in parts), kept[POPULARITY]

    def _publish(
        self, neighbours: Parts, recs: HeldParts, quality: dict, popular: pl.DataFrame
    ) -> None:
        p, run_id = self.params, self.tracker.run_id
        last = LastPublished.from_frame(self.storage.read("publish/last_published_run"))
        run = Candidate(self.result.events, recs.users, quality)
        self.result.users_served = run.users_served
        skip = skip_reason(run, last)
        refusal = skip or gate(quality, last and last.reference_ndcg_at_10, p.quality_gate_drop)
        expires = self.now + timedelta(hours=p.expires_hours)
        version = self.version
        replacements = [
            Replacement.metrics(
                stamp_metrics(quality_rows(quality, p.run_date, version), run_id, self.now),
                [p.run_date],
                [MODEL_QUALITY],
            )
        ]
        lists = not refusal or p.force_publish
        if not lists:
            self.result.warning = f"{refusal}: {KEPT}"
            self.result.status = "skipped" if skip else self.result.status
            self.tracker.log(
                "warning", "publish", self.result.warning, details=last and asdict(last)
            )
        else:
            if refusal:
                self.result.warning = f"{refusal}: published all the same (--force-publish)"
                self.tracker.log("warning", "publish", self.result.warning)
            replacements += [
                Replacement.whole(
                    NEIGHBOURS,
                    FrameParts(
                        tuple(part.height for part in neighbours),
                        lambda index: stamp_similarity(
                            neighbours[index], run_id, self.now, version, expires
                        ),
                    ),
                ),
                Replacement.whole(
                    LISTS,
                    recs.stamped(stamp_recommendations, run_id, self.now, version, expires),
                ),
                Replacement.whole(POPULARITY, stamp_popularity(popular, run_id, self.now)),
            ]
        cache = self._warm(replacements[1:], expires) if lists and self.cache else None
        try:
            written = self._stage(
                "publish",
                95,
                self.storage.publish,
                replacements,
                # the job records that its lists are live in the publish's own transaction
                self.tracker.job_id if lists else None,
                cache and cache.before_swap,
                retry=True,
                rows_in=sum(r.frame.height for r in replacements),
                rows_out=lambda w: sum(w.values()),
            )
        except BaseException:
            if cache:
                cache.abandon()
            raise
        if cache:
            self._switch(cache)
        self.result.rows |= {k: v for k, v in written.items() if k != "daily_metrics"}
        self.result.published = lists

    def _warm(self, lists: list[Replacement], expires) -> CacheStep:
        """Warm the cache with the lists about to be published (before the swap)."""
        frames = {r.table: r.frame for r in lists}
        deadline = cache_deadline(self.now, self.params.cache_ttl_hours, expires)
        cache = CacheStep(self.cache, self.tracker.run_id, deadline)
        self._stage(
            "cache_warm",
            93,
            cache.warm,
            frames["recommendation_data"],
            frames["content_similarity"],
            frames["record_popularity"],
            rows_in=frames["recommendation_data"].height + frames["content_similarity"].height,
            rows_out=lambda w: w["keys"],
        )
        return cache

    def _switch(self, cache: CacheStep) -> None:
        """Point the cache's readers at this run; a failure becomes the run's warning line."""
        cache.after_publish()
        cache.close()
        for note in cache.notes:
            self.tracker.log("warning", "publish", note)
        if cache.warning:
            self.tracker.log("warning", "publish", cache.warning)
            self.result.warning = "; ".join(filter(None, (self.result.warning, cache.warning)))


def run_nightly(
    db: Database,
    params: NightlyParams,
    *,
    replica: Database | None = None,
    runner: StageRunner = direct,
    flow_run_id: str | None = None,
    cache: CacheTarget | None = None,
) -> RunResult:
    """Run the nightly pipeline for `params.run_date` (None: yesterday) on `db`, its inputs
    read on `replica` when given, the lists it publishes warmed into `cache` when given."""
    params = params.resolved()
    check_cache_backend(cache, db)
    with open_storage(db) as storage:
        storage.check()
        payload = run_payload(db, replica, params.as_payload())
        payload |= {"cache": cache.display} if cache else {}
        with tracked_run(storage, "nightly", payload, flow_run_id) as (tracker, result):
            NightlyRun(storage, params, runner, tracker, result, replica, cache).execute()
            if result.warning and result.status == "running":
                result.status = "completed_with_warnings"
        return result


def nightly(
    *, database: str | None = None, replica: str | None = None, **parameters
) -> dict | State:
    """Run the nightly pipeline as a Prefect flow; return the run summary (a skipped run's
    in a Completed state named Skipped: called directly, the flow returns the summary)."""
    params = NightlyParams(**parameters).resolved()
    db = resolve_database(database)
    with logs_to_prefect():
        result = run_nightly(
            db,
            params,
            replica=resolve_replica(replica, db),
            runner=prefect_task,
            flow_run_id=flow_run.get_id(),
            cache=resolve_cache(),
        )
    publish_artifacts(result, params)
    if result.status == "skipped":  # Completed, named so in the UI, with the reason
        return Completed(name="Skipped", message=result.warning, data=result.summary())
    return result.summary()


DATABASE = inspect.Parameter(
    "database", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None
)
REPLICA = inspect.Parameter(
    "replica", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None
)
DATABASE_HELP = (
    "where the run reads and writes; leave it empty (a password never belongs in a flow "
    "parameter): ROTATION_DATABASE_URL, else the Prefect Secret block rotation-database-url"
)
REPLICA_HELP = (
    "a streaming read replica of the database where the run reads its inputs (it publishes "
    "on the database); leave it empty: ROTATION_REPLICA_URL, else the Prefect Secret block "
    "rotation-replica-url, else none (the database is read)"
)


def as_flow(fn: Callable, name: str, summary: str, params_type: type = NightlyParams):
    """Return `fn` as the Prefect flow `name`: its form shows the fields of `params_type`
    (their help and defaults), the database and the replica."""
    fn.__signature__ = flow_signature(params_type, DATABASE, REPLICA)
    fn.__doc__ = flow_docstring(summary, params_type, database=DATABASE_HELP, replica=REPLICA_HELP)
    return flow(name=name, log_prints=True)(fn)


nightly = as_flow(
    nightly,
    "nightly",
    "Run every stage for one date (default yesterday, UTC: the last complete day when the "
    "03:00 run starts).",
)


def nightly_dask(
    *, database: str | None = None, replica: str | None = None, **parameters
) -> dict | State:
    """Run the nightly (a subflow) with its shard tasks on the Dask scheduler the worker's
    environment names (ROTATION_DASK_ADDRESS); shards by default as `--cluster` chooses them."""
    options = cluster_options(None, None, None)
    if not options.address:
        raise ValueError(
            f"{ADDRESS_ENV} is not set: the nightly-dask deployment runs its shards on the Dask "
            "scheduler it names (tcp://HOST:8786), in the Prefect worker's environment"
        )
    params = NightlyParams(**parameters)
    users = user_count(resolve_database(database)) if params.shards is None else 0
    params = replace(params, shards=default_shards(options, params.shards, users))
    on_dask = nightly.with_options(task_runner=task_runner(options))
    return on_dask(database=database, replica=replica, **asdict(params))


nightly_dask = as_flow(
    nightly_dask,
    "nightly-dask",
    "Run every stage for one date, the shards on the Dask scheduler at $ROTATION_DASK_ADDRESS "
    "(default shards: a multiple of its workers, at most 8,000 users each).",
)
