"""`rotation diff`: two runs' outputs compared (metrics, recommendation and similarity overlap)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from pipeline_fixtures import RUN_DATE, execute, generate, params

from flows.analyst.diff import diff_runs, format_diff, metric_counts, top_changes
from flows.cli import main
from flows.nightly import run_nightly
from flows.storage.database import Database, parse_database
from flows.storage.migrate import migrate


def _duck(path: Path) -> Database:
    return parse_database(f"duckdb:{path}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Database]:
    """Return four files of one generated data set: base, a same-parameter rerun of it,
    a byte copy of base, and a run with other parameters (top_n, half-life)."""
    folder = tmp_path_factory.mktemp("diff")
    seed = _duck(folder / "seed.duckdb")
    generate(seed)
    for name in ("base", "rerun", "other"):
        shutil.copy(seed.path, folder / f"{name}.duckdb")
    dbs = {name: _duck(folder / f"{name}.duckdb") for name in ("base", "rerun", "other")}
    run_nightly(dbs["base"], params())
    run_nightly(dbs["rerun"], params())
    other = params(top_n=5, half_life_days=3.0)
    run_nightly(dbs["other"], other)
    shutil.copy(dbs["base"].path, folder / "copy.duckdb")
    dbs["copy"] = _duck(folder / "copy.duckdb")
    return dbs


def _column(frame: pl.DataFrame, column: str) -> list:
    return frame[column].to_list()


def test_identical_files_have_full_overlap_and_no_changed_metric(runs):
    d = diff_runs(runs["base"], runs["copy"])
    assert d.metric_date == RUN_DATE and d.changed_metrics == 0
    assert d.metric_counts["same"].sum() > 100
    assert d.top_changes.is_empty()
    for frame in (d.recommendations, d.similarity):
        assert frame.height > 0
        assert set(_column(frame, "mean_jaccard")) == {1.0}
        assert set(_column(frame, "top1_changed_share")) == {0.0}
    assert "records" in _column(d.recommendations, "list_name")
    assert d.quality.height == 4 and d.quality["delta"].abs().max() == 0


def test_same_parameters_rerun_gives_the_same_lists(runs):
    d = diff_runs(runs["base"], runs["rerun"])
    assert d.changed_metrics == 0
    assert set(_column(d.recommendations, "mean_jaccard")) == {1.0}
    assert set(_column(d.similarity, "mean_jaccard")) == {1.0}  # the run is deterministic
    assert set(_column(d.similarity, "top1_changed_share")) == {0.0}


def test_other_parameters_change_the_lists_and_the_quality(runs):
    d = diff_runs(runs["base"], runs["other"])
    records = d.recommendations.filter(pl.col("list_name") == "records").row(0, named=True)
    assert records["users"] > 50 and records["mean_jaccard"] < 1
    assert 0 < records["top1_changed_share"] <= 1
    assert d.recommendations["list_name"][0] == "records"
    assert d.similarity["mean_jaccard"].min() < 1
    quality = d.quality.filter(pl.col("metric_name") == "ndcg_at_10").row(0, named=True)
    assert quality["base_date"] == quality["head_date"] == RUN_DATE
    assert quality["base_value"] != quality["head_value"]
    # event metrics do not depend on the model parameters: only model quality changed
    changed = d.metric_counts.filter(pl.col("changed") > 0)["metric_type"].to_list()
    moved = int((d.quality["delta"] != 0).sum())  # nDCG at least; another may tie by chance
    assert changed == ["model_quality"] and d.changed_metrics == moved >= 1
    assert set(d.top_changes["metric_type"]) == {"model_quality"}
    text = format_diff(d)
    assert "Recommendation overlap" in text and "ndcg_at_10" in text


def _recs(db: Database, rows: list[tuple[int, int, int]]) -> None:
    """Insert 'records' recommendation rows (user_id, rank, item_id) into a migrated file."""
    for user, rank, item in rows:
        execute(
            db,
            "INSERT INTO recommendation_data (user_id, data_type, list_name, item_type, item_id,"
            " score, confidence, rank, model_version, expires_at) VALUES ($1, 'recommendation',"
            " 'records', 'record', $2, 1.0, 1.0, $3, 't', now())",
            (user, item, rank),
        )


def test_jaccard_and_top1_on_hand_made_lists(tmp_path):
    base, head = _duck(tmp_path / "b.duckdb"), _duck(tmp_path / "h.duckdb")
    migrate(base)
    migrate(head)
    ten = list(range(1, 11))
    # user 1: 5 of 10 kept (J = 5/15), same first; user 2: same set reversed (J = 1, top-1
    # changed); user 3: only in base (J = 0); rank 11 is beyond the top-10 and ignored
    _recs(base, [(1, r, i) for r, i in enumerate(ten, 1)] + [(1, 11, 99)])
    _recs(head, [(1, r, i) for r, i in enumerate([1, 2, 3, 4, 5, 11, 12, 13, 14, 15], 1)])
    _recs(base, [(2, r, i) for r, i in enumerate(ten, 1)])
    _recs(head, [(2, r, i) for r, i in enumerate(reversed(ten), 1)])
    _recs(base, [(3, 1, 7)])
    d = diff_runs(base, head)
    row = d.recommendations.row(0, named=True)
    assert (row["list_name"], row["users"], row["users_in_both"]) == ("records", 3, 2)
    assert row["mean_jaccard"] == pytest.approx((5 / 15 + 1 + 0) / 3)
    assert row["top1_changed_share"] == pytest.approx(0.5)
    assert d.metric_date is None and d.changed_metrics == 0


def test_metric_counts_and_biggest_relative_changes():
    pairs = pl.DataFrame(
        {
            "metric_type": ["platform", "platform", "track", "track", "track"],
            "entity_type": ["platform", "platform", "track", "track", "track"],
            "entity_id": ["all", "all", "1", "2", "3"],
            "metric_name": ["plays", "skips", "plays", "plays", "plays"],
            "base_value": [100.0, 10.0, 0.0, 4.0, None],
            "head_value": [110.0, 10.0, 3.0, 2.0, 1.0],
            "delta": [10.0, 0.0, 3.0, -2.0, None],
            "relative_change": [0.1, 0.0, None, -0.5, None],
            "status": ["changed", "same", "changed", "changed", "only_head"],
        }
    )
    counts = metric_counts(pairs)
    assert counts.row(0) == ("platform", 1, 0, 0, 1)
    assert counts.row(1) == ("track", 2, 0, 1, 0)
    top = top_changes(pairs, 3)
    # from zero or new first (infinite), then -50 %, then +10 %; the unchanged row never
    assert top["entity_id"].to_list() == ["3", "1", "2"]


def test_cli_diff_text_json_and_errors(runs, capsys):
    args = ["diff", "--base", runs["base"].url, "--head", runs["other"].url]
    assert main([*args, "--json", "--date", str(RUN_DATE)]) == 0
    payload = json.loads(capsys.readouterr().out)
    moved = int((diff_runs(runs["base"], runs["other"]).quality["delta"] != 0).sum())
    assert payload["metric_date"] == str(RUN_DATE) and payload["changed_metrics"] == moved >= 1
    assert {"recommendations", "similarity", "quality", "top_changes"} <= payload.keys()
    assert main(args) == 0
    assert "mean_jaccard" in capsys.readouterr().out
    earlier = RUN_DATE - dt.timedelta(days=1)  # no nightly ran that day: nothing to compare
    assert main([*args, "--json", "--date", str(earlier)]) == 0
    assert json.loads(capsys.readouterr().out)["quality"] == []
    pg = "postgresql://someone:pw@127.0.0.1:5432/x"
    assert main(["diff", "--base", pg, "--head", runs["other"].url]) == 1
    err = capsys.readouterr().err
    assert "--base must be duckdb:PATH" in err and ":pw@" not in err
    assert main(["diff", "--base", runs["base"].url, "--head", "duckdb:/nonexistent.db"]) == 1
    assert "does not exist" in capsys.readouterr().err
