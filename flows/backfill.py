"""The backfill flow: daily metrics for a date range, from one read of the range's events.

The metrics are computed and published a slice of SLICE_DATES dates at a time, each slice
in one transaction: a 90-day backfill at profile L is ≈ 34M rows, which as one frame and
one DELETE + COPY took 7.8 GB of memory and over 9 minutes (bench/README.md). Every date's
rows are replaced atomically; a failed run leaves the dates of its earlier slices replaced.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import date

from prefect import flow

from flows.database import Database
from flows.extract import Inputs, extract_inputs
from flows.nightly import EVENT_METRIC_TYPES, RunResult, log_quarantine, resolve_database
from flows.pipeline import compute_daily_metrics, date_range, stamp_metrics, validate_inputs
from flows.runner import StageRunner, direct, prefect_task
from flows.storage import StorageError, open_storage
from flows.tracking import JobTracker, release_free_memory, utcnow


def run_backfill(
    db: Database,
    first: date,
    last: date,
    *,
    runner: StageRunner = direct,
    flow_run_id: str | None = None,
) -> RunResult:
    """Recompute and replace daily_metrics for every date from `first` to `last`."""
    dates = date_range(first, last)
    with open_storage(db) as storage:
        storage.check()
        payload = {"database": db.display, "from": first, "to": last, "dates": len(dates)}
        tracker = JobTracker(
            storage, "backfill", str(uuid.uuid4()), payload, flow_run_id=flow_run_id
        )
        result = RunResult(run_id=tracker.run_id, job_id=tracker.start())
        try:
            _stages(storage, tracker, runner, dates, result)
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(StorageError):  # the database may be the failure
                tracker.log("error", "run", message)
            result.status = "failed"
            with contextlib.suppress(StorageError):  # else the next run marks it stale
                tracker.finish("failed", result.summary(), error=message)
            raise
        result.status = "completed"
        tracker.finish("completed", result.summary())
        return result


SLICE_DATES = 7  # dates computed and published together (one transaction)


def date_slices(dates: list[date], size: int) -> list[list[date]]:
    """Return `dates` in consecutive slices of `size` (the last may be shorter)."""
    return [dates[i : i + size] for i in range(0, len(dates), size)]


def _publish_slice(storage, tracker, runner, valid: Inputs, chunk: list[date], now) -> int:
    """Compute the daily metrics of the dates in `chunk` and replace theirs; return the rows."""
    metrics = runner("daily_metrics", compute_daily_metrics, valid, chunk)
    return runner(
        "publish",
        storage.replace_daily_metrics,
        stamp_metrics(metrics, tracker.run_id, now),
        chunk,
        EVENT_METRIC_TYPES,
        retry=True,
    )


def _stages(
    storage, tracker: JobTracker, runner: StageRunner, dates: list[date], result: RunResult
) -> None:
    now = utcnow()
    with tracker.stage("extract", 30) as timing:
        inputs = runner("extract", extract_inputs, storage, dates[-1], len(dates), retry=True)
        timing.rows_out = Inputs.rows(inputs)
    with tracker.stage("validate", 50):
        validation = runner("validate", validate_inputs, inputs, now)
    tracker.processed = validation.inputs.plays.height + validation.inputs.usage.height
    tracker.quarantined = validation.rejected
    result.quarantine = log_quarantine(tracker, validation)
    valid = validation.inputs
    del inputs, validation
    release_free_memory()  # the raw frames
    with tracker.stage("daily_metrics", 100) as timing:
        rows = 0
        for chunk in date_slices(dates, SLICE_DATES):
            rows += _publish_slice(storage, tracker, runner, valid, chunk, now)
            share = (dates.index(chunk[-1]) + 1) / len(dates)
            tracker.progress(50 + 50 * share, f"daily metrics published to {chunk[-1]}")
        timing.rows_out = rows
    result.rows["daily_metrics"] = rows


@flow(name="backfill", log_prints=True)
def backfill(date_from: date, date_to: date, database: str | None = None) -> dict:
    """Recompute daily_metrics from `date_from` to `date_to` as a Prefect flow."""
    from prefect.runtime import flow_run

    result = run_backfill(
        resolve_database(database),
        date_from,
        date_to,
        runner=prefect_task,
        flow_run_id=flow_run.get_id(),
    )
    return result.summary()
