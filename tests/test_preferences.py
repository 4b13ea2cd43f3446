"""Genre affinity and the genres / styles / artists preference lists."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.recommend.common import OUTPUT_SCHEMA
from transforms.recommend.preferences import genre_affinity, preference_lists

RECORDS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "artist": ["Miles Davis", "Miles Davis", "James Brown", "Ramones"],
        "title": ["a", "b", "c", "d"],
        "genres": [["Jazz"], ["Jazz", "Funk"], ["Funk"], ["Rock"]],
        "styles": [["Modal"], ["Fusion"], ["Funk"], None],
    }
)
INTERACTIONS = pl.DataFrame(
    {
        "user_id": [1, 1, 1, 1, 2, 2],
        "item_id": [1, 2, 3, 4, 4, 1],
        "weight": [3.0, 1.0, 2.0, -1.0, 2.0, 2.0],
    }
)


def test_genre_affinity_positive_weights_multi_genre_counts_fully():
    out = genre_affinity(INTERACTIONS, RECORDS)
    user1 = {r["genre"]: (r["affinity"], r["events"]) for r in out.filter(user_id=1).to_dicts()}
    # record 2 (Jazz+Funk) counts fully in both; record 4 (negative weight) ignored
    assert user1 == {"Jazz": (4.0, 2), "Funk": (3.0, 2)}
    assert out.columns == ["user_id", "genre", "affinity", "events"]
    assert out.filter(user_id=1)["genre"].to_list() == ["Jazz", "Funk"]


def test_genre_affinity_ties_sorted_by_genre():
    out = genre_affinity(INTERACTIONS, RECORDS).filter(user_id=2)
    assert out["genre"].to_list() == ["Jazz", "Rock"]


def _list(frame: pl.DataFrame, user: int, name: str) -> pl.DataFrame:
    return frame.filter(user_id=user, list_name=name).sort("rank")


def test_preference_lists_rank_normalise_and_confidence():
    out = preference_lists(INTERACTIONS, RECORDS)
    genres = _list(out, 1, "genres")
    assert genres["item_key"].to_list() == ["Jazz", "Funk"]
    assert genres["score"].to_list() == pytest.approx([1.0, 0.75])
    assert genres["rank"].to_list() == [1, 2]
    assert genres["confidence"].to_list() == pytest.approx([1 - math.exp(-2 / 5)] * 2)
    artists = _list(out, 1, "artists")
    assert artists["item_key"].to_list() == ["Miles Davis", "James Brown"]
    assert artists["score"].to_list() == pytest.approx([1.0, 0.5])
    assert json.loads(artists["reason"][0]) == {"kind": "affinity", "events": 2, "records": 2}
    styles = _list(out, 1, "styles")
    assert styles["item_key"].to_list() == ["Modal", "Funk", "Fusion"]


def test_preference_rows_shape():
    out = preference_lists(INTERACTIONS, RECORDS)
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)
    assert set(out["list_name"]) == {"genres", "styles", "artists"}
    assert (out["data_type"] == "preference").all()
    assert out["item_id"].is_null().all()
    assert out["item_key"].is_not_null().all()
    expected_type = {"genres": "genre", "styles": "style", "artists": "artist"}
    assert all(expected_type[n] == t for n, t in out.select("list_name", "item_type").rows())
    assert out["confidence"].is_between(0, 1).all()


def test_preference_ranks_gapless_and_top_n():
    out = preference_lists(INTERACTIONS, RECORDS, top_n=1)
    counts = out.group_by("user_id", "list_name").agg(pl.len(), pl.col("rank").max())
    assert (counts["len"] == 1).all() and (counts["rank"] == 1).all()
    assert _list(out, 2, "genres")["item_key"].to_list() == ["Jazz"]  # tie → key order


def test_confidence_grows_with_events():
    many = pl.DataFrame({"user_id": [1] * 6, "item_id": [1] * 5 + [4], "weight": [1.0] * 6})
    out = _list(preference_lists(many, RECORDS), 1, "genres")
    assert out["item_key"].to_list() == ["Jazz", "Rock"]
    jazz, rock = out["confidence"].to_list()
    assert jazz > rock
    assert jazz == pytest.approx(1 - math.exp(-1))
    # five rows of one record: five events, one distinct record, their weights summed
    assert json.loads(out["reason"][0]) == {"kind": "affinity", "events": 5, "records": 1}
    assert out["score"].to_list() == pytest.approx([1.0, 0.2])


def test_records_outside_the_catalogue_and_null_ids_count_nowhere():
    stray = pl.DataFrame(
        {"user_id": [1, 1, None, 3], "item_id": [1, 99, 2, None], "weight": [1.0, 5.0, 4.0, 2.0]}
    )
    out = preference_lists(stray, RECORDS)
    assert out["user_id"].unique().to_list() == [1]
    assert _list(out, 1, "genres")["item_key"].to_list() == ["Jazz"]
    reason = json.loads(_list(out, 1, "artists")["reason"][0])
    assert reason == {"kind": "affinity", "events": 1, "records": 1}
    affinity = genre_affinity(stray, RECORDS)
    assert affinity.rows() == [(1, "Jazz", 1.0, 1)]


def test_user_without_positive_weights_gets_nothing():
    negative = pl.DataFrame({"user_id": [9], "item_id": [1], "weight": [-2.0]})
    assert preference_lists(negative, RECORDS).is_empty()


def test_preferences_deterministic_and_inputs_untouched():
    before_i, before_r = INTERACTIONS.clone(), RECORDS.clone()
    assert_frame_equal(
        preference_lists(INTERACTIONS, RECORDS), preference_lists(INTERACTIONS, RECORDS)
    )
    assert_frame_equal(INTERACTIONS, before_i)
    assert_frame_equal(RECORDS, before_r)
