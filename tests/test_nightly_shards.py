"""The nightly by shards of users (flows/stages/model_inputs.py): in this process or on a
local Dask cluster, K shards publish the one-shard run's rows, item for item."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from dask.sizeof import sizeof
from distributed import LocalCluster
from pipeline_fixtures import (
    BACKENDS,
    OUTPUT_ORDER,
    RUN_COLUMNS,
    RUN_DATE,
    fresh_database,
    fresh_pg,
    generate,
    latest_job,
    on_a_local_cluster,
    params,
    query,
)

from flows.cli import main
from flows.cluster import ADDRESS_ENV
from flows.nightly import nightly, nightly_dask, run_nightly
from flows.stages.model_inputs import combined_fit_inputs
from flows.stages.recommendations import UNREAD_BY_LISTS, item_side
from flows.stages.shards import (
    catalogue_inputs,
    load_catalogue,
    load_shard,
    plan_shards,
    references_of,
    shard_fit_inputs,
)
from flows.stages.similarity import compute_similarity
from flows.storage.backends import open_storage
from flows.storage.database import ENV_VAR
from flows.tracking import utcnow
from transforms.sizes import arrays_size, frames_size

pytest_plugins = ["prefect_fixtures"]

PUBLISHED = (*OUTPUT_ORDER, "record_popularity")


def published(db) -> dict:
    """Return every table the nightly publishes, run columns aside, in a fixed order."""
    order = OUTPUT_ORDER | {"record_popularity": "record_id"}
    frames = {name: query(db, f"SELECT * FROM {name} ORDER BY {order[name]}") for name in PUBLISHED}
    return {name: frame.drop(RUN_COLUMNS & set(frame.columns)) for name, frame in frames.items()}


def assert_same_rows(whole: dict, sharded: dict) -> None:
    """Assert two runs published the same rows, table by table."""
    for name in PUBLISHED:
        assert whole[name].height > 0, name
        assert sharded[name].equals(whole[name]), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sharded_nightly_publishes_the_one_shard_rows(backend, tmp_path, request):
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        one = run_nightly(db, params())
        whole = published(db)
        many = run_nightly(db, params(shards=3, force_publish=True))  # the same data again
        assert many.status == one.status == "completed", many.warning
        assert_same_rows(whole, published(db))
        assert many.quality == one.quality and many.quality["users"] > 0
        assert (many.events, many.quarantine, many.rows) == (one.events, one.quarantine, one.rows)
        stages = {s["stage"]: s for s in latest_job(db)["result"]["stages"]}
        first = {s["stage"]: s for s in one.stages}
        for name in ("extract", "validate", "interactions"):  # rows in and out as one shard's
            assert (stages[name]["rows_in"], stages[name]["rows_out"]) == (
                first[name]["rows_in"],
                first[name]["rows_out"],
            ), name


@pytest.mark.prefect_server
def test_a_local_dask_cluster_publishes_the_one_shard_nightly(prefect_harness, monkeypatch):
    with fresh_pg() as db:
        generate(db)
        one = run_nightly(db, params())
        whole = published(db)
        flow = on_a_local_cluster(nightly, db, prefect_harness, monkeypatch)
        state = flow(run_date=RUN_DATE, shards=4, force_publish=True, return_state=True)
        assert state.is_completed()
        assert_same_rows(whole, published(db))
        summary = state.result()
        assert summary["quality"] == one.quality and summary["events"] == one.events
        from prefect_fixtures import flow_run_task_names  # a plugin: imported once pytest has it

        names = flow_run_task_names(state.state_details.flow_run_id)
        assert sum(name.startswith("read_shard") for name in names) == 4
        assert sum(name.startswith("read_catalogue") for name in names) == 1


def test_the_nightlys_progress_line_counts_the_shards_read_and_scored(tmp_path, request, capsys):
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        code = main(
            ["run", "nightly", "--database", db.url, "--date", str(RUN_DATE), "--shards", "3"]
        )
        err = capsys.readouterr().err
        assert code == 0
        assert [f"shards read: {n} of 3" in err for n in (1, 2, 3)] == [True] * 3
        assert [f"shards scored: {n} of 3" in err for n in (1, 2, 3)] == [True] * 3


@pytest.mark.prefect_server
def test_the_nightly_dask_flow_runs_on_the_scheduler_its_environment_names(
    prefect_harness, monkeypatch
):
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        dashboard_address=None,
        env={"PREFECT_API_URL": prefect_harness},
    )
    with cluster, fresh_pg() as db:
        generate(db)
        run_nightly(db, params())
        whole = published(db)
        monkeypatch.setenv(ENV_VAR, db.url)
        monkeypatch.setenv(ADDRESS_ENV, cluster.scheduler_address)
        summary = nightly_dask(run_date=RUN_DATE, force_publish=True)
        assert summary["status"] == "completed"
        assert_same_rows(whole, published(db))
        assert latest_job(db)["payload"]["shards"] == 2  # one per worker of the scheduler


@pytest.mark.prefect_server
def test_the_nightly_dask_flow_without_a_scheduler_address_is_one_line(
    prefect_harness, monkeypatch
):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    with pytest.raises(ValueError, match=f"^{ADDRESS_ENV} is not set: the nightly-dask"):
        nightly_dask(run_date=RUN_DATE)


def test_the_item_side_sent_to_the_workers_holds_no_users_row(tmp_path, request):
    """What each worker gets to score its shards: the catalogue without per-user tables and
    the fitted model's item-side arrays (none as long as the users), sized for Dask whole."""
    with fresh_database("duckdb", tmp_path, request) as db:
        generate(db)
        with open_storage(db) as storage:
            now, run = utcnow(), params().resolved()
            catalogue = load_catalogue(storage, now)
            shard = plan_shards([])[0]
            data = load_shard(storage, shard, references_of(catalogue), RUN_DATE, 30, now, run)
    valid = catalogue_inputs(catalogue)
    fit = combined_fit_inputs([shard_fit_inputs(data)])
    sim = compute_similarity(valid, fit, run)
    side = item_side(valid, fit, sim)
    users = sim.records.matrix.shape[0]
    assert users > 0 and side.inputs.records.height == valid.records.height
    assert all(getattr(side.inputs, name).is_empty() for name in UNREAD_BY_LISTS)
    shapes = [array.shape for array in _arrays(side.model)]
    assert shapes and all(users not in shape for shape in shapes), (users, shapes)
    model_bytes = arrays_size(side.model)
    assert model_bytes >= side.model.weights_.nbytes + side.model.item_factors_.nbytes
    assert sizeof(side) >= frames_size(side.inputs) + model_bytes


def _arrays(obj, depth: int = 0) -> list:
    """Return the numpy arrays and sparse matrices among `obj`'s attributes (and theirs)."""
    if isinstance(obj, np.ndarray) or sp.issparse(obj):
        return [obj]
    if depth > 2 or not hasattr(obj, "__dict__"):
        return []
    return [a for value in vars(obj).values() for a in _arrays(value, depth + 1)]
