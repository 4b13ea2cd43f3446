"""Sub-commands for external data: import-interactions and evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from flows.cli import add_database, positive


def register_external(sub) -> None:
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
    ev.add_argument(
        "--items",
        default=None,
        help="item genres for the model: MovieLens u.item, or a csv item_id,genres (a|b|c)",
    )
    add_database(ev)
    ev.add_argument("--protocol", choices=["stratified", "temporal"], default="stratified")
    ev.add_argument("--k", type=positive, default=10)
    ev.add_argument("--seed", type=int, default=42)
    ev.set_defaults(handler=cmd_evaluate)


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
    from flows.importer import read_interactions, read_item_metadata

    if args.test:
        print(json.dumps(evaluate_published(args.db, Path(args.test), args.k), indent=2))
        return 0
    if not args.interactions:
        raise ValueError("evaluate needs --interactions FILE, or --database DB --test FILE")
    parsed = read_interactions(Path(args.interactions), args.fmt)
    items = read_item_metadata(Path(args.items) if args.items else None, args.fmt)
    figures = evaluate_pairs(
        parsed.interactions,
        protocol=args.protocol,
        k=args.k,
        seed=args.seed,
        items=None if items is None else items.rename({"item_id": "id"}),
    )
    figures["refused_lines"] = parsed.counts()
    print(json.dumps(figures, indent=2))
    return 0
