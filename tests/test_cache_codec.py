"""The cache's encoding (transforms/cache_codec.py) and URL (flows/storage/cache/target.py),
without Redis: values decode to the rows they were made of, and a password never shows."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import polars as pl
import pytest

from flows.storage.cache.target import CacheUrlError, check_cache_backend, parse_cache_url
from flows.storage.cache.writer import group_slices
from flows.storage.database import parse_database, redact
from transforms.cache_codec import (
    decode_preferences,
    decode_recommendations,
    decode_similar,
    merged_meta,
    popularity_fallback,
    popularity_value,
    recommendation_values,
    run_meta,
    similarity_values,
)
from transforms.columns import RECOMMENDATION_COLUMNS

EXPIRES = datetime(2026, 12, 8, 3, 4, 5, 678901, tzinfo=UTC)
AWKWARD = 'say "hi"\\ \x01 tab\t é ✓'
SCORES = [1 / 3, 2.0**-1074, 0.1 + 0.2, 1e300, 0.0]


def recommendation_rows() -> pl.DataFrame:
    """Return published rows covering every row shape the encoding has."""
    rows = [
        (7, "recommendation", "records", "record", 11, None, SCORES[0], 0.5, 1, '{"kind": "m"}'),
        (7, "recommendation", "records", "record", 12, None, SCORES[1], 0.25, 2, None),
        (7, "preference", "genres", "genre", None, AWKWARD, SCORES[2], 1.0, 1, "{}"),
        (7, "preference", "genres", "genre", 5, "both", SCORES[3], 0.0, 2, "[]"),
        (7, "recommendation", "tracks", "record", 13, None, SCORES[4], 0.1, 1, '{"a": [1]}'),
        (8, "preference", "artists", "artist", None, "Ünïcode", 0.5, 0.5, 101, "{}"),
    ]
    columns = list(RECOMMENDATION_COLUMNS[:10])  # user_id … reason
    frame = pl.DataFrame(rows, schema=columns, orient="row")
    return frame.with_columns(
        pl.lit("v1").alias("model_version"),
        pl.lit(EXPIRES).dt.replace_time_zone("UTC").alias("expires_at"),
    )


def test_recommendation_values_decode_to_their_rows():
    frame = recommendation_rows()
    meta = json.loads(json.dumps(run_meta(frame)))  # as stored
    values = recommendation_values(frame)
    decoded = {
        (u, name): decode_recommendations(v, name, meta, 100) for u, name, v in values.iter_rows()
    }
    for (user, name), rows in decoded.items():
        want = frame.filter((pl.col("user_id") == user) & (pl.col("list_name") == name))
        assert len(rows) == want.height
        for got, row in zip(rows, want.sort("rank").iter_rows(named=True), strict=True):
            for column in ("rank", "item_type", "item_id", "item_key", "score", "confidence"):
                assert got[column] == row[column], column
            assert got["reason"] == (json.loads(row["reason"]) if row["reason"] else None)
            assert got["model_version"] == "v1" and got["expires_at"] == EXPIRES
            assert got["is_fallback"] is False
    assert math.copysign(1, decoded[(7, "records")][1]["score"]) == 1  # the smallest double


def test_a_limit_cuts_the_decoded_list():
    frame = recommendation_rows()
    value = recommendation_values(frame).filter(pl.col("list_name") == "records")["value"][0]
    meta = run_meta(frame)
    assert [r["rank"] for r in decode_recommendations(value, "records", meta, 1)] == [1]
    assert decode_recommendations(value, "records", meta, 0) == []


def test_preferences_decode_by_list_then_rank_and_cap_the_rank():
    values = recommendation_values(recommendation_rows())
    mine = {name: v for u, name, v in values.iter_rows() if name in ("genres", "artists")}
    rows = decode_preferences(mine | {"styles": None}, cap=100)
    assert [(r["list_name"], r["rank"]) for r in rows] == [("genres", 1), ("genres", 2)]
    assert rows[0]["item_key"] == AWKWARD and rows[1]["item_key"] == "both"


def test_similarity_values_decode_with_their_target_type():
    frame = pl.DataFrame(
        {
            "source_type": ["record", "record", "store"],
            "source_id": [1, 1, 2],
            "target_type": ["record", "track", "store"],
            "target_id": [5, 6, 7],
            "similarity_type": ["hybrid", "hybrid", "content"],
            "score": SCORES[:3],
            "rank": [2, 1, 1],
        }
    )
    values = similarity_values(frame)
    hybrid = decode_similar(values["value"][0], "record", "hybrid", 20)
    assert [(r["rank"], r["target_type"], r["target_id"]) for r in hybrid] == [
        (1, "track", 6),
        (2, "record", 5),
    ]
    assert hybrid[1]["score"] == SCORES[0]
    store = decode_similar(values["value"][1], "store", "content", 20)
    assert store == [
        {
            "rank": 1,
            "target_type": "store",
            "target_id": 7,
            "score": SCORES[2],
            "similarity_type": "content",
        }
    ]


def test_popularity_fallback_follows_the_functions_rules():
    frame = pl.DataFrame(
        {
            "record_id": [1, 2, 3, 4],
            "plays": [10.0, 40.0, 30.0, 20.0],
            "genres": [["Jazz"], ["Rock"], ["Jazz", "Blues"], []],
            "in_stock": [True, False, True, True],
        }
    )
    popular = json.loads(popularity_value(frame))
    rows = popularity_fallback(popular, {3}, ["Blues", "Jazz"], "records", 3)
    # record 1 shares a genre (first), then the others by plays; 3 is the user's own
    assert [r["item_id"] for r in rows] == [1, 2, 4]
    assert rows[0]["reason"] == {"kind": "fallback", "scope": "genres", "genres": ["Jazz"]}
    assert rows[1]["reason"] == {"kind": "fallback", "scope": "overall"}
    assert rows[0]["score"] == (1 + 10.0 / 40.0) / 2.0 and rows[1]["score"] == 0.5
    in_stock = popularity_fallback(popular, set(), [], "records_in_stock", 10)
    assert [r["item_id"] for r in in_stock] == [3, 4, 1]
    assert all(r["is_fallback"] and r["confidence"] == 0.2 for r in in_stock)


def test_group_slices_never_split_a_user():
    frame = pl.DataFrame({"user_id": [3, 3, 3, 1, 1, 2, 2, 2, 2], "rank": range(9)})
    parts = list(group_slices(frame, ["user_id"], 2))
    assert sum(p.height for p in parts) == frame.height
    seen = [set(p["user_id"]) for p in parts]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])


def test_a_cache_url_password_never_shows():
    target = parse_cache_url("redis://:p%40ss%23word@cache.internal:6380/2?prefix=team-a")
    assert target.prefix == "team-a" and target.has_password
    assert "p%40ss" not in target.display and "p@ss" not in target.display
    assert "***" in target.display and "prefix" not in target.url
    assert redact("auth p@ss#word failed") == "auth *** failed"
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    "url",
    [
        "http://cache:6379",
        "redis://:pw@/0",
        "redis://:secret-x@host:notaport/0",
        "redis://h?prefix=a b",
    ],
)
def test_a_bad_cache_url_is_one_line_without_its_password(url):
    with pytest.raises(CacheUrlError) as error:
        parse_cache_url(url)
    message = str(error.value)
    assert "\n" not in message and "secret-x" not in message


def test_a_cache_needs_a_postgres_database(tmp_path):
    duck = parse_database(f"duckdb:{tmp_path / 'x.duckdb'}")
    with pytest.raises(CacheUrlError, match="needs a PostgreSQL database"):
        check_cache_backend(parse_cache_url("redis://127.0.0.1:6379/0"), duck)
    check_cache_backend(None, duck)  # no cache: nothing asked


def test_the_meta_of_rows_in_parts_is_the_whole_frames():
    frame = recommendation_rows()
    parts = [frame.slice(0, 2), frame.slice(2, 0), frame.slice(2)]
    assert merged_meta([run_meta(part) for part in parts]) == run_meta(frame)
    other = frame.slice(2).with_columns(pl.lit("v2").alias("model_version"))
    with pytest.raises(ValueError, match="more than one model_version"):
        merged_meta([run_meta(frame.slice(0, 2)), run_meta(other)])
