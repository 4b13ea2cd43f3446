"""Crash safety: a nightly run SIGKILLed during publish leaves the old rows or the new ones.

The small CI case of bench/faults.py (which runs 20+ trials at the small profile): three
runs in subprocesses, each killed at a seeded random moment of its publish stage.
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench" / "faults.py"


def _faults():
    """Return bench/faults.py as the module `faults` (the harness is also a script)."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        return importlib.import_module("faults")
    finally:
        sys.path.remove(str(BENCH.parent))


faults = _faults()


@pytest.fixture(scope="module")
def published(postgres_server):
    """Yield (db, checksums per variant, publish seconds) on a generated tiny database."""
    with faults.scratch_database("rotation_crashtest") as db:
        faults.generate(db, "tiny")
        sums, publish_s = faults.reference_runs(db)
        yield db, sums, publish_s


def test_checksums_tell_the_two_variants_apart(published):
    db, sums, _ = published
    now = faults.state(db.url)
    assert faults.checksums(now) == sums["A"] != sums["B"]
    assert all(s.rows > 0 and s.duplicate_keys == 0 for s in now.values())


@pytest.mark.parametrize("number", [1, 2, 3])
def test_sigkill_during_publish_leaves_old_or_new_rows_and_the_next_run_recovers(published, number):
    db, sums, publish_s = published
    rng = random.Random(number)

    trial = faults.kill_trial(db, number, sums, publish_s * 1.3, rng)

    assert not trial.outcome.startswith("broken"), trial
    assert trial.outcome in ("old", "new", "finished")
    if trial.outcome != "finished":
        assert trial.killed_status == "running"  # the dead process could not close its job
    assert trial.recovered, trial


def test_a_kill_before_commit_keeps_the_previous_run(published):
    """No delay at all: the kill lands while the publish transaction is still open."""
    db, sums, _ = published

    trial = faults.kill_trial(db, 0, sums, 0.0, random.Random(0))

    assert trial.outcome == "old", trial
    assert trial.killed_status == "running"
    assert trial.recovered, trial


# dropped connections (no server restart: bench/faults.py --restart does that) ---------------


def _terminate_pipeline_backends(db) -> int:
    """Terminate every other backend connected to `db`'s database; return how many."""
    import psycopg

    name = db.url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(faults.ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


@pytest.fixture
def fresh_tiny(postgres_server, monkeypatch):
    """Yield a tiny generated database published once with variant A, retries made quick."""
    import flows.runner
    from flows.nightly import run_nightly

    monkeypatch.setattr(flows.runner, "RETRY_DELAYS_S", [0.2, 0.5, 1.0])
    with faults.scratch_database("rotation_droptest") as db:
        faults.generate(db, "tiny")
        run_nightly(db, faults.params_of("B"))
        b = faults.checksums(faults.state(db.url))
        run_nightly(db, faults.params_of("A"))
        yield db, {"A": faults.checksums(faults.state(db.url)), "B": b}


def _run_with_drop(db, monkeypatch, target, attribute: str, when):
    """Run variant B, terminating the pipeline's connections the first time `when(args)`
    holds for a call of target.attribute; return (result or exception, drops)."""
    from flows.nightly import run_nightly

    real = getattr(target, attribute)
    drops: list[int] = []

    def dropping(*args, **kwargs):
        if not drops and when(args):
            drops.append(_terminate_pipeline_backends(db))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attribute, dropping)
    try:
        outcome = run_nightly(db, faults.params_of("B"))
    except Exception as exc:  # a clean failure is allowed; checked by the caller
        outcome = exc
    monkeypatch.setattr(target, attribute, real)
    return outcome, drops


def _assert_completed_or_failed_cleanly(db, outcome, sums) -> str:
    job = faults.job_row(db.url, faults.last_job_id(db.url))
    now = faults.state(db.url)
    assert all(s.duplicate_keys == 0 and s.rows > 0 for s in now.values())
    if isinstance(outcome, Exception):
        assert job["job_status"] == "failed", job
        assert faults.checksums(now) == sums["A"]  # nothing of the failed run published
        assert job["run_id"] not in faults.run_ids(now)
        return "failed"
    assert outcome.status == "completed" and outcome.published
    assert job["job_status"] == "completed" and job["run_id"] == outcome.run_id
    assert faults.checksums(now) == sums["B"]
    assert faults.run_ids(now) == {outcome.run_id}
    return "completed"


def test_connections_dropped_during_publish_are_retried_and_the_run_completes(
    fresh_tiny, monkeypatch
):
    import flows.storage.bulk

    db, sums = fresh_tiny
    outcome, drops = _run_with_drop(
        db,
        monkeypatch,
        flows.storage.bulk,
        "copy_frame",
        lambda a: a[1] == "recommendation_data_next",
    )
    assert drops and drops[0] >= 1  # the publish transaction's connection was among them
    assert _assert_completed_or_failed_cleanly(db, outcome, sums) == "completed"


def test_connections_dropped_during_extract_are_retried_and_the_run_completes(
    fresh_tiny, monkeypatch
):
    from flows.storage.postgres import PostgresStorage

    db, sums = fresh_tiny
    outcome, drops = _run_with_drop(
        db, monkeypatch, PostgresStorage, "read", lambda a: a[1] == "extract/play_history"
    )
    assert drops and drops[0] >= 2  # the Arrow reader and the bookkeeping connection
    assert _assert_completed_or_failed_cleanly(db, outcome, sums) == "completed"


def test_connections_dropped_between_stages_complete_or_fail_cleanly(fresh_tiny, monkeypatch):
    """Dropped while a compute stage runs: the next bookkeeping write meets a dead
    connection. The run must then complete, or fail with its job row failed and nothing of
    it published: never a job left running, never half-published tables."""
    from flows.stages import recommendations

    db, sums = fresh_tiny
    outcome, drops = _run_with_drop(
        db, monkeypatch, recommendations, "compute_recommendations", lambda a: True
    )
    assert drops and drops[0] >= 2
    print("dropped between stages:", _assert_completed_or_failed_cleanly(db, outcome, sums))


def test_every_pipeline_connection_has_timeouts(fresh_tiny):
    from flows.storage.backends import open_storage
    from flows.storage.postgres import CONNECT_TIMEOUT_S, _with_connect_timeout

    db, _ = fresh_tiny
    with open_storage(db) as storage:
        small = storage._small_conn()
        assert small.execute("SHOW statement_timeout").fetchone()[0] not in ("0", "0ms")
        assert small.info.get_parameters()["connect_timeout"] == str(CONNECT_TIMEOUT_S)
        with storage._arrow_conn() as arrow, arrow.cursor() as cur:
            cur.execute("SELECT current_setting('statement_timeout'), "
                        "current_setting('lock_timeout')")  # fmt: skip
            statement, lock = cur.fetchone()
        assert statement not in ("0", "0ms") and lock not in ("0", "0ms")
    assert f"connect_timeout={CONNECT_TIMEOUT_S}" in _with_connect_timeout(db.url)
