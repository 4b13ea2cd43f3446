"""Publishing is atomic: a load that fails midway leaves every published table as it was."""

from __future__ import annotations

from datetime import timedelta

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
from flows.storage.database import Database
from flows.storage.errors import StorageError
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


def test_a_stale_running_job_is_marked_failed_by_the_next_run(generated):
    # created by generate's migration: the jobs table exists, and one run fills it in
    now = utcnow()
    marks = ", ".join(placeholder(generated, i) for i in range(1, 6))
    insert = (
        "INSERT INTO jobs (job_type, job_status, payload, run_id, started_at, heartbeat_at, "
        f"created_at, updated_at) VALUES ('nightly', 'running', '{{}}', {marks})"
    )
    for run_id, heartbeat in (("stale-run", now - timedelta(hours=3)), ("live-run", now)):
        execute(generated, insert, (run_id, heartbeat, heartbeat, heartbeat, heartbeat))

    result = run_nightly(generated, params())

    jobs = {
        row["run_id"]: row
        for row in query(
            generated, "SELECT run_id, job_status, error_message, completed_at FROM jobs"
        ).to_dicts()
    }
    assert jobs["stale-run"]["job_status"] == "failed"
    assert "heartbeat" in jobs["stale-run"]["error_message"]
    assert jobs["stale-run"]["completed_at"] is not None
    assert jobs["live-run"]["job_status"] == "running"
    assert jobs[result.run_id]["job_status"] == "completed"
    warnings = query(
        generated,
        "SELECT message FROM job_logs WHERE log_level = 'warning' AND stage = 'start'",
    )["message"].to_list()
    assert len(warnings) == 1 and "left running" in warnings[0]
