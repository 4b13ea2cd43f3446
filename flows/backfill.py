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

import contextvars
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

from prefect.runtime import flow_run

from flows.nightly import as_flow, checked, run_payload
from flows.params import REPLICA_WAIT_S, BackfillParams
from flows.runner import StageRunner, direct, logs_to_prefect, prefect_task
from flows.sharded import ReadShards, ShardRead, read_shards, record_quarantine
from flows.stages.metrics import EVENT_METRIC_TYPES
from flows.stages.publish import stamp_metrics
from flows.stages.shards import shard_partials
from flows.storage.backends import open_storage
from flows.storage.database import Database
from flows.storage.secrets import resolve_database, resolve_replica
from flows.tracking import JobTracker, RunResult, tracked_run, utcnow
from transforms.daily_metrics import combine_partials, metrics_from_partials


def run_backfill(
    db: Database,
    first: date,
    last: date,
    *,
    replica: Database | None = None,
    replica_wait: int = REPLICA_WAIT_S,
    shards: int | None = None,
    runner: StageRunner = direct,
    flow_run_id: str | None = None,
) -> RunResult:
    """Recompute and replace daily_metrics for every date from `first` to `last`, the events
    read on `replica` when given (once it has replayed the primary's position), by `shards`
    shards of users (flows/stages/shards.py; None: one) on the flow's task runner."""
    params = BackfillParams(date_from=first, date_to=last, replica_wait=replica_wait, shards=shards)
    with open_storage(db) as storage:
        storage.check()
        payload = run_payload(db, replica, params.as_payload())
        with tracked_run(storage, "backfill", payload, flow_run_id) as (tracker, result):
            _stages(storage, tracker, runner, params, result, replica)
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


def _publish_slices(
    storage, tracker, runner, metrics_of: Callable, dates: list[date], now, check: Callable
) -> int:
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
                metrics = metrics_of(chunk)
                frame = stamp_metrics(check(metrics), tracker.run_id, now)
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
    storage,
    tracker: JobTracker,
    runner: StageRunner,
    params: BackfillParams,
    result: RunResult,
    replica: Database | None,
) -> None:
    now, dates = utcnow(), params.dates()
    waited = replica and (replica, params.replica_wait)
    load = ShardRead(dates[-1], len(dates), now)
    with read_shards(
        storage, tracker, result, runner, waited, params.shards or 1, load, 50
    ) as read:
        record_quarantine(tracker, result, read.summaries)
        with tracker.stage("daily_metrics", 100) as timing:
            timing.rows_out = _publish_metrics(storage, tracker, runner, read, result, dates, now)
        result.stages.append(timing.row())
    result.rows["daily_metrics"] = timing.rows_out


def _publish_metrics(storage, tracker, runner, read: ReadShards, result, dates, now) -> int:
    """Compute each date slice's metrics from the shards' partials and publish it; return
    the rows (the home shard's catalogue checks the ids they name)."""
    ids = read.home.ids

    def check(metrics):  # rows naming an id absent from the catalogue: dropped, counted
        return checked(tracker, result, {"daily_metrics": metrics}, ids)["daily_metrics"]

    def metrics_of(chunk: list[date]):
        parts = read.gather("metric_partials", shard_partials, chunk)
        return metrics_from_partials(combine_partials(parts), chunk)

    return _publish_slices(storage, tracker, runner, metrics_of, dates, now, check)


def backfill(*, database: str | None = None, replica: str | None = None, **parameters) -> dict:
    """Recompute daily_metrics of a date range as a Prefect flow; return the run summary."""
    params = BackfillParams(**parameters)
    db = resolve_database(database)
    with logs_to_prefect():
        result = run_backfill(
            db,
            params.date_from,
            params.date_to,
            replica=resolve_replica(replica, db),
            replica_wait=params.replica_wait,
            shards=params.shards,
            runner=prefect_task,
            flow_run_id=flow_run.get_id(),
        )
    return result.summary()


backfill = as_flow(backfill, "backfill", "Recompute daily_metrics of a date range.", BackfillParams)
