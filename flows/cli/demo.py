"""`rotation demo`: synthetic data into a fresh DuckDB file, one nightly run, a short summary."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from flows.analyst.generate import generate_into
from flows.analyst.lookups import format_recommendations, read_recommendations
from flows.cli.server import embedded_server
from flows.cli.summary import quality_line
from flows.nightly import nightly
from flows.params import GenerateParams, last_complete_day
from flows.storage.backends import open_storage
from flows.storage.database import parse_database
from flows.storage.secrets import for_this_process


def demo(args) -> int:
    """Handle `rotation demo`."""
    return run_demo(args.dir, users=args.users, tracks=args.tracks)


def run_demo(
    directory: str,
    *,
    users: int = GenerateParams.users,
    tracks: int = GenerateParams.tracks,
    days: int = GenerateParams.days,
    seed: int = GenerateParams.seed,
) -> int:
    """Generate demo data, run the nightly flow on it, print counts and a sample user's lists."""
    start = time.perf_counter()
    path = Path(directory).expanduser().resolve() / "rotation.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    db = parse_database(f"duckdb:{path}")
    run_date = last_complete_day()
    print(f"generating {users:,} users and {tracks:,} tracks over {days} days into {path}")
    generate_into(
        db,
        users=users,
        tracks=tracks,
        days=days,
        seed=seed,
        end=run_date + timedelta(days=1),  # events up to the end of the run date
        progress=lambda line: print(f"  {line}", flush=True),
    )
    print("running the nightly flow (Prefect, embedded)")
    with for_this_process(db), embedded_server():
        summary = nightly(run_date=run_date)
    with open_storage(db) as storage:
        counts = storage.read("demo/output_counts")
        sample = storage.read("demo/sample_user")
    print(f"\nnightly run: {summary['status']}, published {summary['published']}")
    print(quality_line(summary["quality"]))
    print("\noutput tables")
    for name, rows in counts.iter_rows():
        print(f"  {name:<22}{rows:>10,}")
    if sample.height:
        user_id = int(sample["user_id"][0])
        frame = read_recommendations(db, user_id, None, 5)
        print("\n" + format_recommendations(frame, user_id))
    print(f"\ndatabase: {path}")
    print(f"try: rotation recommend {user_id if sample.height else 1} --database duckdb:{path}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0 if summary["status"] != "failed" else 1
