"""The nightly flow: extract → validate → daily metrics → interactions → evaluation →
similarity → recommendations → publish → retention, for one date, on either backend.

The evaluation (the temporal holdout, which needs the raw events) runs before the models so
that the play and usage frames can be released before the large model stages."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from prefect import flow

from flows import modeling
from flows.database import Database
from flows.extract import Inputs, day_end, extract_inputs
from flows.pipeline import (
    MODEL_QUALITY,
    NightlyParams,
    Validation,
    compute_daily_metrics,
    gate,
    quality_rows,
    stamp_metrics,
    stamp_recommendations,
    stamp_similarity,
    validate_inputs,
)
from flows.reporting import publish_artifacts
from flows.runner import StageRunner, direct, prefect_task
from flows.storage import Replacement, Storage, StorageError, open_storage
from flows.tracking import JobTracker, release_free_memory, utcnow
from transforms.columns import METRIC_TYPES
from transforms.interactions import PLAY_COLUMNS_USED, USAGE_COLUMNS_USED

EVENT_METRIC_TYPES = [t for t in METRIC_TYPES if t != MODEL_QUALITY]


@dataclass
class RunResult:
    """What a run did: its ids, counts, quality and whether it published."""

    run_id: str
    job_id: int | None
    status: str = "running"
    published: bool = False
    warning: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    quarantine: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """Return the JSON-ready summary stored in jobs.result."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "published": self.published,
            "warning": self.warning,
            "rows": self.rows,
            "quality": self.quality,
            "quarantine": self.quarantine,
            "stages": self.stages,
        }


def log_quarantine(tracker: JobTracker, validation: Validation) -> list[dict]:
    """Write one job_logs row per (table, reason) with its count; return the counts."""
    counts = validation.counts.to_dicts()
    for row in counts:
        tracker.log(
            "warning",
            "validate",
            f"quarantined {row['rows']} {row['table']} rows: {row['reason']}",
            details=row,
        )
    return counts


def model_events(inputs: Inputs) -> Inputs:
    """Return the inputs with the play and usage frames cut to the columns the models read."""
    return inputs.replace(
        plays=inputs.plays.select(PLAY_COLUMNS_USED),
        usage=inputs.usage.select(USAGE_COLUMNS_USED),
    )


def without_events(inputs: Inputs) -> Inputs:
    """Return the inputs with the (large) play and usage frames emptied, schemas kept."""
    return inputs.replace(plays=inputs.plays.clear(), usage=inputs.usage.clear())


class NightlyRun:
    """One nightly run: its stages in order, each timed, logged and tracked on the job row."""

    def __init__(
        self, storage: Storage, params: NightlyParams, runner: StageRunner, tracker: JobTracker
    ) -> None:
        self.storage, self.params, self.run, self.tracker = storage, params, runner, tracker
        self.now = utcnow()  # stamps and expiry only: results depend on the run date alone
        self.as_of = min(self.now, day_end(params.run_date))  # the run's reference instant
        self.result = RunResult(run_id=tracker.run_id, job_id=None)

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
        self.result.stages.append(
            {
                "stage": name,
                "seconds": round(timing.seconds, 3),
                "rows_in": timing.rows_in,
                "rows_out": timing.rows_out,
                "peak_rss_mb": round(timing.peak_rss / 2**20),
            }
        )
        return value

    def execute(self) -> RunResult:
        """Run every stage; publish atomically unless the quality gate refuses."""
        p, day = self.params, self.params.run_date
        inputs: Inputs = self._stage(
            "extract",
            10,
            extract_inputs,
            self.storage,
            day,
            p.window_days,
            retry=True,
            rows_out=Inputs.rows,
        )
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
        self.tracker.processed = validation.inputs.plays.height + validation.inputs.usage.height
        self.tracker.quarantined = validation.rejected
        self.result.quarantine = log_quarantine(self.tracker, validation)
        valid = validation.inputs
        del validation
        release_free_memory()  # the raw frames
        metrics = self._stage(
            "daily_metrics",
            30,
            compute_daily_metrics,
            valid,
            [day],
            rows_in=valid.plays.height,
            rows_out=len,
        )
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
            modeling.build_interactions,
            valid,
            self.as_of,
            p.interactions,
            rows_in=valid.plays.height,
            rows_out=lambda i: i.records.height + i.tracks.height,
        )
        quality = self._stage("evaluation", 50, modeling.holdout_quality, valid, p, self.as_of)
        self.result.quality = quality
        valid = without_events(valid)  # the models read the interactions and the catalogue
        release_free_memory()
        sim = self._stage(
            "similarity",
            60,
            modeling.compute_similarity,
            valid,
            inter,
            p,
            rows_out=lambda s: s.rows.height,
        )
        recs = self._stage(
            "recommendations",
            75,
            modeling.compute_recommendations,
            valid,
            inter,
            sim,
            p,
            rows_out=len,
        )
        popular = modeling.popularity_rows(valid, inter)
        similarity = sim.rows
        del sim, inter, valid  # the fitted model, matrices and catalogue: not needed to publish
        release_free_memory()
        self._publish(similarity, recs, quality, popular)
        self._stage(
            "retention", 98, self.storage.cleanup, p.usage_retention_days, self.now, retry=True
        )
        return self.result

    def _publish(
        self, similarity: pl.DataFrame, recs: pl.DataFrame, quality: dict, popular: pl.DataFrame
    ) -> None:
        p, run_id = self.params, self.tracker.run_id
        previous = self.storage.read("last_published_quality")
        previous_ndcg = previous["ndcg_at_10"][0] if previous.height else None
        refusal = gate(quality, previous_ndcg, p.quality_gate_drop)
        expires = self.now + timedelta(hours=p.expires_hours)
        version = modeling.MODEL_VERSION
        replacements = [
            Replacement.metrics(
                stamp_metrics(quality_rows(quality, p.run_date, version), run_id, self.now),
                [p.run_date],
                [MODEL_QUALITY],
            )
        ]
        if refusal and not p.force_publish:
            self.result.warning = refusal
            self.tracker.log("warning", "publish", refusal, details={"previous": previous_ndcg})
        else:
            replacements += [
                Replacement.whole(
                    "content_similarity",
                    stamp_similarity(similarity, run_id, self.now, version, expires),
                ),
                Replacement.whole(
                    "recommendation_data",
                    stamp_recommendations(recs, run_id, self.now, version, expires),
                ),
                Replacement.whole(
                    "record_popularity",
                    popular.with_columns(
                        pl.lit(run_id).alias("run_id"), pl.lit(self.now).alias("computed_at")
                    ),
                ),
            ]
            self.result.published = True
        written = self._stage(
            "publish",
            95,
            self.storage.publish,
            replacements,
            retry=True,
            rows_in=sum(r.frame.height for r in replacements),
            rows_out=lambda w: sum(w.values()),
        )
        self.result.rows |= {k: v for k, v in written.items() if k != "daily_metrics"}


def run_nightly(
    db: Database,
    params: NightlyParams,
    *,
    runner: StageRunner = direct,
    flow_run_id: str | None = None,
) -> RunResult:
    """Run the nightly pipeline for `params.run_date` on `db`; return what it did."""
    with open_storage(db) as storage:
        storage.check()
        payload = {"database": db.display, **params.as_payload()}
        tracker = JobTracker(
            storage, "nightly", str(uuid.uuid4()), payload, flow_run_id=flow_run_id
        )
        tracker.start()
        run = NightlyRun(storage, params, runner, tracker)
        run.result.job_id = tracker.job_id
        try:
            result = run.execute()
        except BaseException as exc:
            run.result.status = "failed"
            message = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(StorageError):  # the database may be the failure
                tracker.log("error", "run", message)
            with contextlib.suppress(StorageError):  # else the next run marks it stale
                tracker.finish("failed", run.result.summary(), error=message)
            raise
        result.status = "completed_with_warnings" if result.warning else "completed"
        tracker.finish(result.status, result.summary())
        return result


def resolve_database(database: str | None) -> Database:
    """Return the database of a flow run: the argument, the Secret block, or the environment."""
    from flows.database import parse_database

    if database is None:
        from flows.secrets import database_url_from_secret_block

        database = database_url_from_secret_block()
    return parse_database(database)


@flow(name="nightly", log_prints=True)
def nightly(
    run_date: date | None = None,
    database: str | None = None,
    window_days: int = 180,
    top_n: int = 20,
    similar_k: int = 20,
    max_per_artist: int = 2,
    half_life_days: float = 30.0,
    holdout_days: int = 7,
    expires_hours: int = 48,
    quality_gate_drop: float = 0.20,
    force_publish: bool = False,
) -> dict:
    """Run the nightly pipeline as a Prefect flow; return the run summary.

    The run date defaults to yesterday (UTC), the last complete day when the 03:00 run starts.
    `database` should carry no password: leave it None to read ROTATION_DATABASE_URL or the
    Prefect Secret block `rotation-database-url`.
    """
    from prefect.runtime import flow_run

    from transforms.interactions import InteractionParams

    params = NightlyParams(
        run_date=run_date or datetime.now(UTC).date() - timedelta(days=1),
        window_days=window_days,
        top_n=top_n,
        similar_k=similar_k,
        max_per_artist=max_per_artist,
        holdout_days=holdout_days,
        expires_hours=expires_hours,
        quality_gate_drop=quality_gate_drop,
        force_publish=force_publish,
        interactions=InteractionParams(half_life_days=half_life_days or math.inf),  # 0: no decay
    )
    result = run_nightly(
        resolve_database(database), params, runner=prefect_task, flow_run_id=flow_run.get_id()
    )
    publish_artifacts(result, params)
    return result.summary()
