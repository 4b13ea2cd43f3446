"""The backfill flow: daily metrics for a date range, from one read of the range's events.

The metrics are computed and published a slice of SLICE_DATES dates at a time, each slice
in one transaction: a 90-day backfill at profile L is ≈ 34M rows, which as one frame and
one DELETE + COPY took 7.8 GB of memory and over 9 minutes (bench/README.md). Slices are
computed in date order; up to the storage's ``publishers`` are published at once, each on
a connection of its own (the server spends a slice's publish in index upkeep, on one core),
while the next slice is computed. On a cluster a slice is computed from the shards'
partials and published where they are: the run's process holds futures, not rows. Every
date's rows are replaced atomically; a failed run leaves the dates of the slices that were
published replaced (a job log line each).
"""

from __future__ import annotations

import contextvars
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any

from prefect.runtime import flow_run

from flows.nightly import as_flow, log_dropped, run_payload
from flows.params import REPLICA_WAIT_S, BackfillParams
from flows.runner import StageRunner, direct, logs_to_prefect, prefect_task
from flows.sharded import ReadShards, ShardRead, read_shards, record_quarantine
from flows.stages.metrics import metrics_slice, publish_metrics_slice
from flows.stages.shards import shard_partials
from flows.storage.backends import open_storage
from flows.storage.database import Database
from flows.storage.secrets import resolve_database, resolve_replica
from flows.tracking import JobTracker, RunResult, tracked_run, utcnow


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


def _metrics_of(read: ReadShards, chunk: list[date], ids, run_id: str, now) -> Any:
    """Return the future of a slice's stamped metrics, computed from the shards' partials
    where they are (`ids`: the catalogue's, shared with the task)."""
    partials = read.each("metric_partials", shard_partials, chunk)
    return read.submit("daily_metrics", metrics_slice, chunk, ids, run_id, now, *partials)


def _submit_publish(pool, storage, runner, read: ReadShards, metrics, chunk) -> Future:
    """Start publishing one slice (on a pool thread, in this context); return its future.

    On the run's own storage the slice is published from here; a storage with one publisher
    publishes at once (its connection is not shared between threads). On a cluster the
    slice is published where it was computed, on a connection of the task's own, and the
    pool's thread waits for it: the slice's rows never come to this process.
    """
    if read.local:
        call = partial(
            runner, "publish", publish_metrics_slice, storage, metrics.result(), chunk, retry=True
        )
    else:

        def call():
            target = storage.db  # the primary: a replica is never written
            task = read.submit("publish", publish_metrics_slice, target, metrics, chunk, retry=True)
            return task.result()

    context = contextvars.copy_context()  # the Prefect flow run, so the task is linked to it
    submit = pool.submit if storage.publishers > 1 else _run_now
    return submit(context.run, call)


def _publish_slices(
    storage, tracker, result, runner, read: ReadShards, dates: list[date], now
) -> int:
    """Compute each slice's metrics in date order, publish them concurrently; return the rows.

    At most ``storage.publishers`` slices are being published while the next one is
    computed (memory: that many slices' frames plus one, on the run's storage here, on a
    cluster where the shards are). Fewer dates than publishers × SLICE_DATES are cut into
    smaller slices, so that every publisher has one.
    """
    size = slice_size(len(dates), storage.publishers)
    ids = read.share("catalogue_ids", read.home.ids)  # the ids an output row may name
    rows = 0
    pending: deque[tuple[list[date], Future]] = deque()

    def finish_oldest() -> None:
        nonlocal rows
        chunk, future = pending.popleft()
        rows += _published(tracker, result, chunk, future)
        share = (dates.index(chunk[-1]) + 1) / len(dates)
        tracker.progress(50 + 50 * share, f"daily metrics published to {chunk[-1]}")

    with ThreadPoolExecutor(storage.publishers, thread_name_prefix="backfill") as pool:
        try:
            for chunk in date_slices(dates, size):
                metrics = _metrics_of(read, chunk, ids, tracker.run_id, now)
                while len(pending) >= storage.publishers:
                    finish_oldest()
                publish = _submit_publish(pool, storage, runner, read, metrics, chunk)
                pending.append((chunk, publish))
                del metrics
            while pending:
                finish_oldest()
        except BaseException:
            for chunk, future in pending:  # published while another slice failed: say so
                if future.exception() is None:
                    _published(tracker, result, chunk, future)
            raise
    return rows


def _published(tracker: JobTracker, result: RunResult, chunk: list[date], future: Future) -> int:
    """Return the rows of a slice's finished publish (raising its error), logging its dates
    and counting the rows it left out for naming ids absent from the catalogue."""
    rows, dropped = future.result()
    log_dropped(tracker, result, dropped)
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
            timing.rows_out = _publish_slices(storage, tracker, result, runner, read, dates, now)
        result.stages.append(timing.row())
    result.rows["daily_metrics"] = timing.rows_out


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
