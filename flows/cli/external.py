"""Handlers of `rotation import-interactions` and `rotation evaluate`: external data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from flows.analyst.evaluate import evaluate_pairs, evaluate_published
from flows.analyst.importer import import_interactions, read_interactions, read_item_metadata


def import_command(args) -> int:
    """Import an external interaction file and report loaded and refused lines."""
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


def evaluate(args) -> int:
    """Print the production model's metrics on an external file (or the published lists')."""
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
        tune_budget=0 if args.no_tune else args.tune_budget,
    )
    figures["refused_lines"] = parsed.counts()
    print(json.dumps(figures, indent=2))
    return 0
