"""Benchmark: the backfill by user shards on a local Dask cluster, beside the one-shard run.

    .venv/bin/python bench/scale.py --profile S [--days 90] [--workers 2] [--shards K]
        [--worker-memory 2GiB] [--json out.json]

Generates the profile once (bench/profiles.py), then runs the backfill of the profile's last
`--days` dates twice, alternately fresh: (1) one shard on the default runner, in a process of
its own (its peak RSS is the run's); (2) `--shards K` (default: one per worker) with the shard
tasks on a local Dask cluster of `--workers` single-threaded processes that this benchmark
starts (each worker's peak RSS read from the worker after the run), the flow itself in a
process of its own. Both publish into the profile's daily_metrics, whose checksum
(bench/checksums.py) each run reports: equal means the same rows to the last bit. Rows read
from the event tables are the server's count (pg_stat_user_tables over their partitions)
around each run, beside the rows in the window. The wall of (2) over (1) is the figure of
overhead (this machine has 2 cores: no speed-up expected). The nightly is not sharded yet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from distributed import Client, LocalCluster
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner

from bench.checksums import OUTPUTS
from bench.nightly import EVENT_READS, RUN_DATE, in_fresh_process
from bench.profiles import PROFILES, emit_report, ensure_profile, machine
from flows.backfill import backfill, run_backfill
from flows.storage.database import ENV_VAR
from flows.tracking import peak_rss_bytes

EVENTS = ("play_history", "usage_metrics")
WINDOW_ROWS = {
    "play_history": "SELECT count(*) FROM play_history WHERE played_at >= %s AND played_at < %s",
    "usage_metrics": "SELECT count(*) FROM usage_metrics "
    "WHERE occurred_at >= %s AND occurred_at < %s",
}


def event_reads(url: str) -> dict[str, int]:
    """Return the rows the server has counted as read of each event table (all partitions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(0.7)  # the other backends' counters reach the statistics on their flush
        return {t: int(conn.execute(EVENT_READS, (t,)).fetchone()[0]) for t in EVENTS}


def window_rows(url: str, days: int) -> dict[str, int]:
    """Return the rows of each event table in the backfill's window."""
    start = RUN_DATE - timedelta(days=days - 1)
    end = RUN_DATE + timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        return {t: int(conn.execute(q, (start, end)).fetchone()[0]) for t, q in WINDOW_ROWS.items()}


def one_shard_process(db, days: int) -> dict:
    """Run the backfill with one shard on the default runner; return wall, peak and status."""
    start = time.perf_counter()
    result = run_backfill(db, RUN_DATE - timedelta(days=days - 1), RUN_DATE)
    return {
        "status": result.status,
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def sharded_process(url: str, days: int, shards: int, address: str, api_url: str) -> dict:
    """Run the backfill flow with its shard tasks on the scheduler at `address`."""
    os.environ[ENV_VAR] = url
    flow = backfill.with_options(task_runner=DaskTaskRunner(address=address))
    start = time.perf_counter()
    # the benchmark's server, as the workers': Prefect read its settings when imported
    with temporary_settings({PREFECT_API_URL: api_url}):
        first = RUN_DATE - timedelta(days=days - 1)
        summary = flow(date_from=first, date_to=RUN_DATE, shards=shards)
    return {
        "status": summary["status"],
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def _worker_peak() -> int:
    """Return this worker process's peak RSS in bytes (run on each worker).

    Its address space's high-water mark (VmHWM), not ru_maxrss: the workers are spawned from
    this benchmark's process, and a spawned child's ru_maxrss starts from its parent's
    resident size (it survives the exec), the gigabytes of a profile generated here.
    """
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib * 1024


def measured(url: str, run) -> dict:
    """Return `run()`'s figures with the event rows read during it and the output checksum."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE daily_metrics")  # both runs start from a fresh table
    before = event_reads(url)
    figures = run()
    after = event_reads(url)
    figures["rows_read"] = {t: after[t] - before[t] for t in EVENTS}
    figures["daily_metrics"] = metrics_checksum(url)
    return figures


#: daily_metrics' rows and the md5 of each date's md5 (bench/checksums.py's text, one date at
#: a time: a 90-day backfill at L is 34M rows, past PostgreSQL's 1 GB string limit whole).
CHECKSUM = """
SELECT coalesce(sum(n), 0), md5(coalesce(string_agg(digest, '' ORDER BY metric_date), ''))
FROM (SELECT metric_date, count(*) AS n,
             md5(string_agg(t::text, E'\\n' ORDER BY {order})) AS digest
      FROM (SELECT {columns} FROM daily_metrics) AS t GROUP BY metric_date) AS dates
"""


def metrics_checksum(url: str) -> dict:
    """Return daily_metrics' rows and checksum, run columns aside (as bench/checksums.py)."""
    columns, order = OUTPUTS["daily_metrics"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        rows, digest = conn.execute(CHECKSUM.format(columns=columns, order=order)).fetchone()
    return {"rows": int(rows), "md5": digest}


@contextlib.contextmanager
def prefect_server() -> Iterator[str]:
    """Yield the API URL the flow and the workers report to: the configured one, else a
    server started for the benchmark (stopped after)."""
    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    server = SubprocessASGIServer()
    server.start()
    try:
        yield server.api_url
    finally:
        server.stop()


def run(profile: str, days: int, workers: int, shards: int, memory: str, db=None) -> dict:
    """Return the report of both runs on the profile (generated into `db` when given)."""
    db = ensure_profile(PROFILES[profile], db=db)
    report = {"machine": machine(), "profile": profile, "days": days, "workers": workers}
    report["shards"] = shards
    report["window_rows"] = window_rows(db.url, days)
    report["one_shard"] = measured(db.url, lambda: in_fresh_process(one_shard_process, db, days))
    with prefect_server() as api_url:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory,
            dashboard_address=None,
            env={"PREFECT_API_URL": api_url},
        )
        with cluster, Client(cluster) as client:
            args = (db.url, days, shards, cluster.scheduler_address, api_url)
            report["sharded"] = measured(db.url, lambda: in_fresh_process(sharded_process, *args))
            peaks = client.run(_worker_peak)
            report["sharded"]["worker_peak_rss_bytes"] = sorted(peaks.values())
    one, many = report["one_shard"], report["sharded"]
    report["wall_ratio"] = many["wall_seconds"] / one["wall_seconds"]
    total = sum(report["window_rows"].values())
    report["rows_read_over_window"] = {
        "one_shard": sum(one["rows_read"].values()) / total,
        "sharded": sum(many["rows_read"].values()) / total,
    }
    report["same_rows"] = one["daily_metrics"] == many["daily_metrics"]
    report["machine_after"] = machine()
    return report


def main() -> None:
    """Parse arguments, run both backfills, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="S")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=None, help="default: one per worker")
    parser.add_argument("--worker-memory", default="2GiB")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shards = args.shards or args.workers
    report = run(args.profile, args.days, args.workers, shards, args.worker_memory)
    one, many, gib = report["one_shard"], report["sharded"], 2**30
    workers = [round(p / gib, 2) for p in many["worker_peak_rss_bytes"]]
    print(
        f"backfill of {args.days} dates at {args.profile}: one shard {one['wall_seconds']:.1f} s, "
        f"peak {one['peak_rss_bytes'] / gib:.2f} GiB; {shards} shards on {args.workers} "
        f"workers {many['wall_seconds']:.1f} s (x {report['wall_ratio']:.2f}), flow peak "
        f"{many['peak_rss_bytes'] / gib:.2f} GiB, worker peaks {workers} GiB; rows read over "
        f"the window's {report['rows_read_over_window']}; same rows: {report['same_rows']}"
    )
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
