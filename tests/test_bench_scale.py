"""Smoke run of bench/scale.py on the XS profile: each flow twice, the same rows, the figures."""

from __future__ import annotations

import uuid

import pytest

from bench.scale import PUBLISHED, WorkerSampler, held_by_workers, run


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
    tasks = [set(w["task_peak_rss_bytes"]) for w in many["task_peaks"].values()]
    assert "load_shard" in set().union(*tasks)  # each task's peak, by its function's name
    held = held_by_workers(many["task_peaks"])  # as Dask sizes what the tasks keep
    assert held["shard"] > 0 and held["shared"] > 0 and held["spilled"] >= 0
    assert held["lists"] > 0 if flow == "nightly" else held["lists"] == 0
    sides = many["peaks_by_side"]
    assert 0 < sides["shard_tasks"] <= max(many["worker_peak_rss_bytes"])
    assert 0 < sides["other_tasks"] <= max(many["worker_peak_rss_bytes"])
    assert 0 <= sides["shard_task_rise"] < sides["shard_tasks"]  # above what the worker held
    window = sum(report["window_rows"].values())
    assert window > 0
    for table, rows in many["rows_read"].items():  # each shard reads its own rows only
        assert report["window_rows"][table] <= rows <= 1.05 * report["window_rows"][table]
    assert report["wall_ratio"] > 0
    sampled = many["workers_sampled"]
    assert len(sampled) == 2 and all(w["sampled_peak_rss_bytes"] > 0 for w in sampled.values())
    assert all(w["restarts"] == 0 and not w["lost"] for w in sampled.values())
    ran = many["tasks_by_worker"]  # by function: every shard read and the catalogue, once
    assert set(ran) <= set(sampled)
    assert sum(tasks.get("load_shard", 0) for tasks in ran.values()) == 3
    assert sum(tasks.get("load_catalogue", 0) for tasks in ran.values()) == 1
    for figures in (one, many):  # the run process's peak after each stage, as its job says
        assert figures["stages"]["extract"]["peak_rss_mb"] > 0


def test_the_worker_sampler_keeps_each_workers_peak_and_counts_its_restarts():
    sampler = WorkerSampler(client=None)
    worker = {"name": 0, "metrics": {"memory": 100, "managed_bytes": 10}}
    sampler.sample({"tcp://a:1": worker})
    sampler.sample({"tcp://a:1": worker | {"metrics": {"memory": 300, "managed_bytes": 30}}})
    sampler.sample({"tcp://b:2": worker | {"metrics": {"memory": 200, "managed_bytes": 20}}})
    sampler.sample({"tcp://c:3": {"name": 1, "metrics": {"memory": 50}}})
    assert sampler.names() == {"tcp://a:1": "0", "tcp://b:2": "0", "tcp://c:3": "1"}
    assert sampler.report() == {
        "0": {
            "sampled_peak_rss_bytes": 300,
            "managed_bytes_at_peak": 30,
            "restarts": 1,
            "lost": True,
        },
        "1": {
            "sampled_peak_rss_bytes": 50,
            "managed_bytes_at_peak": 0,
            "restarts": 0,
            "lost": False,
        },
    }


@pytest.mark.postgres
def test_a_profiles_database_is_listed_with_its_size_and_dropped(postgres_server, monkeypatch):
    import psycopg

    from bench import profiles

    name = f"T{uuid.uuid4().hex[:8]}"
    absent = f"{name}ABSENT"
    for each in (name, absent):
        monkeypatch.setitem(profiles.PROFILES, each, profiles.Profile(each, 1, 1, 1, 1))
    database = f"rotation_bench_{name.lower()}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        assert profiles.database_sizes(postgres_server)[name] > 0
        assert profiles.drop_profiles([name, absent], postgres_server) == [name]
        assert name not in profiles.database_sizes(postgres_server)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
