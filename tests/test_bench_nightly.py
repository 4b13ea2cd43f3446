"""Smoke run of bench/nightly.py on the XS profile: the report's shape, not its timings."""

from __future__ import annotations

import psycopg
import pytest

from bench.nightly import RUN_DATE, in_fresh_process, print_report, run, warm_cache
from flows.tracking import peak_rss_bytes

STAGES = {
    "extract",
    "validate",
    "daily_metrics",
    "interactions",
    "similarity",
    "recommendations",
    "evaluation",
    "publish",
    "total",
}
RATIOS = {
    "extract_rows_per_s_vs_anchor",
    "publish_rows_per_s_vs_anchor",
    "publish_rows_per_s_vs_text_anchor",
    "models_seconds_vs_anchor",
    "daily_metrics_vs_sql_one_date",
    "sql_backfill_vs_ours",
}


ROUND_RATIOS = RATIOS - {"sql_backfill_vs_ours"}


@pytest.mark.postgres
def test_benchmark_report_has_every_stage_anchor_and_ratio(pg_database, capsys):
    logged = []
    report = run("XS", anchors=True, backfill_days=3, log=logged.append, db=pg_database, rounds=2)
    assert len(report["rounds"]) == 2
    progress = [line for line in logged if line.startswith("round 2: nightly")]
    assert len(progress) == 1 and "models_seconds_vs_anchor" in progress[0]
    for round_ in report["rounds"]:
        stages = {s["stage"]: s for s in round_["stages"]}
        assert round_["status"] == "completed" and set(stages) >= STAGES
        assert stages["extract"]["rows_out"] > 0 and stages["publish"]["rows_out"] > 0
        assert stages["total"]["seconds"] >= stages["recommendations"]["seconds"] > 0
        anchors = round_["anchors"]
        assert 0 < anchors["extract"]["rows"] < stages["extract"]["rows_out"]
        published = round_["rows"]["content_similarity"] + round_["rows"]["recommendation_data"]
        assert anchors["load"]["rows"] == report["anchors"]["load_text"]["rows"] == published
        assert anchors["model"]["pairs"] > 0 and anchors["model"]["seconds"] > 0
        assert set(round_["ratios"]) == ROUND_RATIOS
        assert round_["dead_rows_vacuumed_before_nightly"] >= 0
        assert round_["peak_rss_bytes"] > 0 and round_["stages"][0]["peak_rss_mb"] > 0
    assert report["anchors"]["metrics"]["dates"] == 3
    assert report["anchors"]["metrics"]["backfill_s"] > 0
    assert set(report["ratios"]) == RATIOS and report["machine"]["cores"] >= 1
    for name in ROUND_RATIOS:  # two rounds: the median is their mean
        values = [r["ratios"][name] for r in report["rounds"]]
        assert report["ratios"][name] == pytest.approx(sum(values) / 2)
    # the backfill before and after the SQL side, each into an emptied daily_metrics
    assert len(report["backfill_runs_s"]) == 2 and min(report["backfill_runs_s"]) > 0
    assert report["backfill_seconds"] == pytest.approx(sum(report["backfill_runs_s"]) / 2)
    assert report["dead_rows_vacuumed_before_sql"] >= 0
    vacuumed = (  # the event tables' partitions count for their table (migration 0020)
        "SELECT count(DISTINCT coalesce(i.inhparent, s.relid)) FROM pg_stat_user_tables AS s "
        "LEFT JOIN pg_inherits AS i ON i.inhrelid = s.relid WHERE s.last_vacuum IS NOT NULL "
        "AND coalesce(i.inhparent, s.relid)::regclass::text "
        "IN ('play_history', 'usage_metrics', 'daily_metrics')"
    )
    with psycopg.connect(pg_database.url) as conn:
        assert conn.execute(vacuumed).fetchone()[0] == 3  # the event tables before the nightly
    # the warm-up reads what the extract reads, no more (not the outputs)
    assert warm_cache(pg_database, RUN_DATE) == stages["extract"]["rows_out"]
    print_report(report)
    out = capsys.readouterr().out
    assert "nightly at profile XS" in out and "round 2 ratio models_seconds_vs_anchor" in out
    assert "ratio models_seconds_vs_anchor (median of 2 rounds)" in out
    assert "before and after the SQL side" in out
    assert "ratio sql_backfill_vs_ours: " in out  # one figure, not a median of the rounds


def test_a_fresh_process_peak_leaves_out_this_process_memory():
    ballast = bytearray(512 * 2**20)
    ballast[:: 2**12] = b"\x01" * len(range(0, len(ballast), 2**12))  # resident, every page
    child = in_fresh_process(peak_rss_bytes)
    assert child < peak_rss_bytes() - 400 * 2**20  # a spawned child would report ≥ 512 MiB
    del ballast
