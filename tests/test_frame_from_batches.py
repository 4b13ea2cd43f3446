"""Reading Arrow batches into polars: values kept, the batches themselves released."""

from __future__ import annotations

import gc

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from flows.storage.base import frame_from_batches

ROWS = 50_000


def _batches() -> pa.RecordBatchReader:
    """Return batches whose buffers come from pyarrow's pool (counted by total_allocated_bytes)."""
    schema = pa.schema(
        [("id", pa.int64()), ("at", pa.timestamp("us", "UTC")), ("kind", pa.string()),
         ("session", pa.string())]
    )  # fmt: skip
    batches = []
    for start in range(0, 3 * ROWS, ROWS):
        ids = pc.add(pa.array(np.arange(start, start + ROWS)), 0)
        batches.append(
            pa.record_batch(
                [
                    ids,
                    ids.cast(pa.timestamp("us", "UTC")),
                    pa.array(["play", "skip"] * (ROWS // 2)),
                    pa.array([f"session-{i:012d}" for i in range(start, start + ROWS)]),
                ],
                schema=schema,
            )
        )
    return pa.RecordBatchReader.from_batches(schema, batches)


def test_values_are_read_and_coded():
    frame = frame_from_batches(_batches(), categorical=["kind"])
    assert frame.height == 3 * ROWS
    assert frame.schema["kind"] == pl.Categorical() and frame.schema["session"] == pl.String
    assert frame["id"].to_list() == list(range(3 * ROWS))
    assert frame["session"][ROWS + 1] == f"session-{ROWS + 1:012d}"
    assert frame["at"].cast(pl.Int64).equals(frame["id"], check_names=False)


def test_the_frame_keeps_no_arrow_batch_alive():
    gc.collect()
    before = pa.total_allocated_bytes()
    reader = _batches()
    frame = frame_from_batches(reader, categorical=["kind"])
    del reader
    gc.collect()
    # shared numbers or string views would keep every batch (≈ 7 MB here) allocated
    assert pa.total_allocated_bytes() - before < 100_000
    assert frame.height == 3 * ROWS and frame["session"].n_unique() == 3 * ROWS
