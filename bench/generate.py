"""Benchmark: generate synthetic data and bulk-load it (COPY) into PostgreSQL or DuckDB.

    .venv/bin/python bench/generate.py --database postgresql://root@127.0.0.1:5432/bench \
        --users 20000 --tracks 100000 --days 90 --plays 2000000 --events 1000000

Prints the generation seconds, the load seconds (every table, one transaction, migrations
applied first), play_history rows per minute, and then play_history alone COPYed by each
method of flows/storage/bulk.copy_frame (direct binary COPY, staging table + INSERT ... SELECT),
rolled back. The database is overwritten: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import resource

from flows.storage.bulk import (
    connect,
    copy_frame,
    quote_ident,
    write_frames,
)
from flows.storage.database import parse_database
from flows.storage.migrate import migrate
from transforms.synthetic.frames import generate_frames


def machine() -> str:
    """Return the cores and memory of this machine."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown memory"
    return f"{os.cpu_count()} cores, {memory}"


def _peak_rss_gib() -> float:
    """Return this process's peak resident set size in GiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def compare_methods(db, frame) -> None:
    """Print play_history rows/minute of each copy method (each rolled back)."""
    if not db.is_postgres:
        return
    for method in ("direct", "staged"):
        conn = connect(db)
        try:
            conn.execute(f"DELETE FROM {quote_ident('play_history')}")
            start = time.perf_counter()
            copy_frame(conn, "play_history", frame, method=method)
            seconds = time.perf_counter() - start
            print(
                f"  play_history via {method:6s}: {seconds:7.1f} s, "
                f"{frame.height / seconds * 60:,.0f} rows/min"
            )
        finally:
            conn.rollback()
            conn.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--plays", type=int, default=2_000_000)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-methods", action="store_true", help="no per-method comparison")
    args = parser.parse_args(argv)
    db = parse_database(args.database)
    end = dt.date(2026, 1, 1)
    print(f"machine: {machine()}; database: {db.display}")

    migrate(db)
    start = time.perf_counter()
    frames = generate_frames(
        args.users, args.tracks, args.days, args.seed, end, plays=args.plays, events=args.events
    )
    generation = time.perf_counter() - start
    print(f"generation: {generation:.1f} s, {sum(f.height for f in frames.values()):,} rows")
    start = time.perf_counter()
    counts = write_frames(db, frames, replace=True)
    load = time.perf_counter() - start
    plays = counts["play_history"]
    print(
        f"load (all tables, one transaction, then analyze): {load:.1f} s "
        f"({plays:,} play_history, {counts['usage_metrics']:,} usage_metrics rows)"
    )
    print(f"play_history rows per minute (whole load): {plays / load * 60:,.0f}")
    print(f"peak RSS: {_peak_rss_gib():.1f} GiB")
    if not args.skip_methods:
        compare_methods(db, frames["play_history"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
