"""External interactions: import reports, and the import → nightly → score path equals evaluate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from flows.analyst.evaluate import evaluate_pairs, evaluate_published
from flows.analyst.importer import import_interactions, read_interactions, read_item_metadata
from flows.nightly import run_nightly
from flows.params import NightlyParams


def clustered_csv(path, users: int = 60, items: int = 90, seed: int = 3) -> None:
    """Write user_id,item_id,timestamp pairs where users prefer one of three item groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, users + 1):
        group = user % 3
        liked = rng.choice(np.arange(group * 30 + 1, group * 30 + 31), size=14, replace=False)
        other = rng.choice(np.arange(1, items + 1), size=4, replace=False)
        for item in sorted(set(liked.tolist()) | set(other.tolist())):
            rows.append((user, item, 1_600_000_000 + int(rng.integers(0, 10**7))))
    pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").write_csv(path)


def test_bad_lines_are_refused_with_their_line_numbers(tmp_path, duck_database):
    path = tmp_path / "bad.csv"
    path.write_text(
        "user_id,item_id,timestamp\n1,2,100\n1,2,200\nx,3,1\n1,99999999999,1\n2,3\n3,4,-5\n4,5,10\n"
    )
    report = import_interactions(duck_database, path, "csv")
    assert report.rejected == {
        "duplicate_pair": 1,
        "id_out_of_range": 1,
        "malformed_id": 1,
        "malformed_line": 1,
        "timestamp_out_of_range": 1,
    }
    assert dict(zip(report.problems["reason"], report.problems["line"], strict=True)) == {
        "duplicate_pair": 3,
        "malformed_id": 4,
        "id_out_of_range": 5,
        "malformed_line": 6,
        "timestamp_out_of_range": 7,
    }
    assert report.loaded["play_history"] == 2 and report.loaded["users"] == 2


def test_timestamps_past_the_calendar_are_refused_and_the_rest_loaded(tmp_path, duck_database):
    path = tmp_path / "far.csv"
    path.write_text(
        "user_id,item_id,timestamp\n1,2,253402300800\n1,3,9999999999999\n2,3,253402300799\n"
        "2,4,1600000000\n"
    )
    report = import_interactions(duck_database, path, "csv")
    assert report.rejected == {"timestamp_out_of_range": 2}
    assert report.problems["line"].to_list() == [2, 3]
    assert report.loaded["play_history"] == 2


def test_quoted_fields_and_a_byte_order_mark_read_as_a_csv_reader_reads_them(
    tmp_path, duck_database
):
    path = tmp_path / "quoted.csv"
    path.write_bytes('\ufeff"user_id","item_id"\n"1","2"\n"3", "4"\n'.encode())
    report = import_interactions(duck_database, path, "csv")
    assert report.rejected == {} and report.loaded["play_history"] == 2


def test_a_header_with_a_repeated_column_is_one_clear_error(tmp_path, duck_database):
    path = tmp_path / "twice.csv"
    path.write_text("user_id,item_id,item_id\n1,2,3\n")
    with pytest.raises(ValueError, match="names a column twice: 'user_id,item_id,item_id'"):
        import_interactions(duck_database, path, "csv")


def test_a_wrong_header_is_one_clear_error(tmp_path, duck_database):
    path = tmp_path / "x.csv"
    path.write_text("item,user\n1,2\n")
    with pytest.raises(ValueError, match="user_id,item_id"):
        import_interactions(duck_database, path, "csv")


def genres_csv(path, items: int = 90) -> None:
    """Write item_id,genres: each item's cluster as a genre, every fifth item also 'rare'."""
    rows = [(i, f"g{(i - 1) // 30}" + ("|rare" if i % 5 == 0 else "")) for i in range(1, items + 1)]
    pl.DataFrame(rows, schema=["item_id", "genres"], orient="row").write_csv(path)


@pytest.mark.parametrize("with_genres", [False, True], ids=["no-genres", "genres"])
def test_published_lists_score_exactly_like_evaluate(tmp_path, duck_database, with_genres):
    data, test = tmp_path / "pairs.csv", tmp_path / "test.csv"
    clustered_csv(data)
    items_path = None
    items = None
    if with_genres:
        items_path = tmp_path / "items.csv"
        genres_csv(items_path)
        items = read_item_metadata(items_path, "csv").rename({"item_id": "id"})
    pairs = read_interactions(data, "csv").interactions
    expected = evaluate_pairs(pairs, k=10, items=items, tune_budget=0)  # the nightly: defaults
    import_interactions(duck_database, data, "csv", items_path, holdout="stratified", test_out=test)
    last = read_interactions(data, "csv").interactions["timestamp"].max().date()
    run_nightly(
        duck_database,
        NightlyParams(
            run_date=last,
            window_days=0,
            half_life_days=0,  # no time decay
        ),
    )
    scored = evaluate_published(duck_database, test, k=10)
    for name in ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "coverage"):
        assert scored[name] == pytest.approx(expected[name], abs=1e-12), name
    assert scored["users"] == expected["users"] > 0
    assert expected["ndcg_at_10"] > 0.2  # the clusters are learnable: a real signal, not noise
