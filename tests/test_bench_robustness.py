"""Smoke run of bench/robustness.py on tiny data: the report's shape, the variants' construction
and the paired interval's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from bench import robustness
from bench import robustness_data as data
from models.metrics import ranking_metrics, user_metrics


def tiny_pairs(users: int = 60, items: int = 50, seed: int = 1) -> pl.DataFrame:
    """Return MovieLens-like (user_id, item_id, timestamp) pairs: two taste groups, a
    popularity skew, 8–25 items per user (so items fall both sides of the ≥ 20 line)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1)
    rows = []
    for user in range(1, users + 1):
        liked = np.where(np.arange(items) % 2 == user % 2, 3.0, 1.0) * popularity
        n = int(rng.integers(8, 26))
        for item in rng.choice(items, size=n, replace=False, p=liked / liked.sum()):
            rows.append((user, int(item) + 1, 880_000_000 + int(rng.integers(0, 10**6))))
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "ts"], orient="row")
    stamp = pl.from_epoch("ts", time_unit="s").dt.replace_time_zone("UTC").alias("timestamp")
    return frame.select("user_id", "item_id", stamp)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Return a directory with a MovieLens-format u.data of tiny_pairs (no u.item)."""
    folder = tmp_path_factory.mktemp("ml")
    pairs = tiny_pairs().with_columns(
        pl.lit(4).alias("rating"), pl.col("timestamp").dt.epoch("s").alias("ts")
    )
    lines = [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in pairs.select(
        "user_id", "item_id", "rating", "ts").iter_rows()]  # fmt: skip
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    return folder


def test_keep_share_keeps_that_share_of_each_users_pairs():
    pairs = tiny_pairs()
    for share in (0.5, 0.25):
        kept = data.keep_share(pairs, share)
        before = pairs.group_by("user_id").len().sort("user_id")["len"].to_numpy()
        after = kept.group_by("user_id").len().sort("user_id")["len"].to_numpy()
        dropped = np.maximum(1, np.floor((1 - share) * before + 0.5))
        assert np.array_equal(after, before - dropped)
        assert kept.join(pairs, on=["user_id", "item_id"], how="anti").height == 0
        assert data.keep_share(pairs, share).equals(kept)  # seeded
    assert data.keep_share(pairs, 1.0).equals(pairs)


def test_item_bands_split_the_catalogue_at_the_threshold():
    pairs = tiny_pairs()
    counts = dict(pairs.group_by("item_id").len().iter_rows())
    head, tail = data.item_band(pairs, "head"), data.item_band(pairs, "tail")
    assert head.height and tail.height
    assert all(counts[i] >= data.HEAD_MIN for i in head["item_id"])
    assert all(counts[i] < data.HEAD_MIN for i in tail["item_id"])
    assert head.height + tail.height == pairs.height
    assert data.movielens_variant(pairs, "ml-100k 50 %").height < pairs.height


def test_paired_interval_of_one_split_is_the_paired_t_interval():
    rng = np.random.default_rng(0)
    diff = rng.normal(0.01, 0.1, 400)
    delta, low, high = robustness.paired_interval([(np.arange(400), diff)])
    half = robustness.Z95 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert delta == pytest.approx(diff.mean())
    assert (low, high) == pytest.approx((diff.mean() - half, diff.mean() + half))
    # the same users in two seeds: one draw each; the mean is the mean of the seeds' means
    other = rng.normal(0.0, 0.1, 400)
    delta, low, high = robustness.paired_interval([(np.arange(400), diff), (np.arange(400), other)])
    both = (diff + other) / 2
    assert delta == pytest.approx(both.mean())
    assert high - delta == pytest.approx(robustness.Z95 * both.std(ddof=1) / 20)


def test_user_metrics_average_to_ranking_metrics():
    rng = np.random.default_rng(2)
    test = sp.csr_matrix((rng.random((30, 40)) < 0.1).astype(np.float32))
    recommended = np.argsort(-rng.random((30, 40)), axis=1)[:, :10]
    figures = ranking_metrics(recommended, test, 10, 40)
    per_user = user_metrics(recommended, test, 10)
    active = per_user.pop("active")
    for name, values in per_user.items():
        assert figures[name] == pytest.approx(values[active].mean()), name


def test_report_shape_on_tiny_data(dataset, capsys):
    size = ["--synthetic-users", "60", "--synthetic-tracks", "400", "--synthetic-days", "30"]
    size += ["--synthetic-plays", "4000", "--synthetic-events", "1000"]
    # one variant of each kind (the others differ only in their pairs, tested above)
    variants = ["ml-100k all", f"ml-100k items >= {data.HEAD_MIN}", "synthetic taste 0.50"]
    args = [str(dataset), "--tune-budget", "1", "--seeds", "1", "2", "--variants", *variants]
    report = robustness.main([*args, *size])
    assert list(report["variants"]) == variants
    assert robustness.parse([str(dataset)]).variants == list(robustness.VARIANTS)
    for name, variant in report["variants"].items():
        assert variant["seeds"] == [1, 2]
        assert set(variant["models"]) == set(robustness.MODELS), name
        assert variant["best_baseline"] in robustness.BASELINES
        assert set(variant["vs"]) == set(robustness.MODELS[1:])
        for comparison in variant["vs"].values():
            low, high = comparison["ci_pct"]
            assert low <= comparison["relative_pct"] <= high
            assert len(comparison["per_seed_pct"]) == 2
    head = report["variants"][f"ml-100k items >= {data.HEAD_MIN}"]
    assert max(head["pairs"]) < report["variants"]["ml-100k all"]["pairs"][0]
    assert set(report["verdict"]) >= {"mean_vs_best_baseline_pct", "mean_target_met"}
    assert {"cores", "load_average"} <= set(report["machine"])
    assert "| variant |" in capsys.readouterr().out
