"""The tune flow: the record model's parameters chosen on the nightly's data of a date (its
last days held out for validation, flows/stages/tuning.py), recorded in model_tuning with
their validation score and the data's fingerprint. Weekly (prefect.yaml); the nightly reads
the latest row. Not in the nightly's path: a run never waits for a search."""

from __future__ import annotations

import json

from prefect import flow
from prefect.runtime import flow_run

from flows.nightly import (
    DATABASE,
    DATABASE_HELP,
    model_events,
    read_inputs,
    run_payload,
    valid_inputs,
)
from flows.params import TuneParams, flow_docstring, flow_signature
from flows.runner import StageRunner, direct, logs_to_prefect, prefect_task
from flows.stages.extract import day_end
from flows.stages.tuning import holdout_split, tune_split
from flows.stages.validate import validate_inputs
from flows.storage.backends import open_storage
from flows.storage.database import Database
from flows.storage.secrets import resolve_database
from flows.tracking import RunResult, release_free_memory, tracked_run, utcnow
from models.recommender import MODEL_VERSION


def run_tune(
    db: Database,
    params: TuneParams,
    *,
    runner: StageRunner = direct,
    flow_run_id: str | None = None,
) -> RunResult:
    """Tune the record model on `db`'s data of `params.run_date` and record the choice."""
    params = params.resolved()
    with open_storage(db) as storage:
        storage.check()
        payload = run_payload(db, None, params.as_payload())
        with tracked_run(storage, "tune", payload, flow_run_id) as (tracker, result):
            now = utcnow()
            as_of = min(now, day_end(params.run_date))

            def stage(name, percent, fn, *args, retry=False, rows_out=None):
                with tracker.stage(name, percent) as timing:
                    value = runner(name, fn, *args, retry=retry)
                    timing.rows_out = rows_out(value) if rows_out else None
                result.stages.append(timing.row())
                return value

            def say(message: str) -> None:
                tracker.progress(tracker.percent, message)

            inputs = read_inputs(
                storage, None, stage, params.run_date, params.window_days, 0, say, percent=20
            )
            storage.release_cache()
            validation = stage("validate", 30, validate_inputs, inputs, as_of)
            # the columns the models read: session ids, devices, … served the metrics only
            valid = model_events(valid_inputs(tracker, result, validation))
            del inputs, validation
            release_free_memory()
            split = stage("holdout", 40, holdout_split, valid, params, as_of)
            del valid  # the event frames: the search reads the split's matrices only
            release_free_memory()
            chosen = stage("tune", 90, tune_split, split, params)
            del split
            row_id = stage("record", 100, _record, storage, tracker.run_id, params, chosen, now)
            result.model = {"model_version": MODEL_VERSION, "model_tuning_id": row_id, **chosen}
            result.rows["model_tuning"] = 1
        return result


def _record(storage, run_id: str, params: TuneParams, chosen: dict, now) -> int:
    """Insert the choice into model_tuning; return its id."""
    rows = storage.execute(
        "tuning/insert",
        (
            run_id,
            params.run_date,
            MODEL_VERSION,
            json.dumps(chosen["params"]),
            chosen["validation_ndcg"],
            chosen["default_ndcg"],
            chosen["candidates"],
            chosen["users"],
            chosen["items"],
            chosen["interactions"],
            chosen["density"],
            now,
        ),
    )
    return int(rows[0][0])


def tune(*, database: str | None = None, **parameters) -> dict:
    """Tune the record model as a Prefect flow; return the run summary."""
    params = TuneParams(**parameters).resolved()
    db = resolve_database(database)
    with logs_to_prefect():
        result = run_tune(db, params, runner=prefect_task, flow_run_id=flow_run.get_id())
    return result.summary()


tune.__signature__ = flow_signature(TuneParams, DATABASE)
tune.__doc__ = flow_docstring(
    "Choose the record model's parameters on the data of a date (its last days held out) and "
    "record them for the nightly.",
    TuneParams,
    database=DATABASE_HELP,
)
tune = flow(name="tune", log_prints=True)(tune)
