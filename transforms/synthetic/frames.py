"""Seeded, vectorised synthetic Rotation data: one polars frame per input table.

`generate_frames(users, tracks, days, seed, end)` returns a frame for every input table of
sql/duckdb/schema.sql, with that table's columns in order, explicit ids 1..n, and rows that
satisfy the Postgres constraints (foreign keys, uniques, checks, enum values from
transforms/columns.py). Same arguments, same frames; nothing reads the clock.

Ratios (documented so analysts know what the numbers mean):

- catalogue: records = tracks / 10 (each record 4+ tracks, 10 on average, positions A1..B5);
  artists = records / 4, all of an artist's records in one genre; labels = records / 20;
  12 Discogs genres with fixed popularity (Rock 22 %, Electronic 20 %, ...), 20 % of records
  carry a second genre, 1-3 styles from the primary genre's style list; release_year
  1955-2025 skewed to recent years.
- stores = records / 100 (min 3), 85 % active; inventory ~ 1.5 listings per record (one per
  store and record, store sizes lognormal), 80 % for_sale.
- audio: 70 % of tracks have one match, 86 % of those verified or auto_approved (playable);
  only playable tracks are played.
- users: 15 % created inside the window; activity lognormal(σ=1.2) and scaled by the share of
  the window the user existed; taste = Dirichlet-like mix over 1-3 favourite genres; 15 % of
  listens explore another genre (`explore_share`, the taste strength: 0.15 by default, higher
  is weaker; it applies to every draw of a record by taste: plays, usage, favourites,
  collections); record popularity within a genre lognormal(σ=1.6) (top 10 %
  of records take about half of the plays).
- play_history: default plays = users × days × 10 / 9 rows (2000 users, 90 days → 200k rows);
  sessions of ~6 listens with one device (80 % the user's usual one) and a source
  (~12 % 'recommendation'); each listen is a 'play' row (duration 0, completion 0), 0.12
  extra 'pause'/'seek' rows on average and a terminal row: 'complete' (completion 90-100,
  duration = completion × track length) with probability 0.75 in taste and 0.30 out of it,
  else 'skip' (completion 1-30). Timestamps lie in [end - days, end) UTC (midnight of `end`,
  exclusive) and after the user's created_at; ids follow played_at.
- usage_metrics: default events = plays / 2; one 'signup' per new user (up to 5 %), 15 %
  anonymous (user_id null: page_view, search, share, listing_click only), 55 % page views
  (records 65 %, stores 20 %, ...), properties as JSON text; ids follow occurred_at.
- favorites ~ 6 per user (heavy-tailed by activity: 75 % records, 15 % tracks, 10 % stores),
  unique per user; 30 % of users own 1-3 collections of ~8 records (unique per collection);
  40 % follow 1-5 stores; feedback = users / 50; five settings rows.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from transforms.schemas import INPUT_SCHEMAS
from transforms.synthetic.catalog import (
    audio_matches_frame,
    build_catalog,
    catalog_sizes,
    records_frame,
    tracks_frame,
)
from transforms.synthetic.common import US_PER_DAY
from transforms.synthetic.events import usage_metrics_frame
from transforms.synthetic.people import (
    EXPLORE_SHARE,
    build_people,
    store_managers_frame,
    users_frame,
)
from transforms.synthetic.plays import play_history_frame
from transforms.synthetic.social import (
    collections_frames,
    favorites_frame,
    feedback_frame,
    follows_frame,
    settings_frame,
)
from transforms.synthetic.stores import inventory_frame, stores_frame

PLAYS_PER_USER_DAY = 10 / 9
EVENTS_PER_PLAY = 0.5


def default_counts(users: int, days: int) -> tuple[int, int]:
    """Return the default (play_history rows, usage_metrics rows) for users × days."""
    plays = round(users * days * PLAYS_PER_USER_DAY)
    return plays, round(plays * EVENTS_PER_PLAY)


def window_us(end: dt.date, days: int) -> tuple[int, int]:
    """Return [start, end) of the generated window in microseconds since the epoch (UTC)."""
    end_us = int(dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC).timestamp()) * 10**6
    return end_us - days * US_PER_DAY, end_us


def _last_seen(users: pl.DataFrame, plays: pl.DataFrame) -> pl.DataFrame:
    """Return users with last_seen_at / updated_at set from their latest play (else created)."""
    last = plays.group_by("user_id").agg(pl.col("played_at").max().alias("_last"))
    out = users.join(last, left_on="id", right_on="user_id", how="left", maintain_order="left")
    return out.with_columns(
        last_seen_at=pl.col("_last"),
        updated_at=pl.coalesce("_last", "created_at"),
    ).drop("_last")


def generate_frames(
    users: int,
    tracks: int,
    days: int,
    seed: int,
    end: dt.date,
    plays: int | None = None,
    events: int | None = None,
    explore_share: float = EXPLORE_SHARE,
) -> dict[str, pl.DataFrame]:
    """Return {table: frame} for every input table, in foreign-key order.

    `explore_share` (0-1): the share of listens and other taste draws outside the user's
    favourite genres; its default gives the same frames as before it existed.
    """
    if users < 1 or tracks < 1 or days < 1:
        raise ValueError("users, tracks and days must be positive")
    if not 0.0 <= explore_share <= 1.0:
        raise ValueError(f"explore_share must be within 0-1, not {explore_share}")
    default_plays, default_events = default_counts(users, days)
    plays = default_plays if plays is None else plays
    events = default_events if events is None else events
    window = window_us(end, days)
    n_records, n_stores = catalog_sizes(tracks)
    records, genre = records_frame(seed, n_records, window[1])
    track_frame = tracks_frame(seed, tracks, records)
    stores = stores_frame(seed, n_stores, window[1])
    audio = audio_matches_frame(seed, track_frame, window[1])
    catalog = build_catalog(seed, genre, track_frame, audio, stores)
    user_frame = users_frame(seed, users, n_stores + n_stores // 3, window)
    people = build_people(seed, user_frame, window, explore_share)
    collections, items = collections_frames(seed, people, catalog, window[1])
    play_frame = play_history_frame(seed, plays, people, catalog, window)
    frames = {
        "users": _last_seen(user_frame, play_frame),
        "stores": stores,
        "store_managers": store_managers_frame(seed, user_frame, n_stores),
        "records": records.select(_RECORD_COLUMNS),
        "tracks": track_frame,
        "store_inventory": inventory_frame(seed, n_records, catalog.store_weight, window[1]),
        "audio_matches": audio,
        "favorites": favorites_frame(seed, people, catalog, window[1]),
        "user_collections": collections,
        "user_collection_items": items,
        "user_follows": follows_frame(seed, people, catalog, window[1]),
        "play_history": play_frame,
        "usage_metrics": usage_metrics_frame(
            seed, events, people, catalog, collections.height, window
        ),
        "feedback": feedback_frame(seed, users, window),
        "settings": settings_frame(window[1]),
    }
    return {name: frames[name] for name in INPUT_SCHEMAS}


_RECORD_COLUMNS = (
    "id",
    "discogs_release_id",
    "artist",
    "artist_sort",
    "title",
    "label",
    "catalog_number",
    "release_year",
    "country",
    "genres",
    "styles",
    "images",
    "videos",
    "created_at",
    "updated_at",
)


def frame_sizes(frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Return {table: row count}."""
    return {name: frame.height for name, frame in frames.items()}
