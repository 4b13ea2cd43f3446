"""`rotation snapshot`: Postgres → a new DuckDB replay file, windowed, sampled, atomic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from pipeline_fixtures import RUN_DATE, fresh_pg, generate, params, query

from flows.analyst.snapshot import TABLES, SnapshotSpec, sample_mask, snapshot_info, take_snapshot
from flows.cli import main
from flows.nightly import run_nightly
from flows.stages.extract import QUERIES
from flows.storage.backends import open_storage
from flows.storage.database import Database, parse_database
from flows.storage.errors import StorageError

pytestmark = pytest.mark.postgres

PASSWORD = "s3cret-Pw-snapshot"
SINCE = RUN_DATE - dt.timedelta(days=9)
UNTIL = RUN_DATE - dt.timedelta(days=3)
WIDE = (dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
USER_TABLES = ("store_managers", "favorites", "user_collections", "user_follows", "play_history")


@pytest.fixture(scope="module")
def source(postgres_server) -> Iterator[Database]:
    """Return a generated Postgres database (tiny profile), its URL carrying a password."""
    with fresh_pg("rotation_snaptest") as db:
        generate(db)
        # trust auth: the server never asks for it, so only redaction is under test here
        yield parse_database(db.url.replace("root@", f"root:{PASSWORD}@"))


@pytest.fixture(scope="module")
def full(source, tmp_path_factory) -> Database:
    """Return a snapshot of every row of the source."""
    path = tmp_path_factory.mktemp("snap") / "full.duckdb"
    take_snapshot(source, path)
    return parse_database(f"duckdb:{path}")


def _counts(db: Database) -> dict[str, int]:
    """Return the row count of every snapshot table of `db`."""
    sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
    frame = query(db, sql)
    return dict(zip(frame["t"].to_list(), frame["n"].to_list(), strict=True))


def _read(db: Database, name: str, args: tuple = ()) -> pl.DataFrame:
    """Return a named query's rows on `db`, sorted by their first column."""
    with open_storage(db) as storage:
        frame = storage.read(name, args)
    return frame.sort(frame.columns[0])


def test_full_snapshot_copies_every_table_the_pipeline_reads(source, full):
    counts = _counts(full)
    assert counts == _counts(source)
    assert counts["play_history"] > 1000 and counts["users"] == 120
    for name in [*QUERIES.values(), "extract/play_history", "extract/usage_metrics"]:
        args = WIDE if name in ("extract/play_history", "extract/usage_metrics") else ()
        assert _read(full, name, args).equals(_read(source, name, args)), name


def test_snapshot_records_where_from_without_the_password(source, full):
    info = snapshot_info(full.path)
    assert info["source"] == source.display and "***" in info["source"]
    assert PASSWORD not in info["source"]
    assert PASSWORD.encode() not in full.path.read_bytes()
    assert info["row_counts"] == _counts(full)
    assert info["since"] is info["until"] is info["sample_fraction"] is None
    assert (dt.datetime.now(dt.UTC) - info["taken_at"]).total_seconds() < 600


def test_window_limits_events_and_keeps_the_catalogue(source, tmp_path):
    path = tmp_path / "window.duckdb"
    take_snapshot(source, path, SnapshotSpec(since=SINCE, until=UNTIL))
    snap = parse_database(f"duckdb:{path}")
    start = dt.datetime.combine(SINCE, dt.time(0), tzinfo=dt.UTC)
    end = dt.datetime.combine(UNTIL + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    plays = _read(snap, "extract/play_history", WIDE)
    assert plays.height > 0
    assert plays["played_at"].min() >= start and plays["played_at"].max() < end
    assert plays.equals(_read(source, "extract/play_history", (start, end)))
    usage = _read(snap, "extract/usage_metrics", WIDE)
    assert usage.equals(_read(source, "extract/usage_metrics", (start, end)))
    counts, whole = _counts(snap), _counts(source)
    assert counts["play_history"] < whole["play_history"]
    for table in ("users", "records", "tracks", "stores", "store_inventory", "favorites"):
        assert counts[table] == whole[table], table
    info = snapshot_info(path)
    assert (info["since"], info["until"]) == (SINCE, UNTIL)


def _user_ids(db: Database) -> list[int]:
    return sorted(query(db, "SELECT id FROM users")["id"].to_list())


def test_user_sample_keeps_whole_histories_and_what_they_reference(source, tmp_path):
    path = tmp_path / "sample.duckdb"
    result = take_snapshot(source, path, SnapshotSpec(sample_fraction=0.3, seed=5))
    snap = parse_database(f"duckdb:{path}")
    everyone = np.array(_user_ids(source))
    expected = sorted(everyone[sample_mask(everyone, 0.3, 5)].tolist())
    kept = _user_ids(snap)
    assert kept == expected and 15 <= len(kept) <= 60 and result.sampled_users == len(kept)
    for table in USER_TABLES:
        owners = query(snap, f"SELECT DISTINCT user_id FROM {table}")["user_id"].to_list()
        assert set(owners) <= set(kept), table
    # each sampled user's whole history: same plays per user as in the source
    per_user = "SELECT user_id, count(*) AS n FROM play_history GROUP BY user_id ORDER BY user_id"
    source_plays = query(source, per_user).filter(pl.col("user_id").is_in(kept))
    assert query(snap, per_user).equals(source_plays.cast({"n": pl.Int64}))
    items = query(
        snap,
        "SELECT count(*) AS n FROM user_collection_items "
        "WHERE collection_id NOT IN (SELECT id FROM user_collections)",
    )
    assert items["n"][0] == 0
    # everything referenced is there: every played track and collected record exists
    dangling = query(
        snap,
        "SELECT (SELECT count(*) FROM play_history WHERE track_id NOT IN (SELECT id FROM tracks))"
        " + (SELECT count(*) FROM user_collection_items"
        "    WHERE record_id NOT IN (SELECT id FROM records)) AS n",
    )
    assert dangling["n"][0] == 0
    info = snapshot_info(path)
    assert (info["sample_fraction"], info["seed"], info["sampled_users"]) == (0.3, 5, len(kept))


def test_sample_is_deterministic_per_seed(source, tmp_path):
    take_snapshot(source, tmp_path / "a.duckdb", SnapshotSpec(sample_fraction=0.3, seed=5))
    take_snapshot(source, tmp_path / "b.duckdb", SnapshotSpec(sample_fraction=0.3, seed=5))
    take_snapshot(source, tmp_path / "c.duckdb", SnapshotSpec(sample_fraction=0.3, seed=6))
    a, b, c = (_user_ids(parse_database(f"duckdb:{tmp_path / n}.duckdb")) for n in "abc")
    assert a == b and a != c


def test_sample_mask_is_stable_and_proportional():
    ids = np.arange(1, 200_001)
    mask = sample_mask(ids, 0.25, 42)
    assert abs(mask.mean() - 0.25) < 0.01
    assert np.array_equal(sample_mask(ids[:5000], 0.25, 42), mask[:5000])  # new users: no churn
    assert sample_mask(ids, 1.0, 42).all()
    assert not np.array_equal(sample_mask(ids, 0.25, 43), mask)


def test_rerun_replaces_the_file_and_a_failure_keeps_the_old_one(source, tmp_path):
    path = tmp_path / "replay.duckdb"
    take_snapshot(source, path)
    take_snapshot(source, path, SnapshotSpec(since=SINCE, until=UNTIL, sample_fraction=0.5))
    info = snapshot_info(path)
    assert info["since"] == SINCE and info["sample_fraction"] == 0.5
    assert (
        query(parse_database(f"duckdb:{path}"), "SELECT count(*) AS n FROM snapshot_info")["n"][0]
        == 1
    )
    missing = parse_database(f"duckdb:{tmp_path / 'no-such.duckdb'}")
    with pytest.raises(StorageError):
        take_snapshot(missing, path)
    assert snapshot_info(path)["since"] == SINCE  # the previous snapshot is intact
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []


def test_nightly_runs_unchanged_on_a_snapshot(full):
    result = run_nightly(full, params())
    assert result.status == "completed" and result.published
    assert result.rows["recommendation_data"] > 0 and result.rows["content_similarity"] > 0
    metrics = query(
        full, "SELECT count(*) AS n FROM daily_metrics WHERE metric_date = $1", (RUN_DATE,)
    )
    assert metrics["n"][0] > 0


def test_cli_snapshot_prints_a_line_per_table(source, tmp_path, capsys):
    path = tmp_path / "cli.duckdb"
    code = main(
        [
            "snapshot",
            "--from",
            source.url,
            "--to",
            str(path),
            "--since",
            str(SINCE),
            "--sample-users",
            "0.5",
            "--seed",
            "3",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and path.is_file()
    for table in TABLES:
        assert any(line.startswith(table + " ") and "rows" in line for line in err.splitlines())
    assert PASSWORD not in out + err
    assert snapshot_info(path)["seed"] == 3
    with pytest.raises(SystemExit) as exit_:
        main(["snapshot", "--from", source.url, "--to", str(path), "--sample-users", "2"])
    assert exit_.value.code == 2
    assert "must be more than 0 and at most 1" in capsys.readouterr().err
