"""The backfill flow: daily metrics for a date range, from one read of the range's events.

The metrics are computed and published a slice of SLICE_DATES dates at a time, each slice
in one transaction: a 90-day backfill at profile L is ≈ 34M rows, which as one frame and
one DELETE + COPY took 7.8 GB of memory and over 9 minutes (bench/README.md). Slices are
computed in date order; up to the storage's ``publishers`` are published at once, each on
a connection of its own (the server spends a slice's publish in index upkeep, on one core),
while the next slice is computed. Every date's rows are replaced atomically; a failed run
leaves the dates of the slices that were published replaced (a job log line each).
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
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


def slice_size(n_dates: int, publishers: int) -> int:
    """Return the dates per slice: SLICE_DATES, or fewer so that every publisher has one."""
    return max(1, min(SLICE_DATES, -(-n_dates // publishers)))


def _run_now(fn, *args, **kwargs) -> Future:
    """Return a finished future of fn(*args, **kwargs) run here (an error is kept in it)."""
    future: Future = Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _submit_publish(pool, storage, runner, frame, chunk: list[date]) -> Future:
    """Publish one slice's stamped rows (on a pool thread, in this context); return its future.

    A storage with one publisher publishes here and now: its connection is not shared
    between threads.
    """
    context = contextvars.copy_context()  # the Prefect flow run, so the task is linked to it
    submit = pool.submit if storage.publishers > 1 else _run_now
    return submit(
        context.run,
        runner,
        "publish",
        storage.replace_daily_metrics,
        frame,
        chunk,
        EVENT_METRIC_TYPES,
        retry=True,
    )


def _publish_slices(storage, tracker, runner, valid: Inputs, dates: list[date], now) -> int:
    """Compute each slice's metrics in date order, publish them concurrently; return the rows.

    At most ``storage.publishers`` slices are being published while the next one is
    computed (memory: that many slices' frames plus one). Fewer dates than publishers ×
    SLICE_DATES are cut into smaller slices, so that every publisher has one.
    """
    size = slice_size(len(dates), storage.publishers)
    rows = 0
    pending: deque[tuple[list[date], Future]] = deque()

    def finish_oldest() -> None:
        nonlocal rows
        chunk, future = pending.popleft()
        rows += _published(tracker, chunk, future)
        share = (dates.index(chunk[-1]) + 1) / len(dates)
        tracker.progress(50 + 50 * share, f"daily metrics published to {chunk[-1]}")

    with ThreadPoolExecutor(storage.publishers, thread_name_prefix="backfill") as pool:
        try:
            for chunk in date_slices(dates, size):
                metrics = runner("daily_metrics", compute_daily_metrics, valid, chunk)
                frame = stamp_metrics(metrics, tracker.run_id, now)
                del metrics
                while len(pending) >= storage.publishers:
                    finish_oldest()
                pending.append((chunk, _submit_publish(pool, storage, runner, frame, chunk)))
                del frame
            while pending:
                finish_oldest()
        except BaseException:
            for chunk, future in pending:  # published while another slice failed: say so
                if future.exception() is None:
                    _published(tracker, chunk, future)
            raise
    return rows


def _published(tracker: JobTracker, chunk: list[date], future: Future) -> int:
    """Return the rows of a slice's finished publish (raising its error), logging its dates."""
    rows = future.result()
    tracker.log("info", "publish", f"daily metrics of {chunk[0]} to {chunk[-1]}: {rows} rows")
    return rows


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
        rows = _publish_slices(storage, tracker, runner, valid, dates, now)
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
