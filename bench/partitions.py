"""Benchmark: the event tables' monthly partitions (migration 0020) at a scale profile.

    .venv/bin/python bench/partitions.py migrate --profile L [--rounds 3] [--json out.json]
    .venv/bin/python bench/nightly.py --profile L --rounds 1        # on the partitioned tables
    .venv/bin/python bench/partitions.py retention --profile L [--json out.json]

`migrate` generates the profile under the migrations before 0020 (an existing database with
its events in plain tables), keeps plain copies of both event tables (same rows, same
indexes: the anchor), applies 0020 and then `rotation db partitions`' split (begin, a copy
per month, the swap), while a writer inserts a play and a usage event every 20 ms: printed
are each step's seconds and the writer's longest insert overlapping it (how long writers
were held). Then the nightly's extract query over the profile's window, alternated
`--rounds` times on the partitioned tables and on the plain copies (the same bare ADBC
fetch as bench/nightly.py's extract anchor): median seconds and their ratio (target
≤ 1.05). `retention` (after the nightly benchmark, which reuses the profile): the oldest
month of usage_metrics deleted from the plain copy by DELETE, then dropped from the
partitioned table by cleanup_old_analytics_data — seconds, ratio (target ≥ 50) and the
dead rows each leaves; it drops the plain copies, and marks the profile stale (a month of
its events is gone) so the next benchmark regenerates it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adbc_driver_postgresql.dbapi as adbc
import psycopg

from bench.nightly import RUN_DATE
from bench.profiles import (
    ADMIN_URL,
    DAYS,
    PROFILES,
    emit_report,
    ensure_profile,
    machine,
    profile_database,
)
from flows.stages.extract import window_bounds
from flows.storage.base import load_query
from flows.storage.literals import inline
from flows.storage.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
EVENTS = {"play_history": "played_at", "usage_metrics": "occurred_at"}
PLAIN = "bench_plain_"  # the plain copies: bench_plain_play_history, bench_plain_usage_metrics
PROBE = "bench-probe"  # the writer's rows, by session_id


def older_sql(directory: Path) -> Path:
    """A copy of sql/ without migration 0020 and later: the schema of an existing install."""
    target = directory / "sql"
    shutil.copytree(ROOT / "sql", target)
    for path in (target / "postgres").glob("*.sql"):
        if int(path.name[:4]) >= 20:
            path.unlink()
    return target


class Writer(threading.Thread):
    """Inserts a play and a usage event every 20 ms on its own connection; keeps each
    insert's (start, seconds) so that a step's longest wait can be read afterwards."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.waits, self.stop = url, [], threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            sql = "SELECT user_id, track_id FROM play_history LIMIT 1"
            user, track = conn.execute(sql).fetchone()
            while not self.stop.is_set():
                start = time.perf_counter()
                conn.execute(
                    "INSERT INTO play_history (user_id, track_id, session_id) VALUES (%s, %s, %s)",
                    (user, track, PROBE),
                )
                conn.execute(
                    "INSERT INTO usage_metrics (user_id, event_type, session_id) "
                    "VALUES (%s, 'page_view', %s)",
                    (user, PROBE),
                )
                self.waits.append((start, time.perf_counter() - start))
                time.sleep(0.02)

    def longest(self, start: float, end: float) -> float:
        """The longest insert that started or ended between `start` and `end`."""
        spans = [s for t, s in self.waits if t <= end and t + s >= start]
        return max(spans, default=0.0)


def plain_copies(url: str) -> dict:
    """Copy both event tables into plain tables with the same indexes; return the seconds."""
    seconds = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for table, key in EVENTS.items():
            start = time.perf_counter()
            conn.execute(f"DROP TABLE IF EXISTS {PLAIN}{table}")
            conn.execute(f"CREATE TABLE {PLAIN}{table} AS SELECT * FROM {table} ORDER BY id")
            conn.execute(f"ALTER TABLE {PLAIN}{table} ADD PRIMARY KEY (id)")
            conn.execute(f"CREATE INDEX ON {PLAIN}{table} ({key})")
            conn.execute(f"CREATE INDEX ON {PLAIN}{table} (user_id, {key})")
            conn.execute(f"VACUUM (ANALYZE) {PLAIN}{table}")
            seconds[table] = time.perf_counter() - start
    return seconds


def split_months(url: str) -> list[dict]:
    """Split each legacy partition as `rotation db partitions` does, timing each step."""
    steps = []
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:

        def step(kind: str, table: str) -> list[tuple]:
            start = time.perf_counter()
            rows = conn.execute(load_query(f"maintenance/split_{kind}"), (table,)).fetchall()
            steps.append(
                {
                    "step": kind,
                    "table": table,
                    "rows": rows,
                    "start": start,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(json.dumps({k: v for k, v in steps[-1].items() if k != "start"}, default=str))
            return rows

        for table in EVENTS:
            if step("begin", table)[0][0]:
                while step("copy", table)[0][0] is not None:
                    pass
                step("finish", table)
    return steps


def extract_seconds(url: str, prefix: str) -> float:
    """Seconds of a bare ADBC fetch of the nightly's two event reads over the window."""
    window = window_bounds(RUN_DATE, DAYS)
    total = 0.0
    with adbc.connect(url) as conn, conn.cursor() as cur:
        for table in EVENTS:
            sql, _ = inline(load_query(f"extract/{table}"), window)
            sql = sql.replace(f"FROM {table}", f"FROM {prefix}{table}")
            start = time.perf_counter()
            cur.execute(sql)
            cur.fetch_arrow_table()
            total += time.perf_counter() - start
    return total


def migrate_benchmark(profile: str, rounds: int) -> dict:
    """Generate under the old schema, copy, migrate, split, compare the extracts."""
    db = profile_database(PROFILES[profile])
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:  # it must start unpartitioned
        conn.execute(f'DROP DATABASE IF EXISTS "{db.url.rsplit("/", 1)[1]}" WITH (FORCE)')
    with tempfile.TemporaryDirectory() as tmp:
        ensure_profile(PROFILES[profile], sql_dir=older_sql(Path(tmp)))
    report: dict = {"machine": machine(), "profile": profile, "started": datetime.now(UTC)}
    report["plain_copies_s"] = plain_copies(db.url)
    writer = Writer(db.url)
    writer.start()
    time.sleep(1.0)
    start = time.perf_counter()
    applied = migrate(db)
    end = time.perf_counter()
    report["migration"] = {"applied": applied, "seconds": end - start}
    print(json.dumps(report["migration"]), flush=True)
    report["split"] = split_months(db.url)
    time.sleep(1.0)
    writer.stop.set()
    writer.join()
    for step in report["split"]:  # read once every write has ended (a held one included)
        step["longest_write_s"] = writer.longest(step["start"], step["start"] + step["seconds"])
    report["migration"]["longest_write_s"] = writer.longest(start, end)
    with psycopg.connect(db.url, autocommit=True) as conn:
        for table in EVENTS:
            conn.execute(f"DELETE FROM {table} WHERE session_id = %s", (PROBE,))
        conn.execute("VACUUM (ANALYZE)")
    parted, plain = [], []
    for _ in range(rounds):  # alternated: the machine's noise falls on both alike
        parted.append(extract_seconds(db.url, ""))
        plain.append(extract_seconds(db.url, PLAIN))
    report["extract"] = {
        "partitioned_s": parted,
        "plain_s": plain,
        "ratio_of_medians": statistics.median(parted) / statistics.median(plain),
    }
    return report


def evict_from_os_cache(conn: psycopg.Connection, tables: list[str]) -> int:
    """Checkpoint, then drop the OS page cache of `tables` and their indexes (their files
    read by path: the benchmark runs as root beside the server); return the bytes."""
    conn.execute("CHECKPOINT")  # DONTNEED leaves dirty pages: write them first
    data = Path(conn.execute("SHOW data_directory").fetchone()[0])
    files = conn.execute(
        "SELECT pg_relation_filepath(c.oid) FROM pg_class AS c WHERE c.oid IN ("
        "SELECT t::regclass FROM unnest(%(t)s::text[]) AS t UNION ALL "
        "SELECT indexrelid FROM pg_index WHERE indrelid IN "
        "(SELECT t::regclass FROM unnest(%(t)s::text[]) AS t))",
        {"t": tables},
    ).fetchall()
    evicted = 0
    for (relative,) in files:
        path, segment = data / relative, 0
        while path.exists():  # 1 GB segments: 123, 123.1, 123.2, …
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            evicted += path.stat().st_size
            segment += 1
            path = data / f"{relative}.{segment}"
    return evicted


def retention_benchmark(profile: str) -> dict:
    """DELETE of the oldest usage month from the plain copy against dropping its partition."""
    db = profile_database(PROFILES[profile])
    report: dict = {"machine": machine(), "profile": profile}
    with psycopg.connect(db.url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{PLAIN}usage_metrics",)).fetchone()[0] is None:
            report["plain_copies_s"] = plain_copies(db.url)  # `migrate` ran long ago
        month = conn.execute(
            "SELECT lower_bound, upper_bound FROM event_partitions('usage_metrics') "
            "WHERE NOT is_default ORDER BY lower_bound LIMIT 1"
        ).fetchone()
        cut = month[1]
        partition = f"usage_metrics_p{month[0]:%Y_%m}"
        # statistics and visibility as autovacuum (off on this machine) keeps them
        conn.execute(f"VACUUM (ANALYZE) usage_metrics, {PLAIN}usage_metrics")
        # the oldest month is long out of the OS page cache in production: both start cold
        report["evicted_bytes"] = evict_from_os_cache(conn, [f"{PLAIN}usage_metrics", partition])
        start = time.perf_counter()
        deleted = conn.execute(
            f"DELETE FROM {PLAIN}usage_metrics WHERE occurred_at < %s", (cut,)
        ).rowcount
        delete_s = time.perf_counter() - start
        # what cleanup_old_analytics_data runs for the events; timed alone, as the rest of
        # the cleanup (expired published rows, old job logs) is the same either way
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT drop_event_partitions_before('usage_metrics', %s)", (cut,)
        ).fetchone()[0]
        drop_s = time.perf_counter() - start
        conn.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1.0)
        dead = dict(
            conn.execute(
                "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname LIKE %s "
                "OR relname LIKE 'usage_metrics%%'",
                (f"{PLAIN}usage_metrics",),
            ).fetchall()
        )
        report["retention"] = {
            "month": [str(month[0]), str(cut)],
            "rows_deleted": deleted,
            "rows_dropped": rows,
            "delete_s": delete_s,
            "drop_s": drop_s,
            "speedup": delete_s / drop_s,
            "dead_rows_after_delete": dead.get(f"{PLAIN}usage_metrics"),
            "dead_rows_in_partitions": sum(
                v for k, v in dead.items() if k.startswith("usage_metrics")
            ),
        }
        for table in EVENTS:
            conn.execute(f"DROP TABLE IF EXISTS {PLAIN}{table}")
        conn.execute("DELETE FROM settings WHERE key = 'bench_profile'")  # a month is gone
    return report


def main() -> None:
    """Parse arguments, run the chosen part, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["migrate", "retention"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="S")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.part == "migrate":
        report = migrate_benchmark(args.profile, args.rounds)
    else:
        report = retention_benchmark(args.profile)
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
