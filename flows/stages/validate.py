"""The validate stage: bad play and usage rows moved to quarantine, counted by reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import polars as pl

from flows.stages.extract import Inputs, setting
from transforms.validate import (
    PLATFORM_START,
    quarantine_counts,
    validate_play_history,
    validate_usage_metrics,
)

PLATFORM_START_KEY = "platform.start_date"  # settings row: validation's lower bound


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
