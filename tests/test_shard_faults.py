"""Faults of a sharded run on Dask (#29): a worker killed in the middle of a backfill's shard
read, the workers killed while a nightly's shards wait on them for the item models or while
they hold its lists (the shards let go), and the scheduler gone in the middle of a run.

Each test stops the run at a known point: it holds an ACCESS EXCLUSIVE lock on a table the
run reads there, waits until the read waits for it, strikes, then lets go.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import psutil
import psycopg
import pytest
from pipeline_fixtures import (
    RUN_COLUMNS,
    RUN_DATE,
    fresh_pg,
    generate,
    on_a_local_cluster,
    one_shard_rows_and_a_cluster_backfill,
    params,
    query,
    table,
)
from test_nightly_shards import assert_same_rows, published

from flows.backfill import run_backfill
from flows.cli import main
from flows.nightly import nightly, run_nightly

pytest_plugins = ["prefect_fixtures"]
pytestmark = [pytest.mark.postgres, pytest.mark.prefect_server]

FIRST = RUN_DATE - timedelta(days=6)
LOCKED = "user_follows"  # read by every shard (flows/stages/shards.py USER_TABLES)
WAIT_S = 60.0


@contextmanager
def locked(db, table_name: str = LOCKED):
    """Hold an ACCESS EXCLUSIVE lock on `table_name` until the block ends (or `release()`)."""
    conn = psycopg.connect(db.url)
    conn.execute(f"LOCK TABLE {table_name} IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn.rollback
    finally:
        conn.close()


def waiting_ports(db, n: int) -> list[int]:
    """Return the client ports of `n` sessions waiting for a lock in `db` (once there are)."""
    deadline = time.monotonic() + WAIT_S
    with psycopg.connect(db.url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            ports = [
                port
                for (port,) in conn.execute(
                    "SELECT client_port FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ]
            if len(ports) >= n:
                return ports
            time.sleep(0.05)
    raise AssertionError(f"fewer than {n} shard reads waited for the lock in {WAIT_S} s")


def process_of(port: int) -> psutil.Process:
    """Return the local process whose TCP socket has local port `port`."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise AssertionError(f"no process holds local port {port}")


def kill(process: psutil.Process) -> None:
    """SIGKILL `process` and wait until it is gone."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def assert_run_completed_after_the_first(db, thread: threading.Thread, out: dict, job_type: str):
    """Assert the run on `thread` completed, and so did both jobs of `job_type` in `db`."""
    thread.join(timeout=300)
    assert "error" not in out, out.get("error")
    assert out["value"].is_completed()
    sql = "SELECT job_status::text AS s FROM jobs WHERE job_type = %s"
    assert query(db, sql, (job_type,))["s"].to_list() == ["completed", "completed"]


def in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    """Start fn(*args) on a thread; return it and the dict its result or error lands in."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_worker_killed_mid_read_is_replaced_and_the_run_publishes_once(
    prefect_harness, monkeypatch
):
    with fresh_pg() as db:
        generate(db)
        whole, flow = one_shard_rows_and_a_cluster_backfill(
            db, prefect_harness, monkeypatch, FIRST, RUN_DATE
        )
        with locked(db) as release:
            thread, out = in_thread(
                lambda: flow(date_from=FIRST, date_to=RUN_DATE, shards=4, return_state=True)
            )
            ports = waiting_ports(db, 2)  # each worker (one thread) inside a shard's read
            victim = process_of(ports[0])
            assert victim.pid != os.getpid()  # a worker process, not the flow's
            kill(victim)
            release()
        assert_run_completed_after_the_first(db, thread, out, "backfill")
        assert table(db, "daily_metrics", without=RUN_COLUMNS).equals(whole)


def worker_processes() -> list[psutil.Process]:
    """Return this process's Dask worker processes (a local cluster's nannies spawn them)."""
    children = psutil.Process().children()
    return [p for p in children if any("spawn_main" in part for part in p.cmdline())]


def plays_read(db) -> int:
    """Return the play rows the server has counted as read in `db` (every partition)."""
    sql = (
        "SELECT COALESCE(SUM(seq_tup_read + idx_tup_fetch), 0) AS n FROM pg_stat_user_tables "
        "WHERE relname LIKE 'play_history%'"
    )
    return int(query(db, sql)["n"][0])


def read_more_than(db, rows: int) -> int:
    """Return the play rows read in `db` once over `rows` (the readers' counts reach the
    server as their sessions end), or the count after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while (seen := plays_read(db)) <= rows and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def nightly_with_its_workers_killed_at(
    db, prefect_harness, monkeypatch, table_name: str
) -> tuple[int, int]:
    """Run a 4-shard nightly on a local cluster of 2 workers, stopped where it waits on a
    lock on `table_name`; kill every worker there, then let go. Assert it completes with the
    one-shard run's rows, its lost shards read again; return (the job's progress when the
    workers were killed, how many were)."""
    generate(db)
    before = plays_read(db)
    run_nightly(db, params())
    window = read_more_than(db, before) - before  # one shard: the window's rows, once
    whole = published(db)
    flow = on_a_local_cluster(nightly, db, prefect_harness, monkeypatch)
    with locked(db, table_name) as release:
        thread, out = in_thread(
            lambda: flow(run_date=RUN_DATE, shards=4, force_publish=True, return_state=True)
        )
        waiting_ports(db, 1)
        job = query(db, "SELECT progress_percent AS p FROM jobs ORDER BY started_at DESC")
        workers = worker_processes()
        for worker in workers:  # every shard (or list) held is lost
            kill(worker)
        release()
    assert_run_completed_after_the_first(db, thread, out, "nightly")
    assert_same_rows(whole, published(db))
    # undisturbed, 4 shards read the window 1.005 times here; lost, they read it again
    again = before + window + int(1.5 * window)
    assert read_more_than(db, again) > again
    return job["p"][0], len(workers)


def test_workers_killed_while_a_nightlys_shards_wait_are_replaced_and_the_shards_read_again(
    prefect_harness, monkeypatch
):
    with fresh_pg() as db:
        # the run's own read of the tuned parameters, once the shards' fit pairs are gathered
        progress, killed = nightly_with_its_workers_killed_at(
            db, prefect_harness, monkeypatch, "model_tuning"
        )
        assert progress == 45  # the interactions stage done: every shard read and held
        assert killed == 2  # one worker may hold them all


def test_workers_killed_while_they_hold_a_nightlys_lists_read_the_let_go_shards_again(
    prefect_harness, monkeypatch
):
    with fresh_pg() as db:
        # the publish's first look at the live lists, once every shard's were scored and
        # checked on the workers and the shards' data let go there
        progress, _ = nightly_with_its_workers_killed_at(
            db, prefect_harness, monkeypatch, "recommendation_data"
        )
        assert progress >= 90  # the lists scored, checked and summed up


def free_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(api_url: str):
    """Yield the address of a Dask scheduler and one worker, each a process of its own."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_API_URL": api_url}
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nthreads",
            "1",
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield address, scheduler
    finally:
        for proc in (worker, scheduler):
            proc.kill()
            proc.wait(timeout=30)


def test_the_scheduler_gone_mid_run_fails_in_one_line_and_keeps_the_live_rows(
    prefect_harness, monkeypatch, capsys
):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "3s")
    with fresh_pg() as db:
        generate(db)
        run_backfill(db, FIRST, RUN_DATE)
        before = table(db, "daily_metrics")
        dates = ["--from", str(FIRST), "--to", str(RUN_DATE)]
        with dask_cluster(prefect_harness) as (address, scheduler), locked(db) as release:
            argv = ["run", "backfill", "--database", db.url, *dates, "--cluster", address]
            thread, out = in_thread(main, [*argv, "--shards", "2"])
            waiting_ports(db, 1)
            scheduler.kill()
            scheduler.wait(timeout=30)
            release()
            thread.join(timeout=300)
        assert "error" not in out, out.get("error")
        err = capsys.readouterr().err.strip().splitlines()
        assert out["value"] == 1
        assert err[-1].startswith(f"rotation: error: Dask scheduler {address}: "), err[-3:]
        assert err[-1].endswith("the dates it had not published keep their last rows")
        assert table(db, "daily_metrics").equals(before)  # the live rows: the last run's
