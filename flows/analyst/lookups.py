"""Read-side commands: a user's lists and an item's neighbours, formatted for a terminal."""

from __future__ import annotations

import json

import polars as pl

from flows.analyst.terminal import printable
from flows.storage.backends import open_storage
from flows.storage.cache.reader import CacheReader
from flows.storage.cache.target import CacheTarget
from flows.storage.database import Database
from transforms.columns import RECOMMENDATION_LISTS, SIMILARITY_TYPES

TITLE_QUERIES = {
    "record": "lookups/record_titles",
    "track": "lookups/track_titles",
    "store": "lookups/store_names",
}


def _labels(storage, item_type: str, ids: list[int]) -> dict[int, str]:
    """Return id → 'artist — title' (or store name) for items of one type."""
    query = TITLE_QUERIES.get(item_type)
    if not query or not ids:
        return {}
    frame = storage.read(query, (ids,))
    if "artist" in frame.columns:
        return dict(zip(frame["id"], frame["artist"] + " — " + frame["title"], strict=True))
    return dict(zip(frame["id"], frame["name"], strict=True))


def served_lists(
    db: Database, cache: CacheTarget, user_id: int, list_name: str | None, limit: int
) -> pl.DataFrame:
    """Return a user's lists as the API's read module serves them (Redis, else Postgres):
    the columns of query lookups/user_recommendations, plus each list's `source`."""
    reader = CacheReader(db, cache)
    rows = []
    try:
        for name in [list_name] if list_name else sorted(RECOMMENDATION_LISTS):
            served = reader.read("get_recommendations", user_id, name, limit)
            rows += [
                {**r, "list_name": name, "reason": json.dumps(r["reason"]), "source": served.source}
                for r in served.rows
            ]
    finally:
        reader.close()
    columns = ["list_name", "rank", "item_type", "item_id", "item_key", "score", "confidence"]
    schema = dict.fromkeys(columns, pl.String) | {"rank": pl.Int64, "item_id": pl.Int64}
    schema |= {"score": pl.Float64, "confidence": pl.Float64, "reason": pl.String}
    schema |= {"source": pl.String}
    return pl.DataFrame([{c: r[c] for c in schema} for r in rows], schema=schema)


def served_neighbours(
    db: Database, cache: CacheTarget, source_type: str, source_id: int, kind: str | None, limit: int
) -> pl.DataFrame:
    """Return an item's neighbours as the API's read module serves them (one type: with the
    function's content fallback; all types: each type's own rows)."""
    reader = CacheReader(db, cache)
    rows = []
    try:
        for asked in [kind] if kind else SIMILARITY_TYPES:
            served = reader.read("get_similar", source_type, source_id, asked, limit)
            rows += [r for r in served.rows if kind or r["similarity_type"] == asked]
    finally:
        reader.close()
    schema = {"similarity_type": pl.String, "target_type": pl.String, "target_id": pl.Int64}
    schema |= {"score": pl.Float64, "rank": pl.Int64}
    return pl.DataFrame([{c: r[c] for c in schema} for r in rows], schema=schema)


def read_recommendations(
    db: Database,
    user_id: int,
    list_name: str | None,
    limit: int,
    cache: CacheTarget | None = None,
) -> pl.DataFrame:
    """Return a user's unexpired published rows (through `cache` when given: as the API's
    read module serves them) with a readable label per item.

    ValueError (one line) when the user does not exist.
    """
    with open_storage(db) as storage:
        storage.check()
        if cache is None:
            frame = storage.read("lookups/user_recommendations", (user_id, list_name, limit))
        else:
            frame = served_lists(db, cache, user_id, list_name, limit)
        if frame.is_empty() and storage.read("lookups/user_ids", (user_id,)).is_empty():
            raise ValueError(f"user {user_id} does not exist in {db.display}")
        labels: dict[tuple[str, int], str] = {}
        for item_type in frame["item_type"].unique().to_list():
            ids = frame.filter(pl.col("item_type") == item_type)["item_id"].drop_nulls().to_list()
            labels |= {(item_type, k): v for k, v in _labels(storage, item_type, ids).items()}
    return frame.with_columns(
        pl.struct("item_type", "item_id", "item_key")
        .map_elements(
            lambda r: labels.get((r["item_type"], r["item_id"])) or r["item_key"] or "",
            return_dtype=pl.Utf8,
        )
        .alias("label")
    )


def describe_reason(reason: str | None) -> str:
    """Return a short human sentence for a reason JSON object."""
    try:
        data = json.loads(reason or "{}")
    except (TypeError, ValueError):
        return ""
    kind = data.get("kind", "")
    if kind == "similar_to":
        return "because you played " + ", ".join(
            map(str, data.get("seed_titles") or data.get("seeds", []))
        )
    if kind == "fallback":
        return "popular" + (
            " in " + ", ".join(data["genres"]) if data.get("genres") else " overall"
        )
    if kind in ("popular_in_genre", "taste_match", "store_taste"):
        return "matches your taste: " + ", ".join(map(str, data.get("genres", [])))
    if kind == "model" and "record_id" in data:
        return f"from record {data['record_id']}, which fits your taste"
    if kind == "affinity":
        return f"from {data.get('events', '?')} interactions"
    return kind


def format_recommendations(frame: pl.DataFrame, user_id: int) -> str:
    """Return the lists as text blocks, one per list, with rank, label, score and reason."""
    if frame.height == 0:
        return f"user {user_id}: no unexpired recommendations (run `rotation run nightly`)"
    out = []
    for (list_name,), rows in frame.group_by(["list_name"], maintain_order=True):
        out.append(f"\n{printable(list_name)}")
        for r in rows.iter_rows(named=True):
            out.append(
                f"  {r['rank']:>2}. {printable(r['label'][:48]):<48} score {r['score']:.3f} "
                f"conf {r['confidence']:.2f}  {printable(describe_reason(r['reason'])[:60])}"
            )
    return f"user {user_id}" + "\n".join(out)


def read_similar(
    db: Database,
    source_type: str,
    source_id: int,
    similarity_type: str | None,
    limit: int,
    cache: CacheTarget | None = None,
) -> pl.DataFrame:
    """Return an item's unexpired published neighbours (through `cache` when given) with labels.

    ValueError (one line) when the item does not exist.
    """
    with open_storage(db) as storage:
        storage.check()
        if cache is None:
            frame = storage.read(
                "lookups/item_similar", (source_type, source_id, similarity_type, limit)
            )
        else:
            frame = served_neighbours(db, cache, source_type, source_id, similarity_type, limit)
        if frame.is_empty() and not _labels(storage, source_type, [source_id]):
            raise ValueError(f"{source_type} {source_id} does not exist in {db.display}")
        labels = _labels(storage, source_type, frame["target_id"].unique().to_list())
    return frame.with_columns(
        pl.col("target_id").replace_strict(labels, default="", return_dtype=pl.Utf8).alias("label")
    )


def format_similar(frame: pl.DataFrame, source_type: str, source_id: int) -> str:
    """Return the neighbours as text, grouped by similarity type."""
    if frame.height == 0:
        return f"{source_type} {source_id}: no published neighbours"
    out = [f"{source_type} {source_id}"]
    for (kind,), rows in frame.group_by(["similarity_type"], maintain_order=True):
        out.append(f"\n{printable(kind)}")
        out += [
            f"  {r['rank']:>2}. {printable(r['label'][:56]):<56} {r['score']:.3f}"
            for r in rows.iter_rows(named=True)
        ]
    return "\n".join(out)
