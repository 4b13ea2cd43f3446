"""Recommendation quality on one protocol split: the project's model beside baselines.

Usage: python bench/quality.py DATASET_DIR [--k 10] [--seed 42] [--json OUT.json]

DATASET_DIR holds a MovieLens-style ``u.data`` (tab-separated user, item, rating, timestamp)
and, optionally, ``u.item`` (with ``u.genre``): the project's model then uses the item genres,
as the nightly run uses records.genres, and is also shown without them.
Protocol (DESIGN.md): every (user, item) pair is one positive of weight 1; per-user random
75/25 split with the seed; users with < 4 interactions dropped; 10 recommendations per user
with train items removed. Prints a table and a JSON document naming the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.evaluation import evaluate, protocol_split
from models.linear import EASE, Popularity
from models.neighbors import ItemKNN
from models.recommender import MODEL_VERSION, RotationRecommender

METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage")


def load_pairs(dataset_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (user_idx, item_idx, timestamps) of ``u.data`` with dense 0-based indices."""
    raw = np.loadtxt(Path(dataset_dir) / "u.data", dtype=np.int64, ndmin=2)
    _, users = np.unique(raw[:, 0], return_inverse=True)
    _, items = np.unique(raw[:, 1], return_inverse=True)
    return users.ravel(), items.ravel(), raw[:, 3]


def load_genres(dataset_dir: str | Path) -> sp.csr_matrix | None:
    """Return the items × genres 0/1 matrix of ``u.item`` in load_pairs' item order, or None.

    Parsed as ``rotation import-interactions --items`` parses it (genre names from ``u.genre``).
    """
    from flows.importer import read_item_metadata
    from flows.matrices import genre_matrix
    from models.matrix import InteractionMatrix

    path = Path(dataset_dir) / "u.item"
    if not path.exists():
        return None
    raw = np.loadtxt(Path(dataset_dir) / "u.data", dtype=np.int64, ndmin=2)
    matrix = InteractionMatrix.from_arrays(raw[:, 0], raw[:, 1])
    items = read_item_metadata(path, "movielens").rename({"item_id": "id"})
    return genre_matrix(items, matrix)


class WithItemFeatures:
    """A model fitted with fixed item features (``fit(X, item_features=...)``)."""

    def __init__(self, model, features):
        self.model = model
        self.features = features

    def fit(self, X):
        """Return self, the model fitted on X and the item features."""
        self.model.fit(X, item_features=self.features)
        return self

    def recommend(self, X, user_rows, n, **kwargs):
        """Return the model's recommendations."""
        return self.model.recommend(X, user_rows, n, **kwargs)


def load_split(dataset_dir, seed: int = 42) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return the protocol (train, test) CSR matrices of a MovieLens-style data set."""
    users, items, _ = load_pairs(dataset_dir)
    return protocol_split(users, items, seed=seed)


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
    """Return the named models to compare (the project's with `genres` when there are some)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender

    ours = {"RotationRecommender": RotationRecommender()}
    if genres is not None:
        ours = {
            "RotationRecommender + genres": WithItemFeatures(RotationRecommender(), genres),
            "RotationRecommender, no genres": RotationRecommender(),
        }
    return {
        **ours,
        "Popularity": Popularity(),
        "ItemKNN cosine k=100": ItemKNN(k=100, similarity="cosine"),
        "SAR-style jaccard k=100": ItemKNN(k=100, similarity="jaccard"),
        "EASE l2=500": EASE(l2=500.0),
        "implicit ALS (defaults)": ImplicitModel(AlternatingLeastSquares(random_state=seed)),
        "implicit BM25 K=100": ImplicitModel(BM25Recommender(K=100)),
    }


def table(results: dict) -> str:
    """Return the results as an aligned text table."""
    head = f"{'model':44s} " + " ".join(f"{m[:-5]:>9s}" for m in METRICS) + "    fit_s   rec_s"
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        cells = " ".join(f"{r[m]:9.4f}" for m in METRICS)
        lines.append(f"{name:44s} {cells} {r['fit_seconds']:8.2f} {r['recommend_seconds']:7.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Run the comparison; return the JSON-ready report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    train, test = load_split(args.dataset_dir, seed=args.seed)
    candidates = models(args.seed, load_genres(args.dataset_dir))
    results = {name: evaluate(m, train, test, k=args.k) for name, m in candidates.items()}
    report = {
        "machine": machine(),
        "model_version": MODEL_VERSION,
        "k": args.k,
        "seed": args.seed,
        "users": int(train.shape[0]),
        "items": int(train.shape[1]),
        "train_pairs": int(train.nnz),
        "test_pairs": int(test.nnz),
        "results": results,
    }
    print(f"machine: {report['machine']}")
    print(f"{train.shape[0]} users x {train.shape[1]} items, train {train.nnz}, test {test.nnz}")
    print(f"RotationRecommender is {MODEL_VERSION}")
    print(table(results))
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
