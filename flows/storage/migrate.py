"""Apply the forward-only schema migrations to PostgreSQL, or the replay schema to DuckDB."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

import duckdb
import psycopg

from flows.storage.database import Database
from flows.storage.errors import MigrationError, storage_error
from flows.storage.queries import SQL, sql_files

log = logging.getLogger(__name__)
DUCKDB_VERSION = 1
DUCKDB_NAME = "duckdb_schema"
# pg_advisory_xact_lock key shared by every migrate(): "rotation" in ASCII, as a bigint.
LOCK_KEY = 0x726F746174696F6E
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NUMBERED = re.compile(r"^\d{4}_")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version number, name (the file stem), path and sha256."""

    version: int
    name: str
    path: Traversable

    @property
    def checksum(self) -> str:
        """Return the sha256 hex digest of the file's bytes."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migration_files(sql_dir: Traversable | None = None) -> list[Traversable]:
    """Return the Postgres migration files (sql/postgres/NNNN_name.sql) in version order."""
    return [m.path for m in _migrations(sql_dir)]


def pending_migrations(db: Database, sql_dir: Traversable | None = None) -> list[str]:
    """Return the names of the migrations not yet applied to `db`, in the order they would run."""
    if not db.is_postgres:
        if db.path is None or not db.path.exists():
            return [DUCKDB_NAME] + [m.name for m in _duck_extras(sql_dir)]
        with _duck_connect(db) as conn:
            applied = _duck_applied(conn)
        base = [] if DUCKDB_VERSION in applied else [DUCKDB_NAME]
        return base + [m.name for m in _duck_extras(sql_dir) if m.version not in applied]
    with _connect(db) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = _pg_applied(conn) if exists and exists[0] else {}
    return [m.name for m in _migrations(sql_dir) if m.version not in applied]


def migrate(db: Database, sql_dir: Traversable | None = None) -> list[str]:
    """Return the names of the migrations applied now (empty when `db` was up to date)."""
    if db.is_postgres:
        return _migrate_postgres(db, _migrations(sql_dir))
    applied = _migrate_duckdb(db, (sql_dir or SQL) / "duckdb" / "schema.sql")
    return applied + _migrate_duckdb_extras(db, _duck_extras(sql_dir))


# PostgreSQL ---------------------------------------------------------------------------------


def _migrations(sql_dir: Traversable | None) -> list[Migration]:
    """Return the parsed migration files of sql_dir/postgres, checking names and versions."""
    folder = (sql_dir or SQL) / "postgres"
    found: dict[int, Migration] = {}
    for path in sql_files(folder):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"migrations {found[version].path.name} and {path.name} share version {version}"
            )
        found[version] = Migration(version, path.name.removesuffix(".sql"), path)
    return [found[v] for v in sorted(found)]


def _pg_applied(conn) -> dict[int, str]:
    """Return {version: checksum} of the migrations recorded in schema_migrations."""
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(version): checksum for version, checksum in rows}


def _check_unchanged(db: Database, migrations: list[Migration], applied: dict[int, str]) -> None:
    """Raise MigrationError when an applied migration's file no longer has its checksum."""
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(_changed_message(m.path.name, db))


def _changed_message(file_name: str, db: Database) -> str:
    """Return the one-line error for a migration file edited after it was applied."""
    return (
        f"migration {file_name} was changed after it was applied to {db.display} "
        "(checksum differs); applied migrations are forward-only: add a new migration "
        "file instead of editing this one"
    )


def _connect(db: Database, autocommit: bool = False) -> psycopg.Connection:
    """Return a connection to `db`; StorageError (one line, redacted) when it cannot be had."""
    try:
        return psycopg.connect(db.url, connect_timeout=10, autocommit=autocommit)
    except psycopg.Error as exc:
        raise storage_error(exc, db.display) from None


def _migrate_postgres(db: Database, migrations: list[Migration]) -> list[str]:
    """Apply each pending migration in its own locked transaction; return their names."""
    applied_now: list[str] = []
    with _connect(db, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(_CREATE_LEDGER)
            _check_unchanged(db, migrations, _pg_applied(conn))
        for m in migrations:
            if _apply_one(conn, db, m):
                log.info("applied migration %s to %s", m.path.name, db.display)
                applied_now.append(m.name)
    return applied_now


def _apply_one(conn, db: Database, m: Migration) -> bool:
    """Apply `m` with its ledger row in one transaction unless already applied; return whether."""
    sql = m.path.read_text(encoding="utf-8")
    checksum = m.checksum
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            row = conn.execute(
                "SELECT checksum FROM schema_migrations WHERE version = %s", (m.version,)
            ).fetchone()
            if row is not None:  # applied meanwhile by a concurrent migrate()
                if row[0] != checksum:
                    raise MigrationError(_changed_message(m.path.name, db))
                return False
            conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, checksum),
            )
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MigrationError(
            f"migration {m.path.name} failed on {db.display}: {first_line}"
        ) from exc
    return True


# DuckDB -------------------------------------------------------------------------------------


def _duck_connect(db: Database):
    """Return a DuckDB connection to the database file, creating its folder if needed."""
    assert db.path is not None, "a duckdb Database always has a path"
    db.path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(db.path))


def _duck_applied(conn) -> dict[int, str]:
    """Return {version: checksum} recorded in the DuckDB file (empty when there is no ledger)."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(version): checksum for version, checksum in rows}


def _migrate_duckdb(db: Database, schema: Traversable) -> list[str]:
    """Create the replay schema (idempotent) and record it; return ['duckdb_schema'] if new."""
    checksum = hashlib.sha256(schema.read_bytes()).hexdigest()
    with _duck_connect(db) as conn:
        applied = _duck_applied(conn)
        if DUCKDB_VERSION in applied:
            if applied[DUCKDB_VERSION] != checksum:
                raise MigrationError(
                    f"{schema.name} changed since it was applied to {db.display} (checksum "
                    "differs); the replay schema is forward-only: rebuild the DuckDB file, or "
                    "add the change as a new migration instead"
                )
            return []
        conn.execute("BEGIN TRANSACTION")
        conn.execute(schema.read_text(encoding="utf-8"))
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
            [DUCKDB_VERSION, DUCKDB_NAME, checksum],
        )
        conn.execute("COMMIT")
    log.info("applied the DuckDB replay schema to %s", db.display)
    return [DUCKDB_NAME]


def _duck_extras(sql_dir: Traversable | None) -> list[Migration]:
    """Return the DuckDB migrations after the base schema: sql/duckdb/NNNN_name.sql, N ≥ 2."""
    folder = (sql_dir or SQL) / "duckdb"
    found = []
    for path in sql_files(folder):
        if not _NUMBERED.match(path.name):
            continue
        version = int(path.name[:4])
        if version <= DUCKDB_VERSION:
            raise MigrationError(
                f"{path.name}: DuckDB migrations start at 0002 (0001 is schema.sql)"
            )
        found.append(Migration(version, path.name.removesuffix(".sql"), path))
    return found


def _migrate_duckdb_extras(db: Database, extras: list[Migration]) -> list[str]:
    """Apply the pending DuckDB migrations, each in its own transaction; return their names."""
    done = []
    with _duck_connect(db) as conn:
        applied = _duck_applied(conn)
        for m in extras:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(
                        f"{m.path.name} changed since it was applied to {db.display} (checksum "
                        "differs); migrations are forward-only: add a new file instead"
                    )
                continue
            conn.execute("BEGIN TRANSACTION")
            conn.execute(m.path.read_text(encoding="utf-8"))
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                [m.version, m.name, m.checksum],
            )
            conn.execute("COMMIT")
            done.append(m.name)
    return done
