"""The run parameters: one definition of every knob of the nightly and the backfill.

Each field's default, help text and bounds live here only. The flows' signatures
(``flow_signature``), the CLI's options (flows/cli/options.py) and the run payload are
derived from these dataclasses; tests check that prefect.yaml and README state the same
defaults.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_type_hints


def last_complete_day(now: datetime | None = None) -> date:
    """Return yesterday in UTC: the last complete day, the default run date."""
    return (now or datetime.now(UTC)).date() - timedelta(days=1)


def date_range(first: date, last: date) -> list[date]:
    """Return every date from `first` to `last`, both included."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def knob(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    option: str | None = None,
) -> Any:
    """Return a dataclass field with its help text and bounds (what the CLI and checks read).

    `option` names the CLI option when it is not the field's name with dashes; a `default`
    of dataclasses.MISSING makes the parameter required.
    """
    metadata = {"help": help, "low": low, "high": high, "option": option}
    return field(default=default, metadata=metadata)


def check_bounds(params: Any) -> None:
    """Raise ValueError (one line, naming the option) for a value outside its field's bounds."""
    for f in dataclasses.fields(params):
        value, low, high = getattr(params, f.name), f.metadata["low"], f.metadata["high"]
        if value is None or isinstance(value, bool | date):
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"{option_name(f)} must be {span}, not {value}")


def replica_wait_knob() -> Any:
    """Return the --replica-wait field (the nightly's and the backfill's: one definition)."""
    return knob(
        REPLICA_WAIT_S,
        "with a read replica: seconds to wait for it to replay the primary's WAL position "
        "of the run's start before failing (0 = do not wait)",
        low=0,
    )


def shards_knob() -> Any:
    """Return the --shards field (the nightly's and the backfill's: one definition)."""
    return knob(
        None,
        "user shards read and aggregated apart, then combined (default: 1; with --workers or "
        "--cluster, a multiple of the workers with at most 8,000 users each)",
        low=1,
    )


def option_name(f: dataclasses.Field) -> str:
    """Return the CLI option of a parameter field (`--window-days` for window_days)."""
    return f.metadata["option"] or "--" + f.name.replace("_", "-")


#: How long a run with a read replica waits for it to catch up: 10 minutes.
REPLICA_WAIT_S = 600


@dataclass(frozen=True)
class NightlyParams:
    """Every knob of a nightly run, with its documented default."""

    run_date: date | None = knob(
        None, "run date (default: yesterday, UTC: the last complete day)", option="--date"
    )
    window_days: int = knob(180, "days of events read, ending with the run date; 0 = all", low=0)
    top_n: int = knob(20, "items per recommendation list", low=1)
    similar_k: int = knob(20, "neighbours kept per item in content_similarity", low=1)
    max_per_artist: int = knob(2, "at most this many items of one artist in a list", low=1)
    min_history: int = knob(3, "users with fewer interactions get the popularity fallback", low=1)
    hybrid_alpha: float = knob(
        0.5, "hybrid score = alpha x collaborative + (1 - alpha) x content", low=0, high=1
    )
    half_life_days: float = knob(30.0, "time decay of interactions; 0 = no decay", low=0)
    expires_hours: int = knob(48, "lifetime of the published lists and neighbours", low=1)
    cache_ttl_hours: int = knob(
        24, "lifetime of the lists warmed into Redis (--cache), never past --expires-hours", low=1
    )
    holdout_days: int = knob(7, "days of the temporal holdout scored before publishing", low=1)
    quality_gate_drop: float = knob(
        0.20,
        "refuse to publish when the holdout nDCG@10 falls more than this share below "
        "the last published run's",
        low=0,
        high=1,
    )
    force_publish: bool = knob(False, "publish even when the quality gate refuses")
    usage_retention_days: int = knob(365, "days of raw usage_metrics kept once aggregated", low=1)
    play_retention_days: int | None = knob(
        None, "days of raw play_history kept (default: all; Postgres drops whole months)", low=1
    )
    partitions_ahead: int = knob(
        2, "months after the run's that get event partitions ahead (Postgres)", low=1, high=120
    )
    replica_wait: int = replica_wait_knob()
    shards: int | None = shards_knob()

    def __post_init__(self) -> None:
        check_bounds(self)

    def resolved(self, now: datetime | None = None) -> NightlyParams:
        """Return these parameters with the run date set (yesterday, UTC, when it is None)."""
        return dataclasses.replace(self, run_date=self.run_date or last_complete_day(now))

    def as_payload(self) -> dict:
        """Return the parameters as a JSON-ready dict (for jobs.payload and reports)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@dataclass(frozen=True)
class BackfillParams:
    """The date range of a backfill: daily metrics of every date from date_from to date_to."""

    date_from: date = knob(dataclasses.MISSING, "first date recomputed", option="--from")
    date_to: date = knob(dataclasses.MISSING, "last date recomputed (included)", option="--to")
    replica_wait: int = replica_wait_knob()
    shards: int | None = shards_knob()

    def __post_init__(self) -> None:
        check_bounds(self)
        self.dates()

    def dates(self) -> list[date]:
        """Return every date of the range; ValueError (one line) when it runs backwards."""
        return date_range(self.date_from, self.date_to)

    def as_payload(self) -> dict:
        """Return the range as a JSON-ready dict (for jobs.payload)."""
        dates = {"from": str(self.date_from), "to": str(self.date_to), "dates": len(self.dates())}
        return dates | ({"shards": self.shards} if self.shards else {})


def required(f: dataclasses.Field) -> bool:
    """Return True for a parameter without a default (a backfill's dates)."""
    return f.default is dataclasses.MISSING


def flow_signature(params_cls: type, *extra: inspect.Parameter) -> inspect.Signature:
    """Return the keyword signature of a flow taking `params_cls`' fields, then `extra`.

    Prefect builds a flow's parameter schema (the UI form, deployment validation) from its
    signature; deriving it here keeps the dataclass the one place a default is written.
    """
    hints = get_type_hints(params_cls)
    params = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if required(f) else f.default,
            annotation=hints[f.name],
        )
        for f in dataclasses.fields(params_cls)
    ]
    return inspect.Signature([*params, *extra], return_annotation=dict)


def flow_docstring(summary: str, params_cls: type, **extra: str) -> str:
    """Return a flow's docstring: `summary`, then an Args section from the fields' help."""
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(params_cls)} | extra
    return "\n".join([summary, "", "Args:", *(f"    {k}: {v}" for k, v in helps.items())])


@dataclass(frozen=True)
class GenerateParams:
    """The size and seed of synthetic data (`rotation generate`, `rotation demo`)."""

    users: int = knob(2000, "users generated", low=1)
    tracks: int = knob(20000, "tracks generated (records: a tenth of them)", low=1)
    days: int = knob(90, "days of events", low=1)
    seed: int = knob(42, "random seed: the same seed gives the same rows")
    end: date | None = knob(
        None, "events fall in the DAYS days before this date (default: today, UTC)"
    )
    plays: int | None = knob(None, "exact play_history rows (default: from the users)", low=1)
    events: int | None = knob(None, "exact usage_metrics rows (default: half the plays)", low=1)


#: The tune flow's drift rule: the nightly uses the latest tuned parameters only while each of
#: users, items, interactions and density is within this factor of the tuned data's.
TUNED_DRIFT = 1.5


@dataclass(frozen=True)
class TuneParams:
    """Every knob of a tune run: the nightly's data of a date, its last days held out."""

    run_date: date | None = knob(
        None, "date whose data is tuned on (default: yesterday, UTC)", option="--date"
    )
    window_days: int = knob(180, "days of events read, ending with the run date; 0 = all", low=0)
    holdout_days: int = knob(7, "most recent days held out as the validation split", low=1)
    budget: int = knob(20, "candidates scored beyond the defaults (0 = record the defaults)", low=0)
    max_users: int = knob(20000, "validation users scored at most (a seeded sample)", low=1)

    def __post_init__(self) -> None:
        check_bounds(self)

    def resolved(self, now: datetime | None = None) -> TuneParams:
        """Return these parameters with the run date set (yesterday, UTC, when it is None)."""
        return dataclasses.replace(self, run_date=self.run_date or last_complete_day(now))

    def as_payload(self) -> dict:
        """Return the parameters as a JSON-ready dict (for jobs.payload)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))
