"""What a run publishes: its rows stamped with the run's columns in lookup order, and the gate.

Rows are written in the order of each table's lookup index: the load then appends to its
indexes in order, and one user's (one item's) rows share pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from transforms.columns import (
    CONTENT_SIMILARITY_COLUMNS,
    DAILY_METRICS_COLUMNS,
    RECOMMENDATION_COLUMNS,
)
from transforms.references import without_dangling

#: The API's lookup index of each published table.
SIMILARITY_LOOKUP = ("source_type", "source_id", "similarity_type", "rank")
RECOMMENDATION_LOOKUP = ("user_id", "list_name", "rank")


def stamp(frame: pl.DataFrame, columns: tuple[str, ...], **values) -> pl.DataFrame:
    """Return `frame` with run columns (run_id, timestamps, …) set and columns in table order."""
    extra = [pl.lit(v).alias(k) for k, v in values.items() if k in columns]
    return frame.with_columns(extra).select(list(columns))


def stamp_metrics(frame: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    """Return daily metrics rows ready to publish."""
    return stamp(frame, DAILY_METRICS_COLUMNS, run_id=run_id, computed_at=now)


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


def stamp_popularity(frame: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    """Return record_popularity rows ready to publish."""
    return frame.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(now).alias("computed_at"))


def drop_dangling(
    frames: dict[str, pl.DataFrame], ids: dict[str, pl.Series]
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """Return the output frames without rows naming an id absent from the catalogue `ids`,
    and how many rows each table lost (none, unless validation let a bad reference through).
    """
    checked = {table: without_dangling(table, frame, ids) for table, frame in frames.items()}
    kept = {table: frame for table, (frame, _) in checked.items()}
    return kept, {table: dropped for table, (_, dropped) in checked.items() if dropped}


#: A run whose lists cover fewer users than this share of the last published run's is
#: skipped: users deleted, a feed that stopped, a window cut short; not a night's churn.
MIN_USERS_SHARE = 0.5


@dataclass(frozen=True)
class LastPublished:
    """The last published run, as a new run's lists are checked against it."""

    ndcg_at_10: float | None  # None: it could not measure its quality
    users_served: int | None  # None: a run from before users were counted
    reference_ndcg_at_10: float | None  # the last published run that measured it

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> LastPublished | None:
        """Return the row of query publish/last_published_run, or None before a first publish."""
        return cls(**frame.row(0, named=True)) if frame.height else None


@dataclass(frozen=True)
class Candidate:
    """What a run is about to publish: the figures its checks read."""

    events: int  # valid play and usage events in the run's window
    users_served: int  # users with at least one recommendation list
    quality: dict  # the holdout figures (no ndcg_at_10: not measurable)


def skip_reason(run: Candidate, last: LastPublished | None) -> str | None:
    """Return why the run must not replace the published lists, or None.

    Never for the first run ever (nothing to keep); else a window without events, lists
    covering under MIN_USERS_SHARE of the last published run's users, or a quality that
    cannot be measured when the last published run's could.
    """
    if last is None:
        return None
    if run.events == 0:
        return "no play or usage events in the run's window"
    if last.users_served and run.users_served < MIN_USERS_SHARE * last.users_served:
        return (
            f"the lists cover {run.users_served:,} users, under {MIN_USERS_SHARE:.0%} of the "
            f"last published run's {last.users_served:,}"
        )
    if run.quality.get("ndcg_at_10") is None and last.ndcg_at_10 is not None:
        return (
            "its quality cannot be measured (no holdout user with a new record) while the "
            "last published run's could"
        )
    return None


def gate(quality: dict, previous_ndcg: float | None, max_drop: float) -> str | None:
    """Return why the quality gate refuses the lists (nDCG@10 fell too far below the last
    measured published run's), or None."""
    ndcg = quality.get("ndcg_at_10")
    if ndcg is None or previous_ndcg is None or previous_ndcg <= 0:
        return None
    floor = previous_ndcg * (1 - max_drop)
    if ndcg < floor:
        return (
            f"quality gate: nDCG@10 {ndcg:.4f} is more than {max_drop:.0%} below the last "
            f"published run's {previous_ndcg:.4f}"
        )
    return None
