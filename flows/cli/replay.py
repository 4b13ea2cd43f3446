"""Handlers of the analysts' commands: snapshot, diff, report, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flows.analyst.diff import diff_runs, format_diff
from flows.analyst.export import export_table
from flows.analyst.report import write_report
from flows.analyst.snapshot import SnapshotSpec, take_snapshot
from flows.storage.database import parse_database


def snapshot(args) -> int:
    """Copy the pipeline's input tables into a new DuckDB file, one progress line per table."""
    spec = SnapshotSpec(
        since=args.since,
        until=args.until,
        sample_fraction=args.sample,
        seed=args.seed,
        replica_wait=args.replica_wait,
    )
    result = take_snapshot(
        parse_database(args.source),
        args.target,
        spec,
        progress=None if args.quiet else lambda line: print(line, file=sys.stderr),
        replica=args.replica,  # parsed, with ROTATION_REPLICA_URL, by flows/cli/main.py
    )
    print(f"snapshot written: {result.path} ({sum(result.rows.values()):,} rows)")
    return 0


def diff(args) -> int:
    """Print the comparison of two runs' outputs as text or JSON."""
    result = diff_runs(
        parse_database(args.base), parse_database(args.head), args.date, top=args.top
    )
    print(json.dumps(result.as_json(), indent=2) if args.json else format_diff(result))
    return 0


def report(args) -> int:
    """Write the HTML report and say where."""
    path = write_report(args.db, Path(args.out), args.date_from, args.date_to)
    print(f"report written: {path}")
    return 0


def export(args) -> int:
    """Write a table or view to a Parquet file and say how much."""
    progress = None if args.quiet else lambda line: print(line, file=sys.stderr)
    result = export_table(
        args.db, args.table, Path(args.out), args.date_from, args.date_to, progress=progress
    )
    print(
        f"exported {result.rows:,} rows of {args.table} to {result.path} "
        f"({result.bytes / 2**20:.1f} MiB, {result.seconds:.1f} s)"
    )
    return 0
