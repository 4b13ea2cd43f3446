"""The backfill flow: daily metrics over a date range, idempotent, equal to the nightly's."""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl
import pytest
from pipeline_fixtures import (
    BACKENDS,
    RUN_COLUMNS,
    RUN_DATE,
    fresh_database,
    generate,
    latest_job,
    params,
    placeholder,
    query,
    table,
)

import flows.backfill
import flows.stages.metrics
from flows.backfill import backfill, date_slices, run_backfill, slice_size
from flows.nightly import run_nightly
from flows.storage.backends import open_storage
from flows.storage.base import Storage
from flows.storage.database import ENV_VAR, Database
from transforms.columns import PLATFORM_METRICS

pytest_plugins = ["prefect_fixtures"]

FIRST = RUN_DATE - timedelta(days=4)
DATES = [FIRST + timedelta(days=i) for i in range(5)]


@pytest.fixture(params=BACKENDS)
def generated(request, tmp_path) -> Database:
    """Return a database of each backend holding the generated data, no run yet."""
    with fresh_database(request.param, tmp_path, request) as db:
        generate(db)
        yield db


def _metrics(db: Database) -> pl.DataFrame:
    return table(db, "daily_metrics", without=RUN_COLUMNS)


def test_backfill_writes_platform_rows_for_every_date(generated):
    result = run_backfill(generated, FIRST, RUN_DATE)

    assert result.status == "completed"
    platform = query(
        generated,
        "SELECT metric_date, metric_name, metric_value FROM daily_metrics "
        "WHERE metric_type = 'platform' AND entity_type = 'platform' AND entity_id = 'all'",
    )
    assert sorted(set(platform["metric_date"].to_list())) == DATES
    for day in DATES:
        names = platform.filter(pl.col("metric_date") == day)["metric_name"].to_list()
        assert sorted(names) == sorted(PLATFORM_METRICS), day
    plays = platform.filter(pl.col("metric_name") == "plays")["metric_value"]
    assert (plays > 0).all()
    assert result.rows["daily_metrics"] == query(generated, "SELECT * FROM daily_metrics").height
    job = latest_job(generated, "backfill")
    assert job["job_status"] == "completed" and job["run_id"] == result.run_id


def test_backfill_twice_leaves_the_same_rows(generated):
    run_backfill(generated, FIRST, RUN_DATE)
    before = _metrics(generated)
    second = run_backfill(generated, FIRST, RUN_DATE)
    after = _metrics(generated)

    assert after.equals(before)
    keys = ["metric_date", "metric_type", "entity_type", "entity_id", "metric_name"]
    assert after.select(keys).is_unique().all()
    runs = query(generated, "SELECT DISTINCT run_id FROM daily_metrics")["run_id"].to_list()
    assert runs == [second.run_id]


def test_date_slices_cover_the_range_in_order():
    assert date_slices(DATES, 2) == [DATES[0:2], DATES[2:4], DATES[4:5]]
    assert date_slices(DATES, 7) == [DATES]
    assert date_slices([], 7) == []


def test_backfill_in_slices_equals_one_slice(generated, monkeypatch):
    monkeypatch.setattr(flows.backfill, "SLICE_DATES", len(DATES))
    run_backfill(generated, FIRST, RUN_DATE)
    whole = _metrics(generated)
    monkeypatch.setattr(flows.backfill, "SLICE_DATES", 2)  # 3 slices, each its own publish
    sliced = run_backfill(generated, FIRST, RUN_DATE)

    assert _metrics(generated).equals(whole)  # to the last bit
    assert sliced.rows["daily_metrics"] == whole.height
    runs = query(generated, "SELECT DISTINCT run_id FROM daily_metrics")["run_id"].to_list()
    assert runs == [sliced.run_id]


def test_a_failed_slice_leaves_the_slices_published_logged(generated, monkeypatch):
    monkeypatch.setattr(flows.backfill, "SLICE_DATES", 2)  # [0:2] [2:4] [4:5]
    real = Storage.replace_daily_metrics

    def failing(self, frame, dates, types):
        if DATES[2] in dates:
            raise RuntimeError("injected failure in the second slice")
        return real(self, frame, dates, types)

    monkeypatch.setattr(Storage, "replace_daily_metrics", failing)
    with pytest.raises(RuntimeError, match="injected"):
        run_backfill(generated, FIRST, RUN_DATE)

    held = query(generated, "SELECT DISTINCT metric_date FROM daily_metrics")["metric_date"]
    logged = query(generated, "SELECT message FROM job_logs WHERE stage = 'publish'")["message"]
    published = set()
    for message in logged:
        first, last = re.match(r"daily metrics of (\S+) to (\S+):", message).groups()
        published |= {d for d in DATES if str(first) <= str(d) <= str(last)}
    assert set(held.to_list()) == published
    assert set(DATES[0:2]) <= published and not published & set(DATES[2:4])
    assert latest_job(generated, "backfill")["job_status"] == "failed"


def test_every_slices_rows_naming_an_unknown_id_are_dropped_and_counted(generated, monkeypatch):
    monkeypatch.setattr(flows.backfill, "SLICE_DATES", 2)  # 3 slices
    real = flows.stages.metrics.metrics_from_partials

    def naming_an_unknown_track(partials, dates):
        metrics = real(partials, dates)
        stray = metrics.head(1).with_columns(entity_type=pl.lit("track"), entity_id=pl.lit("-7"))
        return pl.concat([metrics, stray])

    monkeypatch.setattr(flows.stages.metrics, "metrics_from_partials", naming_an_unknown_track)
    result = run_backfill(generated, FIRST, RUN_DATE)
    assert result.dangling == {"daily_metrics": 3}  # one a slice, added up
    stray = query(generated, "SELECT COUNT(*) AS n FROM daily_metrics WHERE entity_id = '-7'")
    assert stray["n"][0] == 0
    assert result.rows["daily_metrics"] == _metrics(generated).height


def test_backfill_equals_the_nightly_daily_metrics(generated):
    day = DATES[2]
    nightly = run_nightly(generated, params(run_date=day))
    p = placeholder(generated, 1)
    select = (
        "SELECT metric_type, entity_type, entity_id, metric_name, metric_value "
        f"FROM daily_metrics WHERE metric_date = {p} AND metric_type <> 'model_quality' "
        "ORDER BY metric_type, entity_type, entity_id, metric_name"
    )
    from_nightly = query(generated, select, (day,))
    run_backfill(generated, FIRST, RUN_DATE)
    from_backfill = query(generated, select, (day,))

    assert nightly.status == "completed"
    assert from_nightly.height > 0
    assert set(from_nightly["metric_type"].to_list()) == {
        "platform",
        "track",
        "record",
        "store",
        "device",
        "recommendation",
    }
    assert from_backfill.equals(from_nightly)


@pytest.mark.prefect_server
def test_backfill_flow_through_prefect(prefect_harness, generated, monkeypatch):
    monkeypatch.setenv(ENV_VAR, generated.url)  # Postgres: slices published on two threads

    state = backfill(date_from=FIRST, date_to=RUN_DATE, return_state=True)

    assert state.is_completed()
    summary = state.result()
    assert summary["status"] == "completed" and summary["rows"]["daily_metrics"] > 0
    job = latest_job(generated, "backfill")
    assert job["job_status"] == "completed"
    assert job["flow_run_id"] == str(state.state_details.flow_run_id)
    assert job["progress_percent"] == 100
    dates = query(generated, "SELECT DISTINCT metric_date FROM daily_metrics")
    assert sorted(dates["metric_date"].to_list()) == DATES
    from prefect_fixtures import flow_run_task_names

    tasks = flow_run_task_names(state.state_details.flow_run_id)  # each slice's, in this run
    with open_storage(generated) as storage:
        slices = len(date_slices(DATES, slice_size(len(DATES), storage.publishers)))
    assert sum(name.startswith("publish") for name in tasks) == slices
