"""References to the catalogue: input rows naming an unknown id are quarantined, output rows
naming one are found before they are published.

The app's roles may write rows whose ids lead nowhere: a favourite of a record that was
deleted (favorites and usage_metrics refer to records, tracks and stores by type and id,
with no foreign key), a page view of record 999999, or, in a DuckDB replay file, any row
at all. Each such input row is quarantined with a counted reason, like every other bad row;
the outputs are checked against the same catalogue before the COPY, so that no published
row names an id the catalogue lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from transforms import coerce as co
from transforms.validate import Validated, split

#: Item types that name a catalogue table, for favorites (favoritable_*), usage events
#: (entity_*), content_similarity (source_*, target_*) and recommendation_data (item_*).
CATALOGUE_TYPES = ("record", "track", "store")


def id_list(frame: pl.DataFrame, column: str = "id") -> pl.Series:
    """Return the distinct non-null Int64 values of a column, imploded for is_in."""
    ids = co.coerce(frame.select(column), {column: co.ID}).get_column(column)
    return ids.drop_nulls().unique().implode()


@dataclass(frozen=True)
class Reference:
    """A column whose values must be among `ids`; a row naming another fails with `reason`."""

    column: str
    ids: pl.Series  # imploded (id_list)
    reason: str
    nullable: bool = False  # a null value is no reference (else it fails too)

    def fails(self) -> pl.Expr:
        """Return the expression true for the rows this reference rejects."""
        col = pl.col(self.column)
        unknown = ~col.is_in(self.ids)
        return unknown if not self.nullable else col.is_not_null() & unknown


def typed_reference(
    type_column: str, id_column: str | pl.Expr, ids: Mapping[str, pl.Series]
) -> pl.Expr:
    """Return the expression true where `id_column` is not an id of its row's type.

    A row whose type has no entry in `ids` (a search, the home page) is not checked; a row
    of a listed type with a null id is not checked either (it names nothing).
    """
    kind = pl.col(type_column)
    value = pl.col(id_column) if isinstance(id_column, str) else id_column
    unknown = pl.lit(False)
    for name, known in ids.items():
        unknown = unknown | ((kind == name) & value.is_not_null() & ~value.is_in(known))
    return unknown


def check_references(
    frame: pl.DataFrame,
    table: str,
    kinds: Mapping[str, str],
    references: Sequence[Reference],
    extra: Sequence[tuple[str, pl.Expr]] = (),
) -> Validated:
    """Return the rows of `frame` split into valid ones and ones quarantined with a reason.

    `kinds` are the columns read and their kinds (transforms/coerce.py); the references are
    checked in order, then `extra` (reason, failing expression) checks.
    """
    co.require_columns(frame, list(kinds), table)
    coerced = co.coerce(frame, dict(kinds))
    checks = [(ref.reason, ref.fails()) for ref in references] + list(extra)
    return split(coerced, checks, deduplicate=False)


def catalogue_ids(
    records: pl.DataFrame, tracks: pl.DataFrame, stores: pl.DataFrame, users: pl.DataFrame
) -> dict[str, pl.Series]:
    """Return the ids an output row may name, by type ('record', 'track', 'store', 'user')."""
    frames = {"record": records, "track": tracks, "store": stores, "user": users}
    return {kind: id_list(frame) for kind, frame in frames.items()}


def _output_checks(table: str, ids: Mapping[str, pl.Series]) -> list[pl.Expr]:
    """Return the expressions true for the rows of output `table` naming an unknown id."""
    items = {kind: ids[kind] for kind in CATALOGUE_TYPES}
    if table == "content_similarity":
        return [
            typed_reference("source_type", "source_id", items),
            typed_reference("target_type", "target_id", items),
        ]
    if table == "recommendation_data":
        return [
            ~pl.col("user_id").is_in(ids["user"]),
            typed_reference("item_type", "item_id", items),
        ]
    if table == "record_popularity":
        return [~pl.col("record_id").is_in(ids["record"])]
    if table == "daily_metrics":  # entity ids are text: a record's, track's or store's id
        return [
            typed_reference("entity_type", pl.col("entity_id").cast(pl.Int64, strict=False), items)
        ]
    raise ValueError(f"no reference checks for output table {table!r}")


def without_dangling(
    table: str, frame: pl.DataFrame, ids: Mapping[str, pl.Series]
) -> tuple[pl.DataFrame, int]:
    """Return (the rows of output `table` naming only known ids, how many were dropped)."""
    if frame.height == 0:
        return frame, 0
    failed = pl.any_horizontal([check.fill_null(False) for check in _output_checks(table, ids)])
    mask = frame.select(failed).to_series()
    dropped = int(mask.sum())
    return (frame.filter(~mask), dropped) if dropped else (frame, 0)


def validate_tracks(tracks: pl.DataFrame, records: pl.DataFrame) -> Validated:
    """Return tracks split: a track of a record the catalogue lacks is quarantined."""
    return check_references(
        tracks, "tracks", co.TRACKS, [Reference("record_id", id_list(records), "unknown_record")]
    )


def validate_inventory(
    inventory: pl.DataFrame, stores: pl.DataFrame, records: pl.DataFrame
) -> Validated:
    """Return store_inventory split: listings of unknown stores or records are quarantined."""
    return check_references(
        inventory,
        "store_inventory",
        co.INVENTORY,
        [
            Reference("store_id", id_list(stores), "unknown_store"),
            Reference("record_id", id_list(records), "unknown_record"),
        ],
    )


def validate_audio_matches(audio: pl.DataFrame, tracks: pl.DataFrame) -> Validated:
    """Return audio_matches split: matches of unknown tracks are quarantined."""
    return check_references(
        audio,
        "audio_matches",
        {"id": co.ID, "track_id": co.ID},
        [Reference("track_id", id_list(tracks), "unknown_track")],
    )


def validate_favorites(
    favorites: pl.DataFrame, users: pl.DataFrame, items: Mapping[str, pl.DataFrame]
) -> Validated:
    """Return favorites split: an unknown user, item type, or item of its type is refused.

    `items` maps each favoritable type ('record', 'track', 'store') to its catalogue table.
    """
    ids = {kind: id_list(frame) for kind, frame in items.items()}
    kind = pl.col("favoritable_type")
    return check_references(
        favorites,
        "favorites",
        co.FAVORITES,
        [Reference("user_id", id_list(users), "unknown_user")],
        [
            ("unknown_item_type", kind.is_null() | ~kind.is_in(list(ids))),
            (
                "unknown_item",
                pl.col("favoritable_id").is_null()
                | typed_reference("favoritable_type", "favoritable_id", ids),
            ),
        ],
    )


def validate_collections(collections: pl.DataFrame, users: pl.DataFrame) -> Validated:
    """Return user_collections split: collections of unknown users are quarantined."""
    return check_references(
        collections,
        "user_collections",
        co.COLLECTIONS,
        [Reference("user_id", id_list(users), "unknown_user")],
    )


def validate_collection_items(
    items: pl.DataFrame, collections: pl.DataFrame, records: pl.DataFrame
) -> Validated:
    """Return user_collection_items split: items of unknown collections or records refused."""
    return check_references(
        items,
        "user_collection_items",
        co.COLLECTION_ITEMS,
        [
            Reference("collection_id", id_list(collections), "unknown_collection"),
            Reference("record_id", id_list(records), "unknown_record"),
        ],
    )


def validate_follows(follows: pl.DataFrame, users: pl.DataFrame, stores: pl.DataFrame) -> Validated:
    """Return user_follows split: follows of unknown users or stores are quarantined."""
    return check_references(
        follows,
        "user_follows",
        co.FOLLOWS,
        [
            Reference("user_id", id_list(users), "unknown_user"),
            Reference("store_id", id_list(stores), "unknown_store"),
        ],
    )
