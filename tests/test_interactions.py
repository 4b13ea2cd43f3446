"""Interactions: hand-computed weights with time decay; histories of seen items."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.interactions import (
    OUTPUT_SCHEMA,
    InteractionParams,
    record_interactions,
    track_interactions,
    user_history,
    user_track_history,
)

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
UTC_TS = pl.Datetime("us", "UTC")


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


PLAYS = pl.DataFrame(
    [
        (1, 1, 10, "complete", ago(0), 100.0),  # record 100: 1.0
        (2, 1, 11, "skip", ago(30), 80.0),  # record 100: long play 0.6, half-life old → 0.3
        (3, 1, 12, "skip", ago(0), 10.0),  # record 200: early skip -0.3
        (4, 1, 12, "play", ago(0), 0.0),  # not an event
        (5, 2, 10, "pause", ago(60), 60.0),  # record 100: 0.6 * 0.25 = 0.15 (60 inclusive)
        (6, 2, 11, "pause", ago(0), 10.0),  # an early pause is not an event
        (7, 2, 11, "skip", ago(0), 45.0),  # a mid-way skip is not an event
        (8, 2, 12, "skip", ago(-5), None),  # future (age 0), null completion = 0: -0.3
        (9, 3, 12, "seek", ago(0), 50.0),  # not an event
        (10, 4, 10, "skip", ago(0), 0.0),  # -0.3 alone: dropped (≤ min_weight)
    ],
    schema={
        "id": pl.Int64, "user_id": pl.Int64, "track_id": pl.Int64, "action": pl.String,
        "played_at": UTC_TS, "completion_percentage": pl.Float64,
    },
    orient="row",
).with_columns(duration_played_ms=pl.lit(1000, pl.Int64), session_id=pl.lit("s"))  # fmt: skip
FAVORITES = pl.DataFrame(
    [
        (1, 2, "record", 200, ago(0)),  # 3.0
        (2, 3, "track", 12, ago(30)),  # record 200 / track 12: 1.5
        (3, 3, "store", 1, ago(0)),  # not an item here
    ],
    schema={
        "id": pl.Int64, "user_id": pl.Int64, "favoritable_type": pl.String,
        "favoritable_id": pl.Int64, "created_at": UTC_TS,
    },
    orient="row",
)  # fmt: skip
TRACKS = pl.DataFrame({"id": [10, 11, 12], "record_id": [100, 100, 200], "title": ["a", "b", "c"]})
COLLECTIONS = pl.DataFrame({"id": [1, 2], "user_id": [1, 2], "name": ["x", "y"]})
COLLECTION_ITEMS = pl.DataFrame(
    {"id": [1], "collection_id": [1], "record_id": [200], "added_at": [ago(15)]},
    schema_overrides={"added_at": UTC_TS},
)  # 4.0 * 0.5 ** 0.5
USAGE = pl.DataFrame(
    [
        (1, 2, "page_view", "record", 100, ago(0)),  # 0.2
        (2, None, "page_view", "record", 100, ago(0)),  # anonymous: ignored
        (3, 2, "page_view", "store", 100, ago(0)),  # not a record
        (4, 2, "search", "record", 100, ago(0)),  # not a page view
    ],
    schema={
        "id": pl.Int64, "user_id": pl.Int64, "event_type": pl.String, "entity_type": pl.String,
        "entity_id": pl.Int64, "occurred_at": UTC_TS,
    },
    orient="row",
)  # fmt: skip


def records(**kw) -> pl.DataFrame:
    return record_interactions(
        PLAYS, USAGE, FAVORITES, COLLECTION_ITEMS, TRACKS, COLLECTIONS, as_of=AS_OF, **kw
    )


def expected(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA, orient="row")


def test_record_interactions_hand_computed():
    assert_frame_equal(
        records(),
        expected(
            [
                (1, 100, 1.0 + 0.3, 2, ago(0)),
                (1, 200, -0.3 + 4.0 * math.sqrt(0.5), 2, ago(0)),
                (2, 100, 0.15 + 0.2, 2, ago(0)),
                (2, 200, 3.0 - 0.3, 2, ago(-5)),
                (3, 200, 1.5, 1, ago(30)),
            ]
        ),
        abs_tol=1e-12,
    )


def test_track_interactions_hand_computed():
    result = track_interactions(PLAYS, FAVORITES, as_of=AS_OF)
    assert_frame_equal(
        result,
        expected(
            [
                (1, 10, 1.0, 1, ago(0)),
                (1, 11, 0.3, 1, ago(30)),
                (2, 10, 0.15, 1, ago(60)),
                (3, 12, 1.5, 1, ago(30)),
            ]
        ),
        abs_tol=1e-12,
    )


def test_negative_pairs_kept_with_a_lower_min_weight():
    result = track_interactions(
        PLAYS, FAVORITES, as_of=AS_OF, params=InteractionParams(min_weight=-1)
    )
    negatives = result.filter(pl.col("weight") < 0).select("user_id", "item_id", "weight")
    assert negatives.rows() == [(1, 12, -0.3), (2, 12, -0.3), (4, 10, -0.3)]


def test_params_change_the_weights():
    params = InteractionParams(
        complete_weight=2.0, long_play_weight=1.0, half_life_days=60.0, collection_weight=0.0,
        favorite_weight=10.0, early_skip_weight=0.0, page_view_weight=1.0,
    )  # fmt: skip
    result = records(params=params)
    weights = {(u, i): w for u, i, w in result.select("user_id", "item_id", "weight").rows()}
    assert weights[(1, 100)] == pytest.approx(2.0 + 1.0 * 0.5**0.5)
    assert weights[(2, 100)] == pytest.approx(0.5 + 1.0)
    assert weights[(3, 200)] == pytest.approx(10.0 * 0.5**0.5)
    assert (1, 200) not in weights  # collection and early skip weigh 0 now: sum ≤ min_weight
    with pytest.raises(ValueError, match="half_life_days"):
        InteractionParams(half_life_days=0)


def test_an_event_one_half_life_old_counts_half():
    one = PLAYS.filter(pl.col("id") == 1)
    for days, factor in [(0, 1.0), (30, 0.5), (60, 0.25), (15, math.sqrt(0.5)), (-10, 1.0)]:
        result = track_interactions(one, FAVORITES.clear(), as_of=AS_OF + timedelta(days=days))
        assert result["weight"].to_list() == [pytest.approx(factor)]


def test_naive_as_of_and_drifting_dtypes():
    plays = PLAYS.with_columns(
        pl.col("user_id", "track_id").cast(pl.Int32),
        pl.col("played_at").dt.replace_time_zone(None),
        pl.col("completion_percentage").cast(pl.Decimal(5, 2)),
    )
    tracks = TRACKS.cast({"id": pl.Int32, "record_id": pl.Int32})
    result = record_interactions(
        plays, USAGE, FAVORITES, COLLECTION_ITEMS, tracks, COLLECTIONS,
        as_of=AS_OF.replace(tzinfo=None),
    )  # fmt: skip
    assert_frame_equal(result, records())


def test_empty_inputs_give_an_empty_typed_frame():
    empty = record_interactions(
        PLAYS.clear(), USAGE.clear(), FAVORITES.clear(), COLLECTION_ITEMS.clear(),
        TRACKS.clear(), COLLECTIONS.clear(), as_of=AS_OF,
    )  # fmt: skip
    assert empty.is_empty()
    assert empty.schema == pl.Schema(OUTPUT_SCHEMA)


def test_user_history_and_user_track_history():
    history = user_history(PLAYS, FAVORITES, COLLECTIONS, COLLECTION_ITEMS, TRACKS)
    assert history.rows() == [(1, 100), (1, 200), (2, 100), (2, 200), (3, 200), (4, 100)]
    assert history.columns == ["user_id", "record_id"]
    only_collected = user_history(
        PLAYS.clear(), FAVORITES.clear(), COLLECTIONS, COLLECTION_ITEMS, TRACKS
    )
    assert only_collected.rows() == [(1, 200)]
    tracks = user_track_history(PLAYS)
    assert tracks.rows() == [
        (1, 10), (1, 11), (1, 12), (2, 10), (2, 11), (2, 12), (3, 12), (4, 10),
    ]  # fmt: skip
    assert tracks.columns == ["user_id", "track_id"]


def test_inputs_are_not_mutated():
    frames = [PLAYS, USAGE, FAVORITES, COLLECTION_ITEMS, TRACKS, COLLECTIONS]
    before = [f.clone() for f in frames]
    records()
    track_interactions(PLAYS, FAVORITES, as_of=AS_OF)
    user_history(PLAYS, FAVORITES, COLLECTIONS, COLLECTION_ITEMS, TRACKS)
    user_track_history(PLAYS)
    for frame, copy in zip(frames, before, strict=True):
        assert_frame_equal(frame, copy)


def test_genre_matrix_rows_follow_the_matrix_columns_and_genres_count_once():
    import numpy as np

    from flows.stages.interactions import genre_matrix
    from models.matrix import InteractionMatrix

    matrix = InteractionMatrix.from_arrays([1, 1, 2], [30, 10, 20])  # columns: items 10, 20, 30
    items = pl.DataFrame(
        {
            "id": [30, 10, 99, 20],  # 99 is not in the matrix
            "genres": [["rock", "jazz", "rock"], ["jazz", None], ["pop"], None],
        },
        schema={"id": pl.Int64, "genres": pl.List(pl.Utf8)},
    )
    F = genre_matrix(items, matrix)
    assert F.shape == (3, 3)  # jazz, pop, rock: sorted names, pop on no matrix item
    np.testing.assert_array_equal(F.toarray(), [[1, 0, 0], [0, 0, 0], [1, 0, 1]])
