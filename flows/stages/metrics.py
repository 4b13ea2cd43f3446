"""The daily-metrics stage: event metrics of validated inputs, and the model-quality rows."""

from __future__ import annotations

from datetime import date

import polars as pl

from flows.stages.extract import Inputs
from transforms.columns import METRIC_TYPES, MODEL_QUALITY_METRICS
from transforms.daily_metrics import MetricInputs

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
