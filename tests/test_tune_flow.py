"""The tune flow records its choice; the nightly uses the latest one unless the data drifted."""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.nightly import run_nightly
from flows.params import TuneParams
from flows.stages.interactions import to_matrix
from flows.stages.tuning import choose_params, drift, fingerprint, tuned_version
from flows.tune import run_tune
from models.recommender import MODEL_VERSION, RotationRecommender
from models.tuning import normalised
from tests.pipeline_fixtures import (
    BACKENDS,
    RUN_DATE,
    fresh_database,
    generate,
    latest_job,
    params,
    query,
)

SHAPE = {"users": 1000, "items": 500, "interactions": 20000, "density": 0.04}


def latest_row(**changes) -> pl.DataFrame:
    """Return a model_tuning row as tuning/latest reads it, with `changes`."""
    row = {
        "id": 1,
        "run_id": "r",
        "run_date": RUN_DATE,
        "model_version": MODEL_VERSION,
        "params": json.dumps({"l2": 30.0, "lowpass": [[8, 0.6]]}),
        **SHAPE,
    }
    return pl.DataFrame([{**row, **changes}])


def test_no_recorded_choice_means_the_defaults():
    params, version, why = choose_params(latest_row().clear(), SHAPE)
    assert params is None and version == MODEL_VERSION and "no tuned" in why


def test_the_latest_choice_is_used_while_the_data_keeps_its_shape():
    grown = {**SHAPE, "users": 1400, "interactions": 27000}  # within x1.5
    params, version, _ = choose_params(latest_row(), grown)
    assert params == {"l2": 30.0, "lowpass": ((8, 0.6),)}
    assert version == tuned_version(params) and version.startswith(MODEL_VERSION + "+tuned-")


@pytest.mark.parametrize("figure", ["users", "items", "interactions", "density"])
def test_a_figure_beyond_the_drift_factor_falls_back_to_the_defaults(figure):
    for factor in (1.6, 1 / 1.6):
        current = {**SHAPE, figure: SHAPE[figure] * factor}
        assert drift(SHAPE, current) is not None
        params, version, why = choose_params(latest_row(), current)
        assert params is None and version == MODEL_VERSION and figure in why


def test_a_choice_that_kept_every_default_keeps_the_models_version():
    defaults = RotationRecommender().get_params()
    kept = json.dumps({name: defaults[name] for name in ("l2", "dropout", "lowpass")})
    params, version, _ = choose_params(latest_row(params=kept), SHAPE)
    assert params is not None and version == MODEL_VERSION


def test_a_choice_made_for_another_model_version_is_not_used():
    params, _, why = choose_params(latest_row(model_version="older-model"), SHAPE)
    assert params is None and "older-model" in why


def test_the_fingerprint_counts_positive_pairs():
    records = pl.DataFrame(
        {"user_id": [1, 1, 2, 3], "item_id": [5, 6, 5, 7], "weight": [1, 2, 1, 0]}
    )
    want = {"users": 2, "items": 2, "interactions": 3, "density": 0.75}
    assert fingerprint(to_matrix(records)) == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_tune_records_a_choice_that_the_next_nightly_uses(backend, tmp_path, request):
    with fresh_database(backend, tmp_path, request) as db:
        generate(db)
        result = run_tune(db, TuneParams(run_date=RUN_DATE, budget=3, window_days=0))
        assert result.status == "completed"
        assert [s["stage"] for s in result.stages][-4:] == ["validate", "holdout", "tune", "record"]
        rows = query(db, "SELECT * FROM model_tuning")
        assert rows.height == 1
        row = rows.row(0, named=True)
        chosen = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
        assert chosen == result.model["params"] and row["model_version"] == MODEL_VERSION
        assert row["candidates"] == 4 and row["validation_ndcg"] >= row["default_ndcg"]
        assert row["users"] > 0 and 0 < row["density"] <= 1
        assert latest_job(db, "tune")["job_status"] == "completed"

        nightly = run_nightly(db, params(window_days=0))
        assert nightly.model["params"] == normalised(chosen)
        assert nightly.model["source"].startswith("tuned on")
        version = nightly.model["model_version"]
        assert version == tuned_version(chosen)  # MODEL_VERSION itself when defaults were kept
        versions = query(db, "SELECT DISTINCT model_version FROM recommendation_data")
        assert versions["model_version"].to_list() == [version]
