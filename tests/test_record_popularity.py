"""The popularity list the nightly publishes, and the API fallback that reads it (0011)."""

from __future__ import annotations

import psycopg
import pytest
from pipeline_fixtures import generate, params, query

from flows.nightly import run_nightly


@pytest.fixture
def published_pg(migrated_pg):
    """Return a generated Postgres database after one nightly run."""
    generate(migrated_pg)
    run_nightly(migrated_pg, params())
    return migrated_pg


@pytest.mark.postgres
def test_the_nightly_publishes_the_most_popular_records_per_genre(published_pg):
    popular = query(published_pg, "SELECT * FROM record_popularity ORDER BY plays DESC, record_id")
    assert 0 < popular.height <= 200 + 100 * 12
    assert popular["plays"].is_sorted(descending=True) and (popular["plays"] > 0).all()
    run_ids = query(published_pg, "SELECT DISTINCT run_id FROM recommendation_data")
    assert popular["run_id"].unique().to_list() == run_ids["run_id"].to_list()
    stocked = query(
        published_pg,
        "SELECT DISTINCT si.record_id FROM store_inventory si JOIN stores s ON s.id = si.store_id"
        " WHERE si.record_status = 'for_sale' AND s.store_status = 'active'",
    )["record_id"].to_list()
    flagged = popular.filter("in_stock")["record_id"].to_list()
    assert flagged and set(flagged) <= set(stocked)
    assert not set(popular.filter(~popular["in_stock"])["record_id"]) & set(stocked)


def _fallback(db, list_name: str) -> list[tuple]:
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("SET ROLE service_role")
        return conn.execute(
            "SELECT item_id, is_fallback, reason->>'scope' FROM get_recommendations(%s, %s, 10)",
            (10_000_000, list_name),
        ).fetchall()


@pytest.mark.postgres
def test_a_new_user_gets_the_published_list_in_popularity_order(published_pg):
    rows = _fallback(published_pg, "records")
    popular = query(
        published_pg,
        "SELECT record_id FROM record_popularity ORDER BY plays DESC, record_id LIMIT 10",
    )["record_id"]
    assert [r[0] for r in rows] == popular.to_list()
    assert all(r[1] and r[2] == "overall" for r in rows)
    in_stock = _fallback(published_pg, "records_in_stock")
    flagged = set(
        query(published_pg, "SELECT record_id FROM record_popularity WHERE in_stock")["record_id"]
    )
    assert in_stock and {r[0] for r in in_stock} <= flagged


@pytest.mark.postgres
def test_the_fallback_reads_the_table_not_daily_metrics(published_pg):
    """Emptying daily_metrics changes nothing once a list is published."""
    before = _fallback(published_pg, "records")
    with psycopg.connect(published_pg.url, autocommit=True) as conn:
        conn.execute("DELETE FROM daily_metrics")
    assert _fallback(published_pg, "records") == before


def test_duckdb_publishes_the_same_list_with_each_records_genres(migrated_duck):
    generate(migrated_duck)
    run_nightly(migrated_duck, params())
    published = query(
        migrated_duck,
        "SELECT p.record_id, p.plays, p.genres = r.genres AS same_genres FROM record_popularity p"
        " JOIN records r ON r.id = p.record_id ORDER BY p.plays DESC, p.record_id",
    )
    assert published.height > 0 and published["same_genres"].all()
    assert published["plays"].is_sorted(descending=True)
