"""Reading from a read replica: on a real streaming standby made for these tests
(tests/replica_fixtures.py), the nightly, the backfill and `rotation snapshot` read the standby,
once it has replayed the primary's position, and write only on the primary; a stale standby
fails a run with one line and nothing published."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pipeline_fixtures import RUN_DATE, generate, params, query

from flows.backfill import run_backfill
from flows.cli import main
from flows.nightly import run_nightly
from flows.runner import direct
from flows.stages.extract import extract_inputs, extract_replica_inputs
from flows.storage.backends import open_storage
from flows.storage.database import (
    ENV_VAR,
    REPLICA_ENV_VAR,
    DatabaseUrlError,
    parse_database,
    parse_replica,
)
from flows.storage.replica import SharedSnapshotStorage
from flows.storage.secrets import for_this_process, resolve_replica

pytest_plugins = ["prefect_fixtures", "replica_fixtures"]
pytestmark = pytest.mark.postgres

ROTATION = Path(sys.executable).with_name("rotation")
PROJECT = Path(__file__).resolve().parents[1]
EVENT_TABLES = ("play_history", "usage_metrics")
#: Scans of an event table and, once it is partitioned, of its partitions.
SCANS = """
SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint
FROM pg_stat_user_tables
WHERE relid IN (SELECT relid FROM pg_partition_tree(%s::regclass))
"""
#: Rows of an event table (its partitions) read by scans and index fetches.
ROWS_READ = """
SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::bigint
FROM pg_stat_user_tables
WHERE relid IN (SELECT relid FROM pg_partition_tree(%s::regclass))
"""
OTHER_SESSIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""
#: A backend sends its table counts when idle, at most once a second (PostgreSQL 15).
STATS_FLUSH_S = 1.2
NEW_PLAYS = 7


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch):
    """The CLI takes the URL variables out of its environment and sets Prefect's: undo that."""
    for name in (ENV_VAR, REPLICA_ENV_VAR, "PREFECT_LOGGING_LEVEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pair(streaming_pair):
    """Return the streaming pair with the tiny generated data set on it, replayed."""
    generate(streaming_pair.primary)
    streaming_pair.wait_for_replay()
    return streaming_pair


def scans(run_sql: Callable, counted: str = SCANS) -> dict[str, int]:
    """Return the scans (or the `counted`) of each event table counted by the server that
    `run_sql` queries, once no other session is left (a closing session sends its counts
    before it leaves pg_stat_activity)."""
    deadline = time.monotonic() + 30
    while run_sql(OTHER_SESSIONS)[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    return {t: run_sql(counted, (t,))[0][0] for t in EVENT_TABLES}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Return how much each count grew."""
    return {t: after[t] - before[t] for t in before}


def measuring(stages: dict[str, str], measure: Callable[[], dict]) -> tuple[Callable, dict]:
    """Return a stage runner that measures (after the run's idle sessions have sent their
    counts) before each stage named in `stages`, under that key, and the measures."""
    measures: dict[str, dict] = {}

    def runner(name: str, fn, *args, retry: bool = False):
        key = stages.get(name)
        if key and key not in measures:
            time.sleep(STATS_FLUSH_S)
            measures[key] = measure()
        return direct(name, fn, *args, retry=retry)

    return runner, measures


def primary_scans(pair) -> dict[str, int]:
    """Return the primary's counts now, the sessions of a running run included (see measuring)."""
    return {t: pair.primary_sql(SCANS, (t,))[0][0] for t in EVENT_TABLES}


def start_cli(api_url: str, home: Path, *args: str) -> subprocess.Popen:
    """Start `rotation` reporting to the session's Prefect server (no URL in its environment)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, REPLICA_ENV_VAR)}
    env |= {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}
    pipe = subprocess.PIPE
    return subprocess.Popen(
        [str(ROTATION), *args], stdout=pipe, stderr=pipe, text=True, env=env, cwd=PROJECT
    )


def error_lines(stderr: str) -> list[str]:
    """Return the lines of stderr that are not progress lines ("[ 12.5%] …")."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


def published(pair) -> list[tuple]:
    """Return which runs' rows the primary's published tables hold, and how many."""
    return pair.primary_sql(
        "SELECT 'daily_metrics', run_id, count(*) FROM daily_metrics GROUP BY run_id "
        "UNION ALL SELECT 'recommendation_data', run_id, count(*) FROM recommendation_data "
        "GROUP BY run_id ORDER BY 1, 2"
    )


def platform_plays(pair) -> float | None:
    """Return the published `plays` metric of the run date (platform-wide)."""
    rows = pair.primary_sql(
        "SELECT metric_value FROM daily_metrics WHERE metric_date = %s "
        "AND metric_type = 'platform' AND metric_name = 'plays'",
        (RUN_DATE,),
    )
    return float(rows[0][0]) if rows else None


def add_plays(pair, n: int) -> None:
    """Write `n` valid plays of the run date on the primary."""
    user, track = pair.primary_sql(
        "SELECT (SELECT min(id) FROM users WHERE created_at < %s), (SELECT min(id) FROM tracks)",
        (RUN_DATE,),
    )[0]
    at = dt.datetime.combine(RUN_DATE, dt.time(12), tzinfo=dt.UTC)
    for i in range(n):
        pair.primary_sql(
            "INSERT INTO play_history (id, user_id, track_id, action, played_at,"
            " duration_played_ms, completion_percentage, session_id, device_type, source)"
            " SELECT max(id) + 1, %s, %s, 'play', %s, 30000, 50, 'replica-test', 'web', 'search'"
            " FROM play_history",
            (user, track, at + dt.timedelta(minutes=i)),
        )


# the nightly and the backfill -------------------------------------------------------------------


@pytest.fixture(scope="module")
def replica_run(pair):
    """Run the nightly on the primary reading the replica; return its result and the scans
    of the event tables counted by each server: before, after the extract, before the
    primary's maintenance of the event tables (partitions, retention) and after the run."""
    replica_before = scans(pair.replica_sql)
    stages = {
        "publish_metrics": "extracted",
        "partitions": "maintenance",
        "retention": "maintenance",
    }
    runner, measures = measuring(stages, lambda: primary_scans(pair))
    rows_before = scans(pair.primary_sql, ROWS_READ)
    measures["before"] = scans(pair.primary_sql)
    result = run_nightly(pair.primary, params(), replica=pair.replica, runner=runner)
    measures["after"] = scans(pair.primary_sql)
    measures["rows read"] = grown(rows_before, scans(pair.primary_sql, ROWS_READ))
    replica_after = scans(pair.replica_sql)
    return result, measures, grown(replica_before, replica_after)


def test_the_nightly_reads_the_replica_and_writes_the_primary(pair, replica_run):
    result, primary, replica = replica_run

    assert result.status == "completed" and result.published
    assert grown(primary["before"], primary["extracted"]) == {"play_history": 0, "usage_metrics": 0}
    assert grown(primary["extracted"], primary["maintenance"]) == dict.fromkeys(EVENT_TABLES, 0)
    # the maintenance stages look into the (empty) default partitions, and read no row
    assert primary["rows read"] == dict.fromkeys(EVENT_TABLES, 0)
    assert replica["play_history"] >= 1 and replica["usage_metrics"] >= 1  # read there
    print(f"\nprimary event-table scans {primary}; replica's grew by {replica}")
    job = pair.primary_sql(
        "SELECT job_status::text, payload ->> 'database', payload ->> 'replica' FROM jobs "
        "WHERE run_id = %s",
        (result.run_id,),
    )
    assert job == [("completed", pair.primary.display, pair.replica.display)]
    stages = pair.primary_sql(
        "SELECT stage FROM performance_metrics WHERE run_id = %s ORDER BY id",
        (result.run_id,),
    )
    assert [s for (s,) in stages][:2] == ["replica_wait", "extract"]
    assert [r for r in published(pair) if r[1] == result.run_id]  # published on the primary


def test_the_backfill_reads_the_replica(pair):
    # the backfill's first publish follows its read and validation of every shard
    runner, measures = measuring({"publish": "extracted"}, lambda: primary_scans(pair))
    before = scans(pair.primary_sql)

    result = run_backfill(
        pair.primary, RUN_DATE - dt.timedelta(days=2), RUN_DATE, replica=pair.replica,
        runner=runner,
    )  # fmt: skip

    assert result.status == "completed" and result.rows["daily_metrics"] > 0
    assert grown(before, measures["extracted"]) == {"play_history": 0, "usage_metrics": 0}
    assert grown(before, scans(pair.primary_sql)) == dict.fromkeys(EVENT_TABLES, 0)


def test_a_stale_replica_fails_the_run_in_one_line_until_it_has_caught_up(
    pair, replica_run, prefect_harness, tmp_path, capsys
):
    args = ("run", "nightly", "--database", pair.primary.url, "--replica", pair.replica.url,
            "--date", RUN_DATE.isoformat(), "--replica-wait", "3")  # fmt: skip
    plays = platform_plays(pair)
    pair.replica_sql("SELECT pg_wal_replay_pause()")
    try:
        before = published(pair)
        add_plays(pair, NEW_PLAYS)  # after the pause: the standby does not have them
        running = start_cli(prefect_harness, tmp_path, *args)
        progress = _job_progress_while(running, pair)
        err = running.communicate(timeout=300)[1]

        assert running.returncode == 1, err[-2000:]
        assert any("waiting for the replica" in (message or "") for message in progress)
        lines = error_lines(err)
        assert len(lines) == 1, err[-3000:]
        assert lines[0].startswith(f"rotation: error: replica {pair.replica.display} is ")
        assert "behind the primary" in lines[0] and "replay is paused" in lines[0]
        assert "nothing was read" in lines[0]
        job = pair.primary_sql(
            "SELECT job_status::text, error_message FROM jobs ORDER BY id DESC LIMIT 1"
        )[0]
        assert job[0] == "failed" and "behind the primary" in job[1]
        assert published(pair) == before
    finally:
        pair.replica_sql("SELECT pg_wal_replay_resume()")

    capsys.readouterr()

    code = main(["-q", *args])  # the same run, in this process (its Prefect server is set)

    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"nightly {RUN_DATE}: ")
    assert platform_plays(pair) == plays + NEW_PLAYS  # computed on the caught-up standby


def _job_progress_while(running: subprocess.Popen, pair) -> list[str | None]:
    """Return the progress messages of the latest job row, read while `running` runs."""
    seen = []
    while running.poll() is None:
        rows = pair.primary_sql("SELECT progress_message FROM jobs ORDER BY id DESC LIMIT 1")
        seen += [row[0] for row in rows]
        time.sleep(0.2)
    return seen


# snapshot and shared snapshots ------------------------------------------------------------------


def test_snapshot_reads_the_replica(pair, tmp_path, capsys):
    path = tmp_path / "replica.duckdb"
    before, replica_before = scans(pair.primary_sql), scans(pair.replica_sql)

    code = main(["snapshot", "--from", pair.primary.url, "--replica", pair.replica.url,
                 "--to", str(path)])  # fmt: skip

    assert code == 0, capsys.readouterr().err
    assert grown(before, scans(pair.primary_sql)) == dict.fromkeys(EVENT_TABLES, 0)
    assert all(n >= 1 for n in grown(replica_before, scans(pair.replica_sql)).values())
    plays = query(parse_database(f"duckdb:{path}"), "SELECT count(*) AS n FROM play_history")
    assert plays["n"][0] == pair.primary_sql("SELECT count(*) FROM play_history")[0][0]
    assert "read on the replica" in capsys.readouterr().err


def test_a_stale_replica_fails_the_snapshot_in_one_line(pair, tmp_path, capsys):
    path = tmp_path / "stale.duckdb"
    pair.replica_sql("SELECT pg_wal_replay_pause()")
    try:
        pair.primary_sql("CREATE TABLE IF NOT EXISTS replica_test_marks (at timestamptz)")
        pair.primary_sql("INSERT INTO replica_test_marks VALUES (now())")

        code = main(["snapshot", "--from", pair.primary.url, "--replica", pair.replica.url,
                     "--to", str(path), "--replica-wait", "0"])  # fmt: skip
    finally:
        pair.replica_sql("SELECT pg_wal_replay_resume()")

    assert code == 1
    lines = error_lines(capsys.readouterr().err)
    errors = [line for line in lines if line.startswith("rotation: error:")]
    assert len(errors) == 1 and "behind the primary" in errors[0], lines
    assert not path.exists()


def test_every_read_of_a_run_shares_one_snapshot_while_the_standby_replays(pair):
    count = "SELECT count(*) FROM users"
    with SharedSnapshotStorage(pair.replica) as storage:
        first = storage.read("snapshot/user_ids").height
        pair.primary_sql(
            "INSERT INTO users (id, email, username)"
            " SELECT max(id) + 1, 'late@example.com', 'late-replica' FROM users"
        )
        pair.wait_for_replay()
        with storage._arrow_conn() as one, storage._arrow_conn() as other:  # two at once
            seen = [_scalar(conn, count) for conn in (one, other)]

    assert seen == [first, first]
    assert pair.replica_sql(count)[0][0] == first + 1


def _scalar(conn, sql: str):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_the_replica_extract_equals_the_primary_extract(pair):
    pair.wait_for_replay()

    on_replica = extract_replica_inputs(pair.replica, RUN_DATE, 30)
    with open_storage(pair.primary) as storage:
        on_primary = extract_inputs(storage, RUN_DATE, 30)

    for name in ("plays", "usage", "users", "tracks", "settings"):
        assert getattr(on_replica, name).equals(getattr(on_primary, name)), name


# refusals -----------------------------------------------------------------------------------------


def test_a_replica_of_a_duckdb_database_is_one_line(tmp_path, capsys):
    code = main(["run", "nightly", "--database", f"duckdb:{tmp_path / 'x.duckdb'}",
                 "--replica", "postgresql://root@127.0.0.1:1/rotation"])  # fmt: skip

    assert code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--replica needs a PostgreSQL database" in lines[0]


def test_a_replica_that_is_not_a_standby_is_refused_before_the_run(pair, capsys):
    code = main(["run", "nightly", "--database", pair.primary.url, "--replica", pair.primary.url])

    assert code == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "is not a standby (pg_is_in_recovery() is false" in lines[0]
    assert pair.primary_sql("SELECT count(*) FROM jobs WHERE job_status = 'running'") == [(0,)]


def test_the_replica_is_found_like_the_database_and_never_with_a_password(monkeypatch):
    primary = parse_database("postgresql://rotation@db/rotation")
    replica = parse_replica("postgresql://rotation@standby/rotation", primary)
    monkeypatch.setenv(REPLICA_ENV_VAR, "postgresql://rotation:pw-env@worker-standby/rotation")

    with for_this_process(primary, replica):
        assert resolve_replica(None, primary) is replica
    with for_this_process(primary):
        assert resolve_replica(None, primary) is None  # the command line's: none
    found = resolve_replica(None, primary)  # a deployment's run: the worker's environment
    assert found.display == "postgresql://rotation:***@worker-standby/rotation"
    with pytest.raises(DatabaseUrlError, match="holds a password"):
        resolve_replica("postgresql://rotation:pw-replica@standby/rotation", primary)
    with pytest.raises(DatabaseUrlError, match="is not a PostgreSQL URL"):
        parse_replica("duckdb:copy.duckdb", primary)
    assert parse_replica("  ", primary) is None
