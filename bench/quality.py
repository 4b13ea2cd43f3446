"""Recommendation quality on one protocol split: the project's model beside baselines.

Usage: python bench/quality.py DATASET_DIR [--k 10] [--seed 42] [--tune-budget 20] [--json OUT.json]

DATASET_DIR holds a MovieLens-style ``u.data`` (tab-separated user, item, rating, timestamp)
and, optionally, ``u.item`` (with ``u.genre``): the project's model then uses the item genres,
as the nightly run uses records.genres, and is also shown without them.
Protocol (DESIGN.md): every (user, item) pair is one positive of weight 1; per-user random
75/25 split with the seed; users with < 4 interactions dropped; 10 recommendations per user
with train items removed. The files are read, split, coded and scored by the same code as
`rotation evaluate` (flows/stages/evaluation.py): a test item that no train pair has is a
miss, and coverage is over every item of the file. Prints a table and a JSON document
naming the machine.

Tuned rows (``--tune-budget N``, default 20; 0 = none): every model gets the same budget
on the same validation split, carved out of TRAIN only (models/tuning.py's
``validation_split``: 10 % of each user's train pairs, seed + 1): the project's model
searches its staged plan (N candidates beyond its defaults, ``TunedRecommender``), each
baseline scores the first N points of its grid (``BASELINE_GRIDS``: EASE's λ, ItemKNN's k,
ALS's factors × regularisation, BM25's K); the best validation nDCG@k is refitted on all of
TRAIN and scored on TEST. The chosen parameters are printed beside each tuned row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import polars as pl
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import BM25Recommender

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flows.analyst.importer import read_interactions, read_item_metadata
from flows.stages.evaluation import holdout_matrices, split_pairs
from flows.stages.interactions import genre_matrix
from models.evaluation import evaluate, score_fitted
from models.linear import EASE, Popularity
from models.neighbors import ItemKNN
from models.recommender import MODEL_VERSION, RotationRecommender
from models.tuning import DEFAULT_BUDGET, TunedRecommender, validation_split

METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")


def load_split(dataset_dir: str | Path, seed: int = 42):
    """Return (train CSR, test CSR, n_items, genres or None) of a MovieLens-style data set.

    The train matrix's columns are the items of train pairs; the test matrix has one more
    column per test-only item (a miss for every model); genres follow the train columns.
    """
    pairs, items = read_dataset(dataset_dir)
    matrix, test, n_items, genres = split_from_pairs(pairs, items, seed)
    return matrix.matrix, test, n_items, genres


def read_dataset(dataset_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Return the data set's (user_id, item_id, timestamp) pairs and its items' genres or None."""
    pairs = read_interactions(Path(dataset_dir) / "u.data", "movielens").interactions
    items = read_item_metadata(_item_file(dataset_dir), "movielens")
    return pairs, None if items is None else items.rename({"item_id": "id"})


def split_from_pairs(pairs: pl.DataFrame, items: pl.DataFrame | None, seed: int = 42):
    """Return ``load_split``'s split of `pairs` (user_id, item_id, timestamp), `items` (id,
    genres) or None: (train InteractionMatrix, test CSR, n_items, genres or None)."""
    train, test = split_pairs(pairs, "stratified", seed=seed)
    matrix, test_csr = holdout_matrices(train.with_columns(pl.lit(1.0).alias("weight")), test)
    genres = None if items is None else genre_matrix(items, matrix)
    return matrix, test_csr, pairs["item_id"].n_unique(), genres


def _item_file(dataset_dir: str | Path) -> Path | None:
    """Return u.item of the data set, or None when it has none."""
    path = Path(dataset_dir) / "u.item"
    return path if path.exists() else None


def machine() -> dict:
    """Return the CPU model, core count, memory and Python/OS versions of this machine."""
    cpu = platform.processor() or ""
    meminfo = Path("/proc/meminfo")
    mem_gb = None
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


class ImplicitModel:
    """Adapter giving an ``implicit`` model this project's fit/recommend interface."""

    def __init__(self, model):
        self.model = model

    def fit(self, X):
        """Return self, fitted on the users×items matrix X."""
        self.model.fit(sp.csr_matrix(X), show_progress=False)
        return self

    def recommend(self, X, user_rows, n, *, filter_seen=True):
        """Return (item indices, None) of the n best items for each user row."""
        ids, _ = self.model.recommend(
            user_rows, sp.csr_matrix(X)[user_rows], N=n, filter_already_liked_items=filter_seen
        )
        return ids, None


def models(seed: int, genres=None) -> dict:
    """Return {name: (model, fit parameters)}: the project's with `genres` when there are some."""
    ours = {"RotationRecommender": (RotationRecommender(), {})}
    if genres is not None:
        ours = {
            "RotationRecommender + genres": (RotationRecommender(), {"item_features": genres}),
            "RotationRecommender, no genres": (RotationRecommender(), {}),
        }
    baselines = {
        "Popularity": Popularity(),
        "ItemKNN cosine k=100": ItemKNN(k=100, similarity="cosine"),
        "SAR-style jaccard k=100": ItemKNN(k=100, similarity="jaccard"),
        "EASE l2=500": EASE(l2=500.0),
        "implicit ALS (defaults)": ImplicitModel(AlternatingLeastSquares(random_state=seed)),
        "implicit BM25 K=100": ImplicitModel(BM25Recommender(K=100)),
    }
    return {**ours, **{name: (model, {}) for name, model in baselines.items()}}


#: Neighbourhood sizes for the kNN-style baselines (ItemKNN's k, BM25's K), in trial order.
NEIGHBOURHOODS = (
    100, 50, 200, 20, 400, 30, 75, 150, 10, 300, 40, 60, 125, 250, 15, 500, 90, 175, 25, 800,
)  # fmt: skip

#: Each baseline's grid, in the order its points are tried (a budget of N: the first N).
BASELINE_GRIDS = {
    "EASE": [
        {"l2": l2}
        for l2 in (
            500.0,
            150,
            1500,
            50,
            5000,
            300,
            800,
            100,
            2500,
            20,
            10000,
            200,
            1000,
            30,
            400,
            650,
            3000,
            75,
            15000,
            10,
        )
    ],
    "ItemKNN cosine": [{"k": k} for k in NEIGHBOURHOODS],
    "implicit ALS": [
        {"factors": f, "regularization": r}
        for r in (0.01, 0.1, 1.0, 10.0)
        for f in (100, 32, 64, 128, 200)
    ],
    "implicit BM25": [{"K": k} for k in NEIGHBOURHOODS],
}


def baseline(name: str, params: dict, seed: int):
    """Return a fresh baseline model of BASELINE_GRIDS' `name` with `params`."""
    if name == "EASE":
        return EASE(**params)
    if name == "ItemKNN cosine":
        return ItemKNN(similarity="cosine", **params)
    if name == "implicit ALS":
        return ImplicitModel(AlternatingLeastSquares(random_state=seed, **params))
    return ImplicitModel(BM25Recommender(**params))


def choose_baseline(label: str, fit, val, budget: int, seed: int, k: int = 10):
    """Return (parameters, validation nDCG@k) of the best of the first `budget` points of
    BASELINE_GRIDS[label], each fitted on `fit` and scored on `val` (never a test split)."""
    scored = []
    for params in BASELINE_GRIDS[label][:budget]:
        model = baseline(label, params, seed).fit(fit)
        scored.append((score_fitted(model, fit, val, k)["ndcg_at_k"], params))
    score, best = max(scored, key=lambda pair: pair[0])  # max keeps the first of equals
    return best, score


def tuned_results(train, test, n_items, genres, seed: int, budget: int, k: int) -> dict:
    """Return {name: metrics + chosen params} of every model tuned on one validation split."""
    fit, val = validation_split(train, seed=seed + 1)
    results = {}
    features = {} if genres is None else {"item_features": genres}
    ours = TunedRecommender(budget=budget, k=k)
    figures = evaluate(
        ours, train, test, k=k, n_items=n_items, fit_params={**features, "validation": [(fit, val)]}
    )
    name = "RotationRecommender tuned" + (" + genres" if genres is not None else "")
    results[name] = {**figures, "params": _plain(ours.best_params_)}
    for label in BASELINE_GRIDS:
        best, _ = choose_baseline(label, fit, val, budget, seed, k)
        figures = evaluate(baseline(label, best, seed), train, test, k=k, n_items=n_items)
        results[f"{label} tuned"] = {**figures, "params": best}
    return results


def _plain(params: dict) -> dict:
    """Return parameters JSON-ready (tuples as lists)."""
    return json.loads(json.dumps(params))


def table(results: dict) -> str:
    """Return the results as an aligned text table."""
    head = f"{'model':44s} " + " ".join(f"{m[:-5]:>9s}" for m in METRICS) + "    fit_s   rec_s"
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        cells = " ".join(f"{r[m]:9.4f}" for m in METRICS)
        line = f"{name:44s} {cells} {r['fit_seconds']:8.2f} {r['recommend_seconds']:7.2f}"
        lines.append(line + (f"  {r['params']}" if "params" in r else ""))
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Run the comparison; return the JSON-ready report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--tune-budget", type=int, default=DEFAULT_BUDGET, help="candidates per model; 0 = none"
    )
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    train, test, n_items, genres = load_split(args.dataset_dir, seed=args.seed)
    results = {
        name: evaluate(model, train, test, k=args.k, n_items=n_items, fit_params=params)
        for name, (model, params) in models(args.seed, genres).items()
    }
    if args.tune_budget > 0:
        results |= tuned_results(train, test, n_items, genres, args.seed, args.tune_budget, args.k)
    report = {
        "machine": machine(),
        "model_version": MODEL_VERSION,
        "k": args.k,
        "seed": args.seed,
        "users": int(train.shape[0]),
        "items": n_items,
        "train_pairs": int(train.nnz),
        "test_pairs": int(test.nnz),
        "results": results,
    }
    print(f"machine: {report['machine']}")
    print(f"{train.shape[0]} users x {n_items} items, train {train.nnz}, test {test.nnz}")
    print(f"RotationRecommender is {MODEL_VERSION}")
    print(table(results))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
