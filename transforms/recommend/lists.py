"""Model scores → recommendation_data rows: the record, in-stock record and track lists.

Each list keeps the model's order (score descending, ties by item_id), drops what the user
already has (history), keeps at most `max_per_artist` items of one artist and ranks the rest
1..N per (user_id, list_name). Confidence follows `transforms.recommend.common` (relative score ×
familiarity with the user). Record rows carry the placeholder reason {"kind":"model"} until
`explain` replaces it with seeds; track rows name the record the track is on.

The store list (`store_list`), explanations (`explain`) and cold-start lists
(`record_popularity`, `fallback_lists`) live in stores.py, explain.py and fallback.py.
"""

from __future__ import annotations

import polars as pl

from transforms.columns import PLAYABLE_MATCH_STATUSES
from transforms.content_features import store_stock
from transforms.recommend.common import (
    MODEL_REASON,
    SORT_KEYS,
    artist_code,
    clean_candidates,
    conform,
    empty_output,
    history_sizes,
    records_frame,
    to_output,
    top_with_artist_cap,
    with_model_confidence,
)


def _exclude(pool: pl.DataFrame, history: pl.DataFrame, item_column: str) -> pl.DataFrame:
    seen = history.select(
        pl.col("user_id").cast(pl.Int64), pl.col(item_column).cast(pl.Int64).alias("item_id")
    )
    return pool.join(seen, on=["user_id", "item_id"], how="anti")


def _model_list(  # rows sorted by (user_id, rank)
    pool: pl.DataFrame,
    sizes: pl.DataFrame,
    reason: pl.Expr,
    list_name: str,
    top_n: int,
    max_per_artist: int,
) -> pl.DataFrame:
    ranked = top_with_artist_cap(pool, top_n=top_n, max_per_artist=max_per_artist)
    rows = with_model_confidence(ranked, sizes).with_columns(reason.alias("reason"))
    return to_output(rows, list_name)


def record_lists(
    candidates: pl.DataFrame,
    history: pl.DataFrame,
    records: pl.DataFrame,
    inventory: pl.DataFrame,
    stores: pl.DataFrame,
    *,
    top_n: int = 20,
    max_per_artist: int = 2,
    distinct_pairs: bool = False,
) -> pl.DataFrame:
    """Return the 'records' and 'records_in_stock' output rows built from model candidates.

    `candidates` (user_id, item_id, score); `history` (user_id, record_id) of records the user
    played, favourited or collected, all excluded. 'records_in_stock' keeps only records for
    sale at an active store. Candidates for unknown records are dropped. `distinct_pairs`:
    as in `clean_candidates` (each (user_id, item_id) once already).
    """
    pool = clean_candidates(candidates, distinct_pairs).join(
        records_frame(records, artist_code()), on="item_id", how="inner"
    )
    pool = _exclude(pool, history, "record_id")
    stocked_ids = store_stock(inventory, stores).select(pl.col("record_id").alias("item_id"))
    sizes = history_sizes(history, "record_id")
    reason = pl.lit(MODEL_REASON)
    general = _model_list(pool, sizes, reason, "records", top_n, max_per_artist)
    stocked = pool.join(stocked_ids.unique(), on="item_id", how="semi")
    in_stock = _model_list(stocked, sizes, reason, "records_in_stock", top_n, max_per_artist)
    # both lists are sorted by (user_id, rank) and in list_name order: a stable sort on
    # user_id gives the SORT_KEYS order without comparing strings
    return pl.concat([general, in_stock]).sort("user_id", maintain_order=True)


def _playable(audio_matches: pl.DataFrame) -> pl.DataFrame:
    playable = audio_matches.filter(pl.col("match_status").is_in(PLAYABLE_MATCH_STATUSES))
    return playable.select(pl.col("track_id").cast(pl.Int64).alias("item_id")).unique()


def _track_reason() -> pl.Expr:
    return pl.struct(kind=pl.lit("model"), record_id=pl.col("record_id")).struct.json_encode()


def track_list(
    track_candidates: pl.DataFrame,
    track_history: pl.DataFrame,
    tracks: pl.DataFrame,
    audio_matches: pl.DataFrame,
    records: pl.DataFrame,
    *,
    top_n: int = 20,
    max_per_artist: int = 2,
    distinct_pairs: bool = False,
) -> pl.DataFrame:
    """Return the 'tracks' output rows: playable tracks the user has not played, by score.

    A track is playable with an audio_matches row whose match_status is in
    PLAYABLE_MATCH_STATUSES; `track_history` (user_id, track_id) lists played tracks; the
    artist cap uses the artist of the track's record. Reason: {"kind":"model","record_id":…}.
    `distinct_pairs`: as in `clean_candidates` (each (user_id, item_id) once already).
    """
    track_records = tracks.select(
        pl.col("id").cast(pl.Int64).alias("item_id"), pl.col("record_id").cast(pl.Int64)
    )
    artists = records_frame(records, artist_code()).rename({"item_id": "record_id"})
    pool = (
        clean_candidates(track_candidates, distinct_pairs)
        .join(_playable(audio_matches), on="item_id", how="semi")
        .join(track_records, on="item_id", how="inner")
        .join(artists, on="record_id", how="inner")
    )
    pool = _exclude(pool, track_history, "track_id")
    sizes = history_sizes(track_history, "track_id")
    # one list, already sorted by (user_id, rank): in SORT_KEYS order
    return _model_list(pool, sizes, _track_reason(), "tracks", top_n, max_per_artist)


def _unclaimed(frame: pl.DataFrame, earlier: list[pl.DataFrame]) -> pl.DataFrame:
    """Return the rows of `frame` whose (user_id, list_name) no frame in `earlier` holds
    (`frame` itself, not a copy, when there are none)."""
    on = ["user_id", "list_name"]
    names = pl.col("list_name").is_in(
        frame.get_column("list_name").unique().implode(), nulls_equal=True
    )
    claimed = [pl.DataFrame(schema=frame.select(on).schema)]
    claimed += [e.filter(names).select(on) for e in earlier]
    taken = pl.concat(claimed).unique()
    if frame.select(on).join(taken, on=on, how="semi", nulls_equal=True).is_empty():
        return frame
    return frame.join(taken, on=on, how="anti", nulls_equal=True, maintain_order="left")


def assemble_recommendations(*lists: pl.DataFrame) -> pl.DataFrame:
    """Return all output rows of `lists` in one frame, typed, sorted by (user, list, rank).

    When several frames hold the same (user_id, list_name), the earliest frame wins and the
    later ones' rows for it are dropped (so pass cold-start fallbacks before model lists to
    prefer them), keeping (user_id, list_name, rank) unique.
    """
    frames = [conform(frame) for frame in lists]
    if not frames:
        return empty_output()
    kept = pl.concat([_unclaimed(frame, frames[:i]) for i, frame in enumerate(frames)])
    return kept.sort(SORT_KEYS, maintain_order=True)  # unique keys; stable all the same
