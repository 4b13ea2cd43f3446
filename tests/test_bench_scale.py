"""Smoke run of bench/scale.py on the XS profile: both backfills, the same rows, the figures."""

from __future__ import annotations

import pytest

from bench.scale import run


@pytest.mark.postgres
def test_the_sharded_backfill_on_a_local_cluster_reports_the_same_rows(pg_database):
    report = run("XS", days=30, workers=2, shards=3, memory="1GiB", db=pg_database)
    one, many = report["one_shard"], report["sharded"]
    assert one["status"] == many["status"] == "completed"
    assert report["same_rows"] and one["daily_metrics"]["rows"] > 0
    assert len(many["worker_peak_rss_bytes"]) == 2 and min(many["worker_peak_rss_bytes"]) > 0
    window = sum(report["window_rows"].values())
    assert window > 0
    for table, rows in many["rows_read"].items():  # each shard reads its own rows only
        assert report["window_rows"][table] <= rows <= 1.05 * report["window_rows"][table]
    assert report["wall_ratio"] > 0
