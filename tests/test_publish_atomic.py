"""Publishing is atomic: a load that fails midway leaves every published table as it was."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from pipeline_fixtures import (
    BACKENDS,
    execute,
    fresh_database,
    generate,
    latest_job,
    params,
    placeholder,
    query,
    table,
)

import flows.storage.bulk
from flows.nightly import run_nightly
from flows.storage.base import load_query
from flows.storage.database import Database
from flows.storage.errors import StorageError
from flows.storage.postgres import PostgresStorage
from flows.tracking import utcnow

INJECTED = "injected failure while loading recommendation_data"
PUBLISHED = ("content_similarity", "recommendation_data")


@pytest.fixture(params=BACKENDS)
def generated(request, tmp_path) -> Database:
    """Return a database of each backend holding the generated data, no run yet."""
    with fresh_database(request.param, tmp_path, request) as db:
        generate(db)
        yield db


def _model_quality(db: Database):
    return query(
        db,
        "SELECT metric_name, metric_value, run_id FROM daily_metrics "
        "WHERE metric_type = 'model_quality' ORDER BY metric_name",
    )


def test_failed_load_leaves_both_published_tables_untouched(generated, monkeypatch):
    first = run_nightly(generated, params())
    assert first.published
    snapshot = {name: table(generated, name) for name in PUBLISHED}
    quality = _model_quality(generated)
    assert all(frame.height > 0 for frame in snapshot.values()) and quality.height > 0

    real_copy = flows.storage.bulk.copy_frame
    calls: list[tuple[str, int]] = []

    def failing_copy(conn, name, frame, *args, **kwargs):
        # Postgres loads the swapped tables into <table>_next (migration 0012)
        calls.append((name.removesuffix("_next"), frame.height))
        if name.removesuffix("_next") == "recommendation_data":
            raise RuntimeError(INJECTED)
        return real_copy(conn, name, frame, *args, **kwargs)

    monkeypatch.setattr(flows.storage.bulk, "copy_frame", failing_copy)
    with pytest.raises(StorageError, match=INJECTED):
        run_nightly(generated, params())
    monkeypatch.undo()

    # content_similarity really was loaded too (on Postgres beside recommendation_data)
    written = [name for name, rows in calls if rows > 0]
    assert {"content_similarity", "recommendation_data"} <= set(written)
    for name, frame in snapshot.items():
        assert table(generated, name).equals(frame), f"{name} changed by a failed publish"
    assert _model_quality(generated).equals(quality)

    job = latest_job(generated)
    assert job["run_id"] != first.run_id
    assert job["job_status"] == "failed"
    assert INJECTED in job["error_message"]
    assert job["result"]["status"] == "failed"
    p = placeholder(generated, 1)
    errors = query(
        generated,
        f"SELECT message FROM job_logs WHERE job_id = {p} AND log_level = 'error'",
        (job["id"],),
    )["message"].to_list()
    assert any(INJECTED in message for message in errors)


@contextmanager
def _holding(db: Database, run_id: str):
    """Hold a job as its living run does (Postgres: its advisory lock; DuckDB: nothing)."""
    if not db.is_postgres:
        yield
        return
    with psycopg.connect(db.url, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:
        (job_id,) = conn.execute("SELECT id FROM jobs WHERE run_id = $1", (run_id,)).fetchone()
        conn.execute(load_query("tracking/claim_job"), (job_id,))
        yield


def test_a_dead_runs_job_is_closed_at_once_by_the_next_run(generated):
    """A living run holds its job (a session advisory lock); a 'running' job nobody holds
    died with its process. One whose publish had committed is not called failed."""
    now = utcnow()
    marks = ", ".join(placeholder(generated, i) for i in range(1, 5))
    insert = (
        "INSERT INTO jobs (job_type, job_status, payload, run_id, result, started_at, "
        f"created_at) VALUES ('nightly', 'running', '{{}}', {marks})"
    )
    runs = {"dead-run": None, "dead-after-publish": '{"published": true}', "live-run": None}
    for run_id, result in runs.items():
        execute(generated, insert, (run_id, result, now, now))
    with _holding(generated, "live-run"):
        result = run_nightly(generated, params())

    jobs = {
        row["run_id"]: row
        for row in query(generated, "SELECT run_id, job_status, error_message FROM jobs").to_dicts()
    }
    assert jobs["dead-run"]["job_status"] == "failed"
    assert "died before publishing" in jobs["dead-run"]["error_message"]
    assert jobs["dead-after-publish"]["job_status"] == "completed_with_warnings"
    assert "results are live" in jobs["dead-after-publish"]["error_message"]
    # a DuckDB file has one writing process at a time: every running job there is dead
    assert jobs["live-run"]["job_status"] == ("running" if generated.is_postgres else "failed")
    assert jobs[result.run_id]["job_status"] == "completed"
    warnings = query(
        generated,
        "SELECT message FROM job_logs WHERE log_level = 'warning' AND stage = 'start'",
    )["message"].to_list()
    assert len(warnings) == (2 if generated.is_postgres else 3)
    assert all("left running by a process that died" in w for w in warnings)


@pytest.mark.postgres
def test_a_living_run_holds_its_job_again_after_its_connection_drops(migrated_pg):
    """The hold is a session lock: lost with the bookkeeping connection, so taken again as
    soon as that connection is opened again (else a later run would close a living job)."""
    generated = migrated_pg
    held = (
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = hashtext('rotation.jobs')::oid AND objid = %s"
    )
    with (
        PostgresStorage(generated) as storage,
        psycopg.connect(generated.url, autocommit=True) as admin,
    ):
        storage.claim_job(4242)
        (first,) = admin.execute(held, (4242,)).fetchone()
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        storage.execute_sql("SELECT 1")  # reconnects (a dropped link is retried)
        (again,) = admin.execute(held, (4242,)).fetchone()
        assert again != first
        storage.release_job(4242)
        assert admin.execute(held, (4242,)).fetchone() is None
