"""The nightly run works as a login that holds rotation_pipeline, and only as much as that.

Data is generated as the admin (who owns every table); the run connects as a LOGIN role
created here, a member of rotation_pipeline (INHERIT: it gets the grants, not the role's
attributes) that owns nothing and is subject to Row Level Security.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from pipeline_fixtures import PG_ADMIN_URL, fresh_pg, generate, latest_job, params, query

from flows.nightly import run_nightly
from flows.storage.database import Database, parse_database

pytestmark = pytest.mark.postgres

DENIED = psycopg.errors.InsufficientPrivilege
PUBLISHED = ("content_similarity", "recommendation_data")


@pytest.fixture(scope="module")
def as_pipeline(postgres_server):
    """Yield (admin Database, the same database as the pipeline login, the first run's
    outcome, the login's name); the login is dropped afterwards (roles are cluster-wide)."""
    login = f"rotation_pipeline_login_{uuid.uuid4().hex[:8]}"
    with fresh_pg("rotation_rolerun") as admin:
        generate(admin)  # migrations: rotation_pipeline exists from here on
        with psycopg.connect(admin.url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {login} LOGIN INHERIT IN ROLE rotation_pipeline")
            conn.execute("CREATE TABLE discogs_tokens (user_id bigint, token text)")
            conn.execute("INSERT INTO discogs_tokens VALUES (1, 'secret-discogs-token')")
            conn.execute(  # the one setting the run reads (the default lower bound, explicit)
                "INSERT INTO settings (key, value, description) VALUES "
                "('platform.start_date', '\"2015-01-01\"', 'First day of valid events')"
            )
        pipeline = parse_database(admin.url.replace("//root@", f"//{login}@", 1))
        try:
            try:
                outcome = run_nightly(pipeline, params())
            except Exception as exc:  # reported by the test below, with the failing statement
                outcome = exc
            yield admin, pipeline, outcome, login
        finally:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{admin.url.rsplit("/", 1)[1]}" '
                             "WITH (FORCE)")  # fmt: skip
                conn.execute(f"DROP ROLE IF EXISTS {login}")


def _connect(db: Database) -> psycopg.Connection:
    return psycopg.connect(db.url, autocommit=True, connect_timeout=10)


def test_the_login_owns_nothing_and_bypasses_nothing(as_pipeline):
    _, pipeline, _, login = as_pipeline
    with _connect(pipeline) as conn:
        row = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolinherit, "
            "pg_has_role(current_user, 'rotation_pipeline', 'USAGE') "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()[0]
        rls = conn.execute("SELECT row_security_active('recommendation_data')").fetchone()[0]
    assert row == (login, False, False, True, True)
    assert owned == 0
    assert rls is True  # RLS applies to every statement the run makes


def test_nightly_runs_and_publishes_as_the_pipeline_role(as_pipeline):
    admin, _, outcome, _ = as_pipeline
    assert not isinstance(outcome, Exception), f"nightly as rotation_pipeline: {outcome}"
    assert outcome.status == "completed" and outcome.published
    for name in PUBLISHED:
        runs = query(admin, f"SELECT DISTINCT run_id FROM {name}")["run_id"].to_list()
        assert runs == [outcome.run_id], name
    job = latest_job(admin)
    assert job["run_id"] == outcome.run_id and job["job_status"] == "completed"
    stages = {s["stage"] for s in job["result"]["stages"]}
    assert {"extract", "publish_metrics", "publish", "retention"} <= stages


def test_the_role_reads_only_the_setting_it_needs(as_pipeline):
    admin, pipeline, *_ = as_pipeline
    with _connect(admin) as conn:
        total = conn.execute("SELECT count(*) FROM settings").fetchone()[0]
    with _connect(pipeline) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM settings ORDER BY key")]
        with pytest.raises(DENIED):
            conn.execute("SELECT description FROM settings")
    assert total > 1
    assert keys == ["platform.start_date"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT token FROM discogs_tokens",
        "INSERT INTO discogs_tokens VALUES (2, 'x')",
        "UPDATE users SET display_name = 'pwned'",
        "DELETE FROM records",
        "UPDATE settings SET value = '\"2000-01-01\"' WHERE key = 'platform.start_date'",
    ],
)
def test_the_login_cannot_touch_what_the_pipeline_does_not_own(as_pipeline, sql):
    admin, pipeline, *_ = as_pipeline
    with _connect(pipeline) as conn, pytest.raises(DENIED):
        conn.execute(sql)
    with _connect(admin) as conn:
        assert conn.execute("SELECT token FROM discogs_tokens").fetchone()[0] == (
            "secret-discogs-token"
        )
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] > 0
