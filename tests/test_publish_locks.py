"""Publishes lock what they replace: disjoint dates of daily_metrics are published at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import polars as pl
import psycopg
import pytest
from pg_helpers import scalar

from flows.stages.publish import stamp_metrics
from flows.storage.backends import open_storage
from flows.storage.base import Replacement
from flows.storage.postgres import _lock_statements

LOCKED, FREE = date(2026, 1, 1), date(2026, 1, 2)
NOW = datetime(2026, 1, 3, tzinfo=UTC)
WAITING = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND objid = %s::oid AND objsubid = 2"
)


def _rows(day: date) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "metric_date": [day],
            "metric_type": ["platform"],
            "entity_type": ["platform"],
            "entity_id": ["all"],
            "metric_name": ["plays"],
            "metric_value": [1.0],
        }
    )
    return stamp_metrics(frame, "lock-test", NOW)


def _wait_until_waiting(conn, day: date, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if scalar(conn, WAITING, (day.toordinal(),)):
            return True
        time.sleep(0.05)
    return False


def test_a_dated_replacement_shares_the_table_lock_and_locks_its_dates():
    metrics = Replacement.metrics(_rows(FREE), [FREE, LOCKED], ["platform"])

    assert _lock_statements([metrics]) == [
        ("SELECT pg_advisory_lock_shared(hashtext($1))", ("daily_metrics",)),
        ("SELECT pg_advisory_lock(hashtext($1), $2::int)", ("daily_metrics", LOCKED.toordinal())),
        ("SELECT pg_advisory_lock(hashtext($1), $2::int)", ("daily_metrics", FREE.toordinal())),
    ]
    whole = Replacement.whole("daily_metrics", _rows(FREE))
    assert _lock_statements([metrics, whole]) == [  # the whole table: its own lock only
        ("SELECT pg_advisory_lock(hashtext($1))", ("daily_metrics",))
    ]


@pytest.mark.postgres
def test_a_publish_of_another_date_goes_on_while_one_date_is_locked(migrated_pg):
    with (
        psycopg.connect(migrated_pg.url, autocommit=True) as holder,
        open_storage(migrated_pg) as storage,
        ThreadPoolExecutor(2) as pool,
    ):
        holder.execute(
            "SELECT pg_advisory_lock(hashtext('daily_metrics'), %s)", (LOCKED.toordinal(),)
        )
        locked = pool.submit(storage.replace_daily_metrics, _rows(LOCKED), [LOCKED], ["platform"])
        assert _wait_until_waiting(holder, LOCKED), "the publish never waited for its date"
        free = pool.submit(storage.replace_daily_metrics, _rows(FREE), [FREE], ["platform"])

        assert free.result(timeout=60) == 1  # not behind the locked date
        assert not locked.done()
        holder.execute("SELECT pg_advisory_unlock_all()")
        assert locked.result(timeout=60) == 1
        dates = scalar(
            holder, "SELECT array_agg(metric_date ORDER BY metric_date) FROM daily_metrics"
        )
    assert dates == [LOCKED, FREE]
