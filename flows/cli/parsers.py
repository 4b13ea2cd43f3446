"""Every sub-command of `rotation`: its options, and its handler as "module:function".

Handlers are named, not imported: a command's module (and Prefect, scikit-learn, the
database drivers it brings) is imported only when that command runs (flows/cli/main.py),
so `rotation --help` stays fast. Options of the runs come from flows/params.py.
"""

from __future__ import annotations

import argparse

from flows.cli.options import (
    OneLineParser,
    add_cluster,
    add_database,
    add_params,
    add_replica,
    fraction,
    iso_date,
    positive,
)
from flows.params import BackfillParams, GenerateParams, NightlyParams, TuneParams

FORMATS = ["movielens", "csv"]
CACHE_HELP = (
    "the Redis of the published lists, redis://[:password@]host[:port][/db][?prefix=NAME] "
    "(default: $ROTATION_CACHE_URL, else none)"
)
SPLITS = ["stratified", "temporal"]


def build_parser(version: str) -> argparse.ArgumentParser:
    """Return the argument parser of every sub-command."""
    parser = OneLineParser(
        prog="rotation", description="Rotation analytics and recommendation pipeline."
    )
    parser.add_argument("--version", action="version", version=f"rotation {version}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (_db, _generate, _run, _recommend, _similar, _demo, _import, _evaluate):
        register(sub)
    for register in (_snapshot, _diff, _report, _export):
        register(sub)
    return parser


def _command(
    sub, name: str, help_text: str, handler: str, database: bool = True, ready: bool = False
):
    """Return a new sub-command parser whose handler is `handler` (module:function).

    `ready`: the command needs a migrated database, checked (one line, no retry) before its
    handler's module is even imported (flows/cli/checks.py).
    """
    command = sub.add_parser(name, help=help_text, description=help_text)
    command.set_defaults(handler=handler, ready=ready)
    if database:
        add_database(command)
    return command


def _db(sub) -> None:
    db = sub.add_parser("db", help="schema management").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    _command(
        db,
        "migrate",
        "apply pending migrations (Postgres) or create the replay schema (DuckDB)",
        "flows.cli.db:migrate_command",
    )
    partitions = _command(
        db,
        "partitions",
        "make the event tables' monthly partitions ahead, move events waiting in a default "
        "partition to their month's, split the pre-partitioning history month by month "
        "(Postgres)",
        "flows.cli.db:partitions_command",
        ready=True,
    )
    partitions.add_argument(
        "--ahead",
        type=positive,
        default=NightlyParams.partitions_ahead,
        help="months after this one that get a partition (default: %(default)s)",
    )


def _generate(sub) -> None:
    command = _command(
        sub, "generate", "fill every input table with synthetic data", "flows.cli.db:generate"
    )
    add_params(command, GenerateParams)


def _run(sub) -> None:
    run = sub.add_parser("run", help="run a flow").add_subparsers(
        dest="flow", required=True, metavar="FLOW"
    )
    nightly = _command(
        run, "nightly", "every stage for one date", "flows.cli.run:nightly", ready=True
    )
    add_params(nightly, NightlyParams)
    backfill = _command(
        run, "backfill", "daily metrics over a date range", "flows.cli.run:backfill", ready=True
    )
    add_params(backfill, BackfillParams)
    for command in (nightly, backfill):
        add_cluster(command)
    nightly.add_argument(
        "--cache", default=None, help=CACHE_HELP + ": warmed with the lists the run publishes"
    )
    for flow, command in (("nightly", nightly), ("backfill", backfill)):
        command.set_defaults(announce=flow)
        add_replica(command)
        command.add_argument(
            "--json", action="store_true", help="print the run's summary as JSON on stdout"
        )
    tune = _command(
        run,
        "tune",
        "choose the record model's parameters on a date's data and record them for the nightly",
        "flows.cli.run:tune",
        ready=True,
    )
    add_params(tune, TuneParams)
    tune.set_defaults(announce="tune")
    tune.add_argument("--json", action="store_true", help="print the run's summary as JSON")


def _recommend(sub) -> None:
    command = _command(
        sub,
        "recommend",
        "a user's published lists, with reasons",
        "flows.cli.lookup:recommend",
        ready=True,
    )
    command.add_argument("user_id", type=int, help="the user's id")
    command.add_argument("--list", dest="list_name", default=None, help="one list only")
    command.add_argument("--limit", type=positive, default=10, help="items per list (default: 10)")
    command.add_argument("--cache", default=None, help=CACHE_HELP + ": read first")


def _similar(sub) -> None:
    command = _command(
        sub, "similar", "an item's published neighbours", "flows.cli.lookup:similar", ready=True
    )
    command.add_argument("source_type", choices=["record", "track", "store"])
    command.add_argument("source_id", type=int, help="the item's id")
    command.add_argument(
        "--type",
        dest="similarity_type",
        default=None,
        choices=["collaborative", "content", "hybrid"],
        help="one kind only (default: all)",
    )
    command.add_argument("--limit", type=positive, default=10, help="neighbours (default: 10)")
    command.add_argument("--cache", default=None, help=CACHE_HELP + ": read first")


def _demo(sub) -> None:
    command = _command(
        sub,
        "demo",
        "generate demo data into DuckDB and run the nightly flow",
        "flows.cli.demo:demo",
        database=False,
    )
    command.add_argument(
        "--dir", default="rotation-demo", help="where the DuckDB file goes (default: rotation-demo)"
    )
    add_params(command, GenerateParams, only=("users", "tracks"))


def _import(sub) -> None:
    command = _command(
        sub,
        "import-interactions",
        "load external implicit feedback",
        "flows.cli.external:import_command",
    )
    command.add_argument(
        "file", help="the interactions: u.data, or a csv user_id,item_id,timestamp"
    )
    command.add_argument("--format", dest="fmt", choices=FORMATS, required=True)
    command.add_argument(
        "--items", default=None, help="item metadata: MovieLens u.item, or a csv item_id,genres"
    )
    command.add_argument(
        "--holdout",
        choices=SPLITS,
        default=None,
        help="load only the train part of this split; write the test part to --test-out "
        "(then score the nightly's lists with evaluate --database)",
    )
    command.add_argument("--seed", type=int, default=42, help="the split's seed (default: 42)")
    command.add_argument("--test-out", default=None, help="csv for the held-out test pairs")


def _evaluate(sub) -> None:
    command = _command(
        sub,
        "evaluate",
        "score the production model on external data",
        "flows.cli.external:evaluate",
    )
    command.add_argument("--interactions", help="external file to split, train on and score")
    command.add_argument(
        "--format", dest="fmt", choices=FORMATS, default="csv", help="(default: csv)"
    )
    command.add_argument(
        "--test",
        default=None,
        help="with --database: score the published 'records' lists against this "
        "csv of held-out pairs (written by import-interactions --test-out)",
    )
    command.add_argument(
        "--items", default=None, help="item genres: MovieLens u.item, or a csv item_id,genres"
    )
    command.add_argument(
        "--protocol", choices=SPLITS, default="stratified", help="(default: stratified)"
    )
    command.add_argument("--k", type=positive, default=10, help="list length scored (default: 10)")
    command.add_argument("--seed", type=int, default=42, help="the split's seed (default: 42)")
    command.add_argument(
        "--no-tune",
        action="store_true",
        help="the model's fixed defaults instead of parameters tuned on a validation split "
        "of the train part",
    )
    command.add_argument(
        "--tune-budget",
        type=positive,
        default=TuneParams.budget,
        help="candidates the tuning scores beyond the defaults (default: %(default)s)",
    )


def _snapshot(sub) -> None:
    command = _command(
        sub,
        "snapshot",
        "copy the tables the pipeline reads into a DuckDB file",
        "flows.cli.replay:snapshot",
        database=False,
    )
    command.add_argument(
        "--from", dest="source", required=True, help="the database to copy: postgresql://…"
    )
    command.add_argument("--to", dest="target", required=True, help="the DuckDB file to (re)place")
    command.add_argument("--since", type=iso_date, default=None, help="first day of events kept")
    command.add_argument("--until", type=iso_date, default=None, help="last day of events kept")
    command.add_argument(
        "--sample-users",
        dest="sample",
        type=fraction,
        default=None,
        help="keep this fraction of users (0-1] with their whole history",
    )
    command.add_argument("--seed", type=int, default=42, help="the sample's seed (default: 42)")
    add_replica(command)
    add_params(command, NightlyParams, only=("replica_wait",))


def _diff(sub) -> None:
    command = _command(
        sub,
        "diff",
        "compare two runs' outputs (two DuckDB files)",
        "flows.cli.replay:diff",
        database=False,
    )
    command.add_argument("--base", required=True, help="duckdb:PATH of the reference run")
    command.add_argument("--head", required=True, help="duckdb:PATH of the run compared with it")
    command.add_argument(
        "--date", type=iso_date, default=None, help="metric date (default: the latest in both)"
    )
    command.add_argument("--top", type=positive, default=20, help="changes listed (default: 20)")
    command.add_argument("--json", action="store_true", help="print JSON instead of text")


def _report(sub) -> None:
    command = _command(
        sub,
        "report",
        "a self-contained HTML report of a date range",
        "flows.cli.replay:report",
        ready=True,
    )
    command.add_argument(
        "--from",
        dest="date_from",
        type=iso_date,
        default=None,
        help="first day (default: 29 days before --to)",
    )
    command.add_argument(
        "--to",
        dest="date_to",
        type=iso_date,
        default=None,
        help="last day (default: the latest day with metrics)",
    )
    command.add_argument(
        "--out", default="report.html", help="the HTML file written (default: report.html)"
    )


def _export(sub) -> None:
    command = _command(
        sub,
        "export",
        "a published table or a wide metrics view to a Parquet file",
        "flows.cli.replay:export",
        ready=True,
    )
    command.add_argument(
        "--table",
        required=True,
        help="daily_metrics, daily_metrics_TYPE (one column per metric; TYPE: platform, track, "
        "record, store, device, recommendation, model_quality), content_similarity, "
        "recommendation_data or record_popularity",
    )
    command.add_argument("--out", required=True, help="the Parquet file written")
    command.add_argument(
        "--from", dest="date_from", type=iso_date, default=None, help="first day (default: all)"
    )
    command.add_argument(
        "--to", dest="date_to", type=iso_date, default=None, help="last day (default: all)"
    )
