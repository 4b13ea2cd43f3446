"""Export: a published table or a wide metrics view to a Parquet file, for pandas and polars.

Rows stream from the database to the file batch by batch (flows/storage/stream.py), so a
table larger than memory exports all the same; the file is written next to its path and
moved over it when complete, never left half-written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from flows.storage.database import Database
from flows.storage.stream import consistent_reader

#: What `rotation export` writes: table or view → whether it takes a date range.
EXPORTS: dict[str, bool] = {
    "daily_metrics": True,
    **{
        f"daily_metrics_{kind}": True
        for kind in ("platform", "track", "record", "store", "device", "recommendation")
    },
    "daily_metrics_model_quality": True,
    "content_similarity": False,
    "recommendation_data": False,
    "record_popularity": False,
}
FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)
PROGRESS_ROWS = 1_000_000  # a progress line this often


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    rows: int
    bytes: int
    seconds: float


def export_table(
    db: Database,
    table: str,
    out: Path,
    first: date | None = None,
    last: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write `table` (for the days in [first, last] when it has dates) to Parquet file `out`."""
    if table not in EXPORTS:
        raise ValueError(f"cannot export {table!r}; accepted: {', '.join(EXPORTS)}")
    if not EXPORTS[table] and (first or last):
        raise ValueError(f"{table} has no dates: --from and --to do not apply")
    if first and last and first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    params = (first or FIRST_DAY, last or LAST_DAY) if EXPORTS[table] else ()
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    started, rows, say = time.perf_counter(), 0, progress or (lambda line: None)
    try:
        with (
            consistent_reader(db) as read,
            read(f"export/{table}", params) as batches,
            pq.ParquetWriter(tmp, batches.schema, compression="zstd") as writer,
        ):
            for batch in batches:
                writer.write_batch(batch)
                before, rows = rows, rows + batch.num_rows
                if rows // PROGRESS_ROWS > before // PROGRESS_ROWS:
                    say(f"{table}: {rows:,} rows")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(out, rows, out.stat().st_size, time.perf_counter() - started)
