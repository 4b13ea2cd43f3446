"""Synthetic usage_metrics: page views and other product events, some anonymous."""

from __future__ import annotations

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.catalog import Catalog
from transforms.synthetic.common import categorical, concat, pick, rng_for, ts, uniform_us
from transforms.synthetic.people import People, sample_records, sample_users
from transforms.synthetic.plays import DEVICE_WEIGHTS, SOURCE_WEIGHTS
from transforms.synthetic.social import _store_draws
from transforms.synthetic.vocab import GENRES, STYLES

ANONYMOUS_SHARE = 0.15
ANONYMOUS_VISITORS = 50_000  # anonymous session ids: a visitor number and the hour
CHUNK = 2_000_000  # events built per chunk (bounds memory; same output for any seed)
SIGNUP_MAX_SHARE = 0.05
US_PER_HOUR = 3_600_000_000
# weights over C.EVENT_TYPES (signup is emitted once per new user instead)
EVENT_WEIGHTS = (55, 10, 5, 1, 4, 2, 3, 0, 8, 12)
ANONYMOUS_EVENTS = ("page_view", "search", "share", "listing_click")
# weights over C.ENTITY_TYPES for a page view
PAGE_VIEW_ENTITIES = (65, 5, 20, 3, 2, 0, 5)
# entity type index of every other event type (-1: page view mix above)
EVENT_ENTITY = {
    "page_view": -1,
    "search": 5,
    "favorite": 0,
    "unfavorite": 0,
    "collection_add": 0,
    "follow": 2,
    "share": 0,
    "signup": 4,
    "login": 6,
    "listing_click": 0,
}


def _event_types(rng, people: People, rows: int, window: tuple[int, int]):
    """Return (user index or -1, event type index, occurred_at us) per event, signups first."""
    new_users = np.flatnonzero(people.created_us >= window[0])
    signups = new_users[: int(min(len(new_users), rows * SIGNUP_MAX_SHARE))]
    m = rows - len(signups)
    user = sample_users(rng, people, m)
    anon = rng.random(m) < ANONYMOUS_SHARE
    etype = categorical(rng, EVENT_WEIGHTS, m)
    allowed = np.isin(etype, [C.EVENT_TYPES.index(e) for e in ANONYMOUS_EVENTS])
    etype = np.where(anon & ~allowed, 0, etype)
    when = np.where(
        anon,
        uniform_us(rng, window[0], window[1], m),
        uniform_us(rng, np.maximum(people.created_us[user], window[0]), window[1], m),
    )
    user = np.concatenate([signups, np.where(anon, -1, user)])
    etype = np.concatenate([np.full(len(signups), C.EVENT_TYPES.index("signup")), etype])
    return user, etype, np.concatenate([people.created_us[signups], when])


def _entities(rng, user, etype, people: People, catalog: Catalog, n_collections: int):
    """Return (entity type index, 0-based entity index) per event."""
    n = len(user)
    fixed = np.array([EVENT_ENTITY[e] for e in C.EVENT_TYPES])[etype]
    entity = np.where(fixed == -1, categorical(rng, PAGE_VIEW_ENTITIES, n), fixed)
    if n_collections == 0:
        entity = np.where(entity == 3, 0, entity)
    taste_user = np.where(user >= 0, user, sample_users(rng, people, n))
    record, _ = sample_records(rng, taste_user, people, catalog)
    slot = (rng.random(n) * catalog.playable_count[record]).astype(np.int64)
    track = catalog.playable_tracks[
        np.minimum(catalog.playable_start[record] + slot, len(catalog.playable_tracks) - 1)
    ]
    choices = [
        record,
        track,
        _store_draws(rng, catalog, n),
        rng.integers(0, max(n_collections, 1), n),
        np.where(user >= 0, user, 0),
        record,
        record,
    ]
    idx = np.choose(entity, choices)
    return entity, idx


def _properties(rng, etype: np.ndarray, n: int) -> pl.Series:
    """Return the JSON text of each event's properties (codes into a small vocabulary)."""
    devices, sources = len(C.DEVICE_TYPES), len(C.PLAY_SOURCES)
    queries = [w.lower() for w in (*GENRES, *(s for g in GENRES for s in STYLES[g]))]
    vocab = [
        *(
            f'{{"referrer": "{r}", "device": "{d}"}}'
            for r in C.PLAY_SOURCES
            for d in C.DEVICE_TYPES
        ),
        *(f'{{"query": "{q}", "results": {(i * 37) % 200}}}' for i, q in enumerate(queries)),
        *(f'{{"device": "{d}"}}' for d in C.DEVICE_TYPES),
    ]
    device = categorical(rng, DEVICE_WEIGHTS, n)
    page = categorical(rng, SOURCE_WEIGHTS, n) * devices + device
    search = sources * devices + rng.integers(0, len(queries), n)
    other = sources * devices + len(queries) + device
    return pick(vocab, np.where(etype == 0, page, np.where(etype == 1, search, other)))


def _chunk(rng, user, etype, when, people: People, catalog: Catalog, n_collections: int):
    """Return the usage_metrics columns (no id) of one time-sorted chunk of events."""
    entity, idx = _entities(rng, user, etype, people, catalog, n_collections)
    n = len(user)
    anon = pl.Series(user < 0)
    owner = pl.Series(np.where(user >= 0, user + 1, rng.integers(1, ANONYMOUS_VISITORS, n)))
    frame = pl.DataFrame(
        {
            "user_id": pl.Series(user + 1, dtype=pl.Int64),
            "session_id": concat(
                pick(("web-", "anon-"), anon.cast(pl.Int64)),
                owner,
                "-",
                pl.Series(when // US_PER_HOUR),
            ),
            "event_type": pick(C.EVENT_TYPES, etype),
            "entity_type": pick(C.ENTITY_TYPES, entity),
            "entity_id": pl.Series(idx + 1, dtype=pl.Int64),
            "properties": _properties(rng, etype, n),
            "occurred_at": ts(when),
        }
    )
    return frame.with_columns(
        user_id=pl.when(anon).then(None).otherwise(pl.col("user_id")),
        entity_id=pl.when(pl.col("entity_type").is_in(["search", "home"]))
        .then(None)
        .otherwise(pl.col("entity_id")),
    )


def usage_metrics_frame(
    seed: int,
    rows: int,
    people: People,
    catalog: Catalog,
    n_collections: int,
    window: tuple[int, int],
) -> pl.DataFrame:
    """Return exactly `rows` usage_metrics rows, ids in occurred_at order, inside `window`."""
    rng = rng_for(seed, "events")
    user, etype, when = _event_types(rng, people, rows, window)
    order = np.argsort(when, kind="stable")
    user, etype, when = user[order], etype[order], np.minimum(when[order], window[1] - 1)
    chunks = [
        _chunk(rng_for(seed, f"events-{start}"), user[start : start + CHUNK],
               etype[start : start + CHUNK], when[start : start + CHUNK], people, catalog,
               n_collections)
        for start in range(0, len(user), CHUNK)
    ]  # fmt: skip
    frame = pl.concat(chunks) if chunks else _chunk(rng, user, etype, when, people, catalog, 0)
    return frame.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"),
        pl.all(),
        pl.col("occurred_at").alias("created_at"),
    )
