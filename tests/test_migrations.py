"""The migrator: applies every migration once, refuses edited ones, and the DuckDB replay."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import duckdb
import pytest
from pg_helpers import connect, scalar

from flows.storage.database import Database, parse_database
from flows.storage.migrate import (
    MigrationError,
    _changed_message,
    migrate,
    migration_files,
    pending_migrations,
)
from flows.storage.queries import SQL
from transforms import columns as c

ALL_NAMES = [p.name.removesuffix(".sql") for p in migration_files()]

ENUMS = {
    "user_role": c.USER_ROLES,
    "store_status": c.STORE_STATUSES,
    "record_status": c.RECORD_STATUSES,
    "record_condition": c.RECORD_CONDITIONS,
    "sleeve_condition": c.SLEEVE_CONDITIONS,
    "audio_platform": c.AUDIO_PLATFORMS,
    "match_status": c.MATCH_STATUSES,
    "feedback_type": c.FEEDBACK_TYPES,
    "feedback_status": c.FEEDBACK_STATUSES,
    "play_action": c.PLAY_ACTIONS,
    "job_type": c.JOB_TYPES,
    "job_status": c.JOB_STATUSES,
    "log_level": c.LOG_LEVELS,
    "setting_type": c.SETTING_TYPES,
}

NAMED_INDEXES = (
    "idx_users_email",
    "idx_users_username",
    "idx_stores_slug",
    "idx_stores_discogs_username",
    "idx_records_artist",
    "idx_records_genres",
    "idx_records_styles",
    "idx_tracks_record_position",
    "idx_audio_matches_track_platform_status",
    "idx_audio_matches_status_confidence",
    "idx_play_history_user_played_at",
    "idx_play_history_played_at",
    "idx_favorites_user_type",
    "idx_usage_metrics_user_timestamp",
    "idx_usage_metrics_occurred_at",
    "idx_daily_metrics_date_type",
    "idx_content_similarity_lookup",
    "idx_recommendation_data_lookup",
    "idx_recommendation_data_expires_at",
    "idx_jobs_status_type",
    "idx_job_logs_job_id",
    "idx_store_inventory_record_id",
    "idx_store_inventory_store_id",
    "idx_user_collection_items_record_id",
    "idx_user_follows_store_id",
)

PINNED_FUNCTIONS = (
    "update_updated_at_column",
    "update_collection_item_count",
    "aggregate_daily_metrics",
    "cleanup_old_analytics_data",
    "current_app_user_id",
    "sync_identity_sequences",
)


def _copy_sql_dir(tmp_path: Path) -> Path:
    """Return a private copy of the sql/ folder that a test may edit."""
    target = tmp_path / "sql"
    shutil.copytree(SQL, target)
    return target


# PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
def test_all_migrations_apply_on_an_empty_database(pg_database: Database) -> None:
    assert pending_migrations(pg_database) == ALL_NAMES
    assert migrate(pg_database) == ALL_NAMES
    with connect(pg_database) as conn:
        rows = conn.execute(
            "SELECT version, name, length(checksum) FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert [r[1] for r in rows] == ALL_NAMES
    assert [r[0] for r in rows] == [int(n[:4]) for n in ALL_NAMES]
    assert {r[2] for r in rows} == {64}


@pytest.mark.postgres
def test_a_second_run_applies_nothing(migrated_pg: Database) -> None:
    assert migrate(migrated_pg) == []
    assert pending_migrations(migrated_pg) == []
    with connect(migrated_pg) as conn:
        assert scalar(conn, "SELECT count(*) FROM schema_migrations") == len(ALL_NAMES)


@pytest.mark.postgres
def test_an_edited_applied_migration_is_refused(pg_database: Database, tmp_path: Path) -> None:
    db = pg_database
    sql_dir = _copy_sql_dir(tmp_path)
    migrate(db, sql_dir)
    edited = sql_dir / "postgres" / "0002_core_tables.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError) as info:
        migrate(db, sql_dir)
    message = str(info.value)
    assert "0002_core_tables.sql" in message
    assert "forward-only" in message and "new migration" in message
    assert "\n" not in message
    assert db.display in message
    with connect(pg_database) as conn:  # nothing after the refusal was applied
        assert scalar(conn, "SELECT count(*) FROM schema_migrations") == len(ALL_NAMES)


@pytest.mark.postgres
def test_a_new_migration_file_is_applied_alone(pg_database: Database, tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    migrate(pg_database, sql_dir)
    (sql_dir / "postgres" / "0099_extra_table.sql").write_text("CREATE TABLE extra (x int);")
    assert pending_migrations(pg_database, sql_dir) == ["0099_extra_table"]
    assert migrate(pg_database, sql_dir) == ["0099_extra_table"]
    with connect(pg_database) as conn:
        assert scalar(conn, "SELECT to_regclass('extra') IS NOT NULL") is True


@pytest.mark.postgres
def test_a_failing_migration_leaves_no_trace(pg_database: Database, tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    migrate(pg_database, sql_dir)
    bad = sql_dir / "postgres" / "0099_broken.sql"
    bad.write_text("CREATE TABLE half_done (x int);\nSELECT 1 / 0;\n")
    with pytest.raises(MigrationError, match=r"0099_broken\.sql"):
        migrate(pg_database, sql_dir)
    with connect(pg_database) as conn:
        assert scalar(conn, "SELECT to_regclass('half_done') IS NULL") is True
        assert scalar(conn, "SELECT count(*) FROM schema_migrations WHERE version = 99") == 0
    assert pending_migrations(pg_database, sql_dir) == ["0099_broken"]


@pytest.mark.postgres
def test_concurrent_migrates_apply_each_file_once(pg_database: Database) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(pg_database))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(results[0] + results[1]) == sorted(ALL_NAMES)


def test_refusal_messages_never_show_the_password() -> None:
    db = parse_database("postgresql://app:s3cret@db.example.com:5432/rotation")
    message = _changed_message("0002_core_tables.sql", db)
    assert "s3cret" not in message
    assert "postgresql://app:***@db.example.com:5432/rotation" in message


def test_misnamed_migration_files_are_refused(tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    (sql_dir / "postgres" / "7_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"7_oops\.sql"):
        migration_files(sql_dir)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    (sql_dir / "postgres" / "0001_again.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share version 1"):
        migration_files(sql_dir)


def test_migration_files_are_in_version_order() -> None:
    names = [p.name for p in migration_files()]
    assert names == sorted(names)
    assert names[0].startswith("0001_")


@pytest.mark.postgres
def test_enum_types_have_exactly_the_values_of_columns_py(migrated_pg: Database) -> None:
    with connect(migrated_pg) as conn:
        rows = conn.execute(
            """SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FROM pg_type AS t JOIN pg_enum AS e ON e.enumtypid = t.oid
                GROUP BY t.typname"""
        ).fetchall()
    assert {name: tuple(values) for name, values in rows} == ENUMS


@pytest.mark.postgres
def test_the_named_indexes_exist(migrated_pg: Database) -> None:
    with connect(migrated_pg) as conn:
        found = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes").fetchall()}
        genres = scalar(
            conn, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", ("idx_records_genres",)
        )
    assert set(NAMED_INDEXES) - found == set()
    assert "USING gin" in str(genres)


@pytest.mark.postgres
def test_every_function_pins_its_search_path(migrated_pg: Database) -> None:
    with connect(migrated_pg) as conn:
        rows = conn.execute(
            "SELECT proname, proconfig FROM pg_proc WHERE proname = ANY(%s)",
            (list(PINNED_FUNCTIONS),),
        ).fetchall()
    assert {r[0] for r in rows} == set(PINNED_FUNCTIONS)
    for name, config in rows:
        assert config in (
            ["search_path=pg_catalog, public"],
            ["search_path=pg_catalog, public, pg_temp"],  # the SECURITY DEFINER ones (0014)
        ), name


@pytest.mark.postgres
def test_every_security_definer_function_searches_pg_temp_last(migrated_pg: Database) -> None:
    with connect(migrated_pg) as conn:
        rows = conn.execute(
            "SELECT proname, proconfig FROM pg_proc "
            "WHERE prosecdef AND pronamespace = 'public'::regnamespace"
        ).fetchall()
    assert {"update_collection_item_count", "sync_identity_sequences"} <= {r[0] for r in rows}
    for name, config in rows:
        paths = [c for c in config or [] if c.startswith("search_path=")]
        assert paths and paths[0].endswith(", pg_temp"), (name, config)


@pytest.mark.postgres
def test_every_table_has_rls_and_every_updated_at_a_trigger(migrated_pg: Database) -> None:
    with connect(migrated_pg) as conn:
        without_rls = conn.execute(
            """SELECT relname FROM pg_class
                WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
                  AND NOT relrowsecurity"""
        ).fetchall()
        untriggered = conn.execute(
            """SELECT c.table_name FROM information_schema.columns AS c
                WHERE c.table_schema = 'public' AND c.column_name = 'updated_at'
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_trigger AS t
                       WHERE t.tgrelid = ('public.' || c.table_name)::regclass
                         AND t.tgfoid = 'update_updated_at_column'::regproc)"""
        ).fetchall()
    assert without_rls == []
    assert untriggered == []


# DuckDB and the cross-backend contract ----------------------------------------------------


DUCK_EXTRAS = sorted(f.name.removesuffix(".sql") for f in (SQL / "duckdb").iterdir()
                     if f.name[:4].isdigit())  # fmt: skip
DUCK_MIGRATIONS = ["duckdb_schema", *DUCK_EXTRAS]


def test_duckdb_migrates_twice(duck_database: Database) -> None:
    assert pending_migrations(duck_database) == DUCK_MIGRATIONS
    assert duck_database.path is not None and not duck_database.path.exists()
    assert migrate(duck_database) == DUCK_MIGRATIONS
    assert migrate(duck_database) == []
    assert pending_migrations(duck_database) == []


def test_a_new_duckdb_migration_applies_to_an_existing_file(tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    db = parse_database(f"duckdb:{tmp_path / 'replay.duckdb'}")
    migrate(db, sql_dir)
    (sql_dir / "duckdb" / "0999_extra.sql").write_text("CREATE TABLE extra_table (x INTEGER);")
    assert pending_migrations(db, sql_dir) == ["0999_extra"]
    assert migrate(db, sql_dir) == ["0999_extra"]
    assert "extra_table" in _duck_columns(db)


def test_an_edited_duckdb_migration_is_refused(tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    db = parse_database(f"duckdb:{tmp_path / 'replay.duckdb'}")
    migrate(db, sql_dir)
    extra = sql_dir / "duckdb" / "0002_record_popularity.sql"
    extra.write_text(extra.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=r"0002_record_popularity\.sql.*forward-only"):
        migrate(db, sql_dir)


def test_an_edited_duckdb_schema_is_refused(tmp_path: Path) -> None:
    sql_dir = _copy_sql_dir(tmp_path)
    db = parse_database(f"duckdb:{tmp_path / 'replay.duckdb'}")
    migrate(db, sql_dir)
    schema = sql_dir / "duckdb" / "schema.sql"
    schema.write_text(schema.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=r"schema\.sql.*forward-only"):
        migrate(db, sql_dir)


def _duck_columns(db: Database) -> dict[str, set[str]]:
    """Return {table: column names} of the DuckDB file's main schema."""
    import duckdb

    with duckdb.connect(str(db.path)) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main'"
        ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


@pytest.mark.postgres
def test_postgres_has_every_duckdb_table_and_column(
    migrated_pg: Database, migrated_duck: Database
) -> None:
    duck = _duck_columns(migrated_duck)
    with connect(migrated_pg) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
    pg: dict[str, set[str]] = {}
    for table, column in rows:
        pg.setdefault(table, set()).add(column)
    assert len(duck) >= 22
    missing = {t: cols - pg.get(t, set()) for t, cols in duck.items() if cols - pg.get(t, set())}
    assert missing == {}


def test_duckdb_outputs_lose_their_unique_indexes_and_keep_their_rows(tmp_path: Path) -> None:
    """0004 rebuilds the published tables without UNIQUE (its ART index would not fit the
    memory bound at scale): rows already published stay, and so do the wide views."""
    sql_dir = _copy_sql_dir(tmp_path)
    later = sql_dir / "duckdb" / "0004_outputs_without_unique_indexes.sql"
    text = later.read_text()
    later.unlink()
    db = parse_database(f"duckdb:{tmp_path / 'replay.duckdb'}")
    migrate(db, sql_dir)
    insert = (
        "INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
        "metric_name, metric_value) VALUES ('2026-01-02', 'platform', 'platform', 'all', "
        "'plays', 5)"
    )
    with duckdb.connect(str(db.path)) as conn:
        conn.execute(insert)
        with pytest.raises(duckdb.ConstraintException):
            conn.execute(insert)
    later.write_text(text)
    assert migrate(db, sql_dir) == ["0004_outputs_without_unique_indexes"]
    with duckdb.connect(str(db.path)) as conn:
        assert conn.execute("SELECT plays FROM daily_metrics_platform").fetchall() == [(5.0,)]
        unique = conn.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'UNIQUE'"
        ).fetchall()
        conn.execute(insert)  # the pipeline keeps keys unique: DELETE, then INSERT
    assert unique == []
