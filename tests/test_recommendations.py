"""Model scores → recommendation lists: records, in-stock records, tracks, stores, fallbacks,
explanations and assembly."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from transforms.recommend.common import OUTPUT_SCHEMA
from transforms.recommend.explain import explain
from transforms.recommend.fallback import fallback_lists, record_popularity
from transforms.recommend.lists import assemble_recommendations, record_lists, track_list
from transforms.recommend.preferences import genre_affinity
from transforms.recommend.stores import store_list

# records 1-3 by artist A (Jazz), 4 by B (Rock), 5 by C (Jazz+Funk), 6 by D (no genres)
RECORDS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6, 7],
        "artist": ["A", "A", "A", "B", "C", "D", "E"],
        "title": ["a1", "a2", "a3", "b", "c", "d", "e"],
        "genres": [["Jazz"], ["Jazz"], ["Jazz"], ["Rock"], ["Jazz", "Funk"], None, ["Rock"]],
        "styles": [[], [], [], [], [], [], []],
    }
)
STORES = pl.DataFrame(
    {"id": [10, 11, 12, 13], "store_status": ["active", "suspended", "active", "active"]}
)
SALE = "for_sale"
INVENTORY = pl.DataFrame(
    {
        "store_id": [10, 10, 11, 12, 12, 13, 13],
        "record_id": [1, 3, 5, 4, 2, 1, 4],
        "record_status": [SALE, "sold", SALE, SALE, "draft", SALE, SALE],
    }
)
CANDIDATES = pl.DataFrame(
    {
        "user_id": [1, 1, 1, 1, 1, 1, 1, 2, 2, 2],
        "item_id": [1, 2, 3, 4, 5, 6, 7, 4, 5, 6],
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 2.0, 1.0, 1.0],
    }
)
HISTORY = pl.DataFrame({"user_id": [1, 2, 2], "record_id": [6, 4, 1]})
NO_FOLLOWS = pl.DataFrame(schema={"user_id": pl.Int64, "store_id": pl.Int64})


def assert_valid_lists(frame: pl.DataFrame) -> None:
    """Ranks 1..N per (user, list), scores non-increasing by rank, confidence in [0, 1]."""
    assert frame.schema == pl.Schema(OUTPUT_SCHEMA)
    ordered = frame.sort("user_id", "list_name", "rank")
    checks = ordered.group_by("user_id", "list_name").agg(
        (pl.col("rank") == pl.int_range(1, pl.len() + 1)).all().alias("gapless"),
        (pl.col("score").diff().fill_null(0) <= 1e-12).all().alias("descending"),
    )
    assert checks["gapless"].all() and checks["descending"].all()
    assert frame["confidence"].is_between(0.0, 1.0).all()
    assert all(isinstance(json.loads(r), dict) for r in frame["reason"])


def _items(frame: pl.DataFrame, user: int, name: str) -> list[int]:
    return frame.filter(user_id=user, list_name=name).sort("rank")["item_id"].to_list()


# record_lists -----------------------------------------------------------------------------------


def test_record_lists_exclude_history_and_cap_artists():
    out = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES, top_n=4)
    assert_valid_lists(out)
    assert _items(out, 1, "records") == [1, 2, 4, 5]  # 3 = third A record, 6 = history
    assert _items(out, 2, "records") == [5, 6]  # 4 in history; tie 1.0 broken by item_id


def test_record_lists_in_stock_only_for_sale_at_active_stores():
    out = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES)
    # 1 at 10/13, 4 at 12/13; 3 sold, 5 only at a suspended store, 2 only a draft
    assert _items(out, 1, "records_in_stock") == [1, 4]
    assert _items(out, 2, "records_in_stock") == []


def test_record_lists_top_n_and_confidence_formula():
    out = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES, top_n=2)
    user1 = out.filter(user_id=1, list_name="records").sort("rank")
    assert user1["rank"].to_list() == [1, 2]
    expected = [s / 0.9 * (1 - math.exp(-1 / 10)) for s in (0.9, 0.8)]
    assert user1["confidence"].to_list() == pytest.approx(expected)
    assert (out["data_type"] == "recommendation").all() and (out["item_type"] == "record").all()
    assert out["item_key"].is_null().all()


def test_record_lists_duplicates_and_unknown_items():
    extra = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [2, 2, 99], "score": [5.0, 0.1, 9.0]})
    candidates = pl.concat([CANDIDATES, extra])
    out = record_lists(candidates, HISTORY, RECORDS, INVENTORY, STORES)
    assert _items(out, 1, "records")[:2] == [2, 1]  # best duplicate score kept; 99 unknown
    assert (
        out.filter(user_id=1, list_name="records")["item_id"].n_unique()
        == out.filter(user_id=1, list_name="records").height
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 7), st.floats(-1, 1, allow_nan=False)),
        max_size=30,
    ),
    st.lists(st.tuples(st.integers(1, 3), st.integers(1, 7)), max_size=6),
    st.integers(1, 5),
    st.integers(1, 3),
)
def test_record_lists_invariants(cands, hist, top_n, cap):
    candidates = pl.DataFrame(cands, schema=["user_id", "item_id", "score"], orient="row")
    history = pl.DataFrame(hist, schema=["user_id", "record_id"], orient="row")
    out = record_lists(
        candidates, history, RECORDS, INVENTORY, STORES, top_n=top_n, max_per_artist=cap
    )
    assert_valid_lists(out)
    seen = set(history.rows())
    assert not any((u, i) in seen for u, i in out.select("user_id", "item_id").rows())
    artists = out.join(RECORDS.select(item_id="id", artist="artist"), on="item_id")
    per_artist = artists.group_by("user_id", "list_name", "artist").len()
    assert (per_artist["len"] <= cap).all()
    assert (out.group_by("user_id", "list_name").len()["len"] <= top_n).all()


# track_list --------------------------------------------------------------------------------------

TRACKS = pl.DataFrame({"id": [100, 101, 102, 103, 104], "record_id": [1, 2, 3, 4, 4]})
AUDIO = pl.DataFrame(
    {
        "track_id": [100, 101, 102, 103, 103, 104],
        "match_status": [
            "verified",
            "auto_approved",
            "verified",
            "rejected",
            "pending",
            "verified",
        ],
    }
)


def test_track_list_playable_unplayed_and_capped():
    candidates = pl.DataFrame(
        {"user_id": [1] * 5, "item_id": [100, 101, 102, 103, 104], "score": [5.0, 4, 3, 2, 1]}
    )
    played = pl.DataFrame({"user_id": [1], "track_id": [104]})
    out = track_list(candidates, played, TRACKS, AUDIO, RECORDS, max_per_artist=2)
    assert_valid_lists(out)
    # 102 is a third track by artist A, 103 not playable, 104 played
    assert _items(out, 1, "tracks") == [100, 101]
    assert (out["item_type"] == "track").all()
    assert json.loads(out["reason"][0]) == {"kind": "model", "record_id": 1}


# store_list --------------------------------------------------------------------------------------


def _store_setup():
    records = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "artist": ["a", "b", "c", "d", "e"],
            "genres": [["Jazz"], ["Jazz"], ["Rock"], ["Rock"], ["Jazz", "Rock"]],
        }
    )
    stores = pl.DataFrame({"id": [1, 2, 3, 4], "store_status": ["active"] * 3 + ["inactive"]})
    inventory = pl.DataFrame(
        {
            "store_id": [1, 1, 2, 2, 3, 4, 4],
            "record_id": [1, 2, 3, 4, 5, 1, 2],
            "record_status": ["for_sale"] * 7,
        }
    )
    return records, stores, inventory


def test_store_scores_follow_taste_and_exclude_followed():
    records, stores, inventory = _store_setup()
    interactions = pl.DataFrame(
        {"user_id": [1, 1, 2, 3], "item_id": [1, 2, 3, 1], "weight": [1.0, 1.0, 1.0, 1.0]}
    )
    affinity = genre_affinity(interactions, records)
    follows = pl.DataFrame({"user_id": [3], "store_id": [1]})
    out = store_list(affinity, inventory, stores, records, follows, stock_prior=0.0)
    assert_valid_lists(out)
    assert _items(out, 1, "stores") == [1, 3]  # jazz store, then the mixed one; 4 inactive
    assert _items(out, 2, "stores") == [2, 3]
    assert _items(out, 3, "stores") == [3]  # follows the jazz store
    user1 = out.filter(user_id=1).sort("rank")
    assert user1["score"].to_list() == pytest.approx([1.0, 0.5])
    assert json.loads(user1["reason"][0]) == {"kind": "taste_match", "genres": ["Jazz"]}


def test_store_prior_shrinks_small_stores_and_batches_agree():
    records, stores, inventory = _store_setup()
    interactions = pl.DataFrame(
        {"user_id": [1, 1, 2, 4, 4], "item_id": [1, 3, 3, 5, 2], "weight": [2.0, 1, 1, 1, 1]}
    )
    affinity = genre_affinity(interactions, records)
    big = store_list(affinity, inventory, stores, records, NO_FOLLOWS, batch_size=1000)
    small = store_list(affinity, inventory, stores, records, NO_FOLLOWS, batch_size=1)
    assert_frame_equal(big, small)
    # taste 2/3 jazz, 1/3 rock; store 1: 2 jazz of 2 (+10 prior) → 2/3 · 2/12
    first = big.filter(user_id=1, rank=1)
    assert first["item_id"].item() == 1
    assert first["score"].item() == pytest.approx(2 / 3 * 2 / 12)
    reason = json.loads(big.filter(user_id=4, item_id=3)["reason"].item())
    assert reason == {"kind": "taste_match", "genres": ["Jazz", "Rock"]}


def test_store_reason_names_the_three_strongest_genres_ties_by_name():
    genres = ["Soul", "Rock", "Pop", "Jazz"]
    records = pl.DataFrame({"id": [1, 2, 3, 4], "genres": [[g] for g in genres]})
    stores = pl.DataFrame({"id": [1], "store_status": ["active"]})
    inventory = pl.DataFrame(
        {"store_id": [1] * 4, "record_id": [1, 2, 3, 4], "record_status": ["for_sale"] * 4}
    )
    affinity = pl.DataFrame(
        {"user_id": [1] * 4, "genre": genres, "affinity": [1.0, 2.0, 2.0, 3.0], "events": [1] * 4}
    )
    out = store_list(affinity, inventory, stores, records, NO_FOLLOWS)
    reason = json.loads(out["reason"].item())
    assert reason == {"kind": "taste_match", "genres": ["Jazz", "Pop", "Rock"]}


def test_store_list_top_n_and_empty_inputs():
    records, stores, inventory = _store_setup()
    affinity = genre_affinity(
        pl.DataFrame({"user_id": [1], "item_id": [1], "weight": [1.0]}), records
    )
    top1 = store_list(affinity, inventory, stores, records, NO_FOLLOWS, top_n=1)
    assert _items(top1, 1, "stores") == [1]  # 2/12 jazz share beats the mixed store's 1/12
    empty = affinity.clear()
    assert store_list(empty, inventory, stores, records, NO_FOLLOWS).is_empty()
    no_stock = inventory.clear()
    out = store_list(affinity, no_stock, stores, records, NO_FOLLOWS)
    assert out.is_empty() and out.schema == pl.Schema(OUTPUT_SCHEMA)


# explain -----------------------------------------------------------------------------------------

NEIGHBORS = pl.DataFrame(
    {
        "source_id": [1, 3, 4, 2, 7, 6],
        "target_id": [2, 2, 2, 5, 2, 2],
        "score": [0.5, 0.9, 0.8, 0.7, 0.95, 0.6],
    }
)


def test_explain_picks_seeds_by_similarity_times_weight():
    lists = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES).filter(user_id=1)
    interactions = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2],
            "item_id": [1, 3, 4, 7, 2],
            "weight": [4.0, 1.0, 1.0, -1.0, 1.0],
        }
    )
    out = explain(lists, interactions, NEIGHBORS, RECORDS, max_seeds=2)
    reasons = {
        (n, i): json.loads(r) for n, i, r in out.select("list_name", "item_id", "reason").rows()
    }
    # item 2: seeds 1 (0.5·4=2.0), 3 (0.9), 4 (0.8); 7 has a negative weight
    assert reasons[("records", 2)] == {
        "kind": "similar_to",
        "seeds": [1, 3],
        "seed_titles": ["a1", "a3"],
    }
    # item 5: neighbour of 2 only, which user 1 never touched → genres
    assert reasons[("records", 5)] == {"kind": "popular_in_genre", "genres": ["Jazz", "Funk"]}
    assert out.select(pl.exclude("reason")).equals(lists.select(pl.exclude("reason")))


def test_explain_uses_both_directions_and_leaves_other_rows():
    interactions = pl.DataFrame({"user_id": [2], "item_id": [2], "weight": [1.0]})
    lists = pl.concat(
        [
            record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES).filter(user_id=2),
            fallback_lists(pl.DataFrame({"user_id": [2]}), interactions, RECORDS,
                           record_popularity(interactions), HISTORY),
        ]
    )  # fmt: skip
    out = explain(lists, interactions, NEIGHBORS, RECORDS)
    model = out.filter(
        pl.col("reason").cast(pl.String).str.contains("similar_to"), list_name="records"
    )
    seeds = {i: json.loads(r)["seeds"] for i, r in model.select("item_id", "reason").rows()}
    assert seeds == {5: [2], 6: [2]}  # 2 → 5 read forwards, 6 → 2 read backwards
    fallback = out.filter(pl.col("reason").cast(pl.String).str.contains("fallback"))
    assert (
        fallback.height
        == lists.filter(pl.col("reason").cast(pl.String).str.contains("fallback")).height
        > 0
    )


# fallback ----------------------------------------------------------------------------------------


def test_record_popularity_counts_positive_distinct_users():
    interactions = pl.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 3],
            "item_id": [5, 5, 5, 4, 5],
            "weight": [1.0, 2.0, 1.0, 1.0, -1.0],
        }
    )
    pop = record_popularity(interactions)
    assert pop.rows() == [(5, 2, 4.0), (4, 1, 1.0)]


def _fallback(users, interactions, history, **kwargs):
    pop_interactions = pl.DataFrame(
        {
            "user_id": [10, 11, 12, 10, 11, 10, 11, 12, 13, 10],
            "item_id": [1, 1, 1, 2, 2, 3, 4, 4, 4, 7],
            "weight": [1.0] * 10,
        }
    )  # popularity: 1 (3 users), 4 (3, tie → id), 2 (2), 3 (1), 7 (1)
    popularity = record_popularity(pl.concat([pop_interactions, interactions]))
    return fallback_lists(
        pl.DataFrame({"user_id": users}), interactions, RECORDS, popularity, history, **kwargs
    )


def test_fallback_cold_user_with_genres_gets_genre_scope():
    interactions = pl.DataFrame({"user_id": [1], "item_id": [7], "weight": [1.0]})  # Rock
    history = pl.DataFrame({"user_id": [1], "record_id": [7]})
    out = _fallback([1], interactions, history, top_n=3)
    assert_valid_lists(out)
    rows = out.filter(list_name="records").sort("rank")
    assert rows["item_id"].to_list() == [4, 1, 2]  # Rock first (7 in history), then overall
    reasons = [json.loads(r) for r in rows["reason"]]
    assert reasons[0] == {"kind": "fallback", "scope": "genres", "genres": ["Rock"]}
    assert reasons[1] == {"kind": "fallback", "scope": "overall"}
    assert (out["confidence"] == 0.2).all()
    assert rows["score"].to_list() == pytest.approx([1.0, 0.5, 1 / 3])  # (1+p)/2, p/2


def test_fallback_unknown_user_gets_overall_and_warm_user_nothing():
    warm = pl.DataFrame({"user_id": [2, 2, 2], "item_id": [1, 2, 3], "weight": [1.0] * 3})
    empty_history = pl.DataFrame(schema={"user_id": pl.Int64, "record_id": pl.Int64})
    out = _fallback([2, 3], warm, empty_history, top_n=3, max_per_artist=1)
    assert out["user_id"].unique().to_list() == [3]
    assert _items(out, 3, "records") == [1, 4, 7]  # 2 and 3 share artist A with 1
    assert all(json.loads(r)["scope"] == "overall" for r in out["reason"])


def test_fallback_in_stock_list():
    interactions = pl.DataFrame({"user_id": [1], "item_id": [3], "weight": [1.0]})  # Jazz
    history = pl.DataFrame({"user_id": [1], "record_id": [3]})
    out = _fallback([1], interactions, history, inventory=INVENTORY, stores=STORES)
    assert_valid_lists(out)
    assert _items(out, 1, "records_in_stock") == [1, 4]
    assert _items(out, 1, "records")[:2] == [1, 2]  # Jazz: 1 and 2, then 5 (not popular)


# assembly and determinism ------------------------------------------------------------------------


def test_assemble_prefers_earlier_frames_and_sorts():
    interactions = pl.DataFrame({"user_id": [2], "item_id": [2], "weight": [1.0]})
    fallback = fallback_lists(
        pl.DataFrame({"user_id": [2]}), interactions, RECORDS, record_popularity(interactions),
        HISTORY,
    )  # fmt: skip
    model = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES)
    out = assemble_recommendations(fallback, model)
    assert_valid_lists(out)
    assert (
        out.filter(user_id=2, list_name="records")["reason"]
        .cast(pl.String)
        .str.contains("fallback")
        .all()
    )
    assert out.filter(user_id=1).height == model.filter(user_id=1).height
    assert out.select("user_id", "list_name", "rank").is_duplicated().sum() == 0
    assert out.equals(out.sort("user_id", "list_name", "rank"))
    assert assemble_recommendations().is_empty()


def test_everything_deterministic_and_inputs_untouched():
    frames = [CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES, NEIGHBORS]
    before = [f.clone() for f in frames]

    def run():
        lists = record_lists(CANDIDATES, HISTORY, RECORDS, INVENTORY, STORES)
        interactions = CANDIDATES.select("user_id", "item_id", weight="score")
        return explain(lists, interactions, NEIGHBORS, RECORDS)

    assert_frame_equal(run(), run())
    for frame, copy in zip(frames, before, strict=True):
        assert_frame_equal(frame, copy)


# reference implementations (plain Python, tiny inputs) ---------------------------------------


def _greedy(ordered: list[int], artist: dict[int, str], top_n: int, cap: int) -> list[int]:
    picked: list[int] = []
    for item in ordered:
        if sum(artist[p] == artist[item] for p in picked) < cap and len(picked) < top_n:
            picked.append(item)
    return picked


ARTIST = dict(zip(RECORDS["id"], RECORDS["artist"], strict=True))
GENRES = {i: set(g or []) for i, g in zip(RECORDS["id"], RECORDS["genres"].to_list(), strict=True)}


# (candidates, history, top_n, max_per_artist) drawn for the record-list property tests
list_cases = given(
    st.lists(
        st.tuples(st.integers(1, 2), st.integers(1, 8), st.sampled_from([0.1, 0.5, 0.9])),
        max_size=25,
    ),
    st.lists(st.tuples(st.integers(1, 2), st.integers(1, 7)), max_size=5),
    st.integers(1, 5),
    st.integers(1, 2),
)


@settings(max_examples=40, deadline=None)
@list_cases
def test_distinct_pairs_skips_only_a_group_by_of_distinct_candidates(cands, hist, top_n, cap):
    """With each (user, item) once, record_lists and track_list give the same rows whether
    they group the candidates by pair or are told the pairs are distinct."""
    candidates = pl.DataFrame(cands, schema=["user_id", "item_id", "score"], orient="row")
    candidates = candidates.unique(["user_id", "item_id"], keep="first", maintain_order=True)
    history = pl.DataFrame(hist, schema=["user_id", "record_id"], orient="row")
    lists = [
        record_lists(
            candidates,
            history,
            RECORDS,
            INVENTORY,
            STORES,
            top_n=top_n,
            max_per_artist=cap,
            distinct_pairs=distinct,
        )
        for distinct in (False, True)
    ]
    assert_frame_equal(*lists)
    tracks = candidates.with_columns(pl.col("item_id") + 99)  # track ids 100..107
    played = history.select("user_id", (pl.col("record_id") + 99).alias("track_id"))
    lists = [
        track_list(
            tracks,
            played,
            TRACKS,
            AUDIO,
            RECORDS,
            top_n=top_n,
            max_per_artist=cap,
            distinct_pairs=distinct,
        )
        for distinct in (False, True)
    ]
    assert_frame_equal(*lists)


@settings(max_examples=40, deadline=None)
@list_cases
def test_record_lists_match_reference(cands, hist, top_n, cap):
    candidates = pl.DataFrame(cands, schema=["user_id", "item_id", "score"], orient="row")
    history = pl.DataFrame(hist, schema=["user_id", "record_id"], orient="row")
    out = record_lists(
        candidates, history, RECORDS, INVENTORY, STORES, top_n=top_n, max_per_artist=cap
    )
    for user in (1, 2):
        best: dict[int, float] = {}
        for u, i, s in cands:
            if u == user and i in ARTIST and (u, i) not in set(hist):
                best[i] = max(best.get(i, s), s)
        ordered = sorted(best, key=lambda i: (-best[i], i))
        assert _items(out, user, "records") == _greedy(ordered, ARTIST, top_n, cap)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 7)), max_size=25),
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 7)), max_size=8),
    st.integers(1, 4),
    st.integers(1, 2),
    st.integers(1, 4),
)
def test_fallback_matches_reference(pairs, hist, top_n, cap, min_history):
    interactions = pl.DataFrame(
        [(u, i, 1.0) for u, i in pairs], schema=["user_id", "item_id", "weight"], orient="row"
    )
    history = pl.DataFrame(hist, schema=["user_id", "record_id"], orient="row")
    popularity = record_popularity(interactions)
    users = pl.DataFrame({"user_id": list(range(1, 7))})
    out = fallback_lists(
        users, interactions, RECORDS, popularity, history,
        min_history=min_history, top_n=top_n, max_per_artist=cap,
    )  # fmt: skip
    assert_valid_lists(out)
    position = {i: p for p, i in enumerate(popularity["item_id"])}
    for user in range(1, 7):
        mine = {i for u, i in pairs if u == user}
        if len(mine) >= min_history:
            assert _items(out, user, "records") == []
            continue
        known = set().union(*(GENRES[i] for i in mine)) if mine else set()
        seen = {i for u, i in hist if u == user}
        pool = [i for i in position if i not in seen]
        ordered = sorted(pool, key=lambda i: (not (GENRES[i] & known), position[i]))
        assert _items(out, user, "records") == _greedy(ordered, ARTIST, top_n, cap)


def test_empty_candidates_give_empty_typed_frames():
    empty = CANDIDATES.clear()
    out = record_lists(empty, HISTORY, RECORDS, INVENTORY, STORES)
    assert out.is_empty() and out.schema == pl.Schema(OUTPUT_SCHEMA)
    played = pl.DataFrame(schema={"user_id": pl.Int64, "track_id": pl.Int64})
    tracks = track_list(empty, played, TRACKS, AUDIO, RECORDS)
    assert tracks.is_empty() and tracks.schema == pl.Schema(OUTPUT_SCHEMA)
    explained = explain(out, CANDIDATES.clear().rename({"score": "weight"}), NEIGHBORS, RECORDS)
    assert explained.is_empty() and explained.schema == pl.Schema(OUTPUT_SCHEMA)


def test_store_ties_go_to_lower_store_id():
    records, _, _ = _store_setup()
    stores = pl.DataFrame({"id": [7, 5, 6], "store_status": ["active"] * 3})
    inventory = pl.DataFrame(
        {"store_id": [7, 5, 6], "record_id": [1, 2, 1], "record_status": ["for_sale"] * 3}
    )
    affinity = pl.DataFrame({"user_id": [1], "genre": ["Jazz"], "affinity": [1.0], "events": [1]})
    out = store_list(affinity, inventory, stores, records, NO_FOLLOWS, top_n=2)
    assert _items(out, 1, "stores") == [5, 6]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["Jazz", "Rock"]), st.integers(1, 3))),
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 5)), max_size=15),
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 6)), max_size=4),
    st.integers(1, 3),
)
def test_store_list_matches_reference(taste, stock, follows, top_n):
    records, _, _ = _store_setup()
    stores = pl.DataFrame({"id": list(range(1, 7)), "store_status": ["active"] * 6})
    affinity = (
        pl.DataFrame(taste, schema=["user_id", "genre", "affinity"], orient="row")
        .group_by("user_id", "genre")
        .agg(pl.col("affinity").sum().cast(pl.Float64), pl.len().alias("events"))
    )
    inventory = pl.DataFrame(stock, schema=["store_id", "record_id"], orient="row").with_columns(
        record_status=pl.lit("for_sale")
    )
    followed = pl.DataFrame(follows, schema=["user_id", "store_id"], orient="row")
    out = store_list(affinity, inventory, stores, records, followed, top_n=top_n)
    assert_valid_lists(out)
    genres = {1: ["Jazz"], 2: ["Jazz"], 3: ["Rock"], 4: ["Rock"], 5: ["Jazz", "Rock"]}
    stocked = {(s, r) for s, r in stock}
    for user in range(1, 5):
        mine = {g for u, g, _ in taste if u == user}
        weights = {g: sum(a for u, gg, a in taste if u == user and gg == g) for g in mine}
        total = sum(weights.values()) or 1.0  # no taste: every score is 0
        expected = []
        for store in range(1, 7):
            counts = [g for s, r in stocked if s == store for g in genres[r]]
            score = sum(weights.get(g, 0) / total * counts.count(g) for g in set(counts))
            score = score / (len(counts) + 10.0) if counts else 0.0
            if score > 0 and (user, store) not in set(follows):
                expected.append((-round(score, 12), store))
        got = out.filter(user_id=user).sort("rank")
        assert got["item_id"].to_list() == [s for _, s in sorted(expected)[:top_n]]
        for store, reason in zip(got["item_id"], got["reason"], strict=True):
            counts = [g for s, r in stocked if s == store for g in genres[r]]
            parts = sorted((-weights.get(g, 0) * counts.count(g), g) for g in set(counts))
            named = [g for part, g in parts if part < 0][:3]
            assert json.loads(reason) == {"kind": "taste_match", "genres": named}
        assert got["score"].to_list() == pytest.approx([-x for x, _ in sorted(expected)[:top_n]])
