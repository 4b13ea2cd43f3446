"""Benchmark: replaying production on a laptop. A profile's PostgreSQL database is copied
into a DuckDB file by `rotation snapshot`, then the nightly runs on that file, beside the
same nightly on PostgreSQL (the anchor: same rows, same parameters).

    .venv/bin/python bench/replay.py --profile L [--json out.json] [--keep PATH]

Each of the three steps runs in a fresh process (bench/nightly.py's in_fresh_process), so
its peak RSS is its own. Prints the snapshot's seconds, rows, file size and peak RSS, then
each nightly's wall seconds, peak RSS and stages, and the ratios DuckDB / PostgreSQL.
Targets (issue #32, an analyst's 16 GB laptop): snapshot ≤ 1.5 GB at L, the nightly on the
DuckDB file ≤ 5.5 GiB. The file is deleted afterwards unless `--keep` names where to move it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nightly import RUN_DATE, in_fresh_process, stage_table, timed, vacuum
from bench.profiles import DAYS, PROFILES, ensure_profile, machine
from flows.analyst.snapshot import take_snapshot
from flows.nightly import run_nightly
from flows.params import NightlyParams
from flows.storage.database import Database, parse_database
from flows.tracking import peak_rss_bytes

GIB = 2**30


def snapshot_process(source: Database, path: Path) -> dict:
    """Snapshot `source` into `path`; return its figures (run in a process of its own)."""
    result, seconds = timed(take_snapshot, source, path)
    return {
        "seconds": seconds,
        "rows": sum(result.rows.values()),
        "file_bytes": path.stat().st_size,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def nightly_process(db: Database) -> dict:
    """Run the profile's nightly on `db` (published whatever the gate says); return its figures."""
    params = NightlyParams(run_date=RUN_DATE, window_days=DAYS, force_publish=True)
    result, seconds = timed(run_nightly, db, params)
    return {
        "status": result.status,
        "wall_seconds": seconds,
        "rows": result.rows,
        "quality": result.quality,
        "stages": stage_table(result),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def run(profile: str, work: Path) -> dict:
    """Return the snapshot, the two nightlies and their ratios."""
    source = ensure_profile(PROFILES[profile])
    vacuum(source)
    path = work / f"{profile}.duckdb"
    snapshot = in_fresh_process(snapshot_process, source, path)
    replay = in_fresh_process(nightly_process, parse_database(f"duckdb:{path}"))
    postgres = in_fresh_process(nightly_process, source)
    return {
        "profile": profile,
        "machine": machine(),
        "snapshot": snapshot,
        "nightly_duckdb": replay,
        "nightly_postgres": postgres,
        "ratios": {
            "peak_rss_duckdb_per_postgres": replay["peak_rss_bytes"] / postgres["peak_rss_bytes"],
            "seconds_duckdb_per_postgres": replay["wall_seconds"] / postgres["wall_seconds"],
            "snapshot_seconds_per_postgres_extract": snapshot["seconds"]
            / next(s["seconds"] for s in postgres["stages"] if s["stage"] == "extract"),
        },
    }


def print_report(report: dict) -> None:
    """Print the figures for a person."""
    s, d, p = report["snapshot"], report["nightly_duckdb"], report["nightly_postgres"]
    print(f"profile {report['profile']} on {report['machine']}")
    print(
        f"snapshot: {s['rows']:,} rows in {s['seconds']:.1f} s, file "
        f"{s['file_bytes'] / GIB:.2f} GiB, peak RSS {s['peak_rss_bytes'] / GIB:.2f} GiB"
    )
    for name, run_ in (("nightly on DuckDB", d), ("nightly on PostgreSQL", p)):
        stages = ", ".join(f"{x['stage']} {x['seconds']:.1f}" for x in run_["stages"])
        print(
            f"{name}: {run_['status']}, {run_['wall_seconds']:.1f} s, peak RSS "
            f"{run_['peak_rss_bytes'] / GIB:.2f} GiB; stages (s): {stages}"
        )
    print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in report["ratios"].items()))


def main() -> None:
    """Run the benchmark and print (and optionally save) its report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(PROFILES), default="S")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the DuckDB file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rotation-replay-", dir="/var/tmp") as work:
        report = run(args.profile, Path(work))
        if args.keep:
            shutil.move(Path(work) / f"{args.profile}.duckdb", args.keep)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
