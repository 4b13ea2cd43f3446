"""The cache's encoding: published frames into compact JSON values, and those values back.

One value per (user, list) and per (item, similarity type): a JSON array of rows, each row an
array without the column names and without what every row of a run shares (model_version,
expires_at, run_id: the run's meta value). Floats are written by polars' JSON encoder, the
shortest text that reads back to the same double, so a decoded row equals the Postgres row.
Encoding is vectorised (polars); decoding is json.loads plus a row shape per read function.

Recommendation row: [rank, item, score, confidence, reason], `item` the item_id (a number) or,
when the row has an item_key and no item_id, the key (a string); a row with both, or whose
item_type is not its list's usual one (transforms.columns.RECOMMENDATION_LISTS), carries
[..., item_key, item_type] at the end. Similarity row: [rank, target_id, score], plus the
target_type when it is not the source's type. Popularity row: [record_id, plays, genres,
in_stock].
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl

from transforms.columns import RECOMMENDATION_LISTS

LIST_ITEM_TYPES = {name: item_type for name, (_, item_type) in RECOMMENDATION_LISTS.items()}
RECOMMENDATION_FIELDS = (
    "rank",
    "item_type",
    "item_id",
    "item_key",
    "score",
    "confidence",
    "reason",
    "is_fallback",
    "model_version",
    "expires_at",
)
SIMILAR_FIELDS = ("rank", "target_type", "target_id", "score", "similarity_type")
PREFERENCE_FIELDS = ("list_name", "rank", "item_key", "score", "confidence")


def _row(fields: tuple[str, ...], values: tuple) -> dict:
    """Return a row as the function returns it: a dict of its columns."""
    return dict(zip(fields, values, strict=True))


def json_scalar(column: str) -> pl.Expr:
    """Return `column` as JSON text: strings quoted and escaped, floats exact, null as null."""
    wrapped = pl.struct(pl.col(column).alias("v")).struct.json_encode()
    return wrapped.str.slice(5).str.head(-1)  # {"v":<value>} → <value>


def json_number(column: str) -> pl.Expr:
    """Return a numeric column as JSON text, null as null: polars writes a float as the
    shortest text that reads back to the same double, as its JSON encoder does (faster)."""
    return pl.col(column).cast(pl.String).fill_null("null")


def _array(*parts: pl.Expr) -> pl.Expr:
    """Return the JSON array text of `parts` (each already JSON text)."""
    return pl.concat_str([pl.lit("["), pl.concat_str(list(parts), separator=","), pl.lit("]")])


def _joined(
    frame: pl.DataFrame, keys: list[str], rows: list[tuple[pl.Expr, pl.Expr]]
) -> pl.DataFrame:
    """Return one JSON array per group of `keys`: its rows in rank order.

    `rows` pairs a filter with the row text of the rows it keeps: each text is computed on its
    own rows only (a JSON-escaped string costs more than the numbers beside it).
    """
    parts = [frame.filter(keep).select(*keys, "rank", row.alias("row")) for keep, row in rows]
    return (
        pl.concat(parts)
        .sort([*keys, "rank"])
        .group_by(keys, maintain_order=True)
        .agg(_array(pl.col("row").str.join(",")).alias("value"))
    )


def recommendation_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Return (user_id, list_name, value) for recommendation_data rows: one value per list."""
    usual = pl.col("list_name").replace_strict(LIST_ITEM_TYPES, default=None)
    plain = (pl.col("item_type") == usual).fill_null(False)
    by_id = plain & pl.col("item_key").is_null()
    by_key = plain & pl.col("item_key").is_not_null() & pl.col("item_id").is_null()
    reason = pl.col("reason").fill_null("null")
    tail = [json_number("score"), json_number("confidence"), reason]
    rank, item_id = json_number("rank"), json_number("item_id")
    return _joined(
        frame,
        ["user_id", "list_name"],
        [
            (by_id, _array(rank, item_id, *tail)),
            (by_key, _array(rank, json_scalar("item_key"), *tail)),
            (
                ~(by_id | by_key),
                _array(rank, item_id, *tail, json_scalar("item_key"), json_scalar("item_type")),
            ),
        ],
    )


def similarity_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Return (source_type, source_id, similarity_type, value): one value per neighbour list."""
    common = [json_number("rank"), json_number("target_id"), json_number("score")]
    same = pl.col("target_type") == pl.col("source_type")
    return _joined(
        frame,
        ["source_type", "source_id", "similarity_type"],
        [(same, _array(*common)), (~same, _array(*common, json_scalar("target_type")))],
    )


def popularity_value(frame: pl.DataFrame) -> str:
    """Return record_popularity rows as one JSON array, most played first."""
    rows = frame.sort(["plays", "record_id"], descending=[True, False]).select(
        _array(
            json_scalar("record_id"),
            json_scalar("plays"),
            json_scalar("genres"),
            json_scalar("in_stock"),
        )
    )
    return "[" + ",".join(rows.to_series().to_list()) + "]"


def run_meta(recommendations: pl.DataFrame) -> dict:
    """Return what every recommendation row of a run shares, and its preference lists.

    ValueError when model_version or expires_at varies: those are not stored per row.
    """
    shared = recommendations.select(
        pl.col("model_version").unique().alias("model_version"),
        pl.col("expires_at").unique().alias("expires_at"),
    )
    if recommendations.height and (
        recommendations["model_version"].n_unique() > 1
        or recommendations["expires_at"].n_unique() > 1
    ):
        raise ValueError("a run's rows hold more than one model_version or expires_at")
    preference = recommendations.filter(pl.col("data_type") == "preference")["list_name"]
    expires = shared["expires_at"][0] if shared.height else None
    return {
        "model_version": shared["model_version"][0] if shared.height else None,
        "expires_at": expires.isoformat() if expires is not None else None,
        "preference_lists": sorted(preference.unique().to_list()),
    }


def merged_meta(metas: list[dict]) -> dict:
    """Return the ``run_meta`` of a run's rows in parts, from each part's (a part without
    rows says nothing of the shared columns).

    ValueError when the parts' model_version or expires_at differ, as ``run_meta``.
    """
    shared = {(m["model_version"], m["expires_at"]) for m in metas if m["model_version"]}
    if len(shared) > 1:
        raise ValueError("a run's rows hold more than one model_version or expires_at")
    version, expires = shared.pop() if shared else (None, None)
    lists = sorted({name for meta in metas for name in meta["preference_lists"]})
    return {"model_version": version, "expires_at": expires, "preference_lists": lists}


def decode_recommendations(value: bytes | str, list_name: str, meta: dict, limit: int) -> list:
    """Return get_recommendations rows (dicts) of a cached list, the first `limit` of them."""
    item_type = LIST_ITEM_TYPES.get(list_name)
    expires = meta.get("expires_at")
    expires_at = datetime.fromisoformat(expires) if expires else None
    rows = []
    for row in json.loads(value)[:limit]:
        rank, item, score, confidence, reason = row[:5]
        if len(row) > 5:
            item_id, item_key, kind = item, row[5], row[6]
        elif isinstance(item, str):
            item_id, item_key, kind = None, item, item_type
        else:
            item_id, item_key, kind = item, None, item_type
        values = (rank, kind, item_id, item_key, score, confidence, reason, False)
        rows.append(_row(RECOMMENDATION_FIELDS, (*values, meta["model_version"], expires_at)))
    return rows


def decode_similar(value: bytes | str, source_type: str, similarity_type: str, limit: int) -> list:
    """Return get_similar rows (dicts) of a cached neighbour list, the first `limit`."""
    rows = []
    for row in json.loads(value)[:limit]:
        kind = row[3] if len(row) > 3 else source_type
        rows.append(_row(SIMILAR_FIELDS, (row[0], kind, row[1], row[2], similarity_type)))
    return rows


def decode_preferences(values: dict[str, bytes | str | None], cap: int = 100) -> list:
    """Return get_user_preferences rows (dicts) of a user's cached preference lists."""
    rows = []
    for list_name in sorted(values):
        value = values[list_name]
        for row in json.loads(value) if value is not None else []:
            rank, item, score, confidence = row[:4]
            item_key = row[5] if len(row) > 5 else (item if isinstance(item, str) else None)
            if rank <= cap:
                rows.append(_row(PREFERENCE_FIELDS, (list_name, rank, item_key, score, confidence)))
    return rows


def popularity_fallback(
    popular: list, history: set[int], genres: list[str], list_name: str, limit: int
) -> list:
    """Return get_recommendations' popularity fallback rows from a cached popularity list.

    The rules of sql/postgres/0011's fallback: records the user has are left out, records
    for sale only for 'records_in_stock', those sharing a genre with the user's `genres`
    (sorted as the database sorts them) first, then by plays and id; score (1 + p) / 2 in
    a genre, p / 2 else, p = plays / the top candidate's plays; confidence 0.2.
    """
    wanted = set(genres)
    candidates = [
        (0 if wanted.intersection(record_genres) else 1, -plays, record_id, plays, record_genres)
        for record_id, plays, record_genres, in_stock in popular
        if record_id not in history and (list_name == "records" or in_stock)
    ]
    if not candidates or limit == 0:
        return []
    top = max(c[3] for c in candidates)
    order = {genre: i for i, genre in enumerate(genres)}
    rows = []
    for rank, (priority, _, record_id, plays, record_genres) in enumerate(
        sorted(candidates)[:limit], start=1
    ):
        if priority == 0:
            shared = sorted(set(record_genres) & wanted, key=order.__getitem__)
            reason = {"kind": "fallback", "scope": "genres", "genres": shared}
        else:
            reason = {"kind": "fallback", "scope": "overall"}
        score = ((1 - priority) + plays / top) / 2.0
        values = (rank, "record", record_id, None, score, 0.2, reason, True, "fallback", None)
        rows.append(_row(RECOMMENDATION_FIELDS, values))
    return rows
