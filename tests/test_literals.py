"""Parameters of large reads become typed literals (so ADBC streams them), text never does."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from flows.storage.literals import inline, literal


def test_dates_timestamps_and_numbers_are_inlined_in_utc():
    start = datetime(2026, 10, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    sql, params = inline("SELECT 1 WHERE t >= $1 AND t < $2 AND d = $3 AND n > $10", [
        start, datetime(2026, 10, 2), date(2026, 10, 3), 0, 0, 0, 0, 0, 0, 7,
    ])  # fmt: skip
    assert params == ()
    assert "t >= TIMESTAMPTZ '2026-10-01T00:00:00+00:00'" in sql
    assert "t < TIMESTAMPTZ '2026-10-02T00:00:00+00:00'" in sql  # naive taken as UTC
    assert "d = DATE '2026-10-03'" in sql
    assert "n > CAST(7 AS BIGINT)" in sql  # $10 is not $1 followed by 0


def test_text_or_non_finite_parameters_keep_the_query_bound():
    for value in ["x'; DROP TABLE users; --", float("nan"), None, b"raw"]:
        assert literal(value) is None
        assert inline("SELECT $1, $2", [1, value]) == ("SELECT $1, $2", (1, value))


def test_no_parameters_is_unchanged():
    assert inline("SELECT 1", []) == ("SELECT 1", ())
    assert literal(True) == "TRUE" and literal(1.5) == "CAST(1.5 AS DOUBLE PRECISION)"
    assert literal(datetime(2026, 1, 1, tzinfo=UTC)) == "TIMESTAMPTZ '2026-01-01T00:00:00+00:00'"


def test_lists_of_integers_are_arrays_and_anything_else_in_a_list_stays_bound():
    import numpy as np

    assert literal([3, np.int64(1), 2]) == "CAST(ARRAY[3,1,2] AS BIGINT[])"
    assert literal([]) == "CAST(ARRAY[] AS BIGINT[])"
    for value in (["1; DROP TABLE users"], [1.5], [True], [None]):
        assert literal(value) is None


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_an_array_literal_reads_the_same_on_both_backends(backend, request, tmp_path):
    """The array literal is valid SQL for either engine, empty or not."""
    sql, _ = inline(
        "SELECT count(*) FROM (SELECT unnest(CAST($1 AS BIGINT[])) AS id) AS t "
        "WHERE id IN (SELECT unnest(CAST($2 AS BIGINT[])))",
        [[1, 2, 3], [2, 3, 4]],
    )
    assert inline("SELECT unnest($1)", [[]])[1] == ()
    if backend == "duckdb":
        import duckdb

        assert duckdb.execute(sql).fetchone()[0] == 2
        assert duckdb.execute("SELECT len(CAST(ARRAY[] AS BIGINT[]))").fetchone()[0] == 0
    else:
        import psycopg

        url = request.getfixturevalue("postgres_server")
        with psycopg.connect(url) as conn:
            assert conn.execute(sql).fetchone()[0] == 2
            empty = conn.execute("SELECT cardinality(CAST(ARRAY[] AS BIGINT[]))").fetchone()[0]
            assert empty == 0
