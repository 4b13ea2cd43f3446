"""The nightly flow: extract → validate → daily metrics → interactions → evaluation →
similarity → recommendations → publish → retention, for one date, on either backend.

The evaluation (the temporal holdout, which needs the raw events) runs before the models so
that the play and usage frames can be released before the large model stages."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

import polars as pl
from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows.artifacts import publish_artifacts
from flows.params import NightlyParams, flow_docstring, flow_signature
from flows.runner import StageRunner, direct, logs_to_prefect, prefect_task
from flows.stages import evaluation, interactions, recommendations, similarity, tuning
from flows.stages.cache import CacheStep, cache_deadline
from flows.stages.extract import Inputs, day_end, extract_inputs, extract_replica_inputs
from flows.stages.metrics import (
    EVENT_METRIC_TYPES,
    MODEL_QUALITY,
    compute_daily_metrics,
    quality_rows,
)
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
from flows.stages.validate import Validation, validate_inputs
from flows.storage.backends import open_storage
from flows.storage.base import Replacement, Storage
from flows.storage.cache.target import CacheTarget, check_cache_backend, resolve_cache
from flows.storage.database import Database
from flows.storage.partitions import ensure_partitions
from flows.storage.replica import wait_for_replica
from flows.storage.secrets import resolve_database, resolve_replica
from flows.tracking import (
    JobTracker,
    RunResult,
    log_quarantine,
    release_free_memory,
    tracked_run,
    utcnow,
)
from models.recommender import MODEL_VERSION
from transforms.interactions import PLAY_COLUMNS_USED, USAGE_COLUMNS_USED
from transforms.references import catalogue_ids

KEPT = "the published lists are kept (--force-publish overrides)"


def valid_inputs(tracker: JobTracker, result: RunResult, validation: Validation) -> Inputs:
    """Return the validated inputs after recording the quarantine on the job and result."""
    tracker.processed = validation.inputs.plays.height + validation.inputs.usage.height
    tracker.quarantined = validation.rejected
    result.quarantine = log_quarantine(tracker, validation.counts)
    for warning in validation.warnings:
        tracker.log("warning", "validate", warning)
    return validation.inputs


def known_ids(inputs: Inputs) -> dict[str, pl.Series]:
    """Return the ids an output row may name: the validated inputs' catalogue and users."""
    return catalogue_ids(inputs.records, inputs.tracks, inputs.stores, inputs.users)


def checked(
    tracker: JobTracker, result: RunResult, frames: dict[str, pl.DataFrame], ids: dict
) -> dict[str, pl.DataFrame]:
    """Return the output frames without dangling rows; a dropped row is logged and counted."""
    kept, dropped = drop_dangling(frames, ids)
    for table, rows in dropped.items():
        message = f"dropped {rows} {table} rows naming ids absent from the catalogue"
        tracker.log("warning", "references", message, details={"table": table, "rows": rows})
    result.dangling |= dropped
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


def without_events(inputs: Inputs) -> Inputs:
    """Return the inputs with the (large) play and usage frames emptied, schemas kept."""
    return inputs.replace(plays=inputs.plays.clear(), usage=inputs.usage.clear())


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
        p, day = self.params, self.params.run_date
        inputs = read_inputs(
            self.storage, self.replica, self._stage, day, p.window_days, p.replica_wait, self._say
        )
        self.storage.release_cache()  # an embedded engine's pages of the rows just read
        validation = self._stage(
            "validate",
            20,
            validate_inputs,
            inputs,
            self.as_of,
            rows_in=inputs.rows(),
            rows_out=lambda v: v.inputs.rows(),
        )
        del inputs  # the raw frames: only the validated ones are needed from here on
        valid = valid_inputs(self.tracker, self.result, validation)
        self.result.events = valid.plays.height + valid.usage.height
        del validation
        release_free_memory()  # the raw frames
        self.ids = known_ids(valid)
        metrics = self._stage(
            "daily_metrics",
            30,
            compute_daily_metrics,
            valid,
            [day],
            rows_in=valid.plays.height,
            rows_out=len,
        )
        metrics = self._checked({"daily_metrics": metrics})["daily_metrics"]
        self._stage(
            "publish_metrics",
            35,
            self.storage.replace_daily_metrics,
            stamp_metrics(metrics, self.tracker.run_id, self.now),
            [day],
            EVENT_METRIC_TYPES,
            retry=True,
            rows_in=metrics.height,
        )
        self.result.rows["daily_metrics"] = metrics.height
        valid = model_events(valid)  # session ids, devices, … served the metrics only
        inter = self._stage(
            "interactions",
            45,
            interactions.build_interactions,
            valid,
            self.as_of,
            interactions.weighting(p),
            rows_in=valid.plays.height,
            rows_out=lambda i: i.records.height + i.tracks.height,
        )
        model_params = self._model_params(inter)
        quality = self._stage(
            "evaluation",
            50,
            evaluation.holdout_quality,
            valid,
            p,
            self.as_of,
            10,
            evaluation.MAX_HOLDOUT_USERS,
            model_params,
        )
        self.result.quality = quality
        valid = without_events(valid)  # the models read the interactions and the catalogue
        release_free_memory()
        sim = self._stage(
            "similarity",
            60,
            similarity.compute_similarity,
            valid,
            inter,
            p,
            model_params,
            rows_out=lambda s: s.rows.height,
        )
        recs = self._stage(
            "recommendations",
            75,
            recommendations.compute_recommendations,
            valid,
            inter,
            sim,
            p,
            rows_out=len,
        )
        popular = recommendations.popularity_rows(valid, inter)
        neighbours = sim.rows
        del sim, inter, valid  # the fitted model, matrices and catalogue: not needed to publish
        release_free_memory()
        outputs = self._stage(
            "references",
            90,
            self._checked,
            {
                "content_similarity": neighbours,
                "recommendation_data": recs,
                "record_popularity": popular,
            },
            rows_in=neighbours.height + recs.height + popular.height,
        )
        del neighbours, recs, popular
        self._publish(
            outputs["content_similarity"],
            outputs["recommendation_data"],
            quality,
            outputs["record_popularity"],
        )
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

    def _model_params(self, inter: interactions.Interactions) -> dict | None:
        """Return the record model's parameters for this run: the tune flow's latest, unless
        none is recorded or the data drifted from it (then None: the defaults)."""
        latest = self.storage.read("tuning/latest")
        params, self.version, why = tuning.choose_params(latest, tuning.fingerprint(inter.records))
        self.result.model = {"model_version": self.version, "params": params, "source": why}
        self.tracker.log("info", "model", f"record model {self.version}: {why}")
        return params

    def _say(self, message: str) -> None:
        """Show a step inside a stage: on the job row and the progress line."""
        self.tracker.progress(self.tracker.percent, message)

    def _checked(self, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
        """Return the output frames without rows naming ids absent from the catalogue."""
        return checked(self.tracker, self.result, frames, self.ids)

    def _publish(
        self, neighbours: pl.DataFrame, recs: pl.DataFrame, quality: dict, popular: pl.DataFrame
    ) -> None:
        p, run_id = self.params, self.tracker.run_id
        last = LastPublished.from_frame(self.storage.read("publish/last_published_run"))
        run = Candidate(self.result.events, recs["user_id"].n_unique(), quality)
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
                    "content_similarity",
                    stamp_similarity(neighbours, run_id, self.now, version, expires),
                ),
                Replacement.whole(
                    "recommendation_data",
                    stamp_recommendations(recs, run_id, self.now, version, expires),
                ),
                Replacement.whole("record_popularity", stamp_popularity(popular, run_id, self.now)),
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
nightly.__signature__ = flow_signature(NightlyParams, DATABASE, REPLICA)
DATABASE_HELP = (
    "where the run reads and writes; leave it empty (a password never belongs in a flow "
    "parameter): ROTATION_DATABASE_URL, else the Prefect Secret block rotation-database-url"
)
REPLICA_HELP = (
    "a streaming read replica of the database where the run reads its inputs (it publishes "
    "on the database); leave it empty: ROTATION_REPLICA_URL, else the Prefect Secret block "
    "rotation-replica-url, else none (the database is read)"
)
nightly.__doc__ = flow_docstring(
    "Run every stage for one date (default yesterday, UTC: the last complete day when the "
    "03:00 run starts).",
    NightlyParams,
    database=DATABASE_HELP,
    replica=REPLICA_HELP,
)
nightly = flow(name="nightly", log_prints=True)(nightly)
