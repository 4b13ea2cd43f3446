"""Sub-commands for analysts' local replay: snapshot, diff, report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flows.cli import add_database, iso_date, positive


def _fraction(value: str) -> float:
    """Return a sample fraction in (0, 1], or an argparse error that says so."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 and at most 1")
    return number


def register_replay(sub) -> None:
    snap = sub.add_parser("snapshot", help="copy the tables the pipeline reads into a DuckDB file")
    snap.add_argument(
        "--from",
        dest="source",
        required=True,
        help="the database to copy: postgresql://... (or duckdb:PATH)",
    )
    snap.add_argument("--to", dest="target", required=True, help="the DuckDB file to (re)place")
    snap.add_argument("--since", type=iso_date, default=None, help="first day of events kept")
    snap.add_argument("--until", type=iso_date, default=None, help="last day of events kept")
    snap.add_argument(
        "--sample-users",
        dest="sample",
        type=_fraction,
        default=None,
        help="keep this fraction of users (0-1] with their whole history",
    )
    snap.add_argument("--seed", type=int, default=42, help="the user sample's seed (default 42)")
    snap.set_defaults(handler=cmd_snapshot)
    diff = sub.add_parser("diff", help="compare two runs' outputs (two DuckDB files)")
    diff.add_argument("--base", required=True, help="duckdb:PATH of the reference run")
    diff.add_argument("--head", required=True, help="duckdb:PATH of the run compared with it")
    diff.add_argument(
        "--date",
        type=iso_date,
        default=None,
        help="metric date compared (default: the latest date in both)",
    )
    diff.add_argument("--top", type=positive, default=20, help="changed metrics listed")
    diff.add_argument("--json", action="store_true", help="print JSON instead of text")
    diff.set_defaults(handler=cmd_diff)
    rep = sub.add_parser("report", help="a self-contained HTML report of a date range")
    add_database(rep)
    rep.add_argument(
        "--from",
        dest="date_from",
        type=iso_date,
        default=None,
        help="first day (default: 29 days before --to)",
    )
    rep.add_argument(
        "--to",
        dest="date_to",
        type=iso_date,
        default=None,
        help="last day (default: the latest day with metrics)",
    )
    rep.add_argument("--out", default="report.html", help="the HTML file written")
    rep.set_defaults(handler=cmd_report)


def cmd_snapshot(args) -> int:
    """Copy the pipeline's input tables into a new DuckDB file, one progress line per table."""
    import sys

    from flows.database import parse_database
    from flows.snapshot import SnapshotSpec, take_snapshot

    spec = SnapshotSpec(
        since=args.since, until=args.until, sample_fraction=args.sample, seed=args.seed
    )
    quiet = args.quiet
    result = take_snapshot(
        parse_database(args.source),
        args.target,
        spec,
        progress=None if quiet else lambda line: print(line, file=sys.stderr),
    )
    print(f"snapshot written: {result.path} ({sum(result.rows.values()):,} rows)")
    return 0


def cmd_diff(args) -> int:
    """Print the comparison of two runs' outputs as text or JSON."""
    from flows.database import parse_database
    from flows.diff import diff_runs, format_diff

    result = diff_runs(
        parse_database(args.base), parse_database(args.head), args.date, top=args.top
    )
    print(json.dumps(result.as_json(), indent=2) if args.json else format_diff(result))
    return 0


def cmd_report(args) -> int:
    """Write the HTML report and say where."""
    from flows.report import write_report

    path = write_report(args.db, Path(args.out), args.date_from, args.date_to)
    print(f"report written: {path}")
    return 0
