"""Handlers of `rotation db migrate` and `rotation generate`: the schema and synthetic data."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows.analyst.generate import generate_into
from flows.cli.options import params_from
from flows.params import GenerateParams
from flows.storage.backends import open_storage
from flows.storage.migrate import migrate
from flows.storage.partitions import ensure_partitions, partition_rows, split_legacy


def migrate_command(args) -> int:
    """Apply pending migrations and say which."""
    applied = migrate(args.db)
    print(f"{args.db.display}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def generate(args) -> int:
    """Generate synthetic data and print the row counts."""
    params = dataclasses.asdict(params_from(args, GenerateParams))
    counts = generate_into(args.db, **params, progress=lambda line: print(line, flush=True))
    for table, rows in counts.items():
        print(f"{table:<24}{rows:>12,}")
    return 0


def partitions_command(args) -> int:
    """Make partitions ahead, split the legacy partition, print every partition."""
    if not args.db.is_postgres:
        print(f"{args.db.display}: DuckDB's replay tables are not partitioned; nothing to do")
        return 0
    with open_storage(args.db) as storage:
        split_legacy(storage, say=lambda line: print(line, flush=True))
        # after the split: the months its legacy partition covered may now have none
        for made in ensure_partitions(storage, dt.datetime.now(dt.UTC), args.ahead):
            print(f"{made.table}: {made.partition} made ({made.rows:,} rows moved into it)")
        rows = partition_rows(storage)
    print(f"{'table':<15}{'partition':<26}{'from':<12}{'to':<12}{'rows (est.)':>12}")
    for table, name, lower, upper, is_default, estimate in rows:
        low = "default" if is_default else (lower.date().isoformat() if lower else "-")
        high = "" if is_default else (upper.date().isoformat() if upper else "-")
        print(f"{table:<15}{name:<26}{low:<12}{high:<12}{estimate:>12,}")
    return 0
