"""Monthly partitions of the event tables (migration 0020): a fresh install, an existing
database's events kept through the migration and the split, partitions made ahead, events
of a month without one moved out of the default partition, retention by whole partitions,
row security on partitions, and extracts that read only their window's partitions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pg_helpers import connect, scalar

from flows.analyst.generate import generate_into
from flows.stages.extract import window_bounds
from flows.storage.backends import open_storage
from flows.storage.base import load_query
from flows.storage.bulk import write_frames
from flows.storage.database import Database
from flows.storage.literals import inline
from flows.storage.migrate import migrate
from flows.storage.partitions import ensure_partitions, partition_rows, split_legacy
from transforms.synthetic.frames import generate_frames

pytestmark = pytest.mark.postgres

SQL = Path(__file__).resolve().parent.parent / "sql"
EVENTS = {"play_history": "played_at", "usage_metrics": "occurred_at"}
END = dt.date(2026, 11, 20)  # the generated events' last day (exclusive)
NOW = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)


def _digest(conn: psycopg.Connection) -> dict[str, tuple]:
    """Rows and an md5 of every row of both event tables, in id order."""
    return {
        table: conn.execute(
            f"SELECT count(*), md5(string_agg(x::text, '|' ORDER BY id)) FROM {table} AS x"
        ).fetchone()
        for table in EVENTS
    }


def _access(conn: psycopg.Connection) -> dict[str, tuple]:
    """Grants and policies of both event tables (what the migration must keep)."""
    return {
        table: (
            scalar(conn, "SELECT relacl::text[] FROM pg_class WHERE oid = %s::regclass", (table,)),
            conn.execute(
                "SELECT policyname, roles::text[], cmd, qual, with_check FROM pg_policies "
                "WHERE tablename = %s ORDER BY policyname",
                (table,),
            ).fetchall(),
        )
        for table in EVENTS
    }


def _partitions(db: Database) -> dict[str, list[str]]:
    with open_storage(db) as storage:
        rows = partition_rows(storage)
    found: dict[str, list[str]] = {}
    for table, name, *_ in rows:
        found.setdefault(table, []).append(name)
    return found


@pytest.fixture
def existing(pg_database: Database, tmp_path: Path) -> Database:
    """A database migrated to 0019 and holding four months of events, before 0020."""
    older = tmp_path / "sql"
    shutil.copytree(SQL, older)
    for later in (older / "postgres").glob("*.sql"):
        if later.name >= "0020":
            later.unlink()
    migrate(pg_database, older)
    write_frames(pg_database, generate_frames(120, 80, 100, 7, END), replace=True)
    return pg_database


def test_a_fresh_install_has_this_month_two_ahead_and_a_default_partition(migrated_pg):
    this_month = dt.datetime.now(dt.UTC).strftime("%Y_%m")
    for table, names in _partitions(migrated_pg).items():
        assert f"{table}_p{this_month}" in names
        assert f"{table}_default" in names and f"{table}_legacy" not in names
        assert len(names) == 4  # this month, two ahead, the default
    with connect(migrated_pg) as conn:
        key = scalar(
            conn,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
            "'play_history_pkey'",
        )
    assert key == "PRIMARY KEY (id, played_at)"


def test_generated_events_load_straight_into_their_months(pg_database):
    generate_into(pg_database, users=120, tracks=80, days=100, seed=7, end=END)
    with connect(pg_database) as conn:
        for table in EVENTS:
            assert scalar(conn, f"SELECT count(*) FROM {table}") > 0
            assert scalar(conn, f"SELECT count(*) FROM {table}_default") == 0
    months = _partitions(pg_database)["play_history"]
    assert {f"play_history_p2026_{m:02d}" for m in (8, 9, 10, 11)} <= set(months)


def test_existing_events_survive_the_migration_and_the_split(existing):
    with connect(existing) as conn:
        before, access = _digest(conn), _access(conn)
        last_id = scalar(conn, "SELECT max(id) FROM play_history")
    migrate(existing)
    assert all(f"{t}_legacy" in names for t, names in _partitions(existing).items())
    with connect(existing) as conn:
        assert _digest(conn) == before
        assert _access(conn) == access
    lines: list[str] = []
    with open_storage(existing) as storage:
        made = split_legacy(storage, lines.append)
        ensure_partitions(storage, NOW, 2)
    months = {m.partition for m in made if m.table == "play_history"}
    assert months == {f"play_history_p2026_{m:02d}" for m in (8, 9, 10, 11)}
    assert sum(m.rows for m in made if m.table == "usage_metrics") == before["usage_metrics"][0]
    assert any("attached" in line for line in lines)
    with connect(existing) as conn:
        assert _digest(conn) == before
        assert _access(conn) == access
        new_id = scalar(
            conn,
            "INSERT INTO play_history (user_id, track_id, played_at) "
            "SELECT user_id, track_id, played_at FROM play_history LIMIT 1 RETURNING id",
        )
    assert new_id == last_id + 1  # the identity sequence went on from the old one
    assert not any(name.endswith("_legacy") for n in _partitions(existing).values() for name in n)


def test_writes_made_while_the_months_are_copied_are_kept(existing):
    migrate(existing)
    with connect(existing) as conn, open_storage(existing) as storage:
        assert storage.execute("maintenance/split_begin", ("play_history",)) == [(True,)]
        assert storage.execute("maintenance/split_copy", ("play_history",))[0][0] > 0
        oldest = "(SELECT min(played_at) FROM play_history)"  # in the month just copied
        gone = scalar(conn, f"DELETE FROM play_history WHERE played_at = {oldest} RETURNING id")
        changed = scalar(
            conn,
            f"UPDATE play_history SET source = 'changed' WHERE played_at = {oldest} RETURNING id",
        )
        late = scalar(
            conn,
            "INSERT INTO play_history (user_id, track_id, played_at) SELECT user_id, track_id, "
            "'2026-08-15 12:00Z' FROM play_history LIMIT 1 RETURNING id",
        )
        while storage.execute("maintenance/split_copy", ("play_history",))[0][0] is not None:
            pass
        before = _digest(conn)
        made = dict(storage.execute("maintenance/split_finish", ("play_history",)))
        assert _digest(conn) == before
        august = {r[0]: r[1] for r in conn.execute("SELECT id, source FROM play_history_p2026_08")}
    assert made["play_history_p2026_08"] == len(august)
    assert gone not in august and august[changed] == "changed" and late in august
    assert "play_history_legacy" not in _partitions(existing)["play_history"]


def test_an_event_of_a_month_without_partition_lands_and_moves_to_its_own(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute(
            "INSERT INTO users (id, email, username) VALUES (1, 'a@example.com', 'a');"
            "INSERT INTO usage_metrics (user_id, event_type, occurred_at) VALUES "
            "(1, 'page_view', '2027-06-05 10:00Z'), (1, 'page_view', '2019-01-02 00:00Z'),"
            # bogus dates: kept in the default partition, never a partition of their own
            "(1, 'page_view', 'infinity'), (1, 'page_view', '2045-01-01'),"
            "(1, 'page_view', '1900-01-01')"
        )
        assert scalar(conn, "SELECT count(*) FROM usage_metrics_default") == 5
    with open_storage(migrated_pg) as storage:
        made = ensure_partitions(storage, NOW, 2)
    moved = {m.partition: m.rows for m in made if m.rows}
    assert moved == {"usage_metrics_p2027_06": 1, "usage_metrics_p2019_01": 1}
    with connect(migrated_pg) as conn:
        assert scalar(conn, "SELECT count(*) FROM usage_metrics_default") == 3
        assert scalar(conn, "SELECT count(*) FROM usage_metrics") == 5


RETENTION_SQL = """
INSERT INTO users (id, email, username) VALUES (1, 'a@example.com', 'a');
INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, metric_name,
                           metric_value)
VALUES ('2025-05-31', 'platform', 'platform', 'all', 'plays', 4);
INSERT INTO usage_metrics (user_id, event_type, occurred_at) VALUES
    (1, 'page_view', '2024-04-10 12:00Z'),   -- April 2024: wholly before the cut, dropped
    (1, 'page_view', '2024-05-31 23:00Z'),   -- May 2024: wholly before the cut, dropped
    (1, 'page_view', '2024-06-01 00:00Z'),   -- June 2024 holds the cut: kept whole
    (1, 'page_view', '2025-05-01 12:00Z');   -- within the retention: kept
"""


def test_retention_drops_whole_months_older_than_the_cut_and_no_row_after_it(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute(RETENTION_SQL)
    with open_storage(migrated_pg) as storage:
        ensure_partitions(storage, NOW, 2)
        report = storage.cleanup(365, dt.datetime(2025, 6, 15, tzinfo=dt.UTC))
    assert report["usage_metrics"] == 2
    assert "play_history" not in report  # off unless asked for
    names = _partitions(migrated_pg)["usage_metrics"]
    assert "usage_metrics_p2024_05" not in names and "usage_metrics_p2024_06" in names
    with connect(migrated_pg) as conn:
        kept = conn.execute("SELECT occurred_at::date::text FROM usage_metrics ORDER BY 1")
        assert [r[0] for r in kept] == ["2024-06-01", "2025-05-01"]


def test_retention_counts_an_analysed_partition_from_its_statistics_not_its_rows(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute(RETENTION_SQL)
    with open_storage(migrated_pg) as storage:
        ensure_partitions(storage, NOW, 2)
    with connect(migrated_pg) as conn:  # as ANALYZE would leave it for a month of 1,000 rows
        conn.execute("ANALYZE usage_metrics_p2024_04")
        conn.execute(
            "UPDATE pg_class SET reltuples = 1000 WHERE relname = 'usage_metrics_p2024_04'"
        )
    with open_storage(migrated_pg) as storage:
        report = storage.cleanup(365, dt.datetime(2025, 6, 15, tzinfo=dt.UTC))
    assert report["usage_metrics"] == 1000 + 1  # April by its statistics, May (never) counted


def test_retention_keeps_a_month_whose_table_is_locked_and_drops_it_next_time(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute(RETENTION_SQL)
    with open_storage(migrated_pg) as storage:
        ensure_partitions(storage, NOW, 2)
    cut = dt.datetime(2025, 6, 15, tzinfo=dt.UTC)
    with connect(migrated_pg) as reader, open_storage(migrated_pg) as storage:
        reader.execute("BEGIN; SELECT count(*) FROM usage_metrics_p2024_04")  # a long reader
        assert storage.cleanup(365, cut)["usage_metrics"] == 0  # waited 5 s, kept both months
        reader.execute("COMMIT")
        assert storage.cleanup(365, cut)["usage_metrics"] == 2
    assert "usage_metrics_p2024_04" not in _partitions(migrated_pg)["usage_metrics"]


def test_retention_of_plays_is_off_by_default_and_drops_whole_months_when_set(existing):
    migrate(existing)
    with open_storage(existing) as storage:
        split_legacy(storage, lambda line: None)
        assert "play_history" not in storage.cleanup(365, NOW)
        dropped = storage.cleanup(365, NOW, play_retention_days=60)["play_history"]
    with connect(existing) as conn:
        oldest = scalar(conn, "SELECT min(played_at) FROM play_history")
        cut = NOW - dt.timedelta(days=60)
    assert dropped > 0
    assert oldest < cut  # the month holding the cut is kept whole
    assert oldest >= dt.datetime(cut.year, cut.month, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("role", ["anon", "authenticated", "rotation_pipeline", "service_role"])
def test_no_app_role_reads_or_drops_a_partition_directly(migrated_pg, role):
    partition = f"play_history_p{dt.datetime.now(dt.UTC):%Y_%m}"
    with connect(migrated_pg) as conn:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {partition}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"DROP TABLE {partition}")


def test_the_pipeline_manages_partitions_of_the_event_tables_only(migrated_pg):
    with connect(migrated_pg) as conn:
        conn.execute("SET ROLE rotation_pipeline")
        assert scalar(conn, "SELECT count(*) FROM play_history") == 0  # its read, as before
        made = conn.execute("SELECT * FROM ensure_event_partitions(now(), 5)").fetchall()
        assert {row[0] for row in made} == set(EVENTS)
        for table in ("users", "daily_metrics", "play_history_default"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only play_history"):
                conn.execute("SELECT drop_event_partitions_before(%s, now())", (table,))


def _scanned(plan: dict) -> set[str]:
    """Every relation a JSON plan reads."""
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _scanned(child)
    return found


@pytest.mark.parametrize("query", ["extract/play_history", "extract/usage_metrics"])
def test_the_extract_reads_only_the_partitions_of_its_window(existing, query):
    migrate(existing)
    with open_storage(existing) as storage:
        split_legacy(storage, lambda line: None)
        bounds = {row[1]: (row[2], row[3]) for row in partition_rows(storage)}
    window = window_bounds(dt.date(2026, 10, 20), 30)  # 2026-09-21 .. 2026-10-21
    sql, bound = inline(load_query(query), window)
    assert bound == ()  # literals: planned for these dates, as the extract runs it
    with connect(existing) as conn:
        plan = scalar(conn, f"EXPLAIN (FORMAT JSON) {sql}")
    scanned = _scanned((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    table = query.split("/")[1]
    assert scanned == {f"{table}_p2026_09", f"{table}_p2026_10"}
    for name in scanned:
        low, high = bounds[name]
        assert low < window[1] and high > window[0]


def test_a_swap_refused_for_its_lock_is_tried_again(existing):
    migrate(existing)
    with connect(existing) as reader, open_storage(existing) as storage:
        reader.execute("BEGIN; SELECT count(*) FROM usage_metrics")  # a long reader
        release = threading.Timer(7.0, reader.execute, ("COMMIT",))
        release.start()
        started = time.monotonic()
        try:
            made = split_legacy(storage, lambda line: None)
        finally:
            release.join()
    assert time.monotonic() - started > 5  # the usage swap waited 5 s in vain, then again
    assert {m.table for m in made} == set(EVENTS)
    assert not any(name.endswith("_legacy") for n in _partitions(existing).values() for name in n)
