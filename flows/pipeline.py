"""The nightly run's stages as plain functions: frames in, frames out, callable without Prefect."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from flows.extract import Inputs, setting
from transforms.columns import (
    CONTENT_SIMILARITY_COLUMNS,
    DAILY_METRICS_COLUMNS,
    RECOMMENDATION_COLUMNS,
)
from transforms.daily_metrics import MetricInputs, daily_metrics
from transforms.interactions import InteractionParams
from transforms.validate import (
    PLATFORM_START,
    quarantine_counts,
    validate_play_history,
    validate_usage_metrics,
)

MODEL_QUALITY = "model_quality"
PLATFORM_START_KEY = "platform.start_date"  # settings row: validation's lower bound


@dataclass(frozen=True)
class NightlyParams:
    """Every knob of a nightly run, with its documented default."""

    run_date: date
    window_days: int = 180  # events read: the last N days up to run_date; 0 = all
    top_n: int = 20  # items per recommendation list
    similar_k: int = 20  # neighbours kept per item in content_similarity
    max_per_artist: int = 2  # at most this many items of one artist in a list
    min_history: int = 3  # fewer interactions than this → popularity fallback
    hybrid_alpha: float = 0.5  # hybrid score = alpha × collaborative + (1-alpha) × content
    expires_hours: int = 48  # recommendation_data / content_similarity lifetime
    holdout_days: int = 7  # temporal holdout evaluated before publishing
    quality_gate_drop: float = 0.20  # refuse to publish when nDCG@10 drops more than this
    force_publish: bool = False  # publish even when the quality gate refuses
    usage_retention_days: int = 365  # raw usage_metrics kept this long once aggregated
    interactions: InteractionParams = field(default_factory=InteractionParams)

    def as_payload(self) -> dict:
        """Return the parameters as a JSON-ready dict (for jobs.payload and reports)."""
        payload = {k: v for k, v in self.__dict__.items() if k != "interactions"}
        payload["interactions"] = dict(self.interactions.__dict__)
        return json.loads(json.dumps(payload, default=str))


@dataclass(frozen=True)
class Validation:
    """Valid inputs, and the rejected rows counted by table and reason."""

    inputs: Inputs
    counts: pl.DataFrame  # table, reason, rows
    quarantined: dict[str, pl.DataFrame]

    @property
    def rejected(self) -> int:
        """Return the number of quarantined rows."""
        return int(self.counts["rows"].sum()) if self.counts.height else 0


def platform_start(inputs: Inputs) -> datetime:
    """Return the first instant valid events may have: the settings row, else PLATFORM_START."""
    value = setting(inputs, PLATFORM_START_KEY)
    if value is None:
        return PLATFORM_START
    return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)


def validate_inputs(inputs: Inputs, now: datetime) -> Validation:
    """Return the inputs with bad play and usage rows moved to quarantine."""
    start = platform_start(inputs)
    plays = validate_play_history(
        inputs.plays, inputs.users, inputs.tracks, now=now, platform_start=start
    )
    usage = validate_usage_metrics(inputs.usage, inputs.users, now=now, platform_start=start)
    return Validation(
        inputs=inputs.replace(plays=plays.valid, usage=usage.valid),
        counts=quarantine_counts(play_history=plays, usage_metrics=usage),
        quarantined={"play_history": plays.quarantined, "usage_metrics": usage.quarantined},
    )


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


def compute_daily_metrics(inputs: Inputs, dates: list[date]) -> pl.DataFrame:
    """Return the daily_metrics rows of `dates` from validated inputs."""
    return daily_metrics(metric_inputs(inputs), dates)


def date_range(first: date, last: date) -> list[date]:
    """Return every date from `first` to `last`, both included."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def stamp(frame: pl.DataFrame, columns: tuple[str, ...], **values) -> pl.DataFrame:
    """Return `frame` with run columns (run_id, timestamps, …) set and columns in table order."""
    extra = [pl.lit(v).alias(k) for k, v in values.items() if k in columns]
    return frame.with_columns(extra).select(list(columns))


def stamp_metrics(frame: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    """Return daily metrics rows ready to publish."""
    return stamp(frame, DAILY_METRICS_COLUMNS, run_id=run_id, computed_at=now)


#: The API's lookup index of each published table. Rows are written in this order: the
#: load then appends to its indexes in order, and one user's (one item's) rows share pages.
SIMILARITY_LOOKUP = ("source_type", "source_id", "similarity_type", "rank")
RECOMMENDATION_LOOKUP = ("user_id", "list_name", "rank")


def is_sorted_by(frame: pl.DataFrame, keys: tuple[str, ...]) -> bool:
    """Return True when `frame` is in ascending (nulls first) order of `keys` already."""
    if frame.height < 2:
        return True
    ordered = pl.lit(True)
    for key in reversed(keys):  # lexicographic: a greater key, or an equal one and the rest
        now, before = pl.col(key), pl.col(key).shift()
        greater = now.is_not_null() & (before.is_null() | (now > before))
        equal = now.eq_missing(before)
        ordered = greater | (equal & ordered)
    return bool(frame.select(ordered.slice(1).all()).item())


def in_order(frame: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """Return `frame` sorted by `keys` (stable), without a copy when it already is."""
    return frame if is_sorted_by(frame, keys) else frame.sort(keys, maintain_order=True)


def stamp_similarity(
    frame: pl.DataFrame, run_id: str, now: datetime, version: str, expires: datetime
) -> pl.DataFrame:
    """Return content_similarity rows ready to publish, in lookup-index order."""
    return stamp(
        frame,
        CONTENT_SIMILARITY_COLUMNS,
        run_id=run_id,
        computed_at=now,
        model_version=version,
        expires_at=expires,
    ).pipe(in_order, SIMILARITY_LOOKUP)


def stamp_recommendations(
    frame: pl.DataFrame, run_id: str, now: datetime, version: str, expires: datetime
) -> pl.DataFrame:
    """Return recommendation_data rows ready to publish, in lookup-index order."""
    return stamp(
        frame,
        RECOMMENDATION_COLUMNS,
        run_id=run_id,
        created_at=now,
        model_version=version,
        expires_at=expires,
    ).pipe(in_order, RECOMMENDATION_LOOKUP)


def quality_rows(quality: dict, run_date: date, version: str) -> pl.DataFrame:
    """Return the model-quality figures as daily_metrics rows (entity 'model', the version)."""
    names = [
        k for k in ("precision_at_10", "recall_at_10", "ndcg_at_10", "coverage") if k in quality
    ]
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


def gate(quality: dict, previous_ndcg: float | None, max_drop: float) -> str | None:
    """Return why publishing is refused (nDCG@10 fell too far below the last run's), or None."""
    ndcg = quality.get("ndcg_at_10")
    if ndcg is None or previous_ndcg is None or previous_ndcg <= 0:
        return None
    floor = previous_ndcg * (1 - max_drop)
    if ndcg < floor:
        return (
            f"quality gate: nDCG@10 {ndcg:.4f} is more than {max_drop:.0%} below the last "
            f"published run's {previous_ndcg:.4f}; previous results kept "
            f"(--force-publish overrides)"
        )
    return None
