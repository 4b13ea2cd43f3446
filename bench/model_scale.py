"""Fit + recommend time and peak memory of a recommender on a seeded synthetic matrix.

Usage: python bench/model_scale.py [--users 100000] [--items 50000] [--pairs 5800000]
                                   [--n 50] [--model rotation|itemknn] [--seed 0]

The matrix has heavy-tailed item popularity (Zipf-like, exponent 1.0) and log-normal user
activity, like a record shop's catalogue. Prints one JSON document with the machine, shape,
stage timings, peak RSS (ru_maxrss) of this process and the load average at the end
(the machine may be shared: read timings with it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import machine
from models.neighbors import ItemKNN
from models.recommender import MODEL_VERSION, RotationRecommender


def peak_rss_gb() -> float:
    """Return this process's peak resident set size in GB (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def synthetic(n_users: int, n_items: int, n_pairs: int, seed: int = 0) -> sp.csr_matrix:
    """Return a binary users×items CSR with about n_pairs distinct heavy-tailed pairs."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 1.0
    item_p = rng.permutation(item_p / item_p.sum())
    activity = rng.lognormal(0.0, 1.0, n_users)
    pairs = np.empty(0, dtype=np.int64)
    while len(pairs) < n_pairs:  # head duplicates collapse: draw until enough distinct pairs
        draws = int((n_pairs - len(pairs)) * 1.3) + 1000
        users = rng.choice(n_users, size=draws, p=activity / activity.sum())
        items = rng.choice(n_items, size=draws, p=item_p)
        pairs = np.union1d(pairs, users.astype(np.int64) * n_items + items)
    pairs = rng.permutation(pairs)[:n_pairs]
    X = sp.csr_matrix(
        (np.ones(len(pairs), np.float32), (pairs // n_items, pairs % n_items)),
        shape=(n_users, n_items),
    )
    X.sort_indices()
    return X


def main(argv=None) -> dict:
    """Run the measurement; return the JSON-ready report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=5_800_000)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--model", choices=("rotation", "itemknn"), default="rotation")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    X = synthetic(args.users, args.items, args.pairs, args.seed)
    generate_s = time.perf_counter() - start
    rss_data = peak_rss_gb()
    model = RotationRecommender() if args.model == "rotation" else ItemKNN()
    start = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - start
    rss_fit = peak_rss_gb()
    start = time.perf_counter()
    idx, _ = model.recommend(X, np.arange(X.shape[0]), args.n)
    recommend_s = time.perf_counter() - start
    counts = np.sort(np.diff(X.tocsc().indptr))[::-1]
    report = {
        "machine": machine(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "model": type(model).__name__,
        "model_version": MODEL_VERSION,
        "params": model.get_params(),
        "users": X.shape[0],
        "items": X.shape[1],
        "pairs": X.nnz,
        "share_of_pairs_in_top_10k_items": float(counts[:10_000].sum() / X.nnz),
        "generate_seconds": round(generate_s, 1),
        "fit_seconds": round(fit_s, 1),
        "recommend_seconds": round(recommend_s, 1),
        "n": args.n,
        "peak_rss_gb_after_data": round(rss_data, 2),
        "peak_rss_gb_after_fit": round(rss_fit, 2),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "dense_head_items": int(getattr(model, "dense_items_", np.empty(0)).size),
        "filled_slots": float((idx >= 0).mean()),
        "distinct_items_recommended": int(np.unique(idx[idx >= 0]).size),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
