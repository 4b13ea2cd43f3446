"""Synthetic catalogue: records, tracks, audio matches and the sampling state (vectorised)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from transforms import columns as C
from transforms.synthetic.common import (
    US_PER_DAY,
    categorical,
    concat,
    group_starts,
    list_column,
    names,
    pick,
    rng_for,
    top_k_without_replacement,
    ts,
    uniform_us,
    unique_ids,
)
from transforms.synthetic.vocab import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    FIRST_NAMES,
    GENRES,
    LAST_NAMES,
    STYLES,
    WORDS_A,
    WORDS_B,
)

GENRE_WEIGHTS = np.array([22, 20, 10, 9, 9, 10, 4, 4, 3, 3, 4, 2], dtype=np.float64)
TRACKS_PER_RECORD = 10
RECORDS_PER_ARTIST = 4
RECORDS_PER_LABEL = 20
RECORDS_PER_STORE = 100
MATCHED_SHARE = 0.70
POPULARITY_SIGMA = 1.6  # lognormal record popularity within a genre (heavy tail)


@dataclass(frozen=True)
class Catalog:
    """The numpy state later tables sample from (0-based indexes; ids are index + 1)."""

    record_genre: np.ndarray  # primary genre index per record
    record_weight: np.ndarray  # popularity (0 for records with no playable track)
    playable_tracks: np.ndarray  # track indexes with a playable match, sorted by record
    playable_start: np.ndarray  # per record: first position in playable_tracks
    playable_count: np.ndarray  # per record: number of playable tracks
    track_ms: np.ndarray  # duration of every track in ms
    store_weight: np.ndarray  # store size/popularity
    active_stores: np.ndarray  # indexes of active stores


def catalog_sizes(tracks: int) -> tuple[int, int]:
    """Return (records, stores) for a catalogue of `tracks` tracks."""
    records = max(1, tracks // TRACKS_PER_RECORD)
    return records, max(3, records // RECORDS_PER_STORE)


def _styles(rng: np.random.Generator, genre: np.ndarray) -> pl.Series:
    """Return a List(Utf8) of 1-3 distinct styles of each record's primary genre."""
    n = len(genre)
    counts = rng.choice([1, 2, 3], size=n, p=[0.35, 0.45, 0.2])
    picks = np.zeros((n, 3), dtype=np.int64)
    offsets_into_vocab = np.cumsum([0] + [len(STYLES[g]) for g in GENRES])
    for g, name in enumerate(GENRES):  # a dozen genres, not rows
        rows = np.flatnonzero(genre == g)
        k = len(STYLES[name])
        choice = top_k_without_replacement(rng, np.ones(k), len(rows), 3)
        picks[rows] = choice + offsets_into_vocab[g]
    vocab = [s for g in GENRES for s in STYLES[g]]
    mask = np.arange(3)[None, :] < counts[:, None]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return list_column(offsets, pick(vocab, picks[mask]))


def _genres(rng: np.random.Generator, primary: np.ndarray) -> pl.Series:
    """Return a List(Utf8) of the primary genre plus, for 20 %, a second one."""
    n = len(primary)
    second = (primary + rng.integers(1, len(GENRES), n)) % len(GENRES)
    has_second = rng.random(n) < 0.2
    counts = 1 + has_second.astype(np.int64)
    flat = np.stack([primary, second], axis=1)[np.arange(2)[None, :] < counts[:, None]]
    return list_column(np.concatenate([[0], np.cumsum(counts)]), pick(GENRES, flat))


def records_frame(seed: int, n: int, end_us: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Return (records frame, primary genre index per record)."""
    rng = rng_for(seed, "records")
    n_artists = max(1, n // RECORDS_PER_ARTIST)
    artist_genre = categorical(rng, GENRE_WEIGHTS, n_artists)
    artist_of = np.sort(rng.integers(0, n_artists, n))
    artist_of = rng.permutation(artist_of)
    genre = artist_genre[artist_of]
    artist_names = names(rng, FIRST_NAMES, LAST_NAMES, n_artists)
    artist_sort = artist_names.str.replace(r"^(\S+) (.+)$", "$2, $1")
    label_names = names(rng, WORDS_A, ("Records", "Recordings", "Sound", "Music"), max(1, n // 20))
    label_of = rng.integers(0, len(label_names), n)
    year = np.clip(np.round(2025 - rng.gamma(2.0, 12.0, n)), 1955, 2025).astype(np.int32)
    created = uniform_us(rng, end_us - 3 * 365 * US_PER_DAY, end_us - US_PER_DAY, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    frame = pl.DataFrame(
        {
            "id": ids,
            "discogs_release_id": unique_ids(rng, n, 100_000, 400),
            "artist": artist_names.gather(artist_of),
            "artist_sort": artist_sort.gather(artist_of),
            "title": names(rng, WORDS_A, WORDS_B, n),
            "label": label_names.gather(label_of),
            "catalog_number": pl.Series(label_of).cast(pl.Utf8),
            "release_year": year,
            "country": pick(COUNTRIES, categorical(rng, COUNTRY_WEIGHTS, n)),
            "genres": _genres(rng, genre),
            "styles": _styles(rng, genre),
            "created_at": ts(created),
        }
    )
    frame = frame.with_columns(
        catalog_number=pl.concat_str(
            [pl.col("label").str.slice(0, 3).str.to_uppercase(), pl.lit("-"), pl.col("id")]
        ),
        images=pl.concat_str(
            [
                pl.lit('[{"type": "primary", "uri": "https://img.rotation.example/r/'),
                pl.col("discogs_release_id"),
                pl.lit('.jpg"}]'),
            ]
        ),
        videos=pl.lit("[]"),
        updated_at=pl.col("created_at"),
    )
    return frame, genre


def tracks_frame(seed: int, n: int, records: pl.DataFrame) -> pl.DataFrame:
    """Return the tracks frame: every record gets >= min(4, n/records) tracks, ~10 on average."""
    rng = rng_for(seed, "tracks")
    n_rec = records.height
    base = min(4, n // n_rec)
    counts = base + np.bincount(rng.integers(0, n_rec, n - base * n_rec), minlength=n_rec)
    record_idx = np.repeat(np.arange(n_rec), counts)
    index = np.arange(n) - group_starts(record_idx) + 1
    per_side = np.maximum((counts[record_idx] + 1) // 2, 1)
    side = pick(("A", "B", "C", "D", "E", "F", "G", "H"), np.minimum((index - 1) // per_side, 7))
    seconds = np.clip(rng.lognormal(np.log(230), 0.35, n), 60, 1500).astype(np.int32)
    rec = records.select("artist", "created_at", "styles")[record_idx]
    return pl.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "record_id": (record_idx + 1).astype(np.int64),
            "position": concat(side, pl.Series((index - 1) % per_side + 1)),
            "track_index": index.astype(np.int32),
            "title": names(rng, WORDS_B, WORDS_A, n),
            "duration_seconds": seconds,
            "artist": rec["artist"],
            "tags": rec["styles"],
            "created_at": rec["created_at"],
        }
    ).select(
        "id",
        "record_id",
        "position",
        "track_index",
        "title",
        "duration_seconds",
        pl.concat_str([pl.lit('[{"name": "'), pl.col("artist"), pl.lit('"}]')]).alias("artists"),
        pl.lit("[]").alias("credits"),
        "tags",
        "created_at",
        pl.col("created_at").alias("updated_at"),
    )


def audio_matches_frame(seed: int, tracks: pl.DataFrame, end_us: int) -> pl.DataFrame:
    """Return audio_matches: one match for 70 % of tracks, mostly verified or auto_approved."""
    rng = rng_for(seed, "audio")
    matched = np.flatnonzero(rng.random(tracks.height) < MATCHED_SHARE)
    n = len(matched)
    platform = categorical(rng, [55, 20, 8, 7, 6, 4], n)
    status = categorical(rng, [4, 60, 26, 5, 5], n)
    created = tracks["created_at"].gather(matched).dt.epoch("us").to_numpy()
    created = np.minimum(created + (rng.random(n) * 30 * US_PER_DAY).astype(np.int64), end_us - 1)
    ext = pl.Series(matched + 1).cast(pl.Utf8)
    frame = pl.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "track_id": (matched + 1).astype(np.int64),
            "audio_platform": pick(C.AUDIO_PLATFORMS, platform),
            "external_id": concat(pick(("yt", "sp", "am", "sc", "bc", "dg"), platform), "-", ext),
            "match_status": pick(C.MATCH_STATUSES, status),
            "confidence_score": np.round(np.clip(rng.beta(8, 2, n), 0, 1), 3),
            "created_at": ts(created),
        }
    )
    return frame.select(
        "id",
        "track_id",
        "audio_platform",
        "external_id",
        pl.concat_str(
            [
                pl.lit("https://audio.rotation.example/"),
                pl.col("audio_platform"),
                pl.lit("/"),
                pl.col("external_id"),
            ]
        ).alias("url"),
        "match_status",
        "confidence_score",
        "created_at",
        pl.col("created_at").alias("updated_at"),
    )


def build_catalog(
    seed: int, genre: np.ndarray, tracks: pl.DataFrame, audio: pl.DataFrame, stores: pl.DataFrame
) -> Catalog:
    """Return the sampling state: popularity, playable tracks per record, store weights."""
    rng = rng_for(seed, "popularity")
    n_rec = len(genre)
    playable_ids = audio.filter(pl.col("match_status").is_in(C.PLAYABLE_MATCH_STATUSES))
    track_idx = np.unique(playable_ids["track_id"].to_numpy() - 1)  # sorted, so by record
    if len(track_idx) == 0:  # a tiny catalogue with no playable match: play anything
        track_idx = np.arange(tracks.height)
    rec_of = tracks["record_id"].to_numpy()[track_idx] - 1
    count = np.bincount(rec_of, minlength=n_rec)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    weight = rng.lognormal(0.0, POPULARITY_SIGMA, n_rec) * (count > 0)
    store_weight = rng.lognormal(0.0, 1.0, stores.height)
    active = np.flatnonzero(stores["store_status"].to_numpy() == "active")
    return Catalog(
        record_genre=genre,
        record_weight=weight,
        playable_tracks=track_idx,
        playable_start=start,
        playable_count=count,
        track_ms=tracks["duration_seconds"].to_numpy().astype(np.int64) * 1000,
        store_weight=store_weight,
        active_stores=active,
    )
