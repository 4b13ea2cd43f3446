"""The sub-commands of `rotation` and what each one does."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import polars as pl

from flows.cli import add_database, iso_date, last_complete_day, non_negative, positive
from flows.database import ENV_VAR


def register(sub: argparse._SubParsersAction) -> None:
    """Add every sub-command to the parser."""
    _db(sub)
    _generate(sub)
    _run(sub)
    _recommend(sub)
    _similar(sub)
    _demo(sub)
    _external(sub)
    _replay(sub)


def _db(sub) -> None:
    db = sub.add_parser("db", help="schema management").add_subparsers(
        dest="db_command", required=True
    )
    migrate = db.add_parser(
        "migrate", help="apply pending migrations (Postgres) or create the replay schema (DuckDB)"
    )
    add_database(migrate)
    migrate.set_defaults(handler=cmd_migrate)


def _generate(sub) -> None:
    gen = sub.add_parser("generate", help="fill every input table with synthetic data")
    add_database(gen)
    gen.add_argument("--users", type=positive, default=2000)
    gen.add_argument("--tracks", type=positive, default=20000)
    gen.add_argument("--days", type=positive, default=90)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--end",
        type=iso_date,
        default=None,
        help="events fall in the DAYS days before this date (default today, UTC)",
    )
    gen.add_argument("--plays", type=positive, default=None, help="exact play_history rows")
    gen.add_argument("--events", type=positive, default=None, help="exact usage_metrics rows")
    gen.set_defaults(handler=cmd_generate)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the nightly run's parameters to a parser."""
    parser.add_argument(
        "--date",
        type=iso_date,
        default=None,
        help="run date (default yesterday, UTC: the last complete day)",
    )
    parser.add_argument(
        "--window-days",
        type=non_negative,
        default=180,
        help="days of events read; 0 = all history (default 180)",
    )
    parser.add_argument("--top-n", type=positive, default=20)
    parser.add_argument("--similar-k", type=positive, default=20)
    parser.add_argument("--max-per-artist", type=positive, default=2)
    parser.add_argument(
        "--half-life-days",
        type=float,
        default=30.0,
        help="time decay of interactions; 0 = no decay (default 30)",
    )
    parser.add_argument("--holdout-days", type=positive, default=7)
    parser.add_argument("--expires-hours", type=positive, default=48)
    parser.add_argument("--quality-gate-drop", type=float, default=0.20)
    parser.add_argument("--force-publish", action="store_true")


def _run(sub) -> None:
    run = sub.add_parser("run", help="run a flow").add_subparsers(dest="flow", required=True)
    nightly = run.add_parser("nightly", help="all stages for one date")
    add_database(nightly)
    add_run_options(nightly)
    nightly.set_defaults(handler=cmd_nightly)
    backfill = run.add_parser("backfill", help="daily metrics over a date range")
    add_database(backfill)
    backfill.add_argument("--from", dest="date_from", type=iso_date, required=True)
    backfill.add_argument("--to", dest="date_to", type=iso_date, required=True)
    backfill.set_defaults(handler=cmd_backfill)


def _recommend(sub) -> None:
    rec = sub.add_parser("recommend", help="a user's published lists, with reasons")
    rec.add_argument("user_id", type=int)
    add_database(rec)
    rec.add_argument("--list", dest="list_name", default=None, help="one list only")
    rec.add_argument("--limit", type=positive, default=10)
    rec.set_defaults(handler=cmd_recommend)


def _similar(sub) -> None:
    sim = sub.add_parser("similar", help="an item's published neighbours")
    sim.add_argument("source_type", choices=["record", "track", "store"])
    sim.add_argument("source_id", type=int)
    add_database(sim)
    sim.add_argument(
        "--type",
        dest="similarity_type",
        default=None,
        choices=["collaborative", "content", "hybrid"],
    )
    sim.add_argument("--limit", type=positive, default=10)
    sim.set_defaults(handler=cmd_similar)


def _demo(sub) -> None:
    demo = sub.add_parser("demo", help="generate demo data into DuckDB and run the nightly flow")
    demo.add_argument("--dir", default="rotation-demo", help="where the DuckDB file goes")
    demo.add_argument("--users", type=positive, default=2000)
    demo.add_argument("--tracks", type=positive, default=20000)
    demo.set_defaults(handler=cmd_demo)


def _external(sub) -> None:
    imp = sub.add_parser("import-interactions", help="load external implicit feedback")
    imp.add_argument("file")
    imp.add_argument("--format", dest="fmt", choices=["movielens", "csv"], required=True)
    imp.add_argument(
        "--items",
        default=None,
        help="item metadata: MovieLens u.item, or a csv item_id,genres (a|b|c)",
    )
    imp.add_argument(
        "--holdout",
        choices=["stratified", "temporal"],
        default=None,
        help="load only the train part of this split; write the test part to "
        "--test-out (then score the nightly's lists with evaluate --database)",
    )
    imp.add_argument("--seed", type=int, default=42)
    imp.add_argument("--test-out", default=None, help="csv for the held-out test pairs")
    add_database(imp)
    imp.set_defaults(handler=cmd_import)
    ev = sub.add_parser("evaluate", help="score the production model on external data")
    ev.add_argument("--interactions", help="external file to split, train on and score")
    ev.add_argument("--format", dest="fmt", choices=["movielens", "csv"], default="csv")
    ev.add_argument(
        "--test",
        default=None,
        help="with --database: score the published 'records' lists against this "
        "csv of held-out pairs (written by import-interactions --test-out)",
    )
    add_database(ev)
    ev.add_argument("--protocol", choices=["stratified", "temporal"], default="stratified")
    ev.add_argument("--k", type=positive, default=10)
    ev.add_argument("--seed", type=int, default=42)
    ev.set_defaults(handler=cmd_evaluate)


# handlers ----------------------------------------------------------------------------------


def cmd_migrate(args) -> int:
    """Apply pending migrations and say which."""
    from flows.migrate import migrate

    applied = migrate(args.db)
    print(f"{args.db.display}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def cmd_generate(args) -> int:
    """Generate synthetic data and print the row counts."""
    from flows.generate import generate_into

    counts = generate_into(
        args.db,
        users=args.users,
        tracks=args.tracks,
        days=args.days,
        seed=args.seed,
        end=args.end,
        plays=args.plays,
        events=args.events,
        progress=lambda line: print(line, flush=True),
    )
    for table, rows in counts.items():
        print(f"{table:<24}{rows:>12,}")
    return 0


def nightly_kwargs(args) -> dict:
    """Return the nightly flow's keyword arguments from parsed options."""
    return {
        "run_date": args.date or last_complete_day(),
        "window_days": args.window_days,
        "top_n": args.top_n,
        "similar_k": args.similar_k,
        "max_per_artist": args.max_per_artist,
        "half_life_days": args.half_life_days,
        "holdout_days": args.holdout_days,
        "expires_hours": args.expires_hours,
        "quality_gate_drop": args.quality_gate_drop,
        "force_publish": args.force_publish,
    }


def preflight(db) -> None:
    """Raise StorageError (one line) before starting Prefect when the database is unusable."""
    from flows.storage import open_storage

    with open_storage(db) as storage:
        storage.check()


def cmd_nightly(args) -> int:
    """Run the nightly flow through Prefect; the URL travels by environment, not as a parameter."""
    from flows.nightly import nightly

    preflight(args.db)
    os.environ[ENV_VAR] = args.db.url
    summary = nightly(**nightly_kwargs(args))
    print(
        json.dumps(
            {k: summary[k] for k in ("status", "published", "warning", "rows", "quality")},
            indent=2,
            default=str,
        )
    )
    return 0 if summary["status"] != "failed" else 1


def cmd_backfill(args) -> int:
    """Run the backfill flow through Prefect."""
    from flows.backfill import backfill
    from flows.pipeline import date_range

    date_range(args.date_from, args.date_to)  # a backwards range: one line, before Prefect
    preflight(args.db)
    os.environ[ENV_VAR] = args.db.url
    summary = backfill(date_from=args.date_from, date_to=args.date_to)
    print(json.dumps({k: summary[k] for k in ("status", "rows")}, indent=2))
    return 0


def cmd_recommend(args) -> int:
    """Print a user's published lists with reasons."""
    from flows.lookups import format_recommendations, read_recommendations

    frame = read_recommendations(args.db, args.user_id, args.list_name, args.limit)
    print(format_recommendations(frame, args.user_id))
    return 0 if frame.height else 1


def cmd_similar(args) -> int:
    """Print an item's published neighbours."""
    from flows.lookups import format_similar, read_similar

    frame = read_similar(
        args.db, args.source_type, args.source_id, args.similarity_type, args.limit
    )
    print(format_similar(frame, args.source_type, args.source_id))
    return 0 if frame.height else 1


def cmd_demo(args) -> int:
    """Generate demo data into a DuckDB file, run the nightly flow, print a summary."""
    from flows.demo import run_demo

    return run_demo(args.dir, users=args.users, tracks=args.tracks)


def cmd_import(args) -> int:
    """Import an external interaction file and report loaded and refused lines."""
    from flows.importer import import_interactions

    if args.holdout and not args.test_out:
        raise ValueError("--holdout needs --test-out FILE for the held-out pairs")
    report = import_interactions(
        args.db,
        Path(args.file),
        args.fmt,
        Path(args.items) if args.items else None,
        holdout=args.holdout,
        seed=args.seed,
        test_out=Path(args.test_out) if args.test_out else None,
    )
    for table, rows in report.loaded.items():
        print(f"loaded {table:<16}{rows:>10,}")
    for reason, rows in report.rejected.items():
        lines = report.problems.filter(pl.col("reason") == reason)["line"].head(10).to_list()
        more = " …" if rows > len(lines) else ""
        print(f"refused {rows:,} line(s): {reason} (lines {', '.join(map(str, lines))}{more})")
    return 0


def cmd_evaluate(args) -> int:
    """Print the production model's metrics on an external file as JSON."""
    from flows.evaluation import evaluate_pairs, evaluate_published
    from flows.importer import read_interactions

    if args.test:
        print(json.dumps(evaluate_published(args.db, Path(args.test), args.k), indent=2))
        return 0
    if not args.interactions:
        raise ValueError("evaluate needs --interactions FILE, or --database DB --test FILE")
    parsed = read_interactions(Path(args.interactions), args.fmt)
    figures = evaluate_pairs(parsed.interactions, protocol=args.protocol, k=args.k, seed=args.seed)
    figures["refused_lines"] = parsed.counts()
    print(json.dumps(figures, indent=2))
    return 0


# local replay: snapshot, diff, report --------------------------------------------------------


def _fraction(value: str) -> float:
    """Return a sample fraction in (0, 1], or an argparse error that says so."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 and at most 1")
    return number


def _replay(sub) -> None:
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
