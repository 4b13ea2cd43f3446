"""Benchmark: the tune flow at a scale profile, beside one fit of the model on the same data.

    .venv/bin/python bench/tune_flow.py --profile L [--budget 20] [--json out.json]

Generates the profile once (bench/profiles.py), then in a process of its own runs the tune
flow for the profile's last day (`rotation run tune`: extract, validate, the staged search of
models/tuning.py on the last 7 days held out, the record) and reports its wall, each stage's
seconds and the process's peak RSS. The anchor, in another process on the same rows: one
RotationRecommender fit with the defaults on the same training matrix (what the search
would cost per candidate without the shared Gram, SVD and kNN lists); the figure is the
tune flow's wall over that fit's seconds. Targets (issue 34): ≤ 20 min, ≤ 6 GB at L.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nightly import RUN_DATE, in_fresh_process, stage_table
from bench.profiles import DAYS, PROFILES, emit_report, ensure_profile, machine
from flows.params import TuneParams
from flows.stages.extract import day_end, extract_inputs
from flows.stages.tuning import holdout_split
from flows.stages.validate import validate_inputs
from flows.storage.backends import open_storage
from flows.tracking import peak_rss_bytes
from flows.tune import run_tune
from models.recommender import RotationRecommender


def tune_process(db, budget: int) -> dict:
    """Run the tune flow on `db` for the profile's last day; return its figures."""
    params = TuneParams(run_date=RUN_DATE, window_days=DAYS, budget=budget)
    start = time.perf_counter()
    result = run_tune(db, params)
    seconds = time.perf_counter() - start
    return {
        "status": result.status,
        "wall_seconds": seconds,
        "stages": stage_table(result),
        "peak_rss_bytes": peak_rss_bytes(),
        "model": result.model,
    }


def fit_anchor(db) -> dict:
    """Return the seconds of one default fit on the tune flow's training matrix and genres."""
    params = TuneParams(run_date=RUN_DATE, window_days=DAYS)
    now = day_end(RUN_DATE)
    with open_storage(db) as storage:
        inputs = extract_inputs(storage, RUN_DATE, DAYS)
    split = holdout_split(validate_inputs(inputs, now).inputs, params, now)
    del inputs
    matrix = split.splits[0][0]
    start = time.perf_counter()
    RotationRecommender().fit(matrix, item_features=split.genres)
    return {
        "users": matrix.shape[0],
        "items": matrix.shape[1],
        "pairs": int(matrix.nnz),
        "fit_s": time.perf_counter() - start,
    }


def main() -> None:
    """Parse arguments, run the tune flow and its anchor, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="S")
    parser.add_argument("--budget", type=int, default=TuneParams().budget)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    db = ensure_profile(PROFILES[args.profile])
    report = {"machine": machine(), "profile": args.profile, "budget": args.budget}
    report["tune"] = in_fresh_process(tune_process, db, args.budget)
    report["anchor"] = in_fresh_process(fit_anchor, db)
    report["tune_over_one_fit"] = report["tune"]["wall_seconds"] / report["anchor"]["fit_s"]
    report["machine_after"] = machine()
    tune = report["tune"]
    print(
        f"tune flow at {args.profile}: {tune['wall_seconds']:.1f} s, peak RSS "
        f"{tune['peak_rss_bytes'] / 2**30:.2f} GiB; one fit {report['anchor']['fit_s']:.1f} s; "
        f"ratio {report['tune_over_one_fit']:.2f}"
    )
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
