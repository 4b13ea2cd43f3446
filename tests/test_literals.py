"""Parameters of large reads become typed literals (so ADBC streams them), text never does."""

from datetime import UTC, date, datetime, timedelta, timezone

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
