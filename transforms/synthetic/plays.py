"""Synthetic play_history: sessions of listens, each a 'play' row and a terminal row."""

from __future__ import annotations

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.catalog import Catalog
from transforms.synthetic.common import US_PER_SECOND, categorical, group_starts, pick, rng_for, ts
from transforms.synthetic.people import People, sample_records, sample_users

LISTENS_PER_SESSION = 6
EXTRA_ROWS_PER_LISTEN = 0.12  # occasional pause / seek rows
COMPLETE_IN_TASTE = 0.75  # probability a listen completes when the genre fits the user
COMPLETE_OUT_OF_TASTE = 0.30
DEVICE_WEIGHTS = (45, 25, 10, 20)  # C.DEVICE_TYPES
SOURCE_WEIGHTS = (12, 20, 20, 12, 20, 10, 6)  # C.PLAY_SOURCES: ~12 % recommendation


def listen_count(rows: int) -> tuple[int, int]:
    """Return (listens, extra pause/seek rows) that add up to exactly `rows` play rows."""
    listens = int(rows / (2 + EXTRA_ROWS_PER_LISTEN))
    listens = max(listens, 1) if rows > 0 else 0
    return listens, max(rows - 2 * listens, 0)


def _sessions(rng, people: People, n_sessions: int) -> dict[str, np.ndarray]:
    """Return per-session user, device and source indexes."""
    user = sample_users(rng, people, n_sessions)
    user_device = categorical(rng, DEVICE_WEIGHTS, len(people.activity))  # preferred device
    device = np.where(
        rng.random(n_sessions) < 0.8,
        user_device[user],
        categorical(rng, DEVICE_WEIGHTS, n_sessions),
    )
    return {"user": user, "device": device, "source": categorical(rng, SOURCE_WEIGHTS, n_sessions)}


def _listens(rng, people: People, catalog: Catalog, n: int, window: tuple[int, int]):
    """Return per-listen arrays (session, user, track, start, outcome), sorted by session."""
    n_sessions = max(1, n // LISTENS_PER_SESSION)
    sess = _sessions(rng, people, n_sessions)
    session = np.sort(rng.integers(0, n_sessions, n))
    user = sess["user"][session]
    record, taste = sample_records(rng, user, people, catalog)
    slot = (rng.random(n) * catalog.playable_count[record]).astype(np.int64)
    track = catalog.playable_tracks[catalog.playable_start[record] + slot]
    complete = rng.random(n) < np.where(taste, COMPLETE_IN_TASTE, COMPLETE_OUT_OF_TASTE)
    completion = np.where(
        complete,
        np.minimum(90 + rng.random(n) * 12, 100),
        1 + rng.random(n) * 28.9,
    ).round(2)
    listened_ms = np.maximum((completion / 100 * catalog.track_ms[track]).astype(np.int64), 500)
    span = listened_ms * 1000 + rng.integers(1, 20, n) * US_PER_SECOND
    before = np.cumsum(span) - span
    offset = before - before[group_starts(session)]
    total = np.bincount(session, weights=span, minlength=n_sessions).astype(np.int64)
    start_us, end_us = window
    lo = np.maximum(people.created_us[sess["user"]], start_us)
    room = np.maximum(end_us - lo - total, 0)
    begin = lo + (rng.random(n_sessions) * room).astype(np.int64)
    source = np.where(
        rng.random(n) < 0.6, sess["source"][session], categorical(rng, SOURCE_WEIGHTS, n)
    )
    return {
        "session": session,
        "user": user,
        "track": track,
        "t0": begin[session] + offset,
        "complete": complete,
        "completion": completion,
        "listened_ms": listened_ms,
        "device": sess["device"][session],
        "source": source,
    }


def play_history_frame(
    seed: int, rows: int, people: People, catalog: Catalog, window: tuple[int, int]
) -> pl.DataFrame:
    """Return exactly `rows` play_history rows, ids in played_at order, all inside `window`."""
    rng = rng_for(seed, "plays")
    n, extras = listen_count(rows)
    li = _listens(rng, people, catalog, n, window)
    per = 2 + np.bincount(rng.integers(0, max(n, 1), extras), minlength=n)
    listen = np.repeat(np.arange(n), per)
    seq = np.arange(len(listen)) - group_starts(listen)
    last = seq == per[listen] - 1
    middle = (seq > 0) & ~last
    frac = np.where(middle, (rng.random(len(listen)) * li["completion"][listen]).round(2), 0.0)
    completion = np.where(last, li["completion"][listen], frac)
    track_ms = catalog.track_ms[li["track"][listen]]
    duration = np.where(last, li["listened_ms"][listen], (frac / 100 * track_ms).astype(np.int64))
    terminal = np.where(li["complete"][listen], 3, 2)  # complete / skip
    action = np.where(
        last, terminal, np.where(middle, np.where(rng.random(len(listen)) < 0.6, 1, 4), 0)
    )
    played = np.minimum(li["t0"][listen] + duration * 1000, window[1] - 1)
    order = np.lexsort((seq, listen, played))[:rows]  # by played_at, then listen, then row
    listen, played = listen[order], played[order]
    action, duration, completion = action[order], duration[order], completion[order]
    frame = pl.DataFrame(
        {
            "user_id": (li["user"][listen] + 1).astype(np.int64),
            "track_id": (li["track"][listen] + 1).astype(np.int64),
            "action": pick(C.PLAY_ACTIONS, action),
            "played_at": ts(played),
            "duration_played_ms": duration.astype(np.int64),
            "completion_percentage": completion.astype(np.float64),
            "session_id": pl.Series(li["session"][listen] + 1),
            "device_type": pick(C.DEVICE_TYPES, li["device"][listen]),
            "source": pick(C.PLAY_SOURCES, li["source"][listen]),
        }
    )
    return frame.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("id"),
        "user_id",
        "track_id",
        "action",
        "played_at",
        "duration_played_ms",
        "completion_percentage",
        pl.concat_str([pl.lit("ses-"), pl.col("session_id")]).alias("session_id"),
        "device_type",
        "source",
        pl.col("played_at").alias("created_at"),
    )
