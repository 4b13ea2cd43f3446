"""Synthetic people: users, their genre tastes and activity, store managers, taste sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.catalog import GENRE_WEIGHTS, Catalog
from transforms.synthetic.common import (
    US_PER_DAY,
    concat,
    names,
    pick,
    rng_for,
    top_k_without_replacement,
    ts,
    uniform_us,
    weighted,
)
from transforms.synthetic.vocab import FIRST_NAMES, GENRES, LAST_NAMES

NEW_USER_SHARE = 0.15  # created inside the generated window
EXPLORE_SHARE = 0.15  # listens outside the user's favourite genres (the default taste strength)
ACTIVITY_SIGMA = 1.2  # lognormal user activity (heavy tail)
GENRE_TABLE = 1 << 16  # inverse-CDF buckets per genre for record draws


@dataclass(frozen=True)
class People:
    """Per-user sampling state (0-based user indexes; ids are index + 1)."""

    created_us: np.ndarray
    activity: np.ndarray  # relative share of sessions and events
    fav_genres: np.ndarray  # (users, 3) genre indexes
    fav_cdf: np.ndarray  # (users, 3) cumulative taste weights (unused slots repeat 1.0)
    taste_mask: np.ndarray  # (users, genres) True for the user's favourite genres
    explore_share: float = EXPLORE_SHARE  # share of draws from any genre: 1 = no taste


def users_frame(seed: int, n: int, n_managers: int, window: tuple[int, int]) -> pl.DataFrame:
    """Return the users frame: unique email/username, roles, created_at before `window` end."""
    rng = rng_for(seed, "users")
    start_us, end_us = window
    new = rng.random(n) < NEW_USER_SHARE
    old_created = uniform_us(rng, end_us - 3 * 365 * US_PER_DAY, start_us, n)
    new_created = uniform_us(rng, start_us, end_us - US_PER_DAY // 24, n)
    created = np.where(new, np.maximum(new_created, start_us), np.minimum(old_created, start_us))
    order = rng.permutation(n)
    role = np.zeros(n, dtype=np.int64)
    role[order[: min(n_managers, n)]] = 1
    role[order[min(n_managers, n) : min(n_managers, n) + max(1, n // 500)]] = 2
    ids = pl.Series(np.arange(1, n + 1, dtype=np.int64))
    display = names(rng, FIRST_NAMES, LAST_NAMES, n)
    handle = display.str.to_lowercase().str.replace(" ", ".")
    return pl.DataFrame(
        {
            "id": ids,
            "email": concat(handle, ".", ids, "@example.com"),
            "username": concat(handle.str.replace(r"\.", "_"), "_", ids),
            "display_name": display,
            "role": pick(C.USER_ROLES, role),
            "is_active": rng.random(n) > 0.03,
            "created_at": ts(created),
            "updated_at": ts(created),
            "last_seen_at": ts(created),
        }
    )


def store_managers_frame(seed: int, users: pl.DataFrame, n_stores: int) -> pl.DataFrame:
    """Return store_managers: each store_manager user manages one store, every store has one."""
    rng = rng_for(seed, "managers")
    managers = users.filter(pl.col("role") == "store_manager")["id"].to_numpy()
    n = len(managers)
    stores = np.concatenate([np.arange(n_stores), rng.integers(0, n_stores, max(n - n_stores, 0))])
    stores = stores[:n] + 1
    created = users["created_at"].gather(managers - 1)
    return pl.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "store_id": stores.astype(np.int64),
            "user_id": managers.astype(np.int64),
            "created_at": created,
        }
    )


def build_people(
    seed: int, users: pl.DataFrame, window: tuple[int, int], explore_share: float = EXPLORE_SHARE
) -> People:
    """Return each user's activity weight and Dirichlet mix over 1-3 favourite genres.

    `explore_share`: the share of record draws made from any genre (by genre popularity)
    rather than from the user's favourites: the taste strength (0 = always in taste, 1 = none).
    """
    rng = rng_for(seed, "taste")
    n = users.height
    start_us, end_us = window
    created = users["created_at"].dt.epoch("us").to_numpy()
    available = np.clip((end_us - np.maximum(created, start_us)) / max(end_us - start_us, 1), 0, 1)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, n) * available
    activity *= np.where(users["is_active"].to_numpy(), 1.0, 0.1)
    k = rng.choice([1, 2, 3], size=n, p=[0.3, 0.45, 0.25])
    fav = top_k_without_replacement(rng, GENRE_WEIGHTS, n, 3)
    mix = rng.gamma(1.5, 1.0, (n, 3)) * (np.arange(3)[None, :] < k[:, None])
    cdf = np.cumsum(mix / mix.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    used = np.diff(cdf, axis=1, prepend=0.0) > 0
    mask = np.zeros((n, len(GENRES)), dtype=bool)
    np.put_along_axis(mask, np.where(used, fav, fav[:, :1]), True, axis=1)
    return People(
        created_us=created,
        activity=activity,
        fav_genres=fav,
        fav_cdf=cdf,
        taste_mask=mask,
        explore_share=explore_share,
    )


def _genre_tables(catalog: Catalog) -> np.ndarray:
    """Return (genres, GENRE_TABLE) inverse-CDF tables of record popularity within each genre.

    A genre without playable records falls back to all playable records.
    """
    playable = catalog.record_weight > 0
    everything = np.flatnonzero(playable) if playable.any() else np.arange(len(playable))
    mids = (np.arange(GENRE_TABLE) + 0.5) / GENRE_TABLE
    tables = np.empty((len(GENRES), GENRE_TABLE), dtype=np.int64)
    for g in range(len(GENRES)):  # a dozen genres
        recs = np.flatnonzero((catalog.record_genre == g) & playable)
        recs = recs if len(recs) else everything
        weights = catalog.record_weight[recs]
        cdf = np.cumsum(weights if weights.sum() > 0 else np.ones(len(recs)))
        pos = np.searchsorted(cdf, mids * cdf[-1], side="right")
        tables[g] = recs[np.minimum(pos, len(recs) - 1)]
    return tables


def sample_records(
    rng: np.random.Generator, users: np.ndarray, people: People, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """Return (record index, in_taste flag) per draw: taste genre, then popularity in genre."""
    n = len(users)
    u = rng.random(n)
    slot = (u > people.fav_cdf[users, 0]).astype(np.int64) + (u > people.fav_cdf[users, 1])
    genre = people.fav_genres[users, np.minimum(slot, 2)]
    explore = rng.random(n) < people.explore_share
    genre[explore] = weighted(rng, GENRE_WEIGHTS, int(explore.sum()))
    bucket = (rng.random(n) * GENRE_TABLE).astype(np.int64)
    record = _genre_tables(catalog)[genre, bucket]
    return record, in_taste(users, record, people, catalog)


def in_taste(users: np.ndarray, record: np.ndarray, people: People, catalog: Catalog):
    """Return True where the record's primary genre is one of the user's favourite genres."""
    return people.taste_mask[users, catalog.record_genre[record]]


def sample_users(rng: np.random.Generator, people: People, n: int) -> np.ndarray:
    """Return n user indexes drawn proportionally to activity."""
    return weighted(rng, people.activity, n)
