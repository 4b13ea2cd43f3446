"""The start both flows share: the replica's wait, the catalogue read and validated once and
every shard's users' rows against it, in the run's snapshot (one task each, on the flow's
task runner), the quarantine recorded.

The snapshot is held for as long as the block runs: a shard lost with its worker is read
again in it, so the flows keep the block open until the last task that reads a shard.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flows.params import NightlyParams
from flows.runner import StageRunner, Submitter, direct_submit, submitter_of
from flows.stages.extract import Inputs
from flows.stages.shards import (
    ShardSummary,
    catalogue_inputs,
    catalogue_summary,
    combined_counts,
    load_catalogue,
    load_shard,
    references_of,
    shard_source,
    summarize_shard,
)
from flows.storage.base import Storage
from flows.storage.database import Database
from flows.storage.replica import wait_for_replica
from flows.tracking import JobTracker, RunResult, log_quarantine, release_free_memory


@dataclass(frozen=True)
class ReadShards:
    """The shards of a run, read: how to submit tasks on them, their data's futures (kept
    where each shard ran), the catalogue's summary then each shard's, and the validated
    catalogue (a nightly's)."""

    submit: Submitter
    references: Any  # the future of what the shards read of the catalogue (their lineage)
    loaded: list[Any]
    summaries: list[ShardSummary]
    catalogue: Inputs | None
    tracker: JobTracker

    @property
    def home(self) -> ShardSummary:
        """Return the catalogue's summary (its ids, the settings' warnings)."""
        return self.summaries[0]

    @property
    def local(self) -> bool:
        """Return True when the shards' tasks run here, at once (on the run's own storage)."""
        return self.submit is direct_submit

    def each(self, name: str, fn, *args) -> list[Any]:
        """Return the futures of `fn(shard data, *args)` of every shard, run where its data is."""
        if not self.loaded:
            raise RuntimeError("the shards' data was let go: submit their tasks before")
        return [self.submit(name, fn, data, *args) for data in self.loaded]

    def let_go(self) -> None:
        """Let go of the shards' data once the last tasks on it are submitted: each worker
        frees a shard when those are done, instead of holding every shard it read until the
        publish. Dask keeps how each was computed: a result lost with its worker is computed
        again from a shard read again in the snapshot, held until the block ends."""
        self.loaded.clear()

    def gather(
        self, name: str, fn, *args, until: float | None = None, what: str = "shards done"
    ) -> list[Any]:
        """Return `fn(shard data, *args)` of every shard, run where the shard's data is;
        with `until`, the stage's progress moves on to it as shards are done (`what`: i of K)."""
        futures = self.each(name, fn, *args)
        if until is None:
            return [future.result() for future in futures]
        return self.fetch(futures, until, what)

    def fetch(self, futures: list[Any], until: float, what: str) -> list[Any]:
        """Return each future's result in order, the stage's progress moving on to `until`
        as they come (`what`: i of K); each future is let go once fetched."""
        return _fetched(self.tracker, futures, until, what)

    def share(self, name: str, value: Any) -> Any:
        """Return a future of `value` for the shards' tasks: sent once to the worker running
        the task `name`, fetched from there once by each worker that needs it."""
        return self.submit(name, _shared, value)


@dataclass(frozen=True)
class ShardRead:
    """What each shard reads and as of when: the run's window, its reference instant and,
    in a nightly, its parameters (the shards also compute what its model stages read)."""

    run_date: date
    window_days: int
    now: datetime
    model: NightlyParams | None = None


@contextlib.contextmanager
def read_shards(
    storage: Storage,
    tracker: JobTracker,
    result: RunResult,
    runner: StageRunner,
    replica: tuple[Database, int] | None,
    shards: int,
    read: ShardRead,
    percent: float,
) -> Iterator[ReadShards]:
    """Yield the run's catalogue and `shards` shards read as `read` says, once the replica,
    if any (and its wait in seconds), has replayed the primary's position.

    Stages `replica_wait` and `extract` (its progress: shards read of all) end at `percent`.
    Each shard's data stays where it was read; the validated catalogue comes back to this
    process only for a nightly (`read.model`).
    """
    if replica is not None:
        with tracker.stage("replica_wait", percent / 2) as timing:
            runner("replica_wait", wait_for_replica, storage, *replica, _say(tracker))
        result.stages.append(timing.row())
    with shard_source(storage, replica and replica[0], shards) as (source, plan):
        submit = direct_submit if isinstance(source, Storage) else submitter_of(runner)
        with tracker.stage("extract", percent) as timing:
            catalogue = submit("read_catalogue", load_catalogue, source, read.now, retry=True)
            references = submit("references", references_of, catalogue)
            window = (read.run_date, read.window_days, read.now, read.model)
            loaded = [
                submit("read_shard", load_shard, source, shard, references, *window, retry=True)
                for shard in plan
            ]
            home = submit("catalogue_summary", catalogue_summary, catalogue).result()
            valid = None
            if read.model:  # a nightly's item models are fitted here, on the catalogue
                valid = submit("catalogue", catalogue_inputs, catalogue).result()
            fetched = [submit("shard_summary", summarize_shard, f) for f in loaded]
            summaries = [home, *_fetched(tracker, fetched, percent, "shards read")]
            del catalogue  # on its worker until here: the shards need only its references
            timing.rows_out = sum(s.read for s in summaries)
        result.stages.append(timing.row())
        storage.release_cache()  # an embedded engine's pages of the rows just read
        release_free_memory()  # the raw frames each shard read here, now validated
        yield ReadShards(submit, references, loaded, summaries, valid, tracker)


def _say(tracker: JobTracker):
    """Return a function showing a step inside a stage on the job row and progress line."""
    return lambda message: tracker.progress(tracker.percent, message)


def _shared(value: Any) -> Any:
    """Return `value` (a task whose result the shards' tasks share)."""
    return value


def _fetched(tracker: JobTracker, futures: list, until: float, what: str) -> list:
    """Return each future's result in order, each future let go once fetched (its worker
    may free what it held), saying how many are done (`what`: i of K), the progress moving
    on to `until` percent."""
    results, start, total = [], tracker.percent, len(futures)
    for index in range(total):
        results.append(futures[index].result())
        futures[index] = None
        if total > 1:
            message = f"{what}: {index + 1} of {total}"
            tracker.progress(start + (until - start) * (index + 1) / total, message)
    return results


def record_quarantine(tracker: JobTracker, result: RunResult, summaries) -> None:
    """Record the shards' quarantine, valid events and settings warnings on the job."""
    counts = combined_counts(summaries)
    result.events = tracker.processed = sum(s.events for s in summaries)
    tracker.quarantined = int(counts["rows"].sum()) if counts.height else 0
    result.quarantine = log_quarantine(tracker, counts)
    for warning in summaries[0].warnings:
        tracker.log("warning", "validate", warning)
