"""Checksums of a database's published tables (and inputs), ordered by key, run columns aside.

    .venv/bin/python bench/checksums.py --database postgresql://…/rotation_bench_s [--inputs]

Two runs of the same code on the same inputs give the same checksums; so do two versions of
the code that publish the same rows. Identity ids, run ids and timestamps of the run
(computed_at, created_at, expires_at) are left out: they differ from run to run by design.
`--inputs` adds the event and catalogue tables, to show that two profiles hold the same rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: table → (columns compared, key order). Floats print exactly (PostgreSQL 12+: shortest
#: text that reads back as the same double), jsonb in its normalised text form.
OUTPUTS: dict[str, tuple[str, str]] = {
    "daily_metrics": (
        "metric_date, metric_type, entity_type, entity_id, metric_name, metric_value",
        "metric_date, metric_type, entity_type, entity_id, metric_name",
    ),
    "content_similarity": (
        "source_type, source_id, target_type, target_id, similarity_type, score, rank, "
        "model_version",
        "source_type, source_id, target_type, target_id, similarity_type",
    ),
    "recommendation_data": (
        "user_id, data_type, list_name, item_type, item_id, item_key, score, confidence, rank, "
        "reason, model_version",
        "user_id, list_name, rank",
    ),
    "record_popularity": ("record_id, plays, genres, in_stock", "record_id"),
}
INPUTS: dict[str, tuple[str, str]] = {
    table: ("*", "id")
    for table in ("users", "stores", "records", "tracks", "store_inventory", "play_history")
} | {"usage_metrics": ("*", "id"), "favorites": ("*", "id")}


def checksums(url: str, tables: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """Return {table: {rows, md5}}: the md5 of its rows' text, in key order."""

    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for table, (columns, order) in tables.items():
            # trusted names from the dicts above, never from input
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), ''))"
                f" FROM (SELECT {columns} FROM {table}) AS t"
            ).fetchone()
            out[table] = {"rows": row[0], "md5": row[1]}
    return out


def main() -> None:
    """Print the checksums as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="postgresql://… of a benchmark profile")
    parser.add_argument("--inputs", action="store_true", help="also the input tables")
    args = parser.parse_args()
    tables = OUTPUTS | (INPUTS if args.inputs else {})
    print(json.dumps(checksums(args.database, tables), indent=2))


if __name__ == "__main__":
    main()
