"""The nightly flow end to end, on DuckDB and PostgreSQL, on tiny generated data.

One run per backend goes through a real Prefect server (the session's `prefect_test_harness`)
with the database taken from ROTATION_DATABASE_URL; the other runs use the direct runner.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import polars as pl
import psycopg
import pytest
from pipeline_fixtures import (
    BACKENDS,
    RUN_COLUMNS,
    RUN_DATE,
    differences,
    execute,
    fresh_database,
    generate,
    latest_job,
    params,
    query,
    table,
)

from flows.nightly import nightly, run_nightly
from flows.storage.database import ENV_VAR, Database

pytest_plugins = ["prefect_fixtures"]

OUTPUT_TABLES = ("daily_metrics", "content_similarity", "recommendation_data")
METRIC_TYPES = {"platform", "track", "record", "store", "device", "recommendation", "model_quality"}
LISTS = {"records", "records_in_stock", "tracks", "stores", "genres", "styles", "artists"}
STAGES = {
    "extract",
    "validate",
    "daily_metrics",
    "publish_metrics",
    "interactions",
    "similarity",
    "recommendations",
    "evaluation",
    "references",
    "publish",
    "partitions",
    "retention",
}
# the published tables' keys (UNIQUE on PostgreSQL)
UNIQUE_KEYS = {
    "daily_metrics": "metric_date, metric_type, entity_type, entity_id, metric_name",
    "content_similarity": "source_type, source_id, target_type, target_id, similarity_type",
    "recommendation_data": "user_id, list_name, rank",
}
# metric types computed by both the pipeline and the SQL function aggregate_daily_metrics
SHARED_METRIC_TYPES = ("platform", "track", "record", "device", "recommendation")


@dataclass
class FlowRun:
    """A nightly flow run through the Prefect server, and the database it ran on."""

    db: Database
    summary: dict
    flow_run_id: str
    state_type: str


@pytest.fixture(scope="module", params=BACKENDS)
def flow_run(request, prefect_harness, tmp_path_factory):
    """Return the nightly flow run (through Prefect) on freshly generated data."""
    directory = tmp_path_factory.mktemp("nightly-flow")
    with fresh_database(request.param, directory, request) as db:
        generate(db)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(ENV_VAR, db.url)
            state = nightly(run_date=RUN_DATE, database=None, return_state=True)
        yield FlowRun(db, state.result(), str(state.state_details.flow_run_id), state.type.value)


@pytest.fixture(params=BACKENDS)
def generated(request, tmp_path) -> Database:
    """Return a database of each backend holding the generated data, no run yet."""
    with fresh_database(request.param, tmp_path, request) as db:
        generate(db)
        yield db


def _run_date_rows(db: Database, sql: str) -> pl.DataFrame:
    return query(db, sql.replace("$D", f"DATE '{RUN_DATE.isoformat()}'"))


# (a) the flow through Prefect ------------------------------------------------------------------


def test_flow_run_completes_and_publishes(flow_run):
    assert flow_run.state_type == "COMPLETED"
    assert flow_run.summary["status"] == "completed"
    assert flow_run.summary["published"] is True
    assert flow_run.summary["warning"] is None
    assert all(flow_run.summary["rows"][t] > 0 for t in OUTPUT_TABLES)


def test_daily_metrics_hold_every_metric_type_for_the_run_date(flow_run):
    types = _run_date_rows(
        flow_run.db,
        "SELECT DISTINCT metric_type FROM daily_metrics WHERE metric_date = $D",
    )["metric_type"].to_list()
    assert set(types) == METRIC_TYPES
    platform = _run_date_rows(
        flow_run.db,
        "SELECT metric_name, metric_value FROM daily_metrics "
        "WHERE metric_date = $D AND metric_type = 'platform' AND entity_id = 'all'",
    )
    values = dict(platform.iter_rows())
    assert values["plays"] > 0 and values["listeners"] > 0


def test_content_similarity_holds_every_kind(flow_run):
    kinds = query(
        flow_run.db,
        "SELECT source_type, similarity_type, count(*) AS n FROM content_similarity "
        "GROUP BY source_type, similarity_type",
    )
    found = {(s, k) for s, k, n in kinds.iter_rows() if n > 0}
    assert {
        ("record", "collaborative"),
        ("record", "content"),
        ("record", "hybrid"),
        ("track", "collaborative"),
        ("store", "collaborative"),
    } <= found
    run_ids = query(flow_run.db, "SELECT DISTINCT run_id FROM content_similarity")["run_id"]
    assert run_ids.to_list() == [flow_run.summary["run_id"]]


def test_recommendation_data_holds_every_list(flow_run):
    lists = query(flow_run.db, "SELECT DISTINCT list_name FROM recommendation_data")
    assert set(lists["list_name"].to_list()) == LISTS
    run_ids = query(flow_run.db, "SELECT DISTINCT run_id FROM recommendation_data")["run_id"]
    assert run_ids.to_list() == [flow_run.summary["run_id"]]


def test_job_row_is_completed_with_the_flow_run_id(flow_run):
    job = latest_job(flow_run.db)
    assert job["job_status"] == "completed"
    assert job["progress_percent"] == 100
    assert job["flow_run_id"] == flow_run.flow_run_id
    assert job["run_id"] == flow_run.summary["run_id"]
    assert job["error_message"] is None
    assert job["completed_at"] is not None
    assert job["result"]["status"] == "completed"
    assert job["payload"]["run_date"] == RUN_DATE.isoformat()
    assert job["items_processed"] > 0


def test_performance_metrics_has_a_row_per_stage(flow_run):
    job = latest_job(flow_run.db)
    p = "%s" if flow_run.db.is_postgres else "$1"
    stages = query(
        flow_run.db,
        f"SELECT stage, duration_ms, run_id FROM performance_metrics WHERE job_id = {p}",
        (job["id"],),
    )
    assert set(stages["stage"].to_list()) == STAGES
    assert stages.height == len(STAGES)
    assert (stages["duration_ms"] >= 0).all()
    assert set(stages["run_id"].to_list()) == {flow_run.summary["run_id"]}


def test_job_logs_has_a_row_per_stage(flow_run):
    """Design: job_logs records the run; each stage leaves at least one line there."""
    job = latest_job(flow_run.db)
    p = "%s" if flow_run.db.is_postgres else "$1"
    logs = query(
        flow_run.db, f"SELECT DISTINCT stage FROM job_logs WHERE job_id = {p}", (job["id"],)
    )
    missing = STAGES - set(logs["stage"].to_list())
    assert not missing, f"no job_logs row for stage(s) {sorted(missing)}"


def test_prefect_logs_show_each_stage_with_its_rows_and_seconds(flow_run):
    """The stage lines reach the flow run's logs in Prefect (the UI, `prefect flow-run logs`)."""
    from prefect.logging.handlers import APILogWorker
    from prefect_fixtures import flow_run_logs

    APILogWorker.drain_all()
    lines = flow_run_logs(flow_run.flow_run_id)
    stage_line = re.compile(r"(\w+): done in \d+\.\d s \(.*peak RSS \d+\.\d\d GiB\)$")
    logged = {m.group(1) for m in map(stage_line.match, lines) if m}
    assert logged == STAGES, lines
    extract = next(line for line in lines if line.startswith("extract: "))
    assert re.search(r"out [\d,]+", extract), extract
    assert not [line for line in lines if "…" in line], "progress lines are not the run's log"


def test_prefect_artifacts_of_the_flow_run(flow_run):
    from prefect_fixtures import flow_run_artifacts

    artifacts = {a.key: a for a in flow_run_artifacts(flow_run.flow_run_id)}
    assert {"nightly-run-report", "nightly-key-metrics"} <= set(artifacts)
    report = str(artifacts["nightly-run-report"].data)
    assert flow_run.summary["run_id"] in report
    assert "completed" in report
    table_data = artifacts["nightly-key-metrics"].data
    rows = json.loads(table_data) if isinstance(table_data, str) else table_data
    metrics = {row["metric"] for row in rows}
    assert {"rows.content_similarity", "rows.recommendation_data", "quality.ndcg_at_10"} <= metrics


# (c) recommendation list invariants --------------------------------------------------------


def test_ranks_are_gapless_per_user_and_list(flow_run):
    ranks = query(
        flow_run.db,
        "SELECT user_id, list_name, count(*) AS n, min(rank) AS lo, max(rank) AS hi, "
        "count(DISTINCT rank) AS distinct_ranks FROM recommendation_data "
        "GROUP BY user_id, list_name",
    )
    assert ranks.height > 0
    bad = ranks.filter(
        (pl.col("lo") != 1)
        | (pl.col("hi") != pl.col("n"))
        | (pl.col("distinct_ranks") != pl.col("n"))
    )
    assert bad.height == 0, bad.head(5)


def test_no_list_holds_an_item_twice(flow_run):
    repeated = query(
        flow_run.db,
        "SELECT user_id, list_name, item_type, item_id, item_key, count(*) AS n "
        "FROM recommendation_data GROUP BY 1, 2, 3, 4, 5 HAVING count(*) > 1",
    )
    assert repeated.height == 0, repeated.head(5)


def test_confidence_is_between_zero_and_one(flow_run):
    bounds = query(
        flow_run.db, "SELECT min(confidence) AS lo, max(confidence) AS hi FROM recommendation_data"
    ).row(0)
    assert 0 <= bounds[0] <= bounds[1] <= 1


SEEN_RECORDS = """
SELECT r.user_id, r.list_name, r.item_id FROM recommendation_data AS r
WHERE r.list_name IN ('records', 'records_in_stock') AND (
    EXISTS (SELECT 1 FROM play_history AS p JOIN tracks AS t ON t.id = p.track_id
            WHERE p.user_id = r.user_id AND t.record_id = r.item_id)
 OR EXISTS (SELECT 1 FROM favorites AS f
            WHERE f.user_id = r.user_id AND f.favoritable_type = 'record'
              AND f.favoritable_id = r.item_id)
 OR EXISTS (SELECT 1 FROM favorites AS f JOIN tracks AS t ON t.id = f.favoritable_id
            WHERE f.user_id = r.user_id AND f.favoritable_type = 'track'
              AND t.record_id = r.item_id)
 OR EXISTS (SELECT 1 FROM user_collection_items AS i
            JOIN user_collections AS c ON c.id = i.collection_id
            WHERE c.user_id = r.user_id AND i.record_id = r.item_id))
"""


def test_record_lists_leave_out_what_the_user_has(flow_run):
    seen = query(flow_run.db, SEEN_RECORDS)
    assert seen.height == 0, seen.head(5)
    # the check has teeth: users do have played, favourited and collected records
    history = query(
        flow_run.db,
        "SELECT (SELECT count(*) FROM play_history) AS plays, "
        "(SELECT count(*) FROM favorites) AS favs, "
        "(SELECT count(*) FROM user_collection_items) AS items",
    ).row(0)
    assert min(history) > 0


def test_in_stock_list_only_holds_records_for_sale_at_active_stores(flow_run):
    out_of_stock = query(
        flow_run.db,
        "SELECT r.user_id, r.item_id FROM recommendation_data AS r "
        "WHERE r.list_name = 'records_in_stock' AND NOT EXISTS ("
        "  SELECT 1 FROM store_inventory AS i JOIN stores AS s ON s.id = i.store_id "
        "  WHERE i.record_id = r.item_id AND i.record_status = 'for_sale' "
        "    AND s.store_status = 'active')",
    )
    assert out_of_stock.height == 0, out_of_stock.head(5)
    assert (
        query(
            flow_run.db,
            "SELECT count(*) AS n FROM recommendation_data WHERE list_name = 'records_in_stock'",
        )["n"][0]
        > 0
    )


def test_no_list_exceeds_max_per_artist(flow_run):
    per_artist = query(
        flow_run.db,
        "SELECT x.user_id, x.list_name, rec.artist, count(*) AS n FROM ("
        "  SELECT user_id, list_name, item_id AS record_id FROM recommendation_data "
        "  WHERE list_name IN ('records', 'records_in_stock') "
        "  UNION ALL "
        "  SELECT r.user_id, r.list_name, t.record_id FROM recommendation_data AS r "
        "  JOIN tracks AS t ON t.id = r.item_id WHERE r.list_name = 'tracks'"
        ") AS x JOIN records AS rec ON rec.id = x.record_id "
        "GROUP BY x.user_id, x.list_name, rec.artist",
    )
    assert per_artist.height > 0
    assert per_artist["n"].max() <= params().max_per_artist


def test_track_list_only_holds_playable_unplayed_tracks(flow_run):
    unplayable = query(
        flow_run.db,
        "SELECT r.user_id, r.item_id FROM recommendation_data AS r "
        "WHERE r.list_name = 'tracks' AND NOT EXISTS ("
        "  SELECT 1 FROM audio_matches AS a WHERE a.track_id = r.item_id "
        "    AND a.match_status IN ('verified', 'auto_approved'))",
    )
    assert unplayable.height == 0, unplayable.head(5)
    played = query(
        flow_run.db,
        "SELECT r.user_id, r.item_id FROM recommendation_data AS r "
        "JOIN play_history AS p ON p.user_id = r.user_id AND p.track_id = r.item_id "
        "WHERE r.list_name = 'tracks'",
    )
    assert played.height == 0, played.head(5)


# (d) the pipeline's daily metrics equal the SQL function's --------------------------------


@pytest.mark.parametrize("flow_run", [BACKENDS[1]], indirect=True)
def test_daily_metrics_equal_aggregate_daily_metrics(flow_run):
    """aggregate_daily_metrics is a PostgreSQL function: compared inside a rolled-back
    transaction, so the published rows stay as the pipeline wrote them."""
    key = "metric_type, entity_type, entity_id, metric_name"
    select = (
        f"SELECT {key}, metric_value FROM daily_metrics "
        "WHERE metric_date = %s AND metric_type = ANY(%s)"
    )
    types = list(SHARED_METRIC_TYPES)
    with psycopg.connect(flow_run.db.url) as conn:  # one transaction, rolled back at the end
        pipeline = {r[:4]: r[4] for r in conn.execute(select, (RUN_DATE, types)).fetchall()}
        conn.execute(
            "DELETE FROM daily_metrics WHERE metric_date = %s AND metric_type = ANY(%s)",
            (RUN_DATE, types),
        )
        conn.execute("SELECT aggregate_daily_metrics(%s)", (RUN_DATE,))
        function = {r[:4]: r[4] for r in conn.execute(select, (RUN_DATE, types)).fetchall()}
        conn.rollback()
    shared = pipeline.keys() & function.keys()
    assert {k[0] for k in shared} == set(SHARED_METRIC_TYPES)
    assert ("platform", "platform", "all", "plays") in shared
    different = {
        k: (pipeline[k], function[k])
        for k in sorted(shared)
        if pipeline[k] != pytest.approx(function[k], rel=1e-9, abs=1e-9)
    }
    assert not different, dict(list(different.items())[:10])


# (b) the same date twice gives the same rows ---------------------------------------------


def test_running_a_date_twice_gives_the_same_rows(generated):
    first = run_nightly(generated, params())
    before = {t: table(generated, t, without=RUN_COLUMNS) for t in OUTPUT_TABLES}
    second = run_nightly(generated, params())
    after = {t: table(generated, t, without=RUN_COLUMNS) for t in OUTPUT_TABLES}
    assert first.published and second.published
    assert first.run_id != second.run_id
    changed = {name: differences(before[name], after[name], name) for name in OUTPUT_TABLES}
    assert all(before[name].height > 0 for name in OUTPUT_TABLES)
    assert not any(changed.values()), f"rows changed by re-running the date: {changed}"
    for name in OUTPUT_TABLES:
        assert after[name].equals(before[name]), name
    runs = query(generated, "SELECT DISTINCT run_id FROM recommendation_data")["run_id"]
    assert runs.to_list() == [second.run_id]
    for name, key in UNIQUE_KEYS.items():  # DuckDB does not enforce them (its migration 0004)
        rows = query(generated, f"SELECT {key}, count(*) AS n FROM {name} GROUP BY {key}")
        assert rows["n"].max() == 1, f"{name}: a key published twice"


# (e) the quality gate ------------------------------------------------------------------------

PREVIOUS_GOOD_JOB = """
INSERT INTO jobs (job_type, job_status, progress_percent, payload, result, run_id,
                  started_at, completed_at, heartbeat_at, created_at, updated_at)
VALUES ('nightly', 'completed', 100, '{}',
        '{"status": "completed", "published": true, "quality": {"ndcg_at_10": 0.99}}',
        'previous-excellent-run', now(), now(), now(), now(), now())
"""


def test_quality_gate_keeps_the_previous_results(generated):
    first = run_nightly(generated, params())
    assert first.published and 0 < first.quality["ndcg_at_10"] < 0.79
    published = {t: table(generated, t) for t in ("content_similarity", "recommendation_data")}
    execute(generated, PREVIOUS_GOOD_JOB)

    refused = run_nightly(generated, params())

    assert refused.published is False
    assert refused.status == "completed_with_warnings"
    assert "quality gate" in refused.warning and "0.9900" in refused.warning
    for name, frame in published.items():
        assert table(generated, name).equals(frame), f"{name} changed although refused"
    job = latest_job(generated)
    assert job["run_id"] == refused.run_id
    assert job["job_status"] == "completed_with_warnings"
    assert job["result"]["published"] is False
    assert job["result"]["warning"] == refused.warning
    p = "%s" if generated.is_postgres else "$1"
    warnings = query(
        generated,
        f"SELECT message FROM job_logs WHERE job_id = {p} AND log_level = 'warning' "
        "AND stage = 'publish'",
        (job["id"],),
    )["message"].to_list()
    assert refused.warning in warnings


def test_force_publish_overrides_the_quality_gate(generated):
    run_nightly(generated, params())
    execute(generated, PREVIOUS_GOOD_JOB)

    forced = run_nightly(generated, params(force_publish=True))

    assert forced.published is True
    assert forced.status == "completed_with_warnings"
    assert forced.warning.startswith("quality gate") and "--force-publish" in forced.warning
    for name in ("content_similarity", "recommendation_data"):
        runs = query(generated, f"SELECT DISTINCT run_id FROM {name}")["run_id"].to_list()
        assert runs == [forced.run_id]
    assert latest_job(generated)["job_status"] == "completed_with_warnings"


# (f) runs that must not replace the published lists -------------------------------------------


def published_lists(db: Database) -> dict[str, pl.DataFrame]:
    """Return the published lists and neighbours, to compare before and after a run."""
    return {t: table(db, t) for t in ("content_similarity", "recommendation_data")}


def assert_skipped(db: Database, result, before: dict[str, pl.DataFrame], reason: str) -> None:
    """Assert that `result` was skipped for `reason`, its job row says so, the lists stayed."""
    assert result.status == "skipped" and result.published is False
    assert reason in result.warning and "--force-publish overrides" in result.warning
    for name, frame in before.items():
        assert table(db, name).equals(frame), f"{name} replaced by a skipped run"
    job = latest_job(db)
    assert (job["run_id"], job["job_status"]) == (result.run_id, "skipped")
    assert job["result"]["published"] is False and job["result"]["warning"] == result.warning


def test_a_window_without_events_keeps_the_published_lists(generated):
    run_nightly(generated, params())
    before = published_lists(generated)
    later = RUN_DATE + dt.timedelta(days=400)  # the events end at RUN_DATE

    skipped = run_nightly(generated, params(run_date=later, window_days=30))

    assert skipped.events == 0
    assert_skipped(generated, skipped, before, "no play or usage events")
    forced = run_nightly(generated, params(run_date=later, window_days=30, force_publish=True))
    assert forced.published and forced.status == "completed_with_warnings"
    assert "published all the same" in forced.warning


def test_the_first_run_ever_publishes_even_without_events(generated):
    later = RUN_DATE + dt.timedelta(days=400)

    first = run_nightly(generated, params(run_date=later, window_days=30))

    assert first.events == 0 and first.published and first.status == "completed"


def test_lists_covering_far_fewer_users_are_not_published(generated):
    first = run_nightly(generated, params())
    before = published_lists(generated)
    execute(generated, "DELETE FROM users")  # on PostgreSQL their plays go with them

    skipped = run_nightly(generated, params())

    assert first.users_served > 0 and skipped.users_served < first.users_served / 2
    reason = "no play or usage events" if skipped.events == 0 else "the lists cover"
    assert_skipped(generated, skipped, before, reason)


def test_a_quality_that_cannot_be_measured_any_more_is_not_published(generated):
    first = run_nightly(generated, params(window_days=0))
    assert first.quality["ndcg_at_10"] > 0
    before = published_lists(generated)
    # ten days on, the 7 holdout days hold no event: the window (all history) still does
    later = params(run_date=RUN_DATE + dt.timedelta(days=10), window_days=0)

    skipped = run_nightly(generated, later)

    assert skipped.events > 0 and "ndcg_at_10" not in skipped.quality
    assert_skipped(generated, skipped, before, "its quality cannot be measured")


def test_a_skipped_flow_run_is_named_skipped_in_prefect(prefect_harness, generated, monkeypatch):
    """Through the Prefect server: the skipped run's state says so, with its reason."""
    run_nightly(generated, params())
    monkeypatch.setenv(ENV_VAR, generated.url)

    later = RUN_DATE + dt.timedelta(days=400)
    state = nightly(run_date=later, window_days=30, return_state=True)

    assert (state.type.value, state.name) == ("COMPLETED", "Skipped")
    assert state.message.startswith("no play or usage events")
    assert state.result()["status"] == "skipped"
