"""Handlers of `rotation db migrate` and `rotation generate`: the schema and synthetic data."""

from __future__ import annotations

import dataclasses

from flows.analyst.generate import generate_into
from flows.cli.options import params_from
from flows.params import GenerateParams
from flows.storage.migrate import migrate


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
