"""`rotation import-interactions`: external implicit feedback into the Rotation schema, so the
whole nightly pipeline runs on it (each item a record with one track, each pair a complete play)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

from flows.stages.evaluation import split_pairs
from flows.stages.validate import PLATFORM_START_KEY
from flows.storage.bulk import write_frames
from flows.storage.database import Database
from flows.storage.migrate import migrate
from transforms.external import Parsed, parse_interactions, parse_item_genres
from transforms.schemas import INPUT_SCHEMAS

PLAY_MS = 180_000


@dataclass(frozen=True)
class ImportReport:
    """What an import loaded and what it refused (by reason, with line numbers)."""

    loaded: dict[str, int]
    rejected: dict[str, int]
    problems: pl.DataFrame  # line, reason, text


def read_lines(path: Path, encoding: str = "utf-8-sig") -> pl.DataFrame:
    """Return the file's lines as (line number, text), tolerating latin-1 bytes."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    return pl.DataFrame(
        {"line": range(1, len(lines) + 1), "text": lines},
        schema={"line": pl.Int64, "text": pl.Utf8},
    )


def read_interactions(path: Path, fmt: str) -> Parsed:
    """Return the parsed interactions of an external file."""
    return parse_interactions(read_lines(path), fmt)


def read_item_metadata(path: Path | None, fmt: str) -> pl.DataFrame | None:
    """Return (item_id, title, genres) from u.item (u.genre beside it) or an item_id,genres csv."""
    if path is None:
        return None
    names = None
    genre_file = Path(path).with_name("u.genre")
    if fmt == "movielens" and genre_file.exists():
        names = [ln.split("|")[0] for ln in genre_file.read_text().splitlines() if ln.strip()]
    return parse_item_genres(read_lines(path), fmt, names)


def schema_frames(**frames: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Return a frame for every input table: the given ones conformed, the others empty."""
    out = {}
    for name, schema in INPUT_SCHEMAS.items():
        frame = frames.get(name, pl.DataFrame(schema=schema))
        missing = [pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame]
        out[name] = frame.with_columns(missing).select(
            [pl.col(c).cast(t) for c, t in schema.items()]
        )
    return out


def build_frames(
    pairs: pl.DataFrame,
    items: pl.DataFrame | None,
    catalogue: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Return the Rotation tables of the interactions: users, records, tracks, plays, settings.

    `catalogue` (user_id, item_id, …) names every item and user to create, e.g. all pairs of
    the file when only its train part is loaded as plays; it defaults to `pairs`.
    """
    catalogue = pairs if catalogue is None else catalogue
    first = catalogue["timestamp"].min()
    start = first - timedelta(days=1)
    user_ids = catalogue.select(pl.col("user_id").unique().sort().alias("id"))
    users = user_ids.with_columns(
        pl.format("user{}@import.invalid", "id").alias("email"),
        pl.format("user{}", "id").alias("username"),
        pl.lit("user").alias("role"),
        pl.lit(True).alias("is_active"),
        pl.lit(start).alias("created_at"),
        pl.lit(start).alias("updated_at"),
    )
    records = _records(catalogue, items, start)
    tracks = records.select(
        "id",
        pl.col("id").alias("record_id"),
        pl.lit("A1").alias("position"),
        pl.lit(1).alias("track_index"),
        "title",
        pl.lit(PLAY_MS // 1000).alias("duration_seconds"),
        pl.lit(start).alias("created_at"),
        pl.lit(start).alias("updated_at"),
    )
    plays = (
        pairs.sort("user_id", "item_id")
        .with_row_index("id", offset=1)
        .select(
            pl.col("id").cast(pl.Int64),
            "user_id",
            pl.col("item_id").alias("track_id"),
            pl.lit("complete").alias("action"),
            pl.col("timestamp").alias("played_at"),
            pl.lit(PLAY_MS).alias("duration_played_ms"),
            pl.lit(100.0).alias("completion_percentage"),
            pl.format("import-{}", "user_id").alias("session_id"),
            pl.lit("web").alias("device_type"),
            pl.lit("import").alias("source"),
            pl.col("timestamp").alias("created_at"),
        )
    )
    settings = pl.DataFrame(
        {
            "key": [PLATFORM_START_KEY],
            "value": [json.dumps(start.date().isoformat())],
            "setting_type": ["string"],
            "description": ["first day of imported history"],
            "updated_at": [start],
        }
    )
    return schema_frames(
        users=users, records=records, tracks=tracks, play_history=plays, settings=settings
    )


def _records(pairs: pl.DataFrame, items: pl.DataFrame | None, start) -> pl.DataFrame:
    """Return one record per item: a unique artist (no artist cap binds), title and genres."""
    ids = pairs.select(pl.col("item_id").unique().sort().alias("id"))
    if items is not None:
        ids = ids.join(items.rename({"item_id": "id"}), on="id", how="left")
    else:
        ids = ids.with_columns(
            pl.lit(None, pl.Utf8).alias("title"), pl.lit(None, pl.List(pl.Utf8)).alias("genres")
        )
    return ids.select(
        "id",
        pl.col("id").alias("discogs_release_id"),
        pl.format("artist {}", "id").alias("artist"),
        pl.col("title").fill_null(pl.format("item {}", "id")),
        pl.col("genres").fill_null([]),
        pl.lit(start).alias("created_at"),
        pl.lit(start).alias("updated_at"),
    )


def import_interactions(
    db: Database,
    path: Path,
    fmt: str,
    item_path: Path | None = None,
    progress=None,
    *,
    holdout: str | None = None,
    seed: int = 42,
    test_out: Path | None = None,
) -> ImportReport:
    """Load an external file into `db` (replacing the input tables); report what was refused.

    With `holdout`, only the train part of that split is loaded and the test pairs are written
    to `test_out` as csv, so that the nightly's lists can be scored against them.
    """
    parsed = read_interactions(path, fmt)
    if parsed.interactions.height == 0:
        raise ValueError(f"{path}: no valid interaction ({parsed.counts() or 'empty file'})")
    pairs = parsed.interactions
    if holdout:
        pairs, test = split_pairs(pairs, holdout, seed=seed)
        Path(test_out).parent.mkdir(parents=True, exist_ok=True)
        test.select("user_id", "item_id", pl.col("timestamp").dt.epoch("s")).write_csv(test_out)
    frames = build_frames(pairs, read_item_metadata(item_path, fmt), catalogue=parsed.interactions)
    migrate(db)
    loaded = write_frames(db, frames, replace=True, progress=progress)
    return ImportReport(
        loaded={k: v for k, v in loaded.items() if v},
        rejected=parsed.counts(),
        problems=parsed.problems,
    )
