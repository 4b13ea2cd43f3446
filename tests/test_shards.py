"""Shards by user (flows/stages/shards.py): a backfill by K shards of users, in this process or
on a local Dask cluster, publishes the rows of the one-shard run, read in one snapshot."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import dask.config
import numpy as np
import pytest
import scipy.sparse as sp
from dask.sizeof import sizeof
from distributed import Client, LocalCluster, wait
from pipeline_fixtures import (
    BACKENDS,
    RUN_COLUMNS,
    RUN_DATE,
    execute,
    fresh_database,
    fresh_pg,
    generate,
    one_shard_rows_and_a_cluster_backfill,
    query,
    table,
)

import flows.stages.shards
from flows.backfill import run_backfill
from flows.cli import main
from flows.cluster import (
    SPILL_TARGET,
    WORKER_CONFIG,
    ClusterOptions,
    cluster_options,
    default_shards,
    local_cluster,
)
from flows.stages.shards import (
    FIRST_ID,
    LAST_ID,
    load_catalogue,
    load_shard,
    plan_shards,
    references_of,
    summarize_shard,
)
from flows.storage.backends import open_storage
from flows.tracking import utcnow
from transforms.sizes import arrays_size

pytest_plugins = ["prefect_fixtures"]

FIRST = RUN_DATE - timedelta(days=6)  # a 7-day backfill


def test_the_plan_covers_every_id_once():
    shards = plan_shards([10, 20, 20, 35])  # ntile gives one end per shard, ascending
    assert [(s.first, s.last) for s in shards] == [(FIRST_ID, 10), (11, 20), (21, LAST_ID)]
    assert [s.home for s in shards] == [True, False, False]
    assert plan_shards([]) == plan_shards([7]) and plan_shards([])[0].whole


def sharded_and_whole(db, shards: int, **options):
    """Return (the one-shard run's daily_metrics and summary, the sharded run's)."""
    out = []
    for k in (1, shards):
        result = run_backfill(db, FIRST, RUN_DATE, shards=k, **options)
        assert result.status == "completed"
        out.append((table(db, "daily_metrics", without=RUN_COLUMNS), result))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sharded_backfill_publishes_the_one_shard_rows(backend, tmp_path, request):
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        (whole, one), (sharded, many) = sharded_and_whole(db, 3)
        assert whole.height > 0 and sharded.equals(whole)  # to the last bit
        assert many.events == one.events and many.quarantine == one.quarantine


def test_the_catalogue_is_validated_once_whatever_the_shards(tmp_path, request):
    """A track of an unknown record is quarantined once, not once per shard; its plays, in
    every shard, each where it is read."""
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        execute(
            db,
            "UPDATE tracks SET record_id = -7 WHERE id = "
            "(SELECT min(track_id) FROM play_history WHERE played_at >= ?)",
            (FIRST + timedelta(days=1),),
        )
        (_, one), (_, many) = sharded_and_whole(db, 3)
    counts = {(row["table"], row["reason"]): row["rows"] for row in many.quarantine}
    assert counts[("tracks", "unknown_record")] == 1
    assert counts[("play_history", "unknown_track")] > 0
    assert many.quarantine == one.quarantine


def test_every_shard_reads_in_the_runs_snapshot(monkeypatch):
    """A play written while the shards read (after the first one's) is read by none."""
    with fresh_pg() as db:
        generate(db)
        real = flows.stages.shards.read_all
        reads = []

        def read_then_write(storage, reads_of):
            frames = real(storage, reads_of)
            if "plays" not in frames:  # the catalogue's read
                return frames
            if not reads:  # after the first shard's read: a valid play of the last shard
                execute(
                    db,
                    "INSERT INTO play_history (user_id, track_id, action, played_at, "
                    "duration_played_ms, completion_percentage, session_id, device_type, source) "
                    "SELECT user_id, track_id, action, played_at - interval '1 second', "
                    "duration_played_ms, completion_percentage, session_id, device_type, source "
                    "FROM play_history WHERE played_at >= %s ORDER BY user_id DESC LIMIT 1",
                    (FIRST + timedelta(days=1),),
                )
            reads.append(frames["plays"].height)
            return frames

        before = run_backfill(db, FIRST, RUN_DATE, shards=3)
        monkeypatch.setattr(flows.stages.shards, "read_all", read_then_write)
        during = run_backfill(db, FIRST, RUN_DATE, shards=3)
        monkeypatch.undo()
        after = run_backfill(db, FIRST, RUN_DATE, shards=3)
        assert len(reads) == 3
        assert during.events == before.events and after.events == before.events + 1


@pytest.mark.prefect_server
def test_a_local_dask_cluster_publishes_the_one_shard_rows(prefect_harness, monkeypatch):
    with fresh_pg() as db:
        generate(db)
        whole, flow = one_shard_rows_and_a_cluster_backfill(
            db, prefect_harness, monkeypatch, FIRST, RUN_DATE
        )
        state = flow(date_from=FIRST, date_to=RUN_DATE, shards=4, return_state=True)
        assert state.is_completed()
        assert table(db, "daily_metrics", without=RUN_COLUMNS).equals(whole)
        from prefect_fixtures import flow_run_task_names

        names = flow_run_task_names(state.state_details.flow_run_id)
        assert sum(name.startswith("read_shard") for name in names) == 4


def test_a_local_clusters_workers_spill_their_results_past_a_quarter_of_their_memory():
    """Results a worker holds past SPILL_TARGET of its limit go to its disk (Dask's default
    target, 0.6, would keep all these in memory), and come back whole when fetched."""
    mib = 2**20
    kwargs = local_cluster(1, "1GiB") | {"silence_logs": logging.ERROR}
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        parts = [client.submit(np.full, 80 * mib // 8, i, key=f"part-{i}") for i in range(4)]
        wait(parts)
        spilled = client.run(lambda dask_worker: sorted(dask_worker.data.slow))
        held = sum(f.result().nbytes for f in parts) / mib
        values = [f.result()[-1] for f in parts]
    assert SPILL_TARGET * 1024 < held < 0.6 * 1024
    assert list(spilled.values()) == [["part-0"]]  # the least recently made, down to 240 MiB
    assert values == [0, 1, 2, 3]


def test_the_spill_setting_a_remote_clusters_workers_are_told_is_the_local_clusters():
    """README and prefect.yaml give remote workers the environment variable that Dask reads
    as a local cluster's WORKER_CONFIG."""
    ((key, value),) = WORKER_CONFIG.items()
    name = "DASK_" + key.upper().replace(".", "__")
    collected = dask.config.collect_env({name: str(value)})
    assert functools.reduce(lambda config, part: config[part], key.split("."), collected) == value
    root = Path(__file__).parents[1]
    for doc in ("README.md", "prefect.yaml"):
        assert f"{name}={value}" in (root / doc).read_text()


def test_dask_sizes_a_shards_rows_as_the_frames_they_hold(tmp_path, request):
    """A worker counts a shard's rows as managed memory (and spills them past its threshold),
    not as the few bytes of their holder."""
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        with open_storage(db) as storage:
            now = utcnow()
            references = references_of(load_catalogue(storage, now))
            data = load_shard(storage, plan_shards([])[0], references, RUN_DATE, 30, now)
    held = sum(getattr(data.metrics, f.name).estimated_size() for f in fields(data.metrics))
    assert held > 100_000
    assert held <= sizeof(data) <= 2 * held
    assert sizeof(summarize_shard(data)) > sizeof(data.summary.counts) > 0


def test_workers_on_an_embedded_database_is_one_line(tmp_path, request, capsys):
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        dates = ["--from", str(FIRST), "--to", str(RUN_DATE)]
        code = main(["run", "backfill", "--database", db.url, *dates, "--workers", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("rotation: error: a local Dask cluster of 2 worker(s) needs a ")


def test_no_scheduler_at_the_address_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2s")
    with fresh_pg() as db:
        generate(db)
        dates = ["--from", str(FIRST), "--to", str(RUN_DATE)]
        address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
        code = main(["run", "backfill", "--database", db.url, *dates, "--cluster", address])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1
        assert err[-1].startswith(f"rotation: error: Dask scheduler {address}: ")
        assert err[-1].endswith("; nothing was run")
        assert query(db, "SELECT count(*) AS n FROM jobs")["n"][0] == 0


def test_cluster_options_refuse_what_means_nothing():
    with pytest.raises(ValueError, match="exclude each other"):
        cluster_options("tcp://h:8786", 2, None, env={})
    with pytest.raises(ValueError, match="give --workers"):
        cluster_options(None, None, "4GiB", env={})
    assert cluster_options(None, None, None, env={"ROTATION_DASK_ADDRESS": "tcp://s:8786"}) == (
        ClusterOptions(address="tcp://s:8786")
    )
    assert not cluster_options(None, None, None, env={}).distributed


def test_the_default_shards_follow_the_users_and_the_workers():
    four, two = ClusterOptions(workers=4), ClusterOptions(workers=2)
    assert default_shards(four, None, 100_000) == 16  # 6,250 users each: L on 4 workers
    assert default_shards(two, None, 100_000) == 14  # a multiple of the workers
    assert default_shards(two, None, 120) == 2  # one per worker at least
    assert default_shards(four, 3, 100_000) == 3  # as given
    assert default_shards(ClusterOptions(), None, 100_000) == 1  # this process: one


def test_the_progress_line_counts_the_shards_read(tmp_path, request, capsys):
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        dates = ["--from", str(FIRST), "--to", str(RUN_DATE)]
        code = main(["run", "backfill", "--database", db.url, *dates, "--shards", "3"])
        err = capsys.readouterr().err
        assert code == 0
        assert [f"shards read: {n} of 3" in err for n in (1, 2, 3)] == [True] * 3


def test_arrays_size_counts_a_models_arrays_and_its_parts_once():
    class Part:
        def __init__(self, shared):
            self.shared, self.sparse = shared, sp.csr_matrix(np.eye(10, dtype=np.float32))

    shared = np.zeros(1000)
    model = Part(shared)
    model.knn_ = Part(shared)  # the same array twice: counted once
    sparse = model.sparse.data.nbytes + model.sparse.indices.nbytes + model.sparse.indptr.nbytes
    assert arrays_size(model) == shared.nbytes + 2 * sparse
    assert arrays_size(None) == 0 and arrays_size(3) == 0


def test_a_fresh_process_sizes_polars_frames_and_prefect_states_by_their_rows():
    """What a Dask worker counts as managed memory: the installed package's dask.sizeof
    entry point, loaded with Dask in any process (a worker imports none of ours first)."""
    script = (
        "import polars as pl\n"
        "from dask.sizeof import sizeof\n"
        "from prefect.results import ResultRecord, ResultRecordMetadata\n"
        "from prefect.serializers import PickleSerializer\n"
        "from prefect.states import Completed\n"
        "frame = pl.DataFrame({'a': range(1_000_000)})\n"
        "meta = ResultRecordMetadata(storage_key=None, serializer=PickleSerializer())\n"
        "record = ResultRecord(metadata=meta, result=frame)\n"
        "print(sizeof(frame), sizeof(Completed(data=frame)), sizeof(Completed(data=record)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["8000000"] * 3
