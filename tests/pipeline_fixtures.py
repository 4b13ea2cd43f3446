"""Helpers for the flow tests: tiny generated data, a database per backend, SQL read-backs."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from flows.analyst.generate import generate_into
from flows.backfill import backfill, run_backfill
from flows.cluster import ClusterOptions, task_runner
from flows.params import NightlyParams
from flows.storage.database import ENV_VAR, Database, parse_database

PG_ADMIN_URL = os.environ.get("ROTATION_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
# The last complete day: the generated events end with it (generate's `end` is exclusive).
RUN_DATE = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
SIZE = {"users": 120, "tracks": 1200, "days": 30, "seed": 7}
BACKENDS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
# Columns a re-run may change: its identity and the moment it ran.
RUN_COLUMNS = {"id", "run_id", "computed_at", "created_at", "expires_at"}
OUTPUT_ORDER = {
    "daily_metrics": "metric_date, metric_type, entity_type, entity_id, metric_name",
    "content_similarity": "source_type, source_id, target_type, target_id, similarity_type",
    "recommendation_data": "user_id, list_name, rank",
}


def params(**overrides) -> NightlyParams:
    """Return nightly parameters for RUN_DATE with `overrides`."""
    return NightlyParams(**{"run_date": RUN_DATE, **overrides})


def generate(db: Database, end: dt.date | None = None) -> dict[str, int]:
    """Fill `db` (migrating it first) with the tiny synthetic data set; return rows per table."""
    return generate_into(db, **SIZE, end=end or RUN_DATE + dt.timedelta(days=1))


def _admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@contextmanager
def fresh_pg(prefix: str = "rotation_flowtest") -> Iterator[Database]:
    """Yield a new empty PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parse_database(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(backend: str, directory: Path, request) -> Iterator[Database]:
    """Yield an empty database of `backend` ('duckdb' file in `directory`, or 'postgres')."""
    if backend == "postgres":
        request.getfixturevalue("postgres_server")  # fails in CI, skips on a laptop without one
        with fresh_pg() as db:
            yield db
    else:
        yield parse_database(f"duckdb:{directory / f'{uuid.uuid4().hex[:8]}.duckdb'}")


def _plain(value):
    """Return a hashable, comparable value: JSON objects as sorted-key text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def query(db: Database, sql: str, params: tuple = ()) -> pl.DataFrame:
    """Return the rows of one SQL statement ($1.. placeholders on DuckDB, %s on Postgres)."""
    if db.is_postgres:
        import psycopg

        with psycopg.connect(db.url, autocommit=True) as conn:
            cur = conn.execute(sql, params or None)
            names = [c.name for c in cur.description]
            rows = [tuple(_plain(v) for v in row) for row in cur.fetchall()]
        return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    import duckdb

    with duckdb.connect(str(db.path)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return pl.from_arrow(conn.sql(sql, params=list(params)).to_arrow_table())


def execute(db: Database, sql: str, params: tuple = ()) -> None:
    """Run one statement and commit it."""
    if db.is_postgres:
        import psycopg

        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute(sql, params or None)
        return
    import duckdb

    with duckdb.connect(str(db.path)) as conn:
        conn.execute(sql, list(params))


def placeholder(db: Database, n: int) -> str:
    """Return the n-th (1-based) parameter placeholder of `db`'s driver."""
    return "%s" if db.is_postgres else f"${n}"


def table(db: Database, name: str, *, without: set[str] = frozenset()) -> pl.DataFrame:
    """Return every row of output table `name` in key order, JSON as text, minus `without`."""
    frame = query(db, f"SELECT * FROM {name} ORDER BY {OUTPUT_ORDER[name]}")
    frame = frame.with_columns(
        pl.col(c).cast(pl.Utf8) for c, t in frame.schema.items() if t == pl.Object
    )
    return frame.drop([c for c in frame.columns if c in without])


def differences(before: pl.DataFrame, after: pl.DataFrame, name: str) -> dict[str, int]:
    """Return, per column, how many rows of table `name` differ between two snapshots
    (matched on the table's key; '<missing>' counts keys present in only one of them)."""
    key = [c.strip() for c in OUTPUT_ORDER[name].split(",")]
    joined = before.join(after, on=key, how="inner", suffix="__after")
    missing = before.join(after, on=key, how="anti").height
    counts = {"<missing>": missing + after.join(before, on=key, how="anti").height}
    for column in before.columns:
        if column not in key and f"{column}__after" in joined.columns:
            changed = joined.filter(pl.col(column).ne_missing(pl.col(f"{column}__after")))
            counts[column] = changed.height
    return {column: n for column, n in counts.items() if n}


def canonical_json(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Return `frame` with a JSON text column re-encoded with sorted keys (backend-neutral)."""
    return frame.with_columns(
        pl.col(column).map_elements(
            lambda s: json.dumps(json.loads(s), sort_keys=True), return_dtype=pl.Utf8
        )
    )


def latest_job(db: Database, job_type: str = "nightly") -> dict:
    """Return the newest jobs row of `job_type` as a dict (payload/result parsed)."""
    rows = query(
        db,
        "SELECT * FROM jobs WHERE job_type = " + placeholder(db, 1) + " ORDER BY id DESC LIMIT 1",
        (job_type,),
    ).to_dicts()
    assert rows, f"no {job_type} job row"
    job = rows[0]
    for key in ("payload", "result"):
        if isinstance(job.get(key), str):
            job[key] = json.loads(job[key])
    return job


def on_a_local_cluster(flow, db: Database, api_url: str, monkeypatch):
    """Return `flow` with its shard tasks on a local Dask cluster of 2 workers (1 GiB each)
    reporting to `api_url`, reading `db` (ROTATION_DATABASE_URL, as a deployment's run)."""
    monkeypatch.setenv(ENV_VAR, db.url)
    runner = task_runner(ClusterOptions(workers=2, worker_memory="1GiB"), api_url)
    return flow.with_options(task_runner=runner)


def one_shard_rows_and_a_cluster_backfill(db: Database, api_url: str, monkeypatch, first, last):
    """Return the daily_metrics of a one-shard backfill of `db` from `first` to `last` (run
    here, run columns aside) and the backfill flow on a local cluster (on_a_local_cluster)."""
    run_backfill(db, first, last)
    whole = table(db, "daily_metrics", without=RUN_COLUMNS)
    return whole, on_a_local_cluster(backfill, db, api_url, monkeypatch)
