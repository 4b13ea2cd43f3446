"""Run tracking: the job row, its logs, stage timings and the progress line."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import resource
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from flows.storage.base import Storage
from flows.storage.errors import StorageError

log = logging.getLogger("rotation")
progress_log = logging.getLogger("rotation.progress")  # the CLI draws its status line from it
progress_log.propagate = False  # the job row and the CLI show it; the run's log has the stages
#: The progress message of a finished job, per status.
FINISHED = {"completed": "done", "completed_with_warnings": "done, with warnings"}


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC, to the microsecond."""
    return datetime.now(UTC)


def peak_rss_bytes() -> int:
    """Return the peak resident memory of this process and its finished children, in bytes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc's malloc_trim); elsewhere a no-op.

    The database driver allocates the Arrow batches it reads with malloc; once they are
    freed glibc keeps most of that memory (2.2 GiB after the extract at profile L), and
    this process's resident memory would carry it through every later stage.
    """
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


@dataclass
class StageTiming:
    """One stage's measured figures, filled while it runs."""

    name: str
    started_at: datetime
    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    peak_rss: int = 0

    def figures(self) -> str:
        """Return the stage's rows and peak memory as a short text for its log line."""
        pairs = (("rows in", self.rows_in), ("out", self.rows_out))
        rows = [f"{k} {v:,}" for k, v in pairs if v is not None]
        return ", ".join([*rows, f"peak RSS {self.peak_rss / 2**30:.2f} GiB"])

    def row(self) -> dict:
        """Return the stage's figures as a row of the run summary's ``stages``."""
        return {
            "stage": self.name,
            "seconds": round(self.seconds, 3),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "peak_rss_mb": round(self.peak_rss / 2**20),
        }


@dataclass
class JobTracker:
    """Keeps one `jobs` row current for a flow run and records its logs and timings."""

    storage: Storage
    job_type: str
    run_id: str
    payload: dict
    flow_run_id: str | None = None
    job_id: int | None = None
    processed: int = 0
    quarantined: int = 0
    timings: list[StageTiming] = field(default_factory=list)
    percent: float = 0.0  # the last progress recorded: it never goes backwards
    started: float = field(default_factory=time.perf_counter)

    def start(self) -> int:
        """Insert the running job row (after closing the dead runs' ones) and return its id.

        The job is held (`Storage.claim_job`) for as long as this run lives: a later run that
        finds it 'running' and unheld knows its process died, at once.
        """
        now = utcnow()
        dead = self.storage.fail_dead_jobs(now)
        self.job_id = self.storage.execute(
            "tracking/insert_job",
            (
                self.job_type,
                json.dumps(self.payload, default=str),
                self.run_id,
                self.flow_run_id,
                3,
                now,
            ),
        )[0][0]
        self.storage.claim_job(self.job_id)
        for job_id, status in dead:
            self.log("warning", "start", f"job {job_id} was left running by a process that "
                     f"died; marked {status}")  # fmt: skip
        return self.job_id

    def progress(self, percent: float, message: str) -> None:
        """Record progress on the job row and show it to whoever watches."""
        self.percent = percent = max(percent, self.percent)
        self.storage.execute(
            "tracking/update_job_progress",
            (self.job_id, round(percent, 1), message, self.processed, self.quarantined, utcnow()),
        )
        progress_log.info("%s", message, extra={"percent": percent, "job_type": self.job_type})

    def log(self, level: str, stage: str, message: str, details: dict | None = None) -> None:
        """Write one job_logs row and the same line to the Python log."""
        log.log(
            logging.getLevelName(level.upper()), "%s: %s", stage, message, extra={"stage": stage}
        )
        self.storage.execute(
            "tracking/insert_job_log",
            (
                self.job_id,
                level,
                stage,
                message,
                json.dumps(details, default=str) if details else None,
                utcnow(),
            ),
        )

    @contextmanager
    def stage(self, name: str, percent_after: float) -> Iterator[StageTiming]:
        """Time a stage, record it in performance_metrics, then advance the progress."""
        timing = StageTiming(name, utcnow())
        self.progress(self.percent, f"{name}…")
        start = time.perf_counter()
        yield timing
        timing.seconds = time.perf_counter() - start
        timing.peak_rss = peak_rss_bytes()
        self.timings.append(timing)
        self.storage.execute(
            "tracking/insert_performance_metric",
            (
                self.job_id,
                self.run_id,
                name,
                timing.started_at,
                timing.seconds * 1000,
                timing.rows_in,
                timing.rows_out,
                timing.peak_rss,
                utcnow(),
            ),
        )
        self.log(
            "info",
            name,
            f"done in {timing.seconds:.1f} s ({timing.figures()})",
            details={
                "rows_in": timing.rows_in,
                "rows_out": timing.rows_out,
                "peak_rss_bytes": timing.peak_rss,
            },
        )
        self.progress(percent_after, f"{name} done in {timing.seconds:.1f} s")

    def finish(self, status: str, result: dict, error: str | None = None) -> None:
        """Close the job row with its final status, result summary and any error."""
        message = FINISHED.get(status, status)
        self.storage.execute(
            "tracking/finish_job",
            (
                self.job_id,
                status,
                100.0 if status != "failed" else None,
                message,
                json.dumps(result, default=str),
                error,
                self.processed,
                self.quarantined,
                utcnow(),
            ),
        )
        self.storage.release_job(self.job_id)
        if status != "failed":  # a failed run's error is what its watcher reads next
            seconds = time.perf_counter() - self.started
            progress_log.info(
                "%s %s in %.1f s", self.job_type, message, seconds, extra={"percent": 100.0}
            )


@dataclass
class RunResult:
    """What a run did: its ids, counts, quality and whether it published."""

    run_id: str
    job_id: int | None
    status: str = "running"
    published: bool = False
    warning: str | None = None
    events: int = 0  # valid play and usage events in the run's window
    users_served: int = 0  # users the run's lists cover (published or not)
    rows: dict[str, int] = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    quarantine: list[dict] = field(default_factory=list)
    dangling: dict[str, int] = field(default_factory=dict)  # output rows dropped: unknown ids
    stages: list[dict] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # the record model's version and parameters

    def summary(self) -> dict:
        """Return the JSON-ready summary stored in jobs.result."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "published": self.published,
            "warning": self.warning,
            "events": self.events,
            "users_served": self.users_served,
            "rows": self.rows,
            "quality": self.quality,
            "quarantine": self.quarantine,
            "dangling": self.dangling,
            "stages": self.stages,
            "model": self.model,
        }


def log_quarantine(tracker: JobTracker, counts: pl.DataFrame) -> list[dict]:
    """Write one job_logs row per (table, reason) with its count; return the counts."""
    rows = counts.to_dicts()
    for row in rows:
        tracker.log(
            "warning",
            "validate",
            f"quarantined {row['rows']} {row['table']} rows: {row['reason']}",
            details=row,
        )
    return rows


@contextmanager
def tracked_run(
    storage: Storage, job_type: str, payload: dict, flow_run_id: str | None = None
) -> Iterator[tuple[JobTracker, RunResult]]:
    """Yield the job tracker and result of a run whose job row is kept current.

    The job row is closed when the block ends: with the result's status (completed unless
    the block set another), or `failed` with the error, which is raised on.
    """
    tracker = JobTracker(storage, job_type, str(uuid.uuid4()), payload, flow_run_id=flow_run_id)
    result = RunResult(run_id=tracker.run_id, job_id=tracker.start())
    try:
        yield tracker, result
    except BaseException as exc:
        result.status = "failed"
        message = f"{type(exc).__name__}: {exc}"
        with suppress(StorageError):  # the database may be the failure
            tracker.log("error", "run", message)
        with suppress(StorageError):  # else the next run marks it stale
            tracker.finish("failed", result.summary(), error=message)
        raise
    if result.status == "running":
        result.status = "completed"
    tracker.finish(result.status, result.summary())
