"""The daily-metrics stage: event metrics of validated inputs, a date slice's metrics from the
shards' partials and its publish (where the partials are, on a cluster: nothing of its size
passes through the run's process), and the model-quality rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from flows.stages.extract import Inputs
from flows.stages.publish import drop_dangling, stamp_metrics
from flows.storage.backends import open_storage
from flows.storage.base import Storage
from flows.storage.database import Database
from flows.tracking import release_free_memory
from transforms.columns import METRIC_TYPES, MODEL_QUALITY_METRICS
from transforms.daily_metrics import (
    MetricInputs,
    MetricPartials,
    combine_partials,
    metrics_from_partials,
)
from transforms.sizes import frames_size

MODEL_QUALITY = "model_quality"
EVENT_METRIC_TYPES = [t for t in METRIC_TYPES if t != MODEL_QUALITY]


def metric_inputs(inputs: Inputs) -> MetricInputs:
    """Return the frames the daily-metrics transform reads."""
    return MetricInputs(
        plays=inputs.plays,
        usage=inputs.usage,
        users=inputs.users,
        tracks=inputs.tracks,
        favorites=inputs.favorites,
        collection_items=inputs.collection_items,
        follows=inputs.follows,
        inventory=inputs.inventory,
    )


@dataclass(frozen=True)
class MetricsSlice:
    """A date slice's daily metrics, stamped, and the rows left out of it per table for
    naming an id absent from the catalogue."""

    frame: pl.DataFrame
    dropped: dict[str, int]

    def __sizeof__(self) -> int:
        return frames_size(self)  # what Dask counts (transforms/sizes.py)


def metrics_slice(
    dates: list[date], ids: dict, run_id: str, now: datetime, *partials: MetricPartials
) -> MetricsSlice:
    """Return the daily metrics of `dates` from every shard's partials, without rows naming
    an id absent from the catalogue's `ids`, stamped with the run's columns."""
    metrics = metrics_from_partials(combine_partials(list(partials)), dates)
    kept, dropped = drop_dangling({"daily_metrics": metrics}, ids)
    del metrics  # each step's copy let go before the next: a worker holds its shards beside
    stamped = stamp_metrics(kept.pop("daily_metrics"), run_id, now)
    release_free_memory()  # the combination's blocks, freed on a worker holding its shards
    return MetricsSlice(stamped, dropped)


def publish_metrics_slice(
    target: Storage | Database, metrics: MetricsSlice, dates: list[date]
) -> tuple[int, dict[str, int]]:
    """Replace the event metrics of `dates` with the slice's rows in one transaction, on the
    run's storage or on a connection of the task's own to `target` (where the slice is);
    return the rows written and the slice's rows dropped per table."""
    if isinstance(target, Storage):
        rows = target.replace_daily_metrics(metrics.frame, dates, EVENT_METRIC_TYPES)
    else:
        with open_storage(target) as storage:
            rows = storage.replace_daily_metrics(metrics.frame, dates, EVENT_METRIC_TYPES)
        release_free_memory()  # the load's buffers, freed on the worker that published
    return rows, metrics.dropped


def quality_rows(quality: dict, run_date: date, version: str) -> pl.DataFrame:
    """Return the model-quality figures as daily_metrics rows (entity 'model', the version)."""
    names = [k for k in MODEL_QUALITY_METRICS if k in quality]
    return pl.DataFrame(
        {
            "metric_date": [run_date] * len(names),
            "metric_type": [MODEL_QUALITY] * len(names),
            "entity_type": ["model"] * len(names),
            "entity_id": [version] * len(names),
            "metric_name": names,
            "metric_value": [float(quality[k]) for k in names],
        },
        schema_overrides={"metric_date": pl.Date},
    )
