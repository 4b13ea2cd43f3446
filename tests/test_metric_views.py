"""The wide daily_metrics views (a column per metric) and `rotation export` to Parquet."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest
from pipeline_fixtures import BACKENDS, RUN_DATE, fresh_database, generate, query

from flows.analyst.export import EXPORTS
from flows.backfill import run_backfill
from flows.cli import main
from flows.cli.parsers import build_parser
from flows.storage.database import Database
from transforms import columns as c

FIRST = RUN_DATE - dt.timedelta(days=6)
#: view suffix → (its entity column, the metrics of transforms/columns.py)
VIEWS = {
    "platform": (None, c.PLATFORM_METRICS),
    "track": ("track_id", c.TRACK_METRICS),
    "record": ("record_id", c.RECORD_METRICS),
    "store": ("store_id", c.STORE_METRICS),
    "device": ("device_type", c.DEVICE_METRICS),
    "recommendation": (None, c.RECOMMENDATION_METRICS),
    "model_quality": ("model_version", c.MODEL_QUALITY_METRICS),
}


@pytest.fixture(scope="module", params=BACKENDS)
def metrics_db(request, tmp_path_factory) -> Database:
    """Return a database of each backend with a week of daily metrics and one quality row."""
    with fresh_database(request.param, tmp_path_factory.mktemp("views"), request) as db:
        generate(db)
        run_backfill(db, FIRST, RUN_DATE)
        quality = ("INSERT INTO daily_metrics (metric_date, metric_type, entity_type, entity_id, "
                   "metric_name, metric_value) VALUES ")  # fmt: skip
        rows = ", ".join(
            f"(DATE '{RUN_DATE}', 'model_quality', 'model', 'm1', '{name}', 0.{i + 1})"
            for i, name in enumerate(c.MODEL_QUALITY_METRICS[:3])  # one metric missing
        )
        query(db, quality + rows + " RETURNING 1")
        yield db


def wide_from_long(long: pl.DataFrame, entity: str | None, names: tuple[str, ...]):
    """Return the long rows of one metric type pivoted as the view should show them."""
    index = ["metric_date"] + (["entity_id"] if entity else [])
    wide = long.pivot(on="metric_name", index=index, values="metric_value")
    wide = wide.with_columns(pl.lit(None, pl.Float64).alias(n) for n in names if n not in wide)
    if entity:
        cast = pl.Int64 if entity.endswith("_id") else pl.String
        wide = wide.with_columns(pl.col("entity_id").cast(cast)).rename({"entity_id": entity})
    return wide.select(*index[:1], *([entity] if entity else []), *names).sort(
        index[:1] + ([entity] if entity else [])
    )


@pytest.mark.parametrize("kind", list(VIEWS))
def test_each_view_has_a_column_per_metric_holding_the_long_rows(metrics_db, kind):
    entity, names = VIEWS[kind]
    view = query(metrics_db, f"SELECT * FROM daily_metrics_{kind}")
    assert view.columns == ["metric_date", *([entity] if entity else []), *names]
    long = query(
        metrics_db,
        "SELECT metric_date, entity_id, metric_name, metric_value FROM daily_metrics "
        f"WHERE metric_type = '{kind}'",
    )
    assert long.height > 0, kind
    keys = ["metric_date", *([entity] if entity else [])]
    expected = wide_from_long(long, entity, names)
    got = view.sort(keys).with_columns(pl.col(n).cast(pl.Float64) for n in names)
    assert got.with_columns(pl.col("metric_date").cast(pl.Date)).equals(
        expected.with_columns(pl.col("metric_date").cast(pl.Date))
    )


@pytest.mark.postgres
def test_postgres_views_apply_the_readers_row_security(pg_database):
    """security_invoker: a role that may select from daily_metrics but has no row policy sees
    nothing through a view (a view run as its owner would show it every row)."""
    generate(pg_database)
    run_backfill(pg_database, FIRST, RUN_DATE)
    with psycopg.connect(pg_database.url, autocommit=True) as conn:
        options = conn.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'daily_metrics\\_%' "
            "AND relkind = 'v' ORDER BY relname"
        ).fetchall()
        assert {name for name, _ in options} == {f"daily_metrics_{k}" for k in VIEWS}
        assert all(opts == ["security_invoker=true"] for _, opts in options), options
        conn.execute("DROP ROLE IF EXISTS rotation_view_reader")
        conn.execute("CREATE ROLE rotation_view_reader NOLOGIN")
        try:
            conn.execute(
                "GRANT SELECT ON daily_metrics, daily_metrics_platform TO rotation_view_reader"
            )
            owner = conn.execute("SELECT count(*) FROM daily_metrics_platform").fetchone()[0]
            with conn.transaction():
                conn.execute("SET LOCAL ROLE rotation_view_reader")
                seen = conn.execute("SELECT count(*) FROM daily_metrics_platform").fetchone()[0]
            assert owner == 7 and seen == 0
        finally:
            conn.execute("DROP OWNED BY rotation_view_reader")
            conn.execute("DROP ROLE rotation_view_reader")


def test_export_writes_a_view_to_parquet_for_a_date_range(metrics_db, tmp_path, capsys):
    out = tmp_path / "nested" / "record.parquet"
    day = str(RUN_DATE - dt.timedelta(days=2))
    args = ["export", "--database", metrics_db.url, "--table", "daily_metrics_record"]

    assert main(["-q", *args, "--out", str(out), "--from", day, "--to", str(RUN_DATE)]) == 0

    exported = pl.read_parquet(out)
    view = query(
        metrics_db,
        "SELECT * FROM daily_metrics_record WHERE metric_date >= "
        + ("%s" if metrics_db.is_postgres else "$1")
        + " ORDER BY metric_date, record_id",
        (dt.date.fromisoformat(day),),
    )
    assert exported.columns == view.columns and exported.height == view.height > 0
    assert exported["record_id"].to_list() == view["record_id"].to_list()
    assert exported["plays"].to_list() == view["plays"].cast(pl.Float64).to_list()
    assert f"exported {exported.height:,} rows of daily_metrics_record" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["record.parquet"]


def test_export_of_a_whole_table_and_its_refusals(metrics_db, tmp_path, capsys):
    out = tmp_path / "metrics.parquet"
    base = ["export", "--database", metrics_db.url]
    assert main([*base, "--table", "daily_metrics", "--out", str(out)]) == 0
    total = query(metrics_db, "SELECT count(*) AS n FROM daily_metrics")["n"][0]
    assert pl.read_parquet(out).height == total

    assert main([*base, "--table", "users", "--out", str(out)]) == 1
    assert "cannot export 'users'; accepted: daily_metrics," in capsys.readouterr().err
    dated = ["--table", "record_popularity", "--from", str(FIRST), "--out", str(out)]
    assert main([*base, *dated]) == 1
    assert "record_popularity has no dates" in capsys.readouterr().err
    assert pl.read_parquet(out).height == total  # a refused export leaves the file alone


def test_export_help_names_every_exportable_table():
    parser = build_parser("test")
    export = parser._subparsers._group_actions[0].choices["export"]
    help_text = " ".join(export.format_help().split())
    for table in EXPORTS:
        kind = table.removeprefix("daily_metrics_")
        assert table in help_text or kind in help_text, table
