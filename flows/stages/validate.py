"""The validate stage: bad input rows moved to quarantine, counted by table and reason.

The catalogue is checked first (tracks of unknown records, listings of unknown stores…, and
the users' collections: other users' rows name them), then the users' own rows against the
catalogue's valid ids: favourites, collection items, follows, plays and usage events. A
sharded run validates the catalogue once and each shard's users' rows where the shard is
read (`validate_catalogue`, `validate_user_rows`). Every row read is used or quarantined,
never both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import polars as pl

from flows.stages.extract import Inputs, setting
from transforms.references import (
    id_list,
    typed_reference,
    validate_audio_matches,
    validate_collection_items,
    validate_collections,
    validate_favorites,
    validate_follows,
    validate_inventory,
    validate_tracks,
)
from transforms.validate import (
    MAX_FACETS,
    MAX_KEY_LENGTH,
    MAX_TEXT_LENGTH,
    PLATFORM_START,
    Validated,
    bounded_records,
    quarantine_counts,
    validate_play_history,
    validate_usage_metrics,
)

PLATFORM_START_KEY = "platform.start_date"  # settings row: validation's lower bound


@dataclass(frozen=True)
class Validation:
    """Valid inputs, the rejected rows counted by table and reason, and settings warnings."""

    inputs: Inputs
    counts: pl.DataFrame  # table, reason, rows
    quarantined: dict[str, pl.DataFrame]
    warnings: tuple[str, ...] = ()

    @property
    def rejected(self) -> int:
        """Return the number of quarantined rows."""
        return int(self.counts["rows"].sum()) if self.counts.height else 0


def platform_start(inputs: Inputs, now: datetime) -> tuple[datetime, str | None]:
    """Return (the first instant valid events may have, a warning or None).

    The settings row `platform.start_date` holds a "YYYY-MM-DD" date; without it, or when
    it holds anything else (a number, an object, a date after `now`: the app's backend may
    write any JSON there), events are validated from PLATFORM_START, with a warning.
    """
    value = setting(inputs, PLATFORM_START_KEY)
    if value is None:
        return PLATFORM_START, None
    try:
        start = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        start = None
    if start is None or start > now.date():
        shown = json.dumps(value)[:60]
        return PLATFORM_START, (
            f"settings {PLATFORM_START_KEY} is {shown}, not a YYYY-MM-DD date in the past: "
            f"events are validated from {PLATFORM_START.date()} instead"
        )
    return datetime.combine(start, time(0), tzinfo=UTC), None


def _catalogue(inputs: Inputs) -> dict[str, Validated]:
    """Return the catalogue's dependent tables validated: tracks of known records, listings,
    audio matches."""
    tracks = validate_tracks(inputs.tracks, inputs.records)
    return {
        "tracks": tracks,
        "store_inventory": validate_inventory(inputs.inventory, inputs.stores, inputs.records),
        "audio_matches": validate_audio_matches(inputs.audio_matches, tracks.valid),
    }


def _social(inputs: Inputs) -> dict[str, Validated]:
    """Return the users' own tables validated against the users and the valid catalogue."""
    items = {"record": inputs.records, "track": inputs.tracks, "store": inputs.stores}
    return {
        "favorites": validate_favorites(inputs.favorites, inputs.users, items),
        "user_collection_items": validate_collection_items(
            inputs.collection_items, inputs.collections, inputs.records
        ),
        "user_follows": validate_follows(inputs.follows, inputs.users, inputs.stores),
    }


def _events(inputs: Inputs, now, start) -> dict:
    """Return play_history and usage_metrics validated against the valid catalogue."""
    entities = typed_reference(
        "entity_type",
        "entity_id",
        {
            "record": id_list(inputs.records),
            "track": id_list(inputs.tracks),
            "store": id_list(inputs.stores),
            "collection": id_list(inputs.collections),
            "user": id_list(inputs.users),
        },
    )
    return {
        "play_history": validate_play_history(
            inputs.plays, inputs.users, inputs.tracks, now=now, platform_start=start
        ),
        "usage_metrics": validate_usage_metrics(
            inputs.usage, inputs.users, now=now, platform_start=start, entities=entities
        ),
    }


#: Inputs field of each validated table.
FIELDS = {
    "tracks": "tracks",
    "store_inventory": "inventory",
    "audio_matches": "audio_matches",
    "favorites": "favorites",
    "user_collections": "collections",
    "user_collection_items": "collection_items",
    "user_follows": "follows",
    "play_history": "plays",
    "usage_metrics": "usage",
}


def _validation(inputs: Inputs, checked: dict[str, Validated], warnings=()) -> Validation:
    """Return `inputs` with the checked tables' valid rows, and their quarantine."""
    return Validation(
        inputs=inputs.replace(**{FIELDS[t]: v.valid for t, v in checked.items()}),
        counts=quarantine_counts(**checked),
        quarantined={table: v.quarantined for table, v in checked.items()},
        warnings=tuple(w for w in warnings if w),
    )


def validate_catalogue(inputs: Inputs, now: datetime) -> Validation:
    """Return the catalogue, the users and their collections validated (the users' own rows
    are left as they are); its warnings are the settings' and the records' cut texts."""
    _, warning = platform_start(inputs, now)
    records, cut = bounded_records(inputs.records)
    inputs = inputs.replace(records=records)
    checked = _catalogue(inputs)
    checked["user_collections"] = validate_collections(inputs.collections, inputs.users)
    return _validation(inputs, checked, (warning, _cut_warning(cut)))


def validate_user_rows(inputs: Inputs, now: datetime) -> Validation:
    """Return the users' own rows (favourites, collection items, follows, plays, usage)
    validated against the rest of `inputs`: a catalogue already validated."""
    start, _ = platform_start(inputs, now)
    return _validation(inputs, _social(inputs) | _events(inputs, now, start))


def validate_inputs(inputs: Inputs, now: datetime) -> Validation:
    """Return the inputs with every bad row moved to quarantine (counted by table, reason)."""
    catalogue = validate_catalogue(inputs, now)
    users = validate_user_rows(catalogue.inputs, now)
    return Validation(
        inputs=users.inputs,
        counts=pl.concat([catalogue.counts, users.counts]).sort("table", "reason"),
        quarantined=catalogue.quarantined | users.quarantined,
        warnings=catalogue.warnings,
    )


def _cut_warning(rows: int) -> str | None:
    """Return the warning for catalogue rows whose texts were cut, or None."""
    if not rows:
        return None
    return (
        f"records: {rows} row(s) had a text over {MAX_TEXT_LENGTH} characters or over "
        f"{MAX_FACETS} genres/styles (or one over {MAX_KEY_LENGTH} characters): cut to that"
    )
