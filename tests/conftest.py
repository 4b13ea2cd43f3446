"""Shared fixtures: a fresh PostgreSQL database per test, a fresh DuckDB file per test."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.storage.database import Database, parse_database

PG_ADMIN_URL = os.environ.get("ROTATION_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("ROTATION_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("ROTATION_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("ROTATION_REQUIRE_REDIS") == "1"
ROOT = Path(__file__).resolve().parent.parent
PROJECT_CODE = tuple(
    f"{ROOT / package}{os.sep}" for package in ("flows", "models", "transforms", "bench")
)


@pytest.fixture(autouse=True)
def no_deprecated_calls_in_project_code() -> Iterator[None]:
    """Fail a test whose run made a deprecated call from the project's own code.

    A filter cannot do it: polars warns from Rust, where an error-turned warning is printed
    and dropped. Every other warning is passed on to pytest's own summary and filters.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        yield
    ours = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and w.filename.startswith(PROJECT_CODE):
            ours.append(f"{w.filename}:{w.lineno}: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    assert not ours, "deprecated calls in the project's code:\n" + "\n".join(ours)


def _admin_connection():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def _postgres_available() -> bool:
    try:
        with _admin_connection():
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Return the admin URL of the test server; fail (CI) or skip (laptop) without one."""
    if not _postgres_available():
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}"
        if REQUIRE_PG:
            pytest.fail(message + " (ROTATION_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def redis_server() -> str:
    """Return the URL of the shared test Redis; fail (CI) or skip (laptop) without one."""
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        message = f"Redis not reachable at {REDIS_URL}: {exc}"
        if REQUIRE_REDIS:
            pytest.fail(message + " (ROTATION_REQUIRE_REDIS=1)")
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def pg_database(postgres_server: str) -> Iterator[Database]:
    """Yield an empty, freshly created PostgreSQL database, dropped afterwards."""
    name = f"rotation_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield parse_database(f"{base}/{name}")
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_pg(pg_database: Database) -> Database:
    """Return a fresh PostgreSQL database with every migration applied."""
    from flows.storage.migrate import migrate

    migrate(pg_database)
    return pg_database


@pytest.fixture
def duck_database(tmp_path) -> Database:
    """Return a DuckDB database in a fresh file (not created yet)."""
    return parse_database(f"duckdb:{tmp_path / 'rotation.duckdb'}")


@pytest.fixture
def migrated_duck(duck_database: Database) -> Database:
    """Return a fresh DuckDB file with the replay schema."""
    from flows.storage.migrate import migrate

    migrate(duck_database)
    return duck_database


def pytest_sessionfinish(session, exitstatus):
    """In CI (ROTATION_REQUIRE_POSTGRES=1) a skipped test fails the run: nothing may skip."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if REQUIRE_PG and skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {skipped} test(s) skipped with ROTATION_REQUIRE_POSTGRES=1")
        session.exitstatus = 1
