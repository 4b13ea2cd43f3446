"""The sub-commands of `rotation` and what each one does."""

from __future__ import annotations

import argparse
import json
import os

from flows.cli import add_database, iso_date, last_complete_day, non_negative, positive
from flows.database import ENV_VAR


def register(sub: argparse._SubParsersAction) -> None:
    """Add every sub-command to the parser."""
    from flows.commands_external import register_external
    from flows.commands_replay import register_replay

    _db(sub)
    _generate(sub)
    _run(sub)
    _recommend(sub)
    _similar(sub)
    _demo(sub)
    register_external(sub)
    register_replay(sub)


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
