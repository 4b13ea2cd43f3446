"""Which columns of a swapped table's frame go to the server as column defaults (swap_build)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from flows.storage.swap_build import LoadsInFlight, constant_columns

WHEN = datetime(2026, 11, 25, 3, 4, 5, 678901, tzinfo=UTC)


def _frame(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [7] * n,
            "list_name": pl.Series(["records"] * n, dtype=pl.Categorical),
            "model_version": ["v1"] * n,
            "rank": [1] * n,
            "active": [True] * n,
            "day": [date(2026, 11, 25)] * n,
            "expires_at": [WHEN] * n,
            "naive_at": [WHEN.replace(tzinfo=None)] * n,
            "confidence": [0.5] * n,
            "item_id": list(range(n)),
            "run_id": ["r", "r", None][:n],
        }
    )


def test_constant_columns_are_named_with_the_text_postgres_reads_back():
    assert constant_columns(_frame()) == {
        "user_id": "7",
        "list_name": "records",
        "model_version": "v1",
        "rank": "1",
        "active": "true",
        "day": "2026-11-25",
        "expires_at": "2026-11-25T03:04:05.678901+00:00",
    }


def test_floats_naive_timestamps_nulls_and_varying_columns_stay_in_the_copy():
    found = constant_columns(_frame())
    assert not {"confidence", "naive_at", "item_id", "run_id"} & set(found)


def test_a_frame_of_constants_keeps_its_first_column_in_the_copy():
    frame = _frame().select("user_id", "model_version", "rank")
    assert constant_columns(frame) == {"model_version": "v1", "rank": "1"}


def test_a_single_row_has_no_constant_columns():
    assert constant_columns(_frame(1)) == {}


def test_the_input_frame_is_not_changed():
    frame = _frame()
    before = frame.clone()
    constant_columns(frame)
    assert frame.equals(before)


def test_only_the_last_load_to_finish_is_the_last():
    loads = LoadsInFlight(3)
    assert [loads.finish_one() for _ in range(3)] == [False, False, True]


def test_run_columns_stamped_as_literals_are_constants():
    stamped = pl.DataFrame({"item_id": [1, 2, 3]}).with_columns(
        pl.lit("run-1").alias("run_id"), pl.lit(WHEN).alias("created_at")
    )
    assert constant_columns(stamped) == {
        "run_id": "run-1",
        "created_at": "2026-11-25T03:04:05.678901+00:00",
    }
