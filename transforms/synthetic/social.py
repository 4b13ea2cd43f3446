"""Synthetic social tables: favorites, collections and their items, follows, feedback, settings."""

from __future__ import annotations

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.catalog import Catalog
from transforms.synthetic.common import (
    US_PER_DAY,
    categorical,
    group_starts,
    pick,
    rng_for,
    ts,
    uniform_us,
)
from transforms.synthetic.people import People, sample_records
from transforms.synthetic.vocab import COLLECTION_NAMES, FEEDBACK_MESSAGES

FAVORITES_PER_USER = 6
COLLECTOR_SHARE = 0.30  # users with 1-3 collections
ITEMS_PER_COLLECTION = 8
FOLLOWER_SHARE = 0.40  # users following 1-5 stores


def _store_draws(rng: np.random.Generator, catalog: Catalog, n: int) -> np.ndarray:
    """Return n store indexes among active stores, proportional to store weight."""
    stores = catalog.active_stores
    cdf = np.cumsum(catalog.store_weight[stores])
    return stores[np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1]), len(stores) - 1)]


def _per_user_counts(rng, people: People, mean: float, share: float = 1.0) -> np.ndarray:
    """Return a heavy-tailed count per user (0 for users outside `share`)."""
    rel = people.activity / max(people.activity.mean(), 1e-12)
    counts = rng.poisson(np.clip(mean * rel, 0.3, 50 * mean))
    return counts * (rng.random(len(rel)) < share)


def favorites_frame(seed: int, people: People, catalog: Catalog, end_us: int) -> pl.DataFrame:
    """Return favorites (mostly records, some tracks and stores), unique per user and target."""
    rng = rng_for(seed, "favorites")
    user = np.repeat(
        np.arange(len(people.activity)), _per_user_counts(rng, people, FAVORITES_PER_USER)
    )
    n = len(user)
    kind = categorical(rng, [75, 15, 10], n)  # record, track, store (C.FAVORITABLE_TYPES)
    record, _ = sample_records(rng, user, people, catalog)
    slot = (rng.random(n) * catalog.playable_count[record]).astype(np.int64)
    track = catalog.playable_tracks[
        np.minimum(catalog.playable_start[record] + slot, len(catalog.playable_tracks) - 1)
    ]
    target = np.where(kind == 0, record, np.where(kind == 1, track, _store_draws(rng, catalog, n)))
    created = uniform_us(rng, people.created_us[user], end_us, n)
    frame = pl.DataFrame(
        {
            "user_id": (user + 1).astype(np.int64),
            "favoritable_type": pick(C.FAVORITABLE_TYPES, kind),
            "favoritable_id": (target + 1).astype(np.int64),
            "created_at": ts(created),
        }
    ).unique(["user_id", "favoritable_type", "favoritable_id"], keep="first", maintain_order=True)
    return frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"), pl.all())


def collections_frames(
    seed: int, people: People, catalog: Catalog, end_us: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (user_collections, user_collection_items); items unique per collection."""
    rng = rng_for(seed, "collections")
    n_users = len(people.activity)
    per_user = rng.integers(1, 4, n_users) * (rng.random(n_users) < COLLECTOR_SHARE)
    owner = np.repeat(np.arange(n_users), per_user)
    n = len(owner)
    nth = np.arange(n) - group_starts(owner)
    name_idx = (rng.integers(0, len(COLLECTION_NAMES), n_users)[owner] + nth) % len(
        COLLECTION_NAMES
    )
    created = uniform_us(rng, people.created_us[owner], end_us, n)
    item_counts = 1 + rng.poisson(ITEMS_PER_COLLECTION - 1, n)
    coll = np.repeat(np.arange(n), item_counts)
    record, _ = sample_records(rng, owner[coll], people, catalog)
    items = pl.DataFrame(
        {
            "collection_id": (coll + 1).astype(np.int64),
            "record_id": (record + 1).astype(np.int64),
            "added_at": ts(uniform_us(rng, created[coll], end_us, len(coll))),
        }
    ).unique(["collection_id", "record_id"], keep="first", maintain_order=True)
    items = items.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"),
        "collection_id",
        "record_id",
        pl.lit(None, dtype=pl.Utf8).alias("notes"),
        "added_at",
    )
    counts = np.bincount(items["collection_id"].to_numpy() - 1, minlength=n).astype(np.int32)
    collections = pl.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "user_id": (owner + 1).astype(np.int64),
            "name": pick(COLLECTION_NAMES, name_idx),
            "description": pl.Series([None] * n, dtype=pl.Utf8),
            "is_public": rng.random(n) < 0.6,
            "item_count": counts,
            "created_at": ts(created),
            "updated_at": ts(created),
        }
    )
    return collections, items


def follows_frame(seed: int, people: People, catalog: Catalog, end_us: int) -> pl.DataFrame:
    """Return user_follows: 40 % of users follow 1-5 active stores, unique per (user, store)."""
    rng = rng_for(seed, "follows")
    n_users = len(people.activity)
    per_user = rng.integers(1, 6, n_users) * (rng.random(n_users) < FOLLOWER_SHARE)
    user = np.repeat(np.arange(n_users), per_user)
    store = _store_draws(rng, catalog, len(user))
    frame = pl.DataFrame(
        {
            "user_id": (user + 1).astype(np.int64),
            "store_id": (store + 1).astype(np.int64),
            "created_at": ts(uniform_us(rng, people.created_us[user], end_us, len(user))),
        }
    ).unique(["user_id", "store_id"], keep="first", maintain_order=True)
    return frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"), pl.all())


def feedback_frame(seed: int, n_users: int, window: tuple[int, int]) -> pl.DataFrame:
    """Return feedback: one message per ~50 users, 20 % anonymous."""
    rng = rng_for(seed, "feedback")
    n = max(1, n_users // 50)
    user = pl.Series(rng.integers(1, n_users + 1, n), dtype=pl.Int64)
    created = ts(uniform_us(rng, window[0], window[1], n))
    return pl.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "user_id": user.scatter(np.flatnonzero(rng.random(n) < 0.2), None),
            "feedback_type": pick(C.FEEDBACK_TYPES, categorical(rng, [3, 3, 2, 2], n)),
            "feedback_status": pick(C.FEEDBACK_STATUSES, categorical(rng, [4, 2, 3, 1], n)),
            "message": pick(FEEDBACK_MESSAGES, rng.integers(0, len(FEEDBACK_MESSAGES), n)),
            "created_at": created,
            "updated_at": created,
        }
    )


def settings_frame(end_us: int) -> pl.DataFrame:
    """Return the platform settings rows (JSON values as text)."""
    rows = [
        ("site.name", '"Rotation"', "string", "Public name of the platform"),
        ("recommendations.enabled", "true", "boolean", "Serve personalised recommendations"),
        ("recommendations.per_user", "50", "number", "Recommendations kept per list"),
        ("analytics.retention_days", "400", "number", "Days of raw events kept"),
        ("featured.genres", '["Jazz", "Electronic"]', "json", "Genres featured on the home page"),
    ]
    key, value, kind, description = (list(col) for col in zip(*rows, strict=True))
    return pl.DataFrame(
        {"key": key, "value": value, "setting_type": kind, "description": description}
    ).with_columns(updated_at=ts(np.full(len(rows), end_us - US_PER_DAY)))
