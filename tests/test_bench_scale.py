"""Smoke run of bench/scale.py on the XS profile: each flow twice, the same rows, the figures."""

from __future__ import annotations

import pytest

from bench.scale import PUBLISHED, run


@pytest.mark.postgres
@pytest.mark.parametrize("flow", ["backfill", "nightly"])
def test_the_sharded_flow_on_a_local_cluster_reports_the_same_rows(pg_database, flow):
    report = run("XS", days=30, workers=2, shards=3, memory="1GiB", db=pg_database, flow=flow)
    one, many = report["one_shard"], report["sharded"]
    assert one["status"] == many["status"] == "completed"
    assert set(one["checksums"]) == set(PUBLISHED[flow])
    assert all(figures["rows"] > 0 for figures in one["checksums"].values())
    assert report["same_rows"]
    assert len(many["worker_peak_rss_bytes"]) == 2 and min(many["worker_peak_rss_bytes"]) > 0
    window = sum(report["window_rows"].values())
    assert window > 0
    for table, rows in many["rows_read"].items():  # each shard reads its own rows only
        assert report["window_rows"][table] <= rows <= 1.05 * report["window_rows"][table]
    assert report["wall_ratio"] > 0
